"""Shared layers: stacked bidirectional LSTMs (seed 000) and unidirectional GRU / LSTM stacks (seed
001, section "Unidirectional GRU / LSTM stacks" below).

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
recurrence; both directions (and, in `MultiBiLSTM`, all modalities) run as K stacked recurrences
whose step is one batched (K, B, H) x (K, H, 4H) dot plus the gate nonlinearities: in one
`lax.scan` (`lstm_scan`), or, for short sequences whose steps are all unrolled (seed 000's 10 s
clips), as straight-line code without the scan's stacked per-step buffers (`bilstm_unrolled`).
(At the seed-000 shapes `MultiBiLSTM` is not faster than separate `BiLSTM`s: docs/benchmarks.md.)
The backward direction is scanned in flipped time (scan step s is time T-1-s). Padding is only at
the end of a sequence and padded steps hold the state, so the backward direction holds its zero
state through the padding and starts at the last valid step. The flips fuse into the copies that
lay the projections out for the scan.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


# ------------------------------------------------------------------------------------------------
# PyTorch-style initialisation and parameter filters (every method uses these; none writes its own).


def torch_uniform(rngs: nnx.Rngs, shape: tuple[int, ...], bound: float) -> nnx.Param:
  """A parameter ~ U(-bound, bound), torch's default for recurrent weights (bound = 1/sqrt(H))."""
  return nnx.Param(jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound))


