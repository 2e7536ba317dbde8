"""Atomic file writes and strict JSON: what is already on disk is never left half-written.

Permissions. A new file gets the mode `open()` would give it (0666 less the process umask, e.g.
0644 under umask 022), not the 0600 of the temp file it is written through; a file written over
keeps its mode.
"""

import json
import math
import os
import pathlib
import stat
import sys
import tempfile
from collections.abc import Mapping

import numpy as np

from emojax.errors import DataError


def _umask() -> int:
  """The process umask (read from /proc on Linux; elsewhere set and restored at once)."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def _new_file_mode(path: pathlib.Path) -> int:
  try:
    return stat.S_IMODE(path.stat().st_mode)  # written over: keep its mode
  except FileNotFoundError:
    return 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
  """Writes `data` to a temp file beside `path`, then renames it over `path`."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  mode = _new_file_mode(path)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    try:
      os.unlink(tmp)
    except FileNotFoundError:
      pass
    raise
  return path


def atomic_write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
  """Atomic UTF-8 text write (newlines written as given)."""
  return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj):
  """Converts numpy scalars/arrays and tuples to JSON types; NaN/Inf floats become None."""
  if isinstance(obj, Mapping):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return to_jsonable(obj.tolist())
  if isinstance(obj, np.generic):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  if isinstance(obj, os.PathLike):
    return os.fspath(obj)
  return obj


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> pathlib.Path:
  """Writes strict JSON atomically: undefined metrics (NaN) are written as `null`."""
  text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, sort_keys=False)
  return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike, default=None):
  """Reads a JSON file, or returns `default` when it does not exist.

  A truncated or garbage file raises DataError naming the file (emojax writes its JSON atomically,
  so such a file was damaged outside emojax).
  """
  path = pathlib.Path(path)
  if not path.exists():
    return default
  if path.is_dir():
    raise DataError(f"{path} is a folder, not a JSON file; move it away")
  try:
    return json.loads(path.read_bytes().decode("utf-8"))
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not a UTF-8 JSON file ({e.reason} at byte {e.start}); the file is "
                    "damaged: restore it from a backup or delete it") from None
  except json.JSONDecodeError as e:
    raise DataError(f"{path}: not valid JSON ({e.msg}: line {e.lineno} column {e.colno}); the "
                    "file is truncated or damaged: restore it from a backup or delete it") from None


def summary_writer_class():
  """tensorboardX's `SummaryWriter`, imported without PyTorch where nothing has imported it yet.

  tensorboardX imports torch whenever it is installed (requirements-test.txt installs it; emojax
  reads .pth weights with it where present) only to accept torch tensors, which emojax never logs
  (it logs floats); importing torch there cost every training process ~1.5 s of CPU and ~200 MB.
  While tensorboardX loads, `import torch` fails (`sys.modules["torch"] = None`), so its writers
  take NumPy values and floats only; a process that has already imported torch (a test worker, a
  weights conversion) is left as is.
  """
  if "tensorboardX" not in sys.modules and "torch" not in sys.modules:
    sys.modules["torch"] = None
    try:
      import tensorboardX  # pylint: disable=g-import-not-at-top,unused-import
    finally:
      del sys.modules["torch"]
  import tensorboardX  # pylint: disable=g-import-not-at-top
  return tensorboardX.SummaryWriter
