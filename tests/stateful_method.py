"""A small method with BatchNorm and dropout, for testing the contract's stateful layers.

Used as `config.method = "tests.stateful_method"` (the dotted-name route of
`contract.get_method`), and as a config file: `--config=tests/stateful_method.py`.
Per clip: the mean of each modality's valid seconds -> Linear -> BatchNorm -> ReLU -> Dropout ->
Linear -> tanh.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from emojax import contract

MODALITIES = ("audio", "action")


class Net(nnx.Module):
  def __init__(self, in_features: int, hidden: int, rate: float, *, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(in_features, hidden, rngs=rngs)
    self.bn = nnx.BatchNorm(hidden, momentum=0.8, rngs=rngs)
    self.drop = nnx.Dropout(rate)
    self.fc2 = nnx.Linear(hidden, 1, rngs=rngs)

  def __call__(self, batch: dict, rngs) -> jax.Array:
    mask_BxLxS = batch["x_mask"][MODALITIES[0]].astype(jnp.float32)
    feats = []
    for m in MODALITIES:
      x_BxLxSxD = batch["x"][m]
      feats.append((x_BxLxSxD * mask_BxLxS[..., None]).sum(2)
                   / jnp.maximum(mask_BxLxS.sum(2), 1)[..., None])
    x_BxLxF = jnp.concatenate(feats, -1)
    b, l, f = x_BxLxF.shape
    h = self.fc1(x_BxLxF.reshape(b * l, f))
    h = self.bn(h, mask=batch["clip_mask"].reshape(b * l, 1))
    h = self.drop(jax.nn.relu(h), rngs=rngs)
    return jnp.tanh(self.fc2(h))[:, 0].reshape(b, l)


def _forward(model, batch, rngs):
  return model(batch, rngs)


def task(config):
  return contract.Task(tuple(config.targets), loss="mse", best_metric=config.checkpoint.best_metric,
                       best_mode=config.checkpoint.best_mode)


def modalities(config):
  del config
  return MODALITIES


def create(config, feature_dims, rngs):
  return Net(sum(feature_dims[m] for m in MODALITIES), config.model.hidden, config.model.dropout,
             rngs=rngs)


def plan(config, done):
  if done:
    return None
  return contract.Phase(f"{config.targets[0]}/all", task(config), _forward,
                        steps=config.train.steps, eval_every=config.train.eval_every_steps,
                        patience=config.train.patience,
                        optimizer=contract.optimizer_spec(config.optim))


def outputs(config):
  return {t: contract.Output(_forward, task(config)) for t in config.targets}


def get_config(arg=None):
  del arg
  from configs import common  # pylint: disable=import-outside-toplevel
  c = common.base_config("tests.stateful_method")
  c.targets = ("arousal",)
  c.dataset.name = "emojax_toy_films"
  c.dataset.import_module = "toy_dataset"
  c.dataset.config = ""
  c.data.clip_seconds = 5
  c.data.batch_size = 8
  c.data.eval_batch_size = 8
  c.model = ml_collections.ConfigDict(dict(hidden=8, dropout=0.5))
  c.train.steps = 8
  c.train.eval_every_steps = 2
  c.checkpoint.every_steps = 2
  c.log.every_steps = 4
  c.lock()
  return c
