"""FlowNetS (Dosovitskiy et al. 2015) as in ClementPinard/FlowNetPytorch's `flownets` (no
BatchNorm), Flax NNX, channels-last.

Published file: `flownets_EPE1.951.pth.tar` (Flying Chairs), a checkpoint whose "state_dict"
holds `conv1.0.weight` (64, 6, 7, 7), `conv1.0.bias`, `conv2.0.*`, `conv3.0.*`, `conv3_1.0.*`,
`conv4.0.*`, `conv4_1.0.*`, `conv5.0.*`, `conv5_1.0.*`, `conv6.0.*`, `conv6_1.0.*` (1024, 1024, 3,
3), `deconv5.0.weight` (1024, 512, 4, 4) ... `deconv2.0.weight`, `predict_flow6.weight`
(2, 1024, 3, 3) ... `predict_flow2.weight`, `upsampled_flow6_to_5.weight` (2, 2, 4, 4) ...
(`emojax.weights` unwraps the checkpoint; its other keys, e.g. "div_flow", are not arrays).
Encoder convolutions pad (k - 1) / 2 and are followed by LeakyReLU(0.1); deconvolutions are
ConvTranspose2d(4, 2, 1) without bias, + LeakyReLU(0.1); flow predictions are bias-free 3x3 convs.

Input: a frame pair stacked on channels (B, H, W, 6) = [first RGB, second RGB], each scaled to
[0, 1] minus the port's mean [0.411, 0.432, 0.45] (`preprocess`, as its run_inference.py).
Outputs: `encode(x)` the conv6_1 map (B, H/64, W/64, 1024) (the contracting part); `pool(x)` its
spatial mean (B, 1024), the feature seed 003 takes from "the encoder of the FlowNetS" per pair
of consecutive frames (read as conv6_1, the encoder's last layer and the only 1024-channel one);
`__call__` the full network's flow2 (B, H/4, W/4, 2), in the port's units (multiply by the
checkpoint's div_flow, 20, for pixels).

  python -m emojax.backbones.convert --network=flownets --source=flownets_EPE1.951.pth.tar \
      --out=flownets.npz
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax.backbones import common

MEAN_RGB = np.array([0.411, 0.432, 0.45], np.float32)
FEATURE_DIM = 1024

ENCODER = (("conv1", 6, 64, 7, 2), ("conv2", 64, 128, 5, 2), ("conv3", 128, 256, 5, 2),
           ("conv3_1", 256, 256, 3, 1), ("conv4", 256, 512, 3, 2), ("conv4_1", 512, 512, 3, 1),
           ("conv5", 512, 512, 3, 2), ("conv5_1", 512, 512, 3, 1), ("conv6", 512, 1024, 3, 2),
           ("conv6_1", 1024, 1024, 3, 1))
DECONVS = (("deconv5", 1024, 512), ("deconv4", 1026, 256), ("deconv3", 770, 128),
           ("deconv2", 386, 64))
PREDICTS = (("predict_flow6", 1024), ("predict_flow5", 1026), ("predict_flow4", 770),
            ("predict_flow3", 386), ("predict_flow2", 194))
UPSAMPLES = ("upsampled_flow6_to_5", "upsampled_flow5_to_4", "upsampled_flow4_to_3",
             "upsampled_flow3_to_2")


def _leaky(x: jax.Array) -> jax.Array:
  return jax.nn.leaky_relu(x, 0.1)


def _crop_like(x: jax.Array, target: jax.Array) -> jax.Array:
  return x[:, :target.shape[1], :target.shape[2]]


class FlowNetS(nnx.Module):
  """FlowNetS; see the module docstring. Parameter names follow the port's (`conv1.0.kernel`)."""

  def __init__(self, *, rngs: nnx.Rngs):
    for name, cin, cout, k, s in ENCODER:
      setattr(self, name, nnx.List([nnx.Conv(cin, cout, (k, k), strides=s,
                                             padding=(((k - 1) // 2,) * 2,) * 2, rngs=rngs)]))
    for name, cin, cout in DECONVS:
      setattr(self, name, nnx.List([common.ConvTranspose2d(cin, cout, 4, 2, 1, rngs=rngs)]))
    for name, cin in PREDICTS:
      setattr(self, name, nnx.Conv(cin, 2, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                                   rngs=rngs))
    for name in UPSAMPLES:
      setattr(self, name, common.ConvTranspose2d(2, 2, 4, 2, 1, rngs=rngs))

  def _encoder(self, x: jax.Array) -> dict[str, jax.Array]:
    outs = {}
    for name, *_ in ENCODER:
      x = _leaky(getattr(self, name)[0](x))
      outs[name] = x
    return outs

  def encode(self, pair_BxHxWx6: jax.Array) -> jax.Array:
    """(B, H, W, 6) -> the conv6_1 map (B, h, w, 1024)."""
    return self._encoder(pair_BxHxWx6)["conv6_1"]

  def pool(self, pair_BxHxWx6: jax.Array) -> jax.Array:
    """(B, H, W, 6) -> (B, 1024): conv6_1 averaged over space."""
    return self.encode(pair_BxHxWx6).mean((1, 2))

  def __call__(self, pair_BxHxWx6: jax.Array) -> jax.Array:
    """(B, H, W, 6) -> flow2 (B, H/4, W/4, 2) (the port's eval-mode output)."""
    e = self._encoder(pair_BxHxWx6)
    skips = (e["conv5_1"], e["conv4_1"], e["conv3_1"], e["conv2"])
    x = e["conv6_1"]
    flow = self.predict_flow6(x)
    for (dname, _, _), (pname, _), up, skip in zip(DECONVS, PREDICTS[1:], UPSAMPLES, skips):
      flow_up = _crop_like(getattr(self, up)(flow), skip)
      deconv = _crop_like(_leaky(getattr(self, dname)[0](x)), skip)
      x = jnp.concatenate([skip, deconv, flow_up], -1)
      flow = getattr(self, pname)(x)
    return flow


def preprocess(first_rgb_uint8, second_rgb_uint8) -> jax.Array:
  """Two RGB uint8 frames (..., H, W, 3) -> the port's input (..., H, W, 6)."""
  a = jnp.asarray(first_rgb_uint8, jnp.float32) / 255.0 - MEAN_RGB
  b = jnp.asarray(second_rgb_uint8, jnp.float32) / 255.0 - MEAN_RGB
  return jnp.concatenate([a, b], -1)


def _build(config: Mapping[str, Any], rngs: nnx.Rngs) -> FlowNetS:
  del config  # one published variant
  return FlowNetS(rngs=rngs)


FLOWNETS = common.Network(name="flownets", build=_build, default_config={},
                          published="ClementPinard FlowNetPytorch flownets",
                          files=("flownets_EPE1.951.pth.tar",))


def load(path: str | os.PathLike) -> tuple[FlowNetS, str]:
  """(FlowNetS with a converted file's weights, the published source's sha256)."""
  loaded = common.load(path, FLOWNETS)
  return loaded.model, loaded.source_sha256
