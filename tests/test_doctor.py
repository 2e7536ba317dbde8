"""The data doctor on fixture downloads with planted defects."""

import numpy as np
import pytest

import dataset_fixtures as fx
from emojax import doctor
from emojax.datasets.common import Problem
from emojax.errors import ConfigError


def _messages(problems, severity=None):
  return [f"{p.where} {p.message}" for p in problems if severity in (None, p.severity)]


def _has(problems, text, severity):
  hits = [p for p in problems if text in p.message and p.severity == severity]
  assert hits, f"no {severity} containing {text!r} in:\n" + "\n".join(map(str, problems))
  return hits


@pytest.fixture(scope="module")
def me18_manual(tmp_path_factory):
  root = tmp_path_factory.mktemp("doc18")
  fx.write_mediaeval2018(root)
  return root


def test_mediaeval2018_reports_the_planted_defects(me18_manual):
  problems = doctor.run_doctor("mediaeval2018", me18_manual)
  assert _messages(problems, "error") == []
  _has(problems, "MEDIAEVAL18_06 'emobase2010': no file for second(s) 20", "warning")
  _has(problems, "MEDIAEVAL18_18 'fc6': no file for second(s) 5-7", "warning")
  _has(problems, "MEDIAEVAL18_18 'jcd': no file for second(s) 10", "warning")
  empty = _has(problems, "MEDIAEVAL18_27 'cl': empty file for second 6", "warning")
  assert empty[0].file.endswith("MEDIAEVAL18_27-00006_cl.txt")
  _has(problems, "MEDIAEVAL18_46: labels have 8 rows", "warning")
  _has(problems, "57 of 66 films have no labels", "warning")
  report = doctor.format_report(problems)
  assert report.startswith("Data doctor: 0 error(s), ")
  assert "fix: none needed: filled by linear interpolation" in report


def test_mediaeval2018_errors_with_file_line_and_fix(tmp_path):
  fx.write_mediaeval2018(tmp_path, films={0: (6, 6, 6), 1: (6, 6, 6), 2: (6, 6, 6),
                                          54: (5, 5, 5)}, defects=False)
  # A label out of range, a descriptor file of the wrong size, a NaN in a feature, a film whose
  # labels are missing, a stream missing altogether.
  label = next(tmp_path.rglob("MEDIAEVAL18_00_Valence-Arousal.txt"))
  lines = label.read_text().splitlines()
  lines[3] = "\t".join(["2", "1.7", "0.1"])
  label.write_text("\n".join(lines) + "\n")
  next(tmp_path.rglob("MEDIAEVAL18_01-00001_tamura.txt")).write_text("1,2,3\n")
  next(tmp_path.rglob("MEDIAEVAL18_01-00006_eh.txt")).write_text(",".join(["nan"] * 80))
  next(tmp_path.rglob("MEDIAEVAL18_54_Valence-Arousal.txt")).unlink()
  for f in tmp_path.rglob("MEDIAEVAL18_02-*_sc.txt"):
    f.unlink()
  problems = doctor.run_doctor("mediaeval2018/official_features", tmp_path)
  errors = [p for p in problems if p.severity == "error"]
  assert len(errors) == 4, "\n".join(map(str, problems))
  bad_label = _has(problems, "valence 1.7 is not in [-1.0, 1.0]", "error")[0]
  assert bad_label.file.endswith("MEDIAEVAL18_00_Valence-Arousal.txt") and bad_label.line == 4
  bad_size = _has(problems, "expected 18 numbers, found 3", "error")[0]
  assert bad_size.file.endswith("MEDIAEVAL18_01-00001_tamura.txt") and bad_size.line == 1
  _has(problems, "MEDIAEVAL18_54 has files but no MEDIAEVAL18_54_Valence-Arousal.txt", "error")
  missing = _has(problems, "MEDIAEVAL18_02 has no 'sc' feature files", "error")[0]
  assert "MEDIAEVAL18-DevSet-Part1-Visual_features" in missing.fix
  _has(problems, "MEDIAEVAL18_01 'eh': NaN or Inf in second 6", "warning")
  report = doctor.format_report(problems)
  assert "Data doctor: 4 error(s)" in report and "run the doctor again" in report


