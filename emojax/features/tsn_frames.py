"""`tsn_frames`: the frames TSN / ECO (seed 004) sample per clip: K segments x M candidates.

A clip (`clip_seconds`; 0 = the whole film, as for LIRIS-ACCEDE's excerpts) is cut into
`num_segments` (K, 8 in seed 004) equal segments; segment k holds `candidates` (M) frames at
c + (k + (m + 0.5) / M) L / K (the frame on screen then). Training draws one candidate per
segment, evaluation takes the centre one (emojax.models.video_convnets), so TSN's random
per-segment sampling is approximated by M stored frames. Frames are resized to `size` x `size`
(224 in seed 004, bilinear) and stored encoded as `frame_clips` does: one row per clip of shape
(K, M), dtype object; `frame_clips.decode_clips` of a row reshaped to (K * M,) gives the pixels.
"""

from __future__ import annotations

import numpy as np

from emojax.errors import ConfigError
from emojax.features import decode
from emojax.features import frame_clips
from emojax.features import registry


def segment_targets(num_seconds: int, clip_seconds: int, num_segments: int,
                    candidates: int) -> np.ndarray:
  """(clips, K, M) target times in seconds."""
  length = num_seconds if clip_seconds <= 0 else clip_seconds
  num_clips = 1 if clip_seconds <= 0 else -(-num_seconds // clip_seconds)
  k = np.arange(num_segments)[:, None]
  m = np.arange(candidates)[None, :]
  out = np.zeros((num_clips, num_segments, candidates))
  for c in range(num_clips):
    start = c * length
    dur = min(length, num_seconds - start)
    out[c] = start + (k + (m + 0.5) / candidates) * dur / num_segments
  return out


@registry.register
class TsnFrames(frame_clips.FrameClips):
  """(K, M) encoded frames per clip."""

  name = "tsn_frames"
  version = 1
  defaults = {"num_segments": 8, "candidates": 3, "size": 224, "clip_seconds": 0,
              "encoding": "jpeg", "quality": 90}

  def __init__(self, **params):  # pylint: disable=super-init-not-called
    registry.Extractor.__init__(self, **params)
    p = self.params
    if int(p["num_segments"]) < 1 or int(p["candidates"]) < 1:
      raise ConfigError(f"tsn_frames: num_segments={p['num_segments']} and candidates="
                        f"{p['candidates']} must be >= 1")
    if p["encoding"] not in ("jpeg", "png"):
      raise ConfigError(f"tsn_frames: encoding must be 'jpeg' or 'png', got {p['encoding']!r}")

  def row_shape(self) -> tuple[int, ...]:
    return (int(self.params["num_segments"]), int(self.params["candidates"]))

  def begin(self, num_seconds: int) -> None:
    registry.Extractor.begin(self, num_seconds)
    p = self.params
    self.targets_CxN = segment_targets(num_seconds, int(p["clip_seconds"]),
                                       int(p["num_segments"]), int(p["candidates"])).reshape(
                                           -1, int(p["num_segments"]) * int(p["candidates"]))
    self.sampler = decode.TimestampSampler(self.targets_CxN.ravel())
    self.pending: dict[int, list] = {}
    self.ready: list[np.ndarray] = []
    self.next_clip = 0

  def _take(self, picks) -> None:
    k, m = self.row_shape()
    n, size = k * m, int(self.params["size"])
    for i, f in picks:
      c, j = divmod(i, n)
      row = self.pending.setdefault(c, [None] * n)
      row[j] = frame_clips.encode_image(f.rgb(size, size), self.params["encoding"],
                                        int(self.params["quality"]))
    while self.next_clip in self.pending and all(
        b is not None for b in self.pending[self.next_clip]):
      row = np.empty(n, dtype=object)
      row[:] = self.pending.pop(self.next_clip)
      self.ready.append(row.reshape(k, m))
      self.next_clip += 1
