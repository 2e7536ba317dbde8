"""Procedurally rendered short films whose picture and soundtrack follow latent emotion curves.

A film is driven by two latent curves, valence and arousal, one value per second in [-1, 1]
(smooth segments joined by ramps or jumps). They are the film's labels. What follows them:

picture
  - brightness (mean luma) and colour warmth (blue -> orange) follow valence;
  - drawn faces: mouth curvature (frown -> smile) and eyebrow slant (sad -> relaxed) follow valence,
    eyebrow height and eye opening follow arousal;
  - speed of the moving shapes, camera shake and the rate of cuts (new shots) follow arousal.
sound (synthesised in numpy, a chord progression with bass, arpeggio, kick and hi-hat)
  - loudness (RMS), tempo and timbre brightness (harmonic roll-off, hi-hat level) follow arousal;
  - mode follows valence: major triads for valence >= 0, minor triads below.

Written as a real mp4 with PyAV: H.264 (libx264, yuv420p) video and AAC audio (mono, stereo or 5.1).
Per-second value s describes the interval [s, s + 1); within a film, curves are interpolated
linearly between second centres.

Also here: writers of deliberately bad files (corrupt, truncated, no audio, zero length) for tests.
"""

import fractions
import os
import pathlib

import av
import numpy as np
from PIL import Image
from PIL import ImageDraw

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
_A3_HZ = 220.0
# Chord roots of the I-IV-V-I progression, semitones above the tonic; one chord per 4 beats.
_PROGRESSION = (0, 5, 7, 0)
_MAJOR_TRIAD = (0, 4, 7)
_MINOR_TRIAD = (0, 3, 7)
_WARM_RGB = np.array([1.0, 0.55, 0.22], np.float32)
_COOL_RGB = np.array([0.22, 0.45, 1.0], np.float32)
_SHAKE_MARGIN = 10  # pixels of canvas around the picture that camera shake may reveal


def latent_curves(rng: np.random.Generator, num_seconds: int) -> tuple[np.ndarray, np.ndarray]:
  """Returns (valence_T, arousal_T): smooth random segments joined by ramps or jumps, in [-1, 1]."""
  return _segment_curve(rng, num_seconds), _segment_curve(rng, num_seconds)


def _segment_curve(rng: np.random.Generator, num_seconds: int) -> np.ndarray:
  curve_T = np.empty(num_seconds, np.float64)
  start, level = 0, rng.uniform(-0.85, 0.85)
  while start < num_seconds:
    length = int(rng.integers(4, 13))
    new_level = rng.uniform(-0.85, 0.85)
    seg_T = np.full(length, new_level)
    if start > 0 and rng.random() > 0.35:  # a ramp from the previous level, else a jump
      ramp = min(int(rng.integers(2, 5)), length)
      w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(1, ramp + 1) / (ramp + 1)))
      seg_T[:ramp] = level + (new_level - level) * w
    end = min(start + length, num_seconds)
    curve_T[start:end] = seg_T[: end - start]
    start, level = end, new_level
  noise_T = rng.normal(0.0, 1.0, num_seconds + 4)
  wobble_T = np.convolve(noise_T, np.ones(5) / 5, mode="valid")[:num_seconds]
  return np.clip(curve_T + 0.06 * wobble_T, -1.0, 1.0).astype(np.float32)


def _at_times(curve_T: np.ndarray, times: np.ndarray) -> np.ndarray:
  """The per-second curve read at arbitrary times (seconds), linear between second centres."""
  return np.interp(times, np.arange(len(curve_T)) + 0.5, curve_T)


def cut_rate(arousal: np.ndarray) -> np.ndarray:
  """Expected cuts per second at the given arousal (0.05 calm ... 0.6 intense)."""
  return 0.05 + 0.55 * ((np.asarray(arousal) + 1.0) / 2.0) ** 2