def test_mediaeval2018_extracted_needs_films(tmp_path):
  fx.write_mediaeval2018(tmp_path, films={0: (5, 0, 0), 1: (40, 0, 0)}, features=False,
                         media_seconds={1: 6})
  problems = doctor.run_doctor("mediaeval2018", tmp_path, "extracted_features")
  _has(problems, "no film file MEDIAEVAL18_00.mp4 found", "error")
  _has(problems, "MEDIAEVAL18_01: the film has 6 s, its labels 40 rows", "warning")
  assert doctor.run_doctor("mediaeval2018", tmp_path, "nope")[0].message == (
      "unknown mediaeval2018 config 'nope'.")


def test_cognimuse_doctor(tmp_path):
  fx.write_cognimuse(tmp_path, media_seconds={"BMI": 12, "CHI": 7})
  ann = next(tmp_path.rglob("GLA_emotion")) / "intended_1.dat"
  lines = ann.read_text().splitlines()
  lines[9] = "0.36 nan 0.1"
  ann.write_text("\n".join(lines) + "\n")
  problems = doctor.run_doctor("cognimuse", tmp_path)
  nan = _has(problems, "valence nan is not in", "error")[0]
  assert nan.file.endswith("intended_1.dat") and nan.line == 10
  short = _has(problems, "CHI: the film lasts 7.", "error")[0]
  assert "ffmpeg -sseof -11.00 -i" in short.fix
  sil = _has(problems, "film SIL: no films/SIL.mp4", "warning")[0]
  assert "ffmpeg -sseof -10.40" in sil.fix
  _has(problems, "film SIL: no experienced annotation found", "warning")
  _has(problems, "film ABE: no intended annotation found", "warning")
  assert not [p for p in problems if "BMI" in p.message and p.severity == "error"]
  # With a config that extracts features, an absent film is an error.
  strict = doctor.run_doctor("cognimuse", tmp_path, "intended_5s")
  _has(strict, "film SIL: no films/SIL.mp4", "error")
  labels_only = doctor.run_doctor("cognimuse", tmp_path, "intended_5s_labels")
  assert not [p for p in labels_only if "films/" in p.message]


def test_format_report_and_dispatch():
  assert doctor.format_report([]).endswith("No problems found: the download is ready to build.")
  report = doctor.format_report([Problem("a.txt", 3, "bad row.", "restore a.txt."),
                                 Problem("", None, "note.", "none needed.", "info")])
  assert report.splitlines()[0] == "Data doctor: 1 error(s), 0 warning(s), 1 note(s)."
  assert "  1. a.txt:3\n     bad row.\n     fix: restore a.txt." in report
  assert "  1. <download>\n     note." in report
  with pytest.raises(ConfigError, match="no module emojax/datasets/nosuch.py"):
    doctor.run_doctor("nosuch", "/tmp")
  with pytest.raises(ConfigError, match="has no doctor"):
    doctor.run_doctor("common", "/tmp")


def test_missing_manual_dir(tmp_path):
  for name in ("mediaeval2018", "cognimuse"):
    problems = doctor.run_doctor(name, tmp_path / "nope")
    assert len(problems) == 1 and problems[0].severity == "error"
    assert "manual_dir is not a folder" in problems[0].message


def test_liris_doctors_default_and_unknown_config(tmp_path):
  """main.py --mode=doctor without --dataset_config passes None: the default config is checked;
  an unknown name is an error Problem, as for the other datasets (not a traceback)."""
  import liris_fixture  # pylint: disable=import-outside-toplevel
  liris_fixture.write_tree(tmp_path / "liris")
  liris_fixture.write_continuous_tree(tmp_path / "cont")
  for name, root, default in (("liris_accede", tmp_path / "liris", "discrete"),
                              ("liris_accede_continuous", tmp_path / "cont", "default")):
    assert _messages(doctor.run_doctor(name, root)) == _messages(
        doctor.run_doctor(name, root, default))
    bad = doctor.run_doctor(name, root, "nope")
    assert [(p.severity, p.message) for p in bad] == [("error", f"unknown {name} config 'nope'.")]
    assert bad[0].fix.startswith(f"use one of {default}")
