"""Every extractor on the real fixture film, and each one against an independent oracle."""

import math

import av
import numpy as np
import pytest

import media_synth
from conftest import MEDIA_FIXTURE
from emojax.features import audio_functionals
from emojax.features import extract_film
from emojax.features import frame_clips
from emojax.features import keyframe
from emojax.features import registry
from emojax.features import spectrogram_image
from emojax.features import visual_stats

ALL = {"vggish_logmel": {}, "audio_functionals": {}, "spectrogram_image": {}, "keyframe": {},
       "visual_stats": {}, "frame_clips": {"clip_seconds": 2, "num_frames": 4, "size": 112}}


@pytest.fixture(scope="module")
def fixture_features():
  return extract_film(MEDIA_FIXTURE, ALL, progress=True)


def test_every_extractor_on_the_fixture(fixture_features):
  ff = fixture_features
  assert ff.num_seconds == math.floor(5.28) == 5 and ff.duration_s == pytest.approx(5.28)
  assert ff.has_audio
  expected = {"vggish_logmel": ((5, 96, 64), np.float32),
              "audio_functionals": ((5, 240), np.float32),
              "spectrogram_image": ((5, 256, 256), np.uint8),
              "keyframe": ((5, 256, 256, 3), np.uint8),
              "visual_stats": ((5, 25), np.float32),
              "frame_clips": ((3, 4), object)}  # ceil(5 / 2) clips
  assert set(ff.streams) == set(expected)
  for name, (shape, dtype) in expected.items():
    arr = ff.streams[name]
    assert arr.shape == shape and arr.dtype == dtype, (name, arr.shape, arr.dtype)
    entry = ff.manifest["extractors"][name]
    assert tuple(entry["shape"]) == shape[1:] and np.dtype(entry["dtype"]) == dtype
    if dtype != object:
      assert np.isfinite(arr.astype(np.float64)).all(), name
      assert arr.reshape(5 if name != "frame_clips" else 3, -1).std(axis=1).min() > 0, name
  clips = frame_clips.decode_clips(ff.streams["frame_clips"])
  assert clips.shape == (3, 4, 112, 112, 3) and clips.dtype == np.uint8
  vs = dict(zip(visual_stats.SCALARS, ff.streams["visual_stats"][:, :13].T))
  assert np.all((vs["brightness"] > 0.2) & (vs["brightness"] < 0.8))
  assert np.all(vs["cuts"] == 0)  # the excerpt is one shot
  np.testing.assert_allclose(ff.streams["visual_stats"][:, 13:].sum(axis=1), 1.0, rtol=1e-5)
  af = dict(zip(audio_functionals.feature_names(), ff.streams["audio_functionals"].T))
  assert np.all(af["rms_mean"] > 1e-3) and np.all(af["centroid_mean"] > 100)


def test_default_set_and_registry():
  assert {"vggish_logmel", "audio_functionals", "visual_stats", "keyframe", "frame_clips",
          "spectrogram_image"} <= set(registry.names())
  ff = extract_film(MEDIA_FIXTURE)
  assert sorted(ff.streams) == ["audio_functionals", "vggish_logmel", "visual_stats"]
  assert all(v.shape[0] == 5 for v in ff.streams.values())


def test_keyframe_matches_brute_force(fixture_features):
  """Decode every frame independently, histogram with np.histogram, pick by a plain loop."""
  by_second = {}
  with av.open(str(MEDIA_FIXTURE)) as c:
    for f in c.decode(c.streams.video[0]):
      s = int(math.floor(f.time))
      if s < 5:
        by_second.setdefault(s, []).append(f)
  for s, frames in by_second.items():
    hists = []
    for f in frames:
      img = f.reformat(width=160, height=90, format="rgb24",
                       interpolation="BILINEAR").to_ndarray()
      h = [np.histogram(img[..., ch], bins=16, range=(0, 256))[0] / (160 * 90) for ch in range(3)]
      hists.append(np.concatenate(h))
    mean = sum(hists) / len(hists)
    dists = [sum(abs(a - b) for a, b in zip(h, mean)) for h in hists]
    best = min(range(len(dists)), key=lambda i: dists[i])
    expected = frames[best].reformat(width=256, height=256, format="rgb24",
                                     interpolation="BILINEAR").to_ndarray()
    np.testing.assert_array_equal(fixture_features.streams["keyframe"][s], expected)


def test_keyframe_select_vs_brute_force_random():
  rng = np.random.default_rng(1)
  for _ in range(50):
    h = rng.random((rng.integers(1, 30), 12))
    mean = h.mean(0)
    brute = min(range(len(h)), key=lambda i: (np.abs(h[i] - mean).sum(), i))
    assert keyframe.select(h) == brute
  img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
  ref = np.concatenate([np.histogram(img[..., c], bins=8, range=(0, 256))[0] for c in range(3)])
  np.testing.assert_allclose(keyframe.rgb_histogram(img, 8), ref / 63)


def _moving_texture_film(path, shift_px_per_frame, seconds=3, fps=25, cut_at=None):
  rng = np.random.default_rng(0)
  tex = rng.random((200, 400))
  from scipy.ndimage import gaussian_filter
  tex = gaussian_filter(tex, 3)
  tex = (tex - tex.min()) / (tex.max() - tex.min())
  frames = []
  for i in range(seconds * fps):
    x0 = int(round(i * shift_px_per_frame))
    img = tex[40:40 + 90, x0:x0 + 160]
    if cut_at is not None and i >= cut_at * fps:
      img = 1.0 - tex[100:190, 200:360] * 0.5
    frames.append(np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2))
  media_synth.write_video(path, np.stack(frames), np.arange(seconds * fps) / fps)


