"""The doctor reports what the build meets: one planted defect per case, in every benchmark.

Each case plants one defect in a clean fixture tree, runs the doctor, and checks that it names the
defect (file, line, message, severity) and that the build handles it the same way: an 'error'
fails the build with the same file:line and message; a 'warning' (a repair) lets the build finish
with the same problem in `info.metadata['problems']`. A tree the doctor passes always builds.
"""

import math
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import dataset_fixtures as fx
import liris_fixture as lf
from emojax import doctor
from emojax.datasets import cognimuse
from emojax.datasets import liris_accede
from emojax.datasets import liris_accede_continuous
from emojax.datasets import mediaeval2018 as me18
from emojax.errors import DataError

# dataset -> (config the doctor checks and the build builds, builder class, writer of a clean tree)
DATASETS = {
    "mediaeval2018": ("official_features", me18.Mediaeval2018,
                      lambda root: fx.write_mediaeval2018(root, films={0: (6, 6, 6), 1: (5, 5, 5)},
                                                          defects=False)),
    "liris_accede": ("discrete_annotations", liris_accede.LirisAccede, lf.write_tree),
    "liris_accede_continuous": ("annotations", liris_accede_continuous.LirisAccedeContinuous,
                                lf.write_continuous_tree),
    "cognimuse": ("intended_5s_labels", cognimuse.Cognimuse,
                  lambda root: fx.write_cognimuse(root, films={"BMI": (300, ()),
                                                               "CHI": (275, ())})),
}


def _lines(path: pathlib.Path) -> list[str]:
  return path.read_text().splitlines()


def _set_line(path: pathlib.Path, line: int, text: str) -> None:
  lines = _lines(path)
  lines[line - 1] = text
  path.write_text("\n".join(lines) + "\n")


def _arff_data_line(path: pathlib.Path) -> int:
  return next(i for i, s in enumerate(_lines(path), start=1)
              if s.strip() and not s.startswith(("@", "%")))


def _edit_arff(path: pathlib.Path, edit) -> int:
  """Applies `edit` to the fields of the ARFF data line; returns its line number."""
  line = _arff_data_line(path)
  fields = _lines(path)[line - 1].split(",")
  _set_line(path, line, ",".join(edit(fields)))
  return line


# Each defect: (dataset, file name to damage, damage(path) -> line it is on (None: the file),
# severity, message fragment).
def _replace(i, value):
  def edit(fields):
    fields[i] = value
    return fields
  return edit


