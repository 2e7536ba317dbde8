"""Shared machinery of the ImageNet / Places365 backbone extractors (`resnet50_pool`,
`vgg16_places365_pool5`, `vgg16_fc7`, `alexnet_fc7`, `inception_v3_pool`; docs/backbones.md).

Frames: for each second s, the k = `frames_per_second` frames on screen at s + (j + 0.5) / k,
j = 0..k-1 (k = 1: the frame at the middle of the second); the second's row is the mean of the
network layer's output over those k frames (k = 1: that frame's output).

Preprocessing (the papers' / torchvision's evaluation transform): the frame scaled so that its
shorter side is `resize` (the longer side int(resize * long / short), as torchvision's Resize;
FFmpeg swscale with `interpolation`, bilinear by default, which widens its filter when shrinking as
PIL's antialiased resize does), the centre `crop` x `crop` (torchvision's CenterCrop), then
(x / 255 - mean) / std with ImageNet's mean and std. 256 / 224 for ResNet-50, VGG16 and AlexNet,
342 / 299 for Inception-v3 (torchvision's Inception_V3 transform). Networks converted from Caffe
take `channels='BGR'` (channels reversed before normalising; mean / std then in B, G, R order)
and `pixel_range=255` (x in 0..255: (x - mean) / std with mean, std in that range).

Per clip (`per='clip'`): clips of `clip_seconds` consecutive seconds (0: the whole film is one
clip; the last clip may be shorter), each row the mean of its seconds' rows (so the mean over all
the clip's sampled frames).

Frames are run `batch_size` at a time through one jitted forward (the last batch padded, so one
compilation); rows therefore come out up to batch_size / k seconds late. `dtype='bfloat16'` runs
the network in bfloat16 (weights and activations; rows are stored as float32).

The manifest records the network and layer, the converted file's sha256 (`weights_sha256`) and
the published file's (`source_sha256`, recorded in the converted file), and the preprocessing.
The weights file, those params and the batching are shared with the video backbone extractors
(`emojax.features.backbone_weights`).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax.backbones import common
from emojax.backbones import convert
from emojax.features import backbone_weights
from emojax.features import decode
from emojax.features import registry

DTYPES = backbone_weights.DTYPES
INTERPOLATIONS = ("BILINEAR", "BICUBIC", "AREA", "LANCZOS")


@functools.lru_cache(maxsize=16)
def _feature_shape(network: str, config_json: str, layer: str, crop: int) -> tuple[int, ...]:
  return common.output_shape(convert.network(network), json.loads(config_json), layer,
                             (crop, crop, 3))


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 7, 8))
def _forward(graphdef, state, rgb_BxHxWx3, layer: str, dtype: str, mean, std, channels: str,
             pixel_range: int):
  x = rgb_BxHxWx3[..., ::-1] if channels == "BGR" else rgb_BxHxWx3
  x = common.normalize(x, jnp.asarray(mean) / pixel_range, jnp.asarray(std) / pixel_range,
                       DTYPES[dtype])
  return nnx.merge(graphdef, state)(x, layer).astype(jnp.float32)


def preprocess(frame: decode.Frame, resize: int, crop: int,
               interpolation: str = "BILINEAR") -> np.ndarray:
  """uint8 (crop, crop, 3): shorter side to `resize`, centre crop (see the module docstring)."""
  width, height = frame.av_frame.width, frame.av_frame.height
  rw, rh = common.resize_shape(width, height, resize)
  return common.center_crop(frame.rgb(rw, rh, interpolation), crop)


class BackboneExtractor(registry.Extractor):
  """Base of the backbone extractors; a subclass sets name, networks, layer, resize, crop."""

  modality = "video"
  version = 1
  networks: ClassVar[tuple[str, ...]] = ()  # converted networks whose files it accepts
  layer: ClassVar[str] = ""
  resize: ClassVar[int] = 256
  crop: ClassVar[int] = 224
  base_defaults: ClassVar[dict[str, Any]] = {
      "weights_path": "", "weights_sha256": "", "source_sha256": "", "network": "", "layer": "",
      "frames_per_second": 1, "batch_size": 16, "dtype": "float32", "interpolation": "BILINEAR",
      "mean": list(common.IMAGENET_MEAN), "std": list(common.IMAGENET_STD), "channels": "RGB",
      "pixel_range": 1, "per": "second",
      "clip_seconds": 0}

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    cls.defaults = {**cls.base_defaults, "resize": cls.resize, "crop": cls.crop}

  def __init__(self, **params):
    super().__init__(**params)
    p = self.params
    what = f"extractor {self.name!r}"
    if p["dtype"] not in DTYPES:
      raise errors.ConfigError(f"{what}: dtype must be one of {sorted(DTYPES)}, got "
                               f"{p['dtype']!r}")
    if p["interpolation"] not in INTERPOLATIONS:
      raise errors.ConfigError(f"{what}: interpolation must be one of {INTERPOLATIONS}, got "
                               f"{p['interpolation']!r}")
    backbone_weights.check_params(what, p, ("frames_per_second", "batch_size", "resize", "crop"),
                                  1)
    if p["resize"] < p["crop"]:
      raise errors.ConfigError(f"{what}: resize ({p['resize']}) must be at least crop "
                               f"({p['crop']})")
    if p["channels"] not in ("RGB", "BGR") or p["pixel_range"] not in (1, 255):
      raise errors.ConfigError(f"{what}: channels must be 'RGB' or 'BGR' and pixel_range 1 or "
                               f"255, got {p['channels']!r}, {p['pixel_range']!r}")
    if len(p["mean"]) != 3 or len(p["std"]) != 3:
      raise errors.ConfigError(f"{what}: mean and std need 3 values (R, G, B in `channels` "
                               f"order), got {p['mean']!r}, {p['std']!r}")
    if p["per"] not in ("second", "clip"):
      raise errors.ConfigError(f"{what}: per must be 'second' or 'clip', got {p['per']!r}")
    if not isinstance(p["clip_seconds"], int) or p["clip_seconds"] < 0:
      raise errors.ConfigError(f"{what}: clip_seconds must be an integer >= 0 (0: the whole "
                               f"film), got {p['clip_seconds']!r}")
    path, info = backbone_weights.open_converted(self.name, p, self.networks)
    backbone_weights.pin(what, path, p, "network", info["network"])
    backbone_weights.pin(what, path, p, "layer", self.layer)
    self.per = p["per"]  # the instance's row unit (the manifest records it)
    self.weights_path = path
    self.config = info["config"]
    self._shape = _feature_shape(info["network"], json.dumps(self.config, sort_keys=True),
                                 self.layer, p["crop"])
    self._model = None

  # -- declarations -------------------------------------------------------------------------------
  def row_shape(self) -> tuple[int, ...]:
    return self._shape

  def num_clips(self, num_seconds: int) -> int:
    c = self.params["clip_seconds"]
    return 1 if c == 0 else math.ceil(num_seconds / c)

  def num_rows(self, num_seconds: int) -> int:
    return num_seconds if self.per == "second" else self.num_clips(num_seconds)

  # -- hooks --------------------------------------------------------------------------------------
  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    p = self.params
    if self._model is None:
      self._model = backbone_weights.load(self.weights_path, p["dtype"])
    k = p["frames_per_second"]
    self.sampler = decode.TimestampSampler((np.arange(num_seconds * k) + 0.5) / k)
    self.crops: list[np.ndarray] = []  # preprocessed frames not yet run, in target order
    self.pending_seconds = 0  # seconds whose frames are all in self.crops
    self.seconds_done: list[np.ndarray] = []  # per-second rows (per='clip': of the current clip)
    self.clip_index = 0

  def frame(self, f) -> None:
    p = self.params
    for _, picked in self.sampler.push(f):
      self.crops.append(preprocess(picked, p["resize"], p["crop"], p["interpolation"]))

  def features(self, crops_NxHxWx3: np.ndarray) -> np.ndarray:
    """(N, crop, crop, 3) uint8 -> (N, *row_shape) float32 layer outputs, in fixed batches."""
    graphdef, state = self._model
    p = self.params
    run = lambda batch: _forward(  # noqa: E731
        graphdef, state, jnp.asarray(batch), self.layer, p["dtype"], tuple(p["mean"]),
        tuple(p["std"]), p["channels"], p["pixel_range"])
    return backbone_weights.batched(run, np.asarray(crops_NxHxWx3, np.uint8), p["batch_size"],
                                    self._shape)

  def _run_pending(self) -> list[np.ndarray]:
    """Rows of the pending seconds (their crops run through the network)."""
    k = self.params["frames_per_second"]
    n = self.pending_seconds * k
    if n == 0:
      return []
    feats = self.features(np.stack(self.crops[:n]))
    self.crops = self.crops[n:]
    self.pending_seconds = 0
    return list(feats.reshape(-1, k, *self._shape).mean(axis=1))

  def _emit(self, second_rows: list[np.ndarray], last: bool) -> list[np.ndarray]:
    if self.per == "second":
      return second_rows
    out = []
    c = self.params["clip_seconds"] or self.num_seconds
    for row in second_rows:
      self.seconds_done.append(row)
      if len(self.seconds_done) == c:
        out.append(np.mean(self.seconds_done, axis=0))
        self.seconds_done = []
    if last and self.seconds_done:
      out.append(np.mean(self.seconds_done, axis=0))
      self.seconds_done = []
    return out

  def end_second(self, s: int) -> list[np.ndarray]:
    if s == self.num_seconds - 1:
      for _, picked in self.sampler.flush():
        p = self.params
        self.crops.append(preprocess(picked, p["resize"], p["crop"], p["interpolation"]))
    self.pending_seconds += 1
    last = s == self.num_seconds - 1
    if last or self.pending_seconds * self.params["frames_per_second"] >= self.params[
        "batch_size"]:
      return self._emit(self._run_pending(), last)
    return []

  def finish(self) -> list[np.ndarray]:
    return self._emit(self._run_pending(), True)
