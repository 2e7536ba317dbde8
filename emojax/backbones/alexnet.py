"""AlexNet (Krizhevsky et al. 2012, the one-GPU variant of Krizhevsky 2014 that torchvision
ships), Flax NNX, NHWC. Seed 002 fine-tunes AlexNet and uses fc7 (4096-d): the model trains
(dropout with `train=True` and an `rngs`) as well as extracting features.

Module tree and names as torchvision's `alexnet`: features.0 conv 11x11/4 pad 2 (64), max pool
3/2, features.3 conv 5x5 pad 2 (192), max pool, features.6 / 8 / 10 conv 3x3 pad 1 (384, 256,
256), max pool 3/2, adaptive 6x6 average pool, classifier: dropout 0.5, classifier.1 fc6 9216 ->
4096, ReLU, dropout, classifier.4 fc7 4096 -> 4096, ReLU, classifier.6 fc8 -> classes.

Input: (B, H, W, 3) ImageNet-normalised, 224 x 224 for the published preprocessing. Layers:
'pool5' (B, h, w, 256), 'fc6' / 'fc7' (B, 4096) after their ReLU, 'logits' (B, classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax import nnx

from emojax.backbones import common

LAYERS = ("pool5", "fc6", "fc7", "logits")
CONVS = (("0", 64, 11, 4, 2), ("3", 192, 5, 1, 2), ("6", 384, 3, 1, 1), ("8", 256, 3, 1, 1),
         ("10", 256, 3, 1, 1))  # (torch index, channels, kernel, stride, padding)
POOL_AFTER = ("0", "3", "10")


class AlexNet(nnx.Module):
  """config: width (conv channel multiplier), fc (fc6 / fc7 width), num_classes, dropout."""

  def __init__(self, config: Mapping[str, Any], *, rngs: nnx.Rngs):
    m = float(config.get("width", 1.0))
    fc = int(config.get("fc", 4096))
    convs, cin = {}, 3
    for i, c, k, s, p in CONVS:
      convs[i] = common.conv(cin, common.width(c, m), k, stride=s, padding=p, rngs=rngs)
      cin = common.width(c, m)
    self.features = nnx.Dict(convs)
    rate = float(config.get("dropout", 0.5))
    self.classifier = nnx.Dict({
        "0": nnx.Dropout(rate), "1": nnx.Linear(cin * 6 * 6, fc, rngs=rngs),
        "3": nnx.Dropout(rate), "4": nnx.Linear(fc, fc, rngs=rngs),
        "6": nnx.Linear(fc, int(config.get("num_classes", 1000)), rngs=rngs)})

  def __call__(self, x_BxHxWx3: jax.Array, layer: str = "fc7", *, train: bool = False,
               rngs: nnx.Rngs | None = None) -> jax.Array:
    if layer not in LAYERS:
      raise ValueError(f"alexnet has no layer {layer!r}; layers: {LAYERS}")
    x = x_BxHxWx3
    for i, *_ in CONVS:
      x = jax.nn.relu(self.features[i](x))
      if i in POOL_AFTER:
        x = common.max_pool(x, 3, 2)
    if layer == "pool5":
      return x
    x = common.flatten_hwc(common.adaptive_avg_pool(x, (6, 6)))
    c = self.classifier
    x = jax.nn.relu(c["1"](c["0"](x, deterministic=not train, rngs=rngs)))
    if layer == "fc6":
      return x
    x = jax.nn.relu(c["4"](c["3"](x, deterministic=not train, rngs=rngs)))
    if layer == "fc7":
      return x
    return c["6"](x)


def _flatten(config) -> dict[str, tuple[int, int, int]]:
  return {"classifier.1": (common.width(256, float(config.get("width", 1.0))), 6, 6)}


def _network(name: str, classes: int, published: str, files: tuple[str, ...]) -> common.Network:
  return common.Network(
      name=name, build=lambda config, rngs: AlexNet(config, rngs=rngs),
      default_config={"width": 1.0, "fc": 4096, "num_classes": classes},
      published=published, files=files, flatten=_flatten)


ALEXNET = _network("alexnet", 1000, "torchvision alexnet", ("alexnet-owt-7be5be79.pth",))
ALEXNET_PLACES365 = _network("alexnet_places365", 365, "CSAIL Places365 alexnet",
                             ("alexnet_places365.pth.tar",))
