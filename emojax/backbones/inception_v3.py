"""Inception-v3 (Szegedy et al. 2016) as torchvision builds it (`inception_v3`, the weights
`inception_v3_google-0cc3c7bd.pth` ported from TensorFlow), Flax NNX, NHWC, inference-mode
BatchNorm (eps 0.001). Seed 001 uses the 2048-d global pool on 299 x 299 frames.

Module tree and names as torchvision's: Conv2d_1a_3x3 ... Conv2d_4a_3x3 (BasicConv2d: `conv`
without bias, `bn`, ReLU), Mixed_5b/5c/5d (InceptionA), Mixed_6a (InceptionB), Mixed_6b..6e
(InceptionC), Mixed_7a (InceptionD), Mixed_7b/7c (InceptionE), fc. The published file also holds
the auxiliary classifier `AuxLogits.*` (used only in training): the converter checks its layout
and drops it.

`transform_input` (torchvision sets it for the Google weights): the model takes the ImageNet-
normalised input of the other backbones and maps each channel to the [-1, 1] scaling the weights
were trained with, x_c * std_c / 0.5 + (mean_c - 0.5) / 0.5, exactly as torchvision does.

Input: (B, H, W, 3) ImageNet-normalised; 299 x 299 (at least 75 x 75). Layers: 'pool' (B, 2048)
global average pool, 'logits' (B, classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from emojax.backbones import common

LAYERS = ("pool", "logits")
EPS = 0.001


class BasicConv2d(nnx.Module):

  def __init__(self, cin, cout, kernel, *, stride=1, padding=0, rngs):
    self.conv = common.conv(cin, cout, kernel, stride=stride, padding=padding, bias=False,
                            rngs=rngs)
    self.bn = common.batch_norm(cout, eps=EPS, rngs=rngs)
    self.out = cout

  def __call__(self, x):
    return jax.nn.relu(self.bn(self.conv(x)))


class InceptionA(nnx.Module):

  def __init__(self, cin, pool_features, w, *, rngs):
    self.branch1x1 = BasicConv2d(cin, w(64), 1, rngs=rngs)
    self.branch5x5_1 = BasicConv2d(cin, w(48), 1, rngs=rngs)
    self.branch5x5_2 = BasicConv2d(w(48), w(64), 5, padding=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv2d(cin, w(64), 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), 3, padding=1, rngs=rngs)
    self.branch_pool = BasicConv2d(cin, w(pool_features), 1, rngs=rngs)
    self.out = w(64) + w(64) + w(96) + w(pool_features)

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    bp = self.branch_pool(common.avg_pool(x, 3, 1, 1))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nnx.Module):

  def __init__(self, cin, w, *, rngs):
    self.branch3x3 = BasicConv2d(cin, w(384), 3, stride=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv2d(cin, w(64), 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), 3, stride=2, rngs=rngs)
    self.out = w(384) + w(96) + cin

  def __call__(self, x):
    b3 = self.branch3x3(x)
    bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return jnp.concatenate([b3, bd, common.max_pool(x, 3, 2)], axis=-1)


class InceptionC(nnx.Module):

  def __init__(self, cin, c7, w, *, rngs):
    c7 = w(c7)
    self.branch1x1 = BasicConv2d(cin, w(192), 1, rngs=rngs)
    self.branch7x7_1 = BasicConv2d(cin, c7, 1, rngs=rngs)
    self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7_3 = BasicConv2d(c7, w(192), (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1, rngs=rngs)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_5 = BasicConv2d(c7, w(192), (1, 7), padding=(0, 3), rngs=rngs)
    self.branch_pool = BasicConv2d(cin, w(192), 1, rngs=rngs)
    self.out = 4 * w(192)

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f"branch7x7dbl_{i}")(bd)
    bp = self.branch_pool(common.avg_pool(x, 3, 1, 1))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nnx.Module):

  def __init__(self, cin, w, *, rngs):
    self.branch3x3_1 = BasicConv2d(cin, w(192), 1, rngs=rngs)
    self.branch3x3_2 = BasicConv2d(w(192), w(320), 3, stride=2, rngs=rngs)
    self.branch7x7x3_1 = BasicConv2d(cin, w(192), 1, rngs=rngs)
    self.branch7x7x3_2 = BasicConv2d(w(192), w(192), (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7x3_3 = BasicConv2d(w(192), w(192), (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7x3_4 = BasicConv2d(w(192), w(192), 3, stride=2, rngs=rngs)
    self.out = w(320) + w(192) + cin

  def __call__(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f"branch7x7x3_{i}")(b7)
    return jnp.concatenate([b3, b7, common.max_pool(x, 3, 2)], axis=-1)


class InceptionE(nnx.Module):

  def __init__(self, cin, w, *, rngs):
    self.branch1x1 = BasicConv2d(cin, w(320), 1, rngs=rngs)
    self.branch3x3_1 = BasicConv2d(cin, w(384), 1, rngs=rngs)
    self.branch3x3_2a = BasicConv2d(w(384), w(384), (1, 3), padding=(0, 1), rngs=rngs)
    self.branch3x3_2b = BasicConv2d(w(384), w(384), (3, 1), padding=(1, 0), rngs=rngs)
    self.branch3x3dbl_1 = BasicConv2d(cin, w(448), 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv2d(w(448), w(384), 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3a = BasicConv2d(w(384), w(384), (1, 3), padding=(0, 1), rngs=rngs)
    self.branch3x3dbl_3b = BasicConv2d(w(384), w(384), (3, 1), padding=(1, 0), rngs=rngs)
    self.branch_pool = BasicConv2d(cin, w(192), 1, rngs=rngs)
    self.out = w(320) + 4 * w(384) + w(192)

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b3 = self.branch3x3_1(x)
    b3 = jnp.concatenate([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], axis=-1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = jnp.concatenate([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], axis=-1)
    bp = self.branch_pool(common.avg_pool(x, 3, 1, 1))
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
MIXED = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
         "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


class InceptionV3(nnx.Module):
  """config: width (channel multiplier), num_classes, transform_input."""

  def __init__(self, config: Mapping[str, Any], *, rngs: nnx.Rngs):
    m = float(config.get("width", 1.0))
    w = lambda n: common.width(n, m)  # pylint: disable=unnecessary-lambda-assignment
    self.transform_input = bool(config.get("transform_input", True))
    self.Conv2d_1a_3x3 = BasicConv2d(3, w(32), 3, stride=2, rngs=rngs)
    self.Conv2d_2a_3x3 = BasicConv2d(w(32), w(32), 3, rngs=rngs)
    self.Conv2d_2b_3x3 = BasicConv2d(w(32), w(64), 3, padding=1, rngs=rngs)
    self.Conv2d_3b_1x1 = BasicConv2d(w(64), w(80), 1, rngs=rngs)
    self.Conv2d_4a_3x3 = BasicConv2d(w(80), w(192), 3, rngs=rngs)
    c = w(192)
    blocks = {}
    for name, make in (("Mixed_5b", lambda c: InceptionA(c, 32, w, rngs=rngs)),
                       ("Mixed_5c", lambda c: InceptionA(c, 64, w, rngs=rngs)),
                       ("Mixed_5d", lambda c: InceptionA(c, 64, w, rngs=rngs)),
                       ("Mixed_6a", lambda c: InceptionB(c, w, rngs=rngs)),
                       ("Mixed_6b", lambda c: InceptionC(c, 128, w, rngs=rngs)),
                       ("Mixed_6c", lambda c: InceptionC(c, 160, w, rngs=rngs)),
                       ("Mixed_6d", lambda c: InceptionC(c, 160, w, rngs=rngs)),
                       ("Mixed_6e", lambda c: InceptionC(c, 192, w, rngs=rngs)),
                       ("Mixed_7a", lambda c: InceptionD(c, w, rngs=rngs)),
                       ("Mixed_7b", lambda c: InceptionE(c, w, rngs=rngs)),
                       ("Mixed_7c", lambda c: InceptionE(c, w, rngs=rngs))):
      blocks[name] = make(c)
      c = blocks[name].out
    for name, block in blocks.items():
      setattr(self, name, block)
    self.features = c
    self.fc = nnx.Linear(c, int(config.get("num_classes", 1000)), rngs=rngs)

  def __call__(self, x_BxHxWx3: jax.Array, layer: str = "pool") -> jax.Array:
    if layer not in LAYERS:
      raise ValueError(f"inception_v3 has no layer {layer!r}; layers: {LAYERS}")
    x = x_BxHxWx3
    if self.transform_input:
      std = jnp.asarray(common.IMAGENET_STD, x.dtype)
      mean = jnp.asarray(common.IMAGENET_MEAN, x.dtype)
      x = x * (std / 0.5) + (mean - 0.5) / 0.5
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = common.max_pool(x, 3, 2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = common.max_pool(x, 3, 2)
    for name in MIXED:
      x = getattr(self, name)(x)
    x = x.mean(axis=(1, 2))
    return x if layer == "pool" else self.fc(x)


def aux_layout(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
  """The published file's auxiliary classifier (InceptionAux on Mixed_6e's 768 channels)."""
  m = float(config.get("width", 1.0))
  w = lambda n: common.width(n, m)  # pylint: disable=unnecessary-lambda-assignment
  out = {}
  for name, cin, cout, k in (("conv0", w(768), w(128), 1), ("conv1", w(128), w(768), 5)):
    out[f"AuxLogits.{name}.conv.weight"] = (cout, cin, k, k)
    for p in ("weight", "bias", "running_mean", "running_var"):
      out[f"AuxLogits.{name}.bn.{p}"] = (cout,)
  classes = int(config.get("num_classes", 1000))
  out["AuxLogits.fc.weight"] = (classes, w(768))
  out["AuxLogits.fc.bias"] = (classes,)
  return out


INCEPTION_V3 = common.Network(
    name="inception_v3", build=lambda config, rngs: InceptionV3(config, rngs=rngs),
    default_config={"width": 1.0, "num_classes": 1000, "transform_input": True},
    published="torchvision inception_v3 (Google weights)",
    files=("inception_v3_google-0cc3c7bd.pth",), extra_layout=aux_layout)
