"""What every emojax command does with a user's mistake, and how it checks where it will write.

Every command line entry (main.py, the importer, folds, the results report, the converters)
runs its work through `run`: an `errors.EmojaxError` (a bad file, key, flag or path) ends with one
line `error: ...` on stderr and exit code `USER_ERROR` (2, the code argparse gives a bad flag),
never a traceback. A traceback is left for what is emojax's own bug.

Every output path a command takes (`--workdir`, `--output`, `--out`, a converter's output file) is
checked before any work by `check_output_dir` / `check_output_file`: an existing file where a
folder goes (or the reverse), or a place the user cannot write, is refused naming the flag, and
nothing there is touched.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from collections.abc import Callable

from emojax import errors

USER_ERROR = 2


def one_line(error: BaseException) -> str:
  """The error's message on one line (a multi-line message is joined with spaces)."""
  return " ".join(str(error).split()) or type(error).__name__


def report(error: BaseException) -> int:
  """Prints `error: <message>` on stderr; returns USER_ERROR."""
  print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
  return USER_ERROR


def run(fn: Callable[[], int | None]) -> int:
  """`fn()`'s exit code (None = 0), or USER_ERROR after `report` for a user error."""
  try:
    code = fn()
  except errors.EmojaxError as e:
    return report(e)
  return 0 if code is None else int(code)


def _named(flag: str, path) -> str:
  """`--flag=path` for a flag, `what path` for a description."""
  return f"{flag}={path}" if flag.startswith("-") else f"{flag} {path}"


def _probe_write(folder: pathlib.Path, flag: str, path: pathlib.Path) -> None:
  try:
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".emojax-write-test.")
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise errors.ConfigError(f"{_named(flag, path)}: cannot write there ({e.strerror or e}); "
                             "pass a folder you can write to") from None


def _nearest_existing(path: pathlib.Path) -> pathlib.Path:
  p = path.absolute()
  while not p.exists() and p != p.parent:
    p = p.parent
  return p


def check_output_dir(path: str | os.PathLike, flag: str, *, create: bool = False) -> pathlib.Path:
  """The output folder `path` of `flag`, refused (ConfigError) when it is an existing file, lies
  below a file, or cannot be written; created only with `create` (else nothing is made)."""
  path = pathlib.Path(path).expanduser()
  if path.exists() and not path.is_dir():
    raise errors.ConfigError(f"{_named(flag, path)} is an existing file, not a folder; pass a "
                             "folder (it is created if missing)")
  base = _nearest_existing(path)
  if not base.is_dir():
    raise errors.ConfigError(f"{_named(flag, path)}: {base} is a file, so no folder can be made "
                             "below it; pass another folder")
  if create:
    try:
      path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise errors.ConfigError(f"{_named(flag, path)}: cannot create the folder "
                               f"({e.strerror or e}); pass a folder you can write to") from None
    base = path
  _probe_write(base, flag, path)
  return path


def check_output_file(path: str | os.PathLike, flag: str) -> pathlib.Path:
  """The output file `path` of `flag`, refused (ConfigError) when it is an existing folder or its
  folder cannot be made or written; nothing is created."""
  path = pathlib.Path(path).expanduser()
  if path.is_dir():
    raise errors.ConfigError(f"{_named(flag, path)} is an existing folder, not a file; pass a "
                             f"file name (e.g. {path / 'out'}{path.suffix or ''})")
  base = _nearest_existing(path.parent)
  if not base.is_dir():
    raise errors.ConfigError(f"{_named(flag, path)}: {base} is a file, so it cannot hold "
                             f"{path.name}; pass another path")
  _probe_write(base, flag, path)
  return path
