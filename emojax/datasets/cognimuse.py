"""Extended COGNIMUSE: 12 film excerpts (~30 min each) with 25 Hz valence/arousal annotations.

TFDS builder `cognimuse`, read from `manual_dir`. One example per film (key = film code, e.g.
'BMI'), in the per-second film format of docs/design.md, except that a row is a *segment* of
`segment_seconds` seconds (5 s as AttendAffectNet, or 1 s: then rows are seconds):
- `film_id`: the code; `valence`, `arousal`: (S,) float32, the mean of the 25 Hz annotation rows
  whose time lies in [k L, (k+1) L) (L = segment seconds); only complete segments are kept
  (S = floor(annotation duration / L); the partial tail is reported);
- experienced configs also have `valence_std`, `arousal_std`: the standard deviation over the
  annotators (population std of the per-annotator segment means);
- features (not in the `*_labels` configs): each `emojax.features` stream of the film, one row per
  second from `extract_film`, averaged over the L seconds of each segment -> (S, *row_shape).

Configs `{intended|experienced}_{5s|1s}` (features extracted from the films) and
`{intended|experienced}_{5s|1s}_labels` (annotations only, for when the films are absent:
evaluation of predictions made elsewhere, label statistics). `intended` = the expert's
`intended_1.dat`; `experienced` = the mean over every `subj{S}_{I}` file of the film (all subjects
and all their annotation passes, rows aligned by position and cut to the shortest file).

Splits: one per film, `film_<CODE>` (e.g. `film_BMI`). Leave-one-film-out fold k is
`fold_splits(code)` = (the '+'-joined other films, `film_<code>`), e.g.
`builder.as_data_source(split=fold_splits('BMI')[0])`; `all_films_split()` is every film.
One split per film keeps each film written (and its features extracted) once.

Files are found by name, at any depth: annotations `intended_1.dat`, `subj1_1.dat` (`.dat`
optional) under a folder named by the film code (or starting with it, e.g. `BMI_emotion`); films
`<CODE>.<ext>` anywhere or `video.<ext>` in the film's folder (ext: mp4, mkv, avi, mov, webm, m4v).
Annotation files: space-separated `time_s valence arousal`, no header (one is skipped if present),
a row every 0.04 s, values in [-1, 1].

Films are the user's own. The annotated excerpt is the film's last part, as long as the
annotation (rows x 0.04 s); the builder checks the film's duration against it
(tolerance `DURATION_TOLERANCE_S`) and the doctor prints, for each film, the ffmpeg command that cuts
an excerpt of the right length.
"""

from __future__ import annotations

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

FILMS: tuple[str, ...] = ("ABE", "BMI", "CHI", "CRA", "DEP", "FNE", "GLA", "LOR", "MDB", "NCO",
                          "RAT", "SIL")
ORIGINAL_FILMS: tuple[str, ...] = ("BMI", "CHI", "CRA", "DEP", "FNE", "GLA", "LOR")
# Our reading of the codes (the seven original ones are certain; check COGNIMUSE's readme for the
# five extended ones).
TITLES: dict[str, str] = {
    "BMI": "A Beautiful Mind", "CHI": "Chicago", "CRA": "Crash", "DEP": "The Departed",
    "FNE": "Finding Nemo", "GLA": "Gladiator", "LOR": "The Lord of the Rings: The Return of the King",
    "ABE": "American Beauty (?)", "MDB": "Million Dollar Baby (?)",
    "NCO": "No Country for Old Men (?)", "RAT": "Ratatouille (?)",
    "SIL": "The Silence of the Lambs (?)",
}
RATE_HZ = 25.0
ROW_STEP_S = 1.0 / RATE_HZ
STEP_TOLERANCE = 0.1  # The median time step must be within 10% of 0.04 s.
DURATION_TOLERANCE_S = 2.0  # |film duration - annotation duration| allowed.
SMALL_CUT_S = 2.0  # Annotation files of one film may differ by this much before a 'warning'.
LABEL_RANGE = (-1.0, 1.0)
MEDIA_SUFFIXES = ("mp4", "mkv", "avi", "mov", "webm", "m4v")
MAX_DEPTH = 6

_INTENDED_RE = re.compile(r"^intended_(\d+)(\.dat)?$", re.IGNORECASE)
_SUBJ_RE = re.compile(r"^subj(\d+)_(\d+)(\.dat)?$", re.IGNORECASE)
_MEDIA_RE = re.compile(r"^(?P<stem>[^.]+)\.(" + "|".join(MEDIA_SUFFIXES) + r")$", re.IGNORECASE)

