"""LIRIS-ACCEDE as a TFDS dataset: one example per clip (discrete, MediaEval 2015, MediaEval 2016).

The files are read as the LIRIS-ACCEDE site distributes them (see MANUAL_DOWNLOAD_INSTRUCTIONS and
docs/datasets/liris_accede.md). Configs:

- `discrete`: valence/arousal values on the 1-5 scale with their variances and ranks
  (`ACCEDEranking.txt`); splits from `ACCEDEsets.txt`: `train` = learning set (1),
  `validation` = validation set (2), `test` = test set (0). `train+validation` is the "FULL"
  learning set of the readme.
- `mediaeval2015`: 3-class labels (`valence_class`: negative / neutral / positive for -1 / 0 / 1,
  `arousal_class`: calm / neutral / active) from `ACCEDEaffect.txt` + `MEDIAEVALaffect.txt`, the
  `violence` flag from `*violence.txt`; `train` = `shots-devset-nl.txt` (6,144 clips), `test` =
  `shots-testset-nl.txt` (4,756 clips).
- `mediaeval2015_clips`: `mediaeval2015` with seed 002's per-second `keyframe` (256 x 256 x 3)
  and `spectrogram_image` (256 x 256) uint8 streams (`emojax.datasets.clip_streams`).
- `mediaeval2016_global`: `train` = the 9,800 discrete clips (values 1-5), `test` = the 1,200
  clips of `MEDIAEVAL16-Global_prediction.txt` (values 1-5).

Each example: `clip_id` (file name without `.mp4`), `film_id` (the source film, `<movie>` of the
description XML without `.mp4`; '' when no description XML lists the clip), the labels, and one
`(T, ...)` float32 per-second stream per feature the extraction engine computes from the clip
(clips are 8-12 s). `*_annotations` configs (or `extractors=()`) hold labels only and need no
videos. Keys are clip ids. Problems found in the files (and repairs) go into
`info.metadata['problems']`; `doctor(manual_dir, config)` lists them before a build.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
import xml.parsers.expat
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.datasets import common
from emojax.datasets.common import Problem
from emojax.errors import DataError

PathLike = str | os.PathLike[str]

# The features computed from the videos when a config does not say otherwise: the extraction
# engine's defaults (emojax.features.extract.DEFAULT; a test keeps the two equal).
DEFAULT_EXTRACTORS: tuple[str, ...] = ("vggish_logmel", "audio_functionals", "visual_stats")

# Row counts of the official files, to flag partial downloads (info only).
OFFICIAL_ROWS = {
    "ACCEDEranking.txt": 9800, "ACCEDEsets.txt": 9800, "ACCEDEaffect.txt": 9800,
    "ACCEDEviolence.txt": 9800, "MEDIAEVALaffect.txt": 1100, "MEDIAEVALviolence.txt": 1100,
    "shots-devset-nl.txt": 6144, "shots-testset-nl.txt": 4756,
    "MEDIAEVAL16-Global_prediction.txt": 1200,
}
SET_SPLITS = {1: "train", 2: "validation", 0: "test"}
VALENCE_CLASSES = ("negative", "neutral", "positive")
AROUSAL_CLASSES = ("calm", "neutral", "active")
PROTOCOLS = ("discrete", "mediaeval2015", "mediaeval2016_global")

RESTORE_FIX = "restore the original file from the LIRIS-ACCEDE download."

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
LIRIS-ACCEDE needs an agreement: ask for access at https://liris-accede.ec-lyon.fr/ and download
the archives below. Unzip them all into ONE folder and pass it as manual_dir (`--manual_dir` of
`tfds build`, `DownloadConfig(manual_dir=...)`, or main.py --mode=doctor). Folder names inside do
not matter (a doubled folder such as LIRIS-ACCEDE-annotations/annotations/ is fine); files are
found by name.

config discrete:
  LIRIS-ACCEDE-data.zip         -> ACCEDEdescription.xml, data/ACCEDE00000.mp4 ... ACCEDE09799.mp4
  LIRIS-ACCEDE-annotations.zip  -> annotations/ACCEDEranking.txt, annotations/ACCEDEsets.txt
config mediaeval2015 (the above, plus):
  MEDIAEVAL-data.zip            -> MEDIAEVALdescription.xml, data/MEDIAEVAL00000.mp4 ... (1,100)
  MEDIAEVAL-annotations.zip     -> annotations/ACCEDEaffect.txt, MEDIAEVALaffect.txt,
                                   ACCEDEviolence.txt, MEDIAEVALviolence.txt
  MEDIAEVAL-mapping.zip         -> shots-devset-nl.txt, shots-testset-nl.txt
config mediaeval2016_global (discrete files, plus from the MediaEval 2016 task):
  MEDIAEVAL16-Global_prediction.txt and the 1,200 test clips (<name>.mp4, any folder)

It is in place when `ACCEDEdescription.xml` and `ACCEDEranking.txt` lie somewhere under
manual_dir (plus the files of your config). The `*_annotations` configs need no .mp4 files.
Check a download before a long build with:
  python main.py --mode=doctor --dataset=liris_accede/discrete --manual_dir=<folder>
"""


