"""Unidirectional GRU / LSTM stacks (layers.MultiRecurrent) against NumPy references written from
the torch.nn.GRU / torch.nn.LSTM equations, and the hand-written GRU gradient against autodiff of an
independent plain-JAX GRU."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax.nn import layers

B, T, H = 3, 7, 5
DIMS = {"a": 4, "b": 6}


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _ref_gru(x_TxD, w_ih, w_hh, b_ih, b_hh):
  """torch.nn.GRU's equations, one layer, from zero state (w_* in the (in, 3H) layout)."""
  h = np.zeros(w_hh.shape[0])
  hs = []
  n_h = w_hh.shape[0]
  for x in x_TxD:
    gi, gh = x @ w_ih + b_ih, h @ w_hh + b_hh
    r = _sigmoid(gi[:n_h] + gh[:n_h])
    z = _sigmoid(gi[n_h:2 * n_h] + gh[n_h:2 * n_h])
    n = np.tanh(gi[2 * n_h:] + r * gh[2 * n_h:])
    h = (1 - z) * n + z * h
    hs.append(h)
  return np.stack(hs), h


def _ref_lstm(x_TxD, w_ih, w_hh, b_ih, b_hh):
  n_h = w_hh.shape[0]
  h, c, hs = np.zeros(n_h), np.zeros(n_h), []
  for x in x_TxD:
    g = x @ w_ih + b_ih + h @ w_hh + b_hh
    i, f, gg, o = (g[k * n_h:(k + 1) * n_h] for k in range(4))
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(gg)
    h = _sigmoid(o) * np.tanh(c)
    hs.append(h)
  return np.stack(hs), h


def _ref_stack(cell, layers_, x_TxD):
  ref = _ref_gru if cell == "gru" else _ref_lstm
  y = np.asarray(x_TxD, np.float64)
  for layer in layers_:
    p = [np.asarray(v[...], np.float64) for v in (layer.w_ih, layer.w_hh, layer.b_ih, layer.b_hh)]
    y, h = ref(y, *p)
  return y, h


@functools.partial(jax.jit, static_argnums=0)
def _apply(graphdef, state, xs, mask):
  return nnx.merge(graphdef, state)(xs, mask)


@functools.lru_cache(maxsize=None)
def _model(cell):
  return nnx.split(layers.MultiRecurrent(DIMS, H, 2, cell, rngs=nnx.Rngs(0)))


def _inputs():
  rng = np.random.default_rng(0)
  xs = {m: rng.normal(size=(B, T, d)).astype(np.float32) for m, d in DIMS.items()}
  # Row 0 full, row 1 left-padded by 3 (a window at a film start), row 2 right-padded by 2.
  mask = np.ones((B, T), bool)
  mask[1, :3] = False
  mask[2, T - 2:] = False
  return xs, mask


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_matches_numpy_reference_with_left_and_right_padding(cell):
  graphdef, state = _model(cell)
  model = nnx.merge(graphdef, state)
  xs, mask = _inputs()
  out = _apply(graphdef, state, xs, mask)
  for m in DIMS:
    y, h = (np.asarray(v) for v in out[m])
    for b in range(B):
      valid = np.flatnonzero(mask[b])
      y_ref, h_ref = _ref_stack(cell, model.stacks[m], xs[m][b, valid])
      np.testing.assert_allclose(y[b, valid], y_ref, atol=2e-5)
      np.testing.assert_allclose(h[b], h_ref, atol=2e-5)
      np.testing.assert_array_equal(y[b, ~mask[b]], 0.0)


def _plain_gru_loss(gates_TxKxBx3H, w_KxHx3H, b_hn_KxH, mask_TxKxB, dout_TxKxBxH, dh_KxBxH):
  """An independent GRU recurrence differentiated by JAX's autodiff (no custom VJP)."""
  def step(hp, inp):
    hn, (out, _) = _plain_gru_step(hp, inp, w_KxHx3H, b_hn_KxH)
    return hn, out

  k, b, h = w_KxHx3H.shape[0], gates_TxKxBx3H.shape[2], w_KxHx3H.shape[1]
  h_last, out = jax.lax.scan(step, jnp.zeros((k, b, h)), (gates_TxKxBx3H, mask_TxKxB))
  return jnp.sum(out * dout_TxKxBxH) + jnp.sum(h_last * dh_KxBxH)


