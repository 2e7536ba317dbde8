"""What `python -m emojax.folds` and `python -m benchmarks.results` refuse, and how: one line
`error: ...` naming the file / flag and the fix, exit code 2, nothing written before lost.

Rows: (input, expected fragments of the one-line message, exit code); in-process through each
command's `main(argv)`, one subprocess row each for the real command line's exit code.
"""

import pytest

import refusals
from benchmarks import results
from emojax import folds
from refusals import USER_ERROR

LOO = "--config=configs/attendaffectnet.py:cognimuse,arousal"


def _file(tmp, name="w", text="my notes"):
  p = tmp / name
  p.write_text(text)
  return p


def _bad_config(tmp):
  p = tmp / "bad_config.py"
  p.write_text("def get_config(arg=None):\n  raise ValueError(f'unknown word {arg!r}')\n")
  return p


FOLDS = [
    # Missing downloads behind TFDS: no COGNIMUSE download.
    ("no_cognimuse_download", lambda t: [LOO, f"--workdir={t / 'loo'}", "--folds=BMI"],
     ["dataset cognimuse/", "is not built", "downloads/manual", "does not exist or is empty",
      "--mode=doctor --dataset=cognimuse", "--mode=build --dataset=cognimuse"]),
    ("no_cognimuse_download_every_fold", lambda t: [LOO, f"--workdir={t / 'loo'}"],
     ["dataset cognimuse/", "is not built", "--mode=build --dataset=cognimuse"]),
    # Output path: --workdir.
    ("workdir_is_a_file", lambda t: [LOO, f"--workdir={_file(t)}"],
     ["--workdir=", "is an existing file, not a folder"]),
    ("workdir_below_a_file", lambda t: [LOO, f"--workdir={_file(t) / 'x'}"],
     ["--workdir=", "is a file, so no folder can be made below it"]),
    # Flags and configs.
    ("config_missing", lambda t: [f"--config={t / 'nope.py'}", f"--workdir={t / 'loo'}"],
     ["config file", "nope.py does not exist (--config)"]),
    ("config_raises", lambda t: [f"--config={_bad_config(t)}:zz", f"--workdir={t / 'loo'}"],
     ["--config=", "bad_config.py:zz", "unknown word 'zz'"]),
    ("unknown_fold", lambda t: [LOO, f"--workdir={t / 'loo'}", "--folds=XYZ"],
     ["unknown fold 'XYZ' (--folds)"]),
    ("validation_unknown", lambda t: [LOO, f"--workdir={t / 'loo'}", "--validation=later"],
     ["--validation=later", "one of <next|test|none>"]),
]

RESULTS = [
    # Output paths: --out (a file), --root (a folder).
    ("out_is_a_folder", lambda t: [f"--out={t}", "--report_only", f"--root={t / 'runs'}"],
     ["--out=", "is an existing folder, not a file", "pass a file name"]),
    ("out_below_a_file", lambda t: [f"--out={_file(t) / 'results.md'}", "--report_only",
                                    f"--root={t / 'runs'}"],
     ["--out=", "is a file, so it cannot hold results.md"]),
    ("root_is_a_file", lambda t: [f"--root={_file(t, 'runs')}", f"--out={t / 'r.md'}",
                                  "--report_only"],
     ["--root=", "is an existing file, not a folder"]),
    # Flags.
    ("rows_unknown", lambda t: ["--rows=seed000,nope", f"--out={t / 'r.md'}"],
     ["--rows: unknown row(s) ['nope']", "seed000_m1"]),
    ("seeds_not_integers", lambda t: ["--seeds=0,one", f"--out={t / 'r.md'}"],
     ["--seeds=0,one", "comma-separated integers"]),
    ("profile_unknown", lambda t: ["--profile=huge"], ["--profile", "invalid choice: 'huge'"]),
]


@pytest.mark.parametrize("name,setup,fragments", FOLDS, ids=[r[0] for r in FOLDS])
def test_folds_refuses(tmp_path, monkeypatch, name, setup, fragments):
  del name
  monkeypatch.setenv("EMOJAX_DATA_DIR", str(tmp_path / "no_data"))
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_entry(folds.main, *argv)
  refusals.check_refusal(code, err, fragments, USER_ERROR)
  refusals.unchanged(before)


@pytest.mark.parametrize("name,setup,fragments", RESULTS, ids=[r[0] for r in RESULTS])
def test_results_refuses(tmp_path, name, setup, fragments):
  del name
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_entry(results.main, *argv)
  refusals.check_refusal(code, err, fragments, USER_ERROR)
  refusals.unchanged(before)


def test_real_command_lines_exit_code(tmp_path):
  path = _file(tmp_path)
  code, err = refusals.run_cli("-m", "emojax.folds", LOO, f"--workdir={path}")
  refusals.check_refusal(code, err, [f"--workdir={path} is an existing file"])
  code, err = refusals.run_cli("-m", "benchmarks.results", "--rows=nope",
                               f"--out={tmp_path / 'r.md'}")
  refusals.check_refusal(code, err, ["--rows: unknown row(s) ['nope']"])
  assert path.read_text() == "my notes" and not (tmp_path / "r.md").exists()
