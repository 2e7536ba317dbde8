"""Streaming media decoding with PyAV (FFmpeg inside the wheel; no system ffmpeg).

Time base. Every timestamp is in seconds from the film's origin, the start time of its first video
stream (0 when the container gives none). Second `s` of the film is the interval [s, s + 1) on that
clock, for both modalities, so audio and pictures are aligned by presentation timestamp, never by
frame or sample count (variable-frame-rate films decode correctly).

Length. A film has `T = floor(video duration)` whole seconds (a 5.28 s film has 5); the partial last
second is dropped. The video duration is the video stream's declared duration, else its Matroska
DURATION tag, else the end of its last packet found by demuxing (no decoding), else the container's. Audio is padded with silence or cut to
exactly T seconds.

Audio. Decoded, down-mixed to mono by the plain mean of all channels (LFE included), as the
published VGGish does (`np.mean(data, axis=1)` in its `vggish_input.py`), then resampled to 16 kHz
float32 by libswresample (`av.AudioResampler(format='flt', layout='mono', rate=16000)`; VGGish
resamples with resampy, whose filter differs from libswresample's near the Nyquist frequency: see
docs/features.md). Integer samples are scaled to [-1, 1) (s16 / 32768). Any channel layout works; a
test checks the mix on tones and on the real 5.1 fixture. Samples come out in one-second blocks, so
memory does not grow with the film.

Damaged audio. Packets are decoded one by one; a packet the decoder refuses becomes silence for its
span (its declared duration, or the gap to the next frame's timestamp when they disagree by more
than 2 ms, as when a damaged sync word merges packets), so the following audio stays at its
timestamps; a `DamagedAudioWarning` gives the count.
When more than MAX_DAMAGED_AUDIO_SHARE of the packets are refused, the file raises DataError.

Video. `iter_video_frames` yields every decoded frame with its timestamp, lazily convertible to
small RGB / luma arrays (`Frame`); `TimestampSampler` picks frames at target times (e.g. 1 fps, with
the next frame for motion). `fast=True` sets the decoder option `skip_loop_filter=all` (H.264/HEVC
skip the in-loop deblocking filter; pictures get slightly blockier; about 1.3x faster decoding of
720p H.264 here; the measured effect on features is in docs/extraction.md). `skip_frame` is not used:
it drops whole frames that motion and cut detection need.

Errors. Unreadable, corrupt, truncated or zero-length files and files without a video stream raise
`emojax.errors.DataError` naming the file; a film without an audio stream raises `NoAudioError` (a
`DataError`), which callers can catch to skip the film or to extract with silence instead.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import av
import numpy as np

from emojax.errors import DataError

SAMPLE_RATE = 16000
# Tolerance when comparing decoded lengths with declared ones (truncation detection), in seconds.
TRUNCATION_TOLERANCE_S = 1.0
# Largest share of an audio stream's packets that may fail to decode (each becomes silence, with a
# warning); more raises DataError (the soundtrack is damaged, not merely a few bad packets).
MAX_DAMAGED_AUDIO_SHARE = 0.05


class NoAudioError(DataError):
  """The file has no audio stream (the caller decides: skip it, or extract with silence)."""


class DamagedAudioWarning(UserWarning):
  """Some audio packets could not be decoded and were replaced by silence."""


@dataclasses.dataclass(frozen=True)
class MediaInfo:
  """What `probe` learns from a file's headers (no decoding)."""
  path: str
  duration_s: float  # video duration from the origin, seconds
  num_seconds: int  # T = floor(duration_s)
  origin_s: float  # start time of the video stream on the container clock
  width: int
  height: int
  frame_rate: float  # average frame rate (nominal; frames are still placed by timestamp)
  video_codec: str
  has_audio: bool
  audio_layout: str  # e.g. '5.1'; '' without audio
  audio_rate: int  # source sample rate; 0 without audio
  audio_duration_s: float  # declared audio duration; nan when unknown or without audio


def _open(path: str | os.PathLike) -> av.container.InputContainer:
  path = os.fspath(path)
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found")
  if os.path.getsize(path) == 0:
    raise DataError(f"{path}: file is empty (zero bytes); re-export or remove it")
  try:
    return av.open(path, mode="r")
  except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
    raise DataError(f"{path}: cannot be read as a media file ({e}); the file is corrupt, "
                    "truncated or not a video: re-export or remove it") from e


def _stream_seconds(value: int | None, time_base) -> float | None:
  if value is None or time_base is None:
    return None
  return float(value * time_base)


