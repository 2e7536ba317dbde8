"""What every backbone shares (the 2-D ImageNet networks and the video ones alike): layers with
PyTorch semantics (pooling, ceil-mode and TensorFlow-'SAME' padding, transposed convolution,
BatchNorm with TSN's frozen variant), ImageNet preprocessing, the torch -> Flax weight conversion,
and the converted `.npz` format (see docs/backbones.md).

Naming: every Flax backbone mirrors its PyTorch module tree (attributes, `nnx.Dict` / `nnx.List`
keyed like torch's `nn.Sequential` indices), so the flat Flax name of a parameter is the torch name
with the parameter renamed: conv / linear `weight` -> `kernel` (O I *k -> *k I O, (out, in) ->
(in, out)); a transposed convolution's weight (I, O, kh, kw) -> (kh, kw, I, O) flipped in space;
BatchNorm `weight` / `bias` / `running_mean` / `running_var` -> `scale` / `bias` / `mean` / `var`
(`num_batches_tracked` is dropped). The published torch layout of a network is therefore derived
from its Flax model (`torch_layout`), and the tests prove it by loading the same state dict into
an independent torch re-statement with `load_state_dict(strict=True)`.

Converted file (`.npz`, written by `save`, read by `load`): the Flax arrays under their flat names
(float32), plus `meta.network` (registry name), `meta.config` (JSON: the width multiplier, fc
width, classes the file was converted with), `meta.source_file` and `meta.source_sha256` (the
published file it came from).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax import fileio
from emojax import weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
META_PREFIX = "meta."
CONVERT_HINT = "convert the published file with `python -m emojax.backbones.convert` (docs/backbones.md)"


# -- layers with PyTorch semantics ----------------------------------------------------------------
def conv(cin: int, cout: int, kernel, *, stride=1, padding=0, bias: bool = True,
         rngs: nnx.Rngs) -> nnx.Conv:
  """nn.Conv2d(cin, cout, kernel, stride, padding, bias) in NHWC (symmetric explicit padding)."""
  kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
  sh, sw = (stride, stride) if isinstance(stride, int) else stride
  ph, pw = (padding, padding) if isinstance(padding, int) else padding
  return nnx.Conv(cin, cout, (kh, kw), strides=(sh, sw), padding=((ph, ph), (pw, pw)),
                  use_bias=bias, rngs=rngs)


class BatchNorm(nnx.BatchNorm):
  """nn.BatchNorm (inference: running statistics; `model.train()` switches to batch statistics),
  with `frozen`: the running statistics in training too (TSN's partial BN)."""

  def __init__(self, c: int, *, epsilon: float, momentum: float = 0.99, frozen: bool = False,
               rngs: nnx.Rngs):
    super().__init__(c, epsilon=epsilon, momentum=momentum, use_running_average=True, rngs=rngs)
    self.frozen = frozen

  def __call__(self, x: jax.Array, use_running_average: bool | None = None, **kwargs
               ) -> jax.Array:
    if self.frozen:
      inv = jax.lax.rsqrt(self.var[...] + self.epsilon) * self.scale[...]
      return (x - self.mean[...]) * inv + self.bias[...]
    return super().__call__(x, use_running_average=use_running_average, **kwargs)


def batch_norm(c: int, *, eps: float = 1e-5, momentum: float = 0.99, frozen: bool = False,
               rngs: nnx.Rngs) -> BatchNorm:
  """nn.BatchNorm{1,2,3}d(c, eps) in inference mode (running statistics)."""
  return BatchNorm(c, epsilon=eps, momentum=momentum, frozen=frozen, rngs=rngs)


class ConvTranspose2d(nnx.Module):
  """nn.ConvTranspose2d(cin, cout, k, stride, padding, bias=False), channels-last.

  kernel: (k, k, in, out), the PyTorch weight (in, out, k, k) flipped in space, so the layer is a
  convolution over the input dilated by `stride`, padded by k - 1 - padding on each side.
  """

  def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, *, rngs: nnx.Rngs):
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (k, k, cin, cout)))
    self.k, self.stride, self.padding = k, stride, padding

  def __call__(self, x: jax.Array) -> jax.Array:
    q = self.k - 1 - self.padding
    return jax.lax.conv_general_dilated(
        x, self.kernel[...], window_strides=(1, 1), padding=((q, q), (q, q)),
        lhs_dilation=(self.stride, self.stride), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def pool(x: jax.Array, kind: str, window: tuple[int, ...], strides: tuple[int, ...],
         pads: tuple[tuple[int, int], ...], pad_value: float | None = None) -> jax.Array:
  """Max or average pool over the spatial axes of channels-last x (..., *spatial, C).

  `pads` are explicit (low, high) per spatial axis. Max pools pad with `pad_value` (default -inf);
  average pools pad with zeros and divide by the window size (count_include_pad=True).
  """
  nd = len(window)
  lead = x.ndim - nd - 1
  dims = (1,) * lead + tuple(window) + (1,)
  strd = (1,) * lead + tuple(strides) + (1,)
  padding = ((0, 0),) * lead + tuple(pads) + ((0, 0),)
  if kind == "max":
    if pad_value is not None:  # explicit padding, then the max monoid (differentiable)
      x = jnp.pad(x, padding, constant_values=pad_value)
      padding = ((0, 0),) * x.ndim
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strd, padding)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strd, padding)
  return total / math.prod(window)


