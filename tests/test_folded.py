"""emojax/nn/folded.py: the feature-major Linear, alone and under vmap over members (the folded
block-diagonal GEMMs), against NumPy (float64) values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emojax.nn import folded


def _numpy(w, b, x, g):
  """y = w^T x + b over axis 0 of x (I, T, N); gradients of sum(y * g)."""
  w, b, x, g = (np.asarray(a, np.float64) for a in (w, b, x, g))
  y = np.tensordot(w, x, axes=([0], [0])) + b[:, None, None]
  dw = np.tensordot(x, g, axes=([1, 2], [1, 2]))
  db = g.sum(axis=(1, 2))
  dx = np.tensordot(w, g, axes=([1], [0]))
  return y, dw, db, dx


def _data(k, i, o, seed=0):
  rng = np.random.default_rng(seed)
  f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
  return f(k, i, o), f(k, o), f(k, i, 5, 3), f(k, o, 5, 3)


def _value_and_grads(w, b, x, g):
  loss = lambda w, b, x: jnp.sum(folded.linear_fm(w, b, x) * g)  # noqa: E731
  return folded.linear_fm(w, b, x), *jax.grad(loss, argnums=(0, 1, 2))(w, b, x)


@pytest.mark.parametrize("k,i,o", [(4, 8, 24), (3, 8, 8), (2, 200, 4)])
def test_members_equal_numpy_and_each_member_alone(k, i, o):
  """Under vmap (folded where K * width <= FOLD_MAX_WIDTH, the batched dot otherwise: the last
  case) every member's value and gradients are NumPy's and its own unbatched call's."""
  w, b, x, g = _data(k, i, o)
  got = jax.jit(jax.vmap(_value_and_grads))(w, b, x, g)
  for m in range(k):
    want = _numpy(w[m], b[m], x[m], g[m])
    alone = jax.jit(_value_and_grads)(w[m], b[m], x[m], g[m])
    for a, s, n in zip(got, alone, want):
      np.testing.assert_allclose(np.asarray(a[m]), n, rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(np.asarray(a[m]), np.asarray(s), rtol=1e-5, atol=1e-6)


def test_folded_step_has_no_batched_dots():
  """The folded form (the point of the module): K = 4 width-8 members' forward and backward are
  2-D dots (no batch dimensions), one per product."""
  w, b, x, g = _data(4, 8, 24)
  hlo = jax.jit(jax.vmap(_value_and_grads)).lower(w, b, x, g).as_text()
  dots = [line for line in hlo.splitlines() if "dot_general" in line and "=" in line]
  assert len(dots) == 3, dots
  assert not any("batching_dims = [0]" in d or "lhs_batching_dimensions = [0]" in d
                 for d in dots), dots


def test_shared_input_falls_back_to_batched_dot():
  """Members' kernels over one shared x (x unbatched): the default batching, same values."""
  w, b, x, g = _data(3, 8, 8)
  y = jax.vmap(folded.linear_fm, in_axes=(0, 0, None))(w, b, x[0])
  for m in range(3):
    np.testing.assert_allclose(np.asarray(y[m]), _numpy(w[m], b[m], x[0], g[0])[0],
                               rtol=1e-5, atol=1e-5)
