"""Reading a MediaEval 2018 download: the index of its files, one parser per file format, a film.

The one reader of these files for the `mediaeval2018` builder and its data doctor (the doctor
calls the same functions and reports what they report), so the doctor names every problem the
build meets, with the same file and line. See `mediaeval2018` for the formats and the defects.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

from emojax.datasets import common
from emojax.errors import DataError

Problem = common.Problem

NUM_FILMS = 66
DEV_FILMS = tuple(range(0, 54))
TEST_FILMS = tuple(range(54, 66))
VALIDATION_FILMS = tuple(i for i in DEV_FILMS if i % 4 == 2)  # 02, 06, ..., 50: 13 films.
TRAIN_FILMS = tuple(i for i in DEV_FILMS if i not in VALIDATION_FILMS)

VISUAL_DIMS: dict[str, int] = {
    "acc": 256, "cedd": 144, "cl": 33, "eh": 80, "fcth": 192, "gabor": 60, "jcd": 168, "sc": 64,
    "tamura": 18, "lbp": 256, "fc6": 4096}
AUDIO_STREAM = "emobase2010"
AUDIO_DIM = 1582
OFFICIAL_DIMS: dict[str, int] = {**VISUAL_DIMS, AUDIO_STREAM: AUDIO_DIM}
OFFICIAL_STREAMS: tuple[str, ...] = tuple(OFFICIAL_DIMS)
MASK_STREAM = "observed"
LABEL_RANGE = (-1.0, 1.0)
SMALL_CUT_S = 5  # Cuts up to this many seconds are 'info' (audio windows end early), else 'warning'.
MEDIA_SUFFIXES = ("mp4", "avi", "mkv", "mov", "webm")
MAX_DEPTH = 8  # How deep below manual_dir files are looked for.

_LABEL_RE = re.compile(r"^MEDIAEVAL18_(\d{2})_Valence-Arousal\.txt$", re.IGNORECASE)
_VISUAL_RE = re.compile(r"^MEDIAEVAL18_(\d{2})-(\d{5})_([A-Za-z0-9]+)\.txt$")
_AUDIO_RE = re.compile(r"^MEDIAEVAL18_(\d{2})_(\d{5})\.csv$")
_MEDIA_RE = re.compile(r"^MEDIAEVAL18_(\d{2})\.(" + "|".join(MEDIA_SUFFIXES) + r")$",
                       re.IGNORECASE)


def film_id(number: int) -> str:
  return f"MEDIAEVAL18_{number:02d}"


def download_part(number: int) -> str:
  """The archive part a film ships in (for fixes)."""
  if number <= 13:
    return "DevSet-Part1"
  if number <= 43:
    return "DevSet-Part2"
  if number <= 53:
    return "DevSet-Part3"
  return "TestSet"


# ---------------------------------------------------------------------------------------------
# The index of a download.


@dataclasses.dataclass
class StreamFiles:
  """Where the per-second files of one stream of one film lie.

  `dirs[i]` holds the files of seconds `seconds[i]` (sorted, 1-based).
  """
  dirs: list[pathlib.Path] = dataclasses.field(default_factory=list)
  seconds: list[np.ndarray] = dataclasses.field(default_factory=list)

  def all_seconds(self) -> np.ndarray:
    if not self.seconds:
      return np.zeros((0,), np.int64)
    return np.unique(np.concatenate(self.seconds))


@dataclasses.dataclass
class FilmFiles:
  """Everything found for one film."""
  number: int
  labels: list[pathlib.Path] = dataclasses.field(default_factory=list)
  media: list[pathlib.Path] = dataclasses.field(default_factory=list)
  streams: dict[str, StreamFiles] = dataclasses.field(default_factory=dict)

  @property
  def id(self) -> str:
    return film_id(self.number)


def stream_file_name(film: str, stream: str, second: int) -> str:
  if stream == AUDIO_STREAM:
    return f"{film}_{second:05d}.csv"
  return f"{film}-{second:05d}_{stream}.txt"


def index_download(manual_dir: str | os.PathLike[str]) -> dict[int, FilmFiles]:
  """Walks manual_dir once and files every recognised file by film (see module docstring).

  Raises:
    DataError: manual_dir is not a folder.
  """
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise common.data_error(root, None, "manual_dir is not a folder.",
                            "pass the folder holding the unzipped MediaEval 2018 archives.")
  films: dict[int, FilmFiles] = {}

  def get(number: int) -> FilmFiles:
    if number not in films:
      films[number] = FilmFiles(number)
    return films[number]

  for dirpath, dirnames, filenames in os.walk(root):
    depth = len(pathlib.Path(dirpath).relative_to(root).parts)
    if depth >= MAX_DEPTH:
      dirnames[:] = []
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    per_stream: dict[tuple[int, str], list[int]] = collections.defaultdict(list)
    for name in filenames:
      if name.startswith("."):
        continue
      if m := _VISUAL_RE.match(name):
        per_stream[(int(m[1]), m[3])].append(int(m[2]))
      elif m := _AUDIO_RE.match(name):
        per_stream[(int(m[1]), AUDIO_STREAM)].append(int(m[2]))
      elif m := _LABEL_RE.match(name):
        get(int(m[1])).labels.append(pathlib.Path(dirpath, name))
      elif m := _MEDIA_RE.match(name):
        get(int(m[1])).media.append(pathlib.Path(dirpath, name))
    for (number, stream), seconds in sorted(per_stream.items()):
      files = get(number).streams.setdefault(stream, StreamFiles())
      files.dirs.append(pathlib.Path(dirpath))
      files.seconds.append(np.sort(np.asarray(seconds, np.int64)))
  for film in films.values():
    film.labels.sort()
    film.media.sort()
  return dict(sorted(films.items()))


# ---------------------------------------------------------------------------------------------
# Reading single files.


def read_labels(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Reads `time valence arousal` rows -> (time, valence, arousal) float64 arrays.

  Raises:
    DataError: a malformed row, a non-finite value or a label outside [-1, 1] (file and line).
  """
  table = common.read_table(path, min_columns=3, max_columns=3)
  if not len(table):
    raise common.data_error(path, None, "no label rows.",
                            "restore the file from the annotations archive.")
  values_Nx3 = table.floats([0, 1, 2])
  lo, hi = LABEL_RANGE
  for col, name in ((1, "valence"), (2, "arousal")):
    bad = ~np.isfinite(values_Nx3[:, col]) | (values_Nx3[:, col] < lo) | (values_Nx3[:, col] > hi)
    if bad.any():
      i = int(np.argmax(bad))
      raise common.data_error(
          path, table.lines[i], f"{name} {values_Nx3[i, col]} is not in [{lo}, {hi}].",
          "restore the file from the annotations archive.")
  return values_Nx3[:, 0], values_Nx3[:, 1], values_Nx3[:, 2]


