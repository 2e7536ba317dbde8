"""What `python main.py --mode=train` (and sweep, build, doctor) refuses, and how: one line
`error: ...` naming the file / key / flag and the fix, exit code 2, nothing written before lost.

Each row: (input, expected fragments of the one-line message, exit code). In-process (main.py's
entry with argv), except the subprocess row that proves the real command line's exit code.
"""

import pathlib

import pytest

import refusals
from refusals import USER_ERROR

VIDEO = ["--config=configs/video_convnets.py:c3d,valence,runlocal",
         "--config.dataset.name=emojax_toy_video_clips", "--config.dataset.config=",
         "--config.dataset.import_module=toy_video_clips", "--config.dataset.splits.validation=",
         "--config.model.crop=16", "--config.model.conv_lowering=frames2d",
         "--config.model.autotune=False"]


def _file(tmp, name="run", text="my notes"):
  p = tmp / name
  p.write_text(text)
  return p


# (id, set-up (tmp_path -> extra argv), expected fragments, exit code)
ROWS = [
    # Output paths: --workdir (train and sweep write there; build's --data_dir).
    ("workdir_is_a_file", lambda t: ["--config=configs/ridge.py:runlocal",
                                     f"--workdir={_file(t)}"],
     ["--workdir=", "is an existing file, not a folder", "pass a folder"], USER_ERROR),
    ("sweep_workdir_is_a_file", lambda t: ["--mode=sweep", "--config=configs/ridge.py:runlocal",
                                           f"--workdir={_file(t)}"],
     ["--workdir=", "is an existing file"], USER_ERROR),
    ("workdir_below_a_file", lambda t: ["--config=configs/ridge.py:runlocal",
                                        f"--workdir={_file(t) / 'sub'}"],
     ["--workdir=", "is a file, so no folder can be made below it"], USER_ERROR),
    ("build_data_dir_is_a_file", lambda t: ["--mode=build", "--dataset=mediaeval2018",
                                            f"--data_dir={_file(t, 'data')}",
                                            f"--manual_dir={t}"],
     ["--data_dir=", "is an existing file"], USER_ERROR),
    # Flags and config keys.
    ("unknown_config_key", lambda t: ["--config=configs/ridge.py:runlocal", f"--workdir={t / 'r'}",
                                      "--config.data.bogus=3"],
     ["bad config override", "--config.data.bogus", "check the key"], USER_ERROR),
    ("missing_workdir_flag", lambda t: ["--config=configs/ridge.py:runlocal"],
     ["--workdir is required"], USER_ERROR),
    ("doctor_without_manual_dir", lambda t: ["--mode=doctor", "--dataset=mediaeval2018"],
     ["--manual_dir is required in doctor mode"], USER_ERROR),
    ("build_without_manual_dir", lambda t: ["--mode=build", "--dataset=mediaeval2018",
                                            "--dataset_config=official_features",
                                            f"--data_dir={t / 'data'}"],
     ["--manual_dir is required to build mediaeval2018"], USER_ERROR),
    ("build_unknown_dataset_config", lambda t: ["--mode=build", "--dataset=mediaeval2018",
                                                "--dataset_config=bogus",
                                                f"--data_dir={t / 'data'}", f"--manual_dir={t}"],
     ["--dataset_config=bogus", "official_features", "mediaeval2018"], USER_ERROR),
    # Damaged or missing weight files (config.model.weights of the video convnets).
    ("weights_truncated_npz", lambda t: [
        *VIDEO, f"--config.dataset.data_dir={t / 'data'}", f"--workdir={t / 'r'}",
        f"--config.model.weights={refusals.truncated_npz(t / 'c3d.npz')}"],
     ["c3d.npz", "config.model.weights", "damaged or truncated", "download or convert it again"],
     USER_ERROR),
    ("weights_not_npz", lambda t: [
        *VIDEO, f"--config.dataset.data_dir={t / 'data'}", f"--workdir={t / 'r'}",
        f"--config.model.weights={_file(t, 'c3d.npz', 'not a zip')}"],
     ["c3d.npz", "config.model.weights", "damaged or truncated"], USER_ERROR),
    ("weights_missing", lambda t: [
        *VIDEO, f"--config.dataset.data_dir={t / 'data'}", f"--workdir={t / 'r'}",
        f"--config.model.weights={t / 'nowhere.npz'}"],
     ["config.model.weights=", "nowhere.npz", "is not a file"], USER_ERROR),
    # A bad crop (the start is refused before training; see the lock test below).
    ("crop_larger_than_frames", lambda t: [
        *VIDEO, f"--config.dataset.data_dir={t / 'data'}", f"--workdir={t / 'r'}",
        "--config.model.crop=64"],
     ["frames of 20x20, smaller than config.model.crop=64", "lower the crop"], USER_ERROR),
    ("crop_zero", lambda t: [
        *VIDEO, f"--config.dataset.data_dir={t / 'data'}", f"--workdir={t / 'r'}",
        "--config.model.crop=0"],
     ["config.model.crop=0 is below 16 px", "use 16 or more"], USER_ERROR),
    # Missing downloads behind TFDS: a films config with an empty or absent manual dir.
    ("films_empty_manual_dir", lambda t: [
        "--config=configs/two_timescale_films.py:films,runlocal", f"--workdir={t / 'r'}",
        f"--config.dataset.data_dir={t / 'data'}",
        f"--config.dataset.manual_dir={(t / 'empty').mkdir() or t / 'empty'}"],
     ["dataset films", "empty", "--mode=doctor --dataset=films", "--mode=build --dataset=films"],
     USER_ERROR),
    ("films_absent_manual_dir", lambda t: [
        "--config=configs/two_timescale_films.py:films,runlocal", f"--workdir={t / 'r'}",
        f"--config.dataset.data_dir={t / 'data'}", f"--config.dataset.manual_dir={t / 'nope'}"],
     ["dataset films", str(pathlib.Path("nope")), "does not exist or is empty",
      "--mode=build --dataset=films"], USER_ERROR),
]