VERSION = tfds.core.Version("1.0.0")
RELEASE_NOTES = {
    "1.0.0": "First release: intended/experienced labels in 5 s and 1 s segments, features "
             "extracted from the user's films or annotations only, one split per film for "
             "leave-one-film-out folds.",
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
1. Annotations: download the (extended) COGNIMUSE database from http://cognimuse.cs.ntua.gr/database
   (registration needed) and unzip it into manual_dir. Each film's folder (named by its code:
   ABE BMI CHI CRA DEP FNE GLA LOR MDB NCO RAT SIL) holds `intended_1.dat` and the experienced
   `subj{S}_{I}.dat` files. The file that shows it is in place: <manual_dir>/.../BMI/.../intended_1.dat
2. Films (not distributed; only for the configs without `_labels`): the annotated excerpt is the last
   part of each film, as long as its annotation (rows x 0.04 s, about 30 minutes). Cut it from your
   own copy, re-encoding so that the cut is exact, and save it as <manual_dir>/films/<CODE>.mp4:
     ffmpeg -sseof -<SECONDS> -i "<your copy of the film>" -c:v libx264 -crf 18 -c:a aac films/BMI.mp4
   where <SECONDS> is the annotation duration of that film. The data doctor prints the exact command
   for every film:
     python main.py --mode=doctor --dataset=cognimuse --manual_dir=<manual_dir>
   (with PyAV: seek to duration - SECONDS and re-encode the rest). The builder refuses a film whose
   duration differs from its annotation by more than 2 s.
"""

CITATION = """\
@article{zlatintsi2017cognimuse,
  title={COGNIMUSE: a multimodal video database annotated with saliency, events, semantics and
         emotion with application to summarization},
  author={Zlatintsi, Athanasia and Koutras, Petros and Evangelopoulos, Georgios and
          Malandrakis, Nikolaos and Efthymiou, Niki and Pastra, Katerina and Potamianos, Alexandros
          and Maragos, Petros},
  journal={EURASIP Journal on Image and Video Processing},
  year={2017}
}"""


def film_split(code: str) -> str:
  return f"film_{code}"


def all_films_split(films: Sequence[str] = FILMS) -> str:
  return "+".join(film_split(c) for c in films)


def fold_splits(code: str, films: Sequence[str] = FILMS) -> tuple[str, str]:
  """Leave-one-film-out fold of `code`: (train split string, test split string)."""
  if code not in films:
    raise DataError(f"cognimuse: unknown film code {code!r}; codes: {', '.join(films)}.")
  return all_films_split([c for c in films if c != code]), film_split(code)


# ---------------------------------------------------------------------------------------------
# The index of a download.


@dataclasses.dataclass
class FilmFiles:
  code: str
  intended: dict[int, list[pathlib.Path]] = dataclasses.field(default_factory=dict)
  experienced: dict[tuple[int, int], list[pathlib.Path]] = dataclasses.field(default_factory=dict)
  media: list[pathlib.Path] = dataclasses.field(default_factory=list)


def _code_of(parts: Sequence[str]) -> str | None:
  """The film code of the nearest folder named by one ('BMI', 'bmi', 'BMI_emotion', ...)."""
  for part in reversed(parts):
    m = re.match(r"^([A-Za-z]{3})(?:$|[^A-Za-z0-9])", part)
    if m and m[1].upper() in FILMS:
      return m[1].upper()
  return None


def index_download(manual_dir: str | os.PathLike[str]) -> dict[str, FilmFiles]:
  """Walks manual_dir once; files every annotation and film by film code."""
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise common.data_error(root, None, "manual_dir is not a folder.",
                            "pass the folder holding the unzipped COGNIMUSE database.")
  films = {code: FilmFiles(code) for code in FILMS}
  for dirpath, dirnames, filenames in os.walk(root):
    rel = pathlib.Path(dirpath).relative_to(root).parts
    if len(rel) >= MAX_DEPTH:
      dirnames[:] = []
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    code = _code_of(rel)
    for name in sorted(filenames):
      if name.startswith("."):
        continue
      path = pathlib.Path(dirpath, name)
      if (m := _MEDIA_RE.match(name)):
        stem = m["stem"].upper()
        if stem in FILMS:
          films[stem].media.append(path)
        elif stem == "VIDEO" and code:
          films[code].media.append(path)
        continue
      if code is None:
        continue
      if (m := _INTENDED_RE.match(name)):
        films[code].intended.setdefault(int(m[1]), []).append(path)
      elif (m := _SUBJ_RE.match(name)):
        films[code].experienced.setdefault((int(m[1]), int(m[2])), []).append(path)
  return films


# ---------------------------------------------------------------------------------------------
# Annotations.


def read_annotation(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`time_s valence arousal` rows at 25 Hz -> (time, valence, arousal) float64.

  Raises:
    DataError: malformed rows, values outside [-1, 1] or NaN, or a time step that is not 0.04 s
      (file and line).
  """
  table = common.read_table(path, min_columns=3, max_columns=3)
  if len(table) < 2:
    raise common.data_error(path, None, f"{len(table)} annotation rows.",
                            "restore the file from the COGNIMUSE database.")
  x_Nx3 = table.floats([0, 1, 2])
  lo, hi = LABEL_RANGE
  for col, name in ((1, "valence"), (2, "arousal")):
    bad = ~np.isfinite(x_Nx3[:, col]) | (x_Nx3[:, col] < lo) | (x_Nx3[:, col] > hi)
    if bad.any():
      i = int(np.argmax(bad))
      raise common.data_error(path, table.lines[i],
                              f"{name} {x_Nx3[i, col]} is not in [{lo}, {hi}].",
                              "restore the file from the COGNIMUSE database.")
  steps = np.diff(x_Nx3[:, 0])
  if not np.isfinite(x_Nx3[:, 0]).all() or (steps <= 0).any():
    i = int(np.argmax(~(steps > 0))) + 1 if steps.size else 0
    raise common.data_error(path, table.lines[i], "the time column does not increase.",
                            "restore the file from the COGNIMUSE database.")
  step = float(np.median(steps))
  if abs(step - ROW_STEP_S) > STEP_TOLERANCE * ROW_STEP_S:
    raise common.data_error(
        path, table.lines[1], f"rows are {step:.4g} s apart, not {ROW_STEP_S} s (25 Hz).",
        "check that the first column is the time in seconds; restore the file from the "
        "COGNIMUSE database.")
  return x_Nx3[:, 0], x_Nx3[:, 1], x_Nx3[:, 2]