def ceil_pads(n: int, k: int, s: int, p: int) -> tuple[int, int]:
  """(low, high) padding that gives torch's ceil_mode output size for a pool (k, s, p): the end
  padded so the last window that starts inside the (left-padded) input counts."""
  out = -(-(n + 2 * p - k) // s) + 1
  if (out - 1) * s >= n + p:  # torch: the last window must start inside the input
    out -= 1
  return p, max(p, (out - 1) * s + k - n - p)


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
  """TensorFlow's 'SAME' padding (what pytorch-i3d computes before each conv and pool)."""
  total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
  return total // 2, total - total // 2


def max_pool(x_BxHxWxC: jax.Array, k: int, s: int, p: int = 0, ceil_mode: bool = False
             ) -> jax.Array:
  """F.max_pool2d(x, k, s, p, ceil_mode): padding with -inf (`ceil_pads` for ceil_mode)."""
  pads = tuple(ceil_pads(n, k, s, p) if ceil_mode else (p, p) for n in x_BxHxWxC.shape[-3:-1])
  return pool(x_BxHxWxC, "max", (k, k), (s, s), pads)


def avg_pool(x_BxHxWxC: jax.Array, k: int, s: int, p: int = 0) -> jax.Array:
  """F.avg_pool2d(x, k, s, p) with torch's default count_include_pad=True (zeros count)."""
  return pool(x_BxHxWxC, "avg", (k, k), (s, s), ((p, p), (p, p)))


def flat_leading(fn: Callable[[jax.Array], jax.Array], x: jax.Array, nd: int) -> jax.Array:
  """Applies fn (on (B, *spatial, C)) to x with any number of leading axes before the last nd+1."""
  lead = x.shape[:x.ndim - nd - 1]
  y = fn(x.reshape((-1,) + x.shape[x.ndim - nd - 1:]))
  return y.reshape(lead + y.shape[1:])


def adaptive_avg_pool(x_BxHxWxC: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
  """nn.AdaptiveAvgPool2d(out_hw): bin i covers [floor(i H / o), ceil((i + 1) H / o))."""
  h, w = x_BxHxWxC.shape[1:3]
  oh, ow = out_hw
  if (h, w) == (oh, ow):
    return x_BxHxWxC
  rows = []
  for i in range(oh):
    h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
    cols = []
    for j in range(ow):
      w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
      cols.append(x_BxHxWxC[:, h0:h1, w0:w1, :].mean(axis=(1, 2)))
    rows.append(jnp.stack(cols, axis=1))
  return jnp.stack(rows, axis=1)


def flatten_hwc(x_BxHxWxC: jax.Array) -> jax.Array:
  """Flatten in NHWC order (the converter permutes the first fc layer's inputs from torch's CHW
  order, so no transpose is needed at run time)."""
  return x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)


# -- ImageNet preprocessing -----------------------------------------------------------------------
def resize_shape(width: int, height: int, shorter: int) -> tuple[int, int]:
  """(width, height) with the shorter side `shorter`, as torchvision's Resize(int) computes it
  (the longer side truncated: int(shorter * long / short))."""
  if width <= height:
    return shorter, int(shorter * height / width)
  return int(shorter * width / height), shorter


def center_crop(rgb_HxWx3: np.ndarray, size: int) -> np.ndarray:
  """torchvision's CenterCrop(size): top = round((H - size) / 2), left likewise."""
  h, w = rgb_HxWx3.shape[:2]
  if h < size or w < size:
    raise errors.DataError(f"a {w}x{h} picture cannot be centre-cropped to {size}x{size}; resize "
                           "the shorter side to at least the crop size first")
  top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
  return rgb_HxWx3[top:top + size, left:left + size]


def normalize(rgb_BxHxWx3, mean=IMAGENET_MEAN, std=IMAGENET_STD, dtype=jnp.float32) -> jax.Array:
  """uint8 RGB -> (x / 255 - mean) / std (torchvision's ToTensor + Normalize), NHWC."""
  x = jnp.asarray(rgb_BxHxWx3, jnp.float32) / 255.0
  return ((x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)).astype(dtype)


# -- the network registry entry -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Network:
  """What the converter and the loader need to know about one network.

  build(config, rngs) -> the Flax model; default_config: the published file's config (a
  narrower one, e.g. {"width": 1 / 16}, is only for tests and must be asked for); extra_layout(config): published arrays the Flax model does not use (checked, then
  dropped, e.g. Inception-v3's auxiliary classifier); flatten(config): {flax linear layer:
  (C, H, W)} for the fc layers that read a flattened conv map (torch flattens CHW, we flatten
  HWC); published: names the layout in messages; files: the published files it converts.
  """
  name: str
  build: Callable[[Mapping[str, Any], nnx.Rngs], nnx.Module]
  default_config: Mapping[str, Any]
  published: str
  files: tuple[str, ...] = ()
  extra_layout: Callable[[Mapping[str, Any]], dict[str, tuple[int, ...]]] = lambda config: {}
  flatten: Callable[[Mapping[str, Any]], dict[str, tuple[int, int, int]]] = lambda config: {}


def _key(path) -> str:
  return ".".join(str(p) for p in path)


def flax_arrays(model: nnx.Module) -> dict[str, Any]:
  """{flat name: array or ShapeDtypeStruct} of the model's parameters and batch statistics."""
  state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
  return {_key(path): var.get_value() for path, var in nnx.to_flat_state(state)}


def flax_layout(model: nnx.Module) -> dict[str, tuple[int, ...]]:
  return {k: tuple(v.shape) for k, v in flax_arrays(model).items()}


def _modules(layout: Mapping[str, tuple[int, ...]]) -> dict[str, dict[str, tuple[int, ...]]]:
  mods: dict[str, dict[str, tuple[int, ...]]] = {}
  for k, shape in layout.items():
    prefix, _, leaf = k.rpartition(".")
    mods.setdefault(prefix, {})[leaf] = shape
  return mods


BN_TORCH = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def _transposed(model: nnx.Module) -> set[str]:
  """Flat names of the model's transposed convolutions (their torch weight is (in, out, *k))."""
  return {_key(path) for path, m in nnx.iter_modules(model) if isinstance(m, ConvTranspose2d)}


def torch_layout(model: nnx.Module) -> dict[str, tuple[int, ...]]:
  """The PyTorch state-dict layout {name: shape} the model's parameters come from (without
  BatchNorm's `num_batches_tracked`, which old releases lack and the converter ignores)."""
  out = {}
  transposed = _transposed(model)
  for prefix, leaves in _modules(flax_layout(model)).items():
    if "mean" in leaves:  # BatchNorm
      for leaf, name in BN_TORCH.items():
        out[f"{prefix}.{name}"] = leaves[leaf]
      continue
    kernel = leaves["kernel"]
    if prefix in transposed:  # (*spatial, in, out) -> (in, out, *spatial)
      out[f"{prefix}.weight"] = (kernel[-2], kernel[-1], *kernel[:-2])
    elif len(kernel) == 2:
      out[f"{prefix}.weight"] = (kernel[1], kernel[0])
    else:  # (*spatial, in, out) -> (out, in, *spatial)
      out[f"{prefix}.weight"] = (kernel[-1], kernel[-2], *kernel[:-2])
    if "bias" in leaves:
      out[f"{prefix}.bias"] = leaves["bias"]
  return out


_ABSTRACT: dict[tuple[str, str], Any] = {}


def _abstract_split(network: Network, config_json: str):
  """(graphdef, state of ShapeDtypeStructs): tracing a big network's init takes seconds, once."""
  key = (network.name, config_json)
  if key not in _ABSTRACT:
    config = json.loads(config_json)
    _ABSTRACT[key] = nnx.split(nnx.eval_shape(lambda: network.build(config, nnx.Rngs(0))))
  return _ABSTRACT[key]


def abstract_split(network: Network, config: Mapping[str, Any]):
  """(graphdef, a fresh abstract state) of the network under `config`."""
  graphdef, state = _abstract_split(network, json.dumps(dict(config), sort_keys=True))
  return graphdef, jax.tree.map(lambda leaf: leaf, state)


def abstract_model(network: Network, config: Mapping[str, Any]) -> nnx.Module:
  """The model with shapes only (ShapeDtypeStruct values): its layout, no memory."""
  return nnx.merge(*abstract_split(network, config))


def published_layout(network: Network, config: Mapping[str, Any] | None = None
                     ) -> dict[str, tuple[int, ...]]:
  """{torch name: shape} of the network's published state dict (under `config`, default the
  published one), derived from its Flax model, without the layout's extra (dropped) arrays."""
  return torch_layout(abstract_model(network, {**network.default_config, **(config or {})}))


def output_shape(network: Network, config: Mapping[str, Any], layer: str,
                 input_shape: tuple[int, ...]) -> tuple[int, ...]:
  """Shape of `layer`'s output for one input of `input_shape` (H, W, 3), without computing."""
  graphdef, state = abstract_split(network, config)
  out = jax.eval_shape(lambda st, x: nnx.merge(graphdef, st)(x, layer), state,
                       jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
  return tuple(int(d) for d in out.shape[1:])


def from_torch(network: Network, state: Mapping[str, np.ndarray], config: Mapping[str, Any],
               source: str | os.PathLike) -> dict[str, np.ndarray]:
  """A published state dict (already read) -> {flax name: float32 array}, after checking it has
  exactly the published layout (WeightsError naming the file and the first misfit)."""
  model = abstract_model(network, config)
  layout = torch_layout(model)
  expected = {**layout, **network.extra_layout(config)}
  nbt = [k.rpartition(".")[0] + ".num_batches_tracked" for k in expected
         if k.endswith(".running_mean")]
  weights.check_layout(state, expected, source, published=network.published, ignore=nbt)
  flatten = network.flatten(config)
  transposed = _transposed(model)
  out = {}
  for prefix, leaves in _modules(flax_layout(model)).items():
    if "mean" in leaves:
      for leaf, name in BN_TORCH.items():
        out[f"{prefix}.{leaf}"] = np.asarray(state[f"{prefix}.{name}"], np.float32)
      continue
    w = np.asarray(state[f"{prefix}.weight"], np.float32)
    if prefix in transposed:  # (in, out, *k) -> (*k, in, out), flipped in space
      w = w.transpose(*range(2, w.ndim), 0, 1)[(slice(None, None, -1),) * (w.ndim - 2)]
    elif w.ndim == 2:
      if prefix in flatten:  # (out, C*H*W) in CHW order -> (H*W*C, out) in HWC order
        c, h, wd = flatten[prefix]
        w = w.reshape(w.shape[0], c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1)
      else:
        w = w.T
    else:
      w = w.transpose(*range(2, w.ndim), 1, 0)
    out[f"{prefix}.kernel"] = np.ascontiguousarray(w)
    if "bias" in leaves:
      out[f"{prefix}.bias"] = np.asarray(state[f"{prefix}.bias"], np.float32)
  for k, v in out.items():
    if not np.isfinite(v).all():
      raise errors.WeightsError(f"{source}: parameter '{k}' holds NaN or Inf; the file is "
                                "damaged: download it again")
  return out


# -- the converted file ---------------------------------------------------------------------------
def save(out_path: str | os.PathLike, network: Network, config: Mapping[str, Any],
         arrays: Mapping[str, np.ndarray], source: str | os.PathLike) -> pathlib.Path:
  """Writes the converted `.npz` atomically, recording the network, config and source sha256."""
  meta = {f"{META_PREFIX}network": np.array(network.name),
          f"{META_PREFIX}config": np.array(json.dumps(dict(config), sort_keys=True)),
          f"{META_PREFIX}source_file": np.array(pathlib.Path(source).name),
          f"{META_PREFIX}source_sha256": np.array(weights.sha256(source))}
  buffer = io.BytesIO()
  np.savez(buffer, **arrays, **meta)
  return fileio.atomic_write_bytes(out_path, buffer.getvalue())


def convert(network: Network, source: str | os.PathLike, out: str | os.PathLike,
            config: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Reads the published `source`, checks its layout, writes the converted `out` and checks that
  it loads. `config` overrides the published config (narrow widths: tests only)."""
  cfg = {**network.default_config, **(config or {})}
  state = weights.read_state_dict(source, what=f"{network.name} source file")
  arrays = from_torch(network, state, cfg, source)
  path = save(out, network, cfg, arrays, source)
  load(path, network)  # the written file loads into the model
  return path


@dataclasses.dataclass(frozen=True)
class Loaded:
  """A converted file, read and checked: the model with its weights and what the file records."""
  model: nnx.Module
  network: str
  config: dict[str, Any]
  source_file: str
  source_sha256: str
  sha256: str  # of the converted .npz itself


def read_meta(path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
  missing = [k for k in ("network", "config", "source_sha256")
             if f"{META_PREFIX}{k}" not in state]
  if missing:
    raise errors.WeightsError(f"{path}: not a converted emojax backbone file (no "
                              f"'{META_PREFIX}{missing[0]}'); {CONVERT_HINT}")
  meta = {k[len(META_PREFIX):]: str(v) for k, v in state.items() if k.startswith(META_PREFIX)}
  meta["config"] = json.loads(meta["config"])
  return meta


def load(path: str | os.PathLike, network: Network | None = None, *,
         resolve: Callable[[str], Network] | None = None) -> Loaded:
  """The Flax model of a converted `.npz` (the network named in the file, which must be
  `network` when given)."""
  state = weights.read_state_dict(path, what="converted backbone weights")
  meta = read_meta(path, state)
  if network is None:
    if resolve is None:
      raise TypeError("load() needs a network or a resolve function")
    network = resolve(meta["network"])
  elif meta["network"] != network.name:
    raise errors.WeightsError(f"{path}: holds converted '{meta['network']}' weights, expected "
                              f"'{network.name}'; give the {network.name} file")
  arrays = {k: v for k, v in state.items() if not k.startswith(META_PREFIX)}
  graphdef, abstract = abstract_split(network, meta["config"])
  weights.check_layout(arrays, flax_layout(nnx.merge(graphdef, abstract)), path,
                       published=f"converted {network.name}")
  flat = nnx.to_flat_state(abstract)
  for p, var in flat:
    a = arrays[_key(p)]
    if not np.isfinite(a).all():
      raise errors.WeightsError(f"{path}: array '{_key(p)}' holds NaN or Inf; the file is "
                                f"damaged: {CONVERT_HINT}")
    var.set_value(jnp.asarray(a, jnp.float32))
  model = nnx.merge(graphdef, nnx.from_flat_state(flat))
  return Loaded(model=model, network=network.name, config=meta["config"],
                source_file=meta.get("source_file", ""), source_sha256=meta["source_sha256"],
                sha256=weights.sha256(path))


def width(n: int, multiplier: float) -> int:
  """Channels of a layer of published width n under a width multiplier (tests use narrow nets)."""
  return max(1, int(round(n * multiplier)))