def test_visual_stats_flow_and_cuts_on_synthetic_films(tmp_path):
  still, moving, cut = tmp_path / "still.mkv", tmp_path / "moving.mkv", tmp_path / "cut.mkv"
  _moving_texture_film(still, 0.0)
  _moving_texture_film(moving, 1.0)  # 1 px per frame at 160 px wide, 25 fps
  _moving_texture_film(cut, 0.0, cut_at=1.52)
  names = list(visual_stats.SCALARS)
  s_still = extract_film(still, ["visual_stats"]).streams["visual_stats"]
  s_move = extract_film(moving, ["visual_stats"]).streams["visual_stats"]
  s_cut = extract_film(cut, ["visual_stats"]).streams["visual_stats"]
  g = names.index("flow_global")
  expected = 1.0 * 25 / 160  # frame widths per second
  np.testing.assert_allclose(s_move[:, g], expected, rtol=0.15)
  assert np.all(s_still[:, g] < 0.05 * expected)
  assert np.all(s_move[:, names.index("motion_energy")] > 5 * s_still[:, names.index("motion_energy")] + 1e-4)
  np.testing.assert_array_equal(s_cut[:, names.index("cuts")], [0, 1, 0])
  np.testing.assert_array_equal(s_still[:, names.index("cuts")], [0, 0, 0])
  # Grey pictures: no saturation, no colour, empty hue histogram.
  assert np.all(s_still[:, names.index("saturation")] < 0.03)
  assert np.all(s_still[:, 13:].sum(axis=1) <= 1.0 + 1e-6)


def test_picture_stats_closed_forms():
  img = np.zeros((10, 20, 3), np.uint8)
  img[:, :10] = (255, 0, 0)  # half pure red, half black
  st = visual_stats.picture_stats(img, hue_bins=6, edge_threshold=0.1)
  y = np.r_[np.full(100, 0.299), np.zeros(100)]
  assert st[0] == pytest.approx(y.mean(), abs=1e-6) and st[1] == pytest.approx(y.std(), abs=1e-6)
  assert st[2] == pytest.approx(0.5)  # saturation 1 on half the pixels
  rg = np.r_[np.ones(100), np.zeros(100)]
  yb = np.r_[np.full(100, 0.5), np.zeros(100)]
  hs = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
  assert st[3] == pytest.approx(hs, rel=1e-5)
  assert st[4] == pytest.approx(20 / 200)  # the two columns beside the vertical edge
  np.testing.assert_allclose(st[5:], [1, 0, 0, 0, 0, 0])  # all hue weight on red


def test_frame_clips_targets_pick_frames_by_timestamp(tmp_path):
  times = np.arange(100) / 25  # 4 s
  levels = (np.arange(100) * 2.5).astype(int)
  p = tmp_path / "ramp.mkv"
  media_synth.write_video(p, media_synth.solid_frames(levels), times)
  for sampling in ("dense", "tsn"):
    params = {"num_frames": 4, "size": 32, "fps": 5.0, "sampling": sampling, "clip_seconds": 0,
              "encoding": "png"}
    ff = extract_film(p, {"frame_clips": params})
    got = frame_clips.decode_clips(ff.streams["frame_clips"])[0, :, 0, 0, 0].astype(int)
    if sampling == "tsn":
      targets = (np.arange(4) + 0.5) * 4 / 4
    else:
      targets = 2.0 + (np.arange(4) - 2 + 0.5) / 5
    idx = [int(np.flatnonzero(times <= t + 1e-9).max()) for t in targets]
    assert np.all(np.abs(got - levels[idx]) <= 3), (sampling, got, levels[idx])


def test_audio_functionals_oracles():
  sr = 16000
  t = np.arange(sr) / sr
  for f0 in (110.0, 220.0, 330.0):
    x = sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 5)).astype(np.float32)
    f, v = audio_functionals.pitch_track(x, 101)
    assert np.median(f) == pytest.approx(f0, rel=0.01) and np.median(v) > 0.9
  noise = np.random.default_rng(0).normal(size=sr).astype(np.float32) * 0.1
  f, v = audio_functionals.pitch_track(noise, 101)
  assert np.mean(f > 0) < 0.05
  d = np.random.default_rng(1).normal(size=(3, 101))
  out = audio_functionals.functionals(d).reshape(3, 5)
  tt = np.arange(101) * 0.01
  for i in range(3):
    slope = np.polyfit(tt, d[i], 1)[0]
    np.testing.assert_allclose(out[i], [d[i].mean(), d[i].std(), d[i].min(), d[i].max(), slope],
                               rtol=1e-9, atol=1e-12)
  sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
  row = dict(zip(audio_functionals.feature_names(),
                 registry.create("audio_functionals").audio_second(0, sine)))
  assert row["rms_mean"] == pytest.approx(0.5 / math.sqrt(2), rel=0.05)
  assert row["centroid_mean"] == pytest.approx(1000, rel=0.05)
  assert row["zcr_mean"] == pytest.approx(2 * 1000 / sr, rel=0.05)
  silent = registry.create("audio_functionals").audio_second(0, np.zeros(sr, np.float32))
  assert np.isfinite(silent).all()


def test_spectrogram_image_oracle():
  sr = 16000
  t = np.arange(sr) / sr
  ex = spectrogram_image.SpectrogramImage(size=321)
  img = ex.audio_second(0, np.sin(2 * np.pi * 2000 * t).astype(np.float32)).astype(int)
  # 321 rows = the 321 bins (bilinear on the time axis only); 2 kHz = bin 80, row 320 - 80.
  assert img.shape == (321, 321)
  assert int(np.argmax(img.mean(axis=1))) == 320 - 80
  assert img[320 - 80].min() >= 250  # a full-scale sine sits near 0 dBFS
  assert ex.audio_second(0, np.zeros(sr, np.float32)).max() == 0