def annotation_duration_s(num_rows: int) -> float:
  """Duration covered by an annotation: rows x 0.04 s."""
  return num_rows * ROW_STEP_S


def segment_means(time_s: np.ndarray, x_N: np.ndarray, segment_s: float,
                  num_segments: int) -> np.ndarray:
  """Mean of the rows whose time lies in [k L, (k+1) L), k < num_segments -> (S,) float64."""
  index = np.floor(time_s / segment_s + 1e-9).astype(np.int64)
  keep = (index >= 0) & (index < num_segments)
  sums = np.bincount(index[keep], weights=x_N[keep], minlength=num_segments)
  counts = np.bincount(index[keep], minlength=num_segments)
  if (counts == 0).any():
    k = int(np.argmax(counts == 0))
    raise DataError(f"no annotation row in segment {k} ([{k * segment_s}, "
                    f"{(k + 1) * segment_s}) s).")
  return sums / counts


@dataclasses.dataclass
class Labels:
  """Segment labels of one film."""
  valence: np.ndarray  # (S,)
  arousal: np.ndarray
  valence_std: np.ndarray | None
  arousal_std: np.ndarray | None
  duration_s: float  # annotation duration
  files: list[pathlib.Path]
  problems: list[Problem]


def _one(paths: list[pathlib.Path], what: str) -> pathlib.Path:
  if len(paths) > 1:
    raise common.data_error(paths[0], None, f"{len(paths)} copies of {what}: "
                            f"{', '.join(map(str, paths[:3]))}.",
                            "keep one copy of the COGNIMUSE database under manual_dir.")
  return paths[0]


def annotation_files(film: FilmFiles, stream: str) -> list[pathlib.Path]:
  """The files of a stream ('intended': intended_1; 'experienced': every subj file).

  Raises:
    DataError: none found (naming the film and the fix), or duplicate copies.
  """
  if stream == "intended":
    if 1 not in film.intended:
      raise common.data_error(
          film.code, None, f"no intended_1.dat found for film {film.code}.",
          f"unzip the COGNIMUSE database into manual_dir so that a folder named {film.code} "
          "holds intended_1.dat.")
    return [_one(film.intended[1], f"{film.code}/intended_1.dat")]
  if stream == "experienced":
    if not film.experienced:
      raise common.data_error(
          film.code, None, f"no experienced annotations (subj{{S}}_{{I}}) found for film "
          f"{film.code}.", f"unzip the experienced annotations of {film.code} into its folder, "
          "or use an 'intended' config.")
    return [_one(film.experienced[k], f"{film.code}/subj{k[0]}_{k[1]}")
            for k in sorted(film.experienced)]
  raise ValueError(f"stream must be 'intended' or 'experienced', got {stream!r}")


