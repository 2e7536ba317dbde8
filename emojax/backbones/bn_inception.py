"""BN-Inception (Ioffe & Szegedy 2015) as in Cadene's `pretrainedmodels.bninception`, Flax NNX.

The ImageNet network TSN and ECO (seed 004) build on. Published file: `bn_inception-52deb4733.pth`
(the port's current code links a re-export, `bn_inception-239d2248.pth`, of the same module
definitions), a state dict with Caffe-style names:
`conv1_7x7_s2.weight` (64, 3, 7, 7), `conv1_7x7_s2_bn.{weight,bias,running_mean,running_var}`,
`inception_3a_1x1.weight`, ..., `inception_5b_pool_proj_bn.*`, `last_linear.weight` (1000, 1024).
Every convolution has a bias and is followed by BatchNorm (eps 1e-5) and ReLU.

Input: channels-last (..., H, W, 3) BGR in 0-255 minus the mean [104, 117, 128] (see
`preprocess`), 224 x 224 (any size that survives the five stride-2 steps works). Pools as the
port: max 3x3/2 with ceil_mode, avg 3x3/1 pad 1 counting the padding, 5b's max 3x3/1 pad 1; the
global pool is the mean over the final map (the port's AvgPool2d(7) at 224 px).

Outputs: `features(x)` the inception_5b map (..., h, w, 1024); `pool(x)` its global mean
(..., 1024) (the `bn_inception_pool` feature, TSN's per-segment feature); `__call__` ImageNet logits.
`endpoint(x, name)` stops after any block ('conv2', 'inception_3a', ..., 'inception_5b'), e.g.
ECO's 2-D part (up to inception_3c). As a trainable backbone: `BNInception(partial_bn=True)` keeps
every BatchNorm but the first on its running statistics in `model.train()` (TSN's partial BN).

  python -m emojax.backbones.convert --network=bn_inception --source=bn_inception-52deb4733.pth \
      --out=bn_inception.npz
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax.backbones import common

MEAN_BGR = np.array([104.0, 117.0, 128.0], np.float32)
EPS = 1e-5
NUM_CLASSES = 1000
FEATURE_DIM = 1024

# Inception blocks: (name, input channels, #1x1 (0: none), #3x3 reduce, #3x3, #double reduce,
# #double, pool ('avg' | 'max'), pool proj (0: pass-through), stride).
BLOCKS = (
    ("inception_3a", 192, 64, 64, 64, 64, 96, "avg", 32, 1),
    ("inception_3b", 256, 64, 64, 96, 64, 96, "avg", 64, 1),
    ("inception_3c", 320, 0, 128, 160, 64, 96, "max", 0, 2),
    ("inception_4a", 576, 224, 64, 96, 96, 128, "avg", 128, 1),
    ("inception_4b", 576, 192, 96, 128, 96, 128, "avg", 128, 1),
    ("inception_4c", 576, 160, 128, 160, 128, 160, "avg", 128, 1),
    ("inception_4d", 608, 96, 128, 192, 160, 192, "avg", 128, 1),
    ("inception_4e", 608, 0, 128, 192, 192, 256, "max", 0, 2),
    ("inception_5a", 1056, 352, 192, 320, 160, 224, "avg", 128, 1),
    ("inception_5b", 1024, 352, 192, 320, 192, 224, "max", 128, 1),
)
ENDPOINTS = ("conv2",) + tuple(b[0] for b in BLOCKS)


def block_convs(block) -> list[tuple[str, int, int, int, int]]:
  """(name, in, out, kernel, stride) of a block's convolutions, in the port's order."""
  name, cin, n1, r3, n3, rd, nd, _, proj, s = block
  convs = []
  if n1:
    convs.append((f"{name}_1x1", cin, n1, 1, 1))
  convs += [(f"{name}_3x3_reduce", cin, r3, 1, 1), (f"{name}_3x3", r3, n3, 3, s),
            (f"{name}_double_3x3_reduce", cin, rd, 1, 1), (f"{name}_double_3x3_1", rd, nd, 3, 1),
            (f"{name}_double_3x3_2", nd, nd, 3, s)]
  if proj:
    convs.append((f"{name}_pool_proj", cin, proj, 1, 1))
  return convs


STEM = (("conv1_7x7_s2", 3, 64, 7, 2), ("conv2_3x3_reduce", 64, 64, 1, 1),
        ("conv2_3x3", 64, 192, 3, 1))
CONVS = STEM + tuple(c for b in BLOCKS for c in block_convs(b))


class BNInception(nnx.Module):
  """BN-Inception; see the module docstring. Parameter names follow the port's."""

  def __init__(self, num_classes: int = NUM_CLASSES, *, partial_bn: bool = False,
               rngs: nnx.Rngs):
    for i, (name, cin, cout, k, s) in enumerate(CONVS):
      setattr(self, name, nnx.Conv(cin, cout, (k, k), strides=s, padding=((k // 2,) * 2,) * 2,
                                   rngs=rngs))
      setattr(self, f"{name}_bn", common.batch_norm(cout, eps=EPS, momentum=0.9,
                                                    frozen=partial_bn and i > 0, rngs=rngs))
    self.last_linear = nnx.Linear(FEATURE_DIM, num_classes, rngs=rngs)

  def _unit(self, name: str, x: jax.Array) -> jax.Array:
    return jax.nn.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))

  def _block(self, block, x: jax.Array) -> jax.Array:
    name, _, n1, *_, kind, proj, s = block
    outs = []
    if n1:
      outs.append(self._unit(f"{name}_1x1", x))
    outs.append(self._unit(f"{name}_3x3", self._unit(f"{name}_3x3_reduce", x)))
    d = self._unit(f"{name}_double_3x3_reduce", x)
    outs.append(self._unit(f"{name}_double_3x3_2", self._unit(f"{name}_double_3x3_1", d)))
    h, w = x.shape[1:3]
    if s == 2:  # MaxPool2d(3, stride 2, ceil_mode)
      p = common.pool(x, "max", (3, 3), (2, 2),
                      (common.ceil_pads(h, 3, 2, 0), common.ceil_pads(w, 3, 2, 0)))
    else:  # 3x3 / 1, padding 1 (avg counts the padding)
      p = common.pool(x, kind, (3, 3), (1, 1), ((1, 1), (1, 1)))
    outs.append(self._unit(f"{name}_pool_proj", p) if proj else p)
    return jnp.concatenate(outs, -1)

  def _endpoint(self, x_BxHxWx3: jax.Array, end: str) -> jax.Array:
    if end not in ENDPOINTS:
      raise errors.ConfigError(f"bn_inception: unknown endpoint {end!r}; use one of {ENDPOINTS}")
    x = self._unit("conv1_7x7_s2", x_BxHxWx3)
    x = common.max_pool(x, 3, 2, ceil_mode=True)
    x = self._unit("conv2_3x3", self._unit("conv2_3x3_reduce", x))
    if end == "conv2":
      return x
    x = common.max_pool(x, 3, 2, ceil_mode=True)
    for block in BLOCKS:
      x = self._block(block, x)
      if block[0] == end:
        break
    return x

  def endpoint(self, x: jax.Array, end: str) -> jax.Array:
    """The output of block `end` for (..., H, W, 3) preprocessed input: (..., h, w, C)."""
    return common.flat_leading(lambda y: self._endpoint(y, end), x, 2)

  def blocks_after(self, x: jax.Array, start: str, end: str = "inception_5b") -> jax.Array:
    """The blocks after `start` through `end` on the output of `endpoint(., start)` (ECO Full's
    2-D branch continues the shared trunk)."""
    names = [b[0] for b in BLOCKS]
    if start not in names or end not in names or names.index(end) <= names.index(start):
      raise errors.ConfigError(f"bn_inception: no blocks from {start!r} to {end!r}; use block "
                               f"names {names} in order")
    todo = BLOCKS[names.index(start) + 1:names.index(end) + 1]

    def run(y):
      for block in todo:
        y = self._block(block, y)
      return y
    return common.flat_leading(run, x, 2)

  def features(self, x: jax.Array) -> jax.Array:
    return self.endpoint(x, "inception_5b")

  def pool(self, x: jax.Array) -> jax.Array:
    """(..., H, W, 3) -> (..., 1024): the global average of inception_5b."""
    return self.features(x).mean((-3, -2))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.last_linear(self.pool(x))


def preprocess(rgb_uint8: np.ndarray | jax.Array) -> jax.Array:
  """RGB uint8 (..., H, W, 3) -> the port's input: BGR 0-255 minus the ImageNet BGR mean."""
  return jnp.asarray(rgb_uint8, jnp.float32)[..., ::-1] - MEAN_BGR


def _build(config: Mapping[str, Any], rngs: nnx.Rngs) -> BNInception:
  return BNInception(int(config.get("num_classes", NUM_CLASSES)), rngs=rngs)


BN_INCEPTION = common.Network(
    name="bn_inception", build=_build, default_config={"num_classes": NUM_CLASSES},
    published="Cadene pretrainedmodels bninception",
    files=("bn_inception-52deb4733.pth", "bn_inception-239d2248.pth"))


def load(path: str | os.PathLike, *, partial_bn: bool = False) -> tuple[BNInception, str]:
  """(BNInception with a converted file's weights, the published source's sha256); partial_bn:
  every BatchNorm but the first keeps its running statistics in `model.train()` (TSN)."""
  loaded = common.load(path, BN_INCEPTION)
  for name, *_ in CONVS[1:]:
    getattr(loaded.model, f"{name}_bn").frozen = partial_bn
  return loaded.model, loaded.source_sha256
