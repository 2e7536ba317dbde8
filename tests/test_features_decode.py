"""Decoding: 16 kHz mono down-mix (5.1 included), timestamp-based frame sampling, bad files."""

import fractions

import av
import numpy as np
import pytest
import scipy.signal

import media_synth
from conftest import MEDIA_FIXTURE
from emojax.errors import DataError
from emojax.features import decode
from emojax.features import extract_film


def test_probe_fixture():
  info = decode.probe(MEDIA_FIXTURE)
  assert info.audio_layout == "5.1" and info.audio_rate == 48000 and info.has_audio
  assert (info.width, info.height) == (1280, 720)
  assert info.duration_s == pytest.approx(5.28, abs=1e-6)
  assert info.num_seconds == 5  # floor of the video duration


def test_51_tones_downmix_is_the_channel_mean(tmp_path):
  """One tone per 5.1 channel; the mono mix is the plain channel mean (VGGish's down-mix): every
  channel, the LFE included, at gain 1/6."""
  sr = 48000
  t = np.arange(2 * sr) / sr
  freqs = {"FL": 300, "FR": 500, "FC": 700, "LFE": 60, "BL": 900, "BR": 1100}
  x = np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs.values()])
  path = tmp_path / "tones51.wav"
  media_synth.write_audio(path, x, sr, "5.1")
  blocks = list(decode.iter_audio_seconds(path, 2, origin_s=0.0))
  assert len(blocks) == 2 and all(b.shape == (16000,) and b.dtype == np.float32 for b in blocks)
  y = np.concatenate(blocks)[4000:20000]
  w = np.hanning(y.size)
  amp = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)  # 1 Hz bins
  gains = {ch: amp[f] / 0.2 for ch, f in freqs.items()}
  for ch in freqs:
    assert gains[ch] == pytest.approx(1 / 6, abs=0.005), (ch, gains)


def _channels(path):
  """All decoded channels of the first audio stream, float64 (C, S), converted here by hand."""
  out = []
  with av.open(str(path)) as c:
    for f in c.decode(c.streams.audio[0]):
      x = f.to_ndarray()
      if not f.format.is_planar:
        x = x.reshape(-1, len(f.layout.channels)).T
      out.append(x / 32768.0 if x.dtype == np.int16 else x.astype(np.float64))
  return np.concatenate(out, axis=1)


def test_fixture_51_downmix_is_numpy_channel_mean():
  """The real 5.1 AAC soundtrack: our 16 kHz mono equals the NumPy mean of its six decoded
  channels resampled by SciPy (an independent resampler), up to resampling-filter differences."""
  chans = _channels(MEDIA_FIXTURE)
  assert chans.shape[0] == 6
  ref = scipy.signal.resample_poly(chans.mean(axis=0), 1, 3)
  ours = decode.decode_audio(MEDIA_FIXTURE)
  assert ours.shape == (5 * 16000,) and np.isfinite(ours).all()
  n = ours.size
  assert np.corrcoef(ours, ref[:n])[0, 1] > 0.9999
  assert np.std(ours) == pytest.approx(np.std(ref[:n]), rel=0.003)
  assert np.abs(ours - ref[:n]).max() < 0.05 * np.abs(ref[:n]).max()


