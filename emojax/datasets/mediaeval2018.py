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
raises `DataError` naming the file and line (after reading the whole film, counting the others).

The files are read by `mediaeval2018_files` (index, one parser per format, one film), for the
build and for `doctor`, which reads every file of every film the same way (in worker processes
for a big download), so it reports every problem the build meets with the same file and line.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.datasets import common
from emojax.datasets import film_builder
from emojax.datasets.mediaeval2018_files import (  # pylint: disable=unused-import  (re-exported)
    AUDIO_DIM, AUDIO_STREAM, DEV_FILMS, download_part, fill_gaps, film_id, FilmFiles, FilmScan,
    index_download, LABEL_RANGE, load_official_film, MASK_STREAM, MAX_DEPTH, MEDIA_SUFFIXES,
    NUM_FILMS, OFFICIAL_DIMS, OFFICIAL_STREAMS, read_audio, read_labels, read_official,
    read_stream, read_visual, scan_film, SMALL_CUT_S, stream_file_name, StreamFiles, TEST_FILMS,
    TRAIN_FILMS, VALIDATION_FILMS, VISUAL_DIMS, _ranges, _single)
from emojax.errors import DataError

Problem = common.Problem

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
      # The labels are read now, so a malformed label file stops the build before extraction.
      scans = {i: scan_film(films[i], ()) for i in sorted({i for v in present.values() for i in v})}
      items = [film_builder.Item(film_id(i), name, str(films[i].media[0]), scans[i])
               for name, ids in present.items() for i in ids]
    else:
      items = [film_builder.Item(film_id(i), name, None, films[i])
               for name, ids in present.items() for i in ids]
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
  scan: FilmScan = item.data  # the labels, read before extraction
  film = scan.film
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
DOCTOR_WORKERS: int | None = None  # processes reading a big download; None: one per core


def _read_films(films: Sequence[FilmFiles], official: bool,
                num_workers: int | None = None) -> list[tuple[list[Problem], int | None]]:
  """`_read_film` of every film, in parallel over processes for a big download."""
  files = sum(s.size for f in films for st in f.streams.values() for s in st.seconds)
  if num_workers is None:
    num_workers = DOCTOR_WORKERS or os.cpu_count() or 1
  workers = min(num_workers, len(films))
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
  except DataError as e:  # official_features does not read the films: a fact
    return [common.unusable_video(film.id, film.media[0], str(e),
                                  "info" if official else "warning")]
  if abs(info.num_seconds - label_rows) > SMALL_CUT_S:
    return [Problem(
        str(film.media[0]), None, f"{film.id}: the film has {info.num_seconds} s, its labels "
        f"{label_rows} rows; extracted_features cuts both to the shorter.",
        "none needed (a real-data defect when the labels are short, e.g. film 46).",
        "warning" if not official else "info")]
  return []
