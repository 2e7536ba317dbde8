"""Seed 001's last step (001 Sec. 3): after selection on the validation films, the model is trained
afresh on the entire development set (train + validation) for the selected number of steps."""

import dataclasses
import logging

import jax
import numpy as np
import pytest
from flax import nnx

from configs import gru_moe as gru_moe_config
from emojax import contract
from emojax.models import gru_moe

DIMS = {"scene": 5, "audio": 3, "expression": 4}


@dataclasses.dataclass
class PhaseWithSplits(contract.Phase):
  """A contract whose phases name their training splits (what the retraining needs)."""
  train_splits: tuple = ()


def _config(arg="runlocal", **train):
  c = gru_moe_config.get_config(arg)
  with c.unlocked():
    c.model.hidden = 4
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
def test_retrain_phase_trains_on_train_and_validation_for_the_selected_steps(monkeypatch, arg,
                                                                              want):
  monkeypatch.setattr(contract, "Phase", PhaseWithSplits)
  c = _config(arg)
  first = gru_moe.plan(c, [])
  assert first.name == "gru_moe" and first.train_splits == ()   # selection: the training split
  done = [{"name": "gru_moe", "best_step": 7, "steps": 10}]
  phase = gru_moe.plan(c, done)
  assert phase.name == "gru_moe_dev"
  assert phase.train_splits == want == (c.dataset.splits.train, c.dataset.splits.validation)
  assert (phase.steps, phase.epochs, phase.eval_every, phase.patience) == (7, 0.0, 0, 0)
  assert (phase.loss_on, phase.num_clips) == ("last", c.model.window_seconds)
  assert gru_moe.plan(c, done + [{"name": "gru_moe_dev", "best_step": 7}]) is None


def test_without_validation_split_the_development_set_is_the_training_split(monkeypatch):
  monkeypatch.setattr(contract, "Phase", PhaseWithSplits)
  c = _config()
  with c.unlocked():
    c.dataset.splits.validation = ""
  assert gru_moe.plan(c, [{"name": "gru_moe", "best_step": 3}]).train_splits == ("train",)


def test_retraining_off_ends_after_selection(monkeypatch):
  monkeypatch.setattr(contract, "Phase", PhaseWithSplits)
  c = _config(retrain_on_dev=False)
  assert gru_moe.plan(c, [{"name": "gru_moe", "best_step": 7}]) is None


def test_a_contract_without_train_splits_skips_the_phase_with_a_warning(caplog):
  assert "train_splits" not in {f.name for f in dataclasses.fields(contract.Phase)}
  with caplog.at_level(logging.WARNING):
    assert gru_moe.plan(_config(), [{"name": "gru_moe", "best_step": 7}]) is None
  assert "retrain_on_dev" in caplog.text and "train_splits" in caplog.text


def test_setup_restarts_from_fresh_weights(monkeypatch):
  monkeypatch.setattr(contract, "Phase", PhaseWithSplits)
  c = _config()
  model = gru_moe.create(c, DIMS, nnx.Rngs(c.seed))
  want = jax.tree.map(np.asarray, nnx.state(model))
  # "Training" moves every variable (weights and BatchNorm statistics).
  nnx.update(model, jax.tree.map(lambda v: v + 1.0, nnx.state(model)))
  phase = gru_moe.plan(c, [{"name": "gru_moe", "best_step": 2}])
  phase.setup(model)
  got = jax.tree.map(np.asarray, nnx.state(model))
  jax.tree.map(np.testing.assert_array_equal, got, want)
  # An independent expectation: the first GRU layer's input weights as nnx.Rngs(seed) draws them.
  fresh = gru_moe.GruMoe(c, DIMS, rngs=nnx.Rngs(c.seed))
  np.testing.assert_array_equal(np.asarray(model.encoder.stacks["scene"][0].w_ih[...]),
                                np.asarray(fresh.encoder.stacks["scene"][0].w_ih[...]))
