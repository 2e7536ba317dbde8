"""3D / (2+1)D / 2D convolutions for the video convnets of seed 004, lowered to GEMMs on CPU.

XLA's CPU backend runs `lax.conv_general_dilated` on 5-D (NDHWC) inputs through a slow generic
loop, while its dot (matmul) and 2-D convolution paths reach a good share of the machine's peak.
`Conv` therefore computes one convolution by one of several equivalent lowerings, all on
channels-last tensors x_BxTxHxWxC with kernels w of shape (kt, kh, kw, Cin, Cout):

  "xla"        lax.conv_general_dilated on NDHWC (the reference; also the 2-D path when kt == 1)
  "frames2d"   the kt temporal taps stacked on the channel axis, then one 2-D convolution over
               the B*T' frames with a (kh, kw, kt*Cin, Cout) kernel (kt x the input in memory)
  "taps2d"     a sum over the kt temporal taps of 2-D convolutions over frames (no stacking)
  "gemm"       full im2col: the kt*kh*kw shifted (strided) slices concatenated on the channel
               axis, then one dot with the (kt*kh*kw*Cin, Cout) kernel (kt*kh*kw x the input)
  "gemm_rows"  the kw width taps concatenated (kw x the input), then a sum over the kt*kh
               (temporal, row) taps of dots with K = kw*Cin
  "frames2d_xladw"  "frames2d"'s forward and input gradient with "xla"'s kernel gradient (a custom
               VJP): on the full-resolution early layers XLA's 3-D backward-filter convolution
               beats the 2-D one of the stacked frames (docs/benchmarks.md, per-layer profile)
  "frames2d_scandw"  "frames2d"'s forward and input gradient with a kernel gradient computed one
               output frame at a time (a custom VJP, `frame_scan_dw`): a scan over the B*T' output
               frames builds each frame's channel-major patch matrix (kt*kh*kw*Cin, H'*W') from
               strided slices and accumulates its product with that frame's output gradient
               (H'*W', Cout). The patches of one frame stay in cache (a whole-batch im2col of
               the 112 px layers is 260+ MB, and building it costs more than the GEMM): on
               C3D's full-resolution early layers its kernel gradient measured 1.7-7x faster than
               "frames2d"'s and 1.4-4x faster than XLA's 3-D backward-filter convolution
               (docs/benchmarks.md, per-layer profile)

Every lowering computes the same function (tests/test_video_conv.py checks values and gradients
against `lax.conv_general_dilated`); they differ only in speed and memory. `lowering="auto"` picks
per layer (per input shape, kernel, stride and dtype) the fastest one measured by `tune`: a
forward+backward micro-benchmark of each candidate, run once and cached in a JSON file
(`cache_path()`: $EMOJAX_VIDEO_CONV_CACHE or ~/.cache/emojax/video_conv_lowering.json, keyed by the
JAX version, backend and CPU count; an entry timed over another candidate set is timed again).
Layers not yet tuned use `default_lowering`. `record_shapes`
collects the layers' keys from an abstract trace (`jax.eval_shape`), so a whole model is tuned
before its first jitted step (the video convnets do it in their phase's `setup`).

`compute_dtype="bfloat16"` casts inputs and kernels to bfloat16 with float32 accumulation
(`preferred_element_type`); the result is float32.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import pathlib
import threading
import time
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from emojax import errors
from emojax import fileio

LOWERINGS = ("xla", "frames2d", "taps2d", "gemm", "gemm_rows", "frames2d_xladw",
             "frames2d_scandw")
# Candidates whose extra patch tensor would exceed this many bytes are not tried.
MAX_PATCH_BYTES = 1 << 30

Triple = tuple[int, int, int]


def _triple(v) -> Triple:
  if isinstance(v, int):
    return (v, v, v)
  v = tuple(int(a) for a in v)
  if len(v) != 3:
    raise errors.ConfigError(f"expected an int or 3 ints, got {v}")
  return v  # type: ignore[return-value]


def out_size(n: int, k: int, s: int, p: int) -> int:
  return (n + 2 * p - k) // s + 1


def _strided(x, axis_starts: Sequence[int], sizes: Sequence[int], strides: Sequence[int]):
  """x[:, a0:a0+s0*(n0-1)+1:s0, a1:..., a2:..., :] for a 5-D x (one tap's shifted slice)."""
  start = (0,) + tuple(axis_starts) + (0,)
  limit = ((x.shape[0],) + tuple(a + s * (n - 1) + 1 for a, s, n in zip(axis_starts, strides,
                                                                             sizes))
           + (x.shape[-1],))
  return lax.slice(x, start, limit, (1,) + tuple(strides) + (1,))


def _dot(a, b, accum):
  return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=accum)


