"""LIRIS-ACCEDE continuous (MediaEval 2016 Continuous): 30 films with per-second valence/arousal.

One example per film in the per-second film format of docs/design.md: `film_id`, one
`(T, ...)` stream per extractor computed from the film, and `valence`, `arousal`, `valence_std`,
`arousal_std` (T,), the post-processed mean of the annotators and its standard deviation, in
[-1, 1]. Labels come from `continuous-annotations/<Movie>_Valence.txt` and `_Arousal.txt` (one
header line, then `second mean std`, tab-separated; the per-annotator files in `raw/` are
ignored). Row i is second i of the film. All per-second arrays of a film are truncated to the
shortest and the cut is reported in `info.metadata['problems']`.

Splits: `train` = the films of the LIRIS-ACCEDE continuous download (the MediaEval 2016
development films); `test` = films named `MEDIAEVAL16_FM_*` when their annotations are present
(the MediaEval 2016 test films). The `annotations` config (or `extractors=()`) holds labels only.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.datasets import common
from emojax.datasets import film_builder
from emojax.datasets import liris_accede as la
from emojax.datasets.common import Problem
from emojax.errors import DataError

TEST_PREFIX = "MEDIAEVAL16_FM_"
DIMENSIONS = ("valence", "arousal")
# Cuts longer than this (labels vs film, valence vs arousal) are warnings, shorter ones facts.
TOLERATED_CUT_S = 2

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
LIRIS-ACCEDE needs an agreement: ask for access at https://liris-accede.ec-lyon.fr/ and download
  LIRIS-ACCEDE-continuous-annotations.zip -> continuous-annotations/<Movie>_Valence.txt,
                                            <Movie>_Arousal.txt (30 films; raw/ is ignored)
  LIRIS-ACCEDE-continuous-movies.zip      -> continuous-movies/<Movie>.mp4
and, for the MediaEval 2016 test films, MEDIAEVAL16_FM_00.mp4 ... _09.mp4 with their
continuous-annotations/MEDIAEVAL16_FM_XX_Valence.txt / _Arousal.txt files (optional).
Unzip everything into ONE folder and pass it as manual_dir (doubled folders such as
LIRIS-ACCEDE-continuous-annotations/continuous-annotations/ are fine).
It is in place when continuous-annotations/After_The_Rain_Valence.txt lies under manual_dir.
The `annotations` config needs no .mp4 files. Check a download before a long build with:
  python main.py --mode=doctor --dataset=liris_accede_continuous --manual_dir=<folder>
"""


@dataclasses.dataclass(frozen=True)
class Curve:
  """One `<Movie>_<Dim>.txt`: per-second mean and std."""
  path: pathlib.Path
  mean: np.ndarray  # (T,) float32
  std: np.ndarray  # (T,) float32
  first_second: float


def read_curve(path: la.PathLike, problems: list[Problem]) -> Curve:
  """Reads `second mean std` rows (header optional); checks seconds, range and stds.

  Seconds must follow each other by 1 (a gap is an error: the rows would shift); means must lie
  in [-1, 1] and stds be >= 0.
  """
  table = common.read_table(path, min_columns=3, max_columns=3)
  if not len(table):
    raise common.data_error(path, None, "has no rows.", la.RESTORE_FIX)
  values = table.floats([0, 1, 2])
  steps = np.diff(values[:, 0])
  for i in np.flatnonzero(np.abs(steps - 1) > 1e-6):
    problems.append(Problem(str(table.path), table.lines[i + 1],
                            f"second {table.rows[i + 1][0]} follows second {table.rows[i][0]}; "
                            "rows must be one second apart.", la.RESTORE_FIX))
  for c, what, ok, allowed in ((1, "mean", lambda v: np.abs(v) <= 1, "[-1, 1]"),
                               (2, "std", lambda v: v >= 0, "[0, inf)")):
    bad = ~ok(values[:, c]) | ~np.isfinite(values[:, c])
    for i in np.flatnonzero(bad):
      problems.append(Problem(str(table.path), table.lines[i],
                              f"{what} (column {c + 1}) is {table.rows[i][c]}, outside {allowed}.",
                              la.RESTORE_FIX))
  return Curve(table.path, values[:, 1].astype(np.float32), values[:, 2].astype(np.float32),
               float(values[0, 0]))


@dataclasses.dataclass
class Film:
  """What one film example is made of (before features)."""
  film_id: str
  split: str
  labels: dict[str, np.ndarray]  # valence, arousal, valence_std, arousal_std: (T,)
  video: pathlib.Path | None


def _cut_problem(where: str, truncation: common.Truncation, what: str) -> Problem:
  worst = max(truncation.cut.values())
  return Problem(where, None, f"{what}: {truncation.describe()}.",
                 "none needed: the streams are kept at their common length.",
                 "warning" if worst > TOLERATED_CUT_S else "info")


