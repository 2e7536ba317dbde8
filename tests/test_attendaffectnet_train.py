"""AttendAffectNet through the harness: a training run on the toy dataset, and leave-one-film-out
on the cognimuse fixture tree (tiny films, features extracted by the builder)."""

import json

import numpy as np
import pytest
import scipy.stats

import dataset_fixtures as fx
from conftest import toy_data_dir
from configs import attendaffectnet as aan_config
from emojax import folds, train


def test_feature_temporal_trains_and_evaluates_on_the_toy_dataset(tmp_path):
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers it)
  c = aan_config.get_config("feature_temporal,arousal,runlocal")
  with c.unlocked():
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(toy_data_dir())
    c.inputs.streams = ("audio", "action")
    c.model.num_clips = 3
    c.model.encoder_layers = 1
    c.model.decoder_layers = 1
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.train.steps = 4
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
    c.train.eval_every_steps = 2
    c.checkpoint.every_steps = 2
  run = tmp_path / "run"
  flat = train.train_and_evaluate(c, run)
  records = json.loads((run / "phases.json").read_text())
  assert [r["name"] for r in records] == ["arousal/feature_temporal"]
  m = json.loads((run / "eval" / "test" / "metrics.json").read_text())
  assert flat["test/arousal/mse"] == pytest.approx(m["arousal"]["mse"])
  assert (run / "final_model").exists()


def test_leave_one_film_out_on_the_cognimuse_fixture(tmp_path):
  films = {k: fx.COGNIMUSE_FILMS[k] for k in ("BMI", "GLA", "SIL")}
  fx.write_cognimuse(tmp_path / "manual", films=films,
                     media_seconds={"BMI": 12, "GLA": 11, "SIL": 10.5})
  c = aan_config.get_config("feature,arousal,cognimuse,runlocal")
  with c.unlocked():
    c.dataset.config = "intended_5s"
    c.dataset.manual_dir = str(tmp_path / "manual")
    c.dataset.data_dir = str(tmp_path / "data")
    c.model.encoder_layers = 1
    c.data.batch_size = 2
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
    c.data.eval_batch_size = 4
    c.train.steps = 2
    c.train.eval_every_steps = 1
    c.checkpoint.every_steps = 1
  codes = tuple(films)
  with pytest.raises(Exception, match="unknown fold 'XYZ'"):
    folds.run_folds(c, tmp_path / "loo", folds=["XYZ"], films=codes)
  s = folds.run_folds(c, tmp_path / "loo", films=codes)
  assert sorted(s["folds"]) == sorted(codes)
  ts, ps = [], []
  for code in codes:
    rows = np.loadtxt(tmp_path / "loo" / f"fold_{code}" / "eval" / "test" / "predictions" /
                      f"{code}.csv", delimiter=",", skiprows=1, ndmin=2)
    ts.append(rows[:, 1])
    ps.append(rows[:, 2])
  t, p = np.concatenate(ts), np.concatenate(ps)
  assert s["pooled"]["arousal"]["mse"] == pytest.approx(np.mean((t - p) ** 2), rel=1e-5)
  assert s["pooled"]["arousal"]["pcc"] == pytest.approx(scipy.stats.pearsonr(t, p)[0], abs=1e-5)
  # A rerun skips every finished fold.
  again = folds.run_folds(c, tmp_path / "loo", films=codes,
                          train_fn=lambda *a: pytest.fail("a finished fold was trained again"))
  assert again["pooled"] == s["pooled"]


def _main(args):
  """main.py in-process (config overrides are read from sys.argv by ml_collections)."""
  import sys  # pylint: disable=import-outside-toplevel
  import main  # pylint: disable=import-outside-toplevel
  argv = ["main.py", *args]
  old = sys.argv
  try:
    sys.argv = argv
    main.FLAGS.unparse_flags()
    main.FLAGS(argv)
    return main.run("train")
  finally:
    sys.argv = old
    main.FLAGS.unparse_flags()
    for name in [n for n in main.FLAGS if n.startswith("config.")]:   # the overrides' flags
      delattr(main.FLAGS, name)


def test_mediaeval2016_global_trains_through_main_on_the_liris_fixture(tmp_path):
  """configs/attendaffectnet.py:mediaeval2016 on a LIRIS-ACCEDE + MediaEval 2016 Global tree with
  clips of different lengths (one example per clip, ragged per-second streams): Feature AAN and
  Temporal AAN (4 sub-segments) each train two steps and predict the 2 Global test clips."""
  import liris_fixture as lf  # pylint: disable=import-outside-toplevel
  manual = lf.write_tree(tmp_path / "manual", lf.Layout(videos=True, video_seconds=2.0))
  for i, c in enumerate(lf.ACCEDE[:4]):   # the real excerpts differ in length (8-12 s)
    lf.write_video(next(manual.rglob(f"{c.name}.mp4")), 2.0 + 0.6 * i, seed=40 + i)
  small = [f"--config.dataset.manual_dir={manual}", f"--config.dataset.data_dir={tmp_path / 'd'}",
           "--config.train.steps=2", "--config.train.epochs=0", "--config.train.eval_every_steps=1",
           "--config.train.eval_every_epochs=0", "--config.model.encoder_layers=1",
           "--config.model.decoder_layers=1", "--config.data.batch_size=4",
           "--config.data.eval_batch_size=4", "--config.checkpoint.every_steps=1",
           "--config.eval.plots=False"]   # no test reads the evaluation plots
  want = {n: a for n, _, a in lf.GLOBAL16}
  for variant in ("feature", "temporal"):
    run = tmp_path / variant
    assert _main([f"--config=configs/attendaffectnet.py:mediaeval2016,{variant},arousal",
                  f"--workdir={run}", *small]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["dataset"]["config"], config["inputs"]["unit"], config["model"]["num_clips"],
            config["optim"]["learning_rate"]) == ("mediaeval2016_global", "clip", 4, 0.01)
    assert [r["name"] for r in json.loads((run / "phases.json").read_text())] == [
        f"arousal/{variant}"]
    rows = np.genfromtxt(run / "eval" / "test" / "predictions.csv", delimiter=",", names=True,
                         dtype=None, encoding="utf-8")
    assert {str(n): float(t) for n, t in zip(rows["clip"], rows["arousal_true"])} == pytest.approx(
        want, abs=1e-5)
    assert np.isfinite(rows["arousal_pred"]).all()
    m = json.loads((run / "eval" / "test" / "metrics.json").read_text())["arousal"]
    assert m["mse"] == pytest.approx(np.mean((rows["arousal_true"] - rows["arousal_pred"]) ** 2),
                                     rel=1e-4)
    # No validation split: held-out training films chose the best step.
    assert json.loads((run / "holdout.json").read_text())["validation_films"]
