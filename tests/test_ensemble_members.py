"""Ensembles of member runs through main.py (config.train.ensemble_members): each member trains in
<workdir>/members/<i>/, and the run's evaluated predictions are the mean of the members' own."""

import copy
import csv
import json

import jax
import numpy as np
import pytest
from flax import nnx

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
       "--config.train.eval_every_steps=2", "--config.train.retrain_on_dev=False",
       "--config.eval.plots=False"]   # no test reads the evaluation plots


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


def test_k_members_retrain_on_the_development_set_each_as_its_own_run(tmp_path):
  """seed 001's default phases with config.train.ensemble: selection, then retraining on train +
  validation ("gru_moe_dev", a `fresh` phase). Member i's retrained model equals member i
  retrained alone: from its own initial weights (`ensemble.member_key(seed, i)`), for its own
  selected number of steps, by the single-member step with its dropout keys, on the phase's
  batches."""
  from emojax import checkpoint, contract, ensemble, train  # pylint: disable=import-outside-toplevel
  from emojax.models import gru_moe  # pylint: disable=import-outside-toplevel
  config = _toy_config(retrain_on_dev=True, ensemble=2, steps=4)
  # The K-member run evaluated with the config's default smoothing (Butterworth): the mean of
  # the members' smoothed predictions (the filter is linear), checked at the end.
  config.eval.postprocess = "butterworth"
  run = tmp_path / "run"
  train.train_and_evaluate(config, run)
  records = json.loads((run / "phases.json").read_text())
  assert [r["name"] for r in records] == ["gru_moe", "gru_moe_dev"]
  ends = records[0]["member_best_steps"]
  assert records[1]["member_steps"] == records[1]["member_best_steps"] == ends
  assert len(set(ends)) > 1, ends   # members of different lengths in one jit
  one = copy.deepcopy(config)
  one.train.ensemble = 1
  trainer = train.Trainer(one, tmp_path / "alone")
  cfg, dims = trainer.config, trainer.feature_dims
  for i in range(2):
    phase = gru_moe.plan(cfg, members.member_records(records[:1], i))
    assert (phase.name, phase.steps, phase.fresh) == ("gru_moe_dev", ends[i], True)
    model = gru_moe.create(cfg, dims, nnx.Rngs(ensemble.member_key(int(cfg.seed), i)))
    model.train()
    graphdef, p, m, f = nnx.split(model, phase.trainable, contract.MUTABLE, ...)
    spec = dict(phase.optimizer)
    steps, per_epoch = trainer._duration(phase)  # pylint: disable=protected-access
    tx = contract.make_optimizer(spec, steps=steps,
                                 steps_per_epoch=max(1, per_epoch // cfg.data.batch_size))
    step = jax.jit(ensemble.make_member_step(graphdef, phase.forward, phase.task, tx,
                                             float(spec["l2"])))
    o = tx.init(p)
    batches = trainer._batches(phase, 0)  # pylint: disable=protected-access
    for s in range(ends[i]):
      key = jax.random.fold_in(train.step_key(int(cfg.seed), phase.name, s), i)
      p, m, o, _ = step(p, m, f, o, next(batches), key)
    saved = gru_moe.create(cfg, dims, nnx.Rngs(0))
    checkpoint.restore_model(run / "members" / str(i) / "final_model", saved)
    want = jax.tree.leaves(nnx.state(nnx.merge(graphdef, p, m, f)))
    got = jax.tree.leaves(nnx.state(saved))
    assert len(got) == len(want)
    for a, b in zip(got, want):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  _check_mean_of_members(run, 2)


def test_k_members_fit_a_closed_form_phase_each_alone(tmp_path):
  """The ridge baseline's closed-form phases (`Phase.fit`) with config.train.ensemble = 2: each
  member is fitted alone; its weights are the closed form in NumPy (standardised features,
  (Z'Z + aI)^-1 Z'(y - mean), alpha by validation MSE) and the run's mean equals them."""
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  from conftest import ridge_toy_config  # pylint: disable=import-outside-toplevel
  from emojax import checkpoint, train  # pylint: disable=import-outside-toplevel
  from emojax.models import ridge as ridge_method  # pylint: disable=import-outside-toplevel
  c = ridge_toy_config()
  with c.unlocked():
    c.train.ensemble = 2
  run = tmp_path / "run"
  train.train_and_evaluate(c, run)
  records = json.loads((run / "phases.json").read_text())
  assert [(r["name"], r["members"], r["closed_form"]) for r in records] == [
      ("valence/ridge", 2, True), ("arousal/ridge", 2, True)]
  one = copy.deepcopy(c)
  one.train.ensemble = 1
  trainer = train.Trainer(one, tmp_path / "alone")
  tr, va = trainer.stores["train"], trainer.stores["validation"]
  mods = c.per_target.valence.inputs.streams

  def rows(store):
    return np.concatenate([np.concatenate([store.streams[m][i] for m in mods], -1)
                           for i in range(len(store.film_ids))]).astype(np.float64)
  x, xv = rows(tr), rows(va)
  y, yv = np.concatenate(tr.labels["valence"]), np.concatenate(va.labels["valence"])
  z, zv = (x - x.mean(0)) / (x.std(0) + 1e-8), (xv - x.mean(0)) / (x.std(0) + 1e-8)
  fits = []
  for a in c.model.alphas:
    w = np.linalg.solve(z.T @ z + a * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    fits.append((np.mean((np.clip(zv @ w + y.mean(), -1, 1) - yv) ** 2), a, w))
  _, alpha, w = min(fits, key=lambda f: f[0])
  for i in range(2):
    model = ridge_method.create(one, trainer.feature_dims, nnx.Rngs(0))
    checkpoint.restore_model(run / "members" / str(i) / "final_model", model)
    np.testing.assert_allclose(np.asarray(model.heads["valence"].w[...]), w, rtol=2e-4, atol=1e-6)
    assert float(model.heads["valence"].alpha[...]) == alpha
  for film in sorted((run / "eval" / "test" / "predictions").glob("*.csv")):
    got = _read(film)
    own = _read(run / "members" / "0" / "eval" / "test" / "predictions" / film.name)
    np.testing.assert_allclose(got["valence_pred"], own["valence_pred"], atol=1e-6)


@pytest.mark.parametrize("spec,fragment", [("model.nope=1", "config.model.nope"),
                                           ("dropout", "key=value"),
                                           ("model.hidden='big'", "config.model.hidden")])
def test_a_bad_member_override_names_the_key(spec, fragment):
  from configs import gru_moe as gru_moe_config  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.ConfigError, match=fragment):
    members.member_config(gru_moe_config.get_config("runlocal"), spec)


def _toy_config(**train):
  """gru_moe on the toy films (as TOY above), in-process; Butterworth off so that the evaluated
  validation predictions are the ones validation scored."""
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  from configs import gru_moe as gru_moe_config  # pylint: disable=import-outside-toplevel
  c = gru_moe_config.get_config("runlocal")
  c.dataset.update(dict(name="emojax_toy_films", import_module="toy_dataset", config="",
                        data_dir=str(toy_data_dir())))
  c.inputs.streams = ("audio", "expression")
  c.model.update(dict(hidden=4, window_seconds=3))
  c.data.update(dict(batch_size=8, eval_batch_size=8))
  c.eval.postprocess = "none"
  c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
  c.checkpoint.every_steps = 2
  c.train.update(dict(steps=6, eval_every_steps=1, retrain_on_dev=False, ensemble=3))
  c.train.update(train)
  return c


def _pooled_pcc(run, split="validation"):
  """The mean over targets of the pooled PCC of a run's written predictions (NumPy)."""
  rows = [_read(p) for p in sorted((run / "eval" / split / "predictions").glob("*.csv"))]
  return np.mean([np.corrcoef(np.concatenate([r[f"{t}_true"] for r in rows]),
                              np.concatenate([r[f"{t}_pred"] for r in rows]))[0, 1]
                  for t in ("valence", "arousal")])


def test_each_member_keeps_its_own_best_step_and_a_killed_run_resumes_to_the_same(
    tmp_path, monkeypatch):
  from emojax import train  # pylint: disable=import-outside-toplevel
  config = _toy_config()
  whole = tmp_path / "whole"
  train.train_and_evaluate(config, whole)
  # K members in one jit (config.train.ensemble = 3): one phase, trained and saved per member.
  records = json.loads((whole / "phases.json").read_text())
  assert [(r["name"], r["members"], len(r["final_loss"])) for r in records] == [("gru_moe", 3, 3)]
  assert len(records[0]["member_best_steps"]) == 3
  assert all((whole / "members" / str(i) / "final_model").is_dir() for i in range(3))
  rec = records[0]
  history = rec["validation_history"]
  assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6]
  for i in range(3):
    scores = [h["pcc"][i] for h in history]
    first_best = history[int(np.nanargmax(scores))]["step"]   # the first of equal bests
    assert rec["member_best_steps"][i] == first_best, (i, scores, rec["member_best_steps"])
    # Member i's saved model is its best step's: its evaluated validation predictions score what
    # validation recorded at that step, not the last step's score.
    np.testing.assert_allclose(_pooled_pcc(whole / "members" / str(i)),
                               scores[first_best - 1], atol=1e-4)
  assert len(set(rec["member_best_steps"])) > 1 or min(rec["member_best_steps"]) < 6, rec
  _check_mean_of_members(whole, 3)

  # Killed after step 5 (its last checkpoint: step 4), rerun: the same members as uninterrupted.
  class Killed(Exception):
    pass

  def kill_at_5(phase, step):
    del phase
    if step == 5:
      raise Killed
  killed = tmp_path / "killed"
  with monkeypatch.context() as m:
    m.setattr(train, "_fault_injection", kill_at_5)
    with pytest.raises(Killed):
      train.train_and_evaluate(config, killed)
  assert not (killed / "phases.json").exists()
  train.train_and_evaluate(config, killed)
  b = json.loads((killed / "phases.json").read_text())[0]
  for key in ("member_best_steps", "member_best_pcc", "validation_history", "final_loss"):
    assert rec[key] == b[key], key
  for i in range(3):
    for film in sorted((whole / "members" / str(i) / "eval" / "test" / "predictions").glob("*")):
      got = _read(killed / "members" / str(i) / "eval" / "test" / "predictions" / film.name)
      want = _read(film)
      for col in want:
        np.testing.assert_allclose(got[col], want[col], atol=1e-6, err_msg=f"{i} {film} {col}")
