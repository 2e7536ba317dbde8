"""The harness on a public benchmark: seed 000 trained through
configs/two_timescale_mediaeval2018.py on the MediaEval 2018 fixture download
(tests/dataset_fixtures.py), and its official numbers."""

import json
import pathlib

import numpy as np
import scipy.stats
import pytest

from configs import common
from configs import ridge_mediaeval2018
from configs import two_timescale_mediaeval2018 as tts_me18
from emojax import errors, input_pipeline, protocols, train
from emojax.datasets import mediaeval2018 as me18

import dataset_fixtures


@pytest.fixture(scope="module")
def me18_download(tmp_path_factory):
  root = tmp_path_factory.mktemp("me18")
  written = dataset_fixtures.write_mediaeval2018(root / "manual")
  return root, written


def _config(download, arg="runlocal", steps=2):
  root, _ = download
  c = tts_me18.get_config(arg)
  with c.unlocked():
    # What a user passes as --config.dataset.manual_dir=... / --config.dataset.data_dir=...
    c.dataset.manual_dir = str(root / "manual")
    c.dataset.data_dir = str(root / "data")
    c.data.batch_size = 4
    c.data.eval_batch_size = 4
    c.model.hidden = 4
    c.model.aux_hidden = 4
    c.model.clip_features = 4
    c.model.inter_hidden = 4
    c.per_target.valence.model.num_clips = 2
    c.train.fusion = "joint"  # M1: one phase per target (progressive: tests/test_train.py)
    c.per_target.valence.model.context = "none"  # no inter-clip phase (tests/test_train.py has it)
    c.train.steps = steps
    c.train.inter_clip_steps = steps
    c.train.eval_every_steps = steps
    c.checkpoint.every_steps = steps
  return c


def test_configs_map_the_paper_modalities_to_official_streams():
  c = tts_me18.get_config()
  assert (c.dataset.name, c.dataset.config) == ("mediaeval2018", "official_features")
  assert c.method == "two_timescale" and c.data.clip_seconds == 10
  # the paper's numbers stay
  assert c.per_target.valence.model.num_clips == 4 and c.per_target.arousal.eval.ema_beta == 0.98
  groups = dict(c.dataset.concat)
  # Every official descriptor is used exactly once; the mask is not a feature.
  used = [*groups["colour"], *groups["texture"], "fc6", me18.AUDIO_STREAM]
  assert sorted(used) == sorted(me18.OFFICIAL_STREAMS)
  assert me18.MASK_STREAM not in used
  dims = {name: sum(me18.OFFICIAL_DIMS[s] for s in streams) for name, streams in groups.items()}
  assert dims == {"colour": 857, "texture": 414}
  assert c.per_target.valence.inputs.streams == ("emobase2010", "fc6", "colour")
  assert c.per_target.arousal.inputs.streams == ("emobase2010", "fc6", "texture")
  assert dict(c.dataset.splits) == {"train": "train", "validation": "validation", "test": "test"}
  local = tts_me18.get_config("arousal,runlocal")
  assert local.dataset.config == "official_features" and local.targets == ("arousal",)
  assert local.model.hidden < c.model.hidden and local.train.steps < 100
  r = ridge_mediaeval2018.get_config("runlocal")
  assert r.method == "ridge" and r.dataset.to_dict() == local.dataset.to_dict()
  assert r.per_target.valence.inputs.streams == c.per_target.valence.inputs.streams
  with pytest.raises(ValueError, match="unknown config argument"):
    tts_me18.get_config("fixture")
  with pytest.raises(AttributeError):  # locked: a typo fails
    c.dataset.concatt = ()
  assert common.base_config("x").dataset.concat == ()


def test_concatenated_modalities_hold_the_written_values(me18_download):
  _, written = me18_download
  config = _config(me18_download)
  store = input_pipeline.load_split(config, "train", ("colour", "texture", "fc6"), ("valence",))
  assert store.film_ids == ["MEDIAEVAL18_00", "MEDIAEVAL18_01", "MEDIAEVAL18_27"]
  assert store.feature_dims() == {"colour": 857, "texture": 414, "fc6": 4096}
  film = written[0]  # No planted defect: what was written is what is read, cut to T.
  t = 12  # labels 14 rows, visual 14 s, audio 12 s: every stream cut to 12
  np.testing.assert_array_equal(
      store.streams["colour"][0],
      np.concatenate([film.streams[s][:t] for s in tts_me18.COLOUR], axis=-1))
  np.testing.assert_array_equal(
      store.streams["texture"][0],
      np.concatenate([film.streams[s][:t] for s in tts_me18.TEXTURE], axis=-1))
  np.testing.assert_array_equal(store.labels["valence"][0], film.valence[:t].astype(np.float32))
  # TFDS split arithmetic (COGNIMUSE's leave-one-film-out folds use it).
  both = input_pipeline.load_split(config, "train+validation", ("fc6",), ("arousal",))
  assert len(both.film_ids) == 7
  with pytest.raises(errors.ConfigError, match="no split 'training'.*config.dataset.splits"):
    input_pipeline.load_split(config, "train+training", ("fc6",), ("arousal",))