# ---------------------------------------------------------------------------------------------
# Parsing: each reader returns what it read and appends row-level problems to `problems`;
# structural damage (a row with the wrong number of fields, a non-number) raises DataError.


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
  values = table.floats(list(value_columns)) if len(table) else np.zeros((0, len(value_columns)))
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


# ---------------------------------------------------------------------------------------------
# Assembling the splits of one protocol.


@dataclasses.dataclass
class Plan:
  """What a build writes: per split, the examples' labels (no features yet), in key order."""
  splits: dict[str, list[dict[str, Any]]]
  videos: dict[str, pathlib.Path]  # clip id -> video (features mode only)
  problems: list[Problem]


def _locate(root: pathlib.Path, name: str, problems: list[Problem], *,
            required: bool = True, why: str = "") -> pathlib.Path | None:
  found = common.find_files(root, name)
  if len(found) == 1:
    return found[0]
  if not found:
    problems.append(Problem(
        str(root), None, f"{name} not found{why}.",
        f"unzip the archive that holds {name} into manual_dir (see the download instructions).",
        "error" if required else "warning"))
    return None
  problems.append(Problem(str(root), None,
                          f"{len(found)} copies of {name}: {', '.join(map(str, found[:3]))}.",
                          "keep one copy of the download under manual_dir."))
  return None


def parse_or_report(reader: Callable[..., Any], path: pathlib.Path | None,
                    problems: list[Problem], strict: bool) -> Any:
  """Runs `reader(path, problems)`; in non-strict mode a DataError becomes a problem."""
  if path is None:
    return None
  if strict:
    return reader(path, problems)
  try:
    return reader(path, problems)
  except DataError as e:
    problems.append(problem_from_error(e, path))
    return None


def problem_from_error(error: DataError, path: pathlib.Path) -> Problem:
  """A Problem from a DataError message `file[:line]: message Fix: fix`."""
  text = str(error)
  message, _, fix = text.partition(" Fix: ")
  line = None
  match = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
  if match:
    line = int(match.group(1))
    message = message[match.end():]
  elif message.startswith(f"{path}: "):
    message = message[len(f"{path}: "):]
  return Problem(str(path), line, message, fix or RESTORE_FIX)


def _films(root: pathlib.Path, problems: list[Problem], strict: bool,
           required: Sequence[str], optional: Sequence[str]) -> dict[str, Media]:
  films: dict[str, Media] = {}
  for name in list(required) + list(optional):
    why = "" if name in required else "; its clips get film_id ''"
    path = _locate(root, name, problems, required=name in required, why=why)
    medias = parse_or_report(read_description, path, problems, strict)
    for clip, media in (medias or {}).items():
      films.setdefault(clip, media)
  return films


def _film_of(clip: str, films: Mapping[str, Media], missing: list[str]) -> str:
  media = films.get(clip)
  if media is None:
    missing.append(clip)
    return ""
  return media.film_id


def _report_missing_films(missing: list[str], problems: list[Problem]) -> None:
  if missing:
    problems.append(Problem("", None,
                            f"{len(missing)} clips are in no description XML (e.g. "
                            f"{', '.join(missing[:3])}); their film_id is ''.",
                            "unzip the archive holding the description XML of these clips.",
                            "warning"))


def _report_film_overlap(splits: Mapping[str, list[dict[str, Any]]],
                         problems: list[Problem]) -> None:
  owner: dict[str, str] = {}
  shared: dict[str, set[str]] = {}
  for split, examples in splits.items():
    for ex in examples:
      film = ex["film_id"]
      if not film:
        continue
      if owner.setdefault(film, split) != split:
        shared.setdefault(film, {owner[film]}).add(split)
  for film, names in sorted(shared.items()):
    problems.append(Problem("", None, f"film {film} has clips in several splits "
                            f"({', '.join(sorted(names))}).",
                            "the official split is kept; split by film_id yourself if you need "
                            "film-disjoint sets.", "warning"))