def _read_text(path: pathlib.Path) -> str:
  try:
    return path.read_text(errors="replace")
  except OSError as e:
    raise common.data_error(path, None, f"cannot read ({e.strerror}).",
                            "check the file's permissions or unzip it again.") from None


def read_visual(path: pathlib.Path, dim: int) -> np.ndarray | None:
  """One visual descriptor file -> (dim,) float32; None when the file is empty.

  Raises:
    DataError: not one line of `dim` comma-separated numbers.
  """
  return _visual_row(path, dim)[0]


def _visual_row(path: pathlib.Path, dim: int) -> tuple[np.ndarray | None, int | None]:
  """`read_visual` and the line the numbers are on."""
  text = _read_text(path)
  lines = [(i, s) for i, s in enumerate(text.splitlines(), start=1) if s.strip()]
  if not lines:
    return None, None
  if len(lines) > 1:
    raise common.data_error(path, lines[1][0], "expected one line of comma-separated numbers.",
                            "restore the file from the visual features archive.")
  line, body = lines[0]
  return _parse_numbers(body.strip().rstrip(","), path, line, dim), line


def _parse_numbers(body: str, path: pathlib.Path, line: int, dim: int) -> np.ndarray:
  fields = body.split(",")
  try:
    values = np.asarray(fields, dtype=np.float32)
  except ValueError:
    values = common.parse_floats(body, path=path, line=line, sep=",")  # Raises naming the field.
  if values.shape[0] != dim:
    raise common.data_error(path, line, f"expected {dim} numbers, found {values.shape[0]}.",
                            "restore the file from the features archive (it may be truncated).")
  return values


def read_audio(path: pathlib.Path) -> np.ndarray | None:
  """One emobase2010 ARFF-in-.csv file -> (1582,) float32; None when it holds no data line.

  Raises:
    DataError: more than one data line, or not name + 1582 numbers + class value.
  """
  return _audio_row(path)[0]


