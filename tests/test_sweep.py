"""Tests of emojax.sweep with a fake, deterministic run_trial."""

import csv
import json
import math

import ml_collections
import numpy as np
import pytest

from emojax import sweep
from emojax.errors import ConfigError


def _config(**sweep_fields):
  c = ml_collections.ConfigDict()
  c.seed = 7
  c.train = ml_collections.ConfigDict({"lr": 1e-3, "steps": 10})
  c.valence = ml_collections.ConfigDict({"num_clips": 4, "lr": 0.5})
  c.model = ml_collections.ConfigDict({"hidden": 32, "name": "gru"})
  c.sweep = ml_collections.ConfigDict({
      "grid": (("train.lr", (1e-3, 3e-4)), ("valence.num_clips", (3, 4))),
      "random": (), "num_random": 0, "seeds": (0, 1),
      "metric": "validation/valence/pcc", "mode": "max"})
  for k, v in sweep_fields.items():
    c.sweep[k] = v
  c.lock()
  return c


def _score(lr, num_clips, seed):
  return 0.1 * num_clips - 10.0 * lr + 0.01 * seed


class FakeTrial:
  """Deterministic metrics from the trial's config; counts calls; can fail on call k."""

  def __init__(self, fail_on=None):
    self.calls, self.fail_on, self.dirs = 0, fail_on, []

  def __call__(self, config, trial_dir):
    self.calls += 1
    if self.fail_on == self.calls:
      raise RuntimeError("killed")
    self.dirs.append(trial_dir)
    assert trial_dir.is_dir()
    s = _score(config.train.lr, config.valence.num_clips, config.seed)
    return {"validation/valence/pcc": s, "test/valence/pcc": np.float32(s / 2),
            "validation/valence/mse": 1.0 - s}


def test_expand_grid_names_and_order():
  trials = sweep.expand_trials(_config())
  assert [t.name for t in trials] == [
      "lr=0.001,num_clips=3,seed=0", "lr=0.001,num_clips=4,seed=0",
      "lr=0.0003,num_clips=3,seed=0", "lr=0.0003,num_clips=4,seed=0",
      "lr=0.001,num_clips=3,seed=1", "lr=0.001,num_clips=4,seed=1",
      "lr=0.0003,num_clips=3,seed=1", "lr=0.0003,num_clips=4,seed=1"]
  t = trials[2]
  assert t.setting == "lr=0.0003,num_clips=3" and t.seed == 0
  assert t.overrides == {"train.lr": 3e-4, "valence.num_clips": 3, "seed": 0}


def test_expand_without_axes_and_shared_last_names():
  trials = sweep.expand_trials(_config(grid=(), seeds=()))
  assert [(t.name, t.setting, t.overrides) for t in trials] == [
      ("seed=7", "default", {"seed": 7})]
  trials = sweep.expand_trials(_config(grid=(("train.lr", (0.1,)), ("valence.lr", (0.2,))),
                                       seeds=(3,)))
  assert [t.name for t in trials] == ["train.lr=0.1,valence.lr=0.2,seed=3"]


def test_expand_random_is_deterministic_and_in_range():
  random = (("train.lr", "loguniform", 1e-4, 1e-2), ("model.hidden", "choice", (64, 128)),
            ("train.steps", "randint", 5, 8))
  c = _config(grid=(("valence.num_clips", (3, 4)),), random=random, num_random=5, seeds=(0,))
  trials = sweep.expand_trials(c)
  assert [t.name for t in trials] == [t.name for t in sweep.expand_trials(c)]
  lrs = {t.overrides["train.lr"] for t in trials}
  assert 2 <= len(lrs) <= 5 and all(1e-4 <= v <= 1e-2 for v in lrs)
  assert all(float(f"{v:.4g}") == v for v in lrs)  # Rounded so the name states it exactly.
  assert {t.overrides["model.hidden"] for t in trials} <= {64, 128}
  assert {t.overrides["train.steps"] for t in trials} <= {5, 6, 7, 8}
  assert all(type(t.overrides["train.steps"]) is int for t in trials)
  # Each grid point gets the same draws.
  by_clips = {n: [{k: v for k, v in t.overrides.items() if k != "valence.num_clips"}
                  for t in trials if t.overrides["valence.num_clips"] == n] for n in (3, 4)}
  assert by_clips[3] == by_clips[4] and len(by_clips[3]) == len(trials) // 2
  t = trials[0]
  assert t.name == (f"num_clips=3,lr={t.overrides['train.lr']:.6g},"
                    f"hidden={t.overrides['model.hidden']},steps={t.overrides['train.steps']},"
                    "seed=0")
  other = _config(grid=(), random=random, num_random=5, seeds=(0,))
  with other.unlocked():
    other.seed = 8
  assert [t.overrides for t in sweep.expand_trials(other)] != [
      {k: v for k, v in t.overrides.items() if k != "valence.num_clips"} for t in trials[:5]]


