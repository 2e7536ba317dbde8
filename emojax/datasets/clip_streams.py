"""Per-clip image streams and 3-class labels (seed 002), shared by the per-clip builders.

A per-clip example holds, for each 1 s segment of the clip, the key frame (`keyframe`, the frame
whose RGB histogram is closest in L1 to the segment's mean histogram: `features.keyframe`) and the
spectrogram image (`spectrogram_image`, 40 ms Hamming window, 20 ms hop: `features.
spectrogram_image`), both uint8, plus the valence/arousal values and their 3 classes:

  valence  0 negative, 1 neutral, 2 positive
  arousal  0 calm,     1 neutral, 2 active

`class_of(values, boundaries)` maps values to classes: class 0 below the first boundary, class 2
at or above the second (`np.digitize`). The synthetic per-clip benchmark puts the boundaries at the
training split's terciles (`terciles`); LIRIS-ACCEDE / MediaEval 2015 use the official labels
(`check_classes` rejects any outside 0..2).

Only numpy, PIL and the two feature extractors are imported here (no TFDS), so a process pool can
import this module cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from emojax.errors import DataError
from emojax.features import keyframe as keyframe_lib
from emojax.features import spectrogram_image as spectrogram_lib

NUM_CLASSES = 3
CLASS_NAMES = {"valence": ("negative", "neutral", "positive"),
               "arousal": ("calm", "neutral", "active")}
STREAMS = ("keyframe", "spectrogram_image")
SAMPLE_RATE = spectrogram_lib.SAMPLE_RATE


def terciles(values) -> tuple[float, float]:
  """The 1/3 and 2/3 quantiles (numpy's default linear interpolation) of `values`."""
  v = np.asarray(values, np.float64).reshape(-1)
  if v.size < 3:
    raise DataError(f"class boundaries need at least 3 training values, got {v.size}.")
  lo, hi = np.quantile(v, [1.0 / 3.0, 2.0 / 3.0])
  return float(lo), float(hi)


def class_of(values, boundaries: Sequence[float]) -> np.ndarray:
  """int64 classes 0..2 of `values`: 0 below boundaries[0], 2 at or above boundaries[1]."""
  lo, hi = (float(b) for b in boundaries)
  if not lo <= hi:
    raise DataError(f"class boundaries {boundaries} must be increasing.")
  return np.digitize(np.asarray(values, np.float64), [lo, hi]).astype(np.int64)


def check_classes(classes, where: str) -> np.ndarray:
  """int64 classes, or a DataError naming `where` when any is not an integer in 0..2."""
  c = np.asarray(classes)
  as_float = c.astype(np.float64)
  bad = ~np.isfinite(as_float) | (as_float != np.round(as_float)) | (as_float < 0) | (
      as_float >= NUM_CLASSES)
  if bad.any():
    first = np.flatnonzero(bad.reshape(-1))[0]
    raise DataError(f"{where}: class label {c.reshape(-1).tolist()[first]!r} is not one of 0, 1, 2 "
                    f"({int(bad.sum())} such label(s)). Fix: use the 3-class labels of the "
                    "MediaEval 2015 protocol (0 negative/calm, 1 neutral, 2 positive/active).")
  return as_float.astype(np.int64)


def resize_rgb(rgb_HxWx3: np.ndarray, size: int) -> np.ndarray:
  """(size, size, 3) uint8: bilinear resize with PIL (the keyframe extractor's `rgb(size, size)`)."""
  return np.asarray(Image.fromarray(np.ascontiguousarray(rgb_HxWx3)).resize(
      (size, size), Image.Resampling.BILINEAR))


def keyframes(frames_NxHxWx3: np.ndarray, second_of_N: np.ndarray, num_seconds: int, size: int,
              bins: int = 16) -> np.ndarray:
  """(num_seconds, size, size, 3) uint8 key frames of decoded frames.

  Second s takes, among the frames with `second_of_N == s`, the one whose RGB histogram
  (`keyframe.rgb_histogram`, `bins` per channel, on the frame as given) is closest in L1 to the
  second's mean histogram (`keyframe.select`). A second without a frame takes the last frame
  before it; a clip whose first second has no frame is an error.
  """
  out = np.empty((num_seconds, size, size, 3), np.uint8)
  last = None
  for s in range(num_seconds):
    idx = np.flatnonzero(second_of_N == s)
    if idx.size:
      hists = np.stack([keyframe_lib.rgb_histogram(frames_NxHxWx3[i], bins) for i in idx])
      best = frames_NxHxWx3[idx[keyframe_lib.select(hists)]]
      last = frames_NxHxWx3[idx[-1]]
    elif last is not None:
      best = last
    else:
      raise DataError(f"keyframes: no frame in second {s} or before it.")
    out[s] = resize_rgb(best, size)
  return out


def spectrogram_images(audio_n: np.ndarray, num_seconds: int, size: int) -> np.ndarray:
  """(num_seconds, size, size) uint8 spectrogram images of mono 16 kHz audio, one a second."""
  need = num_seconds * SAMPLE_RATE
  if audio_n.ndim != 1 or audio_n.size < need:
    raise DataError(f"spectrogram_images: need {need} mono samples at {SAMPLE_RATE} Hz for "
                    f"{num_seconds} s, got shape {audio_n.shape}.")
  extractor = spectrogram_lib.SpectrogramImage(size=size)
  return np.stack([extractor.audio_second(s, audio_n[s * SAMPLE_RATE:(s + 1) * SAMPLE_RATE])
                   for s in range(num_seconds)])


def check_streams(example: dict, num_seconds: int, size: int, where: str) -> None:
  """DataError naming `where` when a stream is missing or has the wrong shape / dtype."""
  shapes = {"keyframe": (num_seconds, size, size, 3), "spectrogram_image": (num_seconds, size, size)}
  for name, shape in shapes.items():
    x = example.get(name)
    if x is None:
      raise DataError(f"{where}: the {name} stream is missing. Fix: re-extract the clip.")
    x = np.asarray(x)
    if x.shape != shape or x.dtype != np.uint8:
      raise DataError(f"{where}: {name} has shape {x.shape} {x.dtype}, expected {shape} uint8. "
                      "Fix: re-extract the clip.")
