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


def test_summary_writer_logs_scalars_without_importing_torch(tmp_path):
  # A fresh interpreter (the test process has imported torch already): the harness's TensorBoard
  # writer loads without PyTorch, and what it logs reads back from the event file.
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from conftest import REPO  # pylint: disable=import-outside-toplevel
  code = ("import sys; from emojax import fileio; w = fileio.summary_writer_class()(sys.argv[1]); "
          "w.add_scalar('phase/train_loss', 0.25, 3); w.add_scalar('phase/train_loss', 0.125, 6);"
          " w.close(); print('torch' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, check=True,
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
  assert out.strip() == "False"
  from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel
  (events,) = tmp_path.glob("events.out.tfevents.*")
  data, logged = events.read_bytes(), []
  while data:   # TFRecord framing: u64 length, u32 crc, the record, u32 crc
    n = int.from_bytes(data[:8], "little")
    event = event_pb2.Event.FromString(data[12:12 + n])
    logged += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    data = data[12 + n + 4:]
  assert logged == [("phase/train_loss", 3, 0.25), ("phase/train_loss", 6, 0.125)]