def torch_linear(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
  """nn.Linear's default initialisation: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(in_features)
  return nnx.Linear(
      in_features, out_features, rngs=rngs,
      kernel_init=jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
      bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
          key, shape, dtype, -bound, bound))


def params_under(*prefixes: tuple) -> nnx.filterlib.Filter:
  """nnx filter: the Params whose path starts with one of `prefixes` (tuples of path keys,
  compared as strings), e.g. params_under(("nets", "valence", "fc1"))."""
  prefixes = tuple(tuple(str(k) for k in p) for p in prefixes)

  def f(path, x):
    keys = tuple(str(k) for k in path)
    return isinstance(x, nnx.Param) and any(keys[:len(p)] == p for p in prefixes)
  return f


def _default_unroll(t: int) -> int:
  """Short sequences (clips of ~10 s) unroll fully; long ones by the largest divisor of T in
  [4, 8] (6 for seed 001's W = 60), else by 8 (XLA:CPU loops are slow).

  A factor that divides T leaves no remainder steps, which `lax.scan` would run after the loop,
  its outputs sliced and concatenated onto the loop's stacked ones (one more copy of every saved
  activation; measured in docs/benchmarks.md, GRU + MoE).
  """
  if t <= 16:
    return t
  return next((u for u in range(8, 3, -1) if t % u == 0), 8)


def lstm_scan(gates_TxKxBx4H: jax.Array, w_hh_KxHx4H: jax.Array,
              mask_TxKxB: jax.Array | None = None,
              unroll: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Runs K independent LSTM recurrences of width H in one scan, from zero state.

  The gradient is hand-written (`jax.custom_vjp`): the backward scan carries only dh, dc and does
  one (K, B, 4H) x (K, 4H, H) dot per step; dW_hh is one batched matmul over all steps afterwards.

  Args:
    gates_TxKxBx4H: precomputed input projections (x W_ih + b_ih + b_hh) per step.
    w_hh_KxHx4H: recurrent kernels.
    mask_TxKxB: valid steps; at an invalid step the state is held and the output is 0.
    unroll: scan unroll factor (default `_default_unroll`: all steps up to 16, else a divisor of
      T in [4, 8], else 8).

  Returns:
    (outputs h_TxKxBxH, final hidden state h_KxBxH).
  """
  unroll = _default_unroll(gates_TxKxBx4H.shape[0]) if unroll is None else unroll
  if mask_TxKxB is None:
    return _lstm_scan_fn(False, unroll)(gates_TxKxBx4H, w_hh_KxHx4H, None)
  return _lstm_scan_fn(True, unroll)(gates_TxKxBx4H, w_hh_KxHx4H, jnp.asarray(mask_TxKxB, bool))


def _cell(z_KxBx4H: jax.Array, c_KxBxH: jax.Array):
  """LSTM cell from pre-activations: (h', c', activations [i, f, g, o] (K, B, 4H), tanh(c'))."""
  h = c_KxBxH.shape[-1]
  sig = jax.nn.sigmoid(z_KxBx4H)
  i, f, o = sig[..., :h], sig[..., h:2 * h], sig[..., 3 * h:]
  g = jnp.tanh(z_KxBx4H[..., 2 * h:3 * h])
  c_new = f * c_KxBxH + i * g
  tanh_c = jnp.tanh(c_new)
  return o * tanh_c, c_new, jnp.concatenate([i, f, g, o], axis=-1), tanh_c


@functools.lru_cache(maxsize=None)
def _lstm_scan_fn(masked: bool, unroll: int):
  """The custom-VJP scan for one (masked, unroll) pair; the mask argument is ignored if unmasked."""

  def forward(gates_TxKxBx4H, w_KxHx4H, mask_TxKxB, keep_residuals):
    t, k, b, h4 = gates_TxKxBx4H.shape

    def step(carry, inputs):
      h_prev, c_prev = carry
      g_KxBx4H, m_KxB = inputs if masked else (inputs, None)
      z = g_KxBx4H + jnp.einsum('kbh,khg->kbg', h_prev, w_KxHx4H)
      h_new, c_new, acts, tanh_c = _cell(z, c_prev)
      if masked:
        m = m_KxB[..., None]
        h_new = jnp.where(m, h_new, h_prev)
        c_new = jnp.where(m, c_new, c_prev)
        out = jnp.where(m, h_new, 0.0)
      else:
        out = h_new
      res = (h_prev, c_prev, acts, tanh_c) if keep_residuals else None
      return (h_new, c_new), (out, res)

    zeros = jnp.zeros((k, b, h4 // 4), gates_TxKxBx4H.dtype)
    xs = (gates_TxKxBx4H, mask_TxKxB) if masked else gates_TxKxBx4H
    (h_last, _), (out, res) = jax.lax.scan(step, (zeros, zeros), xs, unroll=unroll)
    return out, h_last, res

  @jax.custom_vjp
  def scan(gates_TxKxBx4H, w_KxHx4H, mask_TxKxB):
    out, h_last, _ = forward(gates_TxKxBx4H, w_KxHx4H, mask_TxKxB, False)
    return out, h_last

  def scan_fwd(gates_TxKxBx4H, w_KxHx4H, mask_TxKxB):
    out, h_last, res = forward(gates_TxKxBx4H, w_KxHx4H, mask_TxKxB, True)
    return (out, h_last), (res, w_KxHx4H, mask_TxKxB)

  def scan_bwd(saved, cotangents):
    (h_prev_T, c_prev_T, acts_T, tanh_c_T), w_KxHx4H, mask_TxKxB = saved
    dout_TxKxBxH, dh_last = cotangents
    h = w_KxHx4H.shape[1]

    def step(carry, inputs):
      dh, dc = carry
      if masked:
        dout, c_prev, acts, tanh_c, m_KxB = inputs
        m = m_KxB[..., None]
        dh_tot = dh + jnp.where(m, dout, 0.0)
      else:
        dout, c_prev, acts, tanh_c = inputs
        dh_tot = dh + dout
      i, f, g, o = acts[..., :h], acts[..., h:2 * h], acts[..., 2 * h:3 * h], acts[..., 3 * h:]
      dc_tot = dc + dh_tot * o * (1.0 - tanh_c * tanh_c)
      dz = jnp.concatenate([dc_tot * g * i * (1.0 - i), dc_tot * c_prev * f * (1.0 - f),
                            dc_tot * i * (1.0 - g * g), dh_tot * tanh_c * o * (1.0 - o)], axis=-1)
      dh_prev = jnp.einsum('kbg,khg->kbh', dz, w_KxHx4H)
      dc_prev = dc_tot * f
      if masked:
        dz = jnp.where(m, dz, 0.0)
        dh_prev = jnp.where(m, dh_prev, dh)
        dc_prev = jnp.where(m, dc_prev, dc)
      return (dh_prev, dc_prev), dz

    xs = (dout_TxKxBxH, c_prev_T, acts_T, tanh_c_T)
    xs = xs + (mask_TxKxB,) if masked else xs
    _, dz_TxKxBx4H = jax.lax.scan(step, (dh_last, jnp.zeros_like(dh_last)), xs, reverse=True,
                                  unroll=unroll)
    dw_KxHx4H = jnp.einsum('tkbh,tkbg->khg', h_prev_T, dz_TxKxBx4H)
    dmask = None if mask_TxKxB is None else np.zeros(mask_TxKxB.shape, jax.dtypes.float0)
    return dz_TxKxBx4H, dw_KxHx4H, dmask

  scan.defvjp(scan_fwd, scan_bwd)
  return scan


def _unrolls_fully(t: int, unroll: int | None) -> bool:
  """Whether a recurrence of T steps at `unroll` (None: `_default_unroll`) has every step unrolled
  (then `run_bilstm_stacks` runs `bilstm_unrolled`, not `lstm_scan`)."""
  return (_default_unroll(t) if unroll is None else unroll) >= t


def bilstm_unrolled(gates_M_x8H: list[jax.Array], w_hh_KxHx4H: jax.Array,
                    mask_BxT: jax.Array | None = None, batch_major: bool = False
                    ) -> tuple[list[jax.Array], jax.Array]:
  """M bidirectional LSTM layers (K = 2M recurrences) over a short sequence as straight-line code:
  what `lstm_scan` computes with every step unrolled, without a scan's per-step copies.

  A `lax.scan` (even fully unrolled) writes every saved activation of every step into a stacked
  (T, K, B, .) buffer (three per step forward: h, c and the gates' activations) and stacks its
  outputs the same way; here the steps' arrays are kept as they are computed and only what a
  matmul reads is stacked, once per layer: the recurrent outputs (for the next layer) and, in the
  backward pass, the pre-activation gradients (for the input projections' gradients and one
  batched dW_hh product). The first layer's projections may come batch-major (`batch_major`):
  its (B, T, D) input is projected as it lies (no transposed copy of the input, which at seed
  000's 3,072-wide expression features is the largest array of the step), the (B, T, 8H) gates
  are laid out for the recurrence by the same fusion that splits and flips the two directions,
  and their gradient comes back batch-major, the layout dW_ih reads. The gradient is
  hand-written (`jax.custom_vjp`); per step: one (K, B, H) x (K, H, 4H) dot and the cell's
  fusions forward, one (K, B, 4H) x (K, 4H, H) dot and the pre-activations' gradient backward;
  tanh(c) is recomputed backward. (docs/benchmarks.md, seed 000.)

  Args:
    gates_M_x8H: per layer, x W_ih + b_ih + b_hh for both directions in time order: columns
      [:4H] the forward recurrence (recurrence 2m), [4H:] the backward one (2m + 1); (T, B, 8H),
      or (B, T, 8H) with `batch_major`.
    w_hh_KxHx4H: recurrent kernels, recurrence 2m + d = layer m, direction d.
    mask_BxT: valid steps; at an invalid step the state is held and the output is 0.
    batch_major: the layout of `gates_M_x8H`.

  Returns:
    (per layer the outputs y_TxBx2H in time order ([forward, backward] states; time-major
    whatever the input's layout), the final hidden states h_KxBxH: forward after the last valid
    step, backward after step 0).
  """
  fn = _bilstm_unrolled_fn(mask_BxT is not None, len(gates_M_x8H), batch_major)
  mask = None if mask_BxT is None else jnp.asarray(mask_BxT, bool)
  ys, h_last = fn(tuple(gates_M_x8H), w_hh_KxHx4H, mask)
  return list(ys), h_last


def _one_device_unsharded(x: jax.Array) -> jax.Array:
  """`x` typed unsharded where its sharding in types names only mesh axes of size 1 (the
  harness's explicit "data" axis on one device: the Trainer shards every batch over it), else `x`
  itself. A no-op on the data; it lets the row-flattening reshapes of the hand-written gradients
  below run on one device, which JAX refuses on a batch typed as sharded whatever the axis size."""
  sharding = getattr(jax.typeof(x), "sharding", None)
  spec = getattr(sharding, "spec", None)
  names = [n for a in (spec or ()) if a is not None for n in (a if isinstance(a, tuple) else (a,))]
  if not names or any(sharding.mesh.shape[n] != 1 for n in names):
    return x
  return jax.sharding.reshard(x, jax.sharding.NamedSharding(sharding.mesh,
                                                            jax.sharding.PartitionSpec()))


def _contracted_batch_sharding(x: jax.Array, like: jax.Array):
  """`out_sharding` of a product that sums over the batch of `x`: `like`'s sharding where the
  batch is sharded with sharding in types (the harness's explicit "data" axis, under which JAX
  refuses to guess it), else None."""
  spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None)
  if not spec or all(a is None for a in spec):
    return None
  return jax.typeof(like).sharding


def _scan_order(a_TxBx2G: jax.Array) -> jax.Array:
  """(T, B, 2G) in time order -> (T, 2, B, G): [forward half, backward half flipped in time]."""
  fwd, bwd = jnp.split(a_TxBx2G, 2, axis=-1)
  return jnp.stack([fwd, jnp.flip(bwd, axis=0)], axis=1)


def _from_scan_order(a_TxKxBxG: jax.Array, m_layers: int) -> list[jax.Array]:
  """Inverse of `_scan_order` for each of M layers: (T, 2M, B, G) -> M x (T, B, 2G)."""
  return [jnp.concatenate([a_TxKxBxG[:, 2 * j], jnp.flip(a_TxKxBxG[:, 2 * j + 1], axis=0)], -1)
          for j in range(m_layers)]


@functools.lru_cache(maxsize=None)
def _bilstm_unrolled_fn(masked: bool, m_layers: int, batch_major: bool):
  """The custom-VJP straight-line bidirectional LSTM of M layers for one (masked, M, layout)."""

  def mask_TxKxB(mask_BxT):
    m_TxB = mask_BxT.T
    return jnp.tile(jnp.stack([m_TxB, jnp.flip(m_TxB, axis=0)], axis=1), (1, m_layers, 1))

  def forward(gates_M, w_KxHx4H, mask_BxT):
    tm = [jnp.swapaxes(g, 0, 1) for g in gates_M] if batch_major else list(gates_M)
    g_TxKxBx4H = jnp.concatenate([_scan_order(g) for g in tm], axis=1)
    t, k, b, h4 = g_TxKxBx4H.shape
    hidden = h4 // 4
    m_all = mask_TxKxB(mask_BxT)[..., None] if masked else None
    h = c = jnp.zeros((k, b, hidden), g_TxKxBx4H.dtype)
    hs, res = [], []
    for s in range(t):
      z = g_TxKxBx4H[s] + jnp.einsum('kbh,khg->kbg', h, w_KxHx4H)
      sig = jax.nn.sigmoid(z)
      g = jnp.tanh(z[..., 2 * hidden:3 * hidden])
      i, f, o = sig[..., :hidden], sig[..., hidden:2 * hidden], sig[..., 3 * hidden:]
      c_new = f * c + i * g
      h_new = o * jnp.tanh(c_new)
      if masked:
        h_new = jnp.where(m_all[s], h_new, h)
        c_new = jnp.where(m_all[s], c_new, c)
      hs.append(h_new)
      res.append((h, c, sig, g))
      h, c = h_new, c_new
    out_TxKxBxH = jnp.stack(hs)
    if masked:
      out_TxKxBxH = jnp.where(m_all, out_TxKxBxH, 0.0)
    return tuple(_from_scan_order(out_TxKxBxH, m_layers)), h, res

  @jax.custom_vjp
  def run(gates_M, w_KxHx4H, mask_BxT):
    ys, h_last, _ = forward(gates_M, w_KxHx4H, mask_BxT)
    return ys, h_last

  def run_fwd(gates_M, w_KxHx4H, mask_BxT):
    ys, h_last, res = forward(gates_M, w_KxHx4H, mask_BxT)
    return (ys, h_last), (res, w_KxHx4H, mask_BxT)

  def run_bwd(saved, cotangents):
    res, w_KxHx4H, mask_BxT = saved
    dys_M, dh = cotangents
    hidden = w_KxHx4H.shape[1]
    dout_TxKxBxH = jnp.concatenate([_scan_order(dy) for dy in dys_M], axis=1)
    m_all = mask_TxKxB(mask_BxT)[..., None] if masked else None
    if masked:
      dout_TxKxBxH = jnp.where(m_all, dout_TxKxBxH, 0.0)
    t = len(res)
    dc = jnp.zeros_like(dh)
    dzs = [None] * t
    for s in reversed(range(t)):
      h_prev, c_prev, sig, g = res[s]
      i, f, o = sig[..., :hidden], sig[..., hidden:2 * hidden], sig[..., 3 * hidden:]
      tanh_c = jnp.tanh(f * c_prev + i * g)
      dh_tot = dh + dout_TxKxBxH[s]
      dc_tot = dc + dh_tot * o * (1.0 - tanh_c * tanh_c)
      dz = jnp.concatenate([dc_tot * g * i * (1.0 - i), dc_tot * c_prev * f * (1.0 - f),
                            dc_tot * i * (1.0 - g * g), dh_tot * tanh_c * o * (1.0 - o)],
                           axis=-1)
      # The dot reads dz before the mask: at a padded step its product is replaced by the held dh.
      dh_prev = jnp.einsum('kbg,khg->kbh', dz, w_KxHx4H)
      dc_prev = dc_tot * f
      if masked:
        dh_prev = jnp.where(m_all[s], dh_prev, dh)
        dc_prev = jnp.where(m_all[s], dc_prev, dc)
      dzs[s] = dz
      dh, dc = dh_prev, dc_prev
    # One stacked (K, T, B, 4H) array of the pre-activations' gradients (masked once) feeds both
    # dW_hh (one batched product over all steps) and the input projections' gradients.
    dz_KxTxBx4H = jnp.stack(dzs, axis=1)
    if masked:
      dz_KxTxBx4H = jnp.where(jnp.swapaxes(m_all, 0, 1), dz_KxTxBx4H, 0.0)
    h_prev_KxTxBxH = jnp.stack([r[0] for r in res], axis=1)
    dw_KxHx4H = jnp.einsum('ktbh,ktbg->khg', h_prev_KxTxBxH, dz_KxTxBx4H,
                           out_sharding=_contracted_batch_sharding(h_prev_KxTxBxH, w_KxHx4H))
    dgates = [jnp.concatenate([dz_KxTxBx4H[2 * j], jnp.flip(dz_KxTxBx4H[2 * j + 1], axis=0)], -1)
              for j in range(m_layers)]
    if batch_major:
      dgates = [jnp.swapaxes(d, 0, 1) for d in dgates]
    dmask = None if mask_BxT is None else np.zeros(mask_BxT.shape, jax.dtypes.float0)
    return tuple(dgates), dw_KxHx4H, dmask

  run.defvjp(run_fwd, run_bwd)
  return run


class BiLSTMLayer(nnx.Module):
  """One bidirectional LSTM layer (parameters; `run_bilstm_stacks` runs it)."""

  def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / hidden**0.5
    self.hidden = hidden
    self.w_ih = torch_uniform(rngs, (in_features, 2, 4 * hidden), bound)
    self.w_hh = torch_uniform(rngs, (2, hidden, 4 * hidden), bound)
    self.b_ih = torch_uniform(rngs, (2, 4 * hidden), bound)
    self.b_hh = torch_uniform(rngs, (2, 4 * hidden), bound)

  def gates(self, x_TxBxD: jax.Array) -> jax.Array:
    """Input projections of a time-major input for both directions, in scan order.

    One (T B, D) x (D, 8H) matmul; returns (T, 2, B, 4H) with direction 1 flipped in time.
    """
    return _scan_order(self.gates_time_major(x_TxBxD))

  def gates_batch_major(self, x_BxTxD: jax.Array) -> jax.Array:
    """Input projections of a batch-major input for both directions, in time order, as it lies:
    (B, T, 8H), columns [:4H] the forward direction, [4H:] the backward one (`bilstm_unrolled`)."""
    return self._project('btd,dg->btg', x_BxTxD)

  def gates_time_major(self, x_TxBxD: jax.Array) -> jax.Array:
    """As `gates_batch_major` for a time-major input: (T, B, 8H)."""
    return self._project('tbd,dg->tbg', x_TxBxD)

  def _project(self, spec: str, x: jax.Array) -> jax.Array:
    d, h8 = x.shape[-1], 8 * self.hidden
    b_8H = (self.b_ih[...] + self.b_hh[...]).reshape(h8)
    return jnp.einsum(spec, x, self.w_ih[...].reshape(d, h8)) + b_8H


def _time_order(out_Tx2xBxH: jax.Array) -> jax.Array:
  """Scan-order outputs of one bidirectional layer -> time-ordered (T, B, 2H)."""
  fwd, bwd = jnp.split(out_Tx2xBxH, 2, axis=1)
  return jnp.concatenate([fwd[:, 0], jnp.flip(bwd[:, 0], axis=0)], axis=-1)


def run_bilstm_stacks(stacks: list[nnx.List], xs_BxTxD: list[jax.Array],
                      mask_BxT: jax.Array | None,
                      unroll: int | None = None) -> list[tuple[jax.Array, jax.Array]]:
  """Runs M bidirectional LSTM stacks of equal width and depth over sequences of equal (B, T).

  The 2M recurrences of each layer (M stacks x 2 directions) run together: as straight-line code
  (`bilstm_unrolled`, the first layer projecting its batch-major inputs as they lie) when every
  step is unrolled (`unroll` None and T <= 16, or `unroll` >= T), else in one `lax.scan`
  (`lstm_scan`). The two compute the same outputs and gradients (up to the order of sums).

  Returns:
    per stack (outputs y_BxTx2H, final state h_Bx2H of the last layer).
  """
  n = len(stacks)
  b, t = xs_BxTxD[0].shape[:2]
  for x in xs_BxTxD:
    if x.ndim != 3 or x.shape[:2] != (b, t):
      raise ValueError(f'BiLSTM inputs must be (B, T, D) with one (B, T) = {(b, t)} for all '
                       f'modalities; got {[x.shape for x in xs_BxTxD]}')
  if mask_BxT is not None and mask_BxT.shape != (b, t):
    raise ValueError(f'mask_BxT has shape {mask_BxT.shape}; the inputs need {(b, t)}')
  if _unrolls_fully(t, unroll):
    ys = list(xs_BxTxD)   # the first layer reads the batch-major inputs, the others time-major
    for depth in range(len(stacks[0])):
      layers = [stack[depth] for stack in stacks]
      gates = [layer.gates_batch_major(y) if depth == 0 else layer.gates_time_major(y)
               for layer, y in zip(layers, ys)]
      w_hh = jnp.concatenate([layer.w_hh[...] for layer in layers], axis=0)
      ys, h_KxBxH = bilstm_unrolled(gates, w_hh, mask_BxT, batch_major=depth == 0)
    return [(jnp.swapaxes(y, 0, 1), jnp.concatenate([h_KxBxH[2 * m], h_KxBxH[2 * m + 1]], -1))
            for m, y in enumerate(ys)]
  mask_TxKxB = None
  if mask_BxT is not None:
    m_TxB = jnp.asarray(mask_BxT, bool).T
    mask_TxKxB = jnp.tile(jnp.stack([m_TxB, jnp.flip(m_TxB, axis=0)], axis=1), (1, n, 1))
  ys_TxBxD = [jnp.swapaxes(x, 0, 1) for x in xs_BxTxD]
  for depth in range(len(stacks[0])):
    layers = [stack[depth] for stack in stacks]
    gates = jnp.concatenate([layer.gates(y) for layer, y in zip(layers, ys_TxBxD)], axis=1)
    w_hh = jnp.concatenate([layer.w_hh[...] for layer in layers], axis=0)
    out_TxKxBxH, h_KxBxH = lstm_scan(gates, w_hh, mask_TxKxB, unroll)
    ys_TxBxD = [_time_order(out) for out in jnp.split(out_TxKxBxH, n, axis=1)]
  h_KxBxH = jnp.split(h_KxBxH, 2 * n, axis=0)
  return [(jnp.swapaxes(y, 0, 1), jnp.concatenate([h_KxBxH[2 * m][0], h_KxBxH[2 * m + 1][0]], -1))
          for m, y in enumerate(ys_TxBxD)]


class BiLSTM(nnx.Module):
  """Stacked bidirectional LSTM, batch first, like torch.nn.LSTM(bidirectional=True).

  Layer n+1 reads the concatenated forward/backward outputs of layer n. `mask_BxT` marks the valid
  steps (padding at the end of ragged sequences): both directions skip invalid steps, holding their
  state, so padding never changes outputs at valid steps and equals running the shorter sequence;
  padded outputs are zero. (A mask with holes acts as if the masked steps were cut out.)
  """

  def __init__(self, in_features: int, hidden: int, num_layers: int = 2, *, rngs: nnx.Rngs,
               unroll: int | None = None):
    """`unroll`: steps per scan iteration (default `_default_unroll`); speed only."""
    self.hidden = hidden
    self.unroll = unroll
    self.layers = nnx.List([
        BiLSTMLayer(in_features if n == 0 else 2 * hidden, hidden, rngs=rngs)
        for n in range(num_layers)])

  def __call__(self, x_BxTxD: jax.Array,
               mask_BxT: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Returns (outputs y_BxTx2H, final state h_Bx2H of the last layer).

    h_Bx2H = [forward hidden state after the last valid step, backward hidden state after step 0].
    """
    return run_bilstm_stacks([self.layers], [x_BxTxD], mask_BxT, self.unroll)[0]


class MultiBiLSTM(nnx.Module):
  """One `BiLSTM` per modality, run together: each layer's recurrences share one scan.

  The parameters are exactly those of separate `BiLSTM`s (`self.lstms[name]`), so per-modality
  freezing by path works as with separate modules. All modalities share (B, T) and the mask.
  """

  def __init__(self, in_features: dict[str, int], hidden: int, num_layers: int = 2, *,
               rngs: nnx.Rngs, unroll: int | None = None):
    self.unroll = unroll
    self.lstms = nnx.Dict({name: BiLSTM(d, hidden, num_layers, rngs=rngs, unroll=unroll)
                           for name, d in in_features.items()})

  def __call__(self, xs_BxTxD: dict[str, jax.Array], mask_BxT: jax.Array | None = None
               ) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Runs the modalities present in `xs_BxTxD` (any subset); name -> (y_BxTx2H, h_Bx2H)."""
    names = list(xs_BxTxD)
    unknown = [n for n in names if n not in self.lstms]
    if unknown:
      raise KeyError(f'MultiBiLSTM has no modality {unknown}; it has {list(self.lstms)}')
    results = run_bilstm_stacks([self.lstms[n].layers for n in names],
                                [xs_BxTxD[n] for n in names], mask_BxT, self.unroll)
    return dict(zip(names, results))


# ----------------------------------------------------------------------------------------------
# Unidirectional GRU / LSTM stacks (seed 001: one causal encoder per modality).
#
# The GRU follows torch.nn.GRU (gate order r, z, n; two biases b_ih and b_hh):
#
#   r = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
#   z = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
#   n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
#   h' = (1 - z) * n + z * h
#
# Parameters of layer n of a stack (``GRULayer``) map to torch as w_ih = weight_ih_l{n}.T (D_in, 3H),
# w_hh = weight_hh_l{n}.T (H, 3H), b_ih = bias_ih_l{n}, b_hh = bias_hh_l{n}; initialisation is
# torch's (uniform in [-1/sqrt(H), 1/sqrt(H)]). As for the BiLSTM, the input projections of all
# steps (with b_ih and the r, z parts of b_hh folded in) are one matmul outside the recurrence, the
# K recurrences of a layer (one per modality) share one `lax.scan`, and the gradient is
# hand-written. For the GRU the K streams' per-step arrays stay apart, inside the scan body too
# (K (B, H) x (H, 3H) dots per step, `gru_scan_streams`), and the first layer projects its
# batch-major input in place, its weight gradient a (G, D) product over the input in place
# (`time_major_projection`). Masks: at an invalid step the state
# is held and the output is 0, so left padding (film starts) starts the recurrence at the first valid
# step and right padding (film ends) keeps the last valid state.


def gru_scan_streams(gates_K_TxBx3H: list[jax.Array], w_hh_KxHx3H: jax.Array,
                     b_hn_KxH: jax.Array, mask_TxKxB: jax.Array | None = None,
                     unroll: int | None = None) -> tuple[list[jax.Array], jax.Array]:
  """Runs K independent GRU recurrences of width H in one scan, from zero state, with the K
  streams' per-step arrays kept apart: gates, outputs, the saved activations and their gradients
  are K arrays (T, B, .) each, never one (T, K, B, .).

  The loop bodies work on each stream apart: K (B, H) x (H, 3H) dots per step forward and K
  (B, 3H) x (3H, H) backward, no (K, B, .) stacking copies inside the loops. The gradient is a
  `jax.custom_vjp`: the forward loop saves the carried states (h_prev is the previous step's
  state, not saved apart), r|z, n and h W_hn + b_hn; the backward scan carries only dh; dW_hh and
  db_hn are reductions over all steps afterwards, plain 2-D products over the (T B) rows of the
  saved states and gradients as they lie. No stacking copy of the projections feeds the scan, and
  each stream's input gradient is contiguous for its own projection's weight gradient
  (docs/benchmarks.md, GRU + MoE, branches rnn2 and gru5).

  Args:
    gates_K_TxBx3H: per stream, the input projections per step: x W_ih + b_ih + [b_hr, b_hz, 0].
    w_hh_KxHx3H: recurrent kernels.
    b_hn_KxH: the recurrent bias of the candidate (it sits inside r * (h W_hn + b_hn)).
    mask_TxKxB: valid steps; at an invalid step the state is held and the output is 0.
    unroll: scan unroll factor (default `_default_unroll`: all steps up to 16, else a divisor of
      T in [4, 8], else 8).

  Returns:
    (K outputs h_TxBxH, final hidden state h_KxBxH).
  """
  t = gates_K_TxBx3H[0].shape[0]
  unroll = _default_unroll(t) if unroll is None else unroll
  fn = _gru_scan_fn(mask_TxKxB is not None, unroll, len(gates_K_TxBx3H))
  mask = None if mask_TxKxB is None else jnp.asarray(mask_TxKxB, bool)
  outs, h_last = fn(tuple(gates_K_TxBx3H), w_hh_KxHx3H, b_hn_KxH, mask)
  return list(outs), h_last


@functools.lru_cache(maxsize=None)
def _gru_scan_fn(masked: bool, unroll: int, k: int):
  """The custom-VJP GRU scan of K streams for one (masked, unroll, K).

  The loop bodies work on each stream apart (K (B, H) x (H, 3H) dots per step, no stacking of
  the K streams' gates, states or saved activations into (K, B, .) copies), and write per step
  and stream (docs/benchmarks.md, GRU + MoE, branch gru5): forward, the carried state h_t (which
  is also the next step's h_prev, so h_prev is not saved apart; the masked output
  where(m, h_t, 0) is taken outside the loop) and, for the gradient, r|z, n and h W_hn + b_hn;
  backward, d(r|z pre-activations), d(n pre-activation) and d(h W_hn) (= d(n pre-activation) *
  r), from which the input projections' gradient is one concatenation outside the loop and
  dW_hh two plain 2-D products.
  """

  def cell(g_Bx3H, h_prev, w_Hx3H, b_hn_H, m_B):
    h = h_prev.shape[-1]
    a = h_prev @ w_Hx3H
    rz = jax.nn.sigmoid(g_Bx3H[:, :2 * h] + a[:, :2 * h])
    r, z = rz[:, :h], rz[:, h:]
    hn = a[:, 2 * h:] + b_hn_H
    n = jnp.tanh(g_Bx3H[:, 2 * h:] + r * hn)
    h_new = n + z * (h_prev - n)
    if m_B is not None:
      h_new = jnp.where(m_B[:, None], h_new, h_prev)
    return h_new, (rz, n, hn)

  def forward(gates_K, w_KxHx3H, b_hn_KxH, mask_TxKxB, keep_residuals):
    t, b, h3 = gates_K[0].shape
    h = h3 // 3

    def step(h_K, inputs):
      g_K, m_KxB = inputs if masked else (inputs, None)
      new = [cell(g_K[i], h_K[i], w_KxHx3H[i], b_hn_KxH[i], None if m_KxB is None else m_KxB[i])
             for i in range(k)]
      h_new_K = tuple(hn_ for hn_, _ in new)
      res = tuple(tuple(r_[j] for _, r_ in new) for j in range(3)) if keep_residuals else None
      return h_new_K, (h_new_K, res)

    xs = (gates_K, mask_TxKxB) if masked else gates_K
    zeros = tuple(jnp.zeros((b, h), gates_K[0].dtype) for _ in range(k))
    h_last_K, (hs_K, res) = jax.lax.scan(step, zeros, xs, unroll=unroll)
    if masked:   # the output is 0 at an invalid step (the carried state is held there)
      out_K = tuple(jnp.where(mask_TxKxB[:, i, :, None], hs_K[i], 0.0) for i in range(k))
    else:
      out_K = hs_K
    return out_K, jnp.stack(h_last_K), (hs_K,) + (res or ())

  @jax.custom_vjp
  def scan(gates_K, w_KxHx3H, b_hn_KxH, mask_TxKxB):
    out, h_last, _ = forward(gates_K, w_KxHx3H, b_hn_KxH, mask_TxKxB, False)
    return out, h_last

  def scan_fwd(gates_K, w_KxHx3H, b_hn_KxH, mask_TxKxB):
    out, h_last, res = forward(gates_K, w_KxHx3H, b_hn_KxH, mask_TxKxB, True)
    return (out, h_last), (res, w_KxHx3H, mask_TxKxB)

  def cell_bwd(dh, dout, h_prev, rz, n, hn, w_Hx3H, m_B):
    h = h_prev.shape[-1]
    dh_tot = dh + (dout if m_B is None else jnp.where(m_B[:, None], dout, 0.0))
    r, z = rz[:, :h], rz[:, h:]
    dz = dh_tot * (h_prev - n)
    da_n = dh_tot * (1.0 - z) * (1.0 - n * n)             # d(n pre-activation) = d(x W_in)
    drz = jnp.concatenate([da_n * hn * r * (1.0 - r), dz * z * (1.0 - z)], axis=-1)
    dhn = da_n * r                                        # d(h W_hn + b_hn)
    dgh = jnp.concatenate([drz, dhn], axis=-1)            # d(h W_hh + [0, 0, b_hn])
    dh_prev = dh_tot * z + dgh @ w_Hx3H.T
    if m_B is not None:
      m = m_B[:, None]
      drz, da_n, dhn = (jnp.where(m, a, 0.0) for a in (drz, da_n, dhn))
      dh_prev = jnp.where(m, dh_prev, dh)
    return dh_prev, (drz, da_n, dhn)

  def scan_bwd(saved, cotangents):
    (hs_K, rz_K, n_K, hn_K), w_KxHx3H, mask_TxKxB = saved
    dout_K, dh_last = cotangents
    # h_prev of every step: the carried states shifted by one (zero state first), contiguous
    # (T, B, H) per stream for dW_hh's products.
    h_prev_K = tuple(jnp.concatenate([jnp.zeros_like(s[:1]), s[:-1]]) for s in hs_K)

    def step(dh_K, inputs):
      (dout_K, hp_K, rz_K, n_K, hn_K), m_KxB = inputs if masked else (inputs, None)
      new = [cell_bwd(dh_K[i], dout_K[i], hp_K[i], rz_K[i], n_K[i], hn_K[i], w_KxHx3H[i],
                      None if m_KxB is None else m_KxB[i]) for i in range(k)]
      return tuple(d for d, _ in new), tuple(tuple(g[j] for _, g in new) for j in range(3))

    per_step = (dout_K, h_prev_K, rz_K, n_K, hn_K)
    xs = (per_step, mask_TxKxB) if masked else per_step
    dh0 = tuple(dh_last[i] for i in range(k))
    _, (drz_K, da_n_K, dhn_K) = jax.lax.scan(step, dh0, xs, reverse=True, unroll=unroll)
    dgi_K = tuple(jnp.concatenate([a, c], axis=-1) for a, c in zip(drz_K, da_n_K))
    dw_KxHx3H = jnp.stack([
        jnp.concatenate([_sum_of_products(hp, drz, w_KxHx3H[0]),
                         _sum_of_products(hp, dhn, w_KxHx3H[0])], axis=-1)
        for hp, drz, dhn in zip(h_prev_K, drz_K, dhn_K)])
    db_hn_KxH = jnp.stack([jnp.sum(dhn, axis=(0, 1)) for dhn in dhn_K])
    dmask = None if mask_TxKxB is None else np.zeros(mask_TxKxB.shape, jax.dtypes.float0)
    return dgi_K, dw_KxHx3H, db_hn_KxH, dmask

  scan.defvjp(scan_fwd, scan_bwd)
  return scan


def _sum_of_products(a_TxBxH: jax.Array, b_TxBxG: jax.Array, like: jax.Array) -> jax.Array:
  """sum over (t, b) of a[t, b]^T b[t, b]: (H, G), e.g. dW_hh = sum of h_prev^T d(h W_hh).

  A 2-D product contracting the (T B) rows of both arrays as they lie (an Eigen dot); the 3-D
  einsum's lowering copied both operands into a YNN dot: 1.7x the CPU time in a probe of dW_hh
  alone (docs/benchmarks.md, GRU + MoE, branch gru5). A batch sharded with sharding in types over
  more than one device (the harness's explicit "data" axis) keeps the einsum, its result sharded
  as `like` (the weight): JAX refuses the rows-flattening reshape there. On one device the
  Trainer's "data" axis has size 1 and the 2-D product runs (`_one_device_unsharded`)."""
  a_TxBxH, b_TxBxG = _one_device_unsharded(a_TxBxH), _one_device_unsharded(b_TxBxG)
  sharding = _contracted_batch_sharding(a_TxBxH, like)
  if sharding is not None:
    return jnp.einsum('tbh,tbg->hg', a_TxBxH, b_TxBxG, out_sharding=sharding)
  return a_TxBxH.reshape(-1, a_TxBxH.shape[-1]).T @ b_TxBxG.reshape(-1, b_TxBxG.shape[-1])


def time_major_projection(x: jax.Array, w_DxG: jax.Array, b_G: jax.Array,
                          batch_major: bool) -> jax.Array:
  """x W + b laid out time-major (T, B, G) for a scan, from x (T, B, D), or (B, T, D) if
  `batch_major`.

  A batch-major input is projected in its own layout and the (narrower) gates are transposed,
  rather than transposing the input: XLA:CPU otherwise copies the whole (B, T, D) input into
  (T, B, D) before the dot (and keeps that copy for the weight gradient), which at seed 001's
  2,048-wide inputs costs more than the matmul's own memory traffic (docs/benchmarks.md).

  The gradient is hand-written (`_projection`): the weight gradient is computed as
  dW^T = dY^T X, a (G, D) product over the T B rows with the input in its own layout, then
  transposed (G x D, small); autodiff's dW = X^T dY ran as an Eigen dot at half the speed
  (docs/benchmarks.md, GRU + MoE: 2x at G = 96, 1.1x at G = 768 on this CPU). An input whose batch
  is sharded with sharding in types over more than one device (the harness's explicit "data"
  axis) keeps autodiff's gradient: JAX refuses the VJP's row-flattening reshape of a sharded
  batch. On one device (the axis of size 1 the Trainer shards over) the hand-written gradient
  runs (`_one_device_unsharded`).
  """
  if _contracted_batch_sharding(_one_device_unsharded(x), w_DxG) is not None:
    return _project(batch_major, x, w_DxG, b_G)
  return _projection(batch_major, x, w_DxG, b_G)


def _project(batch_major: bool, x, w_DxG, b_G):
  if not batch_major:
    return jnp.einsum('tbd,dg->tbg', x, w_DxG) + b_G
  return jnp.swapaxes(jnp.einsum('btd,dg->btg', x, w_DxG) + b_G, 0, 1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _projection(batch_major: bool, x, w_DxG, b_G):
  return _project(batch_major, x, w_DxG, b_G)


def _projection_fwd(batch_major, x, w_DxG, b_G):
  return _project(batch_major, x, w_DxG, b_G), (x, w_DxG)


def _projection_bwd(batch_major, saved, dy_TxBxG):
  x_in, w_DxG = saved
  x, dy_TxBxG = _one_device_unsharded(x_in), _one_device_unsharded(dy_TxBxG)
  # dy in the input's own row order, rows flattened: a copy of the G-wide gradient, never of the
  # D-wide input (contracting over (B, T) of a transposed dy let XLA transpose x instead). The
  # barrier keeps the simplifier from folding the final transpose back into the dot (the slower
  # X^T dY form).
  dy = jnp.swapaxes(dy_TxBxG, 0, 1) if batch_major else dy_TxBxG
  dy_NxG = dy.reshape(-1, dy.shape[-1])
  x_NxD = x.reshape(-1, x.shape[-1])
  dw_GxD = jax.lax.optimization_barrier(jnp.einsum('ng,nd->gd', dy_NxG, x_NxD))
  dx = (dy_NxG @ w_DxG.T).reshape(x.shape)   # dropped by XLA where x needs no gradient
  if x is not x_in:   # back to the input's sharding type
    dx = jax.sharding.reshard(dx, jax.typeof(x_in).sharding)
  return dx.astype(x.dtype), dw_GxD.T.astype(w_DxG.dtype), jnp.sum(dy_TxBxG, axis=(0, 1))


_projection.defvjp(_projection_fwd, _projection_bwd)


class GRULayer(nnx.Module):
  """One unidirectional GRU layer, torch.nn.GRU's parameters (see the section comment)."""

  def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / hidden**0.5
    self.hidden = hidden
    self.w_ih = torch_uniform(rngs, (in_features, 3 * hidden), bound)
    self.w_hh = torch_uniform(rngs, (hidden, 3 * hidden), bound)
    self.b_ih = torch_uniform(rngs, (3 * hidden,), bound)
    self.b_hh = torch_uniform(rngs, (3 * hidden,), bound)

  def gates(self, x: jax.Array, batch_major: bool = False) -> jax.Array:
    """Input projections of all steps, one matmul: (T, B, 3H), with b_ih + [b_hr, b_hz, 0].

    `x` is (T, B, D), or (B, T, D) with `batch_major` (see `time_major_projection`)."""
    h = self.hidden
    b_3H = self.b_ih[...] + jnp.concatenate([self.b_hh[...][:2 * h], jnp.zeros((h,))])
    return time_major_projection(x, self.w_ih[...], b_3H, batch_major)

  def recurrent(self) -> tuple[jax.Array, jax.Array]:
    """(w_hh (H, 3H), b_hn (H,)) for `gru_scan_streams`."""
    return self.w_hh[...], self.b_hh[...][2 * self.hidden:]


class LSTMLayer(nnx.Module):
  """One unidirectional LSTM layer, torch.nn.LSTM's parameters (w_ih = weight_ih_l{n}.T, ...)."""

  def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
    bound = 1.0 / hidden**0.5
    self.hidden = hidden
    self.w_ih = torch_uniform(rngs, (in_features, 4 * hidden), bound)
    self.w_hh = torch_uniform(rngs, (hidden, 4 * hidden), bound)
    self.b_ih = torch_uniform(rngs, (4 * hidden,), bound)
    self.b_hh = torch_uniform(rngs, (4 * hidden,), bound)

  def gates(self, x: jax.Array, batch_major: bool = False) -> jax.Array:
    """Input projections of all steps, one matmul: (T, B, 4H), with both biases.

    `x` is (T, B, D), or (B, T, D) with `batch_major` (see `time_major_projection`)."""
    return time_major_projection(x, self.w_ih[...], self.b_ih[...] + self.b_hh[...], batch_major)


RECURRENT_CELLS = {"gru": GRULayer, "lstm": LSTMLayer}


def run_recurrent_stacks(cell: str, stacks: list[nnx.List], xs_BxTxD: list[jax.Array],
                         mask_BxT: jax.Array | None, unroll: int | None = None,
                         time_major: bool = False) -> list[tuple[jax.Array, jax.Array]]:
  """Runs M unidirectional GRU or LSTM stacks of equal width and depth over one (B, T).

  The M recurrences of each layer share one `lax.scan` (`gru_scan_streams` / `lstm_scan`).

  Returns:
    per stack (outputs y_BxTxH of the last layer, its final state h_BxH); with `time_major` the
    outputs as the scan lays them out, y_TxBxH (a reader that picks a few steps, such as
    gru_moe's sequence-to-one head, then never transposes all of them).
  """
  if cell not in RECURRENT_CELLS:
    raise ValueError(f'unknown recurrent cell {cell!r}; use one of {sorted(RECURRENT_CELLS)}')
  b, t = xs_BxTxD[0].shape[:2]
  for x in xs_BxTxD:
    if x.ndim != 3 or x.shape[:2] != (b, t):
      raise ValueError(f'recurrent inputs must be (B, T, D) with one (B, T) = {(b, t)} for all '
                       f'modalities; got {[x.shape for x in xs_BxTxD]}')
  if mask_BxT is not None and mask_BxT.shape != (b, t):
    raise ValueError(f'mask_BxT has shape {mask_BxT.shape}; the inputs need {(b, t)}')
  n = len(stacks)
  mask_TxKxB = None
  if mask_BxT is not None:
    mask_TxKxB = jnp.broadcast_to(jnp.asarray(mask_BxT, bool).T[:, None, :], (t, n, b))
  ys = list(xs_BxTxD)   # the first layer reads the batch-major inputs, the others time-major
  for depth in range(len(stacks[0])):
    layers = [stack[depth] for stack in stacks]
    gates = [layer.gates(y, batch_major=depth == 0) for layer, y in zip(layers, ys)]
    if cell == "gru":
      w_hh, b_hn = zip(*(layer.recurrent() for layer in layers))
      ys, h_KxBxH = gru_scan_streams(gates, jnp.stack(w_hh), jnp.stack(b_hn), mask_TxKxB, unroll)
    else:
      w_hh = jnp.stack([layer.w_hh[...] for layer in layers])
      out_TxKxBxH, h_KxBxH = lstm_scan(jnp.stack(gates, axis=1), w_hh, mask_TxKxB, unroll)
      ys = [out_TxKxBxH[:, m] for m in range(n)]
  return [(y if time_major else jnp.swapaxes(y, 0, 1), h_KxBxH[m]) for m, y in enumerate(ys)]


class MultiRecurrent(nnx.Module):
  """One unidirectional GRU or LSTM stack per modality, run together (one scan per layer).

  `self.stacks[name]` is modality `name`'s list of layers (`GRULayer` / `LSTMLayer`). All
  modalities share width, depth, (B, T) and the mask.
  """

  def __init__(self, in_features: dict[str, int], hidden: int, num_layers: int = 1,
               cell: str = "gru", *, rngs: nnx.Rngs, unroll: int | None = None):
    if cell not in RECURRENT_CELLS:
      raise ValueError(f'unknown recurrent cell {cell!r}; use one of {sorted(RECURRENT_CELLS)}')
    self.cell = cell
    self.unroll = unroll
    make = RECURRENT_CELLS[cell]
    self.stacks = nnx.Dict({
        name: nnx.List([make(d if i == 0 else hidden, hidden, rngs=rngs)
                        for i in range(num_layers)])
        for name, d in in_features.items()})

  def __call__(self, xs_BxTxD: dict[str, jax.Array], mask_BxT: jax.Array | None = None,
               time_major: bool = False) -> dict[str, tuple[jax.Array, jax.Array]]:
    """name -> (outputs y_BxTxH, final state h_BxH) for the modalities in `xs_BxTxD`; with
    `time_major` the outputs are y_TxBxH."""
    names = list(xs_BxTxD)
    unknown = [n for n in names if n not in self.stacks]
    if unknown:
      raise KeyError(f'MultiRecurrent has no modality {unknown}; it has {list(self.stacks)}')
    results = run_recurrent_stacks(self.cell, [self.stacks[n] for n in names],
                                   [xs_BxTxD[n] for n in names], mask_BxT, self.unroll,
                                   time_major)
    return dict(zip(names, results))