def _conv2d(x_NxHxWxC, w_HxWxIxO, stride, padding, accum):
  return lax.conv_general_dilated(
      x_NxHxWxC, w_HxWxIxO, window_strides=stride, padding=padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), preferred_element_type=accum)


def conv3d(x, w, stride=1, padding=0, lowering: str = "xla", accum=jnp.float32):
  """Convolution of x (B, T, H, W, Cin) by w (kt, kh, kw, Cin, Cout) -> (B, T', H', W', Cout).

  `padding` is symmetric zero padding per axis (int or (pt, ph, pw)); `stride` likewise.
  """
  stride, pad = _triple(stride), _triple(padding)
  kt, kh, kw, ci, co = w.shape
  if x.ndim != 5 or x.shape[-1] != ci:
    raise errors.ConfigError(f"conv3d: input {x.shape} does not fit kernel {w.shape} "
                             "(expected (B, T, H, W, Cin))")
  b, t, h, wd, _ = x.shape
  to, ho, wo = (out_size(n, k, s, p) for n, k, s, p in zip((t, h, wd), (kt, kh, kw), stride, pad))
  if min(to, ho, wo) < 1:
    raise errors.ConfigError(f"conv3d: input {x.shape[1:4]} (T, H, W) is smaller than the kernel "
                             f"{w.shape[:3]} with padding {pad}")
  if lowering == "frames2d_xladw":
    return _frames2d_xladw(x, w, stride, pad, jnp.dtype(accum))
  if lowering == "frames2d_scandw":
    return _frames2d_scandw(x, w, stride, pad, jnp.dtype(accum))
  if lowering == "xla":
    return lax.conv_general_dilated(
        x, w, window_strides=stride, padding=[(p, p) for p in pad],
        dimension_numbers=("NDHWC", "DHWIO", "NDHWC"), preferred_element_type=accum)
  if lowering in ("frames2d", "taps2d"):
    xt = jnp.pad(x, ((0, 0), (pad[0], pad[0]), (0, 0), (0, 0), (0, 0))) if pad[0] else x
    taps = [_strided(xt, (dt, 0, 0), (to, h, wd), (stride[0], 1, 1)) for dt in range(kt)]
    sp = [(pad[1], pad[1]), (pad[2], pad[2])]
    if lowering == "frames2d":
      xs = taps[0] if kt == 1 else jnp.concatenate(taps, -1)
      w2 = jnp.transpose(w, (1, 2, 0, 3, 4)).reshape(kh, kw, kt * ci, co)
      y = _conv2d(xs.reshape(b * to, h, wd, kt * ci), w2, stride[1:], sp, accum)
    else:
      y = sum(_conv2d(tp.reshape(b * to, h, wd, ci), w[dt], stride[1:], sp, accum)
              for dt, tp in enumerate(taps))
    return y.reshape(b, to, ho, wo, co)
  xp = jnp.pad(x, ((0, 0),) + tuple((p, p) for p in pad) + ((0, 0),)) if any(pad) else x
  if lowering == "gemm":
    cols = [_strided(xp, (dt, dh, dw), (to, ho, wo), stride)
            for dt in range(kt) for dh in range(kh) for dw in range(kw)]
    p = cols[0] if len(cols) == 1 else jnp.concatenate(cols, -1)
    return _dot(p, w.reshape(kt * kh * kw * ci, co), accum)
  if lowering == "gemm_rows":
    tp_, hp_ = xp.shape[1], xp.shape[2]
    cols = [_strided(xp, (0, 0, dw), (tp_, hp_, wo), (1, 1, stride[2])) for dw in range(kw)]
    xw = cols[0] if kw == 1 else jnp.concatenate(cols, -1)     # (B, Tp, Hp, Wo, kw*Cin)
    y = None
    for dt in range(kt):
      for dh in range(kh):
        tap = _strided(xw, (dt, dh, 0), (to, ho, wo), (stride[0], stride[1], 1))
        z = _dot(tap, w[dt, dh].reshape(kw * ci, co), accum)
        y = z if y is None else y + z
    return y
  raise errors.ConfigError(f"unknown convolution lowering {lowering!r}; use one of "
                           f"{LOWERINGS + ('auto',)}")