def _parse_hms(text: str) -> float | None:
  """'HH:MM:SS.fffffffff' -> seconds (None if not that form)."""
  try:
    h, m, sec = text.strip().split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)
  except ValueError:
    return None


def _demux_end(path: str, stream_index: int) -> float | None:
  """End time (s, container clock) of a stream's last packet, by demuxing without decoding."""
  with _open(path) as container:
    stream = container.streams[stream_index]
    end = None
    try:
      for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
          continue
        t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        end = t if end is None else max(end, t)
    except av.error.FFmpegError:
      pass  # a damaged tail: keep what was demuxed
  return end


def probe(path: str | os.PathLike) -> MediaInfo:
  """Reads the stream headers; raises DataError for unreadable files, no video, or < 1 s of video."""
  path = os.fspath(path)
  with _open(path) as container:
    if not container.streams.video:
      raise DataError(f"{path}: no video stream; emojax needs a video file (audio-only files are "
                      "not supported)")
    video = container.streams.video[0]
    origin = _stream_seconds(video.start_time, video.time_base) or 0.0
    duration = _stream_seconds(video.duration, video.time_base)
    if not duration:  # Matroska keeps per-stream durations in a tag
      duration = _parse_hms(video.metadata.get("DURATION", ""))
    container_duration = None
    if container.duration:
      start = (container.start_time or 0) / 1e6
      container_duration = container.duration / 1e6 - (origin - start)
    index = video.index
    rate = float(video.average_rate or video.guessed_rate or 0.0)
    width, height = video.codec_context.width, video.codec_context.height
    codec = video.codec_context.name
    audio = container.streams.audio[0] if container.streams.audio else None
    if audio is not None:
      layout = audio.layout.name
      audio_rate = audio.codec_context.sample_rate or audio.rate or 0
      audio_duration = _stream_seconds(audio.duration, audio.time_base)
    else:
      layout, audio_rate, audio_duration = "", 0, None
  if not duration:  # read the video packets' timestamps (no decoding); the container's
    end = _demux_end(path, index)  # duration may be the audio's, hence last
    duration = (end - origin) if end is not None else (container_duration or 0.0)
  if not duration or duration <= 0 or width <= 0 or height <= 0:
    raise DataError(f"{path}: the video stream is empty (zero length or no decodable picture); "
                    "re-export or remove the file")
  num_seconds = int(math.floor(duration + 1e-6))
  if num_seconds < 1:
    raise DataError(f"{path}: the video lasts {duration:.3f} s; at least 1 s is needed")
  return MediaInfo(path=path, duration_s=duration, num_seconds=num_seconds, origin_s=origin,
                   width=width, height=height, frame_rate=rate, video_codec=codec,
                   has_audio=audio is not None, audio_layout=layout, audio_rate=int(audio_rate),
                   audio_duration_s=float("nan") if audio_duration is None else audio_duration)


def planar_samples(frame: av.AudioFrame) -> np.ndarray:
  """A decoded audio frame as float32 (channels, samples) in [-1, 1] (s16 scaled by 1/32768)."""
  x = frame.to_ndarray()
  channels = len(frame.layout.channels)
  if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
    x = x.reshape(-1, channels).T
  if np.issubdtype(x.dtype, np.floating):
    return x.astype(np.float32, copy=False)
  if x.dtype == np.uint8:  # u8 is offset binary
    return (x.astype(np.float32) - 128.0) / 128.0
  return x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))


def _consistent(frame: av.AudioFrame) -> bool:
  """Whether a decoded frame's buffers agree with its layout (a damaged packet can decode into a
  frame whose planes do not match its channel count; reading it would crash)."""
  channels = len(frame.layout.channels)
  planes = len(frame.planes)
  return (channels > 0 and frame.sample_rate > 0
          and planes == (channels if frame.format.is_planar else 1))


