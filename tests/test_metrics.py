"""Tests of emojax.metrics against SciPy and closed forms."""

import math

import numpy as np
import pytest
from scipy import stats

from emojax import metrics
from emojax.errors import DataError


def test_hand_computed_example():
  # true = [1, 2, 3, 4], pred = [2, 2, 4, 5]: errors 1, 0, 1, 1.
  # means 2.5 / 3.25; cov = 5.5/4; var_t = 5/4; var_p = 6.75/4; (mean diff)^2 = 0.5625.
  # CCC = 2 * 1.375 / (1.25 + 1.6875 + 0.5625) = 2.75 / 3.5 = 11/14.
  t, p = [1, 2, 3, 4], [2, 2, 4, 5]
  got = metrics.regression_metrics(t, p)
  assert set(got) == {"mse", "rmse", "mae", "pcc", "ccc", "num_seconds"}
  assert got["mse"] == pytest.approx(0.75, abs=1e-15)
  assert got["rmse"] == pytest.approx(math.sqrt(0.75), abs=1e-15)
  assert got["mae"] == pytest.approx(0.75, abs=1e-15)
  assert got["ccc"] == pytest.approx(11 / 14, abs=1e-15)
  assert got["pcc"] == pytest.approx(1.375 / math.sqrt(1.25 * 1.6875), abs=1e-15)
  assert got["num_seconds"] == 4
  assert all(type(got[k]) is float for k in metrics.REGRESSION_KEYS)
  assert metrics.mse(t, p) == got["mse"] and metrics.ccc(t, p) == got["ccc"]
  assert metrics.mae(t, p) == got["mae"] and metrics.rmse(t, p) == got["rmse"]


@pytest.mark.parametrize("n", [2, 3, 17, 1000])
def test_pcc_matches_scipy(n):
  rng = np.random.default_rng(n)
  t = rng.normal(size=n).astype(np.float32)
  p = (0.3 * t + rng.normal(size=n)).astype(np.float32)
  assert metrics.pcc(t, p) == pytest.approx(stats.pearsonr(t.astype(np.float64), p).statistic,
                                            abs=1e-12)


def test_ccc_closed_forms():
  rng = np.random.default_rng(0)
  x = rng.normal(size=500)
  x -= x.mean()
  var = np.mean(x ** 2)
  assert metrics.ccc(x, x) == pytest.approx(1.0, abs=1e-12)
  assert metrics.ccc(x, -x) == pytest.approx(-1.0, abs=1e-12)
  # Shifted copy: 2 var / (2 var + c^2).
  assert metrics.ccc(x, x + 0.7) == pytest.approx(2 * var / (2 * var + 0.49), abs=1e-12)
  # Scaled zero-mean copy: 2a / (1 + a^2); PCC stays 1.
  assert metrics.ccc(x, 3 * x) == pytest.approx(6 / 10, abs=1e-12)
  assert metrics.pcc(x, 3 * x) == pytest.approx(1.0, abs=1e-12)


def test_ccc_against_direct_formula_with_numpy_moments():
  rng = np.random.default_rng(1)
  t, p = rng.uniform(-1, 1, 300), rng.uniform(-0.5, 0.8, 300)
  expected = 2 * np.cov(t, p, ddof=0)[0, 1] / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
  assert metrics.ccc(t, p) == pytest.approx(expected, abs=1e-12)


def test_constant_series():
  x = np.array([0.1, 0.1, 0.1, 0.1])  # mean has rounding error; must still count as constant.
  y = np.array([0.3, -0.2, 0.5, 0.0])
  assert math.isnan(metrics.pcc(x, y))
  assert math.isnan(metrics.pcc(y, x))
  assert math.isnan(metrics.pcc([0.5], [0.2]))
  # CCC: defined (0) when one is constant, nan when both are the same constant.
  assert metrics.ccc(y, x) == 0.0
  assert metrics.ccc(x, x + 0.2) == 0.0
  assert math.isnan(metrics.ccc(x, x))
  got = metrics.regression_metrics(x, x)
  assert got["mse"] == 0.0 and math.isnan(got["pcc"]) and math.isnan(got["ccc"])


def test_bad_inputs_raise_data_error():
  with pytest.raises(DataError, match="3 values but y_pred has 2"):
    metrics.mse([1, 2, 3], [1, 2])
  with pytest.raises(DataError, match="non-finite.*index 1"):
    metrics.pcc([1, 2, 3], [1, np.nan, 3])
  with pytest.raises(DataError, match="non-finite"):
    metrics.ccc([1, np.inf], [1, 2])
  with pytest.raises(DataError, match="empty"):
    metrics.mae([], [])
  with pytest.raises(DataError, match="film 'f1' / valence"):
    metrics.evaluate_films({"f1": {"valence": (np.zeros(3), np.zeros(4))}})


