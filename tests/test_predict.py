"""Predict mode end to end: synthetic films -> trained run -> the real fixture film's curve."""

import csv
import subprocess
import sys

import ml_collections
import pytest

from conftest import MEDIA_FIXTURE, REPO
from emojax import errors, evaluate, predict
from emojax.features import manifest


@pytest.fixture(name="trained")
def _trained(films_run):
  """The session's films run (conftest.films_run; test_api.py reads the same one)."""
  return films_run


def test_predict_writes_csv_and_png_for_the_real_film(trained, tmp_path):
  config, root = trained
  out = predict.predict(config, root / "run", str(MEDIA_FIXTURE), str(tmp_path / "out"))
  rows = list(csv.reader((tmp_path / "out" / "bigbuckbunny.csv").open()))
  assert rows[0] == ["second", "arousal"]
  assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3, 4]  # floor(5.3 s) seconds
  assert all(-1.0 <= float(r[1]) <= 1.0 for r in rows[1:])
  assert (tmp_path / "out" / "bigbuckbunny.png").stat().st_size > 1000
  assert set(out) == {"bigbuckbunny"}


def test_predict_from_the_command_line_skips_unreadable_videos(trained, tmp_path):
  _, root = trained
  videos = tmp_path / "videos"
  videos.mkdir()
  (videos / "broken.mp4").write_bytes(b"not a video at all")
  (videos / "film.mp4").write_bytes(MEDIA_FIXTURE.read_bytes())
  r = subprocess.run([sys.executable, "main.py", "--mode=predict", f"--workdir={root / 'run'}",
                      f"--video={videos}", f"--output={tmp_path / 'out'}"], cwd=REPO,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "broken.mp4" in r.stdout and "1 of 2 videos could not be predicted" in r.stdout
  assert (tmp_path / "out" / "film.csv").exists() and not (tmp_path / "out" / "broken.csv").exists()


def test_evaluate_refuses_features_extracted_differently(trained):
  config, root = trained
  other = config.copy_and_resolve_references()
  with other.unlocked():
    kwargs = other.dataset.builder_kwargs.to_dict()
    kwargs["extractors"] = {"visual_stats": {"fps": 2}, "audio_functionals": {}}
    other.dataset.builder_kwargs = ml_collections.ConfigDict(kwargs)
  with pytest.raises(errors.ManifestMismatchError, match="visual_stats"):
    evaluate.evaluate(other, root / "run")


def test_manifest_differences_are_named():
  a = manifest.for_spec({"visual_stats": {}})
  b = manifest.for_spec({"visual_stats": {"fps": 2}})
  with pytest.raises(errors.ManifestMismatchError, match="fps"):
    evaluate.check_manifest({"feature_manifest": a}, b, "the test split")
  with pytest.raises(errors.ManifestMismatchError, match="records no feature manifest"):
    evaluate.check_manifest({"feature_manifest": a}, None, "the test split")


def _silent_film(path):
  import media_synth  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  media_synth.write_video(path, media_synth.solid_frames(np.arange(75) * 3), np.arange(75) / 25)
  return path


def test_film_without_sound_is_skipped_naming_the_flag_then_predicted_with_it(trained, tmp_path,
                                                                              capsys):
  """The model needs audio_functionals; a film without an audio stream is skipped with a message
  naming --allow_missing_audio (its path printed once), and predicted with silence with it."""
  config, root = trained
  film = _silent_film(tmp_path / "silent.mkv")
  out = tmp_path / "out"
  out.mkdir()
  (out / "earlier.csv").write_text("kept")
  with pytest.raises(errors.DataError, match="--allow_missing_audio"):
    predict.predict(config, root / "run", str(film), str(out))
  printed = capsys.readouterr().out
  assert "--allow_missing_audio" in printed
  assert printed.count(str(film)) == 2  # "[1/1] <path>" and the summary line, once each
  assert all(line.count(str(film)) <= 1 for line in printed.splitlines())
  assert sorted(p.name for p in out.iterdir()) == ["earlier.csv"]
  written = predict.predict(config, root / "run", str(film), str(out), allow_missing_audio=True)
  assert written == {"silent": out / "silent.csv"}
  rows = list(csv.reader((out / "silent.csv").open()))
  assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
  assert "no audio stream" in capsys.readouterr().out
  assert (out / "earlier.csv").read_text() == "kept"


def test_allow_missing_audio_flag_of_main(trained, tmp_path):
  """The command line's --allow_missing_audio reaches predict (in-process main)."""
  _, root = trained
  film = _silent_film(tmp_path / "silent.mkv")
  import main  # pylint: disable=import-outside-toplevel
  args = ["main.py", "--mode=predict", f"--workdir={root / 'run'}", f"--video={film}",
          f"--output={tmp_path / 'out'}"]
  try:
    main.FLAGS.unparse_flags()
    main.FLAGS(args)
    with pytest.raises(errors.DataError, match="--allow_missing_audio"):
      main.run("predict")
    main.FLAGS.unparse_flags()
    main.FLAGS(args + ["--allow_missing_audio"])
    assert main.run("predict") == 0
  finally:
    main.FLAGS.unparse_flags()
  assert (tmp_path / "out" / "silent.csv").exists()


def test_film_shorter_than_one_clip_is_predicted_with_a_warning_and_plotted_to_its_end(
    trained, tmp_path, capsys, monkeypatch):
  """The README demo's case: a 5.3 s film and clips longer than it (here 8 s): predicted, a
  warning says so, and the plot's steps cover every second up to the film's end (5.33 s), not
  stopping at the last second's start."""
  config, root = trained
  longer = config.copy_and_resolve_references()
  with longer.unlocked():
    longer.data.clip_seconds = 8
  drawn = {}
  monkeypatch.setattr(predict.plots, "plot_film",
                      lambda path, x, curves, title: drawn.update(x=x, curves=curves, title=title))
  predict.predict(longer, root / "run", str(MEDIA_FIXTURE), str(tmp_path / "out"))
  printed = capsys.readouterr().out
  assert ("warning: bigbuckbunny.mp4 lasts 5.3 s (5 whole seconds), shorter than one 8 s clip"
          in printed)
  rows = list(csv.reader((tmp_path / "out" / "bigbuckbunny.csv").open()))[1:]
  assert len(rows) == 5
  x, y = drawn["x"], drawn["curves"]["arousal"][1]
  from emojax.features import decode  # pylint: disable=import-outside-toplevel
  duration = decode.probe(MEDIA_FIXTURE).duration_s
  assert list(x[:-1]) == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5] and x[-1] == pytest.approx(duration)
  assert [round(v, 5) for v in y[:-1:2]] == [round(float(r[1]), 5) for r in rows]
  assert all(y[0:-1:2] == y[1:-1:2]) and y[-1] != y[-1]  # flat over each second; NaN after 5 s
