"""Seed 003: AttendAffectNet (Feature AAN, Temporal AAN, Feature + Temporal AAN).

Paper: Thao, Herremans, Roig, "AttendAffectNet" (seed 003; every default and its source:
docs/methods.md, section attendaffectnet).
One network per target (the paper trains valence and arousal separately):

- Feature AAN, as in the authors' released models (the fixture in tests/fixtures/attendaffectnet
  decides where the text is vague): one Linear(d_i -> 8) per stream; the results stacked as tokens
  in the configured order; no positional encoding; 6 pre-norm encoder layers of width 8
  (x + Dropout(MHA(LN(x))), then x + Dropout(FF(LN(x))) with FF = Dropout(ReLU(Linear 8x8)));
  2 heads with separate q, k, v and output linears, dropout on the attention weights; a final LN;
  the mean over the tokens; Dropout; Linear(8 -> 1). The released state dicts also hold an 8x8
  `src_embed` that their forward never applies: the fixture's outputs are reproduced only without it
  (max error 2e-7 without, 1.4 with), so the importer checks and drops it. The released
  audio-only / video-only models differ in two places (the `audio` / `video` config arguments
  follow them): FF = w(Dropout(x + tanh(x))) (`model.feed_forward="x_plus_tanh"`) and the head
  reads tanh(mean) (`model.head_activation="tanh"`).
- Residual blocks: pre-norm with a final LN (the released code, default `model.norm="pre"`), or the
  paper's text, post-norm LN(x + Dropout(sublayer(x))) with no final LN ("post"; every encoder and
  decoder layer, all variants).
- LayerNorm: the authors' a * (x - mean) / (std + eps) + b with the unbiased std (default,
  `model.layer_norm="authors"`), or the standard (x - mean) / sqrt(var + eps) ("standard").
- Temporal AAN: decoder-only over the L segments of a window. Each segment's streams -> Linear(8)
  each, concatenated (d = 8 x streams: the paper's d = 40 for its five streams, 16 / 24 for its
  audio-only / video-only rows) + sinusoidal positional encoding = the memory. The other
  input: the previous scalar outputs, each duplicated to width d, + the same positional encoding,
  shifted right by one with `model.start_value` first. Decoder layers: masked self-attention over the
  outputs, attention over the segments, FF, each pre-norm with a residual; final LN; Dropout;
  Linear(d -> 1) per position. Training: teacher forcing (the true previous values), parallel over
  the window. The loss: on per-clip examples (MediaEval 2016: L sub-segments of one clip) only the
  last output is returned, so the loss is the paper's sequence-to-one loss; on per-second windows
  the temporal phases' window sets `loss_on = "last"`: the loss is on each window's last valid
  output only, the paper's loss.
  Inference: step by step, re-feeding its own outputs, as one compiled loop
  (`lax.fori_loop` over the L steps). With `model.causal_memory` (emojax's choice, default) output j
  attends to segments <= j only, so output j of any window is the last output of the window of its
  first j + 1 segments; the last output of a window is the paper's sequence-to-one prediction.
- Feature + Temporal AAN: the Feature AAN's encoder per segment over its stream tokens, the encoded
  tokens concatenated (d = 8 x streams, emojax's choice: the paper's appendix is not in the text),
  then the temporal stage.

Inputs. Per-second windows (unit "second"): x[stream] (B, L, S, *row) with x_mask[stream] (B, L, S):
each clip of `data.clip_seconds` seconds is one segment, its streams averaged over the valid seconds
(done here in the forward; the data are not copied); a stream with several feature axes per second
(log-mel frames x bins) is first averaged over all but the last. Per-clip examples (unit "clip"):
x[stream] (B, D) is used as is, (B, T, *row) is averaged over T (over its valid rows
`batch["x_mask"][stream]` (B, T) when the harness padded it); the temporal variants split each
clip's valid seconds into L equal sub-segments (the paper's 4 sub-segments of a MediaEval 2016
excerpt). The layout comes from `config.inputs.unit`, never from the batch's masks.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from emojax import contract, errors, layout
from emojax.nn import folded, layers

VARIANTS = ("feature", "temporal", "feature_temporal")
LAYER_NORMS = ("authors", "standard")
NORMS = ("pre", "post")
FEED_FORWARDS = ("relu", "x_plus_tanh")
HEAD_ACTIVATIONS = ("none", "tanh")
# Keys added after configs were first saved: a config.json without them ran these.
MODEL_DEFAULTS = {"norm": "pre", "feed_forward": "relu", "head_activation": "none"}
# The order of the released models' five streams (sample_inputs.npz, linear1..linear5).
RELEASED_STREAMS = ("resnet50", "flownet", "i3d", "vggish", "emobase")
# Attention whose scores take at most this many products per (example, head) (queries x keys x
# head width) is computed as broadcast products and sums (one loop fusion each) rather than as a
# batched dot of tiny matrices: the Feature AAN's 5 x 5 x 4 per head (docs/benchmarks.md).
ELEMENTWISE_ATTENTION_MAX = 256
# Token encoders of at most this width (d_model) run feature-major: activations (width, tokens,
# batch), the batch the minor axis, so each LayerNorm / attention reduction is a sum of a few
# contiguous batch-long vectors and each Linear one GEMM W^T @ X (emojax's choice; measured at the
# Feature AAN's width 8, docs/benchmarks.md). Same parameters, same dropout masks (drawn in the
# token-major shape and transposed); sums in another order (last-bit differences).
FEATURE_MAJOR_MAX_WIDTH = 16


class LayerNorm(nnx.Module):
  """The authors' LayerNorm (unbiased std, eps added to the std) or the standard one."""

  def __init__(self, features: int, kind: str = "authors", eps: float = 1e-6):
    if kind not in LAYER_NORMS:
      raise errors.ConfigError(f"config.model.layer_norm={kind!r}; use one of {LAYER_NORMS}")
    self.kind, self.eps = kind, eps
    self.scale = nnx.Param(jnp.ones((features,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((features,), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    xc = x - mean
    if self.kind == "authors":
      n = x.shape[-1]
      std = jnp.sqrt(jnp.sum(xc * xc, axis=-1, keepdims=True) / max(n - 1, 1))
      y = xc / (std + self.eps)
    else:
      y = xc * jax.lax.rsqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + self.eps)
    return self.scale[...] * y + self.bias[...]

  def fm(self, x: jax.Array) -> jax.Array:
    """The same norm over axis 0 of a feature-major x (width, ...)."""
    mean = jnp.mean(x, axis=0, keepdims=True)
    xc = x - mean
    extra = (1,) * (x.ndim - 1)
    if self.kind == "authors":
      n = x.shape[0]
      std = jnp.sqrt(jnp.sum(xc * xc, axis=0, keepdims=True) / max(n - 1, 1))
      y = xc / (std + self.eps)
    else:
      y = xc * jax.lax.rsqrt(jnp.mean(xc * xc, axis=0, keepdims=True) + self.eps)
    return self.scale[...].reshape(-1, *extra) * y + self.bias[...].reshape(-1, *extra)


def _dropout_fm(drop: nnx.Dropout, x: jax.Array, perm: tuple, rngs) -> jax.Array:
  """`drop(x_tm, rngs)` for x = x_tm.transpose(perm): the mask of nnx.Dropout (the same key, the
  same bits, drawn in x_tm's shape) transposed, so both layouts drop the same entries."""
  if drop.rate == 0.0 or drop.deterministic:
    return x
  if drop.rate == 1.0:
    return jnp.zeros_like(x)
  rngs = rngs if rngs is not None else drop.rngs
  if isinstance(rngs, nnx.Rngs):
    key = rngs[drop.rng_collection]()
  elif isinstance(rngs, nnx.RngStream):
    key = rngs()
  else:
    key = rngs
  keep = 1.0 - drop.rate
  shape = [0] * x.ndim
  for i, p in enumerate(perm):
    shape[p] = x.shape[i]
  for dim in drop.broadcast_dims:
    shape[dim] = 1
  mask = jnp.broadcast_to(jax.random.bernoulli(key, p=keep, shape=shape).transpose(perm), x.shape)
  return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def _linear_fm(lin: nnx.Linear, x: jax.Array) -> jax.Array:
  """Linear on a feature-major x (in, ...) -> (out, ...): one GEMM W^T @ X (`folded.linear_fm`:
  under an ensemble's vmap, one GEMM for all members)."""
  return folded.linear_fm(lin.kernel[...], lin.bias[...], x)


class MultiHeadAttention(nnx.Module):
  """h heads with separate q, k, v and output linears; dropout on the attention weights."""

  def __init__(self, d_model: int, heads: int, dropout: float, *, rngs: nnx.Rngs):
    if d_model % heads:
      raise errors.ConfigError(f"model width {d_model} is not divisible by "
                               f"config.model.heads={heads}")
    self.heads = heads
    self.q = layers.torch_linear(d_model, d_model, rngs)
    self.k = layers.torch_linear(d_model, d_model, rngs)
    self.v = layers.torch_linear(d_model, d_model, rngs)
    self.out = layers.torch_linear(d_model, d_model, rngs)
    self.drop = nnx.Dropout(dropout)

  def __call__(self, q_NxQxD, kv_NxKxD, mask_NxQxK=None, rngs=None):
    n, tq, d = q_NxQxD.shape
    tk, h = kv_NxKxD.shape[1], self.heads
    split = lambda z, t: z.reshape(n, t, h, d // h).transpose(0, 2, 1, 3)
    if q_NxQxD is kv_NxKxD:   # self-attention: q, k, v in one matmul (fewer tiny ops on CPU)
      w = jnp.concatenate([self.q.kernel[...], self.k.kernel[...], self.v.kernel[...]], axis=1)
      b = jnp.concatenate([self.q.bias[...], self.k.bias[...], self.v.bias[...]])
      qkv = q_NxQxD @ w + b
      q, k, v = (split(qkv[..., i * d:(i + 1) * d], tq) for i in range(3))
    else:
      q = split(self.q(q_NxQxD), tq)
      k = split(self.k(kv_NxKxD), tk)
      v = split(self.v(kv_NxKxD), tk)
    small = tq * tk * (d // h) <= ELEMENTWISE_ATTENTION_MAX
    if small:   # a few products per score: one loop fusion instead of a batched dot of tiny matrices
      s_NxHxQxK = jnp.sum(q[:, :, :, None, :] * k[:, :, None, :, :], axis=-1) / math.sqrt(d // h)
    else:
      s_NxHxQxK = jnp.einsum("nhqc,nhkc->nhqk", q, k) / math.sqrt(d // h)
    if mask_NxQxK is not None:
      s_NxHxQxK = jnp.where(mask_NxQxK[:, None], s_NxHxQxK, -1e9)
    p = self.drop(jax.nn.softmax(s_NxHxQxK, axis=-1), rngs=rngs)
    if small:
      o = jnp.sum(p[..., None] * v[:, :, None, :, :], axis=3)
    else:
      o = jnp.einsum("nhqk,nhkc->nhqc", p, v)
    return self.out(o.transpose(0, 2, 1, 3).reshape(n, tq, d))

  def fm(self, x_DxTxN, mask_NxQxK=None, rngs=None):
    """Self-attention on feature-major tokens (D, T, N) -> (D, T, N) (`attention_fm`)."""
    d, t, n = x_DxTxN.shape
    h = self.heads
    w = jnp.concatenate([self.q.kernel[...], self.k.kernel[...], self.v.kernel[...]], axis=1)
    b = jnp.concatenate([self.q.bias[...], self.k.bias[...], self.v.bias[...]])
    qkv = folded.linear_fm(w, b, x_DxTxN)
    drop = None
    if not (self.drop.rate == 0.0 or self.drop.deterministic):
      drop = _dropout_fm(self.drop, jnp.ones((h, t, t, n), jnp.float32), (1, 2, 3, 0), rngs)
    mask = None if mask_NxQxK is None else mask_NxQxK.transpose(1, 2, 0)[None]
    o = attention_fm(qkv.reshape(3, h, d // h, t, n), drop, mask)
    return _linear_fm(self.out, o.reshape(d, t, n))


def _attention_fm_fwd(qkv, drop, mask):
  q, k, v = qkv[0], qkv[1], qkv[2]                     # (H, C, T, N)
  c = q.shape[1]
  s = jnp.sum(q[:, :, :, None, :] * k[:, :, None, :, :], axis=1) / math.sqrt(c)   # (H, Q, K, N)
  if mask is not None:
    s = jnp.where(mask, s, -1e9)
  e = jnp.exp(s - jnp.max(s, axis=2, keepdims=True))
  p = e / jnp.sum(e, axis=2, keepdims=True)
  pd = p if drop is None else p * drop
  o = jnp.sum(pd[:, None] * v[:, :, None, :, :], axis=3)                         # (H, C, Q, N)
  return o, (q, k, v, p, drop, mask)


@jax.custom_vjp
def attention_fm(qkv, drop, mask):
  """softmax(q k^T / sqrt(C)) (masked, times the dropout mask `drop`: 0 or 1 / keep) @ v for
  feature-major heads qkv (3, H, C, T, N) -> (H, C, T, N): every product a broadcast product
  summed over the head width, the keys or the queries with the batch the minor axis; the backward
  written out the same way (autodiff's would turn the q / k / v slices into pads fused into the
  reductions)."""
  return _attention_fm_fwd(qkv, drop, mask)[0]


def _attention_fm_bwd(res, do):
  q, k, v, p, drop, mask = res
  c = q.shape[1]
  pd = p if drop is None else p * drop
  dv = jnp.sum(pd[:, None] * do[:, :, :, None, :], axis=2)                       # (H, C, K, N)
  dp = jnp.sum(do[:, :, :, None, :] * v[:, :, None, :, :], axis=1)               # (H, Q, K, N)
  if drop is not None:
    dp = dp * drop
  ds = p * (dp - jnp.sum(dp * p, axis=2, keepdims=True))
  if mask is not None:
    ds = jnp.where(mask, ds, 0.0)
  ds = ds / math.sqrt(c)
  dq = jnp.sum(ds[:, None] * k[:, :, None, :, :], axis=3)                        # (H, C, Q, N)
  dk = jnp.sum(ds[:, None] * q[:, :, :, None, :], axis=2)                        # (H, C, K, N)
  return (jnp.stack([dq, dk, dv]), None if drop is None else jnp.zeros_like(drop),
          None if mask is None else np.zeros(mask.shape, jax.dtypes.float0))


attention_fm.defvjp(_attention_fm_fwd, _attention_fm_bwd)


class FeedForward(nnx.Module):
  """The released FFs (one d x d linear, not two): "relu" Dropout(ReLU(w(x))) (the five-stream
  model), "x_plus_tanh" w(Dropout(x + tanh(x))) (the audio-only / video-only models)."""

  def __init__(self, d_model: int, dropout: float, kind: str = "relu", *, rngs: nnx.Rngs):
    if kind not in FEED_FORWARDS:
      raise errors.ConfigError(f"config.model.feed_forward={kind!r}; use one of {FEED_FORWARDS}")
    self.kind = kind
    self.w = layers.torch_linear(d_model, d_model, rngs)
    self.drop = nnx.Dropout(dropout)

  def __call__(self, x, rngs=None):
    if self.kind == "x_plus_tanh":
      return self.w(self.drop(x + jnp.tanh(x), rngs=rngs))
    return self.drop(jax.nn.relu(self.w(x)), rngs=rngs)

  def fm(self, x, perm, rngs=None):
    """The same on feature-major x (`perm`: x = x_token_major.transpose(perm))."""
    if self.kind == "x_plus_tanh":
      return _linear_fm(self.w, _dropout_fm(self.drop, x + jnp.tanh(x), perm, rngs))
    return _dropout_fm(self.drop, jax.nn.relu(_linear_fm(self.w, x)), perm, rngs)


def _sublayer(norm: str, ln: LayerNorm, drop: nnx.Dropout, x, fn, rngs):
  """Residual block: "pre" x + Drop(fn(LN(x))) (the released code), "post" LN(x + Drop(fn(x)))
  (the paper's text)."""
  if norm == "post":
    return ln(x + drop(fn(x), rngs=rngs))
  return x + drop(fn(ln(x)), rngs=rngs)


class EncoderLayer(nnx.Module):
  def __init__(self, d: int, a: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.norm_position = a.norm
    self.norm1 = LayerNorm(d, a.layer_norm, a.layer_norm_eps)
    self.attn = MultiHeadAttention(d, a.heads, a.attention_dropout, rngs=rngs)
    self.norm2 = LayerNorm(d, a.layer_norm, a.layer_norm_eps)
    self.ff = FeedForward(d, a.dropout, a.feed_forward, rngs=rngs)
    self.drop1 = nnx.Dropout(a.dropout)
    self.drop2 = nnx.Dropout(a.dropout)

  def __call__(self, x, mask=None, rngs=None):
    n = self.norm_position
    x = _sublayer(n, self.norm1, self.drop1, x, lambda y: self.attn(y, y, mask, rngs=rngs), rngs)
    return _sublayer(n, self.norm2, self.drop2, x, lambda y: self.ff(y, rngs=rngs), rngs)

  def fm(self, x_DxTxN, mask=None, rngs=None):
    """The same layer on feature-major tokens (D, T, N) (`FEATURE_MAJOR_MAX_WIDTH`)."""
    perm = (2, 1, 0)

    def sub(ln, drop, x, fn):
      if self.norm_position == "post":
        return ln.fm(x + _dropout_fm(drop, fn(x), perm, rngs))
      return x + _dropout_fm(drop, fn(ln.fm(x)), perm, rngs)
    x = sub(self.norm1, self.drop1, x_DxTxN, lambda y: self.attn.fm(y, mask, rngs=rngs))
    return sub(self.norm2, self.drop2, x, lambda y: self.ff.fm(y, perm, rngs=rngs))


class DecoderLayer(nnx.Module):
  def __init__(self, d: int, a: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.norm_position = a.norm
    self.norm1 = LayerNorm(d, a.layer_norm, a.layer_norm_eps)
    self.self_attn = MultiHeadAttention(d, a.heads, a.attention_dropout, rngs=rngs)
    self.norm2 = LayerNorm(d, a.layer_norm, a.layer_norm_eps)
    self.src_attn = MultiHeadAttention(d, a.heads, a.attention_dropout, rngs=rngs)
    self.norm3 = LayerNorm(d, a.layer_norm, a.layer_norm_eps)
    self.ff = FeedForward(d, a.dropout, a.feed_forward, rngs=rngs)
    self.drops = nnx.List([nnx.Dropout(a.dropout) for _ in range(3)])

  def __call__(self, x, memory, self_mask, memory_mask, rngs=None):
    n, d = self.norm_position, self.drops
    x = _sublayer(n, self.norm1, d[0], x, lambda y: self.self_attn(y, y, self_mask, rngs=rngs),
                  rngs)
    x = _sublayer(n, self.norm2, d[1], x,
                  lambda y: self.src_attn(y, memory, memory_mask, rngs=rngs), rngs)
    return _sublayer(n, self.norm3, d[2], x, lambda y: self.ff(y, rngs=rngs), rngs)


def _final_norm(a: ml_collections.ConfigDict, d: int) -> LayerNorm | None:
  """The released (pre-norm) stacks end in a LayerNorm; post-norm layers already end in one."""
  return LayerNorm(d, a.layer_norm, a.layer_norm_eps) if a.norm == "pre" else None


def _head_input(kind: str, x: jax.Array) -> jax.Array:
  """What the head's Dropout + Linear read: x ("none") or tanh(x) (the audio-only / video-only
  released models)."""
  return jnp.tanh(x) if kind == "tanh" else x


def positional_encoding(length: int, d: int) -> np.ndarray:
  """Sinusoidal PE (eq. 2, as in the Transformer): sin on even, cos on odd dims, base 10000."""
  pos = np.arange(length, dtype=np.float64)[:, None]
  div = np.exp(np.arange(0, d, 2, dtype=np.float64) * -(math.log(10000.0) / d))
  pe = np.zeros((length, d), np.float64)
  pe[:, 0::2] = np.sin(pos * div)
  pe[:, 1::2] = np.cos(pos * div)[:, : d // 2]
  return pe.astype(np.float32)


def _flat_dim(dim) -> int:
  """The Linear's input size: the last feature axis (a per-second store gives it as an int, a
  per-clip store the example's shape, e.g. (T, D))."""
  return int(dim[-1]) if isinstance(dim, (tuple, list)) else int(dim)


def _last_axis(x: jax.Array, lead: int) -> jax.Array:
  """(*lead, *row) -> (*lead, row[-1]): a stream with several feature axes per row (e.g. log-mel
  frames x bins per second) is averaged over all but the last."""
  x = x.astype(jnp.float32)
  if x.ndim > lead + 1:
    x = jnp.mean(x, axis=tuple(range(lead, x.ndim - 1)))
  return x


class StreamEncoder(nnx.Module):
  """Per-stream Linear(d_i -> 8) and, for the feature variants, the 6-layer token encoder."""

  def __init__(self, dims: dict[str, int], a: ml_collections.ConfigDict, encoder: bool, *,
               rngs: nnx.Rngs):
    self.streams = tuple(a.streams)
    self.proj = nnx.Dict({s: layers.torch_linear(_flat_dim(dims[s]), a.d_model, rngs)
                          for s in self.streams})
    if encoder:
      self.layers = nnx.List([EncoderLayer(a.d_model, a, rngs=rngs)
                              for _ in range(a.encoder_layers)])
      self.norm = _final_norm(a, a.d_model)

  def tokens(self, feats: dict[str, jax.Array]) -> jax.Array:
    """{stream: (..., D_s)} -> (..., streams, 8)."""
    return jnp.stack([self.proj[s](feats[s]) for s in self.streams], axis=-2)

  def encode(self, feats: dict[str, jax.Array], rngs=None) -> jax.Array:
    """{stream: (..., D_s)} -> encoded tokens (..., streams, 8)."""
    t = self.tokens(feats)
    lead = t.shape[:-2]
    x = t.reshape(-1, *t.shape[-2:])
    if x.shape[-1] <= FEATURE_MAJOR_MAX_WIDTH:   # (N, T, D) -> (D, T, N) and back
      x = x.transpose(2, 1, 0)
      for layer in self.layers:
        x = layer.fm(x, None, rngs=rngs)
      if self.norm is not None:
        x = self.norm.fm(x)
      x = x.transpose(2, 1, 0)
    else:
      for layer in self.layers:
        x = layer(x, None, rngs=rngs)
      if self.norm is not None:
        x = self.norm(x)
    return x.reshape(*lead, *x.shape[-2:])


class FeatureAAN(nnx.Module):
  def __init__(self, dims, a, *, rngs: nnx.Rngs):
    self.streams = StreamEncoder(dims, a, True, rngs=rngs)
    self.head_activation = a.head_activation
    self.drop = nnx.Dropout(a.head_dropout)
    self.head = layers.torch_linear(a.d_model, 1, rngs)

  def __call__(self, feats: dict[str, jax.Array], rngs=None) -> jax.Array:
    """{stream: (..., D_s)} -> (...)."""
    pooled = _head_input(self.head_activation, jnp.mean(self.streams.encode(feats, rngs), axis=-2))
    return self.head(self.drop(pooled, rngs=rngs))[..., 0]


class TemporalAAN(nnx.Module):
  """Temporal AAN (feature=False) or Feature + Temporal AAN (feature=True)."""

  def __init__(self, dims, a, feature: bool, *, rngs: nnx.Rngs):
    self.streams = StreamEncoder(dims, a, feature, rngs=rngs)
    self.feature = feature
    self.d = a.d_model * len(a.streams)
    self.start_value = float(a.start_value)
    self.causal_memory = bool(a.causal_memory)
    self.layers = nnx.List([DecoderLayer(self.d, a, rngs=rngs) for _ in range(a.decoder_layers)])
    self.norm = _final_norm(a, self.d)
    self.head_activation = a.head_activation
    self.drop = nnx.Dropout(a.temporal_dropout)
    self.head = layers.torch_linear(self.d, 1, rngs)

  def memory(self, feats: dict[str, jax.Array], rngs=None) -> jax.Array:
    """{stream: (B, L, D_s)} -> segments with PE (B, L, d)."""
    t = self.streams.encode(feats, rngs) if self.feature else self.streams.tokens(feats)
    m = t.reshape(*t.shape[:-2], self.d)
    return m + positional_encoding(m.shape[1], self.d)

  def decode(self, memory_BxLxD, prev_BxL, valid_BxL, rngs=None) -> jax.Array:
    """Outputs (B, L) given the previous outputs (B, L): position j reads prev[:, :j]."""
    b, l, d = memory_BxLxD.shape
    shifted = jnp.concatenate([jnp.full((b, 1), self.start_value, prev_BxL.dtype),
                               prev_BxL[:, :-1]], axis=1)
    x = jnp.broadcast_to(shifted[..., None], (b, l, d)) + positional_encoding(l, d)
    causal = jnp.tril(jnp.ones((l, l), bool))
    key_ok = valid_BxL[:, None, :].astype(bool)
    self_mask = causal[None] & key_ok
    memory_mask = (causal[None] & key_ok) if self.causal_memory else jnp.broadcast_to(
        key_ok, (b, l, l))
    for layer in self.layers:
      x = layer(x, memory_BxLxD, self_mask, memory_mask, rngs=rngs)
    if self.norm is not None:
      x = self.norm(x)
    return self.head(self.drop(_head_input(self.head_activation, x), rngs=rngs))[..., 0]

  def teacher_forced(self, feats, y_BxL, valid_BxL, rngs=None) -> jax.Array:
    return self.decode(self.memory(feats, rngs), y_BxL, valid_BxL, rngs)

  def autoregressive(self, feats, valid_BxL) -> jax.Array:
    """Step-by-step inference (one compiled loop): output j re-fed as the input of step j + 1."""
    memory = self.memory(feats)
    l = memory.shape[1]

    def step(j, out_BxL):
      z_BxL = self.decode(memory, out_BxL, valid_BxL)
      return jnp.where(jnp.arange(l)[None] == j, z_BxL, out_BxL)   # (no scatter: shards as is)

    return jax.lax.fori_loop(0, l, step, jnp.zeros(memory.shape[:2], memory.dtype))


def net_config(config: ml_collections.ConfigDict, target: str) -> ml_collections.ConfigDict:
  """The numbers of one target's network: config.model with its streams (config.inputs)."""
  cfg = layout.for_target(config, target)
  return ml_collections.ConfigDict({**MODEL_DEFAULTS, **cfg.model.to_dict(),
                                   "streams": tuple(cfg.inputs.streams)})


class AttendAffectNet(nnx.Module):
  def __init__(self, config: ml_collections.ConfigDict, dims: dict, *, rngs: nnx.Rngs):
    def make(a):
      return {"feature": lambda: FeatureAAN(dims, a, rngs=rngs),
              "temporal": lambda: TemporalAAN(dims, a, False, rngs=rngs),
              "feature_temporal": lambda: TemporalAAN(dims, a, True, rngs=rngs)}[a.variant]()
    self.nets = nnx.Dict({t: make(net_config(config, t)) for t in config.targets})


# ----------------------------------------------------------------------------------------------
# Inputs.


def clip_features(batch: dict, streams: Sequence[str]) -> dict[str, jax.Array]:
  """Per-second windows x (B, L, S, *row) -> each clip's mean over its valid seconds (B, L, D)."""
  out = {}
  for s in streams:
    x = _last_axis(batch["x"][s], 3)
    mask = batch["x_mask"][s].astype(jnp.float32)
    out[s] = jnp.einsum("blsd,bls->bld", x, mask) / jnp.maximum(mask.sum(-1), 1.0)[..., None]
  return out


def subsegment_features(batch: dict, streams: Sequence[str], num: int) -> dict[str, jax.Array]:
  """Per-clip examples x (B, T, *row) -> the means of `num` equal parts of the valid T (B, num, D)."""
  out = {}
  for s in streams:
    x = _last_axis(batch["x"][s], 2)
    b, t = x.shape[:2]
    mask = _row_mask(batch, s, b, t)
    n = jnp.maximum(mask.sum(-1, keepdims=True), 1.0)                    # (B, 1)
    idx = jnp.cumsum(mask, axis=-1) - 1.0                                # valid position
    part = jnp.clip(jnp.floor(idx * num / n), 0, num - 1).astype(jnp.int32)
    w_BxTxK = jax.nn.one_hot(part, num) * mask[..., None]
    out[s] = jnp.einsum("btd,btk->bkd", x, w_BxTxK) / jnp.maximum(
        w_BxTxK.sum(1), 1.0)[..., None]
  return out


def clip_vectors(batch: dict, streams: Sequence[str]) -> dict[str, jax.Array]:
  """Per-clip examples -> (B, D): (B, D) as is, (B, T, *row) averaged over (valid) T."""
  out = {}
  for s in streams:
    x = batch["x"][s].astype(jnp.float32)
    if x.ndim == 2:
      out[s] = x
      continue
    x = _last_axis(x, 2)
    b, t = x.shape[:2]
    mask = _row_mask(batch, s, b, t)
    out[s] = jnp.einsum("btd,bt->bd", x, mask) / jnp.maximum(mask.sum(-1), 1.0)[:, None]
  return out


def _row_mask(batch: dict, stream: str, b: int, t: int) -> jax.Array:
  """(B, T) float: the valid rows of a per-clip stream (`x_mask`: the harness pads ragged streams
  and marks their rows there; a stream without an entry has no padding)."""
  mask = batch.get("x_mask", {}).get(stream)
  return jnp.ones((b, t), jnp.float32) if mask is None else mask.astype(jnp.float32)


def check_streams(batch: dict, streams: Sequence[str]) -> None:
  missing = [s for s in streams if s not in batch["x"]]
  if missing:
    raise errors.DataError(f"the batch lacks stream(s) {missing} that config.inputs.streams needs; "
                           f"it has {sorted(batch['x'])}")


# ----------------------------------------------------------------------------------------------
# Forwards: (model, batch, rngs) -> outputs shaped like the labels.


def _unit(config) -> str:
  return config.inputs.unit


def feature_forward(config, target: str):
  streams = layout.streams(config)

  def forward(model: AttendAffectNet, batch: dict, rngs=None):
    check_streams(batch, streams)
    net = model.nets[target]
    if _unit(config) == "clip":            # per-clip examples -> (B,)
      return net(clip_vectors(batch, streams), rngs)
    return net(clip_features(batch, streams), rngs)          # (B, L)
  return forward


def _temporal_inputs(config, batch):
  streams = layout.streams(config)
  check_streams(batch, streams)
  if _unit(config) == "clip":        # per-clip: L equal sub-segments of each clip
    feats = subsegment_features(batch, streams, config.model.num_clips)
    valid = jnp.ones(batch["clip_mask"].shape + (config.model.num_clips,), bool)
  else:
    feats, valid = clip_features(batch, streams), batch["clip_mask"].astype(bool)
  return feats, valid


def temporal_infer_forward(config, target: str):
  """Autoregressive inference (no labels): each step re-feeds the outputs so far."""

  def forward(model: AttendAffectNet, batch: dict, rngs=None):
    del rngs
    feats, valid = _temporal_inputs(config, batch)
    out = model.nets[target].autoregressive(feats, valid)
    return out[:, -1] if _unit(config) == "clip" else out
  return forward


def temporal_train_forward(config, target: str):
  """Teacher forcing: the true previous values as the decoder's other input. Without `rngs` (the
  harness's validation during training, model.eval()) it decodes step by step like the final
  outputs, so the best step is chosen on what inference will do."""
  infer = temporal_infer_forward(config, target)

  def forward(model: AttendAffectNet, batch: dict, rngs=None):
    if rngs is None:
      return infer(model, batch, None)
    feats, valid = _temporal_inputs(config, batch)
    y = batch["y"][target].astype(jnp.float32)
    if _unit(config) == "clip":   # every sub-segment carries the clip's value; the clip's
      y = jnp.broadcast_to(y[:, None], valid.shape)   # prediction is the last output
      return model.nets[target].teacher_forced(feats, y, valid, rngs)[:, -1]
    return model.nets[target].teacher_forced(feats, y, valid, rngs)
  return forward


def predict_film(net: TemporalAAN, feats: dict[str, jax.Array], num_clips: int) -> jax.Array:
  """A whole film's segments {stream: (T, D)} -> (T,): segment t's prediction is the last output
  of the autoregressive decode of the window of L segments that ends with it (the first L - 1
  segments: the window of the segments so far). One compiled program (vmap over windows of the
  fori_loop over steps); jit it around this call."""
  t = next(iter(feats.values())).shape[0]
  l = num_clips
  start = jnp.arange(t) - (l - 1)                                         # (T,)
  idx = jnp.clip(start[:, None] + jnp.arange(l)[None], 0, t - 1)          # (T, L)
  valid = (start[:, None] + jnp.arange(l)[None]) >= 0
  windows = {s: x[idx] for s, x in feats.items()}                          # (T, L, D)
  # Left-padded windows: move the valid segments to the front so that positions start at 0.
  shift = jnp.clip(-start, 0, l - 1)                                       # pads per window
  roll = (jnp.arange(l)[None] + shift[:, None]) % l
  windows = {s: jnp.take_along_axis(x, roll[..., None], axis=1) for s, x in windows.items()}
  valid = jnp.take_along_axis(valid, roll, axis=1)
  out_TxL = net.autoregressive(windows, valid)
  last = jnp.sum(valid, axis=1) - 1
  return jnp.take_along_axis(out_TxL, last[:, None], axis=1)[:, 0]


# ----------------------------------------------------------------------------------------------
# The method contract.


def check_config(config) -> None:
  a, unit = config.model, config.inputs.unit
  if a.variant not in VARIANTS:
    raise errors.ConfigError(f"config.model.variant={a.variant!r}; use one of {VARIANTS}")
  if a.layer_norm not in LAYER_NORMS:
    raise errors.ConfigError(f"config.model.layer_norm={a.layer_norm!r}; use one of {LAYER_NORMS}")
  for key, allowed in (("norm", NORMS), ("feed_forward", FEED_FORWARDS),
                       ("head_activation", HEAD_ACTIVATIONS)):
    value = a.get(key, MODEL_DEFAULTS[key])
    if value not in allowed:
      raise errors.ConfigError(f"config.model.{key}={value!r}; use one of {allowed}")
  for t in config.targets:
    streams = tuple(layout.for_target(config, t).inputs.streams)
    if not streams:
      raise errors.ConfigError("config.inputs.streams is empty; name the dataset streams to "
                               "attend to")
    if len(set(streams)) != len(streams):
      raise errors.ConfigError(f"config.inputs.streams={streams} names a stream twice")
  if unit not in contract.units():
    raise errors.ConfigError(f"config.inputs.unit={unit!r}; use one of {contract.units()}")
  if a.variant != "feature" and a.num_clips < 1:
    raise errors.ConfigError(f"config.model.num_clips={a.num_clips}: the temporal window needs "
                             ">= 1 segment")


def task(config) -> contract.Task:
  return layout.task(config, unit=config.inputs.unit, loss=config.train.loss)


def modalities(config) -> tuple[str, ...]:
  return layout.streams(config)


def create(config, feature_dims: dict, rngs: nnx.Rngs) -> AttendAffectNet:
  check_config(config)
  missing = [s for s in layout.streams(config) if s not in feature_dims]
  if missing:
    raise errors.DataError(f"the dataset has no stream(s) {missing} (config.inputs.streams); "
                           f"it has {sorted(feature_dims)}")
  return AttendAffectNet(config, feature_dims, rngs=rngs)


def _window(config, training: bool = False) -> dict:
  """The per-second store's window (`Phase` / `Output.window`): L clips, and in training the loss
  on each window's last valid clip only; per-clip examples and the feature variant: none."""
  if config.inputs.unit == "clip" or config.model.variant == "feature":
    return {}
  return {"num_clips": int(config.model.num_clips), **({"loss_on": "last"} if training else {})}


def _phase_task(config, target: str) -> contract.Task:
  return layout.task(config, (target,), unit=config.inputs.unit, loss=config.train.loss)


def plan(config, done: list[dict]) -> contract.Phase | None:
  """One phase per target (trained separately, as in the paper), each over its own network."""
  names = {r["name"] for r in done}
  tr = config.train
  for target in config.targets:
    name = f"{target}/{config.model.variant}"
    if name in names:
      continue
    fwd = (feature_forward(config, target) if config.model.variant == "feature"
           else temporal_train_forward(config, target))
    return contract.Phase(
        name=name, task=_phase_task(config, target), forward=fwd,
        trainable=layers.params_under(("nets", target)),
        window=_window(config, training=True), steps=tr.steps, epochs=tr.epochs,
        optimizer=contract.optimizer_spec(config.optim), eval_every=tr.eval_every_steps,
        eval_every_epochs=tr.eval_every_epochs, patience=tr.patience,
        info={"variant": config.model.variant, "streams": list(layout.streams(config, target))})
  return None


def outputs(config) -> dict[str, contract.Output]:
  out = {}
  for target in config.targets:
    fwd = (feature_forward(config, target) if config.model.variant == "feature"
           else temporal_infer_forward(config, target))
    out[target] = contract.Output(forward=fwd, task=_phase_task(config, target),
                                  window=_window(config))
  return out