def test_audio_late_start_is_padded_and_aligned(tmp_path):
  """Audio starting 0.5 s after the picture lands at 0.5 s on the common clock."""
  path = tmp_path / "late.mkv"
  sr = 16000
  with av.open(str(path), "w", format="matroska") as out:
    v = out.add_stream("mjpeg", rate=25)
    v.width, v.height, v.pix_fmt = 64, 48, "yuvj420p"
    v.time_base = v.codec_context.time_base = fractions.Fraction(1, 1000)
    a = out.add_stream("pcm_s16le", rate=sr, layout="mono")
    for i in range(50):
      f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
      f.pts, f.time_base = i * 40, fractions.Fraction(1, 1000)
      for p in v.encode(f):
        out.mux(p)
    for p in v.encode():
      out.mux(p)
    x = (0.5 * np.ones(sr) * 32767).astype(np.int16)[None]
    af = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
    af.sample_rate, af.pts, af.time_base = sr, sr // 2, fractions.Fraction(1, sr)
    for p in a.encode(af):
      out.mux(p)
    for p in a.encode():
      out.mux(p)
  y = decode.decode_audio(path)
  assert y.shape == (2 * sr,)
  onset = np.argmax(np.abs(y) > 0.25)
  assert abs(onset - sr // 2) <= 2, onset
  assert np.all(y[:onset] == 0) and np.all(np.abs(y[sr // 2 + 10:3 * sr // 2 - 10] - 0.5) < 1e-3)


def test_frames_are_sampled_by_timestamp_in_a_vfr_film(tmp_path):
  times = np.array([0.0, 0.1, 0.5, 0.55, 1.3, 2.2, 2.25, 2.9, 3.4])
  levels = np.arange(len(times)) * 25
  path = tmp_path / "vfr.mkv"
  media_synth.write_video(path, media_synth.solid_frames(levels), times)
  got = list(decode.sample_frames(path, fps=2.0, pairs=True, size=(16, 8)))
  targets = (np.arange(3 * 2) + 0.5) / 2  # T = floor(3.44) = 3 seconds
  assert [g[0] for g in got] == pytest.approx(list(targets))
  for target, img, nxt in got:
    on_screen = np.flatnonzero(times <= target + 1e-9).max()  # brute force
    follow = min(on_screen + 1, len(times) - 1)
    assert abs(int(img[..., 0].mean()) - levels[on_screen]) <= 3, (target, img[0, 0])
    assert abs(int(nxt[..., 0].mean()) - levels[follow]) <= 3


def test_fast_mode_decodes_close_pictures():
  exact = [f.to_ndarray(format="gray").astype(np.float32)
           for f in (x.av_frame for x in decode.iter_video_frames(MEDIA_FIXTURE, until_s=1.0))]
  fast = [f.to_ndarray(format="gray").astype(np.float32)
          for f in (x.av_frame for x in decode.iter_video_frames(MEDIA_FIXTURE, fast=True,
                                                                  until_s=1.0))]
  assert len(exact) == len(fast) == 26
  diffs = [np.abs(a - b).mean() for a, b in zip(exact, fast)]
  assert min(diffs) > 0  # the loop filter really was skipped, in every frame
  assert max(diffs) < 3.0  # mean absolute luma difference: the pictures stay close


def _expect_data_error(path, match):
  with pytest.raises(DataError, match=match) as e:
    extract_film(path, ["vggish_logmel", "visual_stats"])
  assert str(path) in str(e.value)


def test_garbage_bytes(tmp_path):
  p = tmp_path / "garbage.mp4"
  p.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
  _expect_data_error(p, "cannot be read")


def test_zero_length(tmp_path):
  p = tmp_path / "empty.mp4"
  p.write_bytes(b"")
  _expect_data_error(p, "empty")


def test_truncated_copy_moov_at_end(tmp_path):
  p = tmp_path / "cut.mp4"
  data = MEDIA_FIXTURE.read_bytes()
  p.write_bytes(data[:len(data) // 2])  # the fixture's index (moov) is at the end: unreadable
  _expect_data_error(p, "cannot be read")


def test_truncated_copy_faststart(tmp_path):
  """Index first (faststart), data cut: headers promise 5.28 s, frames stop early."""
  full = tmp_path / "faststart.mp4"
  with av.open(str(MEDIA_FIXTURE)) as src, av.open(str(full), "w",
                                                    options={"movflags": "faststart"}) as dst:
    streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
    for packet in src.demux():
      if packet.dts is None:
        continue
      packet.stream = streams[packet.stream.index]
      dst.mux(packet)
  data = full.read_bytes()
  assert data.find(b"moov") < data.find(b"mdat")
  cut = tmp_path / "cut_faststart.mp4"
  cut.write_bytes(data[:len(data) // 3])
  _expect_data_error(cut, "truncated")


def test_no_video_stream(tmp_path):
  p = tmp_path / "audio_only.wav"
  media_synth.write_audio(p, np.zeros((1, 32000)), 16000, "mono")
  _expect_data_error(p, "no video stream")


def test_no_audio_stream(tmp_path):
  p = tmp_path / "silent_film.mkv"
  media_synth.write_video(p, media_synth.solid_frames(np.arange(60) * 4), np.arange(60) / 25)
  with pytest.raises(decode.NoAudioError, match="no audio stream") as e:
    extract_film(p, ["vggish_logmel", "visual_stats"])
  assert isinstance(e.value, DataError) and str(p) in str(e.value)
  video_only = extract_film(p, ["visual_stats"])  # no audio asked for: fine
  assert video_only.streams["visual_stats"].shape[0] == 2 and not video_only.has_audio
  silent = extract_film(p, ["vggish_logmel", "visual_stats"], allow_missing_audio=True)
  assert not silent.has_audio
  np.testing.assert_allclose(silent.streams["vggish_logmel"], np.log(0.01), rtol=1e-6)


def test_missing_file(tmp_path):
  with pytest.raises(DataError, match="not found"):
    decode.probe(tmp_path / "nope.mp4")


def test_seconds_follow_the_video_not_a_longer_soundtrack(tmp_path):
  p = tmp_path / "long_audio.mkv"
  sr = 16000
  tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(4 * sr) / sr)[None]
  media_synth.write_video(p, media_synth.solid_frames(np.arange(55)), np.arange(55) / 25,
                          audio=tone, audio_rate=sr)
  info = decode.probe(p)
  assert info.duration_s == pytest.approx(2.2, abs=0.05) and info.num_seconds == 2
  ff = extract_film(p, ["vggish_logmel", "visual_stats"])
  assert ff.streams["vggish_logmel"].shape[0] == ff.streams["visual_stats"].shape[0] == 2


def test_corrupt_stream_inside_a_readable_file(tmp_path):
  data = bytearray(MEDIA_FIXTURE.read_bytes())
  rng = np.random.default_rng(0)
  for i in rng.integers(1000, data.find(b"moov") - 1000, len(data) // 100):  # inside mdat
    data[i] = int(rng.integers(0, 256))
  p = tmp_path / "corrupt.mp4"
  p.write_bytes(bytes(data))
  _expect_data_error(p, "corrupt")


def test_audio_before_the_picture_starts_is_dropped(tmp_path):
  """Pictures from 0.5 s, sound from 0 s: the origin is the first picture; 0.5 s of sound goes."""
  sr = 16000
  x = np.zeros(4 * sr)
  x[sr // 2:] = 0.5  # silence until the picture starts, then a constant level
  p = tmp_path / "early_audio.mkv"
  media_synth.write_video(p, media_synth.solid_frames(np.arange(75)), 0.5 + np.arange(75) / 25,
                          audio=x[None], audio_rate=sr)
  info = decode.probe(p)
  assert info.origin_s == pytest.approx(0.5) and info.num_seconds == 3
  y = decode.decode_audio(p)
  assert y.shape == (3 * sr,)
  assert np.all(np.abs(y[5:] - 0.5) < 1e-3), np.flatnonzero(np.abs(y - 0.5) > 1e-3)[:5]
