"""`python -m emojax.folds` takes main.py's --config.x.y= overrides and documents every flag."""

import subprocess
import sys

import pytest

from conftest import REPO
from emojax import folds
from emojax.datasets import cognimuse

CONFIG = f"--config={REPO}/configs/attendaffectnet.py:cognimuse,arousal"


def test_config_overrides_reach_the_folds(tmp_path, monkeypatch, capsys):
  seen = {}

  def fake_run_folds(config, workdir, *, folds, films, validation):
    seen.update(manual_dir=config.dataset.manual_dir, lr=config.optim.learning_rate,
                workdir=workdir, folds=folds, films=films, validation=validation)
    return {"pooled": {}, "folds": {}, "mean": {}, "std": {}}
  monkeypatch.setattr(folds, "run_folds", fake_run_folds)
  rc = folds.main([CONFIG, f"--workdir={tmp_path}", "--config.dataset.manual_dir=/data/cog",
                   "--config.optim.learning_rate=0.5", "--folds=BMI,CHI", "--validation=test"])
  assert rc == 0, capsys.readouterr().err
  assert seen == {"manual_dir": "/data/cog", "lr": 0.5, "workdir": str(tmp_path),
                  "folds": ["BMI", "CHI"], "films": None,  # the protocol's films
                  "validation": "test"}


@pytest.mark.parametrize("args, message", [
    (["--config.dataset.manual_dr=/x"], "manual_dr"),
    (["--validation=last"], "--validation"),
    (["--folds=XYZ"], "unknown fold 'XYZ'"),
    (["stray"], "unexpected arguments ['stray']"),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, args, message):
  assert folds.main([CONFIG, f"--workdir={tmp_path}", *args]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_workdir_names_the_flag(capsys):
  assert folds.main([CONFIG]) == 2
  assert "--workdir is required" in capsys.readouterr().err


def test_help_documents_every_flag(capsys):
  with pytest.raises(SystemExit) as e:
    folds.main(["--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  for name, text in folds.FLAG_HELP.items():
    assert f"--{name}" in out
    assert " ".join(text.split()[:4]) in " ".join(out.split()), name


def test_the_real_command_line_takes_overrides(tmp_path):
  # The command of the issue: an override no longer stops at "unrecognized arguments"; here it
  # stops at the unknown fold (before anything trains). A real `python -m emojax.folds` process:
  # its exit code and stderr as a shell sees them.
  r = subprocess.run([sys.executable, "-m", "emojax.folds", CONFIG, f"--workdir={tmp_path}",
                      "--config.dataset.manual_dir=/nowhere", "--folds=NOPE"], cwd=REPO,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      "error: unknown fold 'NOPE' (--folds); the folds are the films "
      + ", ".join(cognimuse.FILMS)]
