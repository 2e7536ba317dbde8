"""`extract_film`: one film -> per-second feature streams, in one audio pass and one video pass.

The two passes run at the same time (audio in a thread). Both stream: audio in one-second blocks, video frame by frame, each second handed to every
extractor as soon as it is complete, so memory stays flat however long the film (only the output
rows grow, by the manifest's row size per second). Seconds are aligned across modalities by
timestamp (see `decode`); the film has T = floor(video duration) seconds and every per-second
stream has exactly T rows.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import threadpoolctl

from emojax.errors import DataError
from emojax.features import decode
from emojax.features import manifest as manifest_lib
from emojax.features import registry

DEFAULT: tuple[str, ...] = ("vggish_logmel", "audio_functionals", "visual_stats")


@dataclasses.dataclass
class FilmFeatures:
  """The features of one film."""
  streams: dict[str, np.ndarray]  # name -> (rows, *row_shape); rows = T for per-second streams
  num_seconds: int  # T = floor(duration_s)
  duration_s: float  # video duration (s)
  manifest: dict[str, Any]  # see emojax.features.manifest
  has_audio: bool  # False: the audio streams were computed on silence (allow_missing_audio)
  path: str = ""


class _Rows:
  """Preallocated output rows of one extractor, filled in order."""

  def __init__(self, extractor: registry.Extractor, num_seconds: int, path: str):
    self.extractor = extractor
    self.path = path
    shape = tuple(extractor.row_shape())
    self.array = np.empty((extractor.num_rows(num_seconds), *shape), dtype=extractor.dtype)
    self.filled = 0

  def add(self, rows) -> None:
    for row in rows:
      if self.filled >= len(self.array):
        raise RuntimeError(f"extractor {self.extractor.name!r} produced more than "
                           f"{len(self.array)} rows for {self.path}")
      self.array[self.filled] = row
      self.filled += 1

  def done(self) -> np.ndarray:
    if self.filled != len(self.array):
      raise RuntimeError(f"extractor {self.extractor.name!r} produced {self.filled} rows, "
                         f"expected {len(self.array)}, for {self.path}")
    return self.array


def create_extractors(extractors: Sequence[str] | Mapping[str, dict]
                      ) -> list[registry.Extractor]:
  return [registry.create(n, p) for n, p in manifest_lib.normalize_spec(extractors).items()]


def extract_film(path: str | os.PathLike,
                 extractors: Sequence[str] | Mapping[str, dict] = DEFAULT, *,
                 fast: bool = False, progress: bool = False,
                 allow_missing_audio: bool = False) -> FilmFeatures:
  """Extracts the named features of one film.

  Args:
    path: any container/codec FFmpeg reads.
    extractors: names (default params) or {name: params}; see `registry.names()`.
    fast: skip the video decoder's in-loop deblocking filter (faster, slightly different
      pictures; see docs/extraction.md).
    progress: show a tqdm bar over the film's seconds (both passes).
    allow_missing_audio: a film without an audio stream gets its audio features computed on
      silence (`has_audio=False`) instead of raising `decode.NoAudioError`.

  Returns:
    FilmFeatures with one (rows, *shape) array per extractor.

  Raises:
    DataError: unreadable, corrupt, truncated, zero-length or video-less file (names the file);
    decode.NoAudioError: audio features requested, no audio stream, allow_missing_audio False.
  """
  # Feature maths is many small matrix products: multi-threaded BLAS only steals the cores the
  # video decoder's threads use (measured 80x slower small matmuls on a loaded 2-core machine).
  with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
    return _extract_film(os.fspath(path), extractors, fast, progress, allow_missing_audio)


def _extract_film(path: str, extractors, fast: bool, progress: bool,
                  allow_missing_audio: bool) -> FilmFeatures:
  info = decode.probe(path)
  num_seconds = info.num_seconds
  exs = create_extractors(extractors)
  audio_exs = [e for e in exs if e.modality == "audio"]
  video_exs = [e for e in exs if e.modality == "video"]
  if audio_exs and not info.has_audio and not allow_missing_audio:
    raise decode.NoAudioError(
        f"{path}: no audio stream but audio features {[e.name for e in audio_exs]} were asked "
        "for; extract video features only, or pass allow_missing_audio=True (silence)")
  rows = {e.name: _Rows(e, num_seconds, path) for e in exs}
  for e in exs:
    e.begin(num_seconds)

  bar = None
  if progress:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    passes = bool(audio_exs) + bool(video_exs)
    bar = tqdm(total=num_seconds * passes, unit="s", desc=os.path.basename(path))

  try:
    _run_passes(path, info, audio_exs, video_exs, rows, fast, bar)
  finally:
    if bar is not None:
      bar.close()
  streams = {name: r.done() for name, r in rows.items()}
  return FilmFeatures(streams=streams, num_seconds=num_seconds, duration_s=info.duration_s,
                      manifest=manifest_lib.build(exs, fast=fast),
                      has_audio=info.has_audio, path=path)


def _run_passes(path, info, audio_exs, video_exs, rows, fast, bar) -> None:
  """The audio pass runs in a thread beside the video pass: FFmpeg and NumPy release the GIL, so
  the audio work fills the gaps the video decoder's threads leave on the cores."""
  if not (audio_exs and video_exs):
    if audio_exs:
      _audio_pass(path, info, audio_exs, rows, bar)
    if video_exs:
      _video_pass(path, info, video_exs, rows, fast, bar)
    return
  stop = threading.Event()  # set by the first pass that fails, so the other one stops early
  with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audio_pass") as pool:
    audio_done = pool.submit(_audio_pass, path, info, audio_exs, rows, bar, stop)
    try:
      _video_pass(path, info, video_exs, rows, fast, bar, stop)
    except BaseException:
      stop.set()
      raise
    finally:
      error = audio_done.exception()  # waits for the audio pass in every case
    if error is not None:
      raise error


