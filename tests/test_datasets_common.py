"""Tests of emojax.datasets.common (the general reading rules of datasets.md)."""

import numpy as np
import pytest

from emojax.datasets import common
from emojax.errors import DataError


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


@pytest.mark.parametrize("layout", ["annotations", "X-annotations/annotations",
                                    "annotations/annotations"])
def test_find_file_single_or_doubled_folder(tmp_path, layout):
  want = _write(tmp_path / layout / "ACCEDEranking.txt", "x")
  _write(tmp_path / "other" / "ACCEDEranking.txt.bak", "x")
  assert common.find_file(tmp_path, "annotations/ACCEDEranking.txt") == want
  assert common.find_files(tmp_path, "annotations/*.txt") == [want]


def test_find_files_sorted_skips_hidden_and_respects_depth(tmp_path):
  b = _write(tmp_path / "b" / "f_2.txt", "")
  a = _write(tmp_path / "a" / "f_1.txt", "")
  _write(tmp_path / "a" / "._f_3.txt", "")  # macOS resource fork
  _write(tmp_path / "1/2/3/4/5/6/f_4.txt", "")
  assert common.find_files(tmp_path, "f_*.txt") == [a, b]
  assert len(common.find_files(tmp_path, "f_*.txt", max_depth=10)) == 3


def test_find_dirs(tmp_path):
  (tmp_path / "part1" / "MEDIAEVAL18_01").mkdir(parents=True)
  (tmp_path / "part1" / "MEDIAEVAL18_00").mkdir(parents=True)
  (tmp_path / "MEDIAEVAL18_02.txt").write_text("")
  found = common.find_dirs(tmp_path, "MEDIAEVAL18_??")
  assert [p.name for p in found] == ["MEDIAEVAL18_00", "MEDIAEVAL18_01"]


def test_find_file_missing_and_ambiguous(tmp_path):
  with pytest.raises(DataError, match=r"no file matching 'annotations/a.txt'"):
    common.find_file(tmp_path, "annotations/a.txt")
  _write(tmp_path / "copy1" / "annotations" / "a.txt", "")
  _write(tmp_path / "copy2" / "annotations" / "a.txt", "")
  with pytest.raises(DataError, match=r"2 files match .*copy1.*copy2.*keep one copy"):
    common.find_file(tmp_path, "annotations/a.txt")
  with pytest.raises(DataError, match="folder not found"):
    common.find_files(tmp_path / "nope", "*.txt")


@pytest.mark.parametrize("sep", ["\t", " ", "  \t "])
def test_read_table_header_and_separators(tmp_path, sep):
  rows = [("0", "ACCEDE00000.mp4", "0.5", "-1"), ("1", "ACCEDE00001.mp4", "1e-1", "2")]
  body = "\n".join(sep.join(r) for r in rows) + "\n"
  with_header = _write(tmp_path / "h.txt", sep.join(["id", "name", "v", "a"]) + "\n" + body)
  without = _write(tmp_path / "n.txt", body)
  t = common.read_table(with_header, min_columns=4)
  assert t.header == ("id", "name", "v", "a")
  assert t.lines == (2, 3)
  u = common.read_table(without, min_columns=4)
  assert u.header is None and u.lines == (1, 2)
  for table in (t, u):
    assert table.strings(1) == ["ACCEDE00000.mp4", "ACCEDE00001.mp4"]
    np.testing.assert_array_equal(table.floats([2, 3]), [[0.5, -1.0], [0.1, 2.0]])
    np.testing.assert_array_equal(table.floats(0), [0.0, 1.0])


def test_read_table_blank_lines_bom_crlf(tmp_path):
  p = tmp_path / "t.txt"
  p.write_bytes("\ufefftime\tv\r\n\r\n0\t0.1\r\n1\t0.2\r\n\r\n".encode("utf-8"))
  t = common.read_table(p, min_columns=2, max_columns=2)
  assert t.header == ("time", "v")
  np.testing.assert_allclose(t.floats(1), [0.1, 0.2])
  assert t.lines == (3, 4)


def test_read_table_errors_name_file_and_line(tmp_path):
  p = _write(tmp_path / "t.txt", "h1 h2 h3\n0 1 2\n1 2\n")
  with pytest.raises(DataError, match=r"t\.txt:3: expected at least 3 fields, found 2"):
    common.read_table(p, min_columns=3)
  q = _write(tmp_path / "q.txt", "0 1 2\n1 x 3\n")
  t = common.read_table(q, min_columns=3, max_columns=3)
  with pytest.raises(DataError, match=r"q\.txt:2: column 2 is 'x', not a number"):
    t.floats([1, 2])
  r = _write(tmp_path / "r.txt", "0 1 2 3\n")
  with pytest.raises(DataError, match=r"r\.txt:1: expected 3 fields, found 4"):
    common.read_table(r, min_columns=3, max_columns=3)
  with pytest.raises(DataError, match=r"missing\.txt: cannot read"):
    common.read_table(tmp_path / "missing.txt", min_columns=1)


