"""Leave-one-film-out folds: split configs, skip/resume, and the pooled / per-fold table."""

import numpy as np
import pytest
import scipy.stats

from configs import attendaffectnet as aan_config
from emojax import errors, folds, reporting

FILMS = ("BMI", "CHI", "GLA", "SIL")


def test_fold_config_splits_and_bad_names():
  c = aan_config.get_config("cognimuse,arousal")
  f = folds.fold_config(c, "GLA", FILMS)
  assert f.dataset.splits.test == "film_GLA"
  assert f.dataset.splits.validation == "film_SIL"
  assert f.dataset.splits.train == "film_BMI+film_CHI"
  assert folds.fold_config(c, "SIL", FILMS).dataset.splits.validation == "film_BMI"
  t = folds.fold_config(c, "GLA", FILMS, "test")
  assert t.dataset.splits.validation == "film_GLA" and t.dataset.splits.train.count("+") == 2
  assert c.dataset.splits.test == ""           # the base config is untouched
  with pytest.raises(errors.ConfigError, match="unknown fold 'XYZ'"):
    folds.run_folds(c, "/nonexistent", folds=["BMI", "XYZ"], films=FILMS,
                    train_fn=lambda *a: pytest.fail("trained before checking the folds"))
  with pytest.raises(errors.ConfigError, match="--validation"):
    folds.fold_config(c, "GLA", FILMS, "last")


def test_run_folds_skips_finished_and_pools(tmp_path):
  rng = np.random.default_rng(0)
  truth = {code: (rng.uniform(-1, 1, 7 + i), rng.uniform(-1, 1, 7 + i))
           for i, code in enumerate(FILMS)}
  trained = []

  def fake_train(config, workdir):          # stands in for train.train_and_evaluate
    code = config.dataset.splits.test.split("_")[1]
    trained.append(code)
    t, p = truth[code]
    reporting.write_eval_outputs(workdir / "eval" / "test", {code: {"arousal": (t, p)}},
                                 plot=False,
                                 baselines={"arousal": {"zero": {"mse": float(np.mean(t ** 2))}}})

  c = aan_config.get_config("cognimuse,arousal")
  folds.run_folds(c, tmp_path, folds=FILMS[:2], films=FILMS, train_fn=fake_train)
  s = folds.run_folds(c, tmp_path, films=FILMS, train_fn=fake_train)
  assert trained == list(FILMS)             # the first two were not trained again
  t = np.concatenate([truth[k][0] for k in FILMS])
  p = np.concatenate([truth[k][1] for k in FILMS])
  assert s["pooled"]["arousal"]["pcc"] == pytest.approx(scipy.stats.pearsonr(t, p)[0], abs=1e-6)
  assert s["pooled"]["arousal"]["mse"] == pytest.approx(np.mean((t - p) ** 2), abs=1e-6)
  per = [scipy.stats.pearsonr(*truth[k])[0] for k in FILMS]
  assert s["mean"]["arousal"]["pcc"] == pytest.approx(np.mean(per), abs=1e-6)
  assert s["std"]["arousal"]["pcc"] == pytest.approx(np.std(per), abs=1e-6)
  md = (tmp_path / "folds.md").read_text()
  assert "| pooled |" in md and "| SIL |" in md and "mean +- std" in md
  zero = np.mean([np.mean(truth[k][0] ** 2) for k in FILMS])   # each fold's, averaged
  assert s["baselines"]["zero"]["arousal"]["mse"] == pytest.approx(zero, rel=1e-9)
  assert f"| baseline: zero (mean over folds) | {zero:.3f} | n/a |" in md


def test_folds_of_a_dataset_without_them_are_refused_naming_the_key():
  c = aan_config.get_config("cognimuse,arousal")
  with c.unlocked():
    c.dataset.name = "mediaeval2018"
  with pytest.raises(errors.ConfigError,
                     match=r"config.dataset.name.*folds exist for \['cognimuse'\]"):
    folds.run_folds(c, "/nonexistent", train_fn=lambda *a: pytest.fail("trained without folds"))
