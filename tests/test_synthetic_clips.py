"""The per-clip benchmark (synthetic_clips) and the per-clip stream helpers (clip_streams)."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from emojax import errors
from emojax.datasets import clip_streams
from emojax.datasets import synthetic_clips as sc
from emojax.datasets import synthetic_films_render as render

SMALL = {c.name: c for c in sc.SyntheticClips.BUILDER_CONFIGS}["small"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("clips")
  sc.SyntheticClips(config="small", data_dir=data_dir,
                    file_format="array_record").download_and_prepare()
  builder = sc.SyntheticClips(config="small", data_dir=data_dir, file_format="array_record")
  sources = builder.as_data_source()
  return builder, {s: [sources[s][i] for i in range(len(sources[s]))] for s in sources}


def test_builds_and_reads_back(small):
  builder, clips = small
  n, size = SMALL.clip_seconds, SMALL.image_size
  per_film = SMALL.clips_per_film
  assert {s: len(v) for s, v in clips.items()} == {
      "train": SMALL.num_train_films * per_film,
      "validation": SMALL.num_validation_films * per_film,
      "test": SMALL.num_test_films * per_film}
  seen = set()
  for split, examples in clips.items():
    films = set(builder.info.metadata["splits"][split])
    for e in examples:
      assert e["film_id"].decode() in films
      assert e["clip_id"].decode().startswith(e["film_id"].decode() + "_clip_")
      seen.add(e["clip_id"])
      assert e["keyframe"].shape == (n, size, size, 3) and e["keyframe"].dtype == np.uint8
      assert e["spectrogram_image"].shape == (n, size, size)
      assert e["spectrogram_image"].dtype == np.uint8
      for t in sc.TARGETS:
        assert -1.0 <= e[t] <= 1.0 and e[f"{t}_class"] in (0, 1, 2)
  assert len(seen) == sum(len(v) for v in clips.values())


def test_labels_classes_and_ceiling_from_the_latents(small):
  builder, clips = small
  md = builder.info.metadata
  splits = SMALL.split_films()
  # Independent expectation: the latent curves straight from the renderer's generator.
  latent, label = {}, {}
  for i in range(SMALL.num_films):
    v_T, a_T = render.latent_curves(np.random.default_rng(SMALL.seed + i), SMALL.film_seconds)
    noise_rng = np.random.default_rng([SMALL.seed, 1, i])
    for t, curve in (("valence", v_T), ("arousal", a_T)):
      noise = noise_rng.standard_normal(SMALL.clips_per_film)
      means = [float(np.mean(curve[j * SMALL.clip_seconds:(j + 1) * SMALL.clip_seconds],
                             dtype=np.float64)) for j in range(SMALL.clips_per_film)]
      latent[(t, i)] = np.array(means)
      label[(t, i)] = np.clip(np.array(means) + SMALL.label_noise_std * noise, -1, 1)
  for t in sc.TARGETS:
    train = np.sort(np.concatenate([label[(t, i)] for i in splits["train"]]))
    lo, hi = np.percentile(train, [100 / 3, 200 / 3])
    np.testing.assert_allclose(md["class_boundaries"][t], [lo, hi], rtol=1e-6)

    def cls(x):
      return np.where(x < lo, 0, np.where(x < hi, 1, 2))

    # Training classes are balanced to within one clip by construction.
    counts = np.bincount(cls(train), minlength=3)
    assert counts.max() - counts.min() <= 1 and md["class_counts"]["train"][t] == counts.tolist()
    for split, idx in splits.items():
      y = np.concatenate([label[(t, i)] for i in idx])
      z = np.concatenate([latent[(t, i)] for i in idx])
      acc = float(np.mean(cls(z) == cls(y)))
      assert md["ceiling_by_split"][split][t]["accuracy"] == pytest.approx(acc)
      stored = {e["clip_id"].decode(): e for e in clips[split]}
      for i in idx:
        for j in range(SMALL.clips_per_film):
          e = stored[sc.clip_id(i, j)]
          assert e[t] == pytest.approx(label[(t, i)][j], abs=1e-6)
          assert e[f"{t}_class"] == cls(label[(t, i)][j])
    assert md["ceiling"][t] == md["ceiling_by_split"]["test"][t]
    assert 0.5 < md["ceiling"][t]["accuracy"] <= 1.0
    top = int(np.argmax(md["class_counts"]["train"][t]))
    test_y = cls(np.concatenate([label[(t, i)] for i in splits["test"]]))
    assert md["majority"][t] == {"class": top, "accuracy": pytest.approx(np.mean(test_y == top))}


def test_keyframe_is_the_frame_nearest_the_mean_histogram():
  rng = np.random.default_rng(3)
  frames = rng.integers(0, 256, (7, 12, 10, 3), dtype=np.uint8)
  frames[2] = 128  # 3 frames in second 0 and 4 in second 1
  second = np.array([0, 0, 0, 1, 1, 1, 1])
  got = clip_streams.keyframes(frames, second, 3, size=6, bins=4)
  for s, idx in ((0, [0, 1, 2]), (1, [3, 4, 5, 6])):
    hists = np.stack([np.concatenate([np.histogram(frames[i][..., c], bins=4, range=(0, 256))[0]
                                      for c in range(3)]) / 120.0 for i in idx])
    best = idx[int(np.argmin(np.abs(hists - hists.mean(0)).sum(1)))]
    want = np.asarray(Image.fromarray(frames[best]).resize((6, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(got[s], want)
  # Second 2 has no frame: the last frame on screen.
  np.testing.assert_array_equal(
      got[2], np.asarray(Image.fromarray(frames[6]).resize((6, 6), Image.Resampling.BILINEAR)))
  with pytest.raises(errors.DataError, match="no frame in second 0"):
    clip_streams.keyframes(frames, second + 1, 2, size=6)


def test_bad_labels_streams_and_configs():
  assert clip_streams.check_classes(np.array([0.0, 2.0, 1.0]), "x").tolist() == [0, 2, 1]
  for bad in ([0, 3], [-1], [0.5], [np.nan]):
    with pytest.raises(errors.DataError, match="annotations.txt:.*not one of 0, 1, 2"):
      clip_streams.check_classes(np.array(bad, np.float64), "annotations.txt:4")
  ok = {"keyframe": np.zeros((2, 8, 8, 3), np.uint8),
        "spectrogram_image": np.zeros((2, 8, 8), np.uint8)}
  clip_streams.check_streams(ok, 2, 8, "clip_1")
  with pytest.raises(errors.DataError, match="clip_1: the spectrogram_image stream is missing"):
    clip_streams.check_streams({"keyframe": ok["keyframe"]}, 2, 8, "clip_1")
  with pytest.raises(errors.DataError, match="clip_1: keyframe has shape"):
    clip_streams.check_streams({**ok, "keyframe": ok["keyframe"][:1]}, 2, 8, "clip_1")
  with pytest.raises(errors.DataError, match="need 32000 mono samples"):
    clip_streams.spectrogram_images(np.zeros(100), 2, 8)
  with pytest.raises(errors.ConfigError, match="must be even"):
    dataclasses.replace(SMALL, name="odd", render_width=63).validate()
  with pytest.raises(errors.ConfigError, match="num_train_films"):
    dataclasses.replace(SMALL, name="none", num_test_films=0).validate()


def test_cached_build_with_other_numbers_is_refused(tmp_path):
  tiny = dataclasses.replace(SMALL, name="tiny", num_train_films=1, num_validation_films=1,
                             num_test_films=1, clip_seconds=1, image_size=8)
  sc.SyntheticClips(config=tiny, data_dir=tmp_path, file_format="array_record"
                    ).download_and_prepare()
  other = dataclasses.replace(tiny, label_noise_std=0.3)
  with pytest.raises(errors.ConfigError, match="other parameters"):
    sc.SyntheticClips(config=other, data_dir=tmp_path, file_format="array_record")


# ------------------------------------------------------------------------------------------------
# Each target in every modality (SHARES): probes on hand-computed per-clip statistics.

PROBE = dataclasses.replace(SMALL, name="probe", num_train_films=24, num_validation_films=2,
                            num_test_films=10, clips_per_film=4, clip_seconds=2, fps=4,
                            render_width=32, render_height=32, image_size=24)


@pytest.fixture(scope="module")
def probe_clips(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("probe")
  builder = sc.SyntheticClips(config=PROBE, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  sources = builder.as_data_source()
  return builder, [sources[s][i] for s in sc.SPLITS for i in range(len(sources[s]))]


def _picture_stats(e):
  """Mean luma (valence: brightness), log luma contrast (arousal), mean key-frame change (cuts)."""
  k = e["keyframe"].astype(np.float64) / 255.0
  luma = k @ np.array([0.299, 0.587, 0.114])
  spread = luma.reshape(len(k), -1).std(1).mean()
  change = np.abs(np.diff(k, axis=0)).mean()
  return [luma.mean(), np.log(spread + 1e-3), np.log(luma.mean() + 1e-3), change]


def _sound_stats(e):
  """Mean level (arousal: loudness) and the frequency of the loudest row in 1.8-7.2 kHz (valence:
  the pad's pitch); row 0 is 8 kHz, the bottom row 0 Hz."""
  s = e["spectrogram_image"].astype(np.float64) / 255.0
  profile = s.mean(axis=(0, 2))
  hz = (len(profile) - 1 - np.arange(len(profile))) / (len(profile) - 1) * 8000.0
  band = (hz >= 1800) & (hz <= 7200)
  return [s.mean(), hz[band][np.argmax(profile[band])]]


PROBE_STATS = {"picture": _picture_stats, "sound": _sound_stats}


def _probe_accuracy(clips, stats, target, folds=5):
  """Least squares from the stats to the label, film-wise `folds`-fold cross-validation over all
  clips; classes at each fold's training terciles. Returns (accuracy, best constant's rate)."""
  film = np.array([int(e["film_id"].decode().split("_")[1]) for e in clips])
  x = np.array([[1.0] + stats(e) for e in clips])
  y = np.array([e[target] for e in clips], np.float64)
  hits, truth = [], []
  for k in range(folds):
    test, train = film % folds == k, film % folds != k
    lo, hi = np.percentile(y[train], [100 / 3, 200 / 3])
    coef = np.linalg.lstsq(x[train], y[train], rcond=None)[0]
    true = np.digitize(y[test], [lo, hi])
    hits.append(np.digitize(x[test] @ coef, [lo, hi]) == true)
    truth.append(true)
  truth = np.concatenate(truth)
  return float(np.concatenate(hits).mean()), float(np.bincount(truth).max() / truth.size)


@pytest.mark.parametrize("modality", sorted(PROBE_STATS))
@pytest.mark.parametrize("target", sc.TARGETS)
def test_every_modality_carries_every_target(probe_clips, modality, target):
  builder, clips = probe_clips
  acc, constant = _probe_accuracy(clips, PROBE_STATS[modality], target)
  print(modality, target, f"probe {acc:.3f} best constant {constant:.3f}")
  assert acc >= constant + 0.1, (modality, target, acc, constant)
  # A single modality's probe stays below what both modalities' noiseless content can tell.
  assert acc < builder.info.metadata["modality_ceiling_expected"][target]["fused"]["accuracy"]


def test_modality_shares_and_ceilings(probe_clips):
  builder, _ = probe_clips
  md = builder.info.metadata
  assert md["shares"] == sc.SHARES
  # Independent check of the shares: the squared correlation of each modality's driving curve with
  # the latent curve, per second over many films (independent segments of the same law).
  curves = [sc.modality_curves(PROBE, i) for i in range(300)]
  for i, c in enumerate(curves):
    v_T, a_T = render.latent_curves(np.random.default_rng(PROBE.seed + i), PROBE.film_seconds)
    c["latent"] = {"valence": v_T, "arousal": a_T}
  for m in sc.MODALITY_STREAMS:
    for t in sc.TARGETS:
      d = np.concatenate([c[m][t] for c in curves])
      z = np.concatenate([c["latent"][t] for c in curves])
      assert np.corrcoef(d, z)[0, 1] ** 2 == pytest.approx(sc.SHARES[m][t], abs=0.06), (m, t)
  for t in sc.TARGETS:
    exp = {g: v["accuracy"] for g, v in md["modality_ceiling_expected"][t].items()}
    assert set(exp) == {"picture", "sound", "fused", "latent"}
    # No modality alone reaches the fused ceiling; fusing stays below the latent's own ceiling.
    assert max(exp["picture"], exp["sound"]) + 0.03 < exp["fused"] < exp["latent"] - 0.05, exp
    assert 0.45 < min(exp["picture"], exp["sound"]), exp
    for split in sc.SPLITS:
      assert set(md["modality_ceiling_by_split"][split][t]) == set(exp)
    assert md["modality_ceiling"][t] == md["modality_ceiling_by_split"]["test"][t]


def test_contrast_and_pad_cues():
  rng = np.random.default_rng(0)
  frames = rng.integers(40, 216, (3, 20, 30, 3)).astype(np.uint8)
  arousal = np.array([-1.0, 0.0, 1.0])
  out = sc.apply_contrast(frames, arousal).astype(np.float64)
  f = frames.astype(np.float64)
  # Mean colour kept (valence's cues); spread about it scaled by 0.1, 10^-0.5, 1 (log-linear).
  np.testing.assert_allclose(out.mean(axis=(1, 2)), f.mean(axis=(1, 2)), atol=0.5)
  for i, c in enumerate([0.1, 10 ** -0.5, 1.0]):
    assert out[i].std() == pytest.approx(c * f[i].std(), rel=0.05, abs=0.3)
  # The pad: a sine at 2 kHz * 3.5^((v + 1) / 2) with amplitude 0.6 x the music's arousal gain.
  sr = clip_streams.SAMPLE_RATE
  for v, a in ((-1.0, 0.5), (0.0, -0.5), (1.0, 1.0)):
    pad = sc.add_pad(np.zeros(2 * sr, np.float32), np.full(2, v), np.full(2, a), sr)
    spectrum = np.abs(np.fft.rfft(pad)) / (pad.size / 2)
    peak_hz = np.argmax(spectrum) * sr / pad.size
    assert peak_hz == pytest.approx(2000 * 3.5 ** ((v + 1) / 2), abs=1.0)
    assert np.sqrt(2) * pad.std() == pytest.approx(0.6 * render.loudness_gain(a), rel=0.01)