@pytest.mark.parametrize("masked,unroll", [(False, None), (True, None), (True, 3), (False, 7)])
def test_gru_custom_vjp_matches_autodiff(masked, unroll):
  rng = np.random.default_rng(1)
  k = 2
  gates = jnp.asarray(rng.normal(size=(T, k, B, 3 * H)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, H, 3 * H)) * 0.4, jnp.float32)
  b_hn = jnp.asarray(rng.normal(size=(k, H)), jnp.float32)
  mask = rng.random((T, k, B)) > 0.3 if masked else np.ones((T, k, B), bool)
  dout = jnp.asarray(rng.normal(size=(T, k, B, H)), jnp.float32)
  dh = jnp.asarray(rng.normal(size=(k, B, H)), jnp.float32)

  def custom(g, w_, b_):
    outs, h_last = layers.gru_scan_streams([g[:, i] for i in range(k)], w_, b_,
                                           mask if masked else None, unroll)
    return jnp.sum(jnp.stack(outs, axis=1) * dout) + jnp.sum(h_last * dh)

  got = jax.grad(custom, argnums=(0, 1, 2))(gates, w, b_hn)
  want = jax.grad(_plain_gru_loss, argnums=(0, 1, 2))(gates, w, b_hn, jnp.asarray(mask), dout, dh)
  for g_, w_ in zip(got, want):
    np.testing.assert_allclose(np.asarray(g_), np.asarray(w_), rtol=1e-4, atol=1e-5)


def _plain_stack_outputs(params, xs, mask_BxT):
  """Plain-JAX GRU stacks (no custom VJP, batch-major einsums) from a MultiRecurrent's params."""
  outs = {}
  for m, x in xs.items():
    y = jnp.swapaxes(jnp.asarray(x), 0, 1)                        # (T, B, D)
    for layer in params["stacks"][m].values():
      w_ih, w_hh, b_ih, b_hh = (layer[k][...] for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
      h = w_hh.shape[0]
      gates = (jnp.einsum('tbd,dg->tbg', y, w_ih) + b_ih
               + jnp.concatenate([b_hh[:2 * h], jnp.zeros(h)]))
      mask_T1B = jnp.asarray(mask_BxT).T[:, None]
      _, (y, h_last) = jax.lax.scan(
          lambda hp, inp: _plain_gru_step(hp, inp, w_hh[None], b_hh[None, 2 * h:]),
          jnp.zeros((1, B, h)), (gates[:, None], mask_T1B))
      y, h_last = y[:, 0], h_last[-1, 0]
    outs[m] = (y, h_last)
  return outs


def _plain_gru_step(hp, inp, w_KxHx3H, b_hn_KxH):
  """One step of K plain GRUs from torch.nn.GRU's equations: (h', (output, h'))."""
  g, m = inp
  h = w_KxHx3H.shape[1]
  a = jnp.einsum('kbh,khg->kbg', hp, w_KxHx3H)
  r = jax.nn.sigmoid(g[..., :h] + a[..., :h])
  z = jax.nn.sigmoid(g[..., h:2 * h] + a[..., h:2 * h])
  n = jnp.tanh(g[..., 2 * h:] + r * (a[..., 2 * h:] + b_hn_KxH[:, None]))
  hn = jnp.where(m[..., None], (1 - z) * n + z * hp, hp)
  return hn, (jnp.where(m[..., None], hn, 0.0), hn)


def test_gru_stack_gradients_match_plain_autodiff():
  """The whole layer path (batch-major input projection, the K streams' scan with its custom
  VJP, time-major outputs as gru_moe's head reads them) against autodiff of plain-JAX GRU stacks
  (the batch-major outputs: test_matches_numpy_reference_with_left_and_right_padding)."""
  time_major = True
  graphdef, state = _model("gru")
  params = nnx.state(nnx.merge(graphdef, state), nnx.Param)
  xs, mask = _inputs()
  rng = np.random.default_rng(3)
  dys = {m: jnp.asarray(rng.normal(size=(T, B, H)), jnp.float32) for m in DIMS}
  dhs = {m: jnp.asarray(rng.normal(size=(B, H)), jnp.float32) for m in DIMS}

  def ours(p):
    out = nnx.merge(graphdef, p)(xs, mask, time_major=time_major)
    ys = {m: out[m][0] if time_major else jnp.swapaxes(out[m][0], 0, 1) for m in DIMS}
    return sum(jnp.sum(ys[m] * dys[m]) + jnp.sum(out[m][1] * dhs[m]) for m in DIMS)

  def plain(p):
    out = _plain_stack_outputs(p, xs, mask)
    return sum(jnp.sum(out[m][0] * dys[m]) + jnp.sum(out[m][1] * dhs[m]) for m in DIMS)

  (loss, got), (loss_want, want) = (jax.jit(jax.value_and_grad(f))(p)
                                    for f, p in ((ours, state), (plain, params)))
  np.testing.assert_allclose(loss, loss_want, rtol=1e-5)
  for (path, g), (_, w) in zip(jax.tree_util.tree_leaves_with_path(got),
                               jax.tree_util.tree_leaves_with_path(want)):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5,
                               err_msg=str(path))


