"""AttendAffectNet through the harness: a training run on the toy dataset, and leave-one-film-out
on the cognimuse fixture tree (tiny films, features extracted by the builder)."""

import json

import numpy as np
import pytest
import scipy.stats

import dataset_fixtures as fx
from configs import attendaffectnet as aan_config
from emojax import folds, train


def test_feature_temporal_trains_and_evaluates_on_the_toy_dataset(tmp_path):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers it)
  c = aan_config.get_config("feature_temporal,arousal,runlocal")
  with c.unlocked():
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(tmp_path / "data")
    c.inputs.streams = ("audio", "action")
    c.model.num_clips = 3
    c.model.encoder_layers = 1
    c.model.decoder_layers = 1
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.train.steps = 4
    c.train.eval_every_steps = 2
    c.checkpoint.every_steps = 2
  run = tmp_path / "run"
  flat = train.train_and_evaluate(c, run)
  records = json.loads((run / "phases.json").read_text())
  assert [r["name"] for r in records] == ["arousal/feature_temporal"]
  m = json.loads((run / "eval" / "test" / "metrics.json").read_text())
  assert flat["test/arousal/mse"] == pytest.approx(m["arousal"]["mse"])
  assert (run / "final_model").exists()


def test_leave_one_film_out_on_the_cognimuse_fixture(tmp_path):
  films = {k: fx.COGNIMUSE_FILMS[k] for k in ("BMI", "GLA", "SIL")}
  fx.write_cognimuse(tmp_path / "manual", films=films,
                     media_seconds={"BMI": 12, "GLA": 11, "SIL": 10.5})
  c = aan_config.get_config("feature,arousal,cognimuse,runlocal")
  with c.unlocked():
    c.dataset.config = "intended_5s"
    c.dataset.manual_dir = str(tmp_path / "manual")
    c.dataset.data_dir = str(tmp_path / "data")
    c.model.encoder_layers = 1
    c.data.batch_size = 2
    c.data.eval_batch_size = 4
    c.train.steps = 2
    c.train.eval_every_steps = 1
    c.checkpoint.every_steps = 1
  codes = tuple(films)
  with pytest.raises(Exception, match="unknown fold 'XYZ'"):
    folds.run_folds(c, tmp_path / "loo", folds=["XYZ"], films=codes)
  s = folds.run_folds(c, tmp_path / "loo", films=codes)
  assert sorted(s["folds"]) == sorted(codes)
  ts, ps = [], []
  for code in codes:
    rows = np.loadtxt(tmp_path / "loo" / f"fold_{code}" / "eval" / "test" / "predictions" /
                      f"{code}.csv", delimiter=",", skiprows=1, ndmin=2)
    ts.append(rows[:, 1])
    ps.append(rows[:, 2])
  t, p = np.concatenate(ts), np.concatenate(ps)
  assert s["pooled"]["arousal"]["mse"] == pytest.approx(np.mean((t - p) ** 2), rel=1e-5)
  assert s["pooled"]["arousal"]["pcc"] == pytest.approx(scipy.stats.pearsonr(t, p)[0], abs=1e-5)
  # A rerun skips every finished fold.
  again = folds.run_folds(c, tmp_path / "loo", films=codes,
                          train_fn=lambda *a: pytest.fail("a finished fold was trained again"))
  assert again["pooled"] == s["pooled"]