def plan(manual_dir: PathLike, protocol: str, *, need_videos: bool,
         strict: bool = True) -> Plan:
  """Reads the annotation files of `protocol` and assembles the splits.

  Args:
    manual_dir: the download folder.
    protocol: one of PROTOCOLS.
    need_videos: also find each clip's `.mp4` (a missing one is an error problem).
    strict: raise DataError on malformed files (the builder); when False, every problem is
      returned instead (the doctor).

  Returns:
    The plan; its problems include errors only when strict is False.
  """
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise common.data_error(root, None, "manual_dir not found.",
                            "pass the folder you unzipped LIRIS-ACCEDE into.")
  problems: list[Problem] = []
  missing_films: list[str] = []
  splits: dict[str, list[dict[str, Any]]] = {}
  if protocol in ("discrete", "mediaeval2016_global"):
    films = _films(root, problems, strict, ["ACCEDEdescription.xml"], [])
    ranking = parse_or_report(read_ranking, _locate(root, "ACCEDEranking.txt", problems),
                              problems, strict)
    if protocol == "discrete":
      sets = parse_or_report(read_sets, _locate(root, "ACCEDEsets.txt", problems), problems, strict)
      if ranking is not None and sets is not None:
        splits = _discrete_splits(ranking, sets, films, missing_films, problems)
    else:
      glob = parse_or_report(read_global,
                             _locate(root, "MEDIAEVAL16-Global_prediction.txt", problems),
                             problems, strict)
      if ranking is not None and glob is not None:
        splits = _global_splits(ranking, glob, films, missing_films, problems)
  else:
    films = _films(root, problems, strict, ["ACCEDEdescription.xml"],
                   ["MEDIAEVALdescription.xml"])
    tables, paths = {}, {}
    for name, reader in (("ACCEDEaffect.txt", read_affect), ("MEDIAEVALaffect.txt", read_affect),
                         ("ACCEDEviolence.txt", read_violence),
                         ("MEDIAEVALviolence.txt", read_violence),
                         ("shots-devset-nl.txt", read_shots), ("shots-testset-nl.txt", read_shots)):
      paths[name] = _locate(root, name, problems)
      tables[name] = parse_or_report(reader, paths[name], problems, strict)
    if all(t is not None for t in tables.values()):
      splits = _mediaeval2015_splits(tables, paths, films, missing_films, problems)
  _report_missing_films(missing_films, problems)
  _report_film_overlap(splits, problems)
  videos: dict[str, pathlib.Path] = {}
  if need_videos and splits:
    videos = _find_videos(root, [ex["clip_id"] for exs in splits.values() for ex in exs], problems)
  if strict:
    common.raise_errors(problems)
  return Plan(splits, videos, problems)


def _discrete_splits(ranking: Mapping[str, Rating], sets: Mapping[str, tuple[int, int]],
                     films: Mapping[str, Media], missing_films: list[str],
                     problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:
  splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SET_SPLITS.values()}
  for clip in sorted(ranking):
    if clip not in sets:
      r = ranking[clip]
      problems.append(Problem("", None, f"{clip} (ACCEDEranking.txt line {r.line}) is in no set "
                              "of ACCEDEsets.txt.", RESTORE_FIX))
      continue
    r = ranking[clip]
    split = SET_SPLITS.get(sets[clip][0])
    if split is None:  # reported by read_sets
      continue
    splits[split].append({
        "clip_id": clip, "film_id": _film_of(clip, films, missing_films),
        "valence": r.valence, "arousal": r.arousal,
        "valence_variance": r.valence_variance, "arousal_variance": r.arousal_variance,
        "valence_rank": r.valence_rank, "arousal_rank": r.arousal_rank,
    })
  for clip in sorted(set(sets) - set(ranking)):
    problems.append(Problem("", None, f"{clip} (ACCEDEsets.txt line {sets[clip][1]}) has no "
                            "row in ACCEDEranking.txt.", RESTORE_FIX))
  return splits