class _MeanDownmix:
  """Channel mean at the source rate (VGGish's down-mix), then libswresample to mono `rate`."""

  def __init__(self, rate: int):
    self.rate = rate
    self.source_rate: int | None = None
    self._resampler: av.AudioResampler | None = None
    self._pts = 0

  def push(self, frame: av.AudioFrame) -> list[np.ndarray]:
    if not frame.samples:
      return []
    x_CxN = planar_samples(frame)
    mono_N = x_CxN.mean(axis=0, dtype=np.float64).astype(np.float32)
    return self._mono(mono_N, frame.sample_rate)

  def silence(self, num_source_samples: int) -> list[np.ndarray]:
    if num_source_samples <= 0 or self.source_rate is None:
      return []
    return self._mono(np.zeros(num_source_samples, np.float32), self.source_rate)

  def _mono(self, x_N: np.ndarray, source_rate: int) -> list[np.ndarray]:
    out = []
    if source_rate != self.source_rate:  # first frame, or the rate changed mid-stream
      out = self.flush()
      self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
      self.source_rate, self._pts = source_rate, 0
    frame = av.AudioFrame.from_ndarray(x_N[None], format="flt", layout="mono")
    frame.sample_rate = source_rate
    frame.pts, frame.time_base = self._pts, fractions.Fraction(1, source_rate)
    self._pts += x_N.size
    out += [o.to_ndarray().reshape(-1) for o in self._resampler.resample(frame)]
    return out

  def flush(self) -> list[np.ndarray]:
    if self._resampler is None:
      return []
    out = [o.to_ndarray().reshape(-1) for o in self._resampler.resample(None)]
    self._resampler = None
    return out