def test_accuracy():
  assert metrics.accuracy([-1, 0, 1, 1], [-1, 1, 1, 0]) == 0.5
  assert metrics.accuracy(np.array([1.0, 0.0]), np.array([1, 0])) == 1.0
  with pytest.raises(DataError):
    metrics.accuracy([1, 0], [1])


def test_evaluate_films_pools_and_splits():
  rng = np.random.default_rng(2)
  films = {}
  for i, n in enumerate([30, 7, 55]):
    films[f"film{i}"] = {
        "arousal": (rng.uniform(-1, 1, n).astype(np.float32), rng.uniform(-1, 1, n)),
        "valence": (rng.uniform(-1, 1, n), rng.uniform(-1, 1, n).astype(np.float32)),
    }
  films["only_valence"] = {"valence": (rng.uniform(-1, 1, 9), rng.uniform(-1, 1, 9))}
  got = metrics.evaluate_films(films)
  assert list(got) == ["valence", "arousal"]
  assert list(got["valence"]["per_film"]) == ["film0", "film1", "film2", "only_valence"]
  assert list(got["arousal"]["per_film"]) == ["film0", "film1", "film2"]
  for dim in ("valence", "arousal"):
    pairs = [f[dim] for f in films.values() if dim in f]
    t = np.concatenate([np.asarray(a, np.float64) for a, _ in pairs])
    p = np.concatenate([np.asarray(b, np.float64) for _, b in pairs])
    assert got[dim]["num_seconds"] == t.size
    assert got[dim]["mse"] == pytest.approx(np.mean((t - p) ** 2), abs=1e-14)
    assert got[dim]["pcc"] == pytest.approx(stats.pearsonr(t, p).statistic, abs=1e-12)
    # Pooled MSE is the seconds-weighted mean of the per-film MSEs.
    per = got[dim]["per_film"].values()
    weighted = sum(m["mse"] * m["num_seconds"] for m in per) / sum(m["num_seconds"] for m in per)
    assert got[dim]["mse"] == pytest.approx(weighted, abs=1e-14)
    for film_id, (a, b) in ((k, f[dim]) for k, f in films.items() if dim in f):
      assert got[dim]["per_film"][film_id] == metrics.regression_metrics(a, b)


def test_evaluate_films_rejects_empty():
  with pytest.raises(DataError):
    metrics.evaluate_films({})


def test_evaluate_films_decodes_bytes_ids():
  got = metrics.evaluate_films({b"MEDIAEVAL18_54": {"valence": ([0.0, 1.0], [0.0, 0.5])}})
  assert list(got["valence"]["per_film"]) == ["MEDIAEVAL18_54"]


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e76, 1e160, 1e300])
def test_pcc_and_ccc_do_not_overflow_on_huge_or_tiny_values(scale):
  """PCC at any finite scale equals scipy's pearsonr on the unscaled data (scipy itself overflows
  at 1e160); CCC is scale invariant, so it equals the closed form on the unscaled data."""
  rng = np.random.default_rng(7)
  t = rng.normal(size=200)
  p = 0.6 * t + rng.normal(size=200)
  expected = stats.pearsonr(t, p).statistic
  assert metrics.pcc(t * scale, p * scale) == pytest.approx(expected, abs=1e-12)
  assert metrics.pcc(t * scale, p) == pytest.approx(expected, abs=1e-12)
  cov = np.mean((t - t.mean()) * (p - p.mean()))
  ccc = 2 * cov / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
  assert metrics.ccc(t * scale, p * scale) == pytest.approx(ccc, abs=1e-12)
  if scale <= 1e76:  # beyond, the mse itself exceeds float64 (inf, correctly)
    got = metrics.regression_metrics(t * scale, p * scale)
    assert got["pcc"] == pytest.approx(expected, abs=1e-12)


def test_pcc_near_float_max_and_offsets():
  """Values at 1e308 with a large offset: the mean cannot overflow; constants stay nan."""
  t = np.array([1.0, 2.0, 3.0, 5.0]) * 1e307
  p = np.array([1.7, 1.1, 1.6, 1.79]) * 1e308
  assert metrics.pcc(t, p) == pytest.approx(
      stats.pearsonr(t / 1e307, p / 1e308).statistic, abs=1e-12)
  assert math.isnan(metrics.pcc(np.full(4, 1.7e308), p))
  assert metrics.pcc(1e300 + np.arange(5.0) * 1e292, np.arange(5.0)) == pytest.approx(1.0, abs=1e-7)
