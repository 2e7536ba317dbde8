"""Tests of emojax.reporting: the evaluation-output contract on disk."""

import csv
import hashlib
import json
import math

import numpy as np
import pytest

from emojax import metrics, reporting
from emojax.errors import DataError


def _read_csv(path):
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  return rows[0], rows[1:]


def _films():
  rng = np.random.default_rng(0)
  return {
      "MEDIAEVAL18_54": {
          "arousal": (rng.uniform(-1, 1, 23).astype(np.float32),
                      rng.uniform(-1, 1, 23).astype(np.float32)),
          "valence": (rng.uniform(-1, 1, 23), rng.uniform(-1, 1, 23)),
      },
      # Unsafe id; constant true series -> pcc undefined (null in JSON).
      "Film/2 (cut)": {"valence": (np.full(5, 0.25, np.float32),
                                   np.array([0.1, 0.2, 0.3, 0.2, 0.1], np.float32))},
  }


def test_safe_filename():
  assert reporting.safe_filename("MEDIAEVAL18_00") == "MEDIAEVAL18_00"
  assert reporting.safe_filename(b"ACCEDE00001.mp4") == "ACCEDE00001.mp4"
  h = hashlib.sha1("a/b".encode()).hexdigest()[:8]
  assert reporting.safe_filename("a/b") == f"a_b-{h}"
  assert reporting.safe_filename("a b") != reporting.safe_filename("a/b")
  assert reporting.safe_filename("a_b") == "a_b"
  assert reporting.safe_filename("..") .startswith("film-")
  assert reporting.safe_filename(".hidden").startswith("hidden-")
  assert reporting.safe_filename("é") == "_-" + hashlib.sha1("é".encode()).hexdigest()[:8]
  assert len(reporting.safe_filename("x" * 300)) == 100 + 9


def test_write_eval_outputs(tmp_path):
  films = _films()
  out = tmp_path / "eval" / "test"
  got = reporting.write_eval_outputs(out, films, plot=True)
  expected = metrics.evaluate_films(films)
  assert got.keys() == expected.keys()

  on_disk = json.loads((out / "metrics.json").read_text())
  assert list(on_disk) == ["valence", "arousal"]
  assert set(on_disk["valence"]["per_film"]) == {"MEDIAEVAL18_54", "Film/2 (cut)"}
  assert on_disk["valence"]["per_film"]["Film/2 (cut)"]["pcc"] is None
  assert on_disk["valence"]["per_film"]["Film/2 (cut)"]["ccc"] == 0.0
  for dim in ("valence", "arousal"):
    for k in metrics.REGRESSION_KEYS:
      assert on_disk[dim][k] == pytest.approx(expected[dim][k], abs=0)
  assert math.isnan(got["valence"]["per_film"]["Film/2 (cut)"]["pcc"])

  header, rows = _read_csv(out / "predictions" / "MEDIAEVAL18_54.csv")
  assert header == ["second", "valence_true", "valence_pred", "arousal_true", "arousal_pred"]
  assert len(rows) == 23
  table = np.array(rows, dtype=np.float64)
  np.testing.assert_array_equal(table[:, 0], np.arange(23))
  assert all(r[0] == str(i) for i, r in enumerate(rows))
  f = films["MEDIAEVAL18_54"]
  np.testing.assert_array_equal(table[:, 1], f["valence"][0])  # float64 round-trips exactly.
  np.testing.assert_array_equal(table[:, 2], f["valence"][1])
  # float32 columns round-trip exactly in float32 and are written short.
  np.testing.assert_array_equal(np.array([r[3] for r in rows], np.float32), f["arousal"][0])
  assert max(len(r[4]) for r in rows) <= 16

  name = reporting.safe_filename("Film/2 (cut)")
  header, rows = _read_csv(out / "predictions" / f"{name}.csv")
  assert header == ["second", "valence_true", "valence_pred"]
  assert rows[0] == ["0", "0.25", "0.1"]

  pngs = sorted(p.name for p in (out / "plots").iterdir())
  assert pngs == sorted(["MEDIAEVAL18_54.png", f"{name}.png"])
  assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (out / "plots").iterdir())
  assert not list(out.rglob("*.tmp"))


def test_write_eval_outputs_without_plots_and_errors(tmp_path):
  reporting.write_eval_outputs(tmp_path / "a", _films(), plot=False)
  assert not (tmp_path / "a" / "plots").exists()
  bad = {"f": {"valence": (np.zeros(4), np.zeros(4)), "arousal": (np.zeros(3), np.zeros(3))}}
  with pytest.raises(DataError, match="different numbers of seconds"):
    reporting.write_eval_outputs(tmp_path / "b", bad)
  with pytest.raises(DataError, match="non-finite"):
    reporting.write_eval_outputs(tmp_path / "c", {"f": {"valence": ([0.0, 1.0], [np.nan, 0])}})
  assert not (tmp_path / "c" / "metrics.json").exists()


def test_write_prediction_csv(tmp_path):
  path = tmp_path / "pred" / "x.csv"
  reporting.write_prediction_csv(path, 3, {"arousal": np.array([0.5, -0.25, 0.0], np.float32),
                                           "valence": [0.1, 0.2, 0.3]})
  header, rows = _read_csv(path)
  assert header == ["second", "valence", "arousal"]
  assert rows == [["0", "0.1", "0.5"], ["1", "0.2", "-0.25"], ["2", "0.3", "0.0"]]
  reporting.write_prediction_csv(path, np.array([10.0, 11.0]), {"valence": [0.0, 1.0]})
  assert _read_csv(path) == (["second", "valence"], [["10", "0.0"], ["11", "1.0"]])
  with pytest.raises(DataError, match="different lengths"):
    reporting.write_prediction_csv(path, 2, {"valence": [0.0, 1.0], "arousal": [0.0]})
  with pytest.raises(DataError, match="3 seconds for 2 values"):
    reporting.write_prediction_csv(path, [0, 1, 2], {"valence": [0.0, 1.0]})