def _arff_data_section(text: str) -> tuple[int, int]:
  """(offset, line number) where the lines that may hold data start: after the `@data` line.

  A fast path over the ~1,600-line header of every audio file (read line by line it costs more
  than the numbers): taken only when every line before `@data` is blank or starts with `@`/`%`
  and the header breaks lines with '\\n' alone, so it skips exactly the lines the line-by-line
  reading skips; any other file is read from the top (0, 1).
  """
  k = text.find("@data")
  if k < 0:
    return 0, 1
  line_start = text.rfind("\n", 0, k) + 1
  end = text.find("\n", k) + 1
  if end == 0 or text[line_start:k].strip():
    return 0, 1
  header = text[:end]
  if not header.isascii() or any(c in header for c in "\r\v\f\x1c\x1d\x1e"):
    return 0, 1
  before = "\n" + header[:line_start]  # the lines before the @data line, each after a '\n'
  if _OTHER_LINE.search(before):  # a line that is not blank and not @/% (or blank with spaces)
    return 0, 1
  return end, header.count("\n") + 1


_OTHER_LINE = re.compile(r"\n[^@%\n]")  # one scan for '\n' then a byte: fast on a big header


def _audio_row(path: pathlib.Path) -> tuple[np.ndarray | None, int | None]:
  """`read_audio` and the line the numbers are on."""
  text = _read_text(path)
  start, first_line = _arff_data_section(text)
  data = [(i, s.strip()) for i, s in enumerate(text[start:].splitlines(), start=first_line)
          if s.strip() and not s.lstrip().startswith(("@", "%"))]
  if not data:
    return None, None
  if len(data) > 1:
    raise common.data_error(path, data[1][0], "expected one data line after the @ header.",
                            "restore the file from the audio features archive.")
  line, body = data[0]
  fields = body.split(",")
  if len(fields) != AUDIO_DIM + 2:
    raise common.data_error(
        path, line, f"expected a name, {AUDIO_DIM} numbers and a class value "
        f"({AUDIO_DIM + 2} fields), found {len(fields)} fields.",
        "restore the file from the audio features archive (it may be truncated).")
  return _parse_numbers(",".join(fields[1:-1]), path, line, AUDIO_DIM), line


# ---------------------------------------------------------------------------------------------
# One film: scan (which seconds exist) and load (read, repair, truncate).


def _ranges(seconds: Sequence[int]) -> str:
  """[3, 4, 5, 9] -> '3-5, 9' (at most 10 ranges shown)."""
  out, start, prev = [], None, None
  for s in list(seconds) + [None]:
    if start is None:
      start = prev = s
    elif s is not None and s == prev + 1:
      prev = s
    else:
      out.append(f"{start}-{prev}" if prev != start else f"{start}")
      start = prev = s
  more = f" and {len(out) - 10} more ranges" if len(out) > 10 else ""
  return ", ".join(out[:10]) + more


def _ends(last_second: Mapping[str, int]) -> str:
  """'second 7' when every stream ends there, else 'seconds 5 (emobase2010) to 7 (...)'."""
  first, last = min(last_second.values()), max(last_second.values())
  if first == last:
    return f"second {last}"
  name = lambda s: next(k for k, v in last_second.items() if v == s)  # pylint: disable=unnecessary-lambda-assignment
  return f"seconds {first} ({name(first)}) to {last} ({name(last)})"


@dataclasses.dataclass
class FilmScan:
  """What the file names say about one film, before any feature file is read."""
  film: FilmFiles
  labels_path: pathlib.Path
  num_label_rows: int
  valence: np.ndarray
  arousal: np.ndarray
  num_seconds: int  # T: the length every stream is cut to.
  last_second: dict[str, int]  # Per stream, its last file's second.
  problems: list[Problem]


def _single(paths: Sequence[pathlib.Path], what: str, number: int) -> Problem | None:
  if len(paths) > 1:
    return Problem(str(paths[0]), None,
                   f"{len(paths)} copies of the {what} of {film_id(number)}: "
                   f"{', '.join(map(str, paths[:3]))}.",
                   "keep one copy under manual_dir.", "error")
  return None