def _frames2d_with_kernel_grad(kernel_grad):
  """`frames2d`'s forward and input gradient with the kernel gradient of `kernel_grad(x, w, g,
  stride, pad, accum)` (a custom VJP)."""

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
  def conv(x, w, stride, pad, accum):
    return conv3d(x, w, stride, pad, "frames2d", accum)

  def fwd(x, w, stride, pad, accum):
    return conv3d(x, w, stride, pad, "frames2d", accum), (x, w)

  def bwd(stride, pad, accum, res, g):
    x, w = res
    dx = jax.vjp(lambda a: conv3d(a, w, stride, pad, "frames2d", accum), x)[1](g)[0]
    return dx, kernel_grad(x, w, g, stride, pad, accum)

  conv.defvjp(fwd, bwd)
  return conv


# frames2d_xladw: the kernel gradient of XLA's own 3-D convolution.
_frames2d_xladw = _frames2d_with_kernel_grad(
    lambda x, w, g, stride, pad, accum: jax.vjp(
        lambda k: conv3d(x, k, stride, pad, "xla", accum), w)[1](g)[0])


def frame_scan_dw(x, g, kernel: Sequence[int], stride=1, padding=0, accum=jnp.float32):
  """The kernel gradient of `conv3d` (kt, kh, kw, Cin, Cout) from its input x (B, T, H, W, Cin)
  and output gradient g (B, T', H', W', Cout), one output frame at a time.

  dw[a, c, d, i, o] = sum over (b, t', h', w') of xpad[b, st*t'+a, sh*h'+c, sw*w'+d, i] *
  g[b, t', h', w', o]. The input is moved to channel-major frames (B, T, Cin, H, W) once, so every
  tap is a slice with long contiguous rows; a `lax.scan` over the B*T' output frames stacks one
  frame's kt*kh*kw taps into a (kt*kh*kw*Cin, H'*W') patch matrix (cache-sized) and adds its
  product with the frame's (H'*W', Cout) gradient to a float32 (`accum`) accumulator.
  """
  stride, pad = _triple(stride), _triple(padding)
  kt, kh, kw, ci, co = kernel
  b, to, ho, wo, _ = g.shape
  st, sh, sw = stride
  xc = jnp.transpose(x, (0, 1, 4, 2, 3))                                # (B, T, Cin, H, W)
  xc = jnp.pad(xc, ((0, 0), (pad[0], pad[0]), (0, 0), (pad[1], pad[1]), (pad[2], pad[2])))
  hp, wp = xc.shape[3], xc.shape[4]
  frames = [lax.slice(xc, (0, dt, 0, 0, 0), (b, dt + st * (to - 1) + 1, ci, hp, wp),
                      (1, st, 1, 1, 1)) for dt in range(kt)]
  xs = (frames[0][:, :, None] if kt == 1 else jnp.stack(frames, 2)).reshape(
      b * to, kt, ci, hp, wp)                                           # one entry per out frame
  gs = g.reshape(b * to, ho * wo, co).astype(x.dtype)

  def body(acc, frame):
    xf, gf = frame                                                      # (kt, Cin, Hp, Wp)
    cols = [lax.slice_in_dim(xf, d, d + sw * (wo - 1) + 1, sw, axis=3) for d in range(kw)]
    s1 = cols[0][:, None] if kw == 1 else jnp.stack(cols, 1)            # (kt, kw, Cin, Hp, W')
    rows = [lax.slice_in_dim(s1, c, c + sh * (ho - 1) + 1, sh, axis=3) for c in range(kh)]
    s2 = rows[0][:, None] if kh == 1 else jnp.stack(rows, 1)            # (kt, kh, kw, Cin, H', W')
    p = s2.reshape(kt * kh * kw * ci, ho * wo)
    return acc + lax.dot(p, gf, preferred_element_type=accum), None

  acc, _ = lax.scan(body, jnp.zeros((kt * kh * kw * ci, co), accum), (xs, gs))
  return acc.reshape(kt, kh, kw, ci, co)


