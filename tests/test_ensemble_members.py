"""Ensembles of member runs through main.py (config.train.ensemble_members): each member trains in
<workdir>/members/<i>/, and the run's evaluated predictions are the mean of the members' own."""

import csv
import json

import numpy as np
import pytest

from conftest import toy_data_dir
from emojax import errors, members
from refusals import run_main


def _read(path):
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


TOY = ["--config=configs/gru_moe.py:runlocal", "--config.dataset.name=emojax_toy_films",
       "--config.dataset.import_module=toy_dataset", "--config.dataset.config=",
       "--config.inputs.streams=('audio','expression')", "--config.model.hidden=4",
       "--config.model.window_seconds=3", "--config.data.batch_size=8",
       "--config.data.eval_batch_size=8", "--config.train.steps=2",
       "--config.train.eval_every_steps=2", "--config.train.retrain_on_dev=False"]


def _check_mean_of_members(run, k):
  for split in ("validation", "test"):
    films = sorted(p.name for p in (run / "eval" / split / "predictions").glob("*.csv"))
    assert len(films) == 2
    for film in films:
      got = _read(run / "eval" / split / "predictions" / film)
      own = [_read(run / "members" / str(i) / "eval" / split / "predictions" / film)
             for i in range(k)]
      for t in ("valence", "arousal"):
        assert not np.allclose(own[0][f"{t}_pred"], own[1][f"{t}_pred"])   # members differ
        np.testing.assert_allclose(got[f"{t}_pred"], np.mean([o[f"{t}_pred"] for o in own], 0),
                                   atol=2e-4)
        np.testing.assert_array_equal(got[f"{t}_true"], own[0][f"{t}_true"])
    m = json.loads((run / "eval" / split / "metrics.json").read_text())
    assert np.isfinite(m["valence"]["mse"])
    # The mean is compared with the same constant baselines as each member.
    member = json.loads((run / "members" / "0" / "eval" / split / "metrics.json").read_text())
    trues = np.concatenate([_read(run / "eval" / split / "predictions" / f)["valence_true"]
                            for f in films])
    assert m["valence"]["baselines"] == member["valence"]["baselines"]
    assert m["valence"]["baselines"]["zero"]["mse"] == pytest.approx(np.mean(trues ** 2),
                                                                     rel=1e-5)


def test_the_ensemble_evaluates_the_mean_of_its_members_predictions(tmp_path):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  run = tmp_path / "run"
  code, err = run_main(
      *TOY, f"--workdir={run}", f"--config.dataset.data_dir={toy_data_dir()}",
      "--config.train.ensemble_members=('seed=1','model.dropout=0.0; seed=2')")
  assert code == 0, err
  listed = json.loads((run / "members.json").read_text())["members"]
  assert [m["overrides"] for m in listed] == ["seed=1", "model.dropout=0.0; seed=2"]
  assert json.loads((run / "members" / "1" / "config.json").read_text())["model"]["dropout"] == 0
  _check_mean_of_members(run, 2)


def test_k_members_in_one_jit_evaluate_the_mean_of_their_predictions(tmp_path):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  run = tmp_path / "run"
  code, err = run_main(*TOY, f"--workdir={run}", f"--config.dataset.data_dir={toy_data_dir()}",
                       "--config.train.ensemble=3")
  assert code == 0, err
  records = json.loads((run / "phases.json").read_text())
  assert [(r["name"], r["members"], len(r["final_loss"])) for r in records] == [("gru_moe", 3, 3)]
  assert (run / "members" / "2" / "final_model").is_dir()
  _check_mean_of_members(run, 3)


def test_k_members_refuse_a_phase_with_a_setup(tmp_path):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  code, err = run_main(*TOY[:-1], f"--workdir={tmp_path / 'run'}",
                       f"--config.dataset.data_dir={toy_data_dir()}", "--config.train.ensemble=2")
  assert code == 2 and "gru_moe_dev" in err and "retrain_on_dev=False" in err, err


@pytest.mark.parametrize("spec,fragment", [("model.nope=1", "config.model.nope"),
                                           ("dropout", "key=value"),
                                           ("model.hidden='big'", "config.model.hidden")])
def test_a_bad_member_override_names_the_key(spec, fragment):
  from configs import gru_moe as gru_moe_config  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.ConfigError, match=fragment):
    members.member_config(gru_moe_config.get_config("runlocal"), spec)
