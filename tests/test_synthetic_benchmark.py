"""The synthetic benchmark: determinism, format, splits, ceiling, and a learnable signal."""

import dataclasses
import pathlib

import numpy as np
import pytest
from scipy import stats

from emojax import errors
from emojax.datasets import synthetic_benchmark as sb

SMALL = {c.name: c for c in sb.SyntheticBenchmark.BUILDER_CONFIGS}["small"]


def _prepare(data_dir, config="small"):
  builder = sb.SyntheticBenchmark(config=config, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  # A fresh builder reads everything back from disk, as the harness does.
  return sb.SyntheticBenchmark(config=config, data_dir=data_dir, file_format="array_record")


def _films(builder):
  sources = builder.as_data_source()
  return {split: [sources[split][i] for i in range(len(sources[split]))] for split in sources}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  return _prepare(tmp_path_factory.mktemp("data"))


def _record_bytes(builder) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(pathlib.Path(builder.data_dir).iterdir())
          if "array_record" in p.name}


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
  again = _prepare(tmp_path / "again")
  assert len(_record_bytes(small)) == 3
  assert _record_bytes(again) == _record_bytes(small)
  assert dict(again.info.metadata) == dict(small.info.metadata)
  other_cfg = dataclasses.replace(SMALL, name="small_seed1", seed=1)
  other = _films(_prepare(tmp_path / "other", other_cfg))
  mine = _films(small)
  for split in sb.SPLITS:
    for a, b in zip(mine[split], other[split]):
      assert a["audio"].shape != b["audio"].shape or not np.allclose(a["audio"], b["audio"])


def test_shapes_dtypes_and_label_range(small):
  md = small.info.metadata
  for split, films in _films(small).items():
    for film in films:
      fid = film["film_id"].decode()
      t = md["seconds"][fid]
      assert SMALL.min_seconds <= t <= SMALL.max_seconds
      for m, d in SMALL.dims.items():
        assert film[m].shape == (t, d) and film[m].dtype == np.float32
        assert np.isfinite(film[m]).all()
      for target in sb.TARGETS:
        y = film[target]
        assert y.shape == (t,) and y.dtype == np.float32
        assert -1.0 <= y.min() and y.max() <= 1.0 and y.std() > 0.01


def test_splits_are_disjoint_films(small):
  films = _films(small)
  ids = {s: [f["film_id"].decode() for f in films[s]] for s in films}
  assert {s: len(v) for s, v in ids.items()} == {
      "train": SMALL.num_train, "validation": SMALL.num_validation, "test": SMALL.num_test}
  assert {s: sorted(v) for s, v in ids.items()} == small.info.metadata["splits"]
  flat = sum(ids.values(), [])
  assert len(set(flat)) == len(flat) == SMALL.num_films


def _inertia_loop(x, tau):
  """Reference first-order annotator lag, written from the equation."""
  alpha = 1.0 - np.exp(-1.0 / tau)
  y = np.empty_like(x)
  y[0] = x[0]
  for t in range(1, len(x)):
    y[t] = y[t - 1] + alpha * (x[t] - y[t - 1])
  return y


def test_ceiling_matches_recomputation(small):
  """Metadata ceiling == stored noisy test labels against independently regenerated latents."""
  md = small.info.metadata
  test = sorted(_films(small)["test"], key=lambda f: f["film_id"])
  p = SMALL.params
  for target, tau, noise_std in zip(sb.TARGETS, p.inertia_tau_s, p.label_noise_std):
    noisy, clean, latent, film_pccs = [], [], [], []
    for film in test:
      index = int(film["film_id"].decode().split("_")[1])
      z = sb.generate_latents(SMALL.seed, index, len(film[target]), SMALL.params)[target]
      noisy.append(film[target])
      clean.append(_inertia_loop(z, tau))
      latent.append(z)
      film_pccs.append(stats.pearsonr(clean[-1], noisy[-1].astype(np.float64))[0])
    noisy, clean, latent = (np.concatenate(x).astype(np.float64) for x in (noisy, clean, latent))
    for stored, pred in ((md["ceiling"][target], clean), (md["ceiling_latent"][target], latent)):
      assert stored["pcc"] == pytest.approx(stats.pearsonr(pred, noisy)[0], rel=1e-6)
      assert stored["mse"] == pytest.approx(np.mean((pred - noisy) ** 2), rel=1e-6)
    assert md["ceiling"][target]["film_pcc"] == pytest.approx(np.mean(film_pccs), rel=1e-6)
    # Labels are the clean signal plus noise of the configured size (clipping aside).
    assert np.std(noisy - clean) == pytest.approx(noise_std, rel=0.35)
  assert md["ceiling_by_split"]["test"] == md["ceiling"]
  assert md["params"] == SMALL.fingerprint()


def test_numpy_pieces_against_references():
  rng = np.random.default_rng(0)
  x = rng.standard_normal(300)
  np.testing.assert_allclose(sb.first_order_lag(x, 4.0), _inertia_loop(x, 4.0), atol=1e-12)
  for lo, hi in ((0, 2), (-5, 5), (-20, 20), (3, 7), (-4, -1)):
    xp = np.concatenate([np.full(40, x[0]), x, np.full(40, x[-1])])
    brute = np.array([np.mean([xp[40 + t - lag] for lag in range(lo, hi + 1)]) for t in range(300)])
    np.testing.assert_allclose(sb.lagged_window_mean(x, lo, hi), brute, atol=1e-12)
  a = sb.ar1(rng, 200_000, 0.5, 10.0)
  assert np.std(a) == pytest.approx(0.5, rel=0.05)
  assert np.corrcoef(a[1:], a[:-1])[0, 1] == pytest.approx(np.exp(-0.1), abs=0.01)
  lat = sb.generate_latents(3, 7, 2400, sb.GeneratorParams())
  for z in lat.values():
    assert z.shape == (2400,) and np.abs(z).max() < 1.0 and z.std() > 0.1


