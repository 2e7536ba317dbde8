"""Shared pieces of the PyTorch-port backbones (BN-Inception, I3D, FlowNetS): layers with PyTorch's
padding rules in channels-last layout, the state-dict -> Flax conversion, and the converted `.npz`.

Converted file: one `.npz` with the Flax parameter paths ("conv1_7x7_s2/kernel",
"Mixed_3b/b0/bn/mean", ...) plus two string arrays, `__network__` (e.g. "i3d") and
`__source_sha256__` (the sha256 of the published file it was converted from).
Layout rules: convolution weights (O, I, *k) -> (*k, I, O); transposed convolutions (I, O, kh, kw)
-> flipped (kh, kw, I, O) (a stride-2 transposed conv is a dilated-input convolution); linear
(out, in) -> (in, out); BatchNorm weight / bias / running_mean / running_var -> scale / bias /
mean / var. `num_batches_tracked` (saved by PyTorch >= 0.4, absent from older files) is ignored.
"""

from __future__ import annotations

import io
import math
import pathlib
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax import fileio
from emojax import weights

META = ("__network__", "__source_sha256__")
IGNORED_SUFFIX = ".num_batches_tracked"


# -- layers -----------------------------------------------------------------------------------------

class BatchNorm(nnx.Module):
  """nnx.BatchNorm (inference: running statistics; `model.train()` switches to batch statistics)
  with `frozen`: the running statistics in training too (TSN's partial BN)."""

  def __init__(self, n: int, *, epsilon: float, frozen: bool = False, rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(n, epsilon=epsilon, momentum=0.9, use_running_average=True,
                            rngs=rngs)
    self.frozen = frozen

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.frozen:
      b = self.bn
      inv = jax.lax.rsqrt(b.var[...] + b.epsilon) * b.scale[...]
      return (x - b.mean[...]) * inv + b.bias[...]
    return self.bn(x)


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


def ceil_pads(size: int, k: int, s: int, p: int) -> tuple[int, int]:
  """(low, high) padding that gives PyTorch's ceil_mode output size for a pool (k, s, p)."""
  out = -(-(size + 2 * p - k) // s) + 1
  if (out - 1) * s >= size + p:  # the last window must start inside the input or left padding
    out -= 1
  return p, max((out - 1) * s + k - size - p, 0)


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
  """TensorFlow's 'SAME' padding (what pytorch-i3d computes before each conv and pool)."""
  total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
  return total // 2, total - total // 2


class ConvTranspose2d(nnx.Module):
  """PyTorch's ConvTranspose2d(k, stride, padding), bias-free, channels-last.

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


def flat_leading(fn: Callable[[jax.Array], jax.Array], x: jax.Array, nd: int) -> jax.Array:
  """Applies fn (on (B, *spatial, C)) to x with any number of leading axes before the last nd+1."""
  lead = x.shape[:x.ndim - nd - 1]
  y = fn(x.reshape((-1,) + x.shape[x.ndim - nd - 1:]))
  return y.reshape(lead + y.shape[1:])


# -- conversion -------------------------------------------------------------------------------------

def torch_to_flax(state: Mapping[str, np.ndarray], transposed: Iterable[str] = ()
                  ) -> dict[str, np.ndarray]:
  """PyTorch state dict -> {Flax path: array} (module docstring); `transposed` names the
  ConvTranspose modules (their weight is (in, out, kh, kw))."""
  transposed = set(transposed)
  out = {}
  bn_names = {k[:-len(".running_mean")] for k in state if k.endswith(".running_mean")}
  for key, a in state.items():
    if key.endswith(IGNORED_SUFFIX):
      continue
    module, param = key.rsplit(".", 1)
    path = module.replace(".", "/")
    a = np.asarray(a, np.float32)
    if module in bn_names:
      name = {"weight": "scale", "bias": "bias", "running_mean": "mean",
              "running_var": "var"}[param]
      out[f"{path}/bn/{name}"] = a
    elif param == "bias":
      out[f"{path}/bias"] = a
    elif module in transposed:
      out[f"{path}/kernel"] = a.transpose(2, 3, 0, 1)[::-1, ::-1]
    elif a.ndim == 2:
      out[f"{path}/kernel"] = a.T
    else:
      out[f"{path}/kernel"] = a.transpose(tuple(range(2, a.ndim)) + (1, 0))
  return {k: np.ascontiguousarray(v) for k, v in out.items()}


def convert_file(source: str | pathlib.Path, out: str | pathlib.Path, *, network: str,
                 layout: Mapping[str, tuple[int, ...]], published: str,
                 transposed: Iterable[str] = ()) -> pathlib.Path:
  """Reads the published file, checks its layout, writes the Flax `.npz` (atomically)."""
  state = weights.read_state_dict(source, what=f"{network} source file")
  ignore = [k for k in state if k.endswith(IGNORED_SUFFIX)]
  weights.check_layout(state, layout, source, published=published, ignore=ignore)
  arrays = torch_to_flax(state, transposed)
  arrays["__network__"] = np.asarray(network)
  arrays["__source_sha256__"] = np.asarray(weights.sha256(source))
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return fileio.atomic_write_bytes(out, buffer.getvalue())


def flax_layout(model: nnx.Module) -> dict[str, tuple[int, ...]]:
  """{"a/b/kernel": shape} of every variable (parameters and batch statistics) of a model."""
  flat = nnx.to_flat_state(nnx.state(model))
  return {"/".join(str(p) for p in path): tuple(v.get_value().shape) for path, v in flat}


def load_into(model: nnx.Module, path: str | pathlib.Path, network: str, convert_hint: str
              ) -> tuple[nnx.Module, str]:
  """(model holding the converted file's arrays, the published source's sha256).

  `model` may be abstract (nnx.eval_shape): every variable is replaced by the file's array.
  """
  arrays = weights.read_state_dict(path, what=f"{network} weights (.npz)")
  got = str(arrays.get("__network__", "(none)"))
  if got != network:
    raise errors.WeightsError(f"{path}: converted weights of network '{got}', expected "
                              f"'{network}'; {convert_hint}")
  source_sha = str(arrays.get("__source_sha256__", ""))
  params = {k: v for k, v in arrays.items() if k not in META}
  weights.check_layout(params, flax_layout(model), path, published=f"emojax {network}")
  graphdef, state = nnx.split(model)
  flat = nnx.to_flat_state(state)
  leaves = []
  for p, v in flat:
    a = params["/".join(str(q) for q in p)]
    if not np.isfinite(a).all():
      raise errors.WeightsError(f"{path}: array '{'/'.join(map(str, p))}' is not finite; "
                                f"{convert_hint}")
    leaves.append((p, v.replace(jnp.asarray(a, jnp.float32))))
  return nnx.merge(graphdef, nnx.from_flat_state(leaves)), source_sha


def converter_main(argv, *, prog: str, description: str, convert: Callable[..., pathlib.Path]
                   ) -> int:
  """`python -m emojax.backbones.<module> --source=FILE --out=FILE.npz`."""
  import argparse  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(prog=prog, description=description)
  parser.add_argument("--source", required=True, help="the published weights file")
  parser.add_argument("--out", required=True, help="the .npz to write")
  args = parser.parse_args(argv)
  try:
    path = convert(args.source, args.out)
  except errors.EmojaxError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {path} (source sha256 {weights.sha256(args.source)})")
  return 0
