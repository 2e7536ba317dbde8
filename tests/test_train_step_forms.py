"""emojax/train.py's step forms (`step_form`): which form the size rule picks, and what each lever
changes: single-threaded Eigen nothing (bit-for-bit the same losses and parameters), the flat
optimizer update only the rounding of the update, RngBitGenerator keys the dropout masks (another
stream, the same for the same seed and step); the Trainer records the form per phase."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emojax import contract, train
from tests import stateful_method

TREE = dict(eigen=True, rbg=False, flat=False)


def _batch(seed):
  rng = np.random.default_rng(seed)
  return {"x": {"audio": jnp.asarray(rng.normal(0, 1, (4, 2, 5, 3)), jnp.float32),
                "action": jnp.asarray(rng.normal(0, 1, (4, 2, 5, 2)), jnp.float32)},
          "x_mask": {m: jnp.ones((4, 2, 5), bool) for m in ("audio", "action")},
          "clip_mask": jnp.ones((4, 2), bool),
          "y": {"arousal": jnp.asarray(rng.uniform(-1, 1, (4, 2)), jnp.float32)}}


@functools.lru_cache(maxsize=None)   # one compile per (rate, form): the tests share the runs
def _run(rate, steps, form):
  return _train_once(rate, steps, **dict(form))


def _train(rate, steps=3, **form):
  return _run(rate, steps, tuple(sorted(form.items())))


def _train_once(rate, steps=3, **form):
  """Losses and final params of `steps` Adam steps of the stateful test net in a given form."""
  model = stateful_method.Net(5, 8, rate, rngs=nnx.Rngs(0))
  model.train()
  graphdef, params, mutable, frozen = nnx.split(model, nnx.Param, contract.MUTABLE, ...)
  tx = optax.adam(1e-2)
  step = train.build_train_step(graphdef, stateful_method._forward, contract.Task(("arousal",)),
                                tx, 1e-3, **form)
  opt, losses = tx.init(params), []
  for s in range(steps):
    params, mutable, opt, loss = step(params, mutable, frozen, opt, _batch(s),
                                      train.step_key(0, "arousal/x", s))
    losses.append(float(loss))
  return np.array(losses), np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])


def test_the_size_rule_picks_the_small_form_for_small_models_only():
  small = {"w": jax.ShapeDtypeStruct((100, 100), jnp.float32)}
  big = {"w": jax.ShapeDtypeStruct((2000, 1000), jnp.float32)}
  assert train.step_form(small) == {"eigen": False, "rbg": True, "flat": True, "params": 10_000}
  assert train.step_form(big) == {"eigen": True, "rbg": False, "flat": False,
                                  "params": 2_000_000}
  mixed = {"w": small["w"], "b": jax.ShapeDtypeStruct((3,), jnp.bfloat16)}
  assert train.step_form(mixed)["flat"] is False       # one flat vector needs one dtype
  assert train.step_form(small, rbg=False)["rbg"] is False


def test_single_threaded_eigen_changes_nothing_bit_for_bit():
  loss_a, p_a = _train(0.5, **TREE)
  loss_b, p_b = _train(0.5, **dict(TREE, eigen=False))
  np.testing.assert_array_equal(loss_a, loss_b)
  np.testing.assert_array_equal(p_a, p_b)


def test_the_flat_update_is_the_same_update_up_to_rounding():
  loss_a, p_a = _train(0.5, **TREE)
  loss_b, p_b = _train(0.5, **dict(TREE, flat=True))
  np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)
  # Adam divides by sqrt(v): where a gradient is near zero, a last-bit difference in it moves the
  # normalised update by a visible share of the step (lr = 1e-2); seen under the tests' XLA
  # optimisation level (tests/README.md): 3 of 73 elements off by up to 7e-5. A wrong flat update
  # (moments or parameters unravelled in another order) is off by about lr almost everywhere.
  np.testing.assert_allclose(p_b, p_a, rtol=0, atol=1e-4)   # 1 % of one step (lr)
  assert np.mean(~np.isclose(p_b, p_a, rtol=1e-5, atol=1e-7)) < 0.1
  assert np.abs(p_b - _train(0.5, steps=0, **TREE)[1]).max() > 1e-3   # the params did move


def test_rbg_keys_change_the_dropout_stream_and_repeat_it_for_the_same_seed():
  rbg = dict(TREE, rbg=True)
  a, b = _train_once(0.5, **rbg), _train(0.5, **rbg)      # two builds of the same form
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.allclose(a[0], _train(0.5, **TREE)[0])       # other masks
  np.testing.assert_array_equal(_train(0.0, **rbg)[0], _train(0.0, **TREE)[0])   # no dropout