def test_default_config_sizes():
  cfg = {c.name: c for c in sb.SyntheticBenchmark.BUILDER_CONFIGS}["default"]
  assert cfg.dims == {"audio": 128, "scene": 512, "expression": 3072, "action": 128}
  assert (cfg.num_train, cfg.num_validation, cfg.num_test) == (16, 4, 4)
  lengths = sb.film_lengths(cfg)
  assert len(lengths) == 24 and 600 <= min(lengths) and max(lengths) <= 2400
  maps = sb.modality_maps(cfg)
  assert maps["expression"]["w2"].shape == (cfg.map_hidden, 3072)
  assert maps["expression"]["w2"].dtype == np.float32


def test_custom_config_and_name_collision(small, tmp_path):
  tiny = sb.SyntheticBenchmarkConfig(
      name="tiny", audio_dim=3, scene_dim=4, expression_dim=5, action_dim=6, num_train=1,
      num_validation=1, num_test=1, min_seconds=30, max_seconds=40, map_hidden=4)
  films = _films(_prepare(tmp_path, tiny))
  assert films["test"][0]["action"].shape[1] == 6
  clash = dataclasses.replace(tiny, audio_dim=7)
  with pytest.raises(errors.ConfigError, match="audio_dim: cached 3 != given 7.*new name"):
    sb.SyntheticBenchmark(config=clash, data_dir=tmp_path, file_format="array_record")
  with pytest.raises(errors.ConfigError, match="min_seconds"):
    sb.SyntheticBenchmark(config=dataclasses.replace(tiny, name="bad", min_seconds=50),
                          data_dir=tmp_path)
  bad_carrier = sb.GeneratorParams(carriers=(("audio", "dominance", sb.Carrier(0, 1, 1.0)),))
  with pytest.raises(errors.ConfigError, match="dominance"):
    sb.SyntheticBenchmark(config=dataclasses.replace(tiny, name="bad2", params=bad_carrier),
                          data_dir=tmp_path)


def _ridge_fit(x_NxD, y_N, lam):
  mx, my = x_NxD.mean(0), y_N.mean()
  xc = x_NxD - mx
  w = np.linalg.solve(xc.T @ xc + lam * len(xc) * np.eye(xc.shape[1]), xc.T @ (y_N - my))
  return lambda x: (x - mx) @ w + my


def _clip_means(x_T, clip=10):
  n = len(x_T) // clip
  return x_T[: n * clip].reshape(n, clip, *x_T.shape[1:]).mean(1)


def test_signal_is_learnable_beyond_one_second():
  """Clip-mean features beat per-second features, and each modality carries its dimensions."""
  cfg = sb.SyntheticBenchmarkConfig(
      name="learn", audio_dim=16, scene_dim=32, expression_dim=48, action_dim=16, num_train=40,
      num_validation=1, num_test=16, min_seconds=300, max_seconds=400, map_hidden=16)
  lengths = sb.film_lengths(cfg)
  maps = sb.modality_maps(cfg)
  splits = cfg.split_films()
  films = {i: sb.generate_film(cfg, i, lengths[i], maps) for i in splits["train"] + splits["test"]}

  def test_pcc(target, modalities, clip):
    def xy(i):
      x = np.concatenate([films[i][m] for m in modalities], -1).astype(np.float64)
      y = films[i][target].astype(np.float64)
      n = len(x) // 10 * 10
      return (_clip_means(x), _clip_means(y)) if clip else (x[:n], y[:n])
    xs, ys = zip(*(xy(i) for i in splits["train"]))
    predict = _ridge_fit(np.concatenate(xs), np.concatenate(ys), 0.1)
    pred, true = [], []
    for i in splits["test"]:
      x, _ = xy(i)
      p = predict(x)
      pred.append(np.repeat(p, 10) if clip else p)
      true.append(films[i][target][:len(pred[-1])])
    return np.corrcoef(np.concatenate(pred), np.concatenate(true))[0, 1]

  for target, mods in (("valence", ("audio", "scene", "expression")),
                       ("arousal", ("audio", "scene", "action"))):
    per_second, per_clip = test_pcc(target, mods, False), test_pcc(target, mods, True)
    assert per_clip > per_second + 0.2, (target, per_second, per_clip)
  # Expression carries valence, not arousal; action carries arousal, not valence (any residual
  # correlation is chance: the two latents are drawn independently).
  ev, ea = test_pcc("valence", ("expression",), True), test_pcc("arousal", ("expression",), True)
  av, aa = test_pcc("valence", ("action",), True), test_pcc("arousal", ("action",), True)
  print(f"expression: valence {ev:.3f} arousal {ea:.3f}; action: valence {av:.3f} arousal {aa:.3f}")
  assert ev > abs(ea) + 0.15 and aa > abs(av) + 0.15