def scan_film(film: FilmFiles, streams: Sequence[str]) -> FilmScan:
  """Reads the labels and works out T, the cuts and the missing seconds of every stream.

  Raises:
    DataError: no label file, copies of one file, a stream without any file, bad labels.
  """
  problems: list[Problem] = []
  part = download_part(film.number)
  if not film.labels:
    where = next(iter(film.streams.values())).dirs[0] if film.streams else film.media[0]
    raise common.data_error(
        where, None,
        f"{film.id} has features or a film but no {film.id}_Valence-Arousal.txt.",
        f"download MEDIAEVAL18-{part}-Valence_Arousal-annotations and unzip it into manual_dir.")
  common.raise_errors([p for p in [_single(film.labels, "label file", film.number)] if p])
  labels_path = film.labels[0]
  time, valence, arousal = read_labels(labels_path)
  steps = np.diff(time)
  if steps.size and not np.allclose(steps, 1.0):
    i = int(np.argmax(~np.isclose(steps, 1.0)))
    problems.append(Problem(
        str(labels_path), None,
        f"the time column does not advance by 1 s per row (row {i + 2} after row {i + 1}).",
        "none needed: rows are aligned with seconds by their order (row k = second k+1).",
        "warning"))
  last_second: dict[str, int] = {}
  for stream in streams:
    files = film.streams.get(stream)
    if files is None:
      archive = "Audio_features" if stream == AUDIO_STREAM else "Visual_features"
      raise common.data_error(
          labels_path.parent, None, f"{film.id} has no '{stream}' feature files "
          f"({stream_file_name(film.id, stream, 1)} ...).",
          f"download MEDIAEVAL18-{part}-{archive} and unzip it into manual_dir.")
    seconds = files.all_seconds()
    total = sum(s.size for s in files.seconds)
    if total != seconds.size:
      dup = np.concatenate(files.seconds)
      dup_second = int(np.sort(dup)[np.flatnonzero(np.diff(np.sort(dup)) == 0)[0]])
      raise common.data_error(
          files.dirs[0], None, f"{stream_file_name(film.id, stream, dup_second)} lies in more "
          f"than one folder: {', '.join(map(str, files.dirs[:3]))}.",
          "keep one copy of the features under manual_dir.")
    if seconds[0] < 1:
      raise common.data_error(
          files.dirs[0] / stream_file_name(film.id, stream, int(seconds[0])), None,
          "feature files are numbered from 00000; the documented numbering starts at 00001.",
          "restore the original file names from the archive (second N is file number N).")
    last_second[stream] = int(seconds[-1])
  num_seconds = min([valence.shape[0]] + list(last_second.values()))
  if num_seconds < 1:
    raise common.data_error(labels_path, None, f"{film.id} has no second with labels and features.",
                            "restore the film's files from the archives.")
  cuts = {"labels": valence.shape[0] - num_seconds}
  for stream in streams:
    cuts[stream] = int(np.sum(film.streams[stream].all_seconds() > num_seconds))
  if any(cuts.values()):
    big = max(cuts.values()) > SMALL_CUT_S
    visual_cuts = {cuts[k] for k in streams if k in VISUAL_DIMS}
    if len(visual_cuts) == 1 and len([k for k in streams if k in VISUAL_DIMS]) > 1:
      shown = {k: v for k, v in cuts.items() if k not in VISUAL_DIMS}
      shown["each visual descriptor"] = visual_cuts.pop()
    else:
      shown = cuts
    cut_text = ", ".join(f"{k} {v} s" for k, v in shown.items() if v)
    problems.append(Problem(
        str(labels_path), None,
        f"{film.id}: labels have {valence.shape[0]} rows, features end at "
        f"{_ends(last_second)}; all streams cut to {num_seconds} s (cut: {cut_text}).",
        "none needed: the builder keeps the seconds that have labels and every feature.",
        "warning" if big else "info"))
  for stream in streams:
    present = film.streams[stream].all_seconds()
    missing = np.setdiff1d(np.arange(1, num_seconds + 1), present)
    if missing.size:
      problems.append(Problem(
          str(film.streams[stream].dirs[0]), None,
          f"{film.id} '{stream}': no file for second(s) {_ranges(missing.tolist())} "
          f"({missing.size} of {num_seconds} s).",
          "none needed: filled by linear interpolation from the neighbouring seconds and marked "
          f"False in '{MASK_STREAM}'.", "warning"))
  return FilmScan(film=film, labels_path=labels_path, num_label_rows=int(valence.shape[0]),
                  valence=valence, arousal=arousal, num_seconds=num_seconds,
                  last_second=last_second, problems=problems)


