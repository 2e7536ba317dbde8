"""The rendered films are real media whose picture and sound follow the latent curves."""

import hashlib

import av
import numpy as np
import pytest
from PIL import Image
from PIL import ImageDraw

from emojax.datasets import synthetic_films_render as render

SECONDS, FPS, SR = 40, 12, 22050


@pytest.fixture(scope="module")
def film(tmp_path_factory):
  path = tmp_path_factory.mktemp("films") / "film.mp4"
  info = render.render_film(path, seed=3, duration_s=SECONDS, fps=FPS, size=(160, 120),
                            sample_rate=SR, channels=2)
  return path, info


def _decode(path):
  """Per-frame RGB float arrays and the audio as (channels, samples), decoded independently."""
  with av.open(str(path)) as container:
    frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
  with av.open(str(path)) as container:
    audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
  return frames.astype(np.float64) / 255.0, audio.astype(np.float64)


@pytest.fixture(scope="module")
def decoded(film):
  return _decode(film[0])


def test_file_has_h264_video_and_aac_audio_of_the_requested_duration(film):
  path, info = film
  with av.open(str(path)) as container:
    assert container.duration / 1e6 == pytest.approx(SECONDS, abs=0.1)
    video, audio = container.streams.video[0], container.streams.audio[0]
    assert video.codec_context.name == "h264"
    assert (video.width, video.height) == (160, 120)
    assert float(video.average_rate) == pytest.approx(FPS)
    assert audio.codec_context.name == "aac"
    assert audio.rate == SR and audio.channels == 2
  assert info["valence"].shape == info["arousal"].shape == (SECONDS,)
  assert info["valence"].dtype == np.float32
  assert np.all(np.abs(info["valence"]) <= 1) and np.all(np.abs(info["arousal"]) <= 1)


def test_decoded_lengths(decoded):
  frames, audio = decoded
  assert frames.shape == (SECONDS * FPS, 120, 160, 3)
  # AAC pads to whole 1024-sample frames; the priming samples are trimmed by the decoder.
  assert SECONDS * SR <= audio.shape[1] <= SECONDS * SR + 2048


def test_curves_have_segments_and_span_the_range():
  vals = np.concatenate([np.concatenate(render.latent_curves(np.random.default_rng(s), 60))
                         for s in range(10)])
  assert vals.min() < -0.6 and vals.max() > 0.6
  v, _ = render.latent_curves(np.random.default_rng(0), 60)
  steps = np.abs(np.diff(v))
  assert np.median(steps) < 0.05  # mostly smooth ...
  assert steps.max() > 0.2  # ... with jumps or ramps between segments


def test_brightness_and_warmth_follow_valence(film, decoded):
  _, info = film
  frames, _ = decoded
  per_second = frames.reshape(SECONDS, FPS, *frames.shape[1:]).mean(axis=(1, 2, 3))  # (T, 3)
  luma = per_second @ np.array([0.299, 0.587, 0.114])
  warmth = per_second[:, 0] - per_second[:, 2]
  assert np.corrcoef(luma, info["valence"])[0, 1] > 0.9
  assert np.corrcoef(warmth, info["valence"])[0, 1] > 0.9


def test_motion_follows_arousal(film, decoded):
  _, info = film
  frames, _ = decoded
  diff = np.abs(np.diff(frames.mean(-1), axis=0)).mean(axis=(1, 2))  # (N - 1,)
  cuts = np.round(info["cut_times_s"] * FPS).astype(int)
  diff[cuts[cuts > 0] - 1] = np.nan  # a cut is not motion
  motion = np.nanmedian(np.concatenate([[np.nan], diff]).reshape(SECONDS, FPS), axis=1)
  luma = frames.mean(-1).reshape(SECONDS, -1).mean(1)  # contrast of moving edges scales with it
  assert np.corrcoef(motion / luma, info["arousal"])[0, 1] > 0.6


def test_loudness_and_brightness_of_sound_follow_arousal(film, decoded):
  _, info = film
  _, audio = decoded
  x_TxS = audio.mean(0)[: SECONDS * SR].reshape(SECONDS, SR)
  rms = np.sqrt((x_TxS ** 2).mean(1))
  assert np.corrcoef(rms, info["arousal"])[0, 1] > 0.9
  spec = np.abs(np.fft.rfft(x_TxS, axis=1)) ** 2
  freqs = np.fft.rfftfreq(SR, 1 / SR)
  brightness = spec[:, freqs > 1000].sum(1) / spec.sum(1)  # share of energy above 1 kHz
  assert np.corrcoef(brightness, info["arousal"])[0, 1] > 0.7


def test_mode_follows_valence(film, decoded):
  """Major-key pitch classes (C#, F#, G# in A major) dominate when valence > 0, minor ones below."""
  _, info = film
  _, audio = decoded
  x_TxS = audio.mean(0)[: SECONDS * SR].reshape(SECONDS, SR)
  spec = np.abs(np.fft.rfft(x_TxS * np.hanning(SR), axis=1))
  freqs = np.fft.rfftfreq(SR, 1 / SR)
  ok = (freqs > 100) & (freqs < 2000)
  pitch_class = np.round(12 * np.log2(freqs[ok] / 440.0)).astype(int) % 12  # 0 = A
  chroma = np.stack([spec[:, ok][:, pitch_class == k].sum(1) for k in range(12)], 1)
  major = chroma[:, [4, 9, 11]].sum(1)  # C#, F#, G#
  minor = chroma[:, [3, 8, 10]].sum(1)  # C, F, G
  v = info["valence"]
  clear = np.abs(v) > 0.15
  agree = np.sign(major - minor)[clear] == np.sign(v)[clear]
  assert clear.sum() >= 10 and agree.mean() > 0.9