def load_labels(film: FilmFiles, stream: str, segment_s: float) -> Labels:
  """Reads a film's annotation(s) of `stream` and averages them into segments."""
  files = annotation_files(film, stream)
  problems: list[Problem] = []
  tables = [read_annotation(p) for p in files]
  rows = [t[0].shape[0] for t in tables]
  n = min(rows)
  if max(rows) - n > 0:
    cut = {str(p): r - n for p, r in zip(files, rows) if r > n}
    problems.append(Problem(
        str(files[0].parent), None,
        f"{film.code}: the {len(files)} {stream} annotation files have {n}-{max(rows)} rows; "
        f"all cut to {n} rows ({', '.join(f'{pathlib.Path(k).name} {v}' for k, v in cut.items())}"
        " rows cut).", "none needed: rows are aligned by position.",
        "warning" if (max(rows) - n) * ROW_STEP_S > SMALL_CUT_S else "info"))
  time_s = tables[0][0][:n]
  duration = annotation_duration_s(n)
  num_segments = int(np.floor(duration / segment_s + 1e-6))
  tail = duration - num_segments * segment_s
  if tail > 1e-6:
    problems.append(Problem(
        str(files[0]), None, f"{film.code}: the last {tail:.2f} s of the annotation do not fill a "
        f"{segment_s:g} s segment and are left out ({num_segments} segments kept).",
        "none needed.", "info"))
  try:
    val_AxS = np.stack([segment_means(time_s, t[1][:n], segment_s, num_segments) for t in tables])
    aro_AxS = np.stack([segment_means(time_s, t[2][:n], segment_s, num_segments) for t in tables])
  except DataError as e:
    raise common.data_error(files[0], None, str(e), "restore the file from the COGNIMUSE "
                            "database.") from None
  many = stream == "experienced"
  return Labels(
      valence=val_AxS.mean(0), arousal=aro_AxS.mean(0),
      valence_std=val_AxS.std(0) if many else None, arousal_std=aro_AxS.std(0) if many else None,
      duration_s=duration, files=files, problems=problems)


def cut_command(code: str, duration_s: float, source: str = "<your copy of the film>") -> str:
  """The ffmpeg command that cuts a film's annotated excerpt (its last `duration_s` seconds)."""
  return (f'ffmpeg -sseof -{duration_s:.2f} -i "{source}" -c:v libx264 -crf 18 -c:a aac '
          f"films/{code}.mp4")


def check_duration(code: str, film_path: pathlib.Path, film_s: float,
                   annotation_s: float) -> Problem | None:
  """An 'error' Problem when the film and its annotation differ by more than the tolerance."""
  if abs(film_s - annotation_s) <= DURATION_TOLERANCE_S:
    return None
  return Problem(
      str(film_path), None,
      f"{code}: the film lasts {film_s:.2f} s but its annotation covers {annotation_s:.2f} s "
      f"(tolerance {DURATION_TOLERANCE_S:g} s).",
      f"cut the film's last {annotation_s:.2f} s: {cut_command(code, annotation_s)}", "error")


def segment_features(x_TxF: np.ndarray, segment_s: int, num_segments: int) -> np.ndarray:
  """Mean over the `segment_s` seconds of each segment: (T, ...) -> (num_segments, ...)."""
  t = num_segments * segment_s
  if x_TxF.shape[0] < t:
    raise ValueError(f"{x_TxF.shape[0]} rows for {num_segments} segments of {segment_s} s")
  x = x_TxF[:t].astype(np.float32)
  return x.reshape(num_segments, segment_s, *x.shape[1:]).mean(axis=1)


# ---------------------------------------------------------------------------------------------
# The builder.


@dataclasses.dataclass
class CognimuseConfig(tfds.core.BuilderConfig):
  """A cognimuse variant.

  Attributes:
    stream: 'intended' (expert) or 'experienced' (mean over annotators).
    segment_seconds: length of a row (5 as AttendAffectNet, or 1).
    features: 'extracted' (emojax's extractors on the films) or 'none' (annotations only).
    extractors: extractor names ('extracted' only; empty = emojax.features.extract.DEFAULT).
  """
  stream: str = "intended"
  segment_seconds: int = 5
  features: str = "extracted"
  extractors: tuple[str, ...] = ()