def test_expand_dedupes_choice_draws():
  c = _config(grid=(), random=(("model.hidden", "choice", (64,)),), num_random=4, seeds=(0,))
  assert [t.name for t in sweep.expand_trials(c)] == ["hidden=64,seed=0"]


@pytest.mark.parametrize("fields, match", [
    ({"grid": (("train.lrr", (1.0,)),)}, "train has no field 'lrr'"),
    ({"grid": (("nope.lr", (1.0,)),)}, "config has no field 'nope'"),
    ({"grid": (("train.steps", (0.5,)),)}, "'train.steps' = 0.5 does not fit"),
    ({"grid": (("train.lr", ()),)}, "grid\\[0\\]"),
    ({"random": (("train.lr", "loguniform", 0.0, 1.0),), "num_random": 2}, "random\\[0\\]"),
    ({"random": (("valence.lr", "uniform", 0.0, 1.0),)}, "num_random"),
    ({"random": (("train.lr", "uniform", 0.0, 1.0),), "num_random": 1}, "declared twice"),
    ({"random": (("train.lr", "normal", 0.0, 1.0),), "num_random": 1}, "random\\[0\\]"),
    ({"grid": (("seed", (1, 2)),)}, "config.sweep.seeds"),
])
def test_expand_rejects_bad_sweeps(fields, match):
  with pytest.raises(ConfigError, match=match):
    sweep.expand_trials(_config(**fields))


def test_apply_overrides_copies():
  c = _config()
  new = sweep.apply_overrides(c, {"train.lr": 0.5, "seed": 3, "model.name": "lstm"})
  assert (new.train.lr, new.seed, new.model.name) == (0.5, 3, "lstm")
  assert (c.train.lr, c.seed, c.model.name) == (1e-3, 7, "gru")
  assert new.is_locked
  frozen = ml_collections.FrozenConfigDict(c)
  got = sweep.apply_overrides(frozen, {"valence.num_clips": 6})
  assert isinstance(got, ml_collections.FrozenConfigDict) and got.valence.num_clips == 6
  with pytest.raises(ConfigError, match="'model.hidden.x'"):
    sweep.apply_overrides(c, {"model.hidden.x": 1})


def _tables(path) -> list[list[str]]:
  """The markdown tables of a results.md: each its header line then its rows (no rule line)."""
  tables, current = [], None
  for line in path.read_text().splitlines():
    if line.startswith("| rank"):
      current = [line]
      tables.append(current)
    elif line.startswith("| ") and current is not None:
      current.append(line)
    elif not line.startswith("|"):
      current = None
  return tables


