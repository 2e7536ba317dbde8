"""Small media files written with PyAV for the feature tests (no fixtures on disk)."""

import fractions

import av
import numpy as np


def write_video(path, frames_NxHxWx3, times_s, *, codec="mjpeg", audio=None, audio_rate=16000,
                audio_layout="mono"):
  """Writes uint8 RGB frames shown at `times_s` (variable frame rate allowed), optional audio
  (float32 (channels, samples)), into an mkv file."""
  with av.open(str(path), "w", format="matroska") as out:
    v = out.add_stream(codec, rate=25)
    v.width, v.height = frames_NxHxWx3.shape[2], frames_NxHxWx3.shape[1]
    v.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    v.time_base = fractions.Fraction(1, 1000)
    v.codec_context.time_base = fractions.Fraction(1, 1000)
    if codec == "mjpeg":
      v.codec_context.qmin = v.codec_context.qmax = 2
    a = None
    if audio is not None:
      a = out.add_stream("pcm_s16le", rate=audio_rate, layout=audio_layout)
    for img, t in zip(frames_NxHxWx3, times_s):
      f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
      f.pts = int(round(t * 1000))
      f.time_base = fractions.Fraction(1, 1000)
      for p in v.encode(f):
        out.mux(p)
    for p in v.encode():
      out.mux(p)
    if a is not None:
      write_audio_stream(out, a, audio, audio_rate, audio_layout)


def write_audio_stream(out, stream, audio_CxS, rate, layout):
  x = np.clip(audio_CxS, -1, 1)
  block = 1024
  for i in range(0, x.shape[1], block):
    chunk = (x[:, i:i + block] * 32767).astype(np.int16)
    f = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk.T.reshape(1, -1)), format="s16",
                                   layout=layout)
    f.sample_rate = rate
    f.pts = i
    f.time_base = fractions.Fraction(1, rate)
    for p in stream.encode(f):
      out.mux(p)
  for p in stream.encode():
    out.mux(p)


def write_audio(path, audio_CxS, rate, layout):
  """Audio-only wav file."""
  with av.open(str(path), "w", format="wav") as out:
    s = out.add_stream("pcm_s16le", rate=rate, layout=layout)
    write_audio_stream(out, s, audio_CxS, rate, layout)


def solid_frames(levels, h=72, w=128):
  """One solid grey frame per level (uint8 (N, h, w, 3))."""
  return np.stack([np.full((h, w, 3), int(lv), np.uint8) for lv in levels])
