"""BiLSTM against a NumPy reference written from the LSTM equations (torch.nn.LSTM conventions)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emojax.nn import layers


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _torch_style_weights(model: layers.BiLSTM) -> list[dict[str, np.ndarray]]:
  """The documented mapping to torch's weight_ih_l{n}{_reverse} etc. (float64)."""
  out = []
  for layer in model.layers:
    p = {}
    for k, suffix in ((0, ''), (1, '_reverse')):
      p['weight_ih' + suffix] = np.asarray(layer.w_ih[...][:, k, :], np.float64).T
      p['weight_hh' + suffix] = np.asarray(layer.w_hh[...][k], np.float64).T
      p['bias_ih' + suffix] = np.asarray(layer.b_ih[...][k], np.float64)
      p['bias_hh' + suffix] = np.asarray(layer.b_hh[...][k], np.float64)
    out.append(p)
  return out


def _ref_direction(x_TxD, w_ih, w_hh, b_ih, b_hh):
  """One LSTM direction over a whole (unpadded) sequence, from zero state."""
  hidden = w_hh.shape[1]
  h = np.zeros(hidden)
  c = np.zeros(hidden)
  hs = []
  for x in x_TxD:
    z = w_ih @ x + b_ih + w_hh @ h + b_hh
    i, f, g, o = z[:hidden], z[hidden:2 * hidden], z[2 * hidden:3 * hidden], z[3 * hidden:]
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    hs.append(h)
  return np.stack(hs), h


def _ref_bilstm(weights, x_TxD):
  """Stacked bidirectional LSTM of one unpadded sequence: (y_Tx2H, h_2H of the last layer)."""
  y = np.asarray(x_TxD, np.float64)
  for p in weights:
    yf, hf = _ref_direction(y, p['weight_ih'], p['weight_hh'], p['bias_ih'], p['bias_hh'])
    yb, hb = _ref_direction(y[::-1], p['weight_ih_reverse'], p['weight_hh_reverse'],
                            p['bias_ih_reverse'], p['bias_hh_reverse'])
    y = np.concatenate([yf, yb[::-1]], axis=-1)
  return y, np.concatenate([hf, hb])


@functools.partial(jax.jit, static_argnums=0)
def _apply(graphdef, state, *args):
  return nnx.merge(graphdef, state)(*args)


def _call(module, *args):
  """module(*args), jitted (eager calls of unrolled scans are slow to dispatch)."""
  return _apply(*nnx.split(module), *args)


def _model(d=5, hidden=6, num_layers=2, seed=0, unroll=1):
  # unroll=1 compiles twice as fast; the default unroll is covered where it says unroll=None.
  return layers.BiLSTM(d, hidden, num_layers, rngs=nnx.Rngs(seed), unroll=unroll)


def _mask(lengths, t):
  return np.arange(t)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize('num_layers', [1, 3])
def test_matches_reference_without_mask(num_layers):
  model = _model(num_layers=num_layers, unroll=None)
  x = np.random.default_rng(1).normal(size=(3, 7, 5)).astype(np.float32)
  y, h = _call(model, jnp.asarray(x))
  assert y.shape == (3, 7, 12) and h.shape == (3, 12)
  weights = _torch_style_weights(model)
  for b in range(3):
    y_ref, h_ref = _ref_bilstm(weights, x[b])
    np.testing.assert_allclose(y[b], y_ref, atol=2e-5)
    np.testing.assert_allclose(h[b], h_ref, atol=2e-5)
  # The final state is the forward state at the last step and the backward state at step 0.
  np.testing.assert_allclose(h[:, :6], y[:, -1, :6], atol=1e-6)
  np.testing.assert_allclose(h[:, 6:], y[:, 0, 6:], atol=1e-6)


def test_masked_matches_reference_on_unpadded_sequences():
  model = _model(unroll=None)
  t, lengths = 6, [6, 4, 1, 4]
  x = np.random.default_rng(2).normal(size=(4, t, 5)).astype(np.float32)
  y, h = _call(model, jnp.asarray(x), jnp.asarray(_mask(lengths, t)))
  weights = _torch_style_weights(model)
  for b, n in enumerate(lengths):
    y_ref, h_ref = _ref_bilstm(weights, x[b, :n])
    np.testing.assert_allclose(y[b, :n], y_ref, atol=2e-5)
    np.testing.assert_allclose(h[b], h_ref, atol=2e-5)
    np.testing.assert_array_equal(y[b, n:], 0.0)
    # Same as running the layer itself on the shorter sequence alone.
    y_short, h_short = _call(model, jnp.asarray(x[b:b + 1, :n]))
    np.testing.assert_allclose(y[b, :n], y_short[0], atol=1e-5)
    np.testing.assert_allclose(h[b], h_short[0], atol=1e-5)


