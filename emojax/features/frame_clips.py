"""`frame_clips`: raw frames for the 3D convnets of seed 004 (C3D, R(2+1)D, TSN, ECO).

A clip is `clip_seconds` consecutive seconds of the film (0: the whole film is one clip, as for
LIRIS-ACCEDE whose excerpts are separate files); the last clip may be shorter. Each clip gives
`num_frames` frames picked by timestamp (the frame on screen at each target time):
  'dense': consecutive frames at `fps` (5 in seed 004), centred in the clip:
           targets c + L / 2 + (k - N / 2 + 0.5) / fps, clamped into the clip;
  'tsn':   the clip cut into N equal segments, the centre of each (TSN's test-time rule;
           training-time random offsets would need every frame stored):
           targets c + (k + 0.5) L / N.
Frames are resized to `size` x `size` RGB with bilinear interpolation (224 in seed 004) and stored
encoded (`encoding` 'jpeg' at `quality`, or lossless 'png') as bytes: one row per clip, shape
(num_frames,), dtype object. `decode_clips` turns rows back into uint8 (clips, N, size, size, 3).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from emojax.errors import ConfigError
from emojax.features import decode
from emojax.features import registry


def clip_targets(num_seconds: int, clip_seconds: int, num_frames: int, sampling: str,
                 fps: float) -> np.ndarray:
  """(clips, num_frames) target times in seconds."""
  length = num_seconds if clip_seconds <= 0 else clip_seconds
  num_clips = 1 if clip_seconds <= 0 else math.ceil(num_seconds / clip_seconds)
  out = np.zeros((num_clips, num_frames))
  k = np.arange(num_frames)
  for c in range(num_clips):
    start = c * length
    dur = min(length, num_seconds - start)
    if sampling == "tsn":
      out[c] = start + (k + 0.5) * dur / num_frames
    else:
      t = start + dur / 2 + (k - num_frames / 2 + 0.5) / fps
      out[c] = np.clip(t, start, start + dur - 1e-6)
  return out


def encode_image(rgb_HxWx3: np.ndarray, encoding: str, quality: int) -> bytes:
  buf = io.BytesIO()
  if encoding == "jpeg":
    Image.fromarray(rgb_HxWx3).save(buf, format="JPEG", quality=quality)
  else:
    Image.fromarray(rgb_HxWx3).save(buf, format="PNG", compress_level=1)
  return buf.getvalue()


def decode_clips(rows: np.ndarray) -> np.ndarray:
  """Encoded rows (clips, N) of bytes -> uint8 (clips, N, H, W, 3)."""
  return np.stack([np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in row])
                   for row in rows])


@registry.register
class FrameClips(registry.Extractor):
  """(num_frames,) encoded frames per clip."""

  name = "frame_clips"
  version = 1
  modality = "video"
  per = "clip"
  dtype = "object"
  defaults = {"num_frames": 8, "size": 224, "fps": 5.0, "sampling": "dense", "clip_seconds": 0,
              "encoding": "jpeg", "quality": 90}

  def __init__(self, **params):
    super().__init__(**params)
    if self.params["sampling"] not in ("dense", "tsn"):
      raise ConfigError(f"frame_clips: sampling must be 'dense' or 'tsn', got "
                        f"{self.params['sampling']!r}")
    if self.params["encoding"] not in ("jpeg", "png"):
      raise ConfigError(f"frame_clips: encoding must be 'jpeg' or 'png', got "
                        f"{self.params['encoding']!r}")

  def row_shape(self) -> tuple[int, ...]:
    return (int(self.params["num_frames"]),)

  def num_rows(self, num_seconds: int) -> int:
    cs = int(self.params["clip_seconds"])
    return 1 if cs <= 0 else math.ceil(num_seconds / cs)

  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    p = self.params
    self.targets_CxN = clip_targets(num_seconds, int(p["clip_seconds"]), int(p["num_frames"]),
                                    p["sampling"], float(p["fps"]))
    self.sampler = decode.TimestampSampler(self.targets_CxN.ravel())
    self.pending: dict[int, list] = {}
    self.ready: list[np.ndarray] = []
    self.next_clip = 0

  def _take(self, picks) -> None:
    n, size = int(self.params["num_frames"]), int(self.params["size"])
    for i, f in picks:
      c, k = divmod(i, n)
      row = self.pending.setdefault(c, [None] * n)
      row[k] = encode_image(f.rgb(size, size), self.params["encoding"],
                            int(self.params["quality"]))
    while self.next_clip in self.pending and all(
        b is not None for b in self.pending[self.next_clip]):
      row = np.empty(n, dtype=object)
      row[:] = self.pending.pop(self.next_clip)
      self.ready.append(row)
      self.next_clip += 1

  def frame(self, f) -> None:
    self._take(self.sampler.push(f))

  def end_second(self, s: int) -> list[np.ndarray]:
    if s == self.num_seconds - 1:
      self._take(self.sampler.flush())
    out, self.ready = self.ready, []
    return out
