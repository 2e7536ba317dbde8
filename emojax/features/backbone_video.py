"""The shared machinery of the pretrained-backbone video extractors `i3d_rgb`, `flownets` and
`bn_inception_pool` (seed 003's I3D and FlowNetS features; TSN / ECO's BN-Inception).

Each row is one clip: `level` 'clip' (default) cuts the film into clips of `clip_seconds` (0: the
whole film, e.g. one LIRIS-ACCEDE / EIMT16 excerpt) and 'second' makes every second a clip (T
rows: what the per-second datasets store). A clip gives `num_frames` frames (0: the extractor's
default for the level) picked by timestamp at the centres of N equal segments, which is what
seed 003's `ffmpeg -r N/t` gives (64 frames per excerpt); each frame is resized so its short side
is `short_side` (bilinear) and centre-cropped to `crop` x `crop` (224 in seeds 003 / 004).

Weights: the `.npz` written by `python -m emojax.backbones.convert --network=...` (the one
converted format of every backbone; docs/backbones.md); nothing is downloaded. The params record,
so that the manifest does: the network, the layer the feature is taken from, the preprocessing
(fixed strings, a different value is refused), the weights file's sha256 (`weights_sha256`) and
the published file's (`source_sha256`); the file, those params and the batching are shared with
the image backbone extractors (`emojax.features.backbone_weights`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax.features import backbone_weights
from emojax.features import decode
from emojax.features import frame_clips
from emojax.features import registry

LEVELS = ("clip", "second")


def centre_crop(f: decode.Frame, short_side: int, crop: int) -> np.ndarray:
  """RGB uint8 (crop, crop, 3): short side resized to `short_side` (bilinear), centre crop."""
  w, h = f.av_frame.width, f.av_frame.height
  scale = short_side / min(w, h)
  rw, rh = max(crop, round(w * scale)), max(crop, round(h * scale))
  rgb = f.rgb(rw, rh)
  top, left = (rh - crop) // 2, (rw - crop) // 2
  return rgb[top:top + crop, left:left + crop]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(graphdef, method: str, state, x):
  return getattr(nnx.merge(graphdef, state), method)(x)


class BackboneClips(registry.Extractor):
  """Base class: subclasses set the identity, `backbone` (the converted network), FIXED
  (network / layer / preprocessing), `defaults = {**COMMON, **FIXED}`, DEFAULT_FRAMES
  {level: N}, and implement `clip_row`."""

  modality = "video"
  per = "clip"
  backbone: ClassVar[str] = ""
  FIXED: ClassVar[dict[str, str]] = {}
  DEFAULT_FRAMES: ClassVar[dict[str, int]] = {}
  MIN_FRAMES: ClassVar[int] = 1
  COMMON = {"weights_path": "", "weights_sha256": "", "source_sha256": "", "level": "clip",
            "clip_seconds": 0, "num_frames": 0, "short_side": 256, "crop": 224}

  def __init__(self, **params: Any):
    super().__init__(**params)
    p = self.params
    for key, value in self.FIXED.items():
      if p[key] != value:
        raise errors.ConfigError(f"{self.name}: {key} is {value!r} (fixed), got {p[key]!r}; "
                                 "drop the parameter")
    if p["level"] not in LEVELS:
      raise errors.ConfigError(f"{self.name}: level must be one of {LEVELS}, got {p['level']!r}")
    backbone_weights.check_params(self.name, p, ("clip_seconds", "num_frames", "short_side",
                                                 "crop"), 0)
    if p["num_frames"] == 0:
      p["num_frames"] = self.DEFAULT_FRAMES[p["level"]]
    if p["num_frames"] < self.MIN_FRAMES:
      raise errors.ConfigError(f"{self.name}: num_frames must be >= {self.MIN_FRAMES}, got "
                               f"{p['num_frames']}")
    if p["crop"] < 32 or p["short_side"] < p["crop"]:
      raise errors.ConfigError(f"{self.name}: need 32 <= crop <= short_side, got crop="
                               f"{p['crop']} short_side={p['short_side']}")
    if p["level"] == "second":
      p["clip_seconds"] = 1
    self.per = p["level"]  # the manifest and extract_film read it here
    self.weights_path, _ = backbone_weights.open_converted(self.name, p, (self.backbone,))
    backbone_weights.load(self.weights_path)  # the whole file checked before any decoding

  def row_shape(self) -> tuple[int, ...]:
    return (1024,)

  def num_rows(self, num_seconds: int) -> int:
    cs = int(self.params["clip_seconds"])
    return min(num_seconds, 1) if cs <= 0 else math.ceil(num_seconds / cs)

  def run(self, method: str, x: np.ndarray) -> np.ndarray:
    graphdef, state = backbone_weights.load(self.weights_path)
    return np.asarray(_apply(graphdef, method, state, jnp.asarray(x)))

  def clip_row(self, frames_NxHxWx3: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  # -- the frame hooks ------------------------------------------------------------------------------
  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    p = self.params
    self.targets_CxN = frame_clips.clip_targets(num_seconds, int(p["clip_seconds"]),
                                                int(p["num_frames"]), "tsn", 1.0)
    self.sampler = decode.TimestampSampler(self.targets_CxN.ravel())
    self.pending: dict[int, list] = {}
    self.ready: list[np.ndarray] = []
    self.next_clip = 0

  def _take(self, picks) -> None:
    n = int(self.params["num_frames"])
    for i, f in picks:
      c, k = divmod(i, n)
      self.pending.setdefault(c, [None] * n)[k] = centre_crop(
          f, int(self.params["short_side"]), int(self.params["crop"]))
    while self.next_clip in self.pending and all(
        a is not None for a in self.pending[self.next_clip]):
      frames = np.stack(self.pending.pop(self.next_clip))
      self.ready.append(np.asarray(self.clip_row(frames), np.float32))
      self.next_clip += 1

  def frame(self, f) -> None:
    self._take(self.sampler.push(f))

  def end_second(self, s: int) -> list[np.ndarray]:
    if s == self.num_seconds - 1:
      self._take(self.sampler.flush())
    out, self.ready = self.ready, []
    return out

