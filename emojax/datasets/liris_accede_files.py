"""Reading the LIRIS-ACCEDE annotation files: one parser per file format.

The one reader of these files for the `liris_accede` and `liris_accede_continuous` builders and
their data doctors (the doctors run the same `plan` in non-strict mode), so a doctor names every
problem the build meets, with the same file and line. Each reader returns what it read and
appends row-level problems to `problems`; structural damage (a row with the wrong number of
fields, a non-number, an empty table) raises DataError.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import xml.parsers.expat
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from emojax.datasets import common
from emojax.datasets.common import Problem

PathLike = str | os.PathLike[str]

# Row counts of the official files, to flag partial downloads (info only).
OFFICIAL_ROWS = {
    "ACCEDEranking.txt": 9800, "ACCEDEsets.txt": 9800, "ACCEDEaffect.txt": 9800,
    "ACCEDEviolence.txt": 9800, "MEDIAEVALaffect.txt": 1100, "MEDIAEVALviolence.txt": 1100,
    "shots-devset-nl.txt": 6144, "shots-testset-nl.txt": 4756,
    "MEDIAEVAL16-Global_prediction.txt": 1200,
}

RESTORE_FIX = "restore the original file from the LIRIS-ACCEDE download."


@dataclasses.dataclass(frozen=True)
class Media:
  """One `<media>` element of a description XML."""
  clip_id: str
  film_id: str
  start_frame: int | None
  end_frame: int | None
  line: int


_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


def read_description(path: PathLike, problems: list[Problem]) -> dict[str, Media]:
  """Reads `ACCEDEdescription.xml` (or `MEDIAEVALdescription.xml`): clip id -> Media.

  Bare `&` in free text (licences) is read as `&amp;`. A `<media>` without `<name>` raises; one
  without `<movie>` gets film_id '' and a warning; empty `<start>`/`<end>` (as in early releases)
  are None.
  """
  path = pathlib.Path(path)
  try:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
  except OSError as e:
    raise common.data_error(path, None, f"cannot read the file ({e.strerror}).", RESTORE_FIX)
  text = _BARE_AMPERSAND.sub("&amp;", text)
  text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # the text is already decoded
  parser = xml.parsers.expat.ParserCreate()
  medias: dict[str, Media] = {}
  current: dict[str, Any] | None = None
  chunks: list[str] = []
  element_line = 0

  def start(name: str, attrs: Mapping[str, str]) -> None:
    nonlocal current, element_line
    del attrs
    element_line = parser.CurrentLineNumber
    if name == "media":
      current = {"line": element_line}
    chunks.clear()

  def end(name: str) -> None:
    nonlocal current
    if current is None:
      return
    if name in ("id", "name", "movie", "start", "end"):
      current[name] = "".join(chunks).strip()
      current[f"{name}_line"] = element_line
    elif name == "media":
      _add_media(path, current, medias, problems)
      current = None
    chunks.clear()

  parser.StartElementHandler = start
  parser.EndElementHandler = end
  parser.CharacterDataHandler = chunks.append
  try:
    parser.Parse(text, True)
  except xml.parsers.expat.ExpatError as e:
    raise common.data_error(path, e.lineno, f"not well-formed XML ({e}).", RESTORE_FIX) from None
  return medias


def _add_media(path: pathlib.Path, fields: dict[str, Any], medias: dict[str, Media],
               problems: list[Problem]) -> None:
  line = fields["line"]
  name = fields.get("name", "")
  if not name:
    raise common.data_error(path, line, "<media> has no <name>.", RESTORE_FIX)
  clip_id = common.strip_mp4(name)
  frames = []
  for tag in ("start", "end"):
    value = fields.get(tag, "")
    if not value:
      frames.append(None)
      continue
    try:
      frames.append(int(value))
    except ValueError:
      raise common.data_error(path, fields.get(f"{tag}_line", line),
                              f"<{tag}> of {name} is '{value}', not a frame number.",
                              RESTORE_FIX) from None
  film_id = common.strip_mp4(fields.get("movie", ""))
  if not film_id:
    problems.append(Problem(str(path), line, f"{clip_id} has no <movie>; its film_id is ''.",
                            "splits by film will put it apart.", "warning"))
  if clip_id in medias:
    problems.append(Problem(str(path), line,
                            f"{clip_id} is described twice (first at line {medias[clip_id].line}).",
                            f"the first is kept; {RESTORE_FIX}", "warning"))
    return
  medias[clip_id] = Media(clip_id, film_id, frames[0], frames[1], line)


@dataclasses.dataclass(frozen=True)
class Rating:
  """One row of `ACCEDEranking.txt` (values on the 1-5 scale)."""
  valence: float
  arousal: float
  valence_variance: float
  arousal_variance: float
  valence_rank: int
  arousal_rank: int
  line: int


def _by_clip(table: common.Table, name_column: int,
             problems: list[Problem]) -> dict[str, int]:
  """Clip id (name without `.mp4`) -> row index; a repeated clip is an error problem."""
  rows: dict[str, int] = {}
  for i, (name, line) in enumerate(zip(table.strings(name_column), table.lines)):
    clip_id = common.strip_mp4(name)
    if clip_id in rows:
      problems.append(Problem(str(table.path), line,
                              f"{clip_id} is listed twice (first at line "
                              f"{table.lines[rows[clip_id]]}).", RESTORE_FIX))
      continue
    rows[clip_id] = i
  return rows


def _check_values(table: common.Table, values: np.ndarray, column: int, what: str,
                  ok: Callable[[np.ndarray], np.ndarray], allowed: str,
                  problems: list[Problem]) -> None:
  """Appends an error problem for each row whose value fails `ok`."""
  for i in np.flatnonzero(~ok(values)):
    problems.append(Problem(str(table.path), table.lines[i],
                            f"{what} (column {column + 1}) is {table.rows[i][column]}, "
                            f"outside {allowed}.", RESTORE_FIX))


def _report_rows(table: common.Table, problems: list[Problem]) -> None:
  """An empty table is an error (raised); a row count other than the official one a fact."""
  if not len(table):
    raise common.data_error(table.path, None, "has no data rows (empty or cut short).",
                            RESTORE_FIX)
  official = OFFICIAL_ROWS.get(table.path.name)
  if official is not None and len(table) != official:
    problems.append(Problem(str(table.path), None,
                            f"has {len(table)} rows; the official file has {official:,}.",
                            "download the archive again if this is not intended.", "info"))


def _in_range(low: float, high: float) -> Callable[[np.ndarray], np.ndarray]:
  return lambda v: (v >= low) & (v <= high)


def _in_set(*allowed: int) -> Callable[[np.ndarray], np.ndarray]:
  return lambda v: np.isin(v, allowed)


def read_ranking(path: PathLike, problems: list[Problem]) -> dict[str, Rating]:
  """Reads `ACCEDEranking.txt`: `id name valenceRank arousalRank valenceValue arousalValue
  valenceVariance arousalVariance` (header optional)."""
  table = common.read_table(path, min_columns=8, max_columns=8)
  _report_rows(table, problems)
  v = table.floats([2, 3, 4, 5, 6, 7])
  _check_values(table, v[:, 0], 2, "valenceRank", lambda x: (x >= 0) & (x == np.round(x)),
                "non-negative integers", problems)
  _check_values(table, v[:, 1], 3, "arousalRank", lambda x: (x >= 0) & (x == np.round(x)),
                "non-negative integers", problems)
  _check_values(table, v[:, 2], 4, "valenceValue", _in_range(1, 5), "[1, 5]", problems)
  _check_values(table, v[:, 3], 5, "arousalValue", _in_range(1, 5), "[1, 5]", problems)
  _check_values(table, v[:, 4], 6, "valenceVariance", lambda x: x >= 0, "[0, inf)", problems)
  _check_values(table, v[:, 5], 7, "arousalVariance", lambda x: x >= 0, "[0, inf)", problems)
  return {
      clip: Rating(float(v[i, 2]), float(v[i, 3]), float(v[i, 4]), float(v[i, 5]),
                   int(v[i, 0]), int(v[i, 1]), table.lines[i])
      for clip, i in _by_clip(table, 1, problems).items()
  }


def read_column(path: PathLike, *, columns: int, value_columns: Sequence[int],
                names: Sequence[str], check: Callable[[np.ndarray], np.ndarray], allowed: str,
                problems: list[Problem], name_column: int = 1,
                first_line_may_be_data: bool = False) -> dict[str, tuple[tuple[float, ...], int]]:
  """Reads a `... name value...` table: clip id -> (values, line).

  Args:
    columns: exact number of fields per row.
    value_columns: the columns read as numbers, checked with `check` (described by `allowed`).
    names: the value columns' names, for messages.
    name_column: the column holding the clip name.
    first_line_may_be_data: for files whose first field is a name even in data rows
      (`name valence arousal`): a first line is a header only when its value columns are not
      numbers.
  """
  table = common.read_table(path, min_columns=columns, max_columns=columns)
  if (first_line_may_be_data and table.header is not None and len(table.header) == columns and
      all(common.is_number(table.header[c]) for c in value_columns)):
    text = pathlib.Path(path).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    first = next(n for n, raw in enumerate(text, start=1) if raw.split())
    table = common.Table(table.path, None, (table.header,) + table.rows, (first,) + table.lines)
  _report_rows(table, problems)
  values = table.floats(list(value_columns))
  for j, (c, name) in enumerate(zip(value_columns, names)):
    _check_values(table, values[:, j], c, name, check, allowed, problems)
  return {clip: (tuple(float(x) for x in values[i]), table.lines[i])
          for clip, i in _by_clip(table, name_column, problems).items()}


def read_sets(path: PathLike, problems: list[Problem]) -> dict[str, tuple[int, int]]:
  """`ACCEDEsets.txt` (`id name set`): clip id -> (set, line); 0 test, 1 learning, 2 validation."""
  rows = read_column(path, columns=3, value_columns=[2], names=["set"], check=_in_set(0, 1, 2),
                     allowed="{0, 1, 2}", problems=problems)
  return {clip: (int(values[0]), line) for clip, (values, line) in rows.items()}


def read_affect(path: PathLike, problems: list[Problem]) -> dict[str, tuple[int, int, int]]:
  """`*affect.txt` (`id name valenceClass arousalClass`): clip -> (valence, arousal, line)."""
  rows = read_column(path, columns=4, value_columns=[2, 3],
                     names=["valenceClass", "arousalClass"], check=_in_set(-1, 0, 1),
                     allowed="{-1, 0, 1}", problems=problems)
  return {clip: (int(v[0]), int(v[1]), line) for clip, (v, line) in rows.items()}


def read_violence(path: PathLike, problems: list[Problem]) -> dict[str, tuple[int, int]]:
  """`*violence.txt` (`id name violence`): clip id -> (0/1, line)."""
  rows = read_column(path, columns=3, value_columns=[2], names=["violence"],
                     check=_in_set(0, 1), allowed="{0, 1}", problems=problems)
  return {clip: (int(values[0]), line) for clip, (values, line) in rows.items()}


def read_shots(path: PathLike, problems: list[Problem]) -> dict[str, int]:
  """`shots-*-nl.txt` (`number name`, no header): clip id -> line, in file order."""
  rows = read_column(path, columns=2, value_columns=[0], names=["number"],
                     check=lambda x: x == np.round(x), allowed="integers", problems=problems)
  return {clip: line for clip, (_, line) in rows.items()}


def read_global(path: PathLike, problems: list[Problem]) -> dict[str, tuple[float, float, int]]:
  """`MEDIAEVAL16-Global_prediction.txt` (`name valence arousal`, 1-5): clip -> (v, a, line)."""
  rows = read_column(path, columns=3, value_columns=[1, 2], names=["valence", "arousal"],
                     check=_in_range(1, 5), allowed="[1, 5]", problems=problems, name_column=0,
                     first_line_may_be_data=True)
  return {clip: (v[0], v[1], line) for clip, (v, line) in rows.items()}
