"""Feature-major Linear whose products fold the vmapped members into one block-diagonal GEMM.

`linear_fm(kernel, bias, x)`: y = kernel^T x + bias for a feature-major x (in, ...) -> (out, ...),
with its VJP written out (dx = kernel dy, dkernel = x dy^T, dbias = sum dy). Alone it is three
plain dots. Under `jax.vmap` over K ensemble members (`emojax.ensemble`: kernels (K, in, out),
activations (K, in, ...)) JAX would emit batched dots, which XLA:CPU lowers with transposes of the
activations around each of them (the K = 4 Feature AAN step: ~0.7 ms of copies, docs/benchmarks.md);
here each batched product is instead one 2-D GEMM over all members (`jax.custom_batching`):

- forward: y = B^T X with B = blockdiag(kernel_1 ... kernel_K) (K*in, K*out) and X the members'
  activations stacked (K*in, M);
- dx = B dY;
- dkernel: X dY^T (K*in, K*out), of which member k's gradient is the k-th diagonal block.

The off-diagonal blocks are exact zeros (products with 0 add 0 exactly), so each member's result
holds the same terms as its own product; a GEMM may sum them in another order (last-bit
differences). The fold multiplies the arithmetic by K, so it is used only while K * max(in, out)
<= `FOLD_MAX_WIDTH` (tiny layers whose batched dots cost their layout copies, not FLOPs); wider
ones keep JAX's batched dot.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# The widest folded operand (K members x the layer's larger side); emojax's choice: the K = 4
# Feature AAN's width-8 layers (qkv 8 -> 24: 96) are folded.
FOLD_MAX_WIDTH = 256


def _tn(w, x):      # (I, O), (I, M) -> (O, M)
  return jax.lax.dot_general(w, x, (((0,), (0,)), ((), ())))


def _nn(w, dy):     # (I, O), (O, M) -> (I, M)
  return jax.lax.dot_general(w, dy, (((1,), (0,)), ((), ())))


def _nt(x, dy):     # (I, M), (O, M) -> (I, O)
  return jax.lax.dot_general(x, dy, (((1,), (1,)), ((), ())))


def _block_diag(w):
  """(K, I, O) -> (K*I, K*O), member k's kernel in the k-th diagonal block, zeros elsewhere."""
  k, i, o = w.shape
  eye = jnp.eye(k, dtype=w.dtype)
  return (w[:, :, None, :] * eye[:, None, :, None]).reshape(k * i, k * o)


def _diag_blocks(full, k):
  """(K*I, K*O) -> (K, I, O): the diagonal blocks."""
  i, o = full.shape[0] // k, full.shape[1] // k
  f = full.reshape(k, i, k, o)
  return jnp.stack([f[m, :, m, :] for m in range(k)])


def _fits(k, w_shape) -> bool:
  return k * max(w_shape[-2], w_shape[-1]) <= FOLD_MAX_WIDTH


def _batched(fn, axis_size, in_batched, *args):
  """The default batching of `fn` (a vmap of the plain product)."""
  axes = tuple(0 if b else None for b in in_batched)
  return jax.vmap(fn, in_axes=axes)(*args), True


@jax.custom_batching.custom_vmap
def _fwd_product(w, x):
  return _tn(w, x)


@_fwd_product.def_vmap
def _fwd_rule(axis_size, in_batched, w, x):
  if not all(in_batched) or not _fits(axis_size, w.shape):
    return _batched(_tn, axis_size, in_batched, w, x)
  k, m = axis_size, x.shape[-1]
  y = _tn(_block_diag(w), x.reshape(k * x.shape[1], m))
  return y.reshape(k, w.shape[2], m), True


@jax.custom_batching.custom_vmap
def _dx_product(w, dy):
  return _nn(w, dy)


@_dx_product.def_vmap
def _dx_rule(axis_size, in_batched, w, dy):
  if not all(in_batched) or not _fits(axis_size, w.shape):
    return _batched(_nn, axis_size, in_batched, w, dy)
  k, m = axis_size, dy.shape[-1]
  dx = _nn(_block_diag(w), dy.reshape(k * dy.shape[1], m))
  return dx.reshape(k, w.shape[1], m), True


@jax.custom_batching.custom_vmap
def _dw_product(x, dy):
  return _nt(x, dy)


@_dw_product.def_vmap
def _dw_rule(axis_size, in_batched, x, dy):
  if not all(in_batched) or axis_size * max(x.shape[1], dy.shape[1]) > FOLD_MAX_WIDTH:
    return _batched(_nt, axis_size, in_batched, x, dy)
  k, m = axis_size, x.shape[-1]
  full = _nt(x.reshape(k * x.shape[1], m), dy.reshape(k * dy.shape[1], m))
  return _diag_blocks(full, k), True


@jax.custom_vjp
def _linear2d(kernel, bias, x2):
  return _fwd_product(kernel, x2) + bias[:, None]


def _linear2d_fwd(kernel, bias, x2):
  return _linear2d(kernel, bias, x2), (kernel, x2)


def _linear2d_bwd(res, dy):
  kernel, x2 = res
  return _dw_product(x2, dy), jnp.sum(dy, axis=1), _dx_product(kernel, dy)


_linear2d.defvjp(_linear2d_fwd, _linear2d_bwd)


def linear_fm(kernel: jax.Array, bias: jax.Array, x: jax.Array) -> jax.Array:
  """kernel^T x + bias over axis 0 of a feature-major x (in, ...) -> (out, ...)."""
  rest = x.shape[1:]
  y = _linear2d(kernel, bias, x.reshape(x.shape[0], -1))
  return y.reshape(kernel.shape[1], *rest)
