"""A small per-clip 3-class classifier (uint8 frames + encoded key frame + a float vector), for
testing the contract's per-clip data path. `config.method = "tests.clip_method"`.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from emojax import contract


class Net(nnx.Module):
  def __init__(self, audio_dim: int, hidden: int, *, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(audio_dim + 2, hidden, rngs=rngs)
    self.bn = nnx.BatchNorm(hidden, rngs=rngs)
    self.drop = nnx.Dropout(0.2)
    self.fc2 = nnx.Linear(hidden, 3, rngs=rngs)

  def __call__(self, batch, rngs):
    frames = batch["x"]["frames"].astype(jnp.float32) / 255.0       # uint8 (B, 2, 12, 12, 3)
    key = batch["x"]["keyframe"].astype(jnp.float32) / 255.0        # decoded PNG (B, 12, 12, 3)
    x = jnp.concatenate([batch["x"]["audio"], frames.mean((1, 2, 3, 4))[:, None],
                         key.mean((1, 2, 3))[:, None]], -1)
    h = self.drop(jax.nn.relu(self.bn(self.fc1(x))), rngs=rngs)
    return self.fc2(h)


def _forward(model, batch, rngs):
  return model(batch, rngs)


def task(config):
  return contract.Task(("valence",), kind="classification", num_classes=3, unit="clip",
                       loss="softmax_ce", best_metric=config.checkpoint.best_metric,
                       best_mode=config.checkpoint.best_mode)


def modalities(config):
  del config
  return ("frames", "keyframe", "audio")


def create(config, feature_dims, rngs):
  return Net(feature_dims["audio"][0], config.model.hidden, rngs=rngs)


def plan(config, done):
  if done:
    return None
  return contract.Phase("valence/classifier", task(config), _forward, epochs=config.train.epochs,
                        eval_every_epochs=1.0, optimizer=contract.optimizer_spec(config.optim))


def outputs(config):
  return {"valence": contract.Output(_forward, task(config))}


def get_config(arg=None):
  del arg
  from configs import common  # pylint: disable=import-outside-toplevel
  c = common.base_config("tests.clip_method")
  c.targets = ("valence",)
  c.dataset.name = "emojax_toy_clips"
  c.dataset.import_module = "toy_clips"
  c.dataset.config = ""
  c.dataset.splits.validation = ""
  c.data.batch_size = 8
  c.data.eval_batch_size = 8
  c.data.holdout_fraction = 0.25
  c.model = ml_collections.ConfigDict(dict(hidden=16))
  c.train.epochs = 12.0
  c.optim.name = "sgd"
  c.optim.learning_rate = 0.2
  c.checkpoint.best_metric = "accuracy"
  c.checkpoint.every_steps = 5
  c.log.every_steps = 10
  c.lock()
  return c
