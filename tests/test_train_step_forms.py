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


def _net_step(rate, **form):
  """The stateful test net split for training, Adam, and the harness step in a given form."""
  model = stateful_method.Net(5, 8, rate, rngs=nnx.Rngs(0))
  model.train()
  graphdef, params, mutable, frozen = nnx.split(model, nnx.Param, contract.MUTABLE, ...)
  tx = optax.adam(1e-2)
  step = train.build_train_step(graphdef, stateful_method._forward, contract.Task(("arousal",)),
                                tx, 1e-3, **form)
  return params, mutable, frozen, tx, step


def _train_once(rate, steps=3, **form):
  """Losses and final params of `steps` Adam steps of the stateful test net in a given form."""
  params, mutable, frozen, tx, step = _net_step(rate, **form)
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


def _loop(rate, steps, form, trees_at=1):
  """`steps` steps as the Trainer's loop takes them (TrainStep.start / advance / trees); the
  trees read after step `trees_at` must stay readable after later steps (no donated aliases)."""
  params, mutable, frozen, tx, step = _net_step(rate, **form)
  carry = step.start(params, mutable, tx.init(params))
  losses, early = [], None
  for s in range(steps):
    carry, loss = step.advance(carry, frozen, _batch(s), train.phase_key(0, "arousal/x"), s)
    losses.append(float(loss))
    if s + 1 == trees_at:
      early = step.trees(carry)
  params, mutable, opt = step.trees(carry)
  flat = lambda t: np.concatenate([np.ravel(v) for v in jax.tree.leaves(t)])  # noqa: E731
  assert np.all(np.isfinite(flat(early)))   # still readable
  return np.array(losses), flat(params), flat(mutable), flat(opt)


def test_the_trainers_loop_is_the_tree_step_in_every_form():
  """start / advance / trees (the carry in the form's layout, the step key folded in the jit)
  give the losses and parameters of the tree step called with `step_key` keys."""
  for form in (TREE, dict(eigen=False, rbg=True, flat=True)):
    losses, p, _, _ = _loop(0.5, 3, form)
    want_losses, want_p = _train(0.5, **form)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
    np.testing.assert_allclose(p, want_p, rtol=0, atol=1e-4)   # as the flat update's rounding
    assert np.mean(~np.isclose(p, want_p, rtol=1e-5, atol=1e-7)) < 0.1


def test_the_phase_key_folds_into_the_step_key():
  a = jax.random.key_data(train.step_key(3, "valence/x", 17))
  b = jax.random.key_data(jax.random.fold_in(train.phase_key(3, "valence/x"), np.uint32(17)))
  np.testing.assert_array_equal(a, b)


def test_the_small_forms_unrolled_threefry_draws_the_same_bits_without_a_loop():
  """jit_step lowers threefry unrolled in the small form: the masks of JAX's own (rolled)
  lowering, and no XLA while loop left in the program."""
  def masks(key):
    k = jax.random.fold_in(key, 3)
    return jax.random.bernoulli(k, 0.3, (4, 37)), jax.random.uniform(jax.random.split(k)[1], (5,))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(jnp.arange(3))
  small = train.step_form({"w": jnp.zeros(3)})
  fast, ref = train.jit_step(jax.vmap(masks), small), jax.jit(jax.vmap(masks))
  for a, b in zip(fast(keys), ref(keys)):
    np.testing.assert_array_equal(a, b)
  assert " while(" in ref.lower(keys).compile().as_text()
  assert " while(" not in fast.lower(keys).compile().as_text()
  bigger = train.step_form({"w": jax.ShapeDtypeStruct((train.UNROLLED_THREEFRY_PARAMS,),
                                                      jnp.float32)})
  assert not bigger["eigen"]    # still the small form, but threefry stays rolled
  assert " while(" in train.jit_step(jax.vmap(masks), bigger).lower(keys).compile().as_text()
