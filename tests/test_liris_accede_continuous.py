"""liris_accede_continuous: per-second film examples from fixture downloads."""

import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

import liris_fixture as lf
from emojax.datasets import liris_accede_continuous as lc
from emojax.errors import DataError

LABELS = ("valence", "arousal", "valence_std", "arousal_std")


def build(manual, data, config, **kwargs):
  builder = lc.LirisAccedeContinuous(config=config, data_dir=str(data),
                                     file_format="array_record", **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  sources = builder.as_data_source()
  return builder, {split: {ex["film_id"].decode(): ex for ex in (src[i] for i in range(len(src)))}
                   for split, src in sources.items()}


@pytest.mark.parametrize("layout", [lf.Layout(), lf.Layout(doubled=True, sep=" "),
                                    lf.Layout(header=False, sep="\t ")],
                         ids=["real", "doubled_spaces", "no_header"])
def test_annotations_splits_and_labels(tmp_path, layout):
  written = lf.write_continuous_tree(tmp_path / "manual", layout)
  builder, splits = build(tmp_path / "manual", tmp_path / "data", "annotations")
  assert sorted(splits["train"]) == ["After_The_Rain", "Big_Buck_Bunny"]
  assert sorted(splits["test"]) == ["MEDIAEVAL16_FM_00"]
  for films in splits.values():
    for film, ex in films.items():
      for name in LABELS:
        np.testing.assert_array_equal(ex[name], written[film][name].astype(np.float32))
  assert builder.info.metadata["num_seconds"] == lf.CONTINUOUS_FILMS
  assert not builder.info.metadata["problems"]


def test_valence_arousal_length_mismatch_is_truncated_and_reported(tmp_path):
  written = lf.write_continuous_tree(tmp_path / "manual",
                                     label_seconds={"After_The_Rain": (5, 4)})
  builder, splits = build(tmp_path / "manual", tmp_path / "data", "annotations")
  ex = splits["train"]["After_The_Rain"]
  assert all(ex[name].shape == (4,) for name in LABELS)
  np.testing.assert_array_equal(ex["valence"],
                                written["After_The_Rain"]["valence"][:4].astype(np.float32))
  (problem,) = builder.info.metadata["problems"]
  assert "After_The_Rain valence and arousal rows differ" in problem["message"]
  assert "truncated to 4 s" in problem["message"] and problem["severity"] == "info"


def test_features_truncate_labels_and_streams_to_the_film(tmp_path):
  from emojax.features import extract
  # After_The_Rain: 5 s film, 9 label rows (4 cut: a warning); Big_Buck_Bunny: 4 s film,
  # 3 label rows (the streams lose 1 s).
  written = lf.write_continuous_tree(
      tmp_path / "manual", lf.Layout(videos=True, doubled=True),
      label_seconds={"After_The_Rain": (9, 9), "Big_Buck_Bunny": (3, 3)},
      films={"After_The_Rain": 5, "Big_Buck_Bunny": 4})
  builder, splits = build(tmp_path / "manual", tmp_path / "data", "default",
                          extractors=("vggish_logmel",))
  rain, bunny = splits["train"]["After_The_Rain"], splits["train"]["Big_Buck_Bunny"]
  assert rain["vggish_logmel"].shape == (5, 96, 64) and rain["valence"].shape == (5,)
  assert bunny["vggish_logmel"].shape == (3, 96, 64) and bunny["arousal_std"].shape == (3,)
  np.testing.assert_array_equal(rain["arousal"],
                                written["After_The_Rain"]["arousal"][:5].astype(np.float32))
  want = extract.extract_film(next((tmp_path / "manual").rglob("Big_Buck_Bunny.mp4")),
                              ["vggish_logmel"])
  np.testing.assert_array_equal(bunny["vggish_logmel"], want.streams["vggish_logmel"][:3])
  problems = {p["message"].split(":")[0]: p for p in builder.info.metadata["problems"]}
  assert problems["After_The_Rain labels vs features"]["severity"] == "warning"
  assert "arousal 4" in problems["After_The_Rain labels vs features"]["message"]
  assert problems["Big_Buck_Bunny labels vs features"]["severity"] == "info"
  assert builder.info.metadata["num_seconds"] == {"After_The_Rain": 5, "Big_Buck_Bunny": 3}


MALFORMED = {
    "gap": ("After_The_Rain_Valence.txt", 4, "4\t0.1\t0.1", "second 4 follows second 1"),
    "out_of_range": ("Big_Buck_Bunny_Arousal.txt", 3, "1\t1.5\t0.1",
                     r"mean \(column 2\) is 1.5, outside \[-1, 1\]"),
    "negative_std": ("Big_Buck_Bunny_Valence.txt", 2, "0\t0.5\t-0.1", "std"),
    "short_row": ("After_The_Rain_Arousal.txt", 5, "3\t0.2", "expected 3 fields"),
    "not_a_number": ("After_The_Rain_Arousal.txt", 2, "0\tnan?\t0.1", "not a number"),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_names_file_and_line(tmp_path, case):
  name, line, new, message = case
  lf.write_continuous_tree(tmp_path / "manual")
  path = next((tmp_path / "manual").rglob(f"continuous-annotations/{name}"))
  lines = path.read_text().splitlines()
  lines[line - 1] = new
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(DataError) as e:
    build(tmp_path / "manual", tmp_path / "data", "annotations")
  assert re.search(message, str(e.value)), str(e.value)
  assert f"{path}:{line}" in str(e.value)


def test_unpaired_file_is_an_error(tmp_path):
  lf.write_continuous_tree(tmp_path / "manual")
  next((tmp_path / "manual").rglob("Big_Buck_Bunny_Arousal.txt")).unlink()
  with pytest.raises(DataError, match="Big_Buck_Bunny has 0 arousal files"):
    build(tmp_path / "manual", tmp_path / "data", "annotations")


def test_doctor_reports_planted_problems(tmp_path):
  manual = tmp_path / "manual"
  lf.write_continuous_tree(manual, lf.Layout(videos=True),
                           label_seconds={"After_The_Rain": (12, 12)},
                           films={"After_The_Rain": 3, "Big_Buck_Bunny": 2, "Chatter": 2})
  next(manual.rglob("Chatter.mp4")).unlink()
  path = next(manual.rglob("Big_Buck_Bunny_Valence.txt"))
  lines = path.read_text().splitlines()
  lines[2] = "1\t-1.7\t0.1"  # line 3: an out-of-range mean
  path.write_text("\n".join(lines) + "\n")
  problems = lc.doctor(manual, "default")
  text = "\n".join(map(str, problems))
  assert any(p.severity == "error" and "Chatter.mp4 not found" in p.message
             for p in problems), text
  duration = [p for p in problems if p.file.endswith("After_The_Rain.mp4")]
  assert len(duration) == 1 and duration[0].severity == "warning", text
  assert "the film has 3 s, its labels 12 rows" in duration[0].message
  bad = [p for p in problems if p.file == str(path) and p.severity == "error"]
  assert bad and bad[0].line == 3, text
  # The annotations config needs no videos: only the label problem remains an error.
  errors = [p for p in lc.doctor(manual, "annotations") if p.severity == "error"]
  assert [(p.file, p.line) for p in errors] == [(str(path), 3)], errors


def test_doctor_empty_download(tmp_path):
  (tmp_path / "manual").mkdir()
  (problem,) = lc.doctor(tmp_path / "manual", "annotations")
  assert problem.severity == "error" and "_Valence.txt" in problem.message
