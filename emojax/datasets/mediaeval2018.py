"""MediaEval 2018 Emotional Impact of Movies: 66 films, per-second valence and arousal.

TFDS builder `mediaeval2018`, read from a hand download (`manual_dir`). One example per film in the
per-second film format of docs/design.md (key = film id, e.g. 'MEDIAEVAL18_07').

Configs:
- `official_features`: the organisers' features, one stream per descriptor:
  acc 256, cedd 144, cl 33, eh 80, fcth 192, gabor 60, jcd 168, sc 64, tamura 18, lbp 256,
  fc6 4096 (VGG16 fc6), and `emobase2010` 1582 (openSMILE, from the ARFF-in-`.csv` files), plus
  `observed` (T, 12) bool: False where the builder filled a missing second (columns in
  `OFFICIAL_STREAMS` order). Not a feature: leave it out of the model's modalities.
- `extracted_features`: features emojax extracts from the films themselves
  (`emojax.features.extract.extract_film`), needs the `MEDIAEVAL18_XX.mp4` films.

Splits: `train` (development films 00-53 minus the validation holdout), `validation` (the 13 films
of `VALIDATION_FILMS`: every development film whose number is 2 mod 4, i.e. 02, 06, ..., 50; spread
evenly over the three development parts; no official list exists), `test` (54-65) and `dev`
(00-53 = train + validation).

How files are found: one walk of manual_dir; every file is recognised by its name alone, so any
folder layout works (the archives' own `MEDIAEVAL18-DevSet-Part1-Visual_features/visual_features/
MEDIAEVAL18_00/acc/...`, doubled or flattened folders):
- labels `MEDIAEVAL18_XX_Valence-Arousal.txt`: an optional header line, then whitespace-separated
  `time valence arousal` rows; row k (0-based) is second k+1 of the film, the same second as feature
  file number k+1 (the alignment every public parser uses);
- visual `MEDIAEVAL18_XX-NNNNN_<feat>.txt`: one comma-separated line, second NNNNN counting from 1;
- audio `MEDIAEVAL18_XX_NNNNN.csv`: ARFF text; `@`/`%` lines skipped, the leading name field and the
  trailing class value dropped, 1582 numbers kept;
- films `MEDIAEVAL18_XX.mp4` (or .avi/.mkv/.mov/.webm).

Defects of the real data and what the builder does (each case is printed and stored in the
metadata under `problems`; nothing else is dropped):
- a missing second of a stream (film 06's audio second 5588, film 18's fc6/jcd gaps), an empty file
  (film 27's `cl` second 6) or a file holding NaN/Inf: the second is filled by linear interpolation
  between the nearest observed seconds of that stream (nearest value at the film's edges) and marked
  False in `observed`;
- streams of different lengths (film 46's 100 label rows for ~3000 s of features; the audio stream
  ending a few seconds early): every stream is cut to the shortest (labels included) and the cut is
  reported: severity 'info' up to `SMALL_CUT_S` seconds, 'warning' beyond.
Anything else malformed (wrong number of values, a label out of [-1, 1], text that is not a number)
raises `DataError` naming the file and line.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.datasets import common
from emojax.datasets import film_builder
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

VERSION = tfds.core.Version("1.0.0")
RELEASE_NOTES = {
    "1.0.0": "First release: official features (11 visual descriptors + emobase2010) and "
             "emojax-extracted features; train/validation/test/dev splits; the four known defects "
             "of the real data repaired or truncated and reported.",
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
MediaEval 2018 "Emotional Impact of Movies" is distributed with LIRIS-ACCEDE
(https://liris-accede.ec-lyon.fr/) after signing its licence agreement. Download, for the
development parts DevSet-Part1 (films 00-13), DevSet-Part2 (14-43), DevSet-Part3 (44-53) and the
TestSet (54-65):
  MEDIAEVAL18-<part>-Valence_Arousal-annotations.zip  (MEDIAEVAL18_XX_Valence-Arousal.txt)
  MEDIAEVAL18-<part>-Visual_features.zip              (official_features config)
  MEDIAEVAL18-<part>-Audio_features.zip               (official_features config)
  MEDIAEVAL18-<part>-Data.zip                         (the films; extracted_features config)
and unzip them all into one folder (any sub-folders, doubled or not), e.g.
  <manual_dir>/MEDIAEVAL18-DevSet-Part1-Valence_Arousal-annotations/annotations/
      MEDIAEVAL18_00_Valence-Arousal.txt
  <manual_dir>/MEDIAEVAL18-DevSet-Part1-Visual_features/visual_features/MEDIAEVAL18_00/acc/
      MEDIAEVAL18_00-00001_acc.txt
  <manual_dir>/MEDIAEVAL18-DevSet-Part1-Audio_features/audio_features/MEDIAEVAL18_00/
      MEDIAEVAL18_00_00001.csv
The file that shows the download is in place: MEDIAEVAL18_00_Valence-Arousal.txt.
Check it first with: python main.py --mode=doctor --dataset=mediaeval2018 --manual_dir=<manual_dir>
"""