# frames2d_scandw: the kernel gradient one output frame at a time (frame_scan_dw).
_frames2d_scandw = _frames2d_with_kernel_grad(
    lambda x, w, g, stride, pad, accum: frame_scan_dw(
        x, g, w.shape, stride, pad, accum).astype(w.dtype))


def flops(in_shape: Sequence[int], kernel: Sequence[int], stride, padding) -> int:
  """Multiply-adds x 2 of one forward convolution (B, T, H, W, Cin) * (kt, kh, kw, Cin, Cout)."""
  b, t, h, w, _ = in_shape
  kt, kh, kw, ci, co = kernel
  st, sh, sw = _triple(stride)
  pt, ph, pw = _triple(padding)
  n = b * out_size(t, kt, st, pt) * out_size(h, kh, sh, ph) * out_size(w, kw, sw, pw)
  return 2 * n * kt * kh * kw * ci * co


# ----------------------------------------------------------------------------------------------
# Choosing a lowering per layer.

def layer_key(in_shape, kernel, stride, padding, dtype) -> str:
  return (f"x{'x'.join(map(str, in_shape))}_k{'x'.join(map(str, kernel))}"
          f"_s{'x'.join(map(str, _triple(stride)))}_p{'x'.join(map(str, _triple(padding)))}"
          f"_{jnp.dtype(dtype).name}")


def _parse_key(key: str):
  parts = key.split("_")
  in_shape = tuple(int(v) for v in parts[0][1:].split("x"))
  kernel = tuple(int(v) for v in parts[1][1:].split("x"))
  stride = tuple(int(v) for v in parts[2][1:].split("x"))
  padding = tuple(int(v) for v in parts[3][1:].split("x"))
  return in_shape, kernel, stride, padding, parts[4]


def default_lowering(kernel: Sequence[int]) -> str:
  """The untuned choice: XLA's 2-D convolution for kt == 1, a GEMM for (kt, 1, 1) kernels,
  temporal taps stacked into one 2-D convolution otherwise."""
  kt, kh, kw = kernel[:3]
  if kh == kw == 1:
    return "gemm"
  return "frames2d"


def candidates(in_shape, kernel, stride, padding, dtype) -> list[str]:
  """The lowerings worth timing for one layer (distinct, within MAX_PATCH_BYTES)."""
  b, t, h, w, ci = in_shape
  kt, kh, kw, _, _ = kernel
  st, sh, sw = _triple(stride)
  pt, ph, pw = _triple(padding)
  to, ho, wo = out_size(t, kt, st, pt), out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
  item = jnp.dtype(dtype).itemsize
  out = ["xla", "frames2d"]
  if kt > 1:
    out.append("taps2d")
  if b * to * ho * wo * kt * kh * kw * ci * item <= MAX_PATCH_BYTES:
    out.append("gemm")
  if kw > 1 and kh * kt > 1 and b * (t + 2 * pt) * (h + 2 * ph) * wo * kw * ci * item \
      <= MAX_PATCH_BYTES:
    out.append("gemm_rows")
  if kt == 1:   # "xla" and "frames2d" are the same 2-D convolution up to a reshape
    out.remove("xla")
  else:
    out.append("frames2d_xladw")
  if kt * kh * kw > 1:   # a 1x1x1 kernel's gradient is already one GEMM
    out.append("frames2d_scandw")
  return out


def cache_path() -> pathlib.Path:
  env = os.environ.get("EMOJAX_VIDEO_CONV_CACHE")
  if env:
    return pathlib.Path(env)
  return pathlib.Path.home() / ".cache" / "emojax" / "video_conv_lowering.json"


def _machine() -> str:
  return f"jax{jax.__version__}_{jax.default_backend()}_cpu{os.cpu_count()}"