def fill_gaps(x_TxD: np.ndarray, observed_T: np.ndarray) -> np.ndarray:
  """Linear interpolation over the unobserved rows (nearest observed row at the edges)."""
  if observed_T.all():
    return x_TxD
  t_obs = np.flatnonzero(observed_T)
  if t_obs.size == 0:
    raise ValueError("no observed row to fill from")
  t_miss = np.flatnonzero(~observed_T)
  nxt = np.searchsorted(t_obs, t_miss)  # First observed row after each missing one.
  t0 = t_obs[np.maximum(nxt - 1, 0)]  # The observed row before (or the first one).
  t1 = t_obs[np.minimum(nxt, t_obs.size - 1)]  # The observed row after (or the last one).
  t0 = np.where(nxt == 0, t1, t0)
  t1 = np.where(nxt == t_obs.size, t0, t1)
  w = np.where(t1 > t0, (t_miss - t0) / np.maximum(t1 - t0, 1), 0.0)[:, None]
  out = x_TxD.copy()
  out[t_miss] = ((1.0 - w) * x_TxD[t0] + w * x_TxD[t1]).astype(x_TxD.dtype)
  return out


def read_stream(film: FilmFiles, stream: str, num_seconds: int
                ) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
  """Reads seconds 1..num_seconds of a stream -> (x_TxD raw with zeros where missing, observed_T,
  problems): a warning per empty or non-finite file (filled), an error per malformed file (bad
  number, wrong count of fields, a second data line: the build fails on them)."""
  dim = OFFICIAL_DIMS[stream]
  x_TxD = np.zeros((num_seconds, dim), np.float32)
  observed_T = np.zeros((num_seconds,), bool)
  problems = []
  files = film.streams[stream]
  for folder, seconds in zip(files.dirs, files.seconds):
    for second in seconds[seconds <= num_seconds].tolist():
      path = folder / stream_file_name(film.id, stream, second)
      try:
        row, line = _audio_row(path) if stream == AUDIO_STREAM else _visual_row(path, dim)
      except DataError as e:  # malformed: an error, reported with its file and line
        problems.append(common.problem_from_error(e))
        continue
      if row is None:
        problems.append(Problem(
            str(path), None, f"{film.id} '{stream}': empty file for second {second}.",
            "none needed: filled by linear interpolation from the neighbouring seconds and "
            f"marked False in '{MASK_STREAM}'.", "warning"))
        continue
      if not np.isfinite(row).all():
        problems.append(Problem(
            str(path), line, f"{film.id} '{stream}': NaN or Inf in second {second}.",
            "none needed: filled by linear interpolation from the neighbouring seconds and "
            f"marked False in '{MASK_STREAM}'.", "warning"))
        continue
      x_TxD[second - 1] = row
      observed_T[second - 1] = True
  return x_TxD, observed_T, problems


def load_official_film(film: FilmFiles) -> tuple[dict[str, np.ndarray], list[Problem]]:
  """Reads, repairs and truncates one film's official features -> (example, problems).

  The one reader of the feature files, for the build and the doctor: every file of seconds
  1..T is read; malformed files are 'error' problems (the build raises on them, after reading
  the film), repairs 'warning' ones.

  Raises:
    DataError: the film's labels are malformed or a stream has no file at all (`scan_film`).
  """
  return read_official(scan_film(film, OFFICIAL_STREAMS))


def read_official(scan: FilmScan) -> tuple[dict[str, np.ndarray], list[Problem]]:
  """`load_official_film` after `scan_film`: reads every feature file of seconds 1..T."""
  film = scan.film
  problems = list(scan.problems)
  t = scan.num_seconds
  example: dict[str, np.ndarray | str] = {"film_id": film.id}
  observed_TxS = np.zeros((t, len(OFFICIAL_STREAMS)), bool)
  for s, stream in enumerate(OFFICIAL_STREAMS):
    x_TxD, observed_T, stream_problems = read_stream(film, stream, t)
    problems += stream_problems
    if not observed_T.any():
      problems.append(Problem(
          str(film.streams[stream].dirs[0]), None,
          f"{film.id} '{stream}': no usable file among seconds 1-{t}.",
          f"restore the film's '{stream}' files from the MEDIAEVAL18-"
          f"{download_part(film.number)} features archive."))
      example[stream] = x_TxD
      continue
    example[stream] = fill_gaps(x_TxD, observed_T)
    observed_TxS[:, s] = observed_T
  example[MASK_STREAM] = observed_TxS
  example["valence"] = scan.valence[:t].astype(np.float32)
  example["arousal"] = scan.arousal[:t].astype(np.float32)
  return example, problems