def test_numeric_first_line_is_data(tmp_path):
  # '1e3' and '-0.5' are numbers: no header is skipped.
  p = _write(tmp_path / "t.txt", "-0.5 1e3\n2 3\n")
  t = common.read_table(p, min_columns=2)
  assert t.header is None and len(t) == 2


def test_strip_mp4_and_is_number():
  assert common.strip_mp4("ACCEDE00001.mp4") == "ACCEDE00001"
  assert common.strip_mp4(" ACCEDE00001.MP4\t") == "ACCEDE00001"
  assert common.strip_mp4("ACCEDE00001") == "ACCEDE00001"
  assert common.strip_mp4("film.mp4.avi") == "film.mp4.avi"
  assert common.is_number("-1e-3") and common.is_number("7")
  assert not common.is_number("time") and not common.is_number("")


def test_parse_floats(tmp_path):
  np.testing.assert_array_equal(common.parse_floats("1,2.5,-3", path="f", line=1, sep=","),
                                np.float32([1, 2.5, -3]))
  np.testing.assert_array_equal(common.parse_floats("1, 2,", path="f", line=1, sep=",",
                                                    expected=2), np.float32([1, 2]))
  with pytest.raises(DataError, match=r"f:4: 'a' is not a number"):
    common.parse_floats("1,a", path="f", line=4, sep=",")
  with pytest.raises(DataError, match=r"f:1: expected 3 numbers, found 2"):
    common.parse_floats("1 2", path="f", line=1, expected=3)


def test_truncate_to_shortest_reports_cuts():
  streams = {"valence": np.arange(10.0), "audio": np.zeros((12, 3)), "cl": np.ones((7, 2))}
  out, trunc = common.truncate_to_shortest(streams)
  assert list(out) == ["valence", "audio", "cl"]
  assert {k: v.shape[0] for k, v in out.items()} == {"valence": 7, "audio": 7, "cl": 7}
  np.testing.assert_array_equal(out["valence"], np.arange(7.0))
  assert trunc.length == 7 and dict(trunc.cut) == {"valence": 3, "audio": 5, "cl": 0}
  assert trunc.any_cut
  assert trunc.describe() == "truncated to 7 s (seconds cut: audio 5, valence 3)"
  same, t2 = common.truncate_to_shortest({"a": np.zeros(4), "b": np.zeros((4, 2))})
  assert not t2.any_cut and t2.describe() == "all streams have 4 s"


def test_problem_format_and_raise_errors():
  p = common.Problem("a/b.txt", 3, "bad row.", "restore it.")
  assert str(p) == "[error] a/b.txt:3: bad row. Fix: restore it."
  w = common.Problem("", None, "gap.", "filled.", "warning")
  assert w.where == "<download>"
  assert w.to_dict()["severity"] == "warning"
  with pytest.raises(ValueError):
    common.Problem("f", None, "m", "x", "fatal")
  common.raise_errors([w])  # warnings do not raise
  with pytest.raises(DataError, match=r"a/b\.txt:3: bad row\. Fix: restore it\. \(1 more"):
    common.raise_errors([w, p, p])
  e = common.data_error("f.txt", 2, "m.", "x.")
  assert isinstance(e, DataError) and str(e) == "f.txt:2: m. Fix: x."


def test_problem_from_error():
  e = common.data_error("f.txt", 2, "bad.", "fix it.")
  assert common.problem_from_error(e) == common.Problem("f.txt", 2, "bad.", "fix it.", "error")
  p = common.problem_from_error(ValueError("boom"))
  assert p.severity == "error" and "ValueError: boom" in p.message
  # An error about a known file (e.g. the media decoder's): file, line and fix read back.
  e = DataError("/d/a.mp4:7: moov atom not found Fix: download it again")
  assert common.problem_from_error(e, "/d/a.mp4") == common.Problem(
      "/d/a.mp4", 7, "moov atom not found", "download it again", "error")
  assert common.problem_from_error(DataError("/d/a.mp4: empty"), "/d/a.mp4", "redo.") == (
      common.Problem("/d/a.mp4", None, "empty", "redo.", "error"))
