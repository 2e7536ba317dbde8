"""`films`: your own films (a folder of videos) with a CSV of per-second or per-clip labels.

Folder: any video files FFmpeg reads (.mp4 .mkv .mov .avi .webm .m4v .mpg .mpeg .wmv .flv .ts),
found recursively; a film's id is its file name without the extension (ids must be unique).

Labels: `labels.csv` in the folder (or the `labels_csv` kwarg), comma-separated, UTF-8, with a
header line that picks one of two formats (column order free, names exact):

  per second:  film,second,valence,arousal[,split]
      one row per film second; `second` counts from 0 and must cover 0..T-1 without gaps or
      duplicates (rows may come in any order).
  per clip:    film,start,end,valence,arousal[,split]
      one row per clip [start, end) in seconds (decimals allowed); second s of the film gets the
      label of the clip that contains its middle s + 0.5; clips must not overlap and must cover
      every second from 0 to the last clip's end (the labels end there).

`film` is the video's file name, with or without extension; valence and arousal are numbers in
[-1, 1]; the optional `split` (a name such as train / validation / test, the same on every row of
a film) puts films into splits; without it every film goes to `train` (slice it, e.g.
`train[:80%]`). A malformed CSV raises DataError naming the file, the line and the fix. Videos
without labels are skipped and listed in the build report; labels of a missing video are an error.

Examples are per-second films (docs/design.md). Build:

  builder = tfds.builder("films", data_dir=..., films_dir="/path/to/my_films")
  builder.download_and_prepare()
or put the folder at `<data_dir>/downloads/manual/` (or pass
`download_config=tfds.download.DownloadConfig(manual_dir=...)`) and omit `films_dir`.
Other kwargs: see `film_builder.FilmBuilder` (extractors, fast, missing_audio, num_workers).
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
import re
from typing import Any

import numpy as np

from emojax.datasets import film_builder
from emojax.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".ts")
PER_SECOND = ("film", "second", "valence", "arousal")
PER_CLIP = ("film", "start", "end", "valence", "arousal")
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")


def find_videos(folder: str | os.PathLike) -> dict[str, pathlib.Path]:
  """Film id (file name without extension) -> path, for every video under `folder`."""
  found: dict[str, pathlib.Path] = {}
  for path in sorted(pathlib.Path(folder).rglob("*")):
    if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
      continue
    if path.name.startswith("."):
      continue
    if path.stem in found:
      raise DataError(f"two videos share the film id {path.stem!r}: {found[path.stem]} and "
                      f"{path}; film ids are file names without extension: rename one")
    found[path.stem] = path
  return found


def _strip_video_ext(name: str) -> str:
  stem, ext = os.path.splitext(name)
  return stem if ext.lower() in VIDEO_EXTENSIONS else name


def _number(value: str, where: str, column: str) -> float:
  try:
    x = float(value)
  except ValueError:
    raise DataError(f"{where}: column {column!r} is {value!r}, not a number") from None
  if not math.isfinite(x):
    raise DataError(f"{where}: column {column!r} is {value!r}; labels must be finite numbers")
  return x


def _label(value: str, where: str, column: str) -> float:
  x = _number(value, where, column)
  if not -1.0 <= x <= 1.0:
    raise DataError(f"{where}: {column} = {x} is outside [-1, 1]; rescale the labels to [-1, 1] "
                    "(e.g. (x - 3) / 2 for a 1..5 scale)")
  return x


def read_labels(csv_path: str | os.PathLike) -> tuple[dict[str, dict[str, np.ndarray]],
                                                       dict[str, str]]:
  """Parses and validates a labels CSV.

  Returns:
    ({film: {'valence': (T,), 'arousal': (T,)}}, {film: split}) with per-second float32 labels;
    films without a `split` column map to 'train'.
  Raises:
    DataError naming the file and line of the first problem.
  """
  csv_path = pathlib.Path(csv_path)
  if not csv_path.is_file():
    raise DataError(f"{csv_path}: labels file not found; write a CSV with header "
                    f"{','.join(PER_SECOND)} (per second) or {','.join(PER_CLIP)} (per clip)")
  with open(csv_path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
  if not rows:
    raise DataError(f"{csv_path}: empty file; the first line must be a header, e.g. "
                    f"{','.join(PER_SECOND)}")
  header = [h.strip() for h in rows[0]]
  optional = {"split"}
  if set(header) - optional == set(PER_SECOND):
    fmt = "second"
  elif set(header) - optional == set(PER_CLIP):
    fmt = "clip"
  else:
    raise DataError(f"{csv_path}:1: header {','.join(header)!r} matches no labels format; use "
                    f"{','.join(PER_SECOND)} (per second) or {','.join(PER_CLIP)} (per clip), "
                    "optionally with a 'split' column")
  if len(set(header)) != len(header):
    raise DataError(f"{csv_path}:1: a column name is repeated in the header {header}")
  col = {name: i for i, name in enumerate(header)}
  per_film: dict[str, list[tuple[int, dict[str, Any]]]] = {}
  splits: dict[str, tuple[str, int]] = {}
  for line, row in enumerate(rows[1:], start=2):
    if not row or all(not c.strip() for c in row):
      continue  # blank line
    where = f"{csv_path}:{line}"
    if len(row) != len(header):
      raise DataError(f"{where}: {len(row)} fields, the header has {len(header)} "
                      f"({','.join(header)})")
    film = _strip_video_ext(row[col["film"]].strip())
    if not film:
      raise DataError(f"{where}: empty film name")
    rec: dict[str, Any] = {"valence": _label(row[col["valence"]], where, "valence"),
                           "arousal": _label(row[col["arousal"]], where, "arousal")}
    if fmt == "second":
      sec = _number(row[col["second"]], where, "second")
      if sec != int(sec) or sec < 0:
        raise DataError(f"{where}: second = {row[col['second']]!r}; seconds are whole numbers "
                        "counting from 0")
      rec["second"] = int(sec)
    else:
      start = _number(row[col["start"]], where, "start")
      end = _number(row[col["end"]], where, "end")
      if start < 0 or end <= start:
        raise DataError(f"{where}: clip [{start}, {end}) is empty or negative; need "
                        "0 <= start < end (seconds)")
      rec["start"], rec["end"] = start, end
    if "split" in col:
      split = row[col["split"]].strip()
      if not _SPLIT_RE.match(split):
        raise DataError(f"{where}: split {split!r} must be a name of letters, digits or _")
      if film in splits and splits[film][0] != split:
        raise DataError(f"{where}: film {film!r} is in split {split!r} here but "
                        f"{splits[film][0]!r} on line {splits[film][1]}; a film has one split")
      splits.setdefault(film, (split, line))
    per_film.setdefault(film, []).append((line, rec))
  if not per_film:
    raise DataError(f"{csv_path}: no label rows after the header")
  labels = {}
  for film, recs in per_film.items():
    if fmt == "second":
      labels[film] = _per_second_rows(csv_path, film, recs)
    else:
      labels[film] = _per_clip_rows(csv_path, film, recs)
  return labels, {film: splits.get(film, ("train", 0))[0] for film in labels}


def _per_second_rows(csv_path, film: str, recs) -> dict[str, np.ndarray]:
  by_second: dict[int, int] = {}
  for line, rec in recs:
    if rec["second"] in by_second:
      raise DataError(f"{csv_path}:{line}: film {film!r} second {rec['second']} is also on line "
                      f"{by_second[rec['second']]}; one row per second")
    by_second[rec["second"]] = line
  num = max(by_second) + 1
  if len(by_second) != num:
    missing = sorted(set(range(num)) - set(by_second))
    raise DataError(f"{csv_path}: film {film!r} has no row for second(s) {missing[:10]}"
                    f"{' ...' if len(missing) > 10 else ''} (seconds count from 0 and must "
                    f"cover 0..{num - 1}); add the rows or end the film's labels earlier")
  out = {k: np.zeros(num, np.float32) for k in film_builder.LABELS}
  for _, rec in recs:
    for k in film_builder.LABELS:
      out[k][rec["second"]] = rec[k]
  return out


def _per_clip_rows(csv_path, film: str, recs) -> dict[str, np.ndarray]:
  end = max(rec["end"] for _, rec in recs)
  num = int(math.floor(end - 0.5)) + 1  # seconds whose middle s + 0.5 lies before the last end
  owner = np.zeros(num, np.int64)  # line of the clip that holds each second (0: none)
  out = {k: np.zeros(num, np.float32) for k in film_builder.LABELS}
  mids = np.arange(num) + 0.5
  for line, rec in recs:
    inside = (mids >= rec["start"]) & (mids < rec["end"])
    clash = owner[inside & (owner > 0)]
    if clash.size:
      raise DataError(f"{csv_path}:{line}: clip [{rec['start']}, {rec['end']}) of film {film!r} "
                      f"overlaps the clip on line {clash[0]}; clips must not overlap")
    owner[inside] = line
    for k in film_builder.LABELS:
      out[k][inside] = rec[k]
  holes = np.flatnonzero(owner == 0)
  if holes.size or num == 0:
    raise DataError(f"{csv_path}: film {film!r}: no clip covers second(s) "
                    f"{holes[:10].tolist()}{' ...' if holes.size > 10 else ''} (the middle "
                    "s + 0.5 of every second from 0 to the last clip's end must fall inside a "
                    "clip); add clips for the gap")
  return out


class Films(film_builder.FilmBuilder):
  """Your own films with per-second or per-clip valence/arousal labels (see module docstring)."""

  DESCRIPTION = __doc__
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put your videos and a labels.csv (film,second,valence,arousal or "
      "film,start,end,valence,arousal) in the manual dir, or pass films_dir=<folder>.")

  def __init__(self, *, films_dir: str | None = None, labels_csv: str | None = None, **kwargs):
    self._films_dir = films_dir
    self._labels_csv = labels_csv
    super().__init__(**kwargs)

  def _film_records(self, dl_manager):
    folder = pathlib.Path(os.path.expanduser(self._films_dir)) if self._films_dir else (
        pathlib.Path(os.fspath(dl_manager.manual_dir)))
    if not folder.is_dir():
      raise DataError(f"films folder {folder} does not exist; pass films_dir=<folder of videos>")
    csv_path = pathlib.Path(os.path.expanduser(self._labels_csv)) if self._labels_csv else (
        folder / "labels.csv")
    labels, splits = read_labels(csv_path)
    videos = find_videos(folder)
    missing = sorted(set(labels) - set(videos))
    if missing:
      raise DataError(f"{csv_path}: labels name film(s) {missing[:10]} but {folder} holds no "
                      f"video with that name (found {sorted(videos)[:10]}); add the videos or "
                      "remove their rows")
    records = [film_builder.FilmRecord(film_id=f, path=str(videos[f]), split=splits[f],
                                       labels=labels[f]) for f in sorted(labels)]
    pre_skipped = [{"film": f, "path": str(p), "split": "", "reason": f"no labels in {csv_path}"}
                   for f, p in sorted(videos.items()) if f not in labels]
    return records, pre_skipped

