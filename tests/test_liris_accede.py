"""liris_accede: fixture downloads in every layout variant, built with TFDS and read back."""

import pathlib
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

import liris_fixture as lf
from emojax.datasets import liris_accede as la
from emojax.errors import DataError

LAYOUTS = {
    "real": lf.Layout(),
    "doubled_spaces_noheader": lf.Layout(doubled=True, header=False, sep=" "),
    "mp4_everywhere_tabs_spaces": lf.Layout(mp4=True, sep=" \t "),
    "no_mp4": lf.Layout(mp4=False, doubled=True),
}


def build(manual: pathlib.Path, data: pathlib.Path, config: str, **kwargs) -> tuple:
  builder = la.LirisAccede(config=config, data_dir=str(data), file_format="array_record",
                           **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  sources = builder.as_data_source()
  return builder, {split: [src[i] for i in range(len(src))] for split, src in sources.items()}


def by_clip(examples):
  return {ex["clip_id"].decode(): ex for ex in examples}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_discrete_splits_and_labels(tmp_path, layout):
  manual = lf.write_tree(tmp_path / "manual", layout)
  builder, splits = build(manual, tmp_path / "data", "discrete_annotations")
  want = {"train": 1, "validation": 2, "test": 0}
  assert {k: len(v) for k, v in splits.items()} == {
      split: sum(c.set == s for c in lf.ACCEDE) for split, s in want.items()}
  for split, examples in splits.items():
    got = by_clip(examples)
    clips = [c for c in lf.ACCEDE if c.set == want[split]]
    assert sorted(got) == [c.name for c in clips]
    for c in clips:
      ex = got[c.name]
      assert ex["film_id"].decode() == c.film
      for name in ("valence", "arousal", "valence_variance", "arousal_variance"):
        assert ex[name] == np.float32(getattr(c, name)), (c.name, name)
      assert ex["valence_rank"] == c.valence_rank and ex["arousal_rank"] == c.arousal_rank
  # Only facts (partial download) are reported for a clean tree.
  assert {p["severity"] for p in builder.info.metadata["problems"]} == {"info"}


def test_discrete_is_deterministic_and_reloads(tmp_path):
  manual = lf.write_tree(tmp_path / "manual")
  _, first = build(manual, tmp_path / "a", "discrete_annotations")
  _, second = build(manual, tmp_path / "b", "discrete_annotations")
  assert [[ex["clip_id"] for ex in v] for v in first.values()] == [
      [ex["clip_id"] for ex in v] for v in second.values()]
  reloaded = la.LirisAccede(config="discrete_annotations", data_dir=str(tmp_path / "a"))
  assert reloaded.info.splits["train"].num_examples == 4
  assert reloaded.info.metadata["protocol"] == "discrete"
  # The harness's way: by registered name, after importing the module.
  source = tfds.data_source("liris_accede/discrete_annotations", data_dir=str(tmp_path / "a"))
  assert len(source["validation"]) == 2 and len(source["test"]) == 2


@pytest.mark.parametrize("layout", [lf.Layout(), lf.Layout(doubled=True, header=False, mp4=True)])
def test_mediaeval2015(tmp_path, layout):
  manual = lf.write_tree(tmp_path / "manual", layout)
  _, splits = build(manual, tmp_path / "data", "mediaeval2015_annotations")
  every = lf.ACCEDE + lf.MEDIAEVAL
  for split, dev in (("train", True), ("test", False)):
    got = by_clip(splits[split])
    clips = [c for c in every if c.mediaeval_dev == dev]
    assert sorted(got) == sorted(c.name for c in clips)
    for c in clips:
      ex = got[c.name]
      assert ex["valence_class"] == c.valence_class + 1
      assert ex["arousal_class"] == c.arousal_class + 1
      assert ex["violence"] == c.violence
      assert ex["film_id"].decode() == c.film  # MEDIAEVAL clips: from MEDIAEVALdescription.xml
  info = la.LirisAccede(config="mediaeval2015_annotations", data_dir=str(tmp_path / "data")).info
  assert info.features["valence_class"].names == list(la.VALENCE_CLASSES)


@pytest.mark.parametrize("header", [None, "name\tvalence\tarousal"])
def test_mediaeval2016_global(tmp_path, header):
  manual = lf.write_tree(tmp_path / "manual")
  if header:  # the first line is data in the real file; a header is tolerated too
    path = next(manual.rglob("MEDIAEVAL16-Global_prediction.txt"))
    path.write_text(header + "\n" + path.read_text())
  _, splits = build(manual, tmp_path / "data", "mediaeval2016_global_annotations")
  train, test = by_clip(splits["train"]), by_clip(splits["test"])
  assert sorted(train) == [c.name for c in lf.ACCEDE]
  for c in lf.ACCEDE:
    assert train[c.name]["valence"] == np.float32(c.valence)
    assert train[c.name]["arousal"] == np.float32(c.arousal)
  assert sorted(test) == [n for n, _, _ in lf.GLOBAL16]
  for n, v, a in lf.GLOBAL16:
    assert test[n]["valence"] == np.float32(v) and test[n]["arousal"] == np.float32(a)
    assert test[n]["film_id"] == b""


def test_extractors_kwarg_derives_configs():
  configs = {c.name: c for c in la.LirisAccede.BUILDER_CONFIGS}
  assert la.derive_config(configs, "discrete", ()) is configs["discrete_annotations"]
  assert la.derive_config(configs, "discrete", la.DEFAULT_EXTRACTORS) is configs["discrete"]
  custom = la.derive_config(configs, "mediaeval2015", ("visual_stats",))
  assert custom.name == "mediaeval2015_visual_stats"
  assert custom.protocol == "mediaeval2015" and custom.extractors == ("visual_stats",)


# ---------------------------------------------------------------------------------------------
# Malformed input: a DataError naming the file and line.


def _edit(manual: pathlib.Path, name: str, line: int, new: str | None) -> pathlib.Path:
  """Replaces (or, with None, deletes) 1-based line `line` of file `name`."""
  path = next(manual.rglob(name))
  lines = path.read_text().splitlines()
  if new is None:
    del lines[line - 1]
  else:
    lines[line - 1] = new
  path.write_text("\n".join(lines) + "\n")
  return path


MALFORMED = {
    "short_row": ("ACCEDEranking.txt", 3, "1\tACCEDE00001.mp4\t4\t7\t1.62\t4.13\t0.11",
                  "discrete", "expected 8 fields"),
    "not_a_number": ("ACCEDEranking.txt", 4, "2\tACCEDE00002.mp4\t7\t4\t1.9\tabc\t0.1\t0.2",
                     "discrete", "not a number"),
    "valence_out_of_range": ("ACCEDEranking.txt", 2,
                             "0\tACCEDE00000.mp4\t1\t2\t5.7\t4.54\t0.1\t0.2", "discrete",
                             r"valenceValue \(column 5\) is 5.7, outside \[1, 5\]"),
    "bad_set": ("ACCEDEsets.txt", 5, "3\tACCEDE00003.mp4\t4", "discrete", "outside {0, 1, 2}"),
    "clip_twice_in_sets": ("ACCEDEsets.txt", 5, "0\tACCEDE00000.mp4\t0", "discrete",
                           "ACCEDE00000 is listed twice"),
    "broken_xml": ("ACCEDEdescription.xml", 5, "    <name>ACCEDE00000.mp4</nam>", "discrete",
                   "not well-formed XML"),
    "bad_frame": ("ACCEDEdescription.xml", 8, "    <start>12a</start>", "discrete",
                  "not a frame number"),
    "affect_class": ("MEDIAEVALaffect.txt", 3, "1\tMEDIAEVAL00001\t2\t0", "mediaeval2015",
                     r"valenceClass \(column 3\) is 2, outside {-1, 0, 1}"),
    "violence_value": ("ACCEDEviolence.txt", 2, "0\tACCEDE00000\t3", "mediaeval2015",
                       "outside {0, 1}"),
    "shots_in_both": ("shots-testset-nl.txt", 1, "0\tACCEDE00001.mp4", "mediaeval2015",
                      "ACCEDE00001 is in both the development set and the test set"),
    "global_short_row": ("MEDIAEVAL16-Global_prediction.txt", 2, "MEDIAEVAL16_GL_00001.mp4\t1.4",
                         "mediaeval2016_global", "expected 3 fields"),
    "global_out_of_range": ("MEDIAEVAL16-Global_prediction.txt", 1,
                            "MEDIAEVAL16_GL_00000.mp4\t0.5\t3.1", "mediaeval2016_global",
                            r"valence \(column 2\) is 0.5"),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_names_file_and_line(tmp_path, case):
  name, line, new, protocol, message = case
  manual = lf.write_tree(tmp_path / "manual")
  path = _edit(manual, name, line, new)
  with pytest.raises(DataError) as e:
    build(manual, tmp_path / "data", f"{protocol}_annotations")
  text = str(e.value)
  assert re.search(message, text), text
  if name == "shots-testset-nl.txt":  # reported where the clip first appears (the devset)
    assert "shots-devset-nl.txt:" in text and f"shots-testset-nl.txt line {line}" in text
  else:
    assert f"{path}:{line}" in text, text
  assert "Fix:" in text


def test_missing_file_names_it(tmp_path):
  manual = lf.write_tree(tmp_path / "manual")
  next(manual.rglob("ACCEDEsets.txt")).unlink()
  with pytest.raises(DataError, match="ACCEDEsets.txt not found"):
    build(manual, tmp_path / "data", "discrete_annotations")


def test_missing_videos_fail_a_features_build_before_extraction(tmp_path):
  manual = lf.write_tree(tmp_path / "manual")  # no .mp4 files
  problems = la.plan(manual, "discrete", need_videos=True, strict=False).problems
  errors = [p for p in problems if p.severity == "error"]
  assert len(errors) == 1 and "8 clip videos are missing" in errors[0].message
  assert "ACCEDE00000.mp4" in errors[0].message


# ---------------------------------------------------------------------------------------------
# The doctor.


def test_doctor_clean_tree_has_only_facts(tmp_path):
  manual = lf.write_tree(tmp_path / "manual", lf.Layout(doubled=True))
  for config in ("discrete_annotations", "mediaeval2015_annotations",
                 "mediaeval2016_global_annotations"):
    problems = la.doctor(manual, config)
    assert problems and {p.severity for p in problems} == {"info"}, problems


def test_doctor_reports_planted_problems(tmp_path):
  manual = lf.write_tree(tmp_path / "manual")
  ranking = _edit(manual, "ACCEDEranking.txt", 2, "0\tACCEDE00000.mp4\t1\t2\t1.33\t0.2\t0.1\t0.2")
  sets = next(manual.rglob("ACCEDEsets.txt"))
  sets.write_text(sets.read_text() + "5\tACCEDE00005.mp4\t0\n")  # a clip in two sets
  problems = la.doctor(manual, "discrete")
  text = "\n".join(map(str, problems))
  errors = {(pathlib.Path(p.file).name, p.line): p for p in problems if p.severity == "error"}
  assert ("ACCEDEranking.txt", 2) in errors, text
  assert "arousalValue (column 6) is 0.2" in errors["ACCEDEranking.txt", 2].message
  assert ("ACCEDEsets.txt", 10) in errors, text
  assert "ACCEDE00005 is listed twice (first at line 7)" in errors["ACCEDEsets.txt", 10].message
  assert str(ranking) == errors["ACCEDEranking.txt", 2].file
  # Features config: the videos are missing too.
  assert any("8 clip videos are missing" in p.message for p in problems), text
  # A missing file, and a malformed one, in another config.
  next(manual.rglob("shots-devset-nl.txt")).unlink()
  _edit(manual, "MEDIAEVALaffect.txt", 2, "0\tMEDIAEVAL00000\t1")
  problems = la.doctor(manual, "mediaeval2015_annotations")
  errors = [p for p in problems if p.severity == "error"]
  assert any("shots-devset-nl.txt not found" in p.message for p in errors), problems
  bad = [p for p in errors if p.file.endswith("MEDIAEVALaffect.txt")]
  assert len(bad) == 1 and bad[0].line == 2 and "expected 4 fields" in bad[0].message


def test_doctor_reports_film_in_two_splits_and_missing_film(tmp_path):
  manual = lf.write_tree(tmp_path / "manual")
  _edit(manual, "ACCEDEsets.txt", 7, "5\tACCEDE00005.mp4\t0")  # Sintel: validation + test
  xml = next(manual.rglob("ACCEDEdescription.xml"))
  xml.write_text(xml.read_text().replace("<movie>The_Dabbler.mp4</movie>", "<movie></movie>", 1))
  problems = la.doctor(manual, "discrete_annotations")
  warnings = [p.message for p in problems if p.severity == "warning"]
  assert any("film Sintel has clips in several splits (test, validation)" in w
             for w in warnings), warnings
  assert any("ACCEDE00006 has no <movie>" in w for w in warnings), warnings
  # Warnings do not stop a build; the clip keeps an empty film id.
  _, splits = build(manual, tmp_path / "data", "discrete_annotations")
  assert by_clip(splits["test"])["ACCEDE00006"]["film_id"] == b""
  assert len(splits["test"]) == 3


def test_doctor_missing_manual_dir(tmp_path):
  problems = la.doctor(tmp_path / "nope", "discrete")
  assert len(problems) == 1 and problems[0].severity == "error"


# ---------------------------------------------------------------------------------------------
# Features extracted from the clips.


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
  return lf.write_tree(tmp_path_factory.mktemp("liris_videos") / "manual",
                       lf.Layout(doubled=True, videos=True, video_seconds=3.0))


def test_default_extractors_are_the_engines():
  from emojax.features import extract
  assert la.DEFAULT_EXTRACTORS == tuple(extract.DEFAULT)


def test_discrete_with_features_matches_the_engine(tmp_path, video_tree):
  from emojax.features import extract
  extractors = ("vggish_logmel", "spectrogram_image")
  builder, splits = build(video_tree, tmp_path / "data", "discrete", extractors=extractors)
  assert builder.builder_config.name == "discrete_vggish_logmel_spectrogram_image"
  assert sum(map(len, splits.values())) == len(lf.ACCEDE)
  ex = by_clip(splits["test"])["ACCEDE00007"]
  assert ex["valence"] == np.float32(lf.ACCEDE[7].valence)
  want = extract.extract_film(next(video_tree.rglob("ACCEDE00007.mp4")), list(extractors))
  assert ex["vggish_logmel"].shape == (3, 96, 64) and ex["vggish_logmel"].dtype == np.float32
  assert ex["spectrogram_image"].dtype == np.uint8
  for name in extractors:
    np.testing.assert_array_equal(ex[name], want.streams[name])
  metadata = builder.info.metadata
  assert metadata["feature_manifest"] == want.manifest
  assert metadata["feature_dims"] == {"vggish_logmel": 96 * 64, "spectrogram_image": 256 * 256}


def test_mediaeval2016_global_with_features(tmp_path, video_tree):
  _, splits = build(video_tree, tmp_path / "data", "mediaeval2016_global",
                    extractors=("vggish_logmel",))
  test = by_clip(splits["test"])
  assert sorted(test) == [n for n, _, _ in lf.GLOBAL16]
  assert all(ex["vggish_logmel"].shape == (3, 96, 64) for ex in test.values())
  # Different clips, different features (the fixture's tones differ).
  a, b = (test[n]["vggish_logmel"] for n, _, _ in lf.GLOBAL16)
  assert not np.allclose(a, b)