_LOCK = threading.Lock()
_CACHE: dict[str, dict] = {}
_LOADED: set[str] = set()
_RECORDING: list[list] = []


def _table() -> dict:
  """{layer key: {"best": name, "ms": {name: ms}}} for this machine (loaded once per path)."""
  path = cache_path()
  with _LOCK:
    if str(path) not in _LOADED:
      _LOADED.add(str(path))
      if path.exists():
        try:
          stored = json.loads(path.read_text())
          _CACHE.update(stored.get(_machine(), {}))
        except (OSError, ValueError):
          pass   # a damaged cache is only a lost measurement: it is re-measured and rewritten
    return _CACHE


def _save() -> None:
  path = cache_path()
  stored = {}
  if path.exists():
    try:
      stored = json.loads(path.read_text())
    except (OSError, ValueError):
      stored = {}
  stored[_machine()] = dict(_CACHE)
  path.parent.mkdir(parents=True, exist_ok=True)
  fileio.atomic_write_text(path, json.dumps(stored, indent=1, sort_keys=True))


def resolve(key: str, kernel) -> str:
  if _RECORDING:
    _RECORDING[-1].append(key)
  entry = _table().get(key)
  return entry["best"] if entry else default_lowering(kernel)


@contextlib.contextmanager
def record_shapes():
  """Collects the layer keys of every `auto` Conv traced inside the block (list yielded)."""
  keys: list[str] = []
  _RECORDING.append(keys)
  try:
    yield keys
  finally:
    _RECORDING.pop()


def time_lowering(key: str, lowering: str, repeats: int = 3) -> float:
  """Milliseconds of one jitted forward + backward (input and kernel gradients) of a layer."""
  in_shape, kernel, stride, padding, dtype = _parse_key(key)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(in_shape, np.float32))
  w = jnp.asarray(rng.standard_normal(kernel, np.float32) * 0.05)

  def f(x, w):
    return conv3d(x.astype(dtype), w.astype(dtype), stride, padding, lowering)

  g = jnp.ones(jax.eval_shape(f, x, w).shape, jnp.float32)

  @jax.jit
  def step(x, w, g):
    out, vjp = jax.vjp(f, x, w)
    dx, dw = vjp(g.astype(out.dtype))
    return out, dx, dw

  jax.block_until_ready(step(x, w, g))
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(step(x, w, g))
    best = min(best, time.perf_counter() - t0)
  return best * 1e3


def tune(keys: Iterable[str], *, force: bool = False, verbose: bool = False) -> dict[str, str]:
  """Measures the candidates of every key not in the cache (or cached over a different set of
  candidates, e.g. before a lowering was added); returns {key: best lowering}.

  `verbose`: one summary line when done (`summary_line`); the per-layer timings are in the cache
  file (`cache_path()`)."""
  keys = list(keys)
  table = _table()
  t0, measured = time.perf_counter(), 0
  for key in dict.fromkeys(keys):
    in_shape, kernel, stride, padding, dtype = _parse_key(key)
    names = candidates(in_shape, kernel, stride, padding, dtype)
    # An entry measured over another candidate set (a lowering added since) is measured again.
    if key in table and not force and set(table[key].get("ms", {})) == set(names):
      continue
    ms = {name: time_lowering(key, name) for name in names}
    best = min(ms, key=ms.get)
    table[key] = {"best": best, "ms": {k: round(v, 3) for k, v in ms.items()}}
    _save()       # after every layer: an interrupted tuning keeps what it measured
    measured += 1
  best = {k: table[k]["best"] for k in keys}
  if verbose:
    print(summary_line(best, measured, time.perf_counter() - t0), flush=True)
  return best


def summary_line(best: dict[str, str], measured: int, seconds: float) -> str:
  """One line for a tuning: how many shapes, how many measured now (in how long) or cached, the
  lowerings chosen, and where the per-layer timings are."""
  counts = collections.Counter(best.values())
  return (f"   convolution tuning: {len(best)} shapes, {measured} measured now "
          f"({seconds:.1f} s), {len(best) - measured} cached; chosen: "
          + ", ".join(f"{n} {c}" for n, c in sorted(counts.items()))
          + f" (per-layer timings: {cache_path()})")