def shape_speed(arousal: np.ndarray) -> np.ndarray:
  """Speed of the moving shapes in pixels per second at the given arousal."""
  return 15.0 + 135.0 * (np.asarray(arousal) + 1.0) / 2.0


def shake_amplitude(arousal: np.ndarray) -> np.ndarray:
  """Standard deviation of the camera shake in pixels at the given arousal."""
  return 0.2 + 6.0 * ((np.asarray(arousal) + 1.0) / 2.0) ** 2


def tempo_bpm(arousal: np.ndarray) -> np.ndarray:
  """Beats per minute at the given arousal (70 ... 160)."""
  return 70.0 + 90.0 * (np.asarray(arousal) + 1.0) / 2.0


def loudness_gain(arousal: np.ndarray) -> np.ndarray:
  """Target RMS of the mix at the given arousal."""
  return 0.03 + 0.22 * ((np.asarray(arousal) + 1.0) / 2.0) ** 1.5


# ----------------------------------------------------------------------------------------------
# Picture.


def _new_shot(rng: np.random.Generator, width: int, height: int) -> dict:
  """Random layout of one shot: shapes, faces, background gradient."""
  num_shapes = int(rng.integers(3, 7))
  angles = rng.uniform(0, 2 * np.pi, num_shapes)
  num_faces = int(rng.integers(1, 3))
  return {
      "gradient": rng.uniform(0.35, 0.7),  # relative darkening from top to bottom
      "shape_xy": rng.uniform(0, 1, (num_shapes, 2)) * [width, height],
      "shape_dir": np.stack([np.cos(angles), np.sin(angles)], -1),
      "shape_r": rng.uniform(0.05, 0.12, num_shapes) * min(width, height),
      "shape_round": rng.random(num_shapes) < 0.6,
      "shape_tint": rng.uniform(0.6, 1.4, (num_shapes, 3)),
      "face_xy": np.stack([rng.uniform(0.25, 0.75, num_faces) * width,
                           rng.uniform(0.35, 0.65, num_faces) * height], -1),
      "face_r": rng.uniform(0.16, 0.24, num_faces) * min(width, height),
      "face_phase": rng.uniform(0, 2 * np.pi, num_faces),
  }


def _draw_face(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, valence: float,
               arousal: float, brightness: float) -> None:
  """A face: smile vs frown and brow slant from valence; brow height and eye size from arousal."""
  skin = tuple(int(c * brightness * 255) for c in (1.0, 0.82, 0.66))
  dark = (20, 16, 14)
  draw.ellipse([cx - r, cy - r * 1.1, cx + r, cy + r * 1.1], fill=skin, outline=dark, width=2)
  eye_r = r * (0.07 + 0.05 * (arousal + 1) / 2)
  brow_lift = r * (0.1 + 0.12 * (arousal + 1) / 2)
  for side in (-1, 1):
    ex, ey = cx + side * 0.38 * r, cy - 0.25 * r
    draw.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=dark)
    # Inner brow end raised for negative valence (sad), level for positive.
    inner = (ex - side * 0.2 * r, ey - brow_lift - max(-valence, 0.0) * 0.18 * r)
    outer = (ex + side * 0.22 * r, ey - brow_lift + max(-valence, 0.0) * 0.06 * r)
    draw.line([inner, outer], fill=dark, width=max(2, int(r / 12)))
  half_w = 0.42 * r
  xs = np.linspace(-half_w, half_w, 13)
  curvature = 0.3 * r * valence  # > 0: centre below the corners, a smile
  ys = cy + 0.45 * r + curvature * (1.0 - (xs / half_w) ** 2) - curvature / 2
  draw.line(list(zip((cx + xs).tolist(), ys.tolist())), fill=dark, width=max(2, int(r / 10)))


