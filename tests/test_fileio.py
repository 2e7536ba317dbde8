"""Tests of emojax.fileio: atomic writes and strict JSON."""

import json
import os

import numpy as np
import pytest

from emojax import fileio


def test_write_json_nan_is_null_and_numpy_converted(tmp_path):
  path = tmp_path / "a" / "m.json"
  fileio.write_json(path, {"pcc": float("nan"), "ccc": np.float32(0.5), "n": np.int64(3),
                           "inf": float("-inf"), "arr": np.arange(2), "t": (1, 2), 4: "x"})
  text = path.read_text()
  assert "NaN" not in text and "Infinity" not in text
  assert json.loads(text) == {"pcc": None, "ccc": 0.5, "n": 3, "inf": None, "arr": [0, 1],
                              "t": [1, 2], "4": "x"}


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
  path = tmp_path / "f.txt"
  fileio.atomic_write_text(path, "old")

  def boom(*args):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", boom)
  with pytest.raises(OSError, match="disk full"):
    fileio.atomic_write_text(path, "new")
  assert path.read_text() == "old"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