def test_padding_values_do_not_change_valid_outputs():
  model = _model()
  t, lengths = 6, [6, 2, 4]
  rng = np.random.default_rng(3)
  x = rng.normal(size=(3, t, 5)).astype(np.float32)
  mask = _mask(lengths, t)
  x_garbage = np.where(mask[..., None], x, rng.normal(size=x.shape) * 100).astype(np.float32)
  y1, h1 = _call(model, jnp.asarray(x), jnp.asarray(mask))
  y2, h2 = _call(model, jnp.asarray(x_garbage), jnp.asarray(mask))
  np.testing.assert_array_equal(y1, y2)
  np.testing.assert_array_equal(h1, h2)


def test_mask_with_holes_equals_cutting_the_steps_out():
  model = _model()
  x = np.random.default_rng(12).normal(size=(1, 6, 5)).astype(np.float32)
  keep = np.array([[True, False, True, True, False, True]])
  y, h = _call(model, jnp.asarray(x), jnp.asarray(keep))
  y_ref, h_ref = _ref_bilstm(_torch_style_weights(model), x[0, keep[0]])
  np.testing.assert_allclose(y[0, keep[0]], y_ref, atol=2e-5)
  np.testing.assert_allclose(h[0], h_ref, atol=2e-5)
  np.testing.assert_array_equal(y[0, ~keep[0]], 0.0)


def test_bad_shapes_raise():
  model = _multi()
  xs = _inputs()
  with pytest.raises(ValueError, match='mask_BxT has shape'):
    model(xs, jnp.ones((3, 5), bool))
  with pytest.raises(ValueError, match='one \\(B, T\\)'):
    model({'audio': xs['audio'], 'scene': xs['scene'][:, :4]})


def test_gradients_flow_and_ignore_padding():
  model = _model()
  t, lengths = 6, [6, 3]
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, t, 5)), jnp.float32)
  mask = jnp.asarray(_mask(lengths, t))

  def loss(model, x):
    y, h = model(x, mask)
    return jnp.sum(h**2) + jnp.sum(y**3)

  grads_model, grads_x = nnx.jit(nnx.grad(loss, argnums=(0, 1)))(model, x)
  for path, g in jax.tree_util.tree_leaves_with_path(nnx.state(grads_model)):
    assert np.all(np.isfinite(g)), path
    assert np.abs(g).max() > 0, path
  assert np.abs(grads_x[1, :3]).min(axis=-1).max() > 0
  np.testing.assert_array_equal(grads_x[1, 3:], 0.0)


def test_gradients_match_finite_differences():
  model = _model()
  x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 4, 5)), jnp.float32)
  mask = jnp.asarray(_mask([4, 2], 4))
  graphdef, state = nnx.split(model)
  leaves, treedef = jax.tree.flatten(state)

  @jax.jit
  def loss(leaves):
    y, h = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))(x, mask)
    return jnp.sum(jnp.sin(3 * h)) + jnp.sum(y[:, 1:3] ** 2)

  grads = jax.jit(jax.grad(loss))(leaves)
  rng = np.random.default_rng(9)
  for _ in range(2):
    v = [jnp.asarray(rng.normal(size=l.shape), jnp.float32) for l in leaves]
    eps = 1e-2
    plus = loss([l + eps * d for l, d in zip(leaves, v)])
    minus = loss([l - eps * d for l, d in zip(leaves, v)])
    directional = sum(float(jnp.vdot(g, d)) for g, d in zip(grads, v))
    np.testing.assert_allclose(directional, (plus - minus) / (2 * eps), rtol=1e-2, atol=1e-3)


def test_jit_equals_eager_and_vmap_equals_loop():
  model = _model()
  t = 5
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.normal(size=(2, 3, t, 5)), jnp.float32)
  mask = jnp.asarray(np.stack([_mask([5, 2, 4], t), _mask([1, 5, 3], t)]))
  graphdef, state = nnx.split(model)

  def apply(state, x, mask):
    return nnx.merge(graphdef, state)(x, mask)

  y_eager, h_eager = apply(state, x[0], mask[0])
  y_jit, h_jit = jax.jit(apply)(state, x[0], mask[0])
  np.testing.assert_allclose(y_jit, y_eager, atol=1e-6)
  np.testing.assert_allclose(h_jit, h_eager, atol=1e-6)
  y_vmap, h_vmap = jax.jit(jax.vmap(apply, in_axes=(None, 0, 0)))(state, x, mask)
  for i in range(2):
    y_i, h_i = apply(state, x[i], mask[i])
    np.testing.assert_allclose(y_vmap[i], y_i, atol=1e-5)
    np.testing.assert_allclose(h_vmap[i], h_i, atol=1e-5)