def test_time_major_projection_of_batch_major_input_matches_numpy():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(B, T, 6)).astype(np.float32)
  w = rng.normal(size=(6, 9)).astype(np.float32)
  b = rng.normal(size=(9,)).astype(np.float32)
  want = np.einsum('btd,dg->tbg', x.astype(np.float64), w.astype(np.float64)) + b
  for batch_major, x_in in ((True, x), (False, np.swapaxes(x, 0, 1))):
    got = layers.time_major_projection(jnp.asarray(x_in), jnp.asarray(w), jnp.asarray(b),
                                       batch_major)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_time_major_projection_gradients_match_numpy():
  """The hand-written VJP (dW as (dY^T X)^T, the input in its own layout) against the matmul
  gradients written out in NumPy: dW = X^T dY, db = sum dY, dX = dY W^T, for both layouts."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(B, T, 6)).astype(np.float32)
  w = rng.normal(size=(6, 9)).astype(np.float32)
  b = rng.normal(size=(9,)).astype(np.float32)
  dy_TxBxG = rng.normal(size=(T, B, 9)).astype(np.float32)   # cotangent of the (T, B, G) output
  x64, dy64 = x.astype(np.float64), dy_TxBxG.astype(np.float64)
  want_dw = np.einsum('btd,tbg->dg', x64, dy64)
  want_db = dy64.sum(axis=(0, 1))
  want_dx_BxTxD = np.einsum('tbg,dg->btd', dy64, w.astype(np.float64))
  for batch_major, x_in, want_dx in ((True, x, want_dx_BxTxD),
                                     (False, np.swapaxes(x, 0, 1),
                                      np.swapaxes(want_dx_BxTxD, 0, 1))):
    def f(x_, w_, b_, batch_major=batch_major):
      return jnp.sum(layers.time_major_projection(x_, w_, b_, batch_major) * dy_TxBxG)
    dx, dw, db = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(jnp.asarray(x_in), jnp.asarray(w),
                                                          jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(dw), want_dw, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(db), want_db, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dx), want_dx, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t,unroll", [(10, 10), (16, 16), (60, 6), (64, 8), (21, 7), (17, 8),
                                      (45, 5)])
def test_default_unroll_divides_long_sequences(t, unroll):
  """Short sequences unroll fully; long ones by the largest divisor of T in [4, 8], else 8."""
  assert layers._default_unroll(t) == unroll   # pylint: disable=protected-access


def test_unknown_cell_is_refused():
  with pytest.raises(ValueError, match="unknown recurrent cell"):
    layers.MultiRecurrent(DIMS, H, 1, "rnn", rngs=nnx.Rngs(0))


def test_hand_written_gradients_run_on_the_trainers_one_device_batch():
  """The Trainer types every batch as sharded over its mesh's "data" axis (`shard_batch`), of size
  1 on one device: the hand-written projection VJP must still be the one that runs there (it
  was silently replaced by autodiff's slower form on that typing), with the NumPy gradients."""
  rng = np.random.default_rng(6)
  x = rng.normal(size=(B, T, 6)).astype(np.float32)
  w = rng.normal(size=(6, 9)).astype(np.float32)
  b = rng.normal(size=(9,)).astype(np.float32)
  dy_TxBxG = rng.normal(size=(T, B, 9)).astype(np.float32)
  x64, dy64 = x.astype(np.float64), dy_TxBxG.astype(np.float64)
  mesh = jax.make_mesh((1,), ('data',), devices=jax.devices()[:1])
  on_mesh = jax.device_put(jnp.asarray(x), jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec('data')))
  assert 'data' in str(jax.typeof(on_mesh))   # typed as sharded, as the Trainer's batches

  def f(x_, w_, b_):
    return jnp.sum(layers.time_major_projection(x_, w_, b_, True) * dy_TxBxG)

  assert 'custom_vjp_call' in str(jax.make_jaxpr(f)(on_mesh, w, b))
  dx, dw, db = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(on_mesh, jnp.asarray(w), jnp.asarray(b))
  np.testing.assert_allclose(np.asarray(dw), np.einsum('btd,tbg->dg', x64, dy64), rtol=1e-5,
                             atol=1e-4)
  np.testing.assert_allclose(np.asarray(db), dy64.sum(axis=(0, 1)), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(dx), np.einsum('tbg,dg->btd', dy64, w.astype(np.float64)),
                             rtol=1e-5, atol=1e-5)
  assert 'data' in str(jax.typeof(dx))   # the input's gradient keeps the input's typing
