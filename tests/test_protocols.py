"""Tests of emojax.protocols against hand-computed values."""

import math

import numpy as np
import pytest

from emojax import protocols
from emojax.errors import DataError


def test_mediaeval2018_clip_predictions_repeated():
  # Film A: true [1, 2], one 2 s clip predicting 1 -> [1, 1].
  # Film B: true [3, 4, 5], clips [4, 5] -> [4, 4, 5] (last clip partial).
  # Pooled: true [1..5], pred [1, 1, 4, 4, 5]: errors 0, -1, 1, 0, 0 -> MSE 2/5.
  # Both means 3; deviations [-2,-1,0,1,2] and [-2,-2,1,1,2]: PCC = 11 / sqrt(10 * 14).
  films = {"A": ([1, 2], [1]), "B": ([3, 4, 5], [4, 5])}
  got = protocols.mediaeval2018(films, clip_seconds=2)
  assert got["mse"] == pytest.approx(0.4, abs=1e-15)
  assert got["pcc"] == pytest.approx(11 / math.sqrt(140), abs=1e-15)
  assert got["num_seconds"] == 5
  assert got["per_film"]["A"]["mse"] == pytest.approx(0.5, abs=1e-15)
  assert math.isnan(got["per_film"]["A"]["pcc"])  # Constant prediction.
  assert got["per_film"]["B"]["mse"] == pytest.approx(1 / 3, abs=1e-15)  # Errors 1, 0, 0.
  # Same numbers from per-second predictions.
  per_second = protocols.mediaeval2018({"A": ([1, 2], [1, 1]), "B": ([3, 4, 5], [4, 4, 5])})
  for key in ("mse", "pcc", "num_seconds"):
    assert per_second[key] == got[key]
  assert per_second["per_film"]["B"] == got["per_film"]["B"]


def test_mediaeval2018_per_dim_and_errors():
  films = {"A": {"arousal": ([0.0, 1.0], [0.0, 0.5]), "valence": ([1.0, 0.0], [1.0, 0.0])}}
  got = protocols.mediaeval2018(films)
  assert list(got) == ["valence", "arousal"]
  assert got["valence"]["mse"] == 0.0 and got["valence"]["pcc"] == pytest.approx(1.0)
  assert got["arousal"]["mse"] == pytest.approx(0.125)
  with pytest.raises(DataError, match="film 'A'.*ceil\\(3/2\\) = 2"):
    protocols.mediaeval2018({"A": ([1, 2, 3], [1])}, clip_seconds=2)
  with pytest.raises(DataError, match="3 values but y_pred has 2"):
    protocols.mediaeval2018({"A": ([1, 2, 3], [1, 2])})
  with pytest.raises(DataError, match="mix"):
    protocols.mediaeval2018({"A": ([1], [1]), "B": {"valence": ([1], [1])}})


def test_mediaeval2015_accuracy():
  got = protocols.mediaeval2015_accuracy(
      {"arousal": np.array([0, 0, 1]), "valence": [1, 0, -1, 1]},
      {"valence": [1, 1, -1, 0], "arousal": [0.0, 0.0, 1.0]})
  assert got == {"valence": {"accuracy": 0.5, "num_clips": 4},
                 "arousal": {"accuracy": 1.0, "num_clips": 3}}
  assert protocols.mediaeval2015_accuracy([1, -1, 0], [1, 0, 0]) == {
      "accuracy": pytest.approx(2 / 3), "num_clips": 3}
  with pytest.raises(DataError, match="class 2.0 at index 1"):
    protocols.mediaeval2015_accuracy([1, 2], [1, 1])
  with pytest.raises(DataError, match="differ"):
    protocols.mediaeval2015_accuracy({"valence": [1]}, {"arousal": [1]})


def test_cognimuse_lofo_pools_segments():
  folds = {"BMI": ([0.2, 0.4], [0.1, 0.5]), "CHI": ([-0.2, 0.0, 0.2], [0.0, 0.0, 0.0])}
  got = protocols.cognimuse_lofo(folds)
  # Errors -0.1, 0.1, 0.2, 0, -0.2 -> MSE 0.10 / 5. Means 0.12 / 0.12;
  # deviations [.08, .28, -.32, -.12, .08] and [-.02, .38, -.12, -.12, -.12].
  assert got["mse"] == pytest.approx(0.02, abs=1e-15)
  assert got["pcc"] == pytest.approx(0.148 / math.sqrt(0.208 * 0.188), abs=1e-12)
  assert got["num_segments"] == 5
  assert got["per_fold"]["BMI"] == {"mse": pytest.approx(0.01), "pcc": pytest.approx(1.0),
                                    "num_segments": 2}
  assert got["per_fold"]["CHI"]["mse"] == pytest.approx(0.08 / 3)
  assert math.isnan(got["per_fold"]["CHI"]["pcc"])
  per_dim = protocols.cognimuse_lofo({k: {"arousal": v} for k, v in folds.items()})
  assert list(per_dim) == ["arousal"] and per_dim["arousal"]["mse"] == got["mse"]


def test_liris_discrete_with_pvalue():
  # true [1, 2, 3, 4], pred [2, 2, 4, 5]: MSE 0.75, r = 1.375 / sqrt(1.25 * 1.6875).
  # With N - 2 = 2 degrees of freedom the two-sided p-value is 1 - |t| / sqrt(2 + t^2),
  # t = r sqrt(2) / sqrt(1 - r^2).
  got = protocols.liris_discrete({"valence": [1, 2, 3, 4]}, {"valence": [2, 2, 4, 5]})
  r = 1.375 / math.sqrt(1.25 * 1.6875)
  t = r * math.sqrt(2) / math.sqrt(1 - r * r)
  assert got["valence"]["mse"] == pytest.approx(0.75, abs=1e-15)
  assert got["valence"]["pcc"] == pytest.approx(r, abs=1e-14)
  assert got["valence"]["pcc_pvalue"] == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
  assert got["valence"]["num_clips"] == 4
  const = protocols.liris_discrete([1, 2, 3], [0, 0, 0])
  assert math.isnan(const["pcc"]) and math.isnan(const["pcc_pvalue"])
  with pytest.raises(DataError, match="both arguments"):
    protocols.liris_discrete({"valence": [1]}, [1])
