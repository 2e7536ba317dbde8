"""Seed 001's last step (001 Sec. 3): after selection on the validation films, the model is trained
afresh on the entire development set (train + validation) for the selected number of steps."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from configs import gru_moe as gru_moe_config
from emojax import contract, errors
from emojax.models import gru_moe

DIMS = {"scene": 5, "audio": 3, "expression": 4}


def _config(arg="runlocal", **train):
  c = gru_moe_config.get_config(arg)
  with c.unlocked():
    c.model.hidden = 4
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
    for k, v in train.items():
      c.train[k] = v
  return c


def test_paper_default_retrains_on_the_development_set():
  assert gru_moe_config.get_config("").train.retrain_on_dev is True
  assert gru_moe_config.get_config("mediaeval2018").train.retrain_on_dev is True


@pytest.mark.parametrize("arg,want", [
    ("runlocal", ("train", "validation")),
    ("mediaeval2018", ("train", "validation")),
])
def test_retrain_phase_trains_on_train_and_validation_for_the_selected_steps(arg, want):
  c = _config(arg)
  first = gru_moe.plan(c, [])
  assert first.name == "gru_moe" and first.train_splits == ()   # selection: the training split
  done = [{"name": "gru_moe", "best_step": 7, "steps": 10}]
  phase = gru_moe.plan(c, done)
  assert phase.name == "gru_moe_dev"
  assert phase.train_splits == want == (c.dataset.splits.train, c.dataset.splits.validation)
  assert (phase.steps, phase.epochs, phase.eval_every, phase.patience) == (7, 0.0, 0, 0)
  assert phase.window == first.window == {"num_clips": c.model.window_seconds, "loss_on": "last",
                                          "sliding_seconds": c.model.window_seconds}
  assert gru_moe.plan(c, done + [{"name": "gru_moe_dev", "best_step": 7}]) is None


def test_without_validation_split_the_development_set_is_the_training_split():
  c = _config()
  with c.unlocked():
    c.dataset.splits.validation = ""
  assert gru_moe.plan(c, [{"name": "gru_moe", "best_step": 3}]).train_splits == ("train",)


def test_retraining_off_ends_after_selection():
  c = _config(retrain_on_dev=False)
  assert gru_moe.plan(c, [{"name": "gru_moe", "best_step": 7}]) is None


def test_a_phase_on_named_splits_refuses_early_stopping():
  with pytest.raises(errors.ConfigError, match="patience"):
    contract.Phase("p", contract.Task(("valence",)), None, patience=2, train_splits=["train"])
  assert contract.Phase("p", contract.Task(("valence",)), None,
                        train_splits=["a", "b"]).train_splits == ("a", "b")


def test_the_retrain_phase_restarts_from_the_initial_weights():
  import types  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  c = _config()
  model = gru_moe.create(c, DIMS, nnx.Rngs(c.seed))
  want = jax.tree.map(np.asarray, nnx.state(model))
  # "Training" moves every variable (weights and BatchNorm statistics).
  nnx.update(model, jax.tree.map(lambda v: v + 1.0, nnx.state(model)))
  phase = gru_moe.plan(c, [{"name": "gru_moe", "best_step": 2}])
  assert phase.fresh and phase.setup is None
  # What the harness does before a fresh phase's first step (train.Trainer.restart).
  train.Trainer.restart(types.SimpleNamespace(method=gru_moe, config=c, feature_dims=DIMS,
                                              model=model))
  got = jax.tree.map(np.asarray, nnx.state(model))
  jax.tree.map(np.testing.assert_array_equal, got, want)
  # An independent expectation: the first GRU layer's input weights as nnx.Rngs(seed) draws them.
  fresh = gru_moe.GruMoe(c, DIMS, rngs=nnx.Rngs(c.seed))
  np.testing.assert_array_equal(np.asarray(model.encoder.stacks["scene"][0].w_ih[...]),
                                np.asarray(fresh.encoder.stacks["scene"][0].w_ih[...]))


def test_the_retrain_phase_trains_on_the_films_of_train_and_validation(tmp_path, monkeypatch):
  """Through the harness on the toy films: selection ("gru_moe") reads the training films only,
  "gru_moe_dev" the training and validation films, for the selected number of steps; the run
  evaluates the retrained model."""
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  from conftest import toy_data_dir  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  c = _config()
  with c.unlocked():
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(toy_data_dir())
    c.inputs.streams = ("audio", "expression")
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.model.window_seconds = 4
    c.train.steps = 4
    c.train.eval_every_steps = 2
    c.checkpoint.every_steps = 2
    c.log.every_steps = 2
  # The films of each split as tests/toy_dataset.py generates them (6 train, 2 validation).
  train_films = {f"film{i:03d}" for i in range(6)}
  validation_films = {"film100", "film101"}
  seen, stores = {}, {}
  batches = train.Trainer._batches

  def spy(self, phase, start):
    store = stores[phase.name] = self.train_store(phase)
    for b in batches(self, phase, start):
      seen.setdefault(phase.name, set()).update(
          store.film_ids[i] for i in np.asarray(b["film_index"]))
      yield b

  monkeypatch.setattr(train.Trainer, "_batches", spy)
  flat = train.train_and_evaluate(c, tmp_path / "run")
  run = tmp_path / "run"
  records = {r["name"]: r for r in json.loads((run / "phases.json").read_text())}
  assert list(records) == ["gru_moe", "gru_moe_dev"]
  assert records["gru_moe_dev"]["best_step"] == records["gru_moe"]["best_step"]
  assert seen["gru_moe"] <= train_films
  assert seen["gru_moe_dev"] <= train_films | validation_films
  assert seen["gru_moe_dev"] & validation_films and seen["gru_moe_dev"] & train_films
  # One epoch of the retrain store's batches visits every film of both splits, each once.
  dev = stores["gru_moe_dev"]
  assert sorted(dev.film_ids) == sorted(train_films | validation_films)
  n = dev.examples_per_epoch(window={"num_clips": 4}, clip_seconds=1, stride=1)
  it = dev.train_batches(window={"num_clips": 4}, clip_seconds=1, batch_size=8, seed=0)
  films = {dev.film_ids[i] for _ in range(n // 8) for i in np.asarray(next(it)["film_index"])}
  assert films == train_films | validation_films
  for split in ("validation", "test"):
    m = json.loads((run / "eval" / split / "metrics.json").read_text())
    for t in c.targets:
      assert np.isfinite(m[t]["mse"]) and np.isfinite(flat[f"{split}/{t}/mse"])


def test_a_held_out_validation_returns_to_the_development_set(tmp_path):
  """Without a validation split, selection holds some training films out; the retrain phase
  (train_splits = the training split) trains on all of them, held-out films included."""
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  from conftest import toy_data_dir  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  c = _config()
  with c.unlocked():
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(toy_data_dir())
    c.dataset.splits.validation = ""
    c.inputs.streams = ("audio", "expression")
  trainer = train.Trainer(c, tmp_path / "run")
  assert trainer.holdout and set(trainer.stores["train"].film_ids).isdisjoint(trainer.holdout)
  phase = gru_moe.plan(c, [{"name": "gru_moe", "best_step": 3}])
  assert sorted(trainer.train_store(phase).film_ids) == [f"film{i:03d}" for i in range(6)]
  assert trainer.train_store(gru_moe.plan(c, [])) is trainer.stores["train"]