CITATION = """\
@inproceedings{dellandrea2018mediaeval,
  title={The MediaEval 2018 Emotional Impact of Movies Task},
  author={Dellandr{\\'e}a, Emmanuel and Huigsloot, Martijn and Chen, Liming and Baveye, Yoann and
          Xiao, Zhongzhe and Sj{\\"o}berg, Mats},
  booktitle={MediaEval 2018 Workshop},
  year={2018}
}"""


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


def _audio_row(path: pathlib.Path) -> tuple[np.ndarray | None, int | None]:
  """`read_audio` and the line the numbers are on."""
  text = _read_text(path)
  data = [(i, s.strip()) for i, s in enumerate(text.splitlines(), start=1)
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


# ---------------------------------------------------------------------------------------------
# The builder.


@dataclasses.dataclass
class Mediaeval2018Config(tfds.core.BuilderConfig):
  """A mediaeval2018 variant.

  Attributes:
    features: 'official' (the organisers' files) or 'extracted' (emojax's extractors on the films).
    extractors: names of the emojax extractors ('extracted' only; empty = the engine's default).
    validation_films: the development films held out for validation.
  """
  features: str = "official"
  extractors: tuple[str, ...] = ()
  validation_films: tuple[int, ...] = VALIDATION_FILMS


def split_films(validation_films: Sequence[int] = VALIDATION_FILMS) -> dict[str, tuple[int, ...]]:
  """Split name -> film numbers."""
  val = tuple(sorted(validation_films))
  return {
      "train": tuple(i for i in DEV_FILMS if i not in val),
      "validation": val,
      "test": TEST_FILMS,
      "dev": DEV_FILMS,
  }


def check_splits(splits: Mapping[str, Sequence[int]]) -> list[Problem]:
  """Films in more than one of train/validation/test, or outside their part."""
  problems = []
  seen: dict[int, str] = {}
  for name in ("train", "validation", "test"):
    for i in splits.get(name, ()):
      if i in seen:
        problems.append(Problem(
            "", None, f"{film_id(i)} is in both '{seen[i]}' and '{name}'.",
            "list each film in one of train/validation/test (validation_films must be "
            "development films 00-53).", "error"))
      seen[i] = name
  for i in splits.get("validation", ()):
    if i not in DEV_FILMS:
      problems.append(Problem("", None, f"validation film {film_id(i)} is not a development "
                              "film (00-53).", "pick validation films among 00-53.", "error"))
  return problems


class Mediaeval2018(common.BenchmarkBuilder):
  """MediaEval 2018 Emotional Impact of Movies (per-second valence/arousal of 66 films)."""

  VERSION = VERSION
  RELEASE_NOTES = RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      Mediaeval2018Config(
          name="official_features", features="official",
          description="The organisers' features: 11 visual descriptors and emobase2010 audio."),
      Mediaeval2018Config(
          name="extracted_features", features="extracted",
          description="Features emojax extracts from the films (needs the MEDIAEVAL18_XX.mp4)."),
  ]
  DESCRIPTION = __doc__
  HOMEPAGE = "https://multimediaeval.github.io/editions/2018/tasks/emotionalimpact/"
  CITATION = CITATION

  def _streams(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Feature stream name -> (row shape, dtype)."""
    if self.builder_config.features == "official":
      return {name: ((dim,), np.dtype(np.float32)) for name, dim in OFFICIAL_DIMS.items()}
    if self.builder_config.features == "extracted":
      return common.extracted_specs(self.builder_config.extractors)[1]
    raise DataError(f"mediaeval2018 config '{self.builder_config.name}': features must be "
                    f"'official' or 'extracted', got '{self.builder_config.features}'.")

  def _info(self) -> tfds.core.DatasetInfo:
    feats = {"film_id": tfds.features.Text(), **common.stream_features(self._streams())}
    if self.builder_config.features == "official":
      feats[MASK_STREAM] = tfds.features.Tensor(shape=(None, len(OFFICIAL_STREAMS)),
                                                dtype=np.bool_)
    feats["valence"] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    feats["arousal"] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    return self._dataset_info(feats)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    cfg = self.builder_config
    films = index_download(dl_manager.manual_dir)
    splits = split_films(cfg.validation_films)
    common.raise_errors(check_splits(splits))
    problems = [p for n, f in films.items() for p in
                [_single(f.labels, "label file", n),
                 _single(f.media, "film", n) if cfg.features == "extracted" else None] if p]
    common.raise_errors(problems)
    if not any(f.labels for f in films.values()):
      raise common.data_error(
          dl_manager.manual_dir, None, "no MEDIAEVAL18_XX_Valence-Arousal.txt found.",
          "unzip the MEDIAEVAL18-*-Valence_Arousal-annotations archives into manual_dir.\n"
          + MANUAL_DOWNLOAD_INSTRUCTIONS)
    absent = [i for i in range(NUM_FILMS) if i not in films]
    if absent:
      problems.append(Problem(
          str(dl_manager.manual_dir), None,
          f"{len(absent)} of {NUM_FILMS} films absent: {_ranges(absent)}; their splits are "
          "built without them.",
          "download the missing parts (" + ", ".join(sorted({download_part(i) for i in absent}))
          + ") for the full benchmark.", "warning"))
    md = self.info.metadata
    md["feature_dims"] = {k: int(np.prod(shape)) for k, (shape, _) in self._streams().items()}
    if cfg.features == "extracted":
      md["feature_manifest"] = common.extracted_specs(cfg.extractors)[0]
    md["validation_films"] = [film_id(i) for i in sorted(cfg.validation_films)]
    md["films"] = {}
    present = {name: [i for i in ids if i in films] for name, ids in splits.items()}
    md["splits"] = {name: [film_id(i) for i in ids] for name, ids in present.items()}
    self._set_problems(problems)
    extracted = cfg.features == "extracted"
    if extracted:
      for i in sorted({i for ids in present.values() for i in ids}):
        if not films[i].media:
          raise common.data_error(
              films[i].labels[0].parent if films[i].labels else dl_manager.manual_dir, None,
              f"no film file {film_id(i)}.mp4 found.",
              f"download MEDIAEVAL18-{download_part(i)}-Data and unzip it into manual_dir.")
    items = [film_builder.Item(film_id(i), name, str(films[i].media[0]) if extracted else None,
                               films[i]) for name, ids in present.items() for i in ids]
    if extracted:
      make = functools.partial(extracted_example, specs=self._streams())
      return self._engine_splits(self._extraction(cfg.extractors), items, make)
    return self._engine_splits(self._engine({}, {}), items, official_example)  # no video

  def _on_example(self, item, example, problems) -> None:
    if example is not None and item.key not in self.info.metadata["films"]:
      self.info.metadata["films"][item.key] = {"seconds": int(example["valence"].shape[0]),
                                               "problems": len(problems)}
    super()._on_example(item, example, problems)


def official_example(item: film_builder.Item, streams: None, meta: None
                     ) -> tuple[dict[str, np.ndarray], list[Problem]]:
  """`make_example` of the official features (read from the files; no video)."""
  del streams, meta
  example, problems = load_official_film(item.data)
  common.raise_errors(problems)
  return example, problems


# ---------------------------------------------------------------------------------------------
# Extracted features (emojax.features.extract).


def extracted_example(item: film_builder.Item, streams: Mapping[str, np.ndarray],
                      meta: Mapping[str, Any], *, specs: common.StreamSpecs
                      ) -> tuple[dict[str, np.ndarray], list[Problem]]:
  """`make_example` of extracted_features: the film's streams and labels cut to the shortest."""
  del meta
  film: FilmFiles = item.data
  scan = scan_film(film, ())
  streams, _ = common.select_streams(item.path, streams, specs)
  streams["valence"] = scan.valence.astype(np.float32)
  streams["arousal"] = scan.arousal.astype(np.float32)
  out, trunc = common.truncate_to_shortest(streams)
  problems = list(scan.problems)
  if trunc.any_cut:
    big = max(trunc.cut.values()) > SMALL_CUT_S
    problems.append(Problem(
        str(item.path), None, f"{film.id}: {trunc.describe()}.",
        "none needed: the builder keeps the seconds that have labels and every feature.",
        "warning" if big else "info"))
  return {"film_id": film.id, **out}, problems


# ---------------------------------------------------------------------------------------------
# The data doctor.


def _read_film(film: FilmFiles, official: bool) -> tuple[list[Problem], int | None]:
  """What a build meets reading one film: (problems, label rows, None when the scan failed).

  Official features: every file, through the build's own reader (`read_official`).
  """
  try:
    scan = scan_film(film, OFFICIAL_STREAMS if official else ())
  except DataError as e:
    return [common.problem_from_error(e)], None
  if not official:
    return list(scan.problems), scan.num_label_rows
  return read_official(scan)[1], scan.num_label_rows


# Read the films in worker processes when they hold more feature files than this (a pool costs
# a few seconds to start; one film of the real download has ~12 x 5,000 files).
POOL_MIN_FILES = 20_000


def _read_films(films: Sequence[FilmFiles], official: bool,
                num_workers: int | None = None) -> list[tuple[list[Problem], int | None]]:
  """`_read_film` of every film, in parallel over processes for a big download."""
  files = sum(s.size for f in films for st in f.streams.values() for s in st.seconds)
  workers = min(num_workers if num_workers is not None else (os.cpu_count() or 1), len(films))
  if not official or workers <= 1 or files < POOL_MIN_FILES:
    return [_read_film(f, official) for f in films]
  # Longest films first, so the last worker does not start the longest film at the end.
  order = sorted(range(len(films)), key=lambda i: -sum(
      s.size for st in films[i].streams.values() for s in st.seconds))
  with film_builder.worker_pool(workers) as pool:
    futures = {i: pool.submit(_read_film, films[i], official) for i in order}
    return [futures[i].result() for i in range(len(films))]


def doctor(manual_dir: str | os.PathLike[str], config: str | None = None) -> list[Problem]:
  """Inspects a MediaEval 2018 download before a build; returns every problem found.

  config: 'official_features' (labels + official features), 'extracted_features' (labels +
  films) or None (labels and official features; films reported when present).
  """
  cfg, problems = common.doctor_config("mediaeval2018", Mediaeval2018.BUILDER_CONFIGS,
                                       config or None, "official_features")
  if problems:
    return problems
  try:
    films = index_download(manual_dir)
  except DataError as e:
    return [common.problem_from_error(e)]
  problems = check_splits(split_films(cfg.validation_films))
  if not any(f.labels for f in films.values()):
    problems.append(Problem(str(manual_dir), None, "no MEDIAEVAL18_XX_Valence-Arousal.txt found.",
                            "unzip the MEDIAEVAL18-*-Valence_Arousal-annotations archives into "
                            "manual_dir.", "error"))
  absent = [i for i in range(NUM_FILMS) if i not in films or not films[i].labels]
  if absent:
    problems.append(Problem(
        str(manual_dir), None, f"{len(absent)} of {NUM_FILMS} films have no labels: "
        f"{_ranges(absent)}; the builder leaves them out of their splits.",
        "download and unzip the annotations of parts " +
        ", ".join(sorted({download_part(i) for i in absent})) + ".", "warning"))
  official = cfg.features == "official"
  per_film: dict[int, list[Problem]] = {}
  to_read: list[FilmFiles] = []
  for number, film in films.items():
    per_film[number] = _check_film_files(film, official)
    if film.labels and not (official and any(s not in film.streams for s in OFFICIAL_STREAMS)):
      to_read.append(film)
  for film, (read_problems, label_rows) in zip(to_read, _read_films(to_read, official)):
    per_film[film.number] += read_problems
    if label_rows is not None:
      per_film[film.number] += _check_media(film, label_rows, official)
  return problems + [p for number in films for p in per_film[number]]


def _check_film_files(film: FilmFiles, official: bool) -> list[Problem]:
  """Which files one film has (before reading them): the doctor's first look."""
  problems: list[Problem] = []
  number = film.number
  if not film.labels:
    if film.streams or film.media:
      problems.append(Problem(
          str(next(iter(film.streams.values())).dirs[0] if film.streams else film.media[0]),
          None, f"{film.id} has files but no {film.id}_Valence-Arousal.txt; the build fails.",
          f"download MEDIAEVAL18-{download_part(number)}-Valence_Arousal-annotations and unzip "
          "it into manual_dir.", "error"))
    return problems
  for paths, what in ((film.labels, "label file"), (film.media, "film")):
    if p := _single(paths, what, number):
      problems.append(p)
  if official:
    lacking = [s for s in OFFICIAL_STREAMS if s not in film.streams]
    for s in lacking:
      archive = "Audio_features" if s == AUDIO_STREAM else "Visual_features"
      problems.append(Problem(
          str(film.labels[0].parent), None, f"{film.id} has no '{s}' feature files.",
          f"download MEDIAEVAL18-{download_part(number)}-{archive} and unzip it into "
          "manual_dir.", "error"))
    unknown = sorted(set(film.streams) - set(OFFICIAL_STREAMS))
    if unknown:
      problems.append(Problem(
          str(film.labels[0].parent), None, f"{film.id}: unknown descriptor(s) {unknown}.",
          "none needed: the builder reads only the 11 documented descriptors and the audio.",
          "info"))
    if lacking:
      try:
        read_labels(film.labels[0])
      except DataError as e:
        problems.append(common.problem_from_error(e))
  return problems


def _check_media(film: FilmFiles, label_rows: int, official: bool) -> list[Problem]:
  """The film file: present (extracted_features needs it), readable, as long as its labels."""
  if not film.media:
    if official:
      return []
    return [Problem(str(film.labels[0].parent), None, f"no film file {film.id}.mp4 found.",
                    f"download MEDIAEVAL18-{download_part(film.number)}-Data and unzip it into "
                    "manual_dir.", "error")]
  try:
    from emojax.features import decode  # pylint: disable=g-import-not-at-top
    info = decode.probe(film.media[0])
  except DataError as e:
    return [common.problem_from_error(e)]
  if abs(info.num_seconds - label_rows) > SMALL_CUT_S:
    return [Problem(
        str(film.media[0]), None, f"{film.id}: the film has {info.num_seconds} s, its labels "
        f"{label_rows} rows; extracted_features cuts both to the shorter.",
        "none needed (a real-data defect when the labels are short, e.g. film 46).",
        "warning" if not official else "info")]
  return []