@pytest.mark.parametrize("name,setup,fragments,code", ROWS, ids=[r[0] for r in ROWS])
def test_refused(tmp_path, name, setup, fragments, code):
  del name
  argv = setup(tmp_path)
  data = tmp_path / "data"
  if any(a.startswith("--mode=build") for a in argv) and not data.is_file():
    data.mkdir(exist_ok=True)
    (data / "earlier.txt").write_text("written before")
  before = refusals.snapshot(tmp_path)
  got, err = refusals.run_main(*argv)
  refusals.check_refusal(got, err, fragments, code)
  refusals.unchanged(before)          # nothing written before is lost
  if any(a.startswith("--mode=build") for a in argv) and data.is_dir():  # and build wrote nothing
    assert sorted(p.name for p in data.rglob("*")) == ["earlier.txt"]


def test_a_failed_start_does_not_lock_the_workdir(tmp_path):
  """A start refused before its first saved step (a damaged weights file) wrote the run's config;
  the corrected config is then taken (it was refused as "a run trained with another config"),
  while a workdir holding a saved step still refuses another config."""
  from configs import video_convnets  # pylint: disable=import-outside-toplevel
  from emojax import errors, train  # pylint: disable=import-outside-toplevel
  import toy_video_clips  # pylint: disable=import-outside-toplevel,unused-import
  bad = refusals.truncated_npz(tmp_path / "c3d.npz")
  run = tmp_path / "run"
  code, err = refusals.run_main(*VIDEO, f"--config.dataset.data_dir={tmp_path / 'data'}",
                                f"--workdir={run}", f"--config.model.weights={bad}")
  refusals.check_refusal(code, err, ["config.model.weights", "damaged"])
  assert (run / "config.json").exists()
  c = video_convnets.get_config("c3d,valence,runlocal")
  with c.unlocked():
    c.dataset.name, c.dataset.config = "emojax_toy_video_clips", ""
    c.dataset.import_module, c.dataset.splits.validation = "toy_video_clips", ""
    c.dataset.data_dir = str(tmp_path / "data")
    c.model.crop, c.model.conv_lowering, c.model.autotune = 16, "frames2d", False
  trainer = train.Trainer(c, run)        # weights corrected ('' = from scratch)
  trainer._check_same_config()  # pylint: disable=protected-access
  (run / "checkpoints" / "valence__c3d" / "latest" / "3").mkdir(parents=True)  # a saved step
  with pytest.raises(errors.ConfigError, match="holds a run trained with another config"):
    trainer._check_same_config()  # pylint: disable=protected-access


def test_real_command_line_exit_code(tmp_path):
  path = _file(tmp_path)
  code, err = refusals.run_cli("main.py", "--config=configs/ridge.py:runlocal",
                               f"--workdir={path}")
  refusals.check_refusal(code, err, [f"--workdir={path} is an existing file"])
  assert path.read_text() == "my notes"