def _configs() -> list[CognimuseConfig]:
  out = []
  for stream in ("intended", "experienced"):
    for seconds in (5, 1):
      for features, suffix in (("extracted", ""), ("none", "_labels")):
        out.append(CognimuseConfig(
            name=f"{stream}_{seconds}s{suffix}", stream=stream, segment_seconds=seconds,
            features=features,
            description=(f"{stream} labels in {seconds} s segments, " +
                         ("features extracted from the films." if features == "extracted" else
                          "annotations only (no films needed)."))))
  return out


class Cognimuse(common.BenchmarkBuilder):
  """Extended COGNIMUSE (12 film excerpts, valence/arousal in segments)."""

  VERSION = VERSION
  RELEASE_NOTES = RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = _configs()
  DESCRIPTION = __doc__
  HOMEPAGE = "http://cognimuse.cs.ntua.gr/database"
  CITATION = CITATION

  def _check_config(self) -> CognimuseConfig:
    cfg = self.builder_config
    if (cfg.stream not in ("intended", "experienced") or cfg.segment_seconds < 1 or
        cfg.features not in ("extracted", "none")):
      raise DataError(f"cognimuse config {cfg.name!r}: stream must be intended|experienced, "
                      "segment_seconds a positive integer, features extracted|none.")
    return cfg

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self._check_config()
    feats = {"film_id": tfds.features.Text()}
    if cfg.features == "extracted":
      for name, (shape, _) in common.extracted_specs(cfg.extractors)[1].items():
        feats[name] = tfds.features.Tensor(shape=(None, *shape), dtype=np.float32)
    for name in ("valence", "arousal"):
      feats[name] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    if cfg.stream == "experienced":
      for name in ("valence_std", "arousal_std"):
        feats[name] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    return self._dataset_info(feats)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    cfg = self._check_config()
    films = index_download(dl_manager.manual_dir)
    problems: list[Problem] = []
    present = []
    for code, film in films.items():
      has = bool(film.intended.get(1)) if cfg.stream == "intended" else bool(film.experienced)
      if has:
        present.append(code)
      else:
        problems.append(Problem(
            str(dl_manager.manual_dir), None,
            f"film {code}: no {cfg.stream} annotation found; its split is left out.",
            f"unzip the COGNIMUSE annotations of {code} into a folder named {code}.", "warning"))
    if not present:
      raise common.data_error(dl_manager.manual_dir, None,
                              f"no {cfg.stream} annotation of any COGNIMUSE film found.",
                              MANUAL_DOWNLOAD_INSTRUCTIONS)
    if cfg.features == "extracted":
      missing = [c for c in present if not films[c].media]
      if missing:
        raise common.data_error(
            dl_manager.manual_dir, None, f"no film file for {', '.join(missing)}.",
            f"cut each film's annotated excerpt and save it as films/<CODE>.mp4 (see the "
            f"instructions; the doctor prints the commands), or use config "
            f"'{cfg.stream}_{cfg.segment_seconds}s_labels'.")
      for c in present:
        _one(films[c].media, f"the film {c}")
    md = self.info.metadata
    md["segment_seconds"] = cfg.segment_seconds
    md["films"] = {}
    if cfg.features == "extracted":
      md["feature_manifest"] = common.extracted_specs(cfg.extractors)[0]
    md["splits"] = {film_split(c): [c] for c in present}
    self._set_problems(problems)
    extracted = cfg.features == "extracted"
    # The labels are read now, so a malformed annotation stops the build before extraction.
    items = [film_builder.Item(c, film_split(c), str(films[c].media[0]) if extracted else None,
                               (films[c], load_labels(films[c], cfg.stream, cfg.segment_seconds)))
             for c in present]
    engine = self._extraction(cfg.extractors) if extracted else self._engine({}, {})
    return self._engine_splits(engine, items, functools.partial(film_example, cfg=cfg))

  def _on_example(self, item, example, problems_and_info) -> None:
    problems, info = problems_and_info
    super()._on_example(item, example, problems)
    self.info.metadata["films"][item.key] = info