def _render_frames(rng: np.random.Generator, valence_T: np.ndarray, arousal_T: np.ndarray,
                   fps: int, width: int, height: int):
  """Yields (frame_index, rgb uint8 HxWx3) and records the cut times in the returned list."""
  num_frames = len(valence_T) * fps
  times_N = (np.arange(num_frames) + 0.5) / fps
  v_N = _at_times(valence_T, times_N)
  a_N = _at_times(arousal_T, times_N)
  cut_N = rng.random(num_frames) < cut_rate(a_N) / fps
  m = _SHAKE_MARGIN
  canvas_h, canvas_w = height + 2 * m, width + 2 * m
  ys_H = np.linspace(0.0, 1.0, canvas_h, dtype=np.float32)[:, None]
  xx_W = np.arange(canvas_w, dtype=np.float32)[None, :]
  yy_H = np.arange(canvas_h, dtype=np.float32)[:, None]
  shake_N2 = rng.normal(0.0, 1.0, (num_frames, 2)) * shake_amplitude(a_N)[:, None]
  cut_times = [0.0]
  shot = _new_shot(rng, width, height)
  last_cut = 0
  for i in range(num_frames):
    if i > 0 and cut_N[i] and i - last_cut >= fps // 2:
      shot, last_cut = _new_shot(rng, width, height), i
      cut_times.append(i / fps)
    v, a = float(v_N[i]), float(a_N[i])
    brightness = 0.18 + 0.64 * (v + 1) / 2
    base_rgb = _COOL_RGB + (_WARM_RGB - _COOL_RGB) * (v + 1) / 2
    shade_H = 1.0 + shot["gradient"] * (0.5 - ys_H)  # mean 1 over the height
    canvas_HxWx3 = np.broadcast_to((shade_H * brightness)[:, :, None] * base_rgb,
                                   (canvas_h, canvas_w, 3)).copy()
    # Shapes move with an arousal-dependent speed and wrap around the picture.
    shot["shape_xy"] = (shot["shape_xy"] + shot["shape_dir"] * shape_speed(a) / fps) % [width, height]
    for (sx, sy), r, rnd, tint in zip(shot["shape_xy"], shot["shape_r"], shot["shape_round"],
                                      shot["shape_tint"]):
      x0, x1 = int(max(sx + m - r, 0)), int(min(sx + m + r + 1, canvas_w))
      y0, y1 = int(max(sy + m - r, 0)), int(min(sy + m + r + 1, canvas_h))
      if x1 <= x0 or y1 <= y0:
        continue
      if rnd:
        mask = (xx_W[:, x0:x1] - sx - m) ** 2 + (yy_H[y0:y1] - sy - m) ** 2 <= r * r
      else:
        mask = np.ones((y1 - y0, x1 - x0), bool)
      colour = np.clip(base_rgb * tint * brightness * 1.15, 0.0, 1.0)
      canvas_HxWx3[y0:y1, x0:x1][mask] = colour
    image = Image.fromarray((np.clip(canvas_HxWx3, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    bob = 0.05 * height * (a + 1) / 2
    for (fx, fy), r, phase in zip(shot["face_xy"], shot["face_r"], shot["face_phase"]):
      wobble = bob * np.sin(phase + 2 * np.pi * (0.5 + a) * i / fps)
      _draw_face(draw, fx + m, fy + m + wobble, r, v, a, brightness)
    dx, dy = np.clip(np.round(shake_N2[i]), -m, m).astype(int)
    frame_HxWx3 = np.asarray(image)[m + dy:m + dy + height, m + dx:m + dx + width]
    yield i, np.ascontiguousarray(frame_HxWx3), cut_times


# ----------------------------------------------------------------------------------------------
# Sound.


def _note(freq_hz: float, num: int, sample_rate: int, rolloff: float, decay_s: float) -> np.ndarray:
  """A harmonic tone with a 5 ms attack and exponential decay; harmonics fall as k^-rolloff."""
  t_n = np.arange(num) / sample_rate
  ks = np.arange(1, 13)
  ks = ks[ks * freq_hz < 0.45 * sample_rate]
  amps = ks.astype(np.float64) ** -rolloff
  tone_n = (amps[:, None] * np.sin(2 * np.pi * freq_hz * ks[:, None] * t_n)).sum(0) / amps.sum()
  env_n = np.minimum(t_n / 0.005, 1.0) * np.exp(-t_n / decay_s)
  return tone_n * env_n


def synthesize_music(rng: np.random.Generator, valence_T: np.ndarray, arousal_T: np.ndarray,
                     sample_rate: int, channels: int) -> np.ndarray:
  """Music whose tempo, loudness, timbre (arousal) and mode (valence) follow the curves.

  Returns float32 (channels, num_samples), num_samples = seconds * sample_rate, in [-1, 1].
  """
  num = len(valence_T) * sample_rate
  t_n = (np.arange(num) + 0.5) / sample_rate
  a_n = _at_times(arousal_T, t_n)
  beat_phase_n = np.cumsum(tempo_bpm(a_n) / 60.0) / sample_rate
  onsets = np.flatnonzero(np.diff(np.floor(beat_phase_n), prepend=-1.0) > 0)
  stems = {k: np.zeros(num) for k in ("bass", "chord", "arp", "drums")}
  beat_len = np.diff(onsets, append=num)
  for b, (n0, length) in enumerate(zip(onsets, beat_len)):
    sec = min(int(n0 // sample_rate), len(valence_T) - 1)
    v, a = float(valence_T[sec]), float(arousal_T[sec])
    triad = _MAJOR_TRIAD if v >= 0 else _MINOR_TRIAD
    root = _PROGRESSION[(b // 4) % len(_PROGRESSION)]
    rolloff = 3.0 - 2.4 * (a + 1) / 2  # brighter timbre (slower roll-off) when aroused
    beat_s = length / sample_rate
    span = min(int(1.6 * length), num - n0)
    # Bass on the chord root, one octave below the tonic.
    f_bass = _A3_HZ / 2 * 2 ** (root / 12)
    stems["bass"][n0:n0 + span] += _note(f_bass, span, sample_rate, 2.5, 0.5 * beat_s)
    if b % 2 == 0:  # sustained chord every second beat
      span2 = min(int(2.2 * length), num - n0)
      for iv in triad:
        f = _A3_HZ * 2 ** ((root + iv) / 12)
        stems["chord"][n0:n0 + span2] += _note(f, span2, sample_rate, rolloff, 0.8 * beat_s) / 3
    # Arpeggio: two chord tones per beat, an octave up.
    half = length // 2
    for j in range(2):
      m0 = n0 + j * half
      span3 = min(int(1.2 * half), num - m0)
      if span3 <= 0:
        continue
      iv = triad[(2 * b + j + int(rng.integers(0, 2))) % 3]
      f = 2 * _A3_HZ * 2 ** ((root + iv) / 12)
      stems["arp"][m0:m0 + span3] += _note(f, span3, sample_rate, rolloff, 0.35 * beat_s)
    # Kick on every beat (pitch sweep), hi-hat on the off-beat louder with arousal.
    nk = min(int(0.09 * sample_rate), num - n0)
    tk = np.arange(nk) / sample_rate
    stems["drums"][n0:n0 + nk] += (np.sin(2 * np.pi * (55 * tk + 400 * 0.02 * (1 - np.exp(-tk / 0.02))))
                                   * np.exp(-tk / 0.03))
    nh = min(int(0.03 * sample_rate), num - n0 - half)
    if nh > 0:
      noise = np.diff(rng.normal(0, 1, nh + 1))
      stems["drums"][n0 + half:n0 + half + nh] += 0.8 * ((a + 1) / 2) ** 2 * noise * np.exp(
          -np.arange(nh) / (0.008 * sample_rate))
  mix_n = stems["bass"] * 0.8 + stems["chord"] + stems["arp"] * 0.7 + stems["drums"] * 0.6
  # Level: divide by the local RMS (0.5 s window), multiply by the arousal gain.
  win = max(sample_rate // 2, 1)
  csum = np.concatenate([[0.0], np.cumsum(mix_n ** 2)])
  lo = np.clip(np.arange(num) - win // 2, 0, num)
  hi = np.clip(np.arange(num) + win // 2, 0, num)
  local_rms_n = np.sqrt((csum[hi] - csum[lo]) / np.maximum(hi - lo, 1))
  gain_n = loudness_gain(a_n) / np.maximum(local_rms_n, 1e-3)
  stems = {k: s * gain_n for k, s in stems.items()}
  mix_n = mix_n * gain_n
  if channels == 1:
    out = mix_n[None]
  elif channels == 2:
    left = stems["bass"] * 0.8 + stems["chord"] + stems["arp"] * 0.9 + stems["drums"] * 0.45
    right = stems["bass"] * 0.8 + stems["chord"] + stems["arp"] * 0.5 + stems["drums"] * 0.75
    out = np.stack([left, right])
  elif channels == 6:  # FL FR FC LFE BL BR
    delay = int(0.03 * sample_rate)
    echo = np.concatenate([np.zeros(delay), mix_n[:-delay]]) * 0.3
    out = np.stack([mix_n * 0.6, mix_n * 0.6, stems["arp"] * 0.7 + stems["chord"] * 0.5,
                    stems["bass"] * 0.8, echo, echo])
  else:
    raise ValueError(f"channels must be one of {sorted(_LAYOUTS)}, got {channels}")
  return np.clip(out, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Files.


def _atomic_target(path: pathlib.Path) -> pathlib.Path:
  return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def render_film(path: str | os.PathLike, *, seed: int, duration_s: int = 30, fps: int = 12,
                size: tuple[int, int] = (320, 240), sample_rate: int = 22050, channels: int = 2,
                audio: bool = True, crf: int = 23, faststart: bool = False) -> dict:
  """Renders one film to `path` (mp4, written atomically) and returns its labels.

  Args:
    path: output file (.mp4).
    seed: everything (curves, layout, notes) is a function of the seed.
    duration_s: whole seconds of film.
    fps: video frame rate.
    size: (width, height), both even (H.264 4:2:0).
    sample_rate: audio rate in Hz (AAC: 8000 ... 48000).
    channels: 1 (mono), 2 (stereo) or 6 (5.1).
    audio: False writes a film without an audio track.
    crf: libx264 quality (lower = better, bigger).
    faststart: put the mp4 index (moov box) before the media data instead of after it.

  Returns:
    dict with `valence`, `arousal` (float32 (duration_s,), the labels), `cut_times_s`, and the
    render parameters.
  """
  width, height = size
  if width % 2 or height % 2 or width < 32 or height < 32:
    raise ValueError(f"size must be even and >= 32 pixels each, got {size}")
  if duration_s < 1:
    raise ValueError(f"duration_s must be >= 1, got {duration_s}")
  if channels not in _LAYOUTS:
    raise ValueError(f"channels must be one of {sorted(_LAYOUTS)}, got {channels}")
  path = pathlib.Path(path)
  rng = np.random.default_rng(seed)
  valence_T, arousal_T = latent_curves(rng, duration_s)
  picture_rng, sound_rng = rng.spawn(2)
  tmp = _atomic_target(path)
  cut_times = [0.0]
  try:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(tmp), "w", format="mp4", options=options) as container:
      video = container.add_stream("libx264", rate=fps)
      video.width, video.height, video.pix_fmt = width, height, "yuv420p"
      # mbtree off: with it, libx264 here gave different bitstreams for identical input.
      video.options = {"preset": "veryfast", "crf": str(crf), "x264-params": "mbtree=0"}
      audio_stream = None
      if audio:
        samples_CxN = synthesize_music(sound_rng, valence_T, arousal_T, sample_rate, channels)
        audio_stream = container.add_stream("aac", rate=sample_rate, layout=_LAYOUTS[channels])
        audio_stream.bit_rate = 48000 * channels
      for i, frame_HxWx3, cut_times in _render_frames(picture_rng, valence_T, arousal_T, fps,
                                                      width, height):
        frame = av.VideoFrame.from_ndarray(frame_HxWx3, format="rgb24")
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        container.mux(video.encode(frame))
      container.mux(video.encode(None))
      if audio_stream is not None:
        chunk = sample_rate
        for n0 in range(0, samples_CxN.shape[1], chunk):
          frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples_CxN[:, n0:n0 + chunk]),
                                             format="fltp", layout=_LAYOUTS[channels])
          frame.sample_rate = sample_rate
          frame.pts, frame.time_base = n0, fractions.Fraction(1, sample_rate)
          container.mux(audio_stream.encode(frame))
        container.mux(audio_stream.encode(None))
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)
  return {
      "path": str(path), "seed": seed, "valence": valence_T, "arousal": arousal_T,
      "num_seconds": duration_s, "fps": fps, "size": (width, height),
      "sample_rate": sample_rate, "channels": channels, "has_audio": audio,
      "cut_times_s": np.asarray(cut_times, np.float32),
  }


def write_corrupt_film(path: str | os.PathLike, *, seed: int = 0, kind: str = "truncated") -> None:
  """Writes a file no decoder can read as a whole film.

  kind: "truncated": the first 40% of a valid 6 s film whose index comes first (the header
  promises 6 s, the media data stops early); "no_index": the first 40% of a film whose index is
  written last (lost); "garbage": random bytes after a plausible `ftyp` box.
  """
  path = pathlib.Path(path)
  if kind in ("truncated", "no_index"):
    full = path.with_name(f".{path.name}.full.mp4")
    render_film(full, seed=seed, duration_s=6, size=(64, 48), fps=8, sample_rate=16000,
                faststart=kind == "truncated")
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * 0.4)])
  elif kind == "garbage":
    rng = np.random.default_rng(seed)
    header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    path.write_bytes(header + rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
  else:
    raise ValueError(f"kind must be 'truncated', 'no_index' or 'garbage', got {kind!r}")


def write_film_without_audio(path: str | os.PathLike, *, seed: int = 0, duration_s: int = 6,
                             **kwargs) -> dict:
  """A valid film with a video stream only; returns its labels like render_film."""
  return render_film(path, seed=seed, duration_s=duration_s, audio=False, **kwargs)


def write_zero_length_film(path: str | os.PathLike, *, kind: str = "empty_file") -> None:
  """kind: "empty_file": 0 bytes; "no_frames": a valid mp4 with video and audio streams, no frames."""
  path = pathlib.Path(path)
  if kind == "empty_file":
    path.write_bytes(b"")
  elif kind == "no_frames":
    with av.open(str(path), "w", format="mp4") as container:
      video = container.add_stream("libx264", rate=12)
      video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
      container.add_stream("aac", rate=16000, layout="mono")
      container.start_encoding()
  else:
    raise ValueError(f"kind must be 'empty_file' or 'no_frames', got {kind!r}")


def render_film_with_labels(path: str | os.PathLike, *, seed: int, **kwargs) -> None:
  """`render_film`, then its labels as `<path>.labels.npz` (valence, arousal), atomically.

  Does nothing when both files exist, so an interrupted batch of renders resumes.
  """
  path = pathlib.Path(path)
  labels_path = path.with_name(path.name + ".labels.npz")
  if labels_path.exists() and path.exists():
    return
  info = render_film(path, seed=seed, **kwargs)
  tmp = _atomic_target(labels_path)
  try:
    with open(tmp, "wb") as f:
      np.savez(f, valence=info["valence"], arousal=info["arousal"])
    os.replace(tmp, labels_path)
  finally:
    tmp.unlink(missing_ok=True)


def load_labels(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The labels `render_film_with_labels` wrote beside film `path`."""
  with np.load(f"{os.fspath(path)}.labels.npz") as z:
    return {"valence": z["valence"], "arousal": z["arousal"]}