def clear_memory_cache() -> None:
  """Forgets the loaded table (tests switch cache files)."""
  with _LOCK:
    _CACHE.clear()
    _LOADED.clear()


# ----------------------------------------------------------------------------------------------
# Layers.

class Conv(nnx.Module):
  """A 3-D convolution (kt, kh, kw) on (B, T, H, W, C), no bias by default (BN follows).

  kt = 1 gives a 2-D convolution applied to every frame; (1, k, k) + (k, 1, 1) pairs make (2+1)D.
  """

  def __init__(self, in_features: int, out_features: int, kernel, *, stride=1, padding=0,
               use_bias: bool = False, lowering: str = "auto", compute_dtype: str = "float32",
               rngs: nnx.Rngs):
    kernel = _triple(kernel)
    if lowering not in LOWERINGS + ("auto",):
      raise errors.ConfigError(f"convolution lowering {lowering!r} (config.model.conv_lowering): "
                               f"use one of {LOWERINGS + ('auto',)}")
    fan_in = kernel[0] * kernel[1] * kernel[2] * in_features
    init = jax.nn.initializers.normal(stddev=float(np.sqrt(2.0 / fan_in)))
    self.kernel = nnx.Param(init(rngs.params(), kernel + (in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
    self.stride, self.padding = _triple(stride), _triple(padding)
    self.lowering, self.compute_dtype = lowering, compute_dtype

  def __call__(self, x):
    dtype = jnp.dtype(self.compute_dtype)
    w = self.kernel[...]
    lowering = self.lowering
    if lowering == "auto":
      lowering = resolve(layer_key(x.shape, w.shape, self.stride, self.padding, dtype), w.shape)
    y = conv3d(x.astype(dtype), w.astype(dtype), self.stride, self.padding, lowering)
    if self.bias is not None:
      y = y + self.bias[...]
    return y


def _windows(x, window: Triple):
  b, t, h, w, c = x.shape
  kt, kh, kw = window
  return x.reshape(b, t // kt, kt, h // kh, kh, w // kw, kw, c)


def _spread(y):
  """(B, T', H', W', C) -> (B, T', 1, H', 1, W', 1, C): broadcastable against `_windows`."""
  return y[:, :, None, :, None, :, None, :]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def tiled_max_pool(x, window: Triple):
  """Max over non-overlapping (kt, kh, kw) windows of x (B, T, H, W, C) that tile it exactly.

  The gradient is jnp.max's (each window's output gradient shared equally among its maxima),
  written as a custom VJP: the backward counts each window's maxima from the kt*kh*kw strided
  views and writes the input gradient in one elementwise pass, where autodiff of the reshape-max
  stores a float mask of the whole input and counts it with a reduction over the interleaved
  window axes (docs/benchmarks.md, "Where the step's time goes")."""
  return _windows(x, window).max((2, 4, 6))


def _tiled_max_pool_fwd(x, window):
  y = tiled_max_pool(x, window)
  return y, (x, y)


def _tiled_max_pool_bwd(window, res, g):
  x, y = res
  xw = _windows(x, window)
  kt, kh, kw = window
  count = sum((xw[:, :, i, :, j, :, k, :] == y).astype(g.dtype)
              for i in range(kt) for j in range(kh) for k in range(kw))
  gx = jnp.where(xw == _spread(y), _spread(g / count), jnp.zeros((), g.dtype))
  return (gx.reshape(x.shape),)


tiled_max_pool.defvjp(_tiled_max_pool_fwd, _tiled_max_pool_bwd)


def max_pool(x, window: Triple, stride: Triple | None = None, padding: Triple = (0, 0, 0)):
  """Max pooling over (T, H, W) of x (B, T, H, W, C); `tiled_max_pool` when it tiles exactly."""
  stride = stride or window
  if tuple(stride) == tuple(window) and not any(padding) and all(
      n % k == 0 for n, k in zip(x.shape[1:4], window)):
    return tiled_max_pool(x, tuple(int(k) for k in window))
  return lax.reduce_window(x, -jnp.inf, lax.max, (1,) + tuple(window) + (1,),
                           (1,) + tuple(stride) + (1,),
                           ((0, 0),) + tuple((p, p) for p in padding) + ((0, 0),))