def _global_splits(ranking: Mapping[str, Rating], glob: Mapping[str, tuple[float, float, int]],
                   films: Mapping[str, Media], missing_films: list[str],
                   problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:
  train = [{"clip_id": clip, "film_id": _film_of(clip, films, missing_films),
            "valence": r.valence, "arousal": r.arousal} for clip, r in sorted(ranking.items())]
  test = []
  for clip, (v, a, line) in sorted(glob.items()):
    if clip in ranking:
      problems.append(Problem("", None, f"{clip} is both a development clip (ACCEDEranking.txt "
                              f"line {ranking[clip].line}) and a test clip "
                              f"(MEDIAEVAL16-Global_prediction.txt line {line}).", RESTORE_FIX))
      continue
    test.append({"clip_id": clip, "film_id": films[clip].film_id if clip in films else "",
                 "valence": v, "arousal": a})
  return {"train": train, "test": test}


def _mediaeval2015_splits(tables: Mapping[str, Any], paths: Mapping[str, pathlib.Path],
                          films: Mapping[str, Media],
                          missing_films: list[str],
                          problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:

  def merged(a: str, b: str) -> dict[str, Any]:
    out = dict(tables[a])
    for clip, row in tables[b].items():
      if clip in out:
        problems.append(Problem("", None, f"{clip} is in both {a} (line {out[clip][-1]}) and "
                                f"{b} (line {row[-1]}).", RESTORE_FIX))
        continue
      out[clip] = row
    return out

  affect = merged("ACCEDEaffect.txt", "MEDIAEVALaffect.txt")
  violence = merged("ACCEDEviolence.txt", "MEDIAEVALviolence.txt")
  dev, test = tables["shots-devset-nl.txt"], tables["shots-testset-nl.txt"]
  splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
  for split, shots, name in (("train", dev, "shots-devset-nl.txt"),
                             ("test", test, "shots-testset-nl.txt")):
    for clip in sorted(shots):
      if split == "train" and clip in test:
        problems.append(Problem(str(paths[name]), shots[clip],
                                f"{clip} is in both the development set and "
                                f"the test set (shots-testset-nl.txt line {test[clip]}).",
                                RESTORE_FIX))
        continue
      if split == "test" and clip in dev:
        continue
      if clip not in affect or clip not in violence:
        what = "ACCEDEaffect.txt/MEDIAEVALaffect.txt" if clip not in affect else "*violence.txt"
        problems.append(Problem(str(paths[name]), shots[clip], f"{clip} has no label in {what}.",
                                RESTORE_FIX))
        continue
      v, a, _ = affect[clip]
      splits[split].append({
          "clip_id": clip, "film_id": _film_of(clip, films, missing_films),
          "valence_class": v + 1, "arousal_class": a + 1, "violence": violence[clip][0],
      })
  unused = sorted(set(affect) - set(dev) - set(test))
  if unused:
    problems.append(Problem("", None, f"{len(unused)} labelled clips are in neither shots list "
                            f"(e.g. {', '.join(unused[:3])}); they are left out.",
                            "check that shots-devset-nl.txt and shots-testset-nl.txt are complete.",
                            "info"))
  return splits


def _find_videos(root: pathlib.Path, clips: Sequence[str],
                 problems: list[Problem]) -> dict[str, pathlib.Path]:
  index: dict[str, list[pathlib.Path]] = {}
  for path in common.find_files(root, "*.mp4"):
    index.setdefault(common.strip_mp4(path.name), []).append(path)
  videos = {}
  missing = []
  for clip in clips:
    paths = index.get(clip, [])
    if not paths:
      missing.append(clip)
    elif len(paths) > 1:
      problems.append(Problem(str(paths[1]), None, f"{clip}.mp4 is present {len(paths)} times "
                              f"(also {paths[0]}).", "keep one copy under manual_dir."))
    else:
      videos[clip] = paths[0]
  if missing:
    problems.append(Problem(str(root), None,
                            f"{len(missing)} clip videos are missing (e.g. "
                            f"{', '.join(m + '.mp4' for m in missing[:3])}).",
                            "unzip the data archives (LIRIS-ACCEDE-data.zip, MEDIAEVAL-data.zip, "
                            "the MediaEval 2016 test clips) into manual_dir, or build a "
                            "*_annotations config."))
  return videos


# ---------------------------------------------------------------------------------------------
# Features.


def log_problems(where: str, problems: Sequence[Problem]) -> None:
  for p in problems:
    logging.log(logging.INFO if p.severity == "info" else logging.WARNING, "%s: %s", where, p)


def extract_streams(video: pathlib.Path, extractors: Sequence[str],
                    specs: common.StreamSpecs) -> tuple[dict[str, np.ndarray], common.Truncation]:
  """Runs the extraction engine on one video -> streams truncated to the shortest, and the cut."""
  from emojax.features import extract  # pylint: disable=g-import-not-at-top
  features = extract.extract_film(str(video), list(extractors), progress=False)
  streams = {}
  for name, (shape, dtype) in specs.items():
    if name not in features.streams:
      raise DataError(f"{video}: the extraction engine returned no '{name}' stream (got "
                      f"{sorted(features.streams)}). Fix: rebuild with matching emojax versions.")
    x = np.asarray(features.streams[name], dtype)
    if x.shape[1:] != tuple(shape):
      raise DataError(f"{video}: stream '{name}' has rows of shape {x.shape[1:]}, expected "
                      f"{tuple(shape)}. Fix: rebuild with matching emojax versions.")
    streams[name] = x
  return common.truncate_to_shortest(streams)


def feature_metadata(extractors: Sequence[str]) -> tuple[dict[str, Any], common.StreamSpecs]:
  """(metadata entries `feature_manifest` and `feature_dims`, stream specs); empty for no extractors."""
  if not extractors:
    return {"feature_manifest": {}, "feature_dims": {}}, {}
  manifest, specs = common.extracted_specs(extractors)
  dims = {name: int(np.prod(shape)) for name, (shape, _) in specs.items()}
  return {"feature_manifest": manifest, "feature_dims": dims}, specs


# ---------------------------------------------------------------------------------------------
# The builder.


@dataclasses.dataclass(eq=False)
class LirisAccedeConfig(tfds.core.BuilderConfig):
  """A protocol and the features extracted from the clips (none: annotations only)."""
  protocol: str = "discrete"
  extractors: tuple[str, ...] = DEFAULT_EXTRACTORS


DESCRIPTIONS = {
    "discrete": "valence/arousal 1-5 + variances and ranks; official learning/validation/test sets",
    "mediaeval2015": "MediaEval 2015: 3-class valence/arousal + violence; official dev/test split",
    "mediaeval2016_global": "MediaEval 2016 Global: 9,800 development + 1,200 test clips (1-5)",
}


def describe(text: str, extractors: Sequence[str]) -> str:
  if not extractors:
    return f"{text}; labels only (no videos needed)."
  return f"{text}; features {', '.join(extractors)} extracted from the videos."


def _configs() -> list[LirisAccedeConfig]:
  out = []
  for protocol, text in DESCRIPTIONS.items():
    out.append(LirisAccedeConfig(name=protocol, protocol=protocol,
                                 description=describe(text, DEFAULT_EXTRACTORS)))
    out.append(LirisAccedeConfig(name=f"{protocol}_annotations", protocol=protocol, extractors=(),
                                 description=describe(text, ())))
  # Seed 002's per-segment images (emojax.datasets.clip_streams.STREAMS) with the 3-class labels.
  out.append(LirisAccedeConfig(name="mediaeval2015_clips", protocol="mediaeval2015",
                               extractors=("keyframe", "spectrogram_image"),
                               description=describe(DESCRIPTIONS["mediaeval2015"],
                                                    ("keyframe", "spectrogram_image"))))
  return out


def derive_config(configs: Mapping[str, tfds.core.BuilderConfig],
                  config: str | tfds.core.BuilderConfig | None,
                  extractors: Sequence[str]) -> tfds.core.BuilderConfig:
  """The config `config` with `extractors` instead of its own (a registered one if it exists)."""
  if config is None:
    base = next(iter(configs.values()))
  elif isinstance(config, str):
    if config not in configs:
      raise ValueError(f"unknown config {config!r}; expected one of {sorted(configs)}")
    base = configs[config]
  else:
    base = config
  extractors = tuple(extractors)
  if extractors == tuple(base.extractors):
    return base
  stem = getattr(base, "protocol", "")
  suffix = "_".join(extractors) if extractors else "annotations"
  name = f"{stem}_{suffix}" if stem else suffix
  if name in configs and tuple(configs[name].extractors) == extractors:
    return configs[name]
  text = DESCRIPTIONS.get(stem, "LIRIS-ACCEDE continuous: per-second valence/arousal")
  return dataclasses.replace(base, name=name, extractors=extractors,
                             description=describe(text, extractors))


class LirisAccede(tfds.core.GeneratorBasedBuilder):
  """LIRIS-ACCEDE clips with discrete, MediaEval 2015 or MediaEval 2016 Global labels."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: discrete, mediaeval2015, mediaeval2016_global (+ _annotations).",
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = _configs()

  def __init__(self, *, extractors: Sequence[str] | None = None, **kwargs: Any):
    """`extractors` overrides the config's feature extractors (() = annotations only)."""
    if extractors is not None:
      configs = {c.name: c for c in self.BUILDER_CONFIGS}
      kwargs["config"] = derive_config(configs, kwargs.get("config"), extractors)
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    features: dict[str, Any] = {"clip_id": tfds.features.Text(), "film_id": tfds.features.Text()}
    if config.protocol == "discrete":
      for name in ("valence", "arousal", "valence_variance", "arousal_variance"):
        features[name] = tfds.features.Scalar(np.float32)
      features["valence_rank"] = tfds.features.Scalar(np.int32)
      features["arousal_rank"] = tfds.features.Scalar(np.int32)
    elif config.protocol == "mediaeval2015":
      features["valence_class"] = tfds.features.ClassLabel(names=VALENCE_CLASSES)
      features["arousal_class"] = tfds.features.ClassLabel(names=AROUSAL_CLASSES)
      features["violence"] = tfds.features.ClassLabel(names=("non_violent", "violent"))
    else:
      features["valence"] = tfds.features.Scalar(np.float32)
      features["arousal"] = tfds.features.Scalar(np.float32)
    if config.extractors:
      features.update(common.stream_features(common.extracted_specs(config.extractors)[1]))
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        homepage="https://liris-accede.ec-lyon.fr/",
        citation=CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
    config = self.builder_config
    the_plan = plan(pathlib.Path(dl_manager.manual_dir), config.protocol,
                    need_videos=bool(config.extractors))
    self._problems = list(the_plan.problems)
    log_problems(f"liris_accede/{config.name}", self._problems)
    entries, specs = feature_metadata(config.extractors)
    self.info.metadata.update({
        "protocol": config.protocol, "extractors": list(config.extractors),
        "problems": [p.to_dict() for p in self._problems], **entries,
    })
    return {split: self._generate_examples(examples, the_plan.videos, specs)
            for split, examples in the_plan.splits.items() if examples}

  def _generate_examples(self, examples: list[dict[str, Any]],
                         videos: Mapping[str, pathlib.Path],
                         specs: common.StreamSpecs) -> Iterator[tuple[str, dict[str, Any]]]:
    config = self.builder_config
    for example in examples:
      example = dict(example)
      if specs:
        video = videos[example["clip_id"]]
        streams, cut = extract_streams(video, config.extractors, specs)
        if cut.any_cut:
          self._add_problem(Problem(str(video), None, f"feature streams {cut.describe()}.",
                                    "none needed: the streams are kept at their common length.",
                                    "info"))
        example.update(streams)
      yield example["clip_id"], example

  def _add_problem(self, problem: Problem) -> None:
    self._problems.append(problem)
    self.info.metadata["problems"] = [p.to_dict() for p in self._problems]


CITATION = """\
@article{baveye2015liris,
  title={LIRIS-ACCEDE: A Video Database for Affective Content Analysis},
  author={Baveye, Yoann and Dellandr{\\'e}a, Emmanuel and Chamaret, Christel and Chen, Liming},
  journal={IEEE Transactions on Affective Computing}, volume={6}, number={1}, pages={43--55},
  year={2015}
}
@inproceedings{sjoberg2015mediaeval,
  title={The MediaEval 2015 Affective Impact of Movies Task},
  author={Sj{\\"o}berg, Mats and Baveye, Yoann and Wang, Hanli and Quang, Vu Lam and Ionescu,
          Bogdan and Dellandr{\\'e}a, Emmanuel and Schedl, Markus and
          Demarty, Claire-H{\\'e}l{\\`e}ne and Chen, Liming},
  booktitle={MediaEval 2015 Workshop}, year={2015}
}
"""


def doctor(manual_dir: PathLike,
           config: str | LirisAccedeConfig | None = "discrete") -> list[Problem]:
  """Every problem of a download for `config` (a config name or object; None = 'discrete'),
  without building; an unknown config name is reported as an error.

  Lists missing or duplicated files, malformed rows (file and line), labels out of range, a clip
  in two sets, clips without a film, films in several splits, missing videos (features configs).
  """
  if not isinstance(config, LirisAccedeConfig):
    config, problems = common.doctor_config("liris_accede", LirisAccede.BUILDER_CONFIGS, config,
                                            "discrete")
    if problems:
      return problems
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    return [Problem(str(root), None, "manual_dir not found.",
                    "pass the folder you unzipped LIRIS-ACCEDE into.")]
  return plan(root, config.protocol, need_videos=bool(config.extractors), strict=False).problems