def _read_csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_run_sweep_results_and_sorting(tmp_path):
  fake = FakeTrial()
  records = sweep.run_sweep(_config(), tmp_path, fake)
  assert fake.calls == 8 and len(records) == 8
  assert fake.dirs[0] == tmp_path / "sweep" / "trials" / "lr=0.001,num_clips=3,seed=0"
  done = json.loads((fake.dirs[3] / "trial_done.json").read_text())
  assert done["name"] == "lr=0.0003,num_clips=4,seed=0"
  assert done["overrides"] == {"train.lr": 3e-4, "valence.num_clips": 4, "seed": 0}
  assert done["metrics"]["validation/valence/pcc"] == pytest.approx(_score(3e-4, 4, 0))

  rows = _read_csv(tmp_path / "sweep" / "results.csv")
  assert [r["name"] for r in rows] == [r["name"] for r in records]
  assert list(rows[0]) == ["name", "setting", "seed", "overrides", "validation/valence/pcc",
                           "test/valence/pcc", "validation/valence/mse"]
  for r in rows:
    o = json.loads(r["overrides"])
    assert float(r["validation/valence/pcc"]) == pytest.approx(
        _score(o["train.lr"], o["valence.num_clips"], o["seed"]), abs=1e-12)
    assert int(r["seed"]) == o["seed"]

  table = _tables(tmp_path / "sweep" / "results.md")[0][1:]
  settings = [l.split(" | ")[1] for l in table]
  # Mean over seeds 0, 1 of the score: num_clips dominates, then the smaller lr.
  expected = sorted(
      [(lr, n) for lr in (1e-3, 3e-4) for n in (3, 4)],
      key=lambda s: -np.mean([_score(s[0], s[1], seed) for seed in (0, 1)]))
  assert settings == [f"lr={lr:g},num_clips={n}" for lr, n in expected]
  first = table[0].split(" | ")
  scores = [_score(3e-4, 4, seed) for seed in (0, 1)]
  assert first[2] == "0,1"
  assert first[3] == f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}"


def test_run_sweep_min_mode_sorts_ascending(tmp_path):
  c = _config(metric="validation/valence/mse", mode="min", seeds=(0,))
  sweep.run_sweep(c, tmp_path, FakeTrial())
  table = _tables(tmp_path / "sweep" / "results.md")[0][1:]
  mses = [float(l.split(" | ")[3].rstrip(" |")) for l in table]
  assert mses == sorted(mses) and len(mses) == 4
  assert "±" not in "".join(table)  # One seed: no std.


def test_run_sweep_skips_finished_trials_after_interruption(tmp_path, capsys):
  c = _config()
  fake = FakeTrial(fail_on=3)
  with pytest.raises(RuntimeError, match="killed"):
    sweep.run_sweep(c, tmp_path, fake)
  assert len(_read_csv(tmp_path / "sweep" / "results.csv")) == 2  # Partial results kept.
  fake2 = FakeTrial()
  records = sweep.run_sweep(c, tmp_path, fake2)
  assert fake2.calls == 6 and len(records) == 8
  out = capsys.readouterr().out
  assert "trial 1/8 lr=0.001,num_clips=3,seed=0: finished before, skipped" in out
  assert "trial 3/8 lr=0.0003,num_clips=3,seed=0: running" in out
  fake3 = FakeTrial()
  again = sweep.run_sweep(c, tmp_path, fake3)
  assert fake3.calls == 0
  assert [r["metrics"] for r in again] == [r["metrics"] for r in records]
  assert len(_read_csv(tmp_path / "sweep" / "results.csv")) == 8


def test_run_sweep_nan_sorts_last_and_metric_must_exist(tmp_path):
  def run_trial(config, trial_dir):
    v = math.nan if config.valence.num_clips == 4 else config.train.lr
    return {"validation/valence/pcc": v}
  sweep.run_sweep(_config(seeds=(0,)), tmp_path / "a", run_trial)
  table = _tables(tmp_path / "a" / "sweep" / "results.md")[0][1:]
  assert [l.split(" | ")[1] for l in table] == [
      "lr=0.001,num_clips=3", "lr=0.0003,num_clips=3", "lr=0.001,num_clips=4",
      "lr=0.0003,num_clips=4"]
  assert table[-1].endswith("| nan |")
  done = json.loads((tmp_path / "a" / "sweep" / "trials" / "lr=0.001,num_clips=4,seed=0" /
                     "trial_done.json").read_text())
  assert done["metrics"]["validation/valence/pcc"] is None

  fake = FakeTrial()
  with pytest.raises(ConfigError, match="'validation/arousal/pcc' is not among"):
    sweep.run_sweep(_config(metric="validation/arousal/pcc"), tmp_path / "b", fake)
  assert fake.calls == 1


