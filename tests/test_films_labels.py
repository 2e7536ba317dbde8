"""The `films` labels CSV: both formats parsed exactly, every malformed input named by file:line."""

import numpy as np
import pytest

from emojax.datasets import films
from emojax.errors import DataError


def write(tmp_path, text, name="labels.csv"):
  path = tmp_path / name
  path.write_text(text)
  return path


def test_per_second_rows_in_any_order_with_splits(tmp_path):
  path = write(tmp_path, "film,second,valence,arousal,split\n"
                         "a.mp4,1,0.5,-0.5,train\n"
                         "a,0,0.25,0.125,train\n"
                         "\n"
                         "b,0,-1,1,test\n")
  labels, splits = films.read_labels(path)
  np.testing.assert_array_equal(labels["a"]["valence"], np.float32([0.25, 0.5]))
  np.testing.assert_array_equal(labels["a"]["arousal"], np.float32([0.125, -0.5]))
  np.testing.assert_array_equal(labels["b"]["valence"], np.float32([-1]))
  assert splits == {"a": "train", "b": "test"}


def test_per_clip_rows_become_per_second_labels(tmp_path):
  # Columns in another order; clips of 2.5 s: second s takes the clip holding s + 0.5.
  path = write(tmp_path, "start,end,film,arousal,valence\n"
                         "2.5,5.0,x,0.2,-0.2\n"
                         "0,2.5,x,0.1,0.9\n"
                         "5.0,6.2,x,0.3,0.0\n")
  labels, splits = films.read_labels(path)
  # Middles 0.5 1.5 | 2.5 3.5 4.5 | 5.5 (6.5 > 6.2: the labels end after 6 s).
  np.testing.assert_allclose(labels["x"]["valence"], [0.9, 0.9, -0.2, -0.2, -0.2, 0.0])
  np.testing.assert_allclose(labels["x"]["arousal"], [0.1, 0.1, 0.2, 0.2, 0.2, 0.3])
  assert splits == {"x": "train"}


@pytest.mark.parametrize("text,match", [
    ("film,time,valence,arousal\na,0,0,0\n", r"labels.csv:1: header .* matches no labels format"),
    ("film,second,valence,arousal\na,0,0\n", r"labels.csv:2: 3 fields, the header has 4"),
    ("film,second,valence,arousal\na,0,0,0\na,1,high,0\n",
     r"labels.csv:3: column 'valence' is 'high', not a number"),
    ("film,second,valence,arousal\na,0,0,nan\n", r"labels.csv:2: column 'arousal' .* finite"),
    ("film,second,valence,arousal\na,0,3.5,0\n", r"labels.csv:2: valence = 3.5 is outside"),
    ("film,second,valence,arousal\na,0.5,0,0\n", r"labels.csv:2: second = '0.5'"),
    ("film,second,valence,arousal\na,0,0,0\na,0,0.1,0\n",
     r"labels.csv:3: film 'a' second 0 is also on line 2"),
    ("film,second,valence,arousal\na,0,0,0\na,3,0,0\n",
     r"labels.csv: film 'a' has no row for second\(s\) \[1, 2\]"),
    ("film,second,valence,arousal\na,1,0,0\n", r"no row for second\(s\) \[0\]"),
    ("film,second,valence,arousal,split\na,0,0,0,train\na,1,0,0,test\n",
     r"labels.csv:3: film 'a' is in split 'test' here but 'train' on line 2"),
    ("film,second,valence,arousal,split\na,0,0,0,my split\n", r"labels.csv:2: split 'my split'"),
    ("film,start,end,valence,arousal\na,0,2,0,0\na,1.5,4,0,0\n",
     r"labels.csv:3: clip \[1.5, 4.0\) of film 'a' overlaps the clip on line 2"),
    ("film,start,end,valence,arousal\na,0,2,0,0\na,3,4,0,0\n",
     r"film 'a': no clip covers second\(s\) \[2\]"),
    ("film,start,end,valence,arousal\na,2,4,0,0\n", r"film 'a': no clip covers second\(s\) \[0, 1\]"),
    ("film,start,end,valence,arousal\na,3,2,0,0\n", r"labels.csv:2: clip \[3.0, 2.0\) is empty"),
    ("film,second,valence,arousal\n", r"labels.csv: no label rows"),
    ("", r"labels.csv: empty file"),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, match):
  with pytest.raises(DataError, match=match):
    films.read_labels(write(tmp_path, text))


def test_missing_csv(tmp_path):
  with pytest.raises(DataError, match="labels file not found"):
    films.read_labels(tmp_path / "nope.csv")


def test_find_videos_refuses_duplicate_ids(tmp_path):
  (tmp_path / "a.mp4").write_bytes(b"x")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "b.MKV").write_bytes(b"x")
  (tmp_path / "notes.txt").write_text("x")
  assert sorted(films.find_videos(tmp_path)) == ["a", "b"]
  (tmp_path / "sub" / "a.mov").write_bytes(b"x")
  with pytest.raises(DataError, match="two videos share the film id 'a'"):
    films.find_videos(tmp_path)