def test_sharded_batch_matches_unsharded():
  n = len(jax.devices())
  mesh = jax.make_mesh((n,), ('data',))
  batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  model = _model()
  x = jnp.asarray(np.random.default_rng(7).normal(size=(2 * n, 4, 5)), jnp.float32)
  mask = jnp.asarray(_mask([4, 1] * n, 4))
  graphdef, state = nnx.split(model)
  f = jax.jit(lambda s, x, m: nnx.merge(graphdef, s)(x, m))
  y, h = f(state, jax.device_put(x, batch), jax.device_put(mask, batch))
  y0, h0 = f(state, x, mask)
  np.testing.assert_allclose(y, y0, atol=1e-6)
  np.testing.assert_allclose(h, h0, atol=1e-6)
  assert h.sharding.is_equivalent_to(batch, h.ndim)


def test_initialisation_is_torch_uniform():
  hidden, d = 6, 5
  model = _model(d=d, hidden=hidden)
  values = np.concatenate([np.ravel(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))])
  bound = 1 / np.sqrt(hidden)
  assert values.min() >= -bound and values.max() <= bound
  assert values.min() < -0.95 * bound and values.max() > 0.95 * bound
  assert abs(values.mean()) < 0.03 and abs(values.std() - bound / np.sqrt(3)) < 0.02
  # torch.nn.LSTM(5, 6, 2, bidirectional=True) has this many parameters.
  n_torch = 2 * (4 * hidden * d + 4 * hidden * hidden + 8 * hidden) + 2 * (
      4 * hidden * 2 * hidden + 4 * hidden * hidden + 8 * hidden)
  assert values.size == n_torch


def test_matches_torch_lstm_when_installed():
  torch = pytest.importorskip('torch')
  model = _model(d=5, hidden=6, num_layers=2)
  lstm = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True).double()
  with torch.no_grad():
    for n, p in enumerate(_torch_style_weights(model)):
      for name, value in p.items():
        getattr(lstm, f'{name[:-8] if name.endswith("_reverse") else name}_l{n}'
                + ('_reverse' if name.endswith('_reverse') else '')).copy_(torch.from_numpy(value))
  x = np.random.default_rng(8).normal(size=(2, 6, 5))
  y_t, (h_t, _) = lstm(torch.from_numpy(x))
  y, h = _call(model, jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(y, y_t.detach().numpy(), atol=2e-5)
  # torch's h_n is (num_layers * 2, B, H); the last layer's forward and backward states.
  np.testing.assert_allclose(h, torch.cat([h_t[-2], h_t[-1]], -1).detach().numpy(), atol=2e-5)


def _assert_same_outputs_and_gradients(ours, oracle, loss, gates, w):
  """`ours` and its autodiff `oracle`: outputs within 1e-6, gradients of `loss(fn, gates, w)` with
  respect to (gates, w) within 1e-5; returns ours' gradients."""
  for a, b_ in zip(jax.jit(ours)(gates, w), jax.jit(oracle)(gates, w)):
    np.testing.assert_allclose(a, b_, atol=1e-6)
  g_ours = jax.jit(jax.grad(functools.partial(loss, ours), argnums=(0, 1)))(gates, w)
  g_oracle = jax.jit(jax.grad(functools.partial(loss, oracle), argnums=(0, 1)))(gates, w)
  for a, b_ in zip(g_ours, g_oracle):
    np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)
  return g_ours