@pytest.mark.parametrize("concat, match", [
    ((("fc6", ("acc",)),), "'fc6' is already a stream"),
    ((("colour", ("acc", "colour_layout")),), r"has no stream\(s\) \['colour_layout'\]"),
    ((("colour", "acc"),), "is not \\(name, \\(stream, ...\\)\\)"),
    ((("colour", ()),), "lists no streams"),
    ((("a", ("acc",)), ("a", ("cl",))), "names 'a' twice"),
])
def test_bad_concat_fails_naming_the_fix(me18_download, concat, match):
  config = _config(me18_download)
  with config.unlocked():
    config.dataset.concat = concat
  with pytest.raises(errors.ConfigError, match=match):
    input_pipeline.load_split(config, "test", ("fc6",), ("valence",))


def test_train_on_the_fixture_and_official_numbers(me18_download, tmp_path):
  _, written = me18_download
  config = _config(me18_download)
  flat = train.train_and_evaluate(config, tmp_path / "run")
  for split, films in (("validation", (2, 6, 18, 46)), ("test", (54, 60))):
    eval_dir = tmp_path / "run" / "eval" / split
    m = json.loads((eval_dir / "metrics.json").read_text())
    ids = [me18.film_id(i) for i in films]
    assert sorted(m["valence"]["per_film"]) == ids
    for i, fid in zip(films, ids):
      assert (eval_dir / "plots" / f"{fid}.png").exists()
      rows = np.loadtxt(eval_dir / "predictions" / f"{fid}.csv", delimiter=",", skiprows=1,
                        ndmin=2)
      t = len(rows)
      assert t == m["arousal"]["per_film"][fid]["num_seconds"]
      # The true columns are the fixture's labels of seconds 1..T.
      np.testing.assert_array_equal(rows[:, 1].astype(np.float32),
                                    written[i].valence[:t].astype(np.float32))
      np.testing.assert_array_equal(rows[:, 3].astype(np.float32),
                                    written[i].arousal[:t].astype(np.float32))
    # Independent expectation: MSE and Pearson r (SciPy) over every second of the written CSVs.
    rows = np.concatenate([np.loadtxt(eval_dir / "predictions" / f"{fid}.csv", delimiter=",",
                                      skiprows=1, ndmin=2) for fid in ids])
    official = protocols.official_numbers("mediaeval2018", config.dataset.config, eval_dir)
    assert list(official) == ["valence", "arousal"]
    for dim, col in (("valence", 1), ("arousal", 3)):
      true, pred = rows[:, col], rows[:, col + 1]
      want = {"mse": float(np.mean((pred - true) ** 2)),
              "pcc": float(scipy.stats.pearsonr(true, pred).statistic)}
      for key in ("mse", "pcc"):
        assert official[dim][key] == pytest.approx(want[key], rel=1e-6)
        assert m[dim][key] == pytest.approx(want[key], rel=1e-5)
        assert flat[f"{split}/{dim}/{key}"] == pytest.approx(m[dim][key], rel=1e-12)
      assert official[dim]["num_seconds"] == m[dim]["num_seconds"]
      for fid in ids:
        assert official[dim]["per_film"][fid]["mse"] == pytest.approx(
            m[dim]["per_film"][fid]["mse"], rel=1e-6)
  # Evaluation writes the official numbers of the test split beside its metrics.
  written_official = json.loads((tmp_path / "run" / "eval" / "test" / "official.json").read_text())
  assert written_official["valence"]["pcc"] == pytest.approx(
      protocols.official_numbers("mediaeval2018", config.dataset.config,
                                 tmp_path / "run" / "eval" / "test")["valence"]["pcc"])
  # Film 46 has 8 label rows for 30 s of features: the labels rule.
  assert json.loads((tmp_path / "run" / "eval" / "validation" / "metrics.json").read_text())[
      "valence"]["per_film"]["MEDIAEVAL18_46"]["num_seconds"] == 8
  names = [r["name"] for r in json.loads((tmp_path / "run" / "phases.json").read_text())]
  assert names == ["valence/joint", "arousal/joint"]
