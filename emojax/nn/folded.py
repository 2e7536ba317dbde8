"""Feature-major Linear whose products fold the vmapped members into one block-diagonal GEMM.

`linear_fm(kernel, bias, x)`: y = kernel^T x + bias for a feature-major x (in, ...) -> (out, ...),
with its VJP written out (dx = kernel dy, dkernel = x dy^T, dbias = sum dy). Alone it is three
plain dots. Under `jax.vmap` over K ensemble members (`emojax.ensemble`: kernels (K, in, out),
activations (K, in, ...)) JAX would emit batched dots, which XLA:CPU lowers with transposes of the
activations around each of them (the K = 4 Feature AAN step: ~0.7 ms of copies, docs/benchmarks.md);
here each batched product is instead one 2-D GEMM over all members (`jax.custom_batching`):

- forward: y = B^T X with B = blockdiag(kernel_1 ... kernel_K) (K*in, K*out) and X the members'
  activations stacked (K*in, ...);
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


# x, dy: (I, ...) / (O, ...), the trailing axes as they are (no reshape: they may be sharded).
def _tn(w, x):      # (I, O), (I, ...) -> (O, ...)
  return jax.lax.dot_general(w, x, (((0,), (0,)), ((), ())))


def _nn(w, dy):     # (I, O), (O, ...) -> (I, ...)
  return jax.lax.dot_general(w, dy, (((1,), (0,)), ((), ())))


def _nt(x, dy):     # (I, ...), (O, ...) -> (I, O), replicated (a sum over sharded batch axes)
  rest = tuple(range(1, x.ndim))
  sharding = getattr(jax.typeof(x), "sharding", None)
  kw = ({"out_sharding": jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())}
        if sharding is not None and any(p is not None for p in sharding.spec) else {})
  return jax.lax.dot_general(x, dy, ((rest, rest), ((), ())), **kw)


def _merge(a):      # (K, I, ...) -> (K*I, ...)
  return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


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


def _fits(k, sides) -> bool:
  """Whether K members of a layer with these (in, out) sides are folded."""
  return k * max(sides) <= FOLD_MAX_WIDTH


def _batched(fn, axis_size, in_batched, *args):
  """The default batching of `fn` (a vmap of the plain product)."""
  axes = tuple(0 if b else None for b in in_batched)
  return jax.vmap(fn, in_axes=axes)(*args), True


def _kernel_product(plain, out_side: int):
  """`plain(w, a)` for a kernel w (I, O) and activations a, whose vmap over K members is one GEMM
  of blockdiag(w_1 ... w_K) with the members' activations stacked; the result's member rows are
  w.shape[out_side] long (O for the forward, I for the input gradient)."""

  @jax.custom_batching.custom_vmap
  def product(w, a):
    return plain(w, a)

  @product.def_vmap
  def rule(axis_size, in_batched, w, a):
    if not all(in_batched) or not _fits(axis_size, w.shape[1:]):
      return _batched(plain, axis_size, in_batched, w, a)
    y = plain(_block_diag(w), _merge(a))
    return y.reshape(axis_size, w.shape[out_side], *y.shape[1:]), True
  return product


_fwd_product = _kernel_product(_tn, 2)   # y = w^T x
_dx_product = _kernel_product(_nn, 1)    # dx = w dy


@jax.custom_batching.custom_vmap
def _dw_product(x, dy):
  return _nt(x, dy)


@_dw_product.def_vmap
def _dw_rule(axis_size, in_batched, x, dy):
  if not all(in_batched) or not _fits(axis_size, (x.shape[1], dy.shape[1])):
    return _batched(_nt, axis_size, in_batched, x, dy)
  return _diag_blocks(_nt(_merge(x), _merge(dy)), axis_size), True


@jax.custom_vjp
def linear_fm(kernel: jax.Array, bias: jax.Array, x: jax.Array) -> jax.Array:
  """kernel^T x + bias over axis 0 of a feature-major x (in, ...) -> (out, ...)."""
  return _fwd_product(kernel, x) + bias.reshape(-1, *(1,) * (x.ndim - 1))


def _linear_fwd(kernel, bias, x):
  return linear_fm(kernel, bias, x), (kernel, x)


def _linear_bwd(res, dy):
  kernel, x = res
  return (_dw_product(x, dy), jnp.sum(dy, axis=tuple(range(1, dy.ndim))),
          _dx_product(kernel, dy))


linear_fm.defvjp(_linear_fwd, _linear_bwd)
