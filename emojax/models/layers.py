"""Shared layers: stacked bidirectional LSTMs.

The LSTM follows torch.nn.LSTM (gate order i, f, g, o; two biases b_ih and b_hh):

  gates = x W_ih + b_ih + h W_hh + b_hh      split into i, f, g, o (each H wide)
  c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
  h' = sigmoid(o) * tanh(c')

Parameters of layer n (``BiLSTM.layers[n]``), direction k (0 forward, 1 backward) map to a torch
state dict as
  w_ih[:, k, :] = weight_ih_l{n}{suffix}.T     (D_in, 4H)
  w_hh[k]       = weight_hh_l{n}{suffix}.T     (H, 4H)
  b_ih[k]       = bias_ih_l{n}{suffix}         (4H,)
  b_hh[k]       = bias_hh_l{n}{suffix}         (4H,)
with suffix '' for k = 0 and '_reverse' for k = 1. Initialisation is torch's: every weight and bias
uniform in [-1/sqrt(H), 1/sqrt(H)].

Speed (CPU): the input projection of all steps and both directions is one matmul outside the
recurrence; both directions (and, in `MultiBiLSTM`, all modalities) run as K stacked recurrences in a
single `lax.scan` whose body is one batched (K, B, H) x (K, H, 4H) dot plus the gate nonlinearities.
The backward direction runs forward over each sequence reversed within its valid length, so ragged
ends need no special case: padded steps only hold the state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def _uniform(rngs: nnx.Rngs, shape: tuple[int, ...], bound: float) -> nnx.Param:
  return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))


def _reverse_valid(x_TxBx_: jax.Array, rev_idx_TxB: jax.Array | None) -> jax.Array:
  """Reverses each sequence within its valid prefix; padded steps stay in place (an involution)."""
  if rev_idx_TxB is None:
    return jnp.flip(x_TxBx_, axis=0)
  idx = rev_idx_TxB.reshape(rev_idx_TxB.shape + (1,) * (x_TxBx_.ndim - 2))
  return jnp.take_along_axis(x_TxBx_, idx, axis=0)


def _reverse_index(mask_BxT: jax.Array | None, t: int) -> jax.Array | None:
  """Index (T, B) with idx[s, b] = len_b - 1 - s for s < len_b, else s."""
  if mask_BxT is None:
    return None
  len_B = jnp.sum(mask_BxT, axis=1, dtype=jnp.int32)
  s_T = jnp.arange(t, dtype=jnp.int32)
  return jnp.where(s_T[:, None] < len_B[None, :], len_B[None, :] - 1 - s_T[:, None], s_T[:, None])


def lstm_scan(gates_TxKxBx4H: jax.Array, w_hh_KxHx4H: jax.Array,
              mask_TxB: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """Runs K independent LSTM recurrences of width H in one scan, from zero state.

  Args:
    gates_TxKxBx4H: precomputed input projections (x W_ih + b_ih + b_hh) per step.
    w_hh_KxHx4H: recurrent kernels.
    mask_TxB: valid steps; at an invalid step the state is held and the output is 0.

  Returns:
    (outputs h_TxKxBxH, final hidden state h_KxBxH).
  """
  t, k, b, h4 = gates_TxKxBx4H.shape
  h = h4 // 4

  def step(carry, inputs):
    h_KxBxH, c_KxBxH = carry
    if mask_TxB is None:
      g_KxBx4H = inputs
    else:
      g_KxBx4H, m_B = inputs
    g_KxBx4H = g_KxBx4H + jnp.einsum('kbh,khg->kbg', h_KxBxH, w_hh_KxHx4H)
    i, f, g, o = jnp.split(g_KxBx4H, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c_KxBxH + jax.nn.sigmoid(i) * jnp.tanh(g)
    h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
    if mask_TxB is None:
      return (h_new, c_new), h_new
    m = m_B[None, :, None]
    h_new = jnp.where(m, h_new, h_KxBxH)
    c_new = jnp.where(m, c_new, c_KxBxH)
    return (h_new, c_new), jnp.where(m, h_new, 0.0)

  zeros = jnp.zeros((k, b, h), gates_TxKxBx4H.dtype)
  xs = gates_TxKxBx4H if mask_TxB is None else (gates_TxKxBx4H, mask_TxB)
  (h_KxBxH, _), out_TxKxBxH = jax.lax.scan(step, (zeros, zeros), xs)
  return out_TxKxBxH, h_KxBxH


class BiLSTMLayer(nnx.Module):
  """One bidirectional LSTM layer (parameters only; the stack runs it time-major)."""

  def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / hidden**0.5
    self.hidden = hidden
    self.w_ih = _uniform(rngs, (in_features, 2, 4 * hidden), bound)
    self.w_hh = _uniform(rngs, (2, hidden, 4 * hidden), bound)
    self.b_ih = _uniform(rngs, (2, 4 * hidden), bound)
    self.b_hh = _uniform(rngs, (2, 4 * hidden), bound)

  def project(self, x_TxBxD: jax.Array) -> jax.Array:
    """x W_ih + b for all steps and both directions: (T, B, 2, 4H)."""
    d = x_TxBxD.shape[-1]
    w_Dx8H = self.w_ih[...].reshape(d, 8 * self.hidden)
    b_8H = (self.b_ih[...] + self.b_hh[...]).reshape(8 * self.hidden)
    g_TxBx8H = jnp.einsum('tbd,dg->tbg', x_TxBxD, w_Dx8H) + b_8H
    return g_TxBx8H.reshape(g_TxBx8H.shape[:2] + (2, 4 * self.hidden))


def _to_scan_input(g_TxBx2x4H: jax.Array, rev_idx_TxB: jax.Array | None) -> jax.Array:
  """Stacks forward gates and validly-reversed backward gates: (T, 2, B, 4H)."""
  fwd = g_TxBx2x4H[:, :, 0]
  bwd = _reverse_valid(g_TxBx2x4H[:, :, 1], rev_idx_TxB)
  return jnp.stack([fwd, bwd], axis=1)


def _from_scan_output(out_TxKxBxH: jax.Array, rev_idx_TxB: jax.Array | None) -> jax.Array:
  """(T, 2, B, H) scan outputs -> (T, B, 2H) with the backward half back in time order."""
  fwd = out_TxKxBxH[:, 0]
  bwd = _reverse_valid(out_TxKxBxH[:, 1], rev_idx_TxB)
  return jnp.concatenate([fwd, bwd], axis=-1)


class BiLSTM(nnx.Module):
  """Stacked bidirectional LSTM, batch first, like torch.nn.LSTM(bidirectional=True).

  Layer n+1 reads the concatenated forward/backward outputs of layer n. Sequences are padded only
  at their end (`mask_BxT` marks the valid prefix); padding never changes outputs at valid steps and
  padded outputs are zero.
  """

  def __init__(self, in_features: int, hidden: int, num_layers: int = 2, *, rngs: nnx.Rngs):
    self.hidden = hidden
    self.layers = nnx.List([
        BiLSTMLayer(in_features if n == 0 else 2 * hidden, hidden, rngs=rngs)
        for n in range(num_layers)])

  def __call__(self, x_BxTxD: jax.Array,
               mask_BxT: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Returns (outputs y_BxTx2H, final state h_Bx2H of the last layer).

    h_Bx2H = [forward hidden state after the last valid step, backward hidden state after step 0].
    """
    t = x_BxTxD.shape[1]
    rev_idx_TxB = _reverse_index(mask_BxT, t)
    mask_TxB = None if mask_BxT is None else jnp.asarray(mask_BxT, bool).T
    y_TxBxD = jnp.swapaxes(x_BxTxD, 0, 1)
    for layer in self.layers:
      gates = _to_scan_input(layer.project(y_TxBxD), rev_idx_TxB)
      out_TxKxBxH, h_KxBxH = lstm_scan(gates, layer.w_hh[...], mask_TxB)
      y_TxBxD = _from_scan_output(out_TxKxBxH, rev_idx_TxB)
    h_Bx2H = jnp.concatenate([h_KxBxH[0], h_KxBxH[1]], axis=-1)
    return jnp.swapaxes(y_TxBxD, 0, 1), h_Bx2H