def iter_audio_seconds(path: str | os.PathLike, num_seconds: int | None = None, *,
                       origin_s: float | None = None,
                       sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
  """Yields `num_seconds` mono float32 blocks of `sample_rate` samples, second 0 first.

  Samples before the origin are dropped; a late start or an early end is filled with zeros. Memory
  holds at most about two seconds of audio. Raises NoAudioError without an audio stream, DataError
  when the stream ends more than TRUNCATION_TOLERANCE_S before its declared duration or when more
  than MAX_DAMAGED_AUDIO_SHARE of its packets cannot be decoded; fewer bad packets become silence
  with a DamagedAudioWarning.
  """
  path = os.fspath(path)
  if num_seconds is None or origin_s is None:
    info = probe(path)
    num_seconds = info.num_seconds if num_seconds is None else num_seconds
    origin_s = info.origin_s if origin_s is None else origin_s
  total = num_seconds * sample_rate
  with _open(path) as container:
    if not container.streams.audio:
      raise NoAudioError(f"{path}: no audio stream; extract video features only, or pass "
                         "allow_missing_audio=True to use silence for the audio features")
    stream = container.streams.audio[0]
    declared = (_stream_seconds(stream.duration, stream.time_base)
                or _parse_hms(stream.metadata.get("DURATION", "")))
    mix = _MeanDownmix(sample_rate)
    buf: list[np.ndarray] = []
    buffered = 0  # samples in buf
    emitted = 0  # samples yielded so far
    skip = None  # samples still to drop before the origin (None until the first frame is seen)
    first_time: list[float | None] = []  # time of the first decoded frame (the audio's start)
    packets = {"total": 0, "bad": 0, "lost_s": 0.0}

    def chunks() -> Iterator[tuple[float | None, np.ndarray]]:
      # Refused packets become silence. Its length is the packets' declared durations (exact) when
      # the next decoded frame's timestamp agrees within 2 ms, else the gap to that timestamp (a
      # damaged sync word can merge packets, e.g. in AVI, whose durations then undercount).
      state = {"owed": 0, "bad_since_frame": False, "fed": 0, "last_samples": 0}

      def pay(frame_time: float | None) -> Iterator[tuple[float | None, np.ndarray]]:
        owed, rate = state["owed"], mix.source_rate
        if not state["bad_since_frame"] or not rate or not first_time:
          state["owed"], state["bad_since_frame"] = 0, False
          return
        if frame_time is not None and first_time[0] is not None:
          gap = int(round((frame_time - first_time[0]) * rate)) - state["fed"]
          if abs(gap - owed) > 0.002 * rate:
            owed = max(gap, 0)
        state["owed"], state["bad_since_frame"] = 0, False
        packets["lost_s"] += owed / rate
        state["fed"] += owed
        for out in mix.silence(owed):
          yield first_time[0], out

      def refused(samples: int) -> None:
        packets["bad"] += 1
        state["owed"] += samples
        state["bad_since_frame"] = True

      try:
        for packet in container.demux(stream):
          packets["total"] += bool(packet.size)
          try:
            frames = packet.decode()
          except av.error.FFmpegError:
            if not packet.size:
              continue  # flushing a decoder that already failed
            if packet.duration and packet.time_base is not None and mix.source_rate:
              refused(int(round(float(packet.duration * packet.time_base) * mix.source_rate)))
            else:
              refused(state["last_samples"])
            continue
          good = []
          for frame in frames:
            if _consistent(frame):
              good.append(frame)
            else:  # a damaged packet decoded into nonsense (e.g. 43 channels in 61 planes)
              refused(frame.samples if frame.sample_rate == mix.source_rate else 0)
          for frame in good:
            if not first_time:
              first_time.append(frame.time)
            yield from pay(frame.time if frame.sample_rate == mix.source_rate else None)
            state["last_samples"] = frame.samples
            state["fed"] += frame.samples
            for out in mix.push(frame):
              yield first_time[0], out
        yield from pay(None)  # refused packets at the very end
        for out in mix.flush():
          yield (first_time[0] if first_time else None), out
      except av.error.FFmpegError as e:
        raise DataError(f"{path}: audio stream is corrupt ({e}); re-export or remove the file") \
          from e

    def check_damage() -> None:
      bad, n = packets["bad"], packets["total"]
      if not bad:
        return
      if bad > MAX_DAMAGED_AUDIO_SHARE * n:
        raise DataError(
            f"{path}: audio stream is corrupt: {bad} of {n} packets ({bad / n:.1%}) cannot be "
            "decoded, more than the "
            f"{MAX_DAMAGED_AUDIO_SHARE:.0%} emojax replaces by silence "
            "(emojax.features.decode.MAX_DAMAGED_AUDIO_SHARE); the soundtrack is damaged: "
            "re-encode it or remove the file")
      warnings.warn(f"{path}: {bad} of {n} audio packets could not be decoded; "
                    f"{packets['lost_s']:.2f} s of silence stand in for them",
                    DamagedAudioWarning, stacklevel=3)

    decoded = 0
    for start_s, x in chunks():
      decoded += x.size
      if skip is None:  # the first samples fix where the audio starts relative to the origin
        start = 0 if start_s is None else int(round((start_s - origin_s) * sample_rate))
        start = min(start, total)
        skip = max(0, -start)
        if start > 0:  # audio starts late: silence first
          buf.append(np.zeros(start, np.float32))
          buffered += start
      if skip:
        dropped = min(skip, x.size)
        x, skip = x[dropped:], skip - dropped
      buf.append(x)
      buffered += x.size
      while buffered >= sample_rate and emitted < total:
        block = np.concatenate(buf)
        yield block[:sample_rate]
        emitted += sample_rate
        rest = block[sample_rate:]
        buf, buffered = [rest], rest.size
      if emitted >= total:
        check_damage()
        return
  check_damage()
  if declared is not None and decoded / sample_rate < declared - TRUNCATION_TOLERANCE_S:
    raise DataError(f"{path}: audio is truncated: {decoded / sample_rate:.2f} s decoded of "
                    f"{declared:.2f} s declared; re-export or remove the file")
  tail = np.concatenate(buf) if buf else np.zeros(0, np.float32)
  while emitted < total:
    block = np.zeros(sample_rate, np.float32)
    n = min(sample_rate, tail.size)
    block[:n] = tail[:n]
    tail = tail[n:]
    yield block
    emitted += sample_rate


def decode_audio(path: str | os.PathLike, num_seconds: int | None = None,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
  """The whole soundtrack, mono float32 (num_seconds * sample_rate,): for tests and short files."""
  blocks = list(iter_audio_seconds(path, num_seconds, sample_rate=sample_rate))
  return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


class Frame:
  """One decoded picture with its timestamp; conversions are computed on demand and cached."""

  __slots__ = ("t", "index", "av_frame", "_cache")

  def __init__(self, t: float, index: int, av_frame: av.VideoFrame):
    self.t = t  # seconds from the origin
    self.index = index  # decode-order index in the film (0-based)
    self.av_frame = av_frame
    self._cache: dict[Any, np.ndarray] = {}

  @property
  def second(self) -> int:
    return int(math.floor(self.t))

  def rgb(self, width: int, height: int, interpolation: str = "BILINEAR") -> np.ndarray:
    """uint8 (height, width, 3), scaled by swscale (bilinear by default)."""
    key = ("rgb", width, height, interpolation)
    if key not in self._cache:
      self._cache[key] = self.av_frame.reformat(
          width=width, height=height, format="rgb24", interpolation=interpolation,
          threads=1).to_ndarray()
    return self._cache[key]

  def luma_thumb(self, step: int) -> np.ndarray:
    """uint8 luma plane subsampled every `step` pixels (no filtering): a near-free thumbnail."""
    key = ("luma", step)
    if key not in self._cache:
      f = self.av_frame
      if f.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                           "nv12", "gray"):
        plane = f.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        self._cache[key] = y[::step, :plane.width:step].copy()
      else:
        g = f.reformat(format="gray").to_ndarray()
        self._cache[key] = g[::step, ::step].copy()
    return self._cache[key]


def iter_video_frames(path: str | os.PathLike, *, fast: bool = False,
                      origin_s: float | None = None, until_s: float | None = None,
                      threads: int = 0) -> Iterator[Frame]:
  """Yields every decoded frame in presentation order with its time from the origin.

  Frames before the origin are skipped; decoding stops after the first frame at or after
  `until_s`, which is still yielded (one frame of look-ahead for motion pairs).
  `fast=True` skips the in-loop deblocking filter (see the module docstring). `threads=0` lets
  FFmpeg pick (frame + slice threading over all cores).
  """
  path = os.fspath(path)
  if origin_s is None:
    origin_s = probe(path).origin_s
  with _open(path) as container:
    if not container.streams.video:
      raise DataError(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    if fast:
      stream.codec_context.options = {"skip_loop_filter": "all"}
    rate = float(stream.average_rate or stream.guessed_rate or 25.0)
    index = 0
    last_t = None
    try:
      for av_frame in container.decode(stream):
        t = av_frame.time
        if t is None:  # no timestamp: continue the clock at the nominal rate
          t = (last_t + 1.0 / rate) if last_t is not None else origin_s
        last_t = t
        t -= origin_s
        if t < -1e-6:
          continue
        yield Frame(max(t, 0.0), index, av_frame)
        index += 1
        if until_s is not None and t >= until_s:
          return
    except av.error.FFmpegError as e:
      raise DataError(f"{path}: video stream is corrupt ({e}); re-export or remove the file") from e


class TimestampSampler:
  """Picks, for each target time, the frame on screen at that time (last frame with t <= target).

  Feed frames in presentation order with `push`; it returns the (target index, frame) pairs
  decided by that frame. With `pairs=True` each pick is returned with the frame that follows it
  (for motion), i.e. decided one frame later. `flush` decides the remaining targets with the last
  frame(s) (the end of the film).
  """

  def __init__(self, targets: np.ndarray, pairs: bool = False):
    self.targets = np.asarray(targets, np.float64)
    self.pairs = pairs
    self._next = 0  # next undecided target
    self._prev: Frame | None = None
    self._pending: list[tuple[int, Frame]] = []  # picks waiting for their next frame

  def push(self, frame: Frame) -> list[tuple[int, Frame] | tuple[int, Frame, Frame]]:
    out: list = []
    if self.pairs:
      out.extend((i, f, frame) for i, f in self._pending)
      self._pending = []
    picks = []
    while self._next < len(self.targets) and self.targets[self._next] < frame.t - 1e-9:
      # The previous frame was on screen at the target time (or the first frame when none).
      picks.append((self._next, self._prev if self._prev is not None else frame))
      self._next += 1
    if self.pairs:
      for i, f in picks:
        if f is frame:
          self._pending.append((i, f))
        else:
          out.append((i, f, frame))
    else:
      out.extend(picks)
    self._prev = frame
    return out

  def flush(self) -> list:
    out: list = []
    last = self._prev
    if self.pairs:
      out.extend((i, f, f) for i, f in self._pending)
      self._pending = []
    while last is not None and self._next < len(self.targets):
      out.append((self._next, last, last) if self.pairs else (self._next, last))
      self._next += 1
    return out


def sample_frames(path: str | os.PathLike, fps: float = 1.0, *, pairs: bool = False,
                  size: tuple[int, int] | None = None, fast: bool = False
                  ) -> Iterator[tuple[float, np.ndarray] | tuple[float, np.ndarray, np.ndarray]]:
  """Yields (target time, RGB uint8 frame[, next frame]) at `fps` per second over the T seconds.

  Target times are s + (k + 0.5) / fps (the middle of each sampling interval); `size` is
  (width, height), default the native size.
  """
  info = probe(path)
  width, height = size or (info.width, info.height)
  n = int(round(info.num_seconds * fps))
  targets = (np.arange(n) + 0.5) / fps
  sampler = TimestampSampler(targets, pairs=pairs)

  def convert(picks):
    for pick in picks:
      i, frames = pick[0], pick[1:]
      yield (float(targets[i]), *(f.rgb(width, height) for f in frames))

  for frame in iter_video_frames(path, fast=fast, origin_s=info.origin_s,
                                 until_s=float(info.num_seconds)):
    yield from convert(sampler.push(frame))
  yield from convert(sampler.flush())