@pytest.mark.parametrize("arousal", [-0.8, 0.8])
def test_tempo_follows_arousal(arousal):
  sr, seconds = 8000, 20
  a = np.full(seconds, arousal, np.float32)
  x = render.synthesize_music(np.random.default_rng(0), np.zeros(seconds), a, sr, 1)[0]
  env = np.abs(np.diff(x)) ** 2  # onsets: kick and hi-hat transients
  hop = sr // 200
  env = env[: len(env) // hop * hop].reshape(-1, hop).sum(1)
  env = env - env.mean()
  ac = np.correlate(env, env, "full")[len(env) - 1:]
  lags = np.arange(len(ac)) / 200.0  # seconds
  window = (lags > 60 / 200) & (lags < 60 / 50)  # beats between 50 and 200 bpm
  period = lags[window][np.argmax(ac[window])]
  expected = 60.0 / (70.0 + 90.0 * (arousal + 1) / 2)
  # The envelope may peak at half a beat (off-beat hi-hat) or two beats (chords every 2nd beat).
  assert min(abs(period - k * expected) for k in (0.5, 1, 2)) < 0.02


def test_face_mouth_smiles_for_positive_valence():
  def mouth_rows(valence):
    image = Image.new("RGB", (200, 200), (255, 255, 255))
    _draw_face = render._draw_face  # pylint: disable=protected-access
    _draw_face(ImageDraw.Draw(image), 100, 100, 60, valence, 0.0, 1.0)
    dark = np.asarray(image).sum(-1) < 150
    band = dark[105:155]  # below the eyes (y 85), above the chin outline (y 166)
    cols = [100 - 20, 100, 100 + 20]
    return [np.flatnonzero(band[:, c]).mean() for c in cols]

  left, centre, right = mouth_rows(0.9)
  assert centre > left + 5 and centre > right + 5  # image y grows downwards: centre below corners
  left, centre, right = mouth_rows(-0.9)
  assert centre < left - 5 and centre < right - 5


def test_same_seed_same_film(tmp_path):
  a = render.render_film(tmp_path / "a.mp4", seed=7, duration_s=3, size=(64, 48))
  b = render.render_film(tmp_path / "b.mp4", seed=7, duration_s=3, size=(64, 48))
  c = render.render_film(tmp_path / "c.mp4", seed=8, duration_s=3, size=(64, 48))
  np.testing.assert_array_equal(a["valence"], b["valence"])
  assert not np.array_equal(a["valence"], c["valence"])
  digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
  assert digest(tmp_path / "a.mp4") == digest(tmp_path / "b.mp4")  # byte-identical files
  assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed away


@pytest.mark.parametrize("channels,layout", [(1, "mono"), (6, "5.1")])
def test_channel_layouts(tmp_path, channels, layout):
  path = tmp_path / "f.mp4"
  render.render_film(path, seed=1, duration_s=3, size=(64, 48), sample_rate=16000,
                     channels=channels)
  with av.open(str(path)) as container:
    stream = container.streams.audio[0]
    assert (stream.channels, stream.layout.name, stream.rate) == (channels, layout, 16000)


def test_bad_arguments_raise(tmp_path):
  with pytest.raises(ValueError, match="even"):
    render.render_film(tmp_path / "f.mp4", seed=0, size=(65, 48))
  with pytest.raises(ValueError, match="channels"):
    render.render_film(tmp_path / "f.mp4", seed=0, channels=3)


def test_bad_files(tmp_path):
  for kind in ("no_index", "garbage"):
    render.write_corrupt_film(tmp_path / f"{kind}.mp4", kind=kind)
    with pytest.raises(av.error.InvalidDataError):
      av.open(str(tmp_path / f"{kind}.mp4"))
  # Truncated with the index first: opens, promises 6 s, holds far fewer frames.
  render.write_corrupt_film(tmp_path / "truncated.mp4", kind="truncated")
  with av.open(str(tmp_path / "truncated.mp4")) as container:
    assert container.duration / 1e6 == pytest.approx(6, abs=0.1)
    assert sum(1 for _ in container.decode(video=0)) < 6 * 8 * 0.6
  info = render.write_film_without_audio(tmp_path / "silent.mp4", duration_s=2, size=(64, 48))
  assert not info["has_audio"]
  with av.open(str(tmp_path / "silent.mp4")) as container:
    assert len(container.streams.audio) == 0 and len(container.streams.video) == 1
  render.write_zero_length_film(tmp_path / "empty.mp4")
  assert (tmp_path / "empty.mp4").stat().st_size == 0
  render.write_zero_length_film(tmp_path / "no_frames.mp4", kind="no_frames")
  with av.open(str(tmp_path / "no_frames.mp4")) as container:
    assert len(container.streams) == 0 and container.duration is None


def test_cuts_are_more_frequent_when_aroused(tmp_path):
  counts = {"high": 0, "low": 0}
  seconds = {"high": 0, "low": 0}
  for seed in range(4):
    info = render.render_film(tmp_path / "f.mp4", seed=seed, duration_s=60, fps=8, size=(48, 32),
                              audio=False)
    a = info["arousal"]
    cut_seconds = np.floor(info["cut_times_s"][1:]).astype(int)  # [0] is the film's start
    for name, mask in (("high", a > 0.2), ("low", a < -0.2)):
      counts[name] += mask[cut_seconds].sum()
      seconds[name] += mask.sum()
  assert seconds["high"] > 30 and seconds["low"] > 30
  assert counts["high"] / seconds["high"] > 2.5 * counts["low"] / seconds["low"]
