"""Atomic file writes and strict JSON: what is already on disk is never left half-written."""

import json
import math
import os
import pathlib
import tempfile
from collections.abc import Mapping

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
  """Writes `data` to a temp file beside `path`, then renames it over `path`."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
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
  """Reads a JSON file, or returns `default` when it does not exist."""
  path = pathlib.Path(path)
  if not path.exists():
    return default
  return json.loads(path.read_text())