def plan(manual_dir: la.PathLike, *, need_videos: bool,
         strict: bool = True) -> tuple[list[Film], list[Problem]]:
  """Reads every film's labels (and finds its video); problems as in `liris_accede.plan`."""
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise common.data_error(root, None, "manual_dir not found.",
                            "pass the folder you unzipped LIRIS-ACCEDE continuous into.")
  problems: list[Problem] = []
  files: dict[str, dict[str, list[pathlib.Path]]] = {}
  for dim in DIMENSIONS:
    suffix = f"_{dim.capitalize()}.txt"
    for path in common.find_files(root, f"continuous-annotations/*{suffix}"):
      files.setdefault(path.name[:-len(suffix)], {}).setdefault(dim, []).append(path)
  if not files:
    problems.append(Problem(str(root), None,
                            "no continuous-annotations/<Movie>_Valence.txt files found.",
                            "unzip LIRIS-ACCEDE-continuous-annotations.zip into manual_dir."))
  movies = common.find_files(root, "*.mp4") if need_videos and files else []
  films = []
  for film_id in sorted(files):
    curves = {}
    for dim in DIMENSIONS:
      paths = files[film_id].get(dim, [])
      if len(paths) != 1:
        other = next(iter(files[film_id].values()))[0]
        problems.append(Problem(
            str(other), None,
            f"{film_id} has {len(paths)} {dim} files ({film_id}_{dim.capitalize()}.txt).",
            "keep exactly one valence and one arousal file per film."))
        continue
      curve = la.parse_or_report(read_curve, paths[0], problems, strict)
      if curve is not None:
        curves[dim] = curve
    if len(curves) != 2:
      continue
    for curve in curves.values():
      if curve.first_second not in (0.0, 1.0):
        problems.append(Problem(str(curve.path), None,
                                f"seconds start at {curve.first_second:g}; row i is taken as "
                                "second i of the film.", "check the file if this is unexpected.",
                                "warning"))
    labels, cut = common.truncate_to_shortest({
        "valence": curves["valence"].mean, "arousal": curves["arousal"].mean,
        "valence_std": curves["valence"].std, "arousal_std": curves["arousal"].std})
    if cut.any_cut:
      problems.append(_cut_problem(str(curves["arousal"].path.parent), cut,
                                   f"{film_id} valence and arousal rows differ"))
    video = _find_movie(movies, film_id, problems) if need_videos else None
    films.append(Film(film_id, "test" if film_id.startswith(TEST_PREFIX) else "train", labels,
                      video))
  if need_videos and not strict:
    _check_durations(films, problems)
  if strict:
    common.raise_errors(problems)
  return films, problems


def _find_movie(movies: Sequence[pathlib.Path], film_id: str,
                problems: list[Problem]) -> pathlib.Path | None:
  found = [p for p in movies if p.name == f"{film_id}.mp4"]
  preferred = [p for p in found if p.parent.name == "continuous-movies"]
  found = preferred or found
  if len(found) == 1:
    return found[0]
  if not found:
    problems.append(Problem("", None, f"{film_id}.mp4 not found.",
                            "unzip LIRIS-ACCEDE-continuous-movies.zip into manual_dir, or build "
                            "the 'annotations' config."))
  else:
    problems.append(Problem(str(found[1]), None, f"{film_id}.mp4 is present {len(found)} times "
                            f"(also {found[0]}).", "keep one copy under manual_dir."))
  return None


def _check_durations(films: Sequence[Film], problems: list[Problem]) -> None:
  """Doctor only: compares each film's duration with its label rows (probing the header)."""
  from emojax.features import decode  # pylint: disable=g-import-not-at-top
  for film in films:
    if film.video is None:
      continue
    try:
      info = decode.probe(film.video)
    except DataError as e:
      problems.append(common.unusable_video(film.film_id, film.video, str(e)))
      continue
    rows = len(film.labels["valence"])
    if rows != info.num_seconds:
      gap = abs(rows - info.num_seconds)
      problems.append(Problem(
          str(film.video), None,
          f"the film has {info.num_seconds} s, its labels {rows} rows; the build keeps "
          f"{min(rows, info.num_seconds)} s.",
          "check that video and annotations belong together." if gap > TOLERATED_CUT_S else
          "none needed.", "warning" if gap > TOLERATED_CUT_S else "info"))


@dataclasses.dataclass(eq=False)
class ContinuousConfig(tfds.core.BuilderConfig):
  """The features extracted from the films (none: annotations only)."""
  extractors: tuple[str, ...] = la.DEFAULT_EXTRACTORS


