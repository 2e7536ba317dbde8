"""Seed 001 end to end through the harness (train.train_and_evaluate) with the runlocal config on
the toy dataset of tests/toy_dataset.py: trains, evaluates, writes the variants' ablation rows."""

import json

import numpy as np
import pytest

from conftest import toy_data_dir
from configs import gru_moe as gru_moe_config
from emojax import train


@pytest.mark.parametrize("model", [{}, {"encoder": "tcn", "tcn_output": "sequence"}])
def test_runlocal_trains_and_evaluates_end_to_end(tmp_path, model):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  c = gru_moe_config.get_config("runlocal")
  with c.unlocked():
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(toy_data_dir())
    c.inputs.streams = ("audio", "expression")
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.train.steps = 4
    c.train.eval_every_steps = 2
    c.checkpoint.every_steps = 2
    c.log.every_steps = 2
    c.model.update(model)
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
  flat = train.train_and_evaluate(c, tmp_path / "run")
  run = tmp_path / "run"
  records = json.loads((run / "phases.json").read_text())
  assert [r["name"] for r in records] == ["gru_moe", "gru_moe_dev"]   # retrain_on_dev
  for split in ("validation", "test"):
    m = json.loads((run / "eval" / split / "metrics.json").read_text())
    csvs = sorted((run / "eval" / split / "predictions").glob("*.csv"))
    assert len(csvs) == 2      # the toy dataset's 2 films per split
    rows = np.concatenate([np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2) for f in csvs])
    assert (run / "eval" / split / "predictions" / csvs[0].name).read_text().splitlines()[0] == (
        "second,valence_true,valence_pred,arousal_true,arousal_pred")
    for t, col in (("valence", 1), ("arousal", 3)):
      # The pooled metrics are those of every written second (an independent recomputation).
      true, pred = rows[:, col], rows[:, col + 1]
      assert m[t]["num_seconds"] == len(rows)
      assert m[t]["mse"] == pytest.approx(np.mean((true - pred) ** 2), rel=1e-4)
      assert m[t]["pcc"] == pytest.approx(np.corrcoef(true, pred)[0, 1], abs=1e-4)
      assert flat[f"{split}/{t}/mse"] == pytest.approx(m[t]["mse"])
  ablation = (run / "eval" / "ablation.md").read_text()
  for row in ("smoothing_moving_average", "smoothing_none", "bn_inference_batch"):
    assert row in ablation