def film_example(item: film_builder.Item, streams: Mapping[str, np.ndarray] | None,
                 meta: Mapping[str, Any] | None, *, cfg: CognimuseConfig
                 ) -> tuple[dict[str, np.ndarray | str], tuple[list[Problem], dict[str, object]]]:
  """`make_example` of one film: (example, (problems, its `films` metadata entry)).

  Raises:
    DataError: the film's duration does not match its annotation (`check_duration`).
  """
  film, labels = item.data  # the labels, read before extraction
  problems = list(labels.problems)
  num_segments = labels.valence.shape[0]
  info: dict[str, object] = {"annotation_s": round(labels.duration_s, 3),
                             "files": len(labels.files)}
  example: dict[str, np.ndarray | str] = {"film_id": film.code}
  if streams is not None:
    path = item.path
    bad = check_duration(film.code, path, meta["duration_s"], labels.duration_s)
    if bad:
      common.raise_errors([bad])
    info["film_s"] = round(float(meta["duration_s"]), 3)
    film_segments = meta["num_seconds"] // cfg.segment_seconds
    if film_segments < num_segments:
      problems.append(Problem(
          str(path), None, f"{film.code}: the film has {meta['num_seconds']} whole seconds, "
          f"{film_segments} segments of {cfg.segment_seconds} s; the labels' last "
          f"{num_segments - film_segments} segment(s) are cut.", "none needed.", "info"))
      num_segments = film_segments
    for name, x in streams.items():
      example[name] = segment_features(np.asarray(x), cfg.segment_seconds, num_segments)
  example["valence"] = labels.valence[:num_segments].astype(np.float32)
  example["arousal"] = labels.arousal[:num_segments].astype(np.float32)
  if cfg.stream == "experienced":
    example["valence_std"] = labels.valence_std[:num_segments].astype(np.float32)
    example["arousal_std"] = labels.arousal_std[:num_segments].astype(np.float32)
  info["segments"] = int(num_segments)
  return example, (problems, info)


# ---------------------------------------------------------------------------------------------
# The data doctor.


def doctor(manual_dir: str | os.PathLike[str], config: str | None = None) -> list[Problem]:
  """Inspects a COGNIMUSE download (annotations, and the user's films) before a build.

  config: a config name (checks what it needs) or None (everything: both streams; films reported
  as warnings when absent, with the command that cuts them).
  """
  cfg, problems = common.doctor_config("cognimuse", Cognimuse.BUILDER_CONFIGS, config or None)
  if problems:
    return problems
  streams = (cfg.stream,) if cfg else ("intended", "experienced")
  films_needed = cfg is not None and cfg.features == "extracted"
  try:
    films = index_download(manual_dir)
  except DataError as e:
    return [common.problem_from_error(e)]
  problems: list[Problem] = []
  for code, film in films.items():
    durations = {}
    for stream in streams:
      has = bool(film.intended) if stream == "intended" else bool(film.experienced)
      if not has:
        required = cfg is not None or stream == "intended"
        problems.append(Problem(
            str(manual_dir), None, f"film {code}: no {stream} annotation found"
            + ("." if required else " (only the experienced configs need it)."),
            f"unzip the COGNIMUSE annotations of {code} into a folder named {code}.",
            "warning"))
        continue
      try:
        labels = load_labels(film, stream, 1)
      except DataError as e:
        problems.append(common.problem_from_error(e))
        continue
      problems += [p for p in labels.problems if "do not fill" not in p.message]
      durations[stream] = labels.duration_s
    if not durations:
      continue
    annotation_s = durations.get("intended", next(iter(durations.values())))
    if len(film.media) > 1:
      problems.append(Problem(str(film.media[0]), None, f"{len(film.media)} film files for "
                              f"{code}: {', '.join(map(str, film.media[:3]))}.",
                              "keep one film per code under manual_dir.", "error"))
    if not film.media:
      if cfg is None or films_needed:
        problems.append(Problem(
            str(manual_dir), None, f"film {code}: no films/{code}.mp4 (needed by the configs "
            "without '_labels').", f"cut the annotated excerpt from your copy of the film: "
            f"{cut_command(code, annotation_s)}", "error" if films_needed else "warning"))
      continue
    try:
      from emojax.features import decode  # pylint: disable=g-import-not-at-top
      info = decode.probe(film.media[0])
    except DataError as e:
      problems.append(common.unusable_video(code, film.media[0], str(e),
                                            "warning" if films_needed or cfg is None else "info"))
      continue
    if bad := check_duration(code, film.media[0], info.duration_s, annotation_s):
      problems.append(bad)
  return problems