def _audio_pass(path: str, info: decode.MediaInfo, audio_exs, rows, bar,
                stop: threading.Event | None = None) -> None:
  try:
    _audio_seconds(path, info, audio_exs, rows, bar, stop)
  except BaseException:
    if stop is not None:
      stop.set()
    raise


def _audio_seconds(path, info, audio_exs, rows, bar, stop) -> None:
  num_seconds = info.num_seconds
  if info.has_audio:
    blocks = decode.iter_audio_seconds(path, num_seconds, origin_s=info.origin_s)
  else:
    blocks = (np.zeros(decode.SAMPLE_RATE, np.float32) for _ in range(num_seconds))
  for s, x_S in enumerate(blocks):
    if stop is not None and stop.is_set():
      return  # the video pass failed; its error is the one raised
    for e in audio_exs:
      rows[e.name].add(e.audio_rows(s, x_S))
    if bar is not None:
      bar.update(1)
  for e in audio_exs:
    rows[e.name].add(e.finish())


def _video_pass(path: str, info: decode.MediaInfo, video_exs, rows, fast: bool, bar,
                stop: threading.Event | None = None) -> None:
  num_seconds = info.num_seconds
  current = 0  # the second being filled
  last_t = None

  def close_seconds(upto: int) -> None:
    nonlocal current
    while current < upto:
      for e in video_exs:
        rows[e.name].add(e.end_second(current))
      if bar is not None:
        bar.update(1)
      current += 1

  # Each frame goes to the extractors before the seconds before it are closed, so end_second(s)
  # always comes after the first frame past second s (the look-ahead motion pairs need); the
  # first frame at or after T is fed too (f.second == T), then decoding stops.
  for f in decode.iter_video_frames(path, fast=fast, origin_s=info.origin_s,
                                    until_s=float(num_seconds)):
    if stop is not None and stop.is_set():
      return  # the audio pass failed; its error is the one raised
    for e in video_exs:
      e.frame(f)
    close_seconds(min(f.second, num_seconds))
    last_t = f.t
  if last_t is None:
    raise DataError(f"{path}: no video frame could be decoded; the file is corrupt or "
                    "truncated: re-export or remove it")
  if last_t < num_seconds - decode.TRUNCATION_TOLERANCE_S - 1e-6:
    raise DataError(f"{path}: video is truncated or damaged: frames stop at {last_t:.2f} s of "
                    f"{info.duration_s:.2f} s declared; re-export or remove the file")
  close_seconds(num_seconds)
  for e in video_exs:
    rows[e.name].add(e.finish())
