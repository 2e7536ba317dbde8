"""Rules every benchmark reader follows (docs/benchmarks_data.md; the benchmarks' general rules).

- find files by glob, accepting a doubled folder (`X-annotations/annotations/`) or a single one;
- read annotation tables by column position, split on any whitespace, and skip a first line only
  when its first field is not numeric;
- strip a trailing `.mp4` before joining tables on clip names;
- truncate per-second streams to the shortest and report what was cut.

`Problem` is what builders report (and store in metadata) and what the data doctor returns.
Malformed input raises `DataError` whose message names the file and line and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import pathlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import tensorflow_datasets as tfds

from emojax.datasets import film_builder
from emojax.errors import DataError

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")

# How deep below manual_dir a file may lie: enough for `Dataset-part1/X-annotations/annotations/f`.
DEFAULT_MAX_DEPTH = 5


@dataclasses.dataclass(frozen=True)
class Problem:
  """One thing wrong (or repaired) in a download.

  Attributes:
    file: the file or folder concerned ('' when it concerns the whole download).
    line: 1-based line number in `file`, or None.
    message: what is wrong, in words.
    fix: what the user (or the builder, for repairs) does about it.
    severity: 'error' (the build fails), 'warning' (the builder repairs or truncates and reports
      it), 'info' (a fact worth knowing).
  """
  file: str
  line: int | None
  message: str
  fix: str
  severity: Severity = "error"

  def __post_init__(self):
    if self.severity not in SEVERITIES:
      raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

  @property
  def where(self) -> str:
    if not self.file:
      return "<download>"
    return f"{self.file}:{self.line}" if self.line is not None else self.file

  def __str__(self) -> str:
    return f"[{self.severity}] {self.where}: {self.message} Fix: {self.fix}"

  def to_dict(self) -> dict[str, object]:
    """A JSON-friendly dict (for TFDS metadata)."""
    return dataclasses.asdict(self)


def data_error(file: str | os.PathLike[str], line: int | None, message: str,
               fix: str) -> DataError:
  """A DataError whose message names the file (and line) and the fix.

  The error carries the same facts as `error.problem` (a Problem), for the data doctor.
  """
  where = f"{file}:{line}" if line is not None else str(file)
  error = DataError(f"{where}: {message} Fix: {fix}")
  error.problem = Problem(str(file), line, message, fix, "error")
  return error


def problem_from_error(error: Exception, path: str | os.PathLike[str] | None = None,
                       fix: str = "restore the file from the download.") -> Problem:
  """The Problem an error describes, for the data doctor.

  A DataError from `data_error` carries it; another error about the file `path` (e.g. from the
  media decoder) is read as `path[:line]: message[ Fix: fix]`; anything else becomes a generic
  Problem naming the error.
  """
  problem = getattr(error, "problem", None)
  if isinstance(problem, Problem):
    return problem
  if path is not None:
    message, _, own_fix = str(error).partition(" Fix: ")
    line = None
    if match := re.match(rf"{re.escape(str(path))}:(\d+): ", message):
      line, message = int(match.group(1)), message[match.end():]
    elif message.startswith(f"{path}: "):
      message = message[len(f"{path}: "):]
    return Problem(str(path), line, message, own_fix or fix)
  return Problem("", None, f"{type(error).__name__}: {error}",
                 "see the message; restore the file it names from the download.", "error")


def report(dataset: str, problems: Sequence[Problem]) -> None:
  """Prints the warnings and errors among `problems` to stderr, prefixed by the dataset name."""
  for p in problems:
    if p.severity != "info":
      print(f"{dataset}: {p}", file=sys.stderr, flush=True)


def doctor_config(dataset: str, builder_configs: Sequence, config: str | None,
                  default: str | None = None) -> tuple[object | None, list[Problem]]:
  """The BuilderConfig a data doctor checks: `config` by name (None = `default`, which may be
  None for "every config").

  Returns:
    (the config or None, []) or, for an unknown name, (None, [an 'error' Problem listing the
    names]).
  """
  configs = {c.name: c for c in builder_configs}
  name = default if config is None else config
  if name is None:
    return None, []
  if name not in configs:
    return None, [Problem("", None, f"unknown {dataset} config '{name}'.",
                          f"use one of {', '.join(configs)}.", "error")]
  return configs[name], []


def raise_errors(problems: Sequence[Problem]) -> None:
  """Raises a DataError for the first 'error' problem (listing how many there are)."""
  errors = [p for p in problems if p.severity == "error"]
  if not errors:
    return
  first = errors[0]
  more = f" ({len(errors) - 1} more errors; run the data doctor to list them all)" if len(
      errors) > 1 else ""
  raise DataError(f"{first.where}: {first.message} Fix: {first.fix}{more}")


# ---------------------------------------------------------------------------------------------
# Finding files.


def _tail_matches(rel_parts: Sequence[str], pattern_parts: Sequence[str]) -> bool:
  if len(rel_parts) < len(pattern_parts):
    return False
  tail = rel_parts[len(rel_parts) - len(pattern_parts):]
  return all(fnmatch.fnmatchcase(p, q) for p, q in zip(tail, pattern_parts))


def _walk(root: pathlib.Path, pattern: str, want_dirs: bool,
          max_depth: int) -> list[pathlib.Path]:
  root = pathlib.Path(root)
  if not root.is_dir():
    raise data_error(root, None, "folder not found.",
                     "pass the folder you downloaded the dataset into as manual_dir.")
  pattern_parts = [p for p in pattern.replace(os.sep, "/").split("/") if p]
  if not pattern_parts:
    raise ValueError("empty pattern")
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    rel = pathlib.Path(dirpath).relative_to(root).parts
    if len(rel) >= max_depth:
      dirnames[:] = []
    dirnames.sort()
    for name in (dirnames if want_dirs else filenames):
      if name.startswith("."):
        continue
      if _tail_matches(rel + (name,), pattern_parts):
        found.append(pathlib.Path(dirpath, name))
  return sorted(found)


def find_files(root: str | os.PathLike[str], pattern: str, *,
               max_depth: int = DEFAULT_MAX_DEPTH) -> list[pathlib.Path]:
  """All files under `root` whose path ends with glob `pattern` (e.g. 'annotations/*.txt').

  The pattern may match at any depth up to `max_depth` folders, so
  `root/annotations/a.txt`, `root/X-annotations/annotations/a.txt` and
  `root/annotations/annotations/a.txt` all match 'annotations/a.txt'. Sorted; hidden entries
  (`.name`, e.g. macOS `._` files) skipped.
  """
  return _walk(pathlib.Path(root), pattern, want_dirs=False, max_depth=max_depth)


def find_dirs(root: str | os.PathLike[str], pattern: str, *,
              max_depth: int = DEFAULT_MAX_DEPTH) -> list[pathlib.Path]:
  """Like `find_files`, for folders."""
  return _walk(pathlib.Path(root), pattern, want_dirs=True, max_depth=max_depth)


def find_file(root: str | os.PathLike[str], pattern: str, *, what: str = "",
              max_depth: int = DEFAULT_MAX_DEPTH) -> pathlib.Path:
  """The one file under `root` matching `pattern` (see `find_files`).

  Raises:
    DataError: no file matches, or several do (e.g. two unpacked copies), naming them.
  """
  found = find_files(root, pattern, max_depth=max_depth)
  label = what or pattern
  if not found:
    raise data_error(root, None, f"no file matching '{pattern}' ({label}) found.",
                     f"unpack the archive that holds '{pattern}' into this folder "
                     "(a doubled folder such as X/X/ is fine).")
  if len(found) > 1:
    listed = ", ".join(str(p) for p in found[:4])
    raise data_error(root, None, f"{len(found)} files match '{pattern}': {listed}.",
                     "keep one copy of the download under manual_dir.")
  return found[0]


# ---------------------------------------------------------------------------------------------
# Tables.


def is_number(field: str) -> bool:
  """True when `field` parses as a float (e.g. '3', '-0.5', '1e-3', 'nan')."""
  try:
    float(field)
  except ValueError:
    return False
  return True


def strip_mp4(name: str) -> str:
  """'ACCEDE00001.mp4' -> 'ACCEDE00001' (case-insensitive; surrounding whitespace removed)."""
  name = name.strip()
  return name[:-4] if name.lower().endswith(".mp4") else name


@dataclasses.dataclass(frozen=True)
class Table:
  """A whitespace-separated annotation table, addressed by column position.

  Attributes:
    path: where it was read from.
    header: the first line's fields when it was a header (first field not numeric), else None.
    rows: the fields of each data row.
    lines: 1-based line number of each row in the file (for error messages).
  """
  path: pathlib.Path
  header: tuple[str, ...] | None
  rows: tuple[tuple[str, ...], ...]
  lines: tuple[int, ...]

  def __len__(self) -> int:
    return len(self.rows)

  def strings(self, column: int) -> list[str]:
    """Column `column` (0-based) as strings."""
    return [row[column] for row in self.rows]

  def floats(self, columns: Sequence[int] | int) -> np.ndarray:
    """Columns as float64, shape (N, len(columns)) (or (N,) for one int column).

    Raises:
      DataError: a field is not a number, naming file, line and column.
    """
    single = isinstance(columns, int)
    cols = [columns] if single else list(columns)
    out_NxC = np.empty((len(self.rows), len(cols)), np.float64)
    for i, (row, line) in enumerate(zip(self.rows, self.lines)):
      for j, c in enumerate(cols):
        try:
          out_NxC[i, j] = float(row[c])
        except ValueError:
          raise data_error(
              self.path, line, f"column {c + 1} is '{row[c]}', not a number.",
              "restore the original file from the download (it may have been edited or "
              "truncated).") from None
    return out_NxC[:, 0] if single else out_NxC


def read_table(path: str | os.PathLike[str], *, min_columns: int,
               max_columns: int | None = None) -> Table:
  """Reads a table: fields split on any whitespace, blank lines skipped.

  The first non-blank line is a header (and skipped) only when its first field is not numeric.

  Args:
    path: the file.
    min_columns: every data row must have at least this many fields.
    max_columns: when given, no data row may have more.

  Raises:
    DataError: the file is missing or unreadable, or a row has the wrong number of fields
      (naming file and line).
  """
  path = pathlib.Path(path)
  try:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
  except OSError as e:
    raise data_error(path, None, f"cannot read the file ({e.strerror}).",
                     "check that it exists and is readable.") from None
  header = None
  rows, lines = [], []
  first = True
  for number, raw in enumerate(text.splitlines(), start=1):
    fields = raw.split()
    if not fields:
      continue
    if first:
      first = False
      if not is_number(fields[0]):
        header = tuple(fields)
        continue
    if len(fields) < min_columns or (max_columns is not None and len(fields) > max_columns):
      want = (f"{min_columns}" if max_columns == min_columns else
              f"at least {min_columns}" if max_columns is None else
              f"{min_columns}-{max_columns}")
      raise data_error(path, number, f"expected {want} fields, found {len(fields)}: '{raw[:80]}'.",
                       "restore the original file from the download; columns are separated by "
                       "tabs or spaces.")
    rows.append(tuple(fields))
    lines.append(number)
  return Table(path=path, header=header, rows=tuple(rows), lines=tuple(lines))


def parse_floats(text: str, *, path: str | os.PathLike[str], line: int | None,
                 sep: str | None = None, expected: int | None = None) -> np.ndarray:
  """Parses one line of numbers separated by `sep` (None: any whitespace) to float32.

  Raises:
    DataError: a field is not a number, or the count differs from `expected`.
  """
  fields = [f for f in (text.split(sep) if sep else text.split())]
  if sep:
    fields = [f.strip() for f in fields]
    if fields and fields[-1] == "":  # a trailing separator
      fields = fields[:-1]
  try:
    values = np.asarray([float(f) for f in fields], np.float32)
  except ValueError:
    bad = next(f for f in fields if not is_number(f))
    raise data_error(path, line, f"'{bad[:40]}' is not a number.",
                     "restore the original file from the download.") from None
  if expected is not None and values.shape[0] != expected:
    raise data_error(path, line, f"expected {expected} numbers, found {values.shape[0]}.",
                     "restore the original file from the download (it may be truncated).")
  return values


# ---------------------------------------------------------------------------------------------
# Per-second streams.


@dataclasses.dataclass(frozen=True)
class Truncation:
  """What `truncate_to_shortest` cut: the common length and the seconds cut per stream."""
  length: int
  cut: Mapping[str, int]

  @property
  def any_cut(self) -> bool:
    return any(v > 0 for v in self.cut.values())

  def describe(self) -> str:
    parts = [f"{k} {v}" for k, v in sorted(self.cut.items()) if v]
    return (f"truncated to {self.length} s (seconds cut: {', '.join(parts)})" if parts else
            f"all streams have {self.length} s")


def truncate_to_shortest(
    streams: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Truncation]:
  """Cuts every stream (leading axis = seconds) to the shortest one's length.

  Returns:
    The truncated streams (same keys and order) and what was cut from each.
  """
  if not streams:
    return {}, Truncation(0, {})
  length = min(int(np.shape(v)[0]) for v in streams.values())
  out = {k: v[:length] for k, v in streams.items()}
  cut = {k: int(np.shape(v)[0]) - length for k, v in streams.items()}
  return out, Truncation(length, cut)


# ---------------------------------------------------------------------------------------------
# Features extracted from films (emojax.features).


StreamSpecs = Mapping[str, tuple[tuple[int, ...], np.dtype]]  # extracted_specs()[1]


def stream_features(specs: StreamSpecs) -> dict[str, tfds.features.Tensor]:
  """One TFDS `Tensor(shape=(None, *row_shape), dtype)` per stream (rows = seconds)."""
  return {name: tfds.features.Tensor(shape=(None,) + tuple(shape), dtype=dtype)
          for name, (shape, dtype) in specs.items()}


def extracted_specs(extractors: Sequence[str] | Mapping[str, Mapping],
                    *, frames: bool = False) -> tuple[dict[str, object], dict[str, tuple]]:
  """The manifest and {stream: (row_shape, dtype)} of `extract_film(path, extractors)`.

  `extractors`: names (default parameters) or {name: params}; empty = `emojax.features.extract.
  DEFAULT`. Only per-second numeric extractors fit the per-second film format; with `frames`, the
  per-clip extractors that store encoded frames (FRAME_EXTRACTORS) are accepted too, as the
  uint8 frames `decode_frame_row` gives: (*row_shape, size, size, 3).

  Raises:
    ConfigError: an unknown extractor, or one that is per-clip or not numeric (and not a frame
      extractor with `frames`).
  """
  # pylint: disable=g-import-not-at-top
  from emojax.errors import ConfigError
  from emojax.features import extract
  from emojax.features import manifest as manifest_lib
  spec = extractors if isinstance(extractors, Mapping) else (tuple(extractors) or extract.DEFAULT)
  manifest = manifest_lib.for_spec(spec)
  specs = {}
  for name, entry in manifest["extractors"].items():
    if frames and name in FRAME_EXTRACTORS:
      size = int(entry["params"]["size"])
      specs[name] = (tuple(entry["shape"]) + (size, size, 3), np.dtype(np.uint8))
      continue
    if entry["per"] != "second" or entry["dtype"] in ("object", "bytes"):
      raise ConfigError(f"extractor {name!r} is per-{entry['per']} with dtype {entry['dtype']}; "
                        "dataset builders take per-second numeric extractors only"
                        + (f" (per-clip builders also {', '.join(FRAME_EXTRACTORS)})."
                           if not frames else "."))
    specs[name] = (tuple(entry["shape"]), np.dtype(entry["dtype"]))
  return manifest, specs


# Per-clip extractors whose rows are encoded frames (emojax.features.frame_clips / tsn_frames).
FRAME_EXTRACTORS = ("frame_clips", "tsn_frames")


def decode_frame_row(video: str | os.PathLike[str], name: str, rows: np.ndarray,
                     shape: Sequence[int]) -> np.ndarray:
  """The one row of a frame extractor on a whole clip (`clip_seconds` 0), decoded to uint8 of
  `shape` ((N, H, W, 3) for frame_clips, (K, M, H, W, 3) for tsn_frames).

  Raises:
    DataError: not exactly one row, or frames of another shape (naming the video).
  """
  from emojax.features import frame_clips  # pylint: disable=g-import-not-at-top
  rows = np.asarray(rows, dtype=object)
  if len(rows) != 1:
    raise DataError(f"{video}: stream '{name}' has {len(rows)} rows, expected one per clip. Fix: "
                    f"extract {name} with clip_seconds=0 (the whole clip).")
  lead = rows.shape[1:]
  pixels = frame_clips.decode_clips(rows.reshape(1, -1))[0]
  pixels = pixels.reshape(tuple(lead) + pixels.shape[1:])
  if pixels.shape != tuple(shape):
    raise DataError(f"{video}: stream '{name}' decodes to {pixels.shape}, expected "
                    f"{tuple(shape)}. Fix: rebuild with matching emojax versions.")
  return pixels


def select_streams(video: str | os.PathLike[str], streams: Mapping[str, np.ndarray],
                   specs: StreamSpecs) -> tuple[dict[str, np.ndarray], Truncation]:
  """The `specs` streams of an extraction, checked and cast, cut to the shortest.

  Raises:
    DataError: a stream is absent or has rows of another shape (a cache or emojax version
      mismatch), naming the video.
  """
  out = {}
  for name, (shape, dtype) in specs.items():
    if name not in streams:
      raise DataError(f"{video}: the extraction engine returned no '{name}' stream (got "
                      f"{sorted(streams)}). Fix: rebuild with matching emojax versions.")
    x = np.asarray(streams[name], dtype)
    if x.shape[1:] != tuple(shape):
      raise DataError(f"{video}: stream '{name}' has rows of shape {x.shape[1:]}, expected "
                      f"{tuple(shape)}. Fix: rebuild with matching emojax versions.")
    out[name] = x
  return truncate_to_shortest(out)


# ---------------------------------------------------------------------------------------------
# What every benchmark builder shares: the engine, problems in the metadata, the DatasetInfo.


def extractor_names(extractors: Sequence[str]) -> tuple[str, ...]:
  """The extractors a config means: its own, or `emojax.features.extract.DEFAULT` when empty."""
  from emojax.features import extract  # pylint: disable=g-import-not-at-top
  return tuple(extractors) or tuple(extract.DEFAULT)


VIDEO_FIX = ("replace the file with the one from the download (play it to check); the rest of "
             "the build is kept without it.")


def unusable_video(key: str, path: str | os.PathLike[str], reason: str,
                   severity: Severity = "warning") -> Problem:
  """A video the extractors cannot read: the build leaves its example out (doctor and build)."""
  return Problem(str(path), None, f"{key}: the video cannot be used ({reason}); its example is "
                 "left out.", VIDEO_FIX, severity)


def probe_videos(videos: Mapping[str, str | os.PathLike[str]],
                 severity: Severity = "warning") -> list[Problem]:
  """Doctor: opens every video's headers (about 1 ms each); an unreadable one as the build
  reports it (`unusable_video`)."""
  from emojax.features import decode  # pylint: disable=g-import-not-at-top
  problems = []
  for key, path in videos.items():
    try:
      decode.probe(path)
    except DataError as e:
      problems.append(unusable_video(key, path, str(e), severity))
  return problems


class BenchmarkBuilder(film_builder.EngineBuilder):
  """Base of the benchmark builders (liris_accede, liris_accede_continuous, mediaeval2018,
  cognimuse): features extracted through the engine (`film_builder.EngineBuilder`: cached,
  parallel, resumable, Beam), problems printed and kept in `info.metadata['problems']` (a
  video the engine cannot read is left out with a warning), one `DatasetInfo` recipe.

  Builder kwargs: those of `film_builder.EngineBuilder` (num_workers, extract_fn, use_beam).
  """

  HOMEPAGE = ""
  CITATION = ""
  DESCRIPTION = ""

  def _dataset_info(self, features: Mapping[str, object]) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict(dict(features)), homepage=self.HOMEPAGE,
        citation=self.CITATION, metadata=tfds.core.MetadataDict())

  @property
  def _where(self) -> str:
    return f"{self.name}/{self.builder_config.name}"

  def _extraction(self, extractors: Sequence[str] | Mapping[str, Mapping], *,
                  frames: bool = False) -> film_builder.Engine:
    """The engine for a config's extractors (names or {name: params}; empty = the default set);
    `frames` as `extracted_specs`."""
    names = extractors if isinstance(extractors, Mapping) and extractors else extractor_names(
        extractors)
    manifest, _ = extracted_specs(names, frames=frames)
    return self._engine(names, manifest)

  def _set_problems(self, problems: Sequence[Problem]) -> None:
    """The problems found before any example: printed and stored in the metadata."""
    self._problems: list[Problem] = []
    self._reported: set[str] = set()
    self.info.metadata["problems"] = []
    self._add_problems(problems)

  def _add_problems(self, problems: Sequence[Problem]) -> None:
    report(self._where, problems)
    self._problems.extend(problems)
    self.info.metadata["problems"] = [p.to_dict() for p in self._problems]

  def _on_outcomes(self, items, outcomes) -> None:
    bad = {}
    for item in items:
      if item.path is not None and outcomes[item.key]["status"] != "ok":
        bad.setdefault(item.key, (item, outcomes[item.key]))
    self._add_problems([unusable_video(item.key, item.path, outcome["reason"])
                        for item, outcome in bad.values()])
    if items and len(bad) == len({item.key for item in items}):
      raise_errors([Problem("", None, "no video could be used (see the warnings above).",
                            "restore the videos from the download.")])

  def _on_example(self, item, example, problems) -> None:
    if item.key in self._reported:  # an example in two splits (mediaeval2018 'dev') counts once
      return
    self._reported.add(item.key)
    self._add_problems(problems)