def test_run_sweep_rejects_changed_trial(tmp_path):
  sweep.run_sweep(_config(seeds=(0,)), tmp_path, FakeTrial())
  path = tmp_path / "sweep" / "trials" / "lr=0.001,num_clips=3,seed=0" / "trial_done.json"
  record = json.loads(path.read_text())
  record["overrides"]["train.lr"] = 0.5
  path.write_text(json.dumps(record))
  with pytest.raises(ConfigError, match="fresh workdir"):
    sweep.run_sweep(_config(seeds=(0,)), tmp_path, FakeTrial())


class ManyMetrics:
  """Every metric of two targets and a variant on validation and test, as evaluate returns them."""
  NAMES = ("mse", "rmse", "mae", "pcc", "ccc", "film_mse", "film_pcc", "film_ccc")

  def __call__(self, config, trial_dir):
    s = _score(config.train.lr, config.valence.num_clips, config.seed)
    out = {}
    for split, shift in (("validation", 0.0), ("test", 0.5)):
      for t, k in (("valence", 1.0), ("arousal", 2.0)):
        for i, n in enumerate(self.NAMES):
          out[f"{split}/{t}/{n}"] = k * s + i + shift
        out[f"{split}/{t}/M2_decision/pcc"] = -s
    return out


def test_results_md_shows_the_metric_a_few_columns_and_test_apart(tmp_path):
  sweep.run_sweep(_config(seeds=(0,)), tmp_path, ManyMetrics())
  path = tmp_path / "sweep" / "results.md"
  selection, test = _tables(path)
  cols = lambda t: [c.strip(" `|") for c in t[0].split(" | ")[3:]]
  # The metric first, then its per-film mean, mse, and the other target's same metric.
  assert cols(selection) == ["validation/valence/pcc", "validation/valence/film_pcc",
                             "validation/valence/mse", "validation/arousal/pcc"]
  assert cols(test) == ["test/valence/pcc", "test/valence/film_pcc", "test/valence/mse",
                        "test/arousal/pcc"]
  # Test rows follow the validation ranking, with the test values of each setting.
  order = [r.split(" | ")[1] for r in selection[1:]]
  assert [r.split(" | ")[1] for r in test[1:]] == order
  by_setting = {f"lr={lr:g},num_clips={n}": _score(lr, n, 0) for lr in (1e-3, 3e-4)
                for n in (3, 4)}
  assert order == sorted(by_setting, key=lambda k: -by_setting[k])
  assert test[1].split(" | ")[3] == f"{by_setting[order[0]] + 3 + 0.5:.4f}"   # pcc is index 3
  text = path.read_text()
  n_metrics = 2 * 2 * (len(ManyMetrics.NAMES) + 1)
  assert f"{n_metrics - 8} more metrics of every trial: results.csv." in text
  assert len(_read_csv(tmp_path / "sweep" / "results.csv")[0]) == 4 + n_metrics

  # Columns of one's own (a test column goes to the test table, never beside the metric).
  c = _config(seeds=(0,), columns=("validation/arousal/ccc", "test/valence/ccc"))
  sweep.run_sweep(c, tmp_path / "b", ManyMetrics())
  selection, test = _tables(tmp_path / "b" / "sweep" / "results.md")
  assert cols(selection) == ["validation/valence/pcc", "validation/arousal/ccc"]
  assert cols(test) == ["test/valence/pcc", "test/arousal/ccc", "test/valence/ccc"]

  with pytest.raises(ConfigError, match=r"config.sweep.columns \['validation/valence/cc'\] are "
                     "not among the metrics"):
    sweep.run_sweep(_config(seeds=(0,), columns=("validation/valence/cc",)), tmp_path / "c",
                    ManyMetrics())


def test_default_columns_of_a_classification_metric():
  keys = {"validation/arousal/accuracy", "validation/arousal/f1", "validation/arousal/film_accuracy",
          "validation/valence/accuracy", "test/arousal/accuracy"}
  assert sweep.default_columns("validation/arousal/accuracy", keys) == [
      "validation/arousal/film_accuracy", "validation/valence/accuracy"]
  assert sweep.default_columns("validation/arousal/film_accuracy", keys) == [
      "validation/arousal/accuracy"]
  assert sweep.default_columns("loss", keys) == []
