"""Every argument combination of configs/video_convnets.py takes a training step.

The harness loads the labels of `method.task(config)`'s targets and then runs each phase of
`method.plan`; a phase that reads a target the task did not name ended in `KeyError: 'arousal'`
(issue 22: the default `runlocal`, both targets). Every combination of the config's words
(network x target x liris x adam x runlocal, 144) plans its phases against the labels the harness
would load and builds each phase's optimizer; the default of each network, and combinations of
the other words on the default network (STEPPED), take one step of each of its phases on a batch holding exactly
those labels. Cheap: the networks are shrunk to the runlocal sizes and built abstractly
(`nnx.eval_shape`), and the harness's step (`contract.step_fn`: forward, loss, gradients,
optimizer update) is traced with `jax.eval_shape`: every key and shape is checked, nothing is
initialised or compiled. The networks' numerics are tests/test_video_convnets.py's.
"""

import itertools

import jax
import numpy as np
import pytest
from flax import nnx

from configs import video_convnets as cfg_lib
from emojax import contract
from emojax.models import video_convnets as vcn

WORDS = [("",) + tuple(vcn.ARCHS), ("", "valence", "arousal"), ("", "liris"), ("", "adam"),
         ("", "runlocal")]
COMBOS = sorted({",".join(w for w in combo if w) for combo in itertools.product(*WORDS)})
# The default (`runlocal`: both targets) of each network, and the other words on the default one.
STEPPED = [f"{a},runlocal" for a in vcn.ARCHS] + [
    "runlocal", "valence,runlocal", "arousal,liris", "liris,adam,runlocal", "valence,adam"]


def _config(arg: str):
  config = cfg_lib.get_config(arg or None)
  with config.unlocked():  # one small shape per network, whatever the arguments
    config.model.update(crop=32, width=0.125, depth=0.5, num_frames=8, conv_lowering="gemm",
                        autotune=False, dropout=0.2)
  return config


@pytest.mark.parametrize("arg", COMBOS)
def test_each_config_argument_combination_plans_phases_the_harness_can_feed(arg):
  config = _config(arg)
  task = vcn.task(config)               # the harness loads these labels (input_pipeline)
  contract.check_task(task)
  loaded = {task.label_key(t) for t in task.targets}
  done = []
  while (phase := vcn.plan(config, done)) is not None:
    contract.check_task(phase.task)
    assert {phase.task.label_key(t) for t in phase.task.targets} <= loaded, (arg, phase.name)
    contract.make_optimizer(phase.optimizer, steps=10, steps_per_epoch=5)
    done.append({"name": phase.name})
  assert [r["name"].split("/")[0] for r in done] == list(config.targets)
  assert set(vcn.outputs(config)) == set(config.targets) == set(task.targets)


def _step_every_phase(arg: str) -> list[str]:
  config = _config(arg)
  task = vcn.task(config)
  shape = vcn.example_shape(config)
  stream = vcn.modalities(config)[0]
  rng = np.random.default_rng(0)
  center, half = config.model.label_center, config.model.label_half_range
  batch = {"x": {stream: rng.integers(0, 256, (2,) + shape).astype(np.uint8)},
           "y": {task.label_key(t): (center + half * rng.uniform(-1, 1, 2)).astype(np.float32)
                 for t in task.targets},   # what input_pipeline loads: the task's labels only
           "clip_mask": np.ones(2, bool)}
  model = nnx.eval_shape(lambda: vcn.create(config, {stream: shape}, nnx.Rngs(0)))
  done, ran = [], []
  while (phase := vcn.plan(config, done)) is not None:
    graphdef, params, mutable, frozen = nnx.split(model, phase.trainable, contract.MUTABLE, ...)
    tx = contract.make_optimizer(phase.optimizer, steps=10, steps_per_epoch=5)
    step = contract.step_fn(graphdef, phase.forward, phase.task, tx)
    opt_state = jax.eval_shape(tx.init, params)
    new_params, _, _, loss = jax.eval_shape(step, params, mutable, frozen, opt_state, batch,
                                            jax.random.key(0))
    assert loss.shape == () and loss.dtype == np.float32, (arg, phase.name, loss)
    assert jax.tree.structure(new_params) == jax.tree.structure(params)
    ran.append(phase.name)
    done.append({"name": phase.name})
  return ran


@pytest.mark.parametrize("arg", STEPPED)
def test_a_step_of_each_phase(arg):
  config = cfg_lib.get_config(arg or None)
  ran = _step_every_phase(arg)
  assert [name.split("/")[0] for name in ran] == list(config.targets)
