"""Predict mode for per-clip families, as a user types it: a tiny run trained through main.py,
then `--mode=predict --video=<the fixture film>`; the CSV is checked against the model's forward on
features extracted separately (extract_film + windows cut by hand), not through the store."""

import csv
import json

import ml_collections
import numpy as np
import pytest

import refusals
from conftest import MEDIA_FIXTURE
from emojax import contract, evaluate, layout
from emojax.features import extract, frame_clips


def _train(tmp_path, config, *overrides, epochs=1.0):
  """A run of one or two steps (`epochs` of the toy data) through main.py."""
  run = tmp_path / "run"
  code, err = refusals.run_main("--mode=train", f"--config={config}", f"--workdir={run}",
                                f"--config.dataset.data_dir={tmp_path / 'data'}",
                                f"--config.train.epochs={epochs}",
                                f"--config.train.eval_every_epochs={epochs}",
                                "--config.checkpoint.every_steps=100",
                                "--config.eval.plots=False",   # (predict's own plot is read)
                                *overrides)
  assert code == 0, err[-3000:]
  return run


def _predict(run, out):
  return refusals.run_main("--mode=predict", f"--workdir={run}", f"--video={MEDIA_FIXTURE}",
                           f"--output={out}")


def _loaded(run):
  config = ml_collections.ConfigDict(layout.upgrade(json.loads((run / "config.json").read_text())))
  method, model, _, _ = evaluate.load_trained_model(config, run / "final_model")
  model.eval()
  return config, method, model


def _forward(config, method, model, x, x_mask):
  batch = {"x": x, "x_mask": x_mask, "y": {}, "clip_mask": np.ones(len(next(iter(x.values()))),
                                                                    bool)}
  (target, out), = method.outputs(config).items()
  return target, np.asarray(contract.predictions(out.task, out.forward(model, batch, None))[target])


def _rows(path):
  return list(csv.DictReader(path.open()))


def test_fusion_lstm_run_predicts_one_row_per_3s_window_of_the_film(tmp_path, capsys):
  """seed 002 (keyframe + spectrogram_image per second, 3 s clips, 3 classes): the 5.3 s film is
  2 windows, [0, 3) and [3, 5) (the last one padded and masked)."""
  run = _train(tmp_path, "configs/fusion_lstm.py:arousal,runlocal",
               "--config.dataset.name=emojax_toy_av_clips", "--config.dataset.config=",
               "--config.dataset.import_module=toy_av_clips", "--config.model.crop=16",
               "--config.data.batch_size=4", "--config.data.eval_batch_size=4")
  capsys.readouterr()
  code, err = _predict(run, tmp_path / "out")
  assert code == 0, err[-3000:]
  printed = capsys.readouterr().out
  assert "windows of 3 s, hop 3 s" in printed and "the last window holds 2 s of 3 s" in printed
  rows = _rows(tmp_path / "out" / "bigbuckbunny.csv")
  assert [(r["window"], r["start"], r["end"]) for r in rows] == [("0", "0", "3"), ("1", "3", "5")]
  got = np.array([[float(r[f"arousal_p{c}"]) for c in range(3)] for r in rows])
  assert [int(r["arousal_class"]) for r in rows] == list(got.argmax(1))
  assert (tmp_path / "out" / "bigbuckbunny.png").stat().st_size > 1000

  ff = extract.extract_film(MEDIA_FIXTURE, {"keyframe": {"size": 24},
                                            "spectrogram_image": {"size": 24}})
  assert ff.num_seconds == 5
  x, mask = {}, np.array([[True] * 3, [True, True, False]])
  for s in ("keyframe", "spectrogram_image"):
    a = ff.streams[s]
    x[s] = np.stack([a[0:3], np.concatenate([a[3:5], np.zeros_like(a[:1])])])
  config, method, model = _loaded(run)
  _, want = _forward(config, method, model, x, {s: mask for s in x})
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_video_convnets_run_predicts_a_film_shorter_than_one_window_with_a_warning(
    tmp_path, capsys, monkeypatch):
  """seed 004 (C3D on 8 dense frames, 20 px): the window is config.data.clip_seconds (6 s, the
  synthetic clips' length); the 5.3 s film is one window of its 5 s, said in a warning."""
  monkeypatch.setenv("EMOJAX_VIDEO_CONV_CACHE", str(tmp_path / "lowering.json"))
  run = _train(tmp_path, "configs/video_convnets.py:c3d,valence,runlocal",
               "--config.dataset.name=emojax_toy_video_clips", "--config.dataset.config=",
               "--config.dataset.import_module=toy_video_clips",
               "--config.dataset.splits.validation=", "--config.data.holdout_fraction=0.2",
               "--config.model.crop=16", "--config.model.conv_lowering=frames2d",
               "--config.model.autotune=False", epochs=0.05)
  capsys.readouterr()
  code, err = _predict(run, tmp_path / "out")
  assert code == 0, err[-3000:]
  printed = capsys.readouterr().out
  assert ("warning: bigbuckbunny.mp4 lasts 5.3 s (5 whole seconds), shorter than one 6 s window"
          in printed)
  rows = _rows(tmp_path / "out" / "bigbuckbunny.csv")
  assert [(r["window"], r["start"], r["end"]) for r in rows] == [("0", "0", "5")]
  ff = extract.extract_film(MEDIA_FIXTURE, {"frame_clips": {"num_frames": 8, "size": 20,
                                                            "clip_seconds": 6}})
  x = {"frame_clips": frame_clips.decode_clips(ff.streams["frame_clips"])}
  assert x["frame_clips"].shape == (1, 8, 20, 20, 3)
  config, method, model = _loaded(run)
  _, want = _forward(config, method, model, x, {})
  assert float(rows[0]["valence"]) == pytest.approx(float(want[0]), abs=2e-5)


def test_a_per_clip_run_on_streams_without_extractors_is_refused_in_one_line(tmp_path):
  """toy_clips' streams (frames, audio, ...) are no extractor's: one line naming them."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from conftest import toy_config  # pylint: disable=import-outside-toplevel
  from emojax import checkpoint, fileio  # pylint: disable=import-outside-toplevel
  run = tmp_path / "run"
  fileio.write_json(run / "config.json", toy_config().to_dict())
  checkpoint.save_model(run / "final_model", nnx.Linear(3, 1, rngs=nnx.Rngs(0)),
                        {"method": "video_convnets", "task": {"unit": "clip"},
                         "feature_dims": {"audio": 3}, "modalities": ["audio"],
                         "targets": ["arousal"]})
  code, err = _predict(run, tmp_path / "out")
  assert code == 2 and len(err.strip().splitlines()) == 1
  assert "streams ['audio'] have no extractor" in err
