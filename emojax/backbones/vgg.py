"""VGG16 (Simonyan & Zisserman 2015, configuration D, no BatchNorm) as torchvision builds it,
Flax NNX, NHWC. Seed 000 uses VGG16 trained on Places365 as a scene feature (pool5 averaged over
space, 512-d) and the ImageNet network's features.

Module tree and names as torchvision's `vgg16`: features.{0,2,5,7,10,12,14,17,19,21,24,26,28}
(3x3 convolutions, padding 1, each followed by ReLU; 2x2 max pools at 4, 9, 16, 23, 30), an
adaptive 7x7 average pool, classifier.{0,3,6} (fc6 25088 -> 4096, fc7 4096 -> 4096, fc8 ->
classes; ReLU and dropout 0.5 after fc6 and fc7).

Input: (B, H, W, 3) ImageNet-normalised; 224 x 224 for the published preprocessing. Layers:
'pool5' (B, h, w, 512) the last max pool (7 x 7 at 224), 'pool5_mean' (B, 512) its spatial mean,
'fc6' / 'fc7' (B, 4096) after their ReLU, 'logits' (B, classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

from emojax.backbones import common

CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
LAYERS = ("pool5", "pool5_mean", "fc6", "fc7", "logits")


def feature_indices() -> list[tuple[int, int | str]]:
  """[(torch index in `features`, channels or 'M')], ReLUs taking the index after each conv."""
  out, i = [], 0
  for v in CFG_D:
    out.append((i, v))
    i += 1 if v == "M" else 2
  return out


class VGG16(nnx.Module):
  """config: width (conv channel multiplier), fc (fc6 / fc7 width), num_classes, dropout."""

  def __init__(self, config: Mapping[str, Any], *, rngs: nnx.Rngs):
    m = float(config.get("width", 1.0))
    fc = int(config.get("fc", 4096))
    convs, cin = {}, 3
    for i, v in feature_indices():
      if v != "M":
        convs[str(i)] = common.conv(cin, common.width(v, m), 3, padding=1, rngs=rngs)
        cin = common.width(v, m)
    self.features = nnx.Dict(convs)
    self.channels = cin
    rate = float(config.get("dropout", 0.5))
    self.classifier = nnx.Dict({
        "0": nnx.Linear(cin * 7 * 7, fc, rngs=rngs), "2": nnx.Dropout(rate),
        "3": nnx.Linear(fc, fc, rngs=rngs), "5": nnx.Dropout(rate),
        "6": nnx.Linear(fc, int(config.get("num_classes", 1000)), rngs=rngs)})

  def __call__(self, x_BxHxWx3: jax.Array, layer: str = "fc7", *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> jax.Array:
    if layer not in LAYERS:
      raise ValueError(f"vgg16 has no layer {layer!r}; layers: {LAYERS}")
    x = x_BxHxWx3
    for i, v in feature_indices():
      x = common.max_pool(x, 2, 2) if v == "M" else jax.nn.relu(self.features[str(i)](x))
    if layer == "pool5":
      return x
    if layer == "pool5_mean":
      return x.mean(axis=(1, 2))
    x = common.flatten_hwc(common.adaptive_avg_pool(x, (7, 7)))
    c = self.classifier
    x = jax.nn.relu(c["0"](x))
    if layer == "fc6":
      return x
    x = jax.nn.relu(c["3"](c["2"](x, deterministic=not train, rngs=rngs)))
    if layer == "fc7":
      return x
    return c["6"](c["5"](x, deterministic=not train, rngs=rngs))


def _flatten(config) -> dict[str, tuple[int, int, int]]:
  return {"classifier.0": (common.width(512, float(config.get("width", 1.0))), 7, 7)}


def _network(name: str, classes: int, published: str, files: tuple[str, ...]) -> common.Network:
  return common.Network(
      name=name, build=lambda config, rngs: VGG16(config, rngs=rngs),
      default_config={"width": 1.0, "fc": 4096, "num_classes": classes},
      published=published, files=files, flatten=_flatten)


VGG16_IMAGENET = _network("vgg16", 1000, "torchvision vgg16", ("vgg16-397923af.pth",))
VGG16_PLACES365 = _network("vgg16_places365", 365, "VGG16 Places365 (torchvision vgg16 layout)",
                           ("vgg16_places365.pth",))