def _autodiff_scan(gates_TxKxBx4H, w_KxHx4H, mask_TxB):
  """A plain JAX LSTM scan (autodiff gradients) from the equations, as an oracle for the VJP."""
  hidden = w_KxHx4H.shape[1]

  def step(carry, inputs):
    h, c = carry
    g, m = inputs
    z = g + jnp.einsum('kbh,khg->kbg', h, w_KxHx4H)
    i = jax.nn.sigmoid(z[..., :hidden])
    f = jax.nn.sigmoid(z[..., hidden:2 * hidden])
    gg = jnp.tanh(z[..., 2 * hidden:3 * hidden])
    o = jax.nn.sigmoid(z[..., 3 * hidden:])
    c_new = f * c + i * gg
    h_new = o * jnp.tanh(c_new)
    m = m[None, :, None]
    h_new = m * h_new + (1 - m) * h
    c_new = m * c_new + (1 - m) * c
    return (h_new, c_new), m * h_new

  zeros = jnp.zeros(gates_TxKxBx4H.shape[1:3] + (hidden,))
  (h_last, _), out = jax.lax.scan(step, (zeros, zeros), (gates_TxKxBx4H, mask_TxB))
  return out, h_last


@pytest.mark.parametrize('masked, unroll', [(False, 1), (True, None)])
def test_lstm_scan_gradient_matches_autodiff(masked, unroll):
  t, k, b, hidden = 7, 4, 3, 5
  rng = np.random.default_rng(10)
  gates = jnp.asarray(rng.normal(size=(t, k, b, 4 * hidden)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, hidden, 4 * hidden)) * 0.5, jnp.float32)
  mask = _mask([7, 4, 1], t).T if masked else np.ones((t, b), bool)
  cot_out = jnp.asarray(rng.normal(size=(t, k, b, hidden)), jnp.float32)
  cot_h = jnp.asarray(rng.normal(size=(k, b, hidden)), jnp.float32)

  def loss(scan, gates, w):
    out, h_last = scan(gates, w)
    return jnp.sum(out * cot_out) + jnp.sum(h_last * cot_h)

  ours = lambda g, w: layers.lstm_scan(g, w, jnp.asarray(mask) if masked else None, unroll)
  oracle = lambda g, w: _autodiff_scan(g, w, jnp.asarray(mask, jnp.float32))
  g_ours = _assert_same_outputs_and_gradients(ours, oracle, loss, gates, w)
  if masked:  # nothing flows into the gates of padded steps
    np.testing.assert_array_equal(np.asarray(g_ours[0]).transpose(0, 2, 1, 3)[~mask], 0.0)


DIMS = {'audio': 5, 'scene': 3, 'expression': 5}  # shapes shared with _model(): fewer compiles


def _multi(seed=0, unroll=1):
  return layers.MultiBiLSTM(DIMS, 6, 2, rngs=nnx.Rngs(seed), unroll=unroll)


def _inputs(t=6, b=3, seed=11):
  rng = np.random.default_rng(seed)
  return {m: jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32) for m, d in DIMS.items()}


def test_multi_matches_reference():
  model = _multi()
  xs = _inputs()
  lengths = [6, 2, 5]
  joint = _call(model, xs, jnp.asarray(_mask(lengths, 6)))
  assert set(joint) == set(DIMS)
  for m in DIMS:
    weights = _torch_style_weights(model.lstms[m])
    for b, n in enumerate(lengths):
      y_ref, h_ref = _ref_bilstm(weights, np.asarray(xs[m][b, :n]))
      np.testing.assert_allclose(joint[m][0][b, :n], y_ref, atol=2e-5)
      np.testing.assert_allclose(joint[m][1][b], h_ref, atol=2e-5)
      np.testing.assert_array_equal(joint[m][0][b, n:], 0.0)


def test_multi_subset_and_unknown_modality():
  model = _multi()
  xs = _inputs()
  sub = _call(model, {'scene': xs['scene']})
  assert list(sub) == ['scene']
  np.testing.assert_allclose(sub['scene'][1], _call(model, xs)['scene'][1], atol=1e-6)
  with pytest.raises(KeyError, match='faces'):
    model({'faces': xs['scene']})


def test_multi_gradients_equal_separate_and_jit_vmap():
  model = _multi()
  xs = _inputs()
  mask = jnp.asarray(_mask([6, 3, 1], 6))
  graphdef, params = nnx.split(model)

  def joint_loss(params):
    out = nnx.merge(graphdef, params)(xs, mask)
    return sum(jnp.sum(jnp.sin(h)) + jnp.sum(y**2) for y, h in out.values())

  def separate_loss(params):
    model = nnx.merge(graphdef, params)
    return sum(jnp.sum(jnp.sin(h)) + jnp.sum(y**2)
               for y, h in (model.lstms[m](xs[m], mask) for m in DIMS))

  g_joint = jax.jit(jax.grad(joint_loss))(params)
  g_sep = jax.jit(jax.grad(separate_loss))(params)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(g_joint), jax.tree.leaves(g_sep)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(path))
    assert np.abs(a).max() > 0, path
  # vmap over an extra leading axis.
  xs2 = {m: jnp.stack([x, x[::-1]]) for m, x in xs.items()}
  mask2 = jnp.stack([mask, mask[::-1]])
  apply = lambda x, m: {k: h for k, (_, h) in nnx.merge(graphdef, params)(x, m).items()}
  h_vmap = jax.jit(jax.vmap(apply))(xs2, mask2)
  for i in range(2):
    h_i = jax.jit(apply)({m: x[i] for m, x in xs2.items()}, mask2[i])
    for m in DIMS:
      np.testing.assert_allclose(h_vmap[m][i], h_i[m], atol=1e-5)


