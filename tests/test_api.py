"""emojax.api on the session's films run: what it returns against the files the run wrote."""

import csv
import json

import numpy as np
import pytest

from conftest import MEDIA_FIXTURE
from emojax import api, errors


@pytest.fixture
def run(films_run):
  """The session's films run (conftest.films_run, shared with test_predict.py)."""
  return films_run[1] / "run"


def test_config_phases_metrics_and_predictions(run):
  r = api.load_run(str(run))
  saved = json.loads((run / "config.json").read_text())
  assert r.config.method == saved["method"] == "two_timescale"
  assert tuple(r.config.targets) == ("arousal",)
  assert [p["name"] for p in r.phases] == [
      p["name"] for p in json.loads((run / "phases.json").read_text())]
  assert r.splits == ["test", "validation"]
  assert "two_timescale" in repr(r)
  for split in r.splits:
    m = r.metrics(split)
    assert m == json.loads((run / "eval" / split / "metrics.json").read_text())
    preds = r.predictions(split)
    assert set(preds) == set(m["arousal"]["per_film"])
    # The pooled PCC of the metrics is the PCC of the predictions of every film, concatenated.
    t = np.concatenate([p["arousal_true"] for p in preds.values()])
    y = np.concatenate([p["arousal_pred"] for p in preds.values()])
    assert m["arousal"]["pcc"] == pytest.approx(np.corrcoef(t, y)[0, 1], abs=1e-5)
    for film, p in preds.items():
      assert p["second"].tolist() == list(range(len(p["second"])))
      assert m["arousal"]["per_film"][film]["num_seconds"] == len(p["second"])
    assert r.summary()[f"{split}/arousal/pcc"] == pytest.approx(m["arousal"]["pcc"])
  with pytest.raises(errors.ConfigError, match=r"split 'train' .* not evaluated \(evaluated: "
                     r"test, validation\); python main.py --mode=evaluate"):
    r.metrics("train")


def test_predict_film_returns_the_curve_predict_mode_writes(run, tmp_path):
  r = api.load_run(run)
  assert r.can_predict
  curve = r.predict_film(MEDIA_FIXTURE, output=tmp_path / "out")
  with open(tmp_path / "out" / "bigbuckbunny.csv", newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["second", "arousal"] and sorted(curve) == ["arousal", "second"]
  np.testing.assert_array_equal(curve["second"], [int(x[0]) for x in rows[1:]])
  np.testing.assert_array_equal(curve["arousal"], [float(x[1]) for x in rows[1:]])
  assert curve["second"].tolist() == [0, 1, 2, 3, 4]   # floor(5.3 s) of the fixture film
  assert np.all(np.abs(curve["arousal"]) <= 1.0)
  with pytest.raises(errors.DataError, match="not a video file"):
    r.predict_film(tmp_path / "none.mp4")


def test_a_folder_that_is_no_run_and_per_clip_predictions(tmp_path):
  with pytest.raises(errors.ConfigError, match="is not a training workdir"):
    api.load_run(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps({"method": "fusion_lstm",
                                                    "targets": ["arousal"]}))
  (tmp_path / "eval" / "test").mkdir(parents=True)
  (tmp_path / "eval" / "test" / "metrics.json").write_text('{"arousal": {"accuracy": 0.5}}')
  (tmp_path / "eval" / "test" / "predictions.csv").write_text(
      "clip,film,arousal_true,arousal_pred\nc0,f0,0,2\nc1,f0,1,1\n")
  r = api.load_run(tmp_path)
  assert not r.can_predict
  clips = r.predictions("test")["clips"]
  assert clips["clip"].tolist() == ["c0", "c1"]
  np.testing.assert_array_equal(clips["arousal_pred"], [2.0, 1.0])
