"""ResNet-50 (He et al. 2016) as torchvision builds it (stride in the 3x3 convolution, "v1.5"),
Flax NNX, NHWC, inference-mode BatchNorm. Seed 003 uses its global-pool output (2048-d); the
Places365 release (`resnet50_places365.pth.tar`, CSAIL) is the same network with 365 classes.

Module tree and names as torchvision's `resnet50`: conv1, bn1, layer1..layer4 (3, 4, 6, 3
Bottleneck blocks: conv1/bn1 1x1, conv2/bn2 3x3 (stride), conv3/bn3 1x1 (4x expansion),
downsample.0 (1x1 conv) / downsample.1 (BN) on the first block of each layer), fc.

Input: (B, H, W, 3) ImageNet-normalised (common.normalize); 224 x 224 for the published
preprocessing. Layers: 'pool' (B, 2048) global average pool, 'logits' (B, classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

from emojax.backbones import common

BLOCKS = (3, 4, 6, 3)
LAYERS = ("pool", "logits")


class Bottleneck(nnx.Module):

  def __init__(self, cin: int, planes: int, stride: int, downsample: bool, *, rngs: nnx.Rngs):
    self.conv1 = common.conv(cin, planes, 1, bias=False, rngs=rngs)
    self.bn1 = common.batch_norm(planes, rngs=rngs)
    self.conv2 = common.conv(planes, planes, 3, stride=stride, padding=1, bias=False, rngs=rngs)
    self.bn2 = common.batch_norm(planes, rngs=rngs)
    self.conv3 = common.conv(planes, planes * 4, 1, bias=False, rngs=rngs)
    self.bn3 = common.batch_norm(planes * 4, rngs=rngs)
    self.has_downsample = downsample
    if downsample:
      self.downsample = nnx.List([
          common.conv(cin, planes * 4, 1, stride=stride, bias=False, rngs=rngs),
          common.batch_norm(planes * 4, rngs=rngs)])

  def __call__(self, x):
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = jax.nn.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    if self.has_downsample:
      x = self.downsample[1](self.downsample[0](x))
    return jax.nn.relu(y + x)


class ResNet50(nnx.Module):
  """config: width (multiplier of every channel count, 1 = published), num_classes."""

  def __init__(self, config: Mapping[str, Any], *, rngs: nnx.Rngs):
    m = float(config.get("width", 1.0))
    c = common.width(64, m)
    self.conv1 = common.conv(3, c, 7, stride=2, padding=3, bias=False, rngs=rngs)
    self.bn1 = common.batch_norm(c, rngs=rngs)
    cin = c
    for i, (n, planes) in enumerate(zip(BLOCKS, (64, 128, 256, 512))):
      p = common.width(planes, m)
      blocks = []
      for b in range(n):
        stride = 2 if (b == 0 and i > 0) else 1
        blocks.append(Bottleneck(cin, p, stride, b == 0, rngs=rngs))
        cin = p * 4
      setattr(self, f"layer{i + 1}", nnx.List(blocks))
    self.features = cin
    self.fc = nnx.Linear(cin, int(config.get("num_classes", 1000)), rngs=rngs)

  def __call__(self, x_BxHxWx3: jax.Array, layer: str = "pool") -> jax.Array:
    x = jax.nn.relu(self.bn1(self.conv1(x_BxHxWx3)))
    x = common.max_pool(x, 3, 2, 1)
    for i in range(4):
      for block in getattr(self, f"layer{i + 1}"):
        x = block(x)
    x = x.mean(axis=(1, 2))
    if layer == "pool":
      return x
    if layer == "logits":
      return self.fc(x)
    raise ValueError(f"resnet50 has no layer {layer!r}; layers: {LAYERS}")


def _network(name: str, classes: int, published: str, files: tuple[str, ...]) -> common.Network:
  return common.Network(
      name=name, build=lambda config, rngs: ResNet50(config, rngs=rngs),
      default_config={"width": 1.0, "num_classes": classes},
      published=published, files=files)


RESNET50 = _network("resnet50", 1000, "torchvision resnet50",
                    ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"))
RESNET50_PLACES365 = _network("resnet50_places365", 365, "CSAIL Places365 resnet50",
                              ("resnet50_places365.pth.tar",))
