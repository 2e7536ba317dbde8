"""mediaeval2018 builder: the fixture download built with TFDS and read back."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import dataset_fixtures as fx
from emojax.datasets import mediaeval2018 as me18
from emojax.datasets import mediaeval2018_files as me18_files
from emojax.errors import DataError


def _build(manual_dir, data_dir, config="official_features"):
  builder = me18.Mediaeval2018(config=config, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  root = tmp_path_factory.mktemp("me18")
  written = fx.write_mediaeval2018(root / "manual")
  builder = _build(root / "manual", root / "data")
  sources = builder.as_data_source()
  films = {split: {ex["film_id"].decode(): ex for ex in (src[i] for i in range(len(src)))}
           for split, src in sources.items()}
  return written, builder, films


def _expected_seconds(number):
  n_labels, n_visual, n_audio = fx.ME18_FILMS[number]
  return min(n_labels, n_visual, n_audio)


def test_splits_hold_the_documented_films(built):
  _, builder, films = built
  present = set(fx.ME18_FILMS)
  for split, numbers in me18.split_films().items():
    want = sorted(me18.film_id(i) for i in numbers if i in present)
    assert sorted(films[split]) == want, split
    assert builder.info.splits[split].num_examples == len(want)
  assert sorted(films["train"]) == ["MEDIAEVAL18_00", "MEDIAEVAL18_01", "MEDIAEVAL18_27"]
  assert sorted(films["validation"]) == ["MEDIAEVAL18_02", "MEDIAEVAL18_06", "MEDIAEVAL18_18",
                                         "MEDIAEVAL18_46"]
  assert sorted(films["test"]) == ["MEDIAEVAL18_54", "MEDIAEVAL18_60"]
  assert set(films["dev"]) == set(films["train"]) | set(films["validation"])


def test_validation_holdout_is_13_dev_films():
  splits = me18.split_films()
  assert len(splits["validation"]) == 13 and len(splits["train"]) == 41
  assert set(splits["validation"]) <= set(me18.DEV_FILMS)
  assert not set(splits["train"]) & set(splits["validation"])
  assert len(splits["test"]) == 12 and min(splits["test"]) == 54
  assert me18.check_splits(splits) == []
  bad = me18.check_splits({"train": (1, 2), "validation": (2, 60), "test": (60,)})
  assert len(bad) == 3 and all(p.severity == "error" for p in bad)


def test_labels_and_streams_match_what_was_written(built):
  written, _, films = built
  for number, w in written.items():
    ex = films["dev" if number < 54 else "test"][me18.film_id(number)]
    t = _expected_seconds(number)
    np.testing.assert_allclose(ex["valence"], w.valence[:t], atol=1e-6)
    np.testing.assert_allclose(ex["arousal"], w.arousal[:t], atol=1e-6)
    for name, dim in me18.OFFICIAL_DIMS.items():
      assert ex[name].shape == (t, dim) and ex[name].dtype == np.float32
      observed = ex[me18.MASK_STREAM][:, me18.OFFICIAL_STREAMS.index(name)]
      np.testing.assert_array_equal(ex[name][observed], w.streams[name][:t][observed])
    assert ex[me18.MASK_STREAM].shape == (t, 12)


def test_defects_repaired_by_interpolation_and_masked(built):
  written, _, films = built
  dev = films["dev"]
  col = me18.OFFICIAL_STREAMS.index
  # Film 06: audio second 20 missing -> mean of seconds 19 and 21 (rows 18, 20).
  ex, w = dev["MEDIAEVAL18_06"], written[6].streams["emobase2010"]
  np.testing.assert_allclose(ex["emobase2010"][19], (w[18] + w[20]) / 2, rtol=1e-6, atol=1e-6)
  assert np.flatnonzero(~ex["observed"][:, col("emobase2010")]).tolist() == [19]
  assert ex["observed"][:, :11].all()
  # Film 18: fc6 seconds 5-7 missing -> linear between seconds 4 and 8; jcd second 10.
  ex, w = dev["MEDIAEVAL18_18"], written[18].streams
  for k, second in enumerate([5, 6, 7], start=1):
    want = w["fc6"][3] + (k / 4) * (w["fc6"][7] - w["fc6"][3])
    np.testing.assert_allclose(ex["fc6"][second - 1], want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ex["jcd"][9], (w["jcd"][8] + w["jcd"][10]) / 2, atol=1e-6)
  assert np.flatnonzero(~ex["observed"][:, col("fc6")]).tolist() == [4, 5, 6]
  assert np.flatnonzero(~ex["observed"][:, col("jcd")]).tolist() == [9]
  # Film 27: empty cl file at second 6.
  ex, w = dev["MEDIAEVAL18_27"], written[27].streams["cl"]
  np.testing.assert_allclose(ex["cl"][5], (w[4] + w[6]) / 2, atol=1e-6)
  assert np.flatnonzero(~ex["observed"][:, col("cl")]).tolist() == [5]
  # Film 46: 8 label rows for 30 s of features -> 8 s kept.
  assert dev["MEDIAEVAL18_46"]["valence"].shape == (8,)
  # Films without defects are fully observed.
  assert dev["MEDIAEVAL18_00"]["observed"].all()


def test_every_defect_reported_in_metadata(built):
  _, builder, _ = built
  problems = [me18.Problem(**p) for p in builder.info.metadata["problems"]]
  text = "\n".join(str(p) for p in problems)
  assert "MEDIAEVAL18_06 'emobase2010': no file for second(s) 20 (1 of 23 s)" in text
  assert "MEDIAEVAL18_18 'fc6': no file for second(s) 5-7 (3 of 21 s)" in text
  assert "MEDIAEVAL18_18 'jcd': no file for second(s) 10 (1 of 21 s)" in text
  assert "MEDIAEVAL18_27 'cl': empty file for second 6" in text
  film46 = [p for p in problems if "MEDIAEVAL18_46: labels have 8 rows" in p.message]
  assert len(film46) == 1 and film46[0].severity == "warning"
  assert "cut to 8 s (cut: emobase2010 21 s, each visual descriptor 22 s)" in film46[0].message
  absent = [p for p in problems if "films absent" in p.message]
  assert len(absent) == 1 and "57 of 66" in absent[0].message
  # Each defect is reported once, although 'dev' reads the films again.
  assert sum("empty file for second 6" in p.message for p in problems) == 1
  # Small end-of-film cuts are 'info', nothing is an error.
  assert {p.severity for p in problems} <= {"warning", "info"}
  md = builder.info.metadata
  assert md["feature_dims"] == me18.OFFICIAL_DIMS
  assert md["films"]["MEDIAEVAL18_46"]["seconds"] == 8
  assert len(md["validation_films"]) == 13


def test_metadata_survives_reload(built, tmp_path):
  _, builder, _ = built
  again = me18.Mediaeval2018(config="official_features", data_dir=builder.data_dir_root)
  assert again.info.metadata["films"]["MEDIAEVAL18_06"]["seconds"] == 23
  assert again.info.features["fc6"].shape == (None, 4096)


def test_clean_download_has_no_warnings(tmp_path):
  films = {0: (6, 6, 6), 54: (5, 5, 5)}
  fx.write_mediaeval2018(tmp_path / "m", films=films, defects=False)
  builder = _build(tmp_path / "m", tmp_path / "d")
  problems = builder.info.metadata["problems"]
  assert [p["message"] for p in problems if p["severity"] != "info"] == [
      "64 of 66 films absent: 1-53, 55-65; their splits are built without them."]
  src = builder.as_data_source("test")
  assert len(src) == 1 and src[0]["observed"].all() and src[0]["valence"].shape == (5,)


# ---------------------------------------------------------------------------------------------
# Malformed input: clear errors naming file and line.


def test_bad_visual_file(tmp_path):
  p = tmp_path / "MEDIAEVAL18_00-00001_cl.txt"
  p.write_text(",".join(["1"] * 32) + "\n")
  with pytest.raises(DataError, match=r"00001_cl\.txt:1: expected 33 numbers, found 32"):
    me18.read_visual(p, 33)
  p.write_text("1,2,x\n")
  with pytest.raises(DataError, match=r"00001_cl\.txt:1: 'x' is not a number"):
    me18.read_visual(p, 3)
  p.write_text("1,2,3\n4,5,6\n")
  with pytest.raises(DataError, match=r"00001_cl\.txt:2: expected one line"):
    me18.read_visual(p, 3)
  p.write_text("  \n")
  assert me18.read_visual(p, 3) is None
  p.write_text("1,2,3,\n")  # a trailing comma is tolerated
  np.testing.assert_array_equal(me18.read_visual(p, 3), [1, 2, 3])


def test_bad_audio_file(tmp_path):
  p = tmp_path / "MEDIAEVAL18_00_00001.csv"
  values = np.arange(me18.AUDIO_DIM, dtype=np.float32)
  fx.write_arff(p, values)
  np.testing.assert_array_equal(me18.read_audio(p), values)
  fx.write_arff(p, values[:-1])
  with pytest.raises(DataError, match=r"00001\.csv:\d+: expected a name, 1582 numbers and a "
                     r"class value \(1584 fields\), found 1583"):
    me18.read_audio(p)
  bad = values.astype(str)
  bad[7] = "oops"
  p.write_text("@relation x\n@data\n'u'," + ",".join(bad) + ",0\n")
  with pytest.raises(DataError, match=r"00001\.csv:3: 'oops' is not a number"):
    me18.read_audio(p)
  p.write_text("@relation x\n@data\n")
  assert me18.read_audio(p) is None


def test_bad_labels(tmp_path):
  p = tmp_path / "MEDIAEVAL18_00_Valence-Arousal.txt"
  p.write_text("Time\tValence\tArousal\n0\t0.1\t0.2\n1\t1.5\t0.2\n")
  with pytest.raises(DataError, match=r"Arousal\.txt:3: valence 1\.5 is not in \[-1\.0, 1\.0\]"):
    me18.read_labels(p)
  p.write_text("Time\tValence\tArousal\n0\t0.1\t0.2\n1\t0.1\n")
  with pytest.raises(DataError, match=r"Arousal\.txt:3: expected 3 fields, found 2"):
    me18.read_labels(p)
  p.write_text("0\t0.1\tnan\n")
  with pytest.raises(DataError, match=r"Arousal\.txt:1: arousal nan is not in"):
    me18.read_labels(p)


def test_build_fails_naming_the_file(tmp_path):
  fx.write_mediaeval2018(tmp_path / "m", films={0: (4, 4, 4)}, defects=False)
  bad = next((tmp_path / "m").rglob("MEDIAEVAL18_00-00003_gabor.txt"))
  bad.write_text("1,2,3\n")
  with pytest.raises(DataError, match=r"00003_gabor\.txt:1: expected 60 numbers, found 3"):
    _build(tmp_path / "m", tmp_path / "d")


def test_missing_stream_and_duplicate_copies(tmp_path):
  fx.write_mediaeval2018(tmp_path / "m", films={0: (4, 4, 4)}, defects=False)
  for f in (tmp_path / "m").rglob("*_lbp.txt"):
    f.unlink()
  with pytest.raises(DataError, match=r"MEDIAEVAL18_00 has no 'lbp' feature files.*"
                     r"MEDIAEVAL18-DevSet-Part1-Visual_features"):
    _build(tmp_path / "m", tmp_path / "d")
  fx.write_mediaeval2018(tmp_path / "m2", films={0: (4, 4, 4)}, defects=False)
  fx.write_mediaeval2018(tmp_path / "m2" / "copy", films={0: (4, 4, 4)}, defects=False)
  with pytest.raises(DataError, match=r"2 copies of the label file of MEDIAEVAL18_00"):
    _build(tmp_path / "m2", tmp_path / "d2")


def test_fill_gaps_edges():
  x = np.arange(12, dtype=np.float32).reshape(6, 2)
  obs = np.array([False, True, True, False, True, False])
  y = me18.fill_gaps(x, obs)
  np.testing.assert_array_equal(y[0], x[1])  # nearest at the start
  np.testing.assert_array_equal(y[3], (x[2] + x[4]) / 2)
  np.testing.assert_array_equal(y[5], x[4])  # nearest at the end
  np.testing.assert_array_equal(y[obs], x[obs])


# ---------------------------------------------------------------------------------------------
# extracted_features: emojax's extractors run on the films.


def test_extracted_features_from_films(tmp_path):
  from emojax.features import extract_film
  media = {0: 6, 27: 5, 54: 4}
  written = fx.write_mediaeval2018(tmp_path / "m", films={0: (5, 0, 0), 27: (7, 0, 0),
                                                          54: (6, 0, 0)},
                                   features=False, media_seconds=media)
  config = me18.Mediaeval2018Config(name="extracted_test", features="extracted",
                                    extractors=("vggish_logmel",))
  builder = _build(tmp_path / "m", tmp_path / "d", config=config)
  assert builder.info.features["vggish_logmel"].shape == (None, 96, 64)
  md = builder.info.metadata
  assert md["feature_manifest"]["extractors"]["vggish_logmel"]["shape"] == [96, 64]
  assert md["feature_dims"] == {"vggish_logmel": 96 * 64}
  for split, numbers in (("train", [0, 27]), ("test", [54])):
    src = builder.as_data_source(split)
    got = {ex["film_id"].decode(): ex for ex in (src[i] for i in range(len(src)))}
    assert sorted(got) == [me18.film_id(i) for i in numbers]
    for i in numbers:
      ex = got[me18.film_id(i)]
      film = next((tmp_path / "m").rglob(f"{me18.film_id(i)}.mp4"))
      ref = extract_film(film, ["vggish_logmel"]).streams["vggish_logmel"]
      t = min(len(written[i].valence), ref.shape[0])
      np.testing.assert_array_equal(ex["vggish_logmel"], ref[:t])
      np.testing.assert_allclose(ex["valence"], written[i].valence[:t], atol=1e-6)
  cuts = [p["message"] for p in md["problems"] if "truncated" in p["message"]]
  assert any("MEDIAEVAL18_54: truncated to 4 s (seconds cut: arousal 2, valence 2)" in c
             for c in cuts)
  assert any("MEDIAEVAL18_27: truncated to 5 s" in c for c in cuts)


def test_extracted_features_missing_film(tmp_path):
  fx.write_mediaeval2018(tmp_path / "m", films={0: (5, 0, 0)}, features=False)
  config = me18.Mediaeval2018Config(name="extracted_test", features="extracted",
                                    extractors=("vggish_logmel",))
  with pytest.raises(DataError, match=r"no film file MEDIAEVAL18_00\.mp4 found.*"
                     r"MEDIAEVAL18-DevSet-Part1-Data"):
    _build(tmp_path / "m", tmp_path / "d", config=config)


def test_file_numbered_zero_is_refused(tmp_path):
  fx.write_mediaeval2018(tmp_path / "m", films={0: (4, 4, 4)}, defects=False)
  one = next((tmp_path / "m").rglob("MEDIAEVAL18_00-00001_sc.txt"))
  one.rename(one.with_name("MEDIAEVAL18_00-00000_sc.txt"))
  with pytest.raises(DataError, match=r"00000_sc\.txt: feature files are numbered from 00000"):
    _build(tmp_path / "m", tmp_path / "d")


def test_arff_fast_path_reads_as_line_by_line(tmp_path):
  """The header skip of the audio reader finds the same data lines as reading every line."""
  p = tmp_path / "MEDIAEVAL18_00_00001.csv"
  values = np.arange(me18.AUDIO_DIM, dtype=np.float32)
  fx.write_arff(p, values)
  text = p.read_text()

  def line_by_line(t):
    return [(i, s.strip()) for i, s in enumerate(t.splitlines(), start=1)
            if s.strip() and not s.lstrip().startswith(("@", "%"))]

  def fast(t):
    start, first = me18_files._arff_data_section(t)  # pylint: disable=protected-access
    return [(i, s.strip()) for i, s in enumerate(t[start:].splitlines(), start=first)
            if s.strip() and not s.lstrip().startswith(("@", "%"))]

  assert me18_files._arff_data_section(text)[0] > 0  # pylint: disable=protected-access
  variants = [text, text.replace("\n", "\r\n"), text.replace("\n", "\r"), "junk\n" + text,
              text.replace("@data", "@DATA"), text.replace("@data\n", "@data\n\n  \n% c\n"),
              text.replace("@attribute emobase_0003", "x@attribute"), "@data", "",
              "@relation x\n@data\n1,2\n3,4\n", "\xa0junk\n@data\n1,2", "@r\x0bx\n@data\n1",
              "  @data\n1,2", "x @data\n1", "@r\n\n  \n@data 5\n1,2\n", "\n\n@data\n1"]
  for t in variants:
    assert fast(t) == line_by_line(t), repr(t[:60])
  # A junk header line is a data line either way: the file is refused at that line.
  p.write_text(text.replace("@attribute emobase_0003", "x@attribute"))
  with pytest.raises(DataError, match=r"00001\.csv:\d+: expected one data line"):
    me18.read_audio(p)