DEFECTS = {
    # MediaEval 2018: the audio ARFF-in-.csv files (the third file of film 00, as in the issue).
    "me18_audio_not_a_number": (
        "mediaeval2018", "MEDIAEVAL18_00_00003.csv",
        lambda p: _edit_arff(p, _replace(5, "1.5e-3x")), "error", "'1.5e-3x' is not a number"),
    "me18_audio_missing_field": (
        "mediaeval2018", "MEDIAEVAL18_00_00003.csv",
        lambda p: _edit_arff(p, lambda f: f[:7] + f[8:]), "error", "found 1583 fields"),
    "me18_audio_empty_field": (
        "mediaeval2018", "MEDIAEVAL18_00_00003.csv",
        lambda p: _edit_arff(p, _replace(9, "")), "error", "'' is not a number"),
    "me18_audio_truncated": (
        "mediaeval2018", "MEDIAEVAL18_01_00002.csv",
        lambda p: (p.write_text(p.read_text()[:-3000]), _arff_data_line(p))[1], "error",
        "fields), found"),
    "me18_audio_nan": (
        "mediaeval2018", "MEDIAEVAL18_00_00004.csv",
        lambda p: _edit_arff(p, _replace(100, "NaN")), "warning", "NaN or Inf in second 4"),
    "me18_audio_zero_bytes": (
        "mediaeval2018", "MEDIAEVAL18_01_00005.csv",
        lambda p: (p.write_bytes(b""), None)[1], "warning", "empty file for second 5"),
    "me18_visual_truncated": (
        "mediaeval2018", "MEDIAEVAL18_00-00002_gabor.txt",
        lambda p: (p.write_text(p.read_text()[:len(p.read_text()) // 2]), 1)[1], "error",
        "expected 60 numbers, found"),
    "me18_visual_bad_number": (
        "mediaeval2018", "MEDIAEVAL18_01-00003_cedd.txt",
        lambda p: (p.write_text("1.2.3," + p.read_text().split(",", 1)[1]), 1)[1], "error",
        "'1.2.3' is not a number"),
    "me18_visual_two_lines": (
        "mediaeval2018", "MEDIAEVAL18_00-00005_sc.txt",
        lambda p: (p.write_text(p.read_text().strip() + "\n" + p.read_text()), 2)[1], "error",
        "expected one line"),
    "me18_visual_inf": (
        "mediaeval2018", "MEDIAEVAL18_00-00006_tamura.txt",
        lambda p: (p.write_text("inf," + p.read_text().split(",", 1)[1]), 1)[1], "warning",
        "NaN or Inf in second 6"),
    "me18_labels_nan": (
        "mediaeval2018", "MEDIAEVAL18_01_Valence-Arousal.txt",
        lambda p: (_set_line(p, 3, "1\tnan\t0.1"), 3)[1], "error", "valence nan is not in"),
    "me18_labels_missing_field": (
        "mediaeval2018", "MEDIAEVAL18_00_Valence-Arousal.txt",
        lambda p: (_set_line(p, 4, "2\t0.1"), 4)[1], "error", "expected 3 fields, found 2"),
    "me18_labels_empty": (
        "mediaeval2018", "MEDIAEVAL18_00_Valence-Arousal.txt",
        lambda p: (p.write_text(""), None)[1], "error", "no label rows"),
    # LIRIS-ACCEDE discrete.
    "liris_ranking_not_a_number": (
        "liris_accede", "ACCEDEranking.txt",
        lambda p: (_set_line(p, 4, "2\tACCEDE00002.mp4\t7\t4\t1.9\tabc\t0.1\t0.2"), 4)[1],
        "error", "column 6 is 'abc', not a number"),
    "liris_ranking_missing_field": (
        "liris_accede", "ACCEDEranking.txt",
        lambda p: (_set_line(p, 3, "1\tACCEDE00001.mp4\t4\t7\t1.62\t4.13\t0.11"), 3)[1],
        "error", "expected 8 fields, found 7"),
    "liris_ranking_nan": (
        "liris_accede", "ACCEDEranking.txt",
        lambda p: (_set_line(p, 2, "0\tACCEDE00000.mp4\t1\t2\tnan\t4.54\t0.1\t0.2"), 2)[1],
        "error", "valenceValue (column 5) is nan, outside [1, 5]"),
    "liris_sets_empty": (
        "liris_accede", "ACCEDEsets.txt", lambda p: (p.write_text(""), None)[1], "error",
        "has no data rows"),
    # LIRIS-ACCEDE continuous.
    "continuous_nan": (
        "liris_accede_continuous", "After_The_Rain_Valence.txt",
        lambda p: (_set_line(p, 3, "1\tnan\t0.1"), 3)[1], "error",
        "mean (column 2) is nan, outside [-1, 1]"),
    "continuous_missing_field": (
        "liris_accede_continuous", "Big_Buck_Bunny_Arousal.txt",
        lambda p: (_set_line(p, 2, "0\t0.1"), 2)[1], "error", "expected 3 fields, found 2"),
    "continuous_truncated": (
        "liris_accede_continuous", "After_The_Rain_Arousal.txt",
        lambda p: (p.write_text(p.read_text()[:p.read_text().rstrip().rfind("\t")]),
                   len(_lines(p)))[1], "error", "expected 3 fields, found 2"),
    # COGNIMUSE.
    "cognimuse_not_a_number": (
        "cognimuse", "intended_1.dat",
        lambda p: (_set_line(p, 7, "0.24 0.1 x"), 7)[1], "error", "column 3 is 'x', not a number"),
    "cognimuse_nan": (
        "cognimuse", "intended_1.dat",
        lambda p: (_set_line(p, 5, "0.16 nan 0.1"), 5)[1], "error", "valence nan is not in"),
    "cognimuse_missing_field": (
        "cognimuse", "intended_1.dat",
        lambda p: (_set_line(p, 9, "0.32 0.1"), 9)[1], "error", "expected 3 fields, found 2"),
}


def _build(dataset: str, manual: pathlib.Path, data: pathlib.Path):
  config, cls, _ = DATASETS[dataset]
  builder = cls(config=config, data_dir=str(data))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return builder


@pytest.mark.parametrize("case", DEFECTS.values(), ids=DEFECTS.keys())
def test_doctor_names_the_defect_and_the_build_agrees(tmp_path, case):
  dataset, name, damage, severity, fragment = case
  config, _, write = DATASETS[dataset]
  manual = tmp_path / "manual"
  write(manual)
  path = sorted(manual.rglob(name))[0]
  line = damage(path)
  problems = doctor.run_doctor(dataset, manual, config)
  hits = [p for p in problems if fragment in p.message]
  assert len(hits) == 1, "\n".join(map(str, problems))
  (hit,) = hits
  assert hit.severity == severity, str(hit)
  assert (hit.file, hit.line) == (str(path), line), str(hit)
  errors = [p for p in problems if p.severity == "error"]
  if severity == "error":
    assert errors == [hit], "\n".join(map(str, errors))
    with pytest.raises(DataError) as e:
      _build(dataset, manual, tmp_path / "data")
    assert f"{hit.where}: {hit.message}" in str(e.value)
  else:  # the doctor passed the tree: the build must finish and report the same repair
    assert not errors, "\n".join(map(str, errors))
    builder = _build(dataset, manual, tmp_path / "data")
    assert hit.to_dict() in builder.info.metadata["problems"]


def test_clean_trees_pass_the_doctor_and_build(tmp_path):
  for dataset, (config, _, write) in DATASETS.items():
    manual = tmp_path / dataset
    write(manual)
    problems = doctor.run_doctor(dataset, manual, config)
    assert not [p for p in problems if p.severity == "error"], dataset
    builder = _build(dataset, manual, tmp_path / f"data_{dataset}")
    assert sum(s.num_examples for s in builder.info.splits.values()) > 0


def test_me18_repaired_values_follow_the_doctors_report(tmp_path):
  """A NaN second is interpolated in the build exactly where the doctor said it would be."""
  written = fx.write_mediaeval2018(tmp_path / "m", films={0: (6, 6, 6)}, defects=False)
  path = next((tmp_path / "m").rglob("MEDIAEVAL18_00-00003_acc.txt"))
  path.write_text(",".join(["nan"] * 256))
  (hit,) = [p for p in doctor.run_doctor("mediaeval2018", tmp_path / "m") if "NaN" in p.message]
  assert hit.file == str(path) and hit.line == 1
  builder = _build("mediaeval2018", tmp_path / "m", tmp_path / "d")
  ex = builder.as_data_source("train")[0]
  acc = written[0].streams["acc"]
  np.testing.assert_allclose(ex["acc"][2], (acc[1] + acc[3]) / 2, rtol=1e-6)
  assert not ex["observed"][2, me18.OFFICIAL_STREAMS.index("acc")]
  assert math.isfinite(float(ex["acc"].sum()))
