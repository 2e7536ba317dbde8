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


def _write_eval(eval_dir, films, metrics_json=True):
  """films: id -> {dim: (true, pred)} written as the harness writes them."""
  from emojax import reporting  # pylint: disable=import-outside-toplevel
  films = {f: {d: (np.asarray(t, np.float32), np.asarray(p, np.float32)) for d, (t, p) in v.items()}
           for f, v in films.items()}
  reporting.write_eval_outputs(eval_dir, films, plot=False)
  if not metrics_json:
    (eval_dir / "metrics.json").unlink()
  return eval_dir


def test_official_numbers_mediaeval2018_reads_the_listed_films(tmp_path):
  # Pooled: true [1, 2, 3, 4, 5], pred [1, 1, 4, 4, 5]: MSE 2/5, PCC 11 / sqrt(140).
  eval_dir = _write_eval(tmp_path / "eval" / "test", {
      "MEDIAEVAL18_54": {"valence": ([1, 2], [1, 1])},
      "MEDIAEVAL18_55": {"valence": ([3, 4, 5], [4, 4, 5])}})
  stale = eval_dir / "predictions" / "MEDIAEVAL18_99.csv"  # from an older evaluation
  stale.write_text("second,valence_true,valence_pred\n0,1,-1\n")
  got = protocols.official_numbers("mediaeval2018", "official_features", eval_dir)
  assert got["valence"]["mse"] == pytest.approx(0.4, abs=1e-15)
  assert got["valence"]["pcc"] == pytest.approx(11 / math.sqrt(140), abs=1e-15)
  assert sorted(got["valence"]["per_film"]) == ["MEDIAEVAL18_54", "MEDIAEVAL18_55"]
  (eval_dir / "metrics.json").unlink()  # predictions from elsewhere: every CSV counts
  assert protocols.official_numbers("mediaeval2018", "", eval_dir)["valence"]["num_seconds"] == 6
  stale.write_text("second,valence_true,valence_pred\n0,1\n")
  with pytest.raises(DataError, match="MEDIAEVAL18_99.csv:2: expected 3 numbers"):
    protocols.official_numbers("mediaeval2018", "", eval_dir)
  stale.write_text("second,valence,arousal\n0,1,1\n")
  with pytest.raises(DataError, match="MEDIAEVAL18_99.csv:1: header"):
    protocols.official_numbers("mediaeval2018", "", eval_dir)
  with pytest.raises(DataError, match="no prediction CSVs"):
    protocols.official_numbers("mediaeval2018", "", tmp_path / "nothing")
  with pytest.raises(DataError, match="no official protocol for dataset 'films'"):
    protocols.official_numbers("films", "", eval_dir)


def test_official_numbers_per_clip_benchmarks(tmp_path):
  # One CSV per clip: the clip's label is constant, its prediction the mean of its rows.
  clips = {"ACCEDE00001": {"valence": ([3, 3], [2, 4]), "arousal": ([2, 2], [0.4, 0.8])},
           "ACCEDE00002": {"valence": ([1, 1, 1], [1, 2, 3]), "arousal": ([-1, -1, -1],
                                                                          [-0.2, -0.6, -0.7])},
           "ACCEDE00003": {"valence": ([2], [1]), "arousal": ([0], [0.1])}}
  eval_dir = _write_eval(tmp_path / "discrete", clips)
  got = protocols.official_numbers("liris_accede", "discrete_vggish_logmel", eval_dir)
  # valence: true [3, 1, 2], pred [3, 2, 1] -> MSE 2/3; deviations [1,-1,0], [1,0,-1]: PCC 1/2.
  assert got["valence"]["mse"] == pytest.approx(2 / 3, abs=1e-15)
  assert got["valence"]["pcc"] == pytest.approx(0.5, abs=1e-15)
  assert got["valence"]["num_clips"] == 3
  # MediaEval 2015 labels are classes -1/0/1: the discrete table (valence 3) is refused.
  with pytest.raises(DataError, match="class 3.0 at index 0"):
    protocols.official_numbers("liris_accede", "mediaeval2015", eval_dir)
  clips15 = {k: {"arousal": v["arousal"]} for k, v in clips.items()}
  clips15["ACCEDE00001"]["arousal"] = ([1, 1], [0.4, 0.8])  # mean 0.6 -> class 1
  eval15 = _write_eval(tmp_path / "me15", clips15)
  # Predicted classes: 0.6 -> 1, -0.5 -> -1, 0.1 -> 0; true 1, -1, 0: all right.
  got15 = protocols.official_numbers("liris_accede", "mediaeval2015_annotations", eval15)
  assert got15 == {"arousal": {"accuracy": 1.0, "num_clips": 3}}
  np.testing.assert_array_equal(protocols.nearest_class([0.49, 0.5, -0.5, -0.51, 7, -0.2]),
                                [0, 1, -1, -1, 1, 0])
  per_second = _write_eval(tmp_path / "films", {"A": {"valence": ([0.1, 0.2], [0, 0])}})
  with pytest.raises(DataError, match="not one constant label"):
    protocols.official_numbers("liris_accede", "discrete", per_second)


def test_official_numbers_cognimuse_folds(tmp_path):
  # The folds of test_cognimuse_lofo_pools_segments, one run (test folder) per held-out film.
  bmi = _write_eval(tmp_path / "fold_BMI" / "eval" / "test",
                    {"BMI": {"valence": ([0.2, 0.4], [0.1, 0.5])}})
  chi = _write_eval(tmp_path / "fold_CHI" / "eval" / "test",
                    {"CHI": {"valence": ([-0.2, 0.0, 0.2], [0.0, 0.0, 0.0])}})
  got = protocols.official_numbers("cognimuse", "intended_5s", [bmi, chi])
  assert got["valence"]["mse"] == pytest.approx(0.02, abs=1e-9)  # float32 labels in the CSVs
  assert got["valence"]["pcc"] == pytest.approx(0.148 / math.sqrt(0.208 * 0.188), abs=1e-6)
  assert sorted(got["valence"]["per_fold"]) == ["BMI", "CHI"]
  with pytest.raises(DataError, match="held out in more than one"):
    protocols.official_numbers("cognimuse", "intended_5s", [bmi, bmi])
