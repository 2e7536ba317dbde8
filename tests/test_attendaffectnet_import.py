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


# The authors' three released models: (file stem, input streams in order, the config keys they
# run with), from tests/fixtures/attendaffectnet/README.md.
RELEASED = [
    ("mdb_arousal_feature_aan_video_audio", aan.RELEASED_STREAMS, "relu", "none"),
    ("mdb_arousal_feature_aan_only_audio", ("vggish", "emobase"), "x_plus_tanh", "tanh"),
    ("mdb_arousal_feature_aan_only_video", ("resnet50", "flownet", "i3d"), "x_plus_tanh", "tanh"),
]


@pytest.mark.parametrize("stem,streams,feed_forward,head", RELEASED,
                         ids=[r[0].rsplit("_", 2)[-2] + "_" + r[0].rsplit("_", 1)[-1]
                              for r in RELEASED])
def test_each_released_model_through_the_cli_and_the_harness(fixtures_dir, tmp_path, capsys,
                                                              stem, streams, feed_forward, head):
  d = fixtures_dir / "attendaffectnet"
  inputs = np.load(d / "sample_inputs.npz")
  want = np.load(d / f"{stem}_outputs.npy")
  out = tmp_path / "run"
  assert imp.main(["--state_dict", str(d / f"{stem}.npz"), "--target", "arousal",
                   "--workdir", str(out)]) == 0
  assert ", ".join(f"{s} ({inputs[s].shape[1]})" for s in streams) in capsys.readouterr().out
  from emojax import evaluate  # pylint: disable=import-outside-toplevel
  config = evaluate.load_run_config(out)
  assert tuple(config.inputs.streams) == streams
  assert (config.model.feed_forward, config.model.head_activation, config.model.norm) == (
      feed_forward, head, "pre")
  _, model, meta, stats = evaluate.load_trained_model(config, out / "final_model")
  model.eval()
  assert meta["modalities"] == list(streams) and not stats
  # Extra streams in the batch are ignored: the model reads its own, in its order.
  batch = {"x": {s: inputs[s] for s in aan.RELEASED_STREAMS},
           "clip_mask": np.ones((len(want),), bool)}
  got = np.asarray(aan.outputs(config)["arousal"].forward(model, batch, None))
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # The other architecture's feed-forward / head would not reproduce them.
  with config.unlocked():
    config.model.feed_forward = "relu" if feed_forward != "relu" else "x_plus_tanh"
  _, other, _, _ = evaluate.load_trained_model(config, out / "final_model")
  other.eval()
  assert np.abs(np.asarray(aan.outputs(config)["arousal"].forward(other, batch, None))
                - want).max() > 1e-2


def test_audio_and_video_configs_follow_the_released_subset_models():
  from configs import attendaffectnet as aan_config  # pylint: disable=import-outside-toplevel
  for arg, ff, head in (("", "relu", "none"), ("audio", "x_plus_tanh", "tanh"),
                        ("video", "x_plus_tanh", "tanh"), ("cognimuse,video", "x_plus_tanh", "tanh"),
                        ("temporal,audio", "x_plus_tanh", "tanh")):
    c = aan_config.get_config(arg or None)
    assert (c.model.feed_forward, c.model.head_activation, c.model.norm) == (ff, head, "pre"), arg


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
  # Both namings of the input layers at once, or a released audio model with the src_embed only
  # the five-stream model has: refused, naming the parameters.
  mixed = dict(sd, **{"reduced_4.weight": np.zeros((8, 128), np.float32)})
  with pytest.raises(errors.ConfigError, match="one naming only"):
    imp.check_state_dict(mixed)
  audio = dict(np.load(npz.parent / "mdb_arousal_feature_aan_only_audio.npz"))
  with pytest.raises(errors.ConfigError, match=r"src_embed\.0\.lut\.weight"):
    imp.check_state_dict(dict(audio, **{k: sd[k] for k in imp.UNUSED}))
  with pytest.raises(errors.ConfigError, match=r"has 2 \(reduced_4\.\.reduced_5\)"):
    imp.import_released(audio, "arousal", tmp_path / "y", streams=("vggish",))
  with pytest.raises(errors.ConfigError, match=r"reduced_\[4, 5, 9\]"):
    imp.check_state_dict(dict(audio, **{"reduced_9.weight": audio["reduced_5.weight"],
                                        "reduced_9.bias": audio["reduced_5.bias"]}))
  with pytest.raises(errors.ConfigError, match="--streams names 2"):
    imp.import_released(sd, "arousal", tmp_path / "x", streams=("a", "b"))
  with pytest.raises(errors.WeightsError, match="--state_dict does not exist"):
    imp.load_state_dict(tmp_path / "nope.npz")