def _autodiff_bilstm_layer(gates_BxTx8H, w_2xHx4H, mask_BxT):
  """One bidirectional LSTM layer from precomputed gates, plain JAX in Python loops (autodiff
  gradients), from the equations: the oracle for `bilstm_unrolled`'s hand-written VJP."""
  b, t, h8 = gates_BxTx8H.shape
  hidden = h8 // 8
  outs, finals = [], []
  for d in (0, 1):
    h = c = jnp.zeros((b, hidden))
    ys = [None] * t
    for s in (range(t) if d == 0 else reversed(range(t))):
      z = gates_BxTx8H[:, s, 4 * hidden * d:4 * hidden * (d + 1)] + h @ w_2xHx4H[d]
      i = jax.nn.sigmoid(z[:, :hidden])
      f = jax.nn.sigmoid(z[:, hidden:2 * hidden])
      g = jnp.tanh(z[:, 2 * hidden:3 * hidden])
      o = jax.nn.sigmoid(z[:, 3 * hidden:])
      m = mask_BxT[:, s, None].astype(jnp.float32)
      c = m * (f * c + i * g) + (1 - m) * c
      h = m * (o * jnp.tanh(c)) + (1 - m) * h
      ys[s] = m * h
    outs.append(jnp.stack(ys))
    finals.append(h)
  return jnp.concatenate(outs, axis=-1), jnp.stack(finals)


@pytest.mark.parametrize('masked, batch_major', [(True, True), (False, False)])
def test_bilstm_unrolled_matches_autodiff(masked, batch_major):
  b, t, hidden = 3, 4, 4
  rng = np.random.default_rng(13)
  gates = jnp.asarray(rng.normal(size=(b, t, 8 * hidden)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(2, hidden, 4 * hidden)) * 0.5, jnp.float32)
  mask = _mask([4, 2, 1], t) if masked else np.ones((b, t), bool)
  cot_y = jnp.asarray(rng.normal(size=(t, b, 2 * hidden)), jnp.float32)
  cot_h = jnp.asarray(rng.normal(size=(2, b, hidden)), jnp.float32)

  def ours(g, w):
    ys, h = layers.bilstm_unrolled([g if batch_major else jnp.swapaxes(g, 0, 1)], w,
                                   jnp.asarray(mask) if masked else None, batch_major)
    return ys[0], h

  oracle = lambda g, w: _autodiff_bilstm_layer(g, w, jnp.asarray(mask))

  def loss(fn, g, w):
    y, h = fn(g, w)
    return jnp.sum(y * cot_y) + jnp.sum(h * cot_h)

  g_ours = _assert_same_outputs_and_gradients(ours, oracle, loss, gates, w)
  if masked:  # nothing flows into the gates of padded steps
    np.testing.assert_array_equal(np.asarray(g_ours[0])[~mask], 0.0)


def test_unrolled_and_scan_forms_agree():
  """The straight-line form (every step unrolled, MultiBiLSTM's three stacks in one pass) and the
  scan form give the same outputs and gradients."""
  xs = _inputs()
  mask = jnp.asarray(_mask([6, 3, 1], 6))
  graphdef, params = nnx.split(_multi(unroll=None))
  scan_graphdef = nnx.split(_multi(unroll=1))[0]

  def loss(graphdef, params):
    out = nnx.merge(graphdef, params)(xs, mask)
    return sum(jnp.sum(jnp.sin(h)) + jnp.sum(y ** 2) for y, h in out.values())

  l1, g1 = jax.jit(jax.value_and_grad(functools.partial(loss, graphdef)))(params)
  l2, g2 = jax.jit(jax.value_and_grad(functools.partial(loss, scan_graphdef)))(params)
  np.testing.assert_allclose(l1, l2, rtol=1e-6)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(path))
    assert np.abs(a).max() > 0, path