CITATION = """\
@inproceedings{baveye2015deep,
  title={Deep Learning vs. Kernel Methods: Performance for Emotion Prediction in Videos},
  author={Baveye, Yoann and Dellandr{\\'e}a, Emmanuel and Chamaret, Christel and Chen, Liming},
  booktitle={Affective Computing and Intelligent Interaction (ACII)}, year={2015}
}
@inproceedings{dellandrea2016mediaeval,
  title={The MediaEval 2016 Emotional Impact of Movies Task},
  author={Dellandr{\\'e}a, Emmanuel and Chen, Liming and Baveye, Yoann and Sj{\\"o}berg, Mats
          and Chamaret, Christel},
  booktitle={MediaEval 2016 Workshop}, year={2016}
}
"""


def film_example(item: film_builder.Item, streams: Mapping[str, np.ndarray] | None,
                 meta: Mapping[str, Any] | None, *, specs: common.StreamSpecs
                 ) -> tuple[dict[str, Any], list[Problem]]:
  """`make_example` of a film: its labels (`item.data`) and streams, all cut to the shortest."""
  del meta
  arrays = dict(item.data)
  if streams is None:
    return {"film_id": item.key, **arrays}, []
  problems = []
  streams, cut = common.select_streams(item.path, streams, specs)
  if cut.any_cut:
    problems.append(_cut_problem(str(item.path), cut, "feature streams differ"))
  arrays, cut = common.truncate_to_shortest({**arrays, **streams})
  if cut.any_cut:
    problems.append(_cut_problem(str(item.path), cut, f"{item.key} labels vs features"))
  return {"film_id": item.key, **arrays}, problems


class LirisAccedeContinuous(common.BenchmarkBuilder):
  """LIRIS-ACCEDE continuous: per-second valence/arousal mean and std of 30 films."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: default (features) and annotations configs."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      ContinuousConfig(name="default", description=la.describe(
          "LIRIS-ACCEDE continuous: per-second valence/arousal", la.DEFAULT_EXTRACTORS)),
      ContinuousConfig(name="annotations", extractors=(), description=la.describe(
          "LIRIS-ACCEDE continuous: per-second valence/arousal", ())),
  ]
  DESCRIPTION = __doc__
  HOMEPAGE = "https://liris-accede.ec-lyon.fr/"
  CITATION = CITATION

  def __init__(self, *, extractors: Sequence[str] | None = None, **kwargs: Any):
    """`extractors` overrides the config's feature extractors (() = annotations only); the
    engine's kwargs (num_workers, extract_fn, use_beam) are those of `common.BenchmarkBuilder`."""
    if extractors is not None:
      configs = {c.name: c for c in self.BUILDER_CONFIGS}
      kwargs["config"] = la.derive_config(configs, kwargs.get("config"), extractors)
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features: dict[str, Any] = {"film_id": tfds.features.Text()}
    for name in ("valence", "arousal", "valence_std", "arousal_std"):
      features[name] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    if self.builder_config.extractors:
      features.update(common.stream_features(
          common.extracted_specs(self.builder_config.extractors)[1]))
    return self._dataset_info(features)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
    config = self.builder_config
    films, problems = plan(pathlib.Path(dl_manager.manual_dir),
                           need_videos=bool(config.extractors))
    entries, specs = la.feature_metadata(config.extractors)
    self.info.metadata.update({
        "extractors": list(config.extractors),
        "num_seconds": {f.film_id: int(len(f.labels["valence"])) for f in films}, **entries,
    })
    self._set_problems(problems)
    items = [film_builder.Item(f.film_id, f.split, str(f.video) if specs else None, f.labels)
             for f in films]
    return self._engine_splits(self._extraction(config.extractors), items,
                               functools.partial(film_example, specs=specs))

  def _on_example(self, item, example, problems) -> None:
    super()._on_example(item, example, problems)
    if example is not None:
      self.info.metadata["num_seconds"][item.key] = int(len(example["valence"]))


def doctor(manual_dir: la.PathLike,
           config: str | ContinuousConfig | None = "default") -> list[Problem]:
  """Every problem of a download for `config` (None = 'default'), without building: missing or
  unpaired files, malformed rows (file and line), values out of range, gaps in the seconds,
  valence/arousal length mismatches, missing films and film durations that differ from the label
  rows; an unknown config name is reported as an error."""
  if not isinstance(config, ContinuousConfig):
    config, problems = common.doctor_config(
        "liris_accede_continuous", LirisAccedeContinuous.BUILDER_CONFIGS, config, "default")
    if problems:
      return problems
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    return [Problem(str(root), None, "manual_dir not found.",
                    "pass the folder you unzipped LIRIS-ACCEDE continuous into.")]
  return plan(root, need_videos=bool(config.extractors), strict=False)[1]
