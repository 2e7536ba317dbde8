"""The released Feature AAN (tests/fixtures/attendaffectnet) imported into emojax, matched."""

import ml_collections
import numpy as np
import pytest

from emojax import errors
from emojax.importers import attendaffectnet as imp
from emojax.models import attendaffectnet as aan


@pytest.fixture
def fixture(fixtures_dir):
  d = fixtures_dir / "attendaffectnet"
  return (d / "mdb_arousal_feature_aan_video_audio.npz", np.load(d / "sample_inputs.npz"),
          np.load(d / "mdb_arousal_feature_aan_video_audio_outputs.npy"))


def test_released_model_reproduced_from_the_workdir(fixture, tmp_path):
  npz, inputs, want = fixture
  out = imp.import_released(npz, "arousal", tmp_path / "run")
  config, model = imp.load_imported(out)
  assert tuple(config.inputs.streams) == aan.RELEASED_STREAMS
  batch = {"x": {s: inputs[s] for s in aan.RELEASED_STREAMS},
           "clip_mask": np.ones((len(want),), bool)}
  got = np.asarray(aan.outputs(config)["arousal"].forward(model, batch, None))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # The harness's own loader (evaluate mode) builds the same model from the workdir.
  from emojax import evaluate  # pylint: disable=import-outside-toplevel
  _, harness_model, meta, stats = evaluate.load_trained_model(
      evaluate.load_run_config(out), out / "final_model")
  harness_model.eval()
  assert meta["modalities"] == list(aan.RELEASED_STREAMS) and not stats
  np.testing.assert_allclose(
      np.asarray(aan.outputs(config)["arousal"].forward(harness_model, batch, None)), want,
      atol=1e-4, rtol=0)
  info = imp.fileio.read_json(out / "imported.json")
  assert [s["name"] for s in info["streams"]] == list(aan.RELEASED_STREAMS)
  assert info["dropped_unused"] == list(imp.UNUSED)
  # Per-second windows holding the same vector in every valid second give the same outputs.
  x4 = {s: np.repeat(inputs[s][:, None, None], 3, axis=2) for s in aan.RELEASED_STREAMS}
  sm = np.ones((len(want), 1, 3), bool)
  sm[:, :, 2] = False
  x4 = {s: np.where(sm[..., None], v, 1e3).astype(np.float32) for s, v in x4.items()}
  per_second = ml_collections.ConfigDict(config.to_dict())   # the same net read per second
  per_second.inputs.unit = "second"
  per_sec = aan.feature_forward(per_second, "arousal")(
      model, {"x": x4, "x_mask": {s: sm for s in x4}, "clip_mask": np.ones((len(want), 1), bool)},
      None)
  np.testing.assert_allclose(np.asarray(per_sec)[:, 0], want, atol=1e-4, rtol=0)


def test_cli(fixture, tmp_path, capsys):
  npz, _, _ = fixture
  assert imp.main(["--state_dict", str(npz), "--target", "arousal",
                   "--workdir", str(tmp_path / "w")]) == 0
  assert "resnet50 (2048)" in capsys.readouterr().out
  assert imp.main(["--state_dict", str(npz), "--target", "arousal",
                   "--workdir", str(tmp_path / "w")]) == 2      # refuses to overwrite
  assert "already holds a model" in capsys.readouterr().err


def test_bad_state_dicts_name_the_parameter(fixture, tmp_path):
  npz, _, _ = fixture
  sd = dict(np.load(npz))
  missing = {k: v for k, v in sd.items() if k != "encoder.layers.3.feed_forward.w.bias"}
  with pytest.raises(errors.ConfigError, match=r"encoder\.layers\.3\.feed_forward\.w\.bias"):
    imp.check_state_dict(missing)
  bad = dict(sd, **{"encoder.layers.0.self_attn.linears.2.weight": np.zeros((8, 4), np.float32)})
  with pytest.raises(errors.ConfigError, match=r"self_attn\.linears\.2\.weight.*\(8, 4\)"):
    imp.check_state_dict(bad)
  other = dict(sd, **{"decoder.layers.0.src_attn.linears.0.weight": np.zeros((8, 8), np.float32)})
  with pytest.raises(errors.ConfigError, match="another architecture"):
    imp.check_state_dict(other)
  with pytest.raises(errors.ConfigError, match="not a Feature AAN"):
    imp.check_state_dict({"fc.weight": np.zeros((1, 8), np.float32)})
  with pytest.raises(errors.ConfigError, match="--streams names 2"):
    imp.import_released(sd, "arousal", tmp_path / "x", streams=("a", "b"))
  with pytest.raises(errors.WeightsError, match="--state_dict does not exist"):
    imp.load_state_dict(tmp_path / "nope.npz")
