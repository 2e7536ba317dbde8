"""The official numbers of each benchmark, computed from predictions with emojax.metrics.

Each protocol takes either one dimension or several:
  - one dimension: the documented pairs/arrays directly -> a dict of numbers;
  - several: the same with a {dim: ...} level inside (for `mediaeval2018`/`cognimuse_lofo`, inside
    each film/fold; for `mediaeval2015_accuracy`/`liris_discrete`, the two arguments are
    {dim: array} dicts) -> {dim: dict of numbers}, dims ordered valence, arousal, then others.
PCC follows emojax.metrics (nan when a series is constant).

`official_numbers(dataset, config, eval_dir)` applies the right one to a finished run's
`<workdir>/eval/<split>/predictions/*.csv`.

`get(dataset)` is a dataset's `Protocol`, looked up by its TFDS name (config.dataset.name): what the
harness does for that benchmark beyond the common evaluation (its official numbers written after
evaluation, its leave-one-film-out folds). The harness asks the protocol, never the dataset's name.
"""

import dataclasses
import importlib
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from emojax import fileio, metrics, postprocess, reporting
from emojax.errors import DataError


def _per_dim(entries: Mapping, what: str):
  """Splits {key: {dim: pair}} into {dim: {key: pair}}; None when the values are plain pairs."""
  kinds = {isinstance(v, Mapping) for v in entries.values()}
  if kinds == {False}:
    return None
  if kinds != {True}:
    raise DataError(f"{what}: mix of plain (true, pred) pairs and {{dim: (true, pred)}} dicts; "
                    "use one form for all.")
  by_dim = {}
  for key, per_dim in entries.items():
    for dim, pair in per_dim.items():
      by_dim.setdefault(dim, {})[key] = pair
  return {d: by_dim[d] for d in metrics.ordered_dims(by_dim)}


def _pair(pair, where: str):
  if not isinstance(pair, (tuple, list)) or len(pair) != 2:
    raise DataError(f"{where}: expected a (true, pred) pair, got {type(pair).__name__}.")
  return pair


def _mse_pcc(t_N, p_N, where: str, count: str) -> dict:
  m = metrics.regression_metrics(t_N, p_N, where)
  return {"mse": m["mse"], "pcc": m["pcc"], count: m["num_seconds"]}


def mediaeval2018(films: Mapping, clip_seconds: int | None = None) -> dict:
  """MediaEval 2018: MSE and PCC over all test seconds (pooled over films).

  Args:
    films: film_id -> (true_T, pred), or film_id -> {dim: (true_T, pred)}. pred is per second
      (T,), or per clip (ceil(T / clip_seconds),) when `clip_seconds` is given: each clip
      prediction is then repeated over its seconds (`postprocess.repeat_to_seconds`).
    clip_seconds: clip length of clip-level predictions; None for per-second predictions.

  Returns:
    {mse, pcc, num_seconds, per_film: {film_id: {mse, pcc, num_seconds}}}, or that per dim.
  """
  if not films:
    raise DataError("mediaeval2018: no films given.")
  by_dim = _per_dim(films, "mediaeval2018")
  if by_dim is not None:
    return {d: mediaeval2018(f, clip_seconds) for d, f in by_dim.items()}
  trues, preds, per_film = [], [], {}
  for film_id, pair in films.items():
    key = metrics.film_key(film_id)
    true_T, pred = _pair(pair, f"mediaeval2018 film {key!r}")
    true_T = np.asarray(true_T, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if clip_seconds is not None:
      try:
        pred = postprocess.repeat_to_seconds(pred, true_T.size, clip_seconds)
      except DataError as e:
        raise DataError(f"mediaeval2018 film {key!r}: {e}") from e
    per_film[key] = _mse_pcc(true_T, pred, f"mediaeval2018 film {key!r}", "num_seconds")
    trues.append(true_T)
    preds.append(pred)
  pooled = _mse_pcc(np.concatenate(trues), np.concatenate(preds), "mediaeval2018 (all films)",
                    "num_seconds")
  return {**pooled, "per_film": per_film}


def _classes(x, where: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64).reshape(-1)
  bad = ~np.isin(x, (-1.0, 0.0, 1.0))
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise DataError(f"{where}: class {x[i]} at index {i}; MediaEval 2015 classes are -1, 0, 1.")
  return x


def mediaeval2015_accuracy(true_classes, pred_classes) -> dict:
  """MediaEval 2015: global accuracy (share of correctly classified clips), classes -1/0/1.

  Args:
    true_classes, pred_classes: (N,) arrays for one dimension, or {dim: (N,) array} dicts with
      the same dims.

  Returns:
    {accuracy, num_clips}, or that per dim.
  """
  if isinstance(true_classes, Mapping) or isinstance(pred_classes, Mapping):
    if not (isinstance(true_classes, Mapping) and isinstance(pred_classes, Mapping)):
      raise DataError("mediaeval2015_accuracy: give both arguments as {dim: array} or neither.")
    if set(true_classes) != set(pred_classes):
      raise DataError(f"mediaeval2015_accuracy: true dims {sorted(true_classes)} differ from "
                      f"predicted dims {sorted(pred_classes)}.")
    return {d: mediaeval2015_accuracy(true_classes[d], pred_classes[d])
            for d in metrics.ordered_dims(true_classes)}
  t_N = _classes(true_classes, "mediaeval2015_accuracy true")
  p_N = _classes(pred_classes, "mediaeval2015_accuracy pred")
  return {"accuracy": metrics.accuracy(t_N, p_N), "num_clips": int(t_N.size)}


def cognimuse_lofo(folds: Mapping) -> dict:
  """COGNIMUSE leave-one-film-out: MSE and PCC over all predicted segments of all folds.

  Args:
    folds: held_out_film -> (true_segments, pred_segments) of that fold's test film, or
      held_out_film -> {dim: (true, pred)}.

  Returns:
    {mse, pcc, num_segments, per_fold: {film: {mse, pcc, num_segments}}}, or that per dim.
  """
  if not folds:
    raise DataError("cognimuse_lofo: no folds given.")
  by_dim = _per_dim(folds, "cognimuse_lofo")
  if by_dim is not None:
    return {d: cognimuse_lofo(f) for d, f in by_dim.items()}
  trues, preds, per_fold = [], [], {}
  for film, pair in folds.items():
    key = metrics.film_key(film)
    t, p = _pair(pair, f"cognimuse_lofo fold {key!r}")
    per_fold[key] = _mse_pcc(t, p, f"cognimuse_lofo fold {key!r}", "num_segments")
    trues.append(np.asarray(t, dtype=np.float64).reshape(-1))
    preds.append(np.asarray(p, dtype=np.float64).reshape(-1))
  pooled = _mse_pcc(np.concatenate(trues), np.concatenate(preds), "cognimuse_lofo (all folds)",
                    "num_segments")
  return {**pooled, "per_fold": per_fold}


def liris_discrete(true, pred) -> dict:
  """LIRIS-ACCEDE discrete (clip-level) regression: MSE and PCC (with its two-sided p-value).

  Args:
    true, pred: (N,) arrays for one dimension, or {dim: (N,) array} dicts with the same dims.

  Returns:
    {mse, pcc, pcc_pvalue, num_clips}, or that per dim. pcc_pvalue is scipy.stats.pearsonr's
    (t-test with N - 2 degrees of freedom); nan when the PCC is undefined.
  """
  if isinstance(true, Mapping) or isinstance(pred, Mapping):
    if not (isinstance(true, Mapping) and isinstance(pred, Mapping)):
      raise DataError("liris_discrete: give both arguments as {dim: array} or neither.")
    if set(true) != set(pred):
      raise DataError(f"liris_discrete: true dims {sorted(true)} differ from predicted dims "
                      f"{sorted(pred)}.")
    return {d: liris_discrete(true[d], pred[d]) for d in metrics.ordered_dims(true)}
  out = _mse_pcc(true, pred, "liris_discrete", "num_clips")
  pvalue = float("nan")
  if np.isfinite(out["pcc"]) and out["num_clips"] > 2:
    pvalue = float(stats.pearsonr(np.asarray(true, np.float64).reshape(-1),
                                  np.asarray(pred, np.float64).reshape(-1)).pvalue)
  return {"mse": out["mse"], "pcc": out["pcc"], "pcc_pvalue": pvalue,
          "num_clips": out["num_clips"]}


# ---------------------------------------------------------------------------------------------
# From a finished run's evaluation files (docs/design.md "Evaluation outputs").

MEDIAEVAL2015_CLASSES = (-1.0, 0.0, 1.0)


def read_predictions(eval_dir) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
  """`<eval_dir>/predictions/<film>.csv` -> {film_id: {dim: (true_T, pred_T)}} (float64).

  When `<eval_dir>/metrics.json` exists, exactly the films it lists are read (under their original
  ids; a CSV of a film no longer evaluated is left out); otherwise every CSV, named by its stem.
  The harness writes float32 values as their shortest text; read as float64, numbers computed
  from them agree with its metrics.json to about 1e-7 (relative).

  Raises:
    DataError: no predictions, a film of metrics.json without its CSV, or a malformed CSV (not
      `second,<dim>_true,<dim>_pred,...`, a non-number), naming the file and line.
  """
  eval_dir = pathlib.Path(eval_dir)
  folder = eval_dir / "predictions"
  metrics_json = eval_dir / "metrics.json"
  if metrics_json.exists():
    listed = fileio.read_json(metrics_json)
    film_ids = list(dict.fromkeys(f for m in listed.values() for f in m.get("per_film", {})))
    files = {fid: folder / f"{reporting.safe_filename(fid)}.csv" for fid in film_ids}
    for fid, path in files.items():
      if not path.exists():
        raise DataError(f"{path}: missing, but {metrics_json} lists film {fid!r}; evaluate the "
                        "run again (python main.py --mode=evaluate --workdir=...).")
  else:
    files = {p.stem: p for p in sorted(folder.glob("*.csv"))}
  if not files:
    raise DataError(f"{folder}: no prediction CSVs; pass an evaluation folder "
                    "<workdir>/eval/<split> of a finished run.")
  return {fid: _read_prediction_csv(path) for fid, path in files.items()}


def _read_prediction_csv(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  lines = path.read_text().splitlines()
  header = lines[0].split(",") if lines else []
  dims = [h[:-len("_true")] for h in header[1::2]]
  if (len(header) < 3 or len(header) % 2 != 1 or header[0] != "second"
      or header[1::2] != [f"{d}_true" for d in dims]
      or header[2::2] != [f"{d}_pred" for d in dims]):
    raise DataError(f"{path}:1: header {lines[0] if lines else ''!r} is not "
                    "'second,<dim>_true,<dim>_pred,...'; pass a predictions folder written by "
                    "emojax's evaluation.")
  rows = []
  for number, line in enumerate(lines[1:], start=2):
    if not line.strip():
      continue
    fields = line.split(",")
    try:
      if len(fields) != len(header):
        raise ValueError
      rows.append([float(f) for f in fields])
    except ValueError:
      raise DataError(f"{path}:{number}: expected {len(header)} numbers, got {line[:80]!r}; "
                      "evaluate the run again to rewrite the file.") from None
  table = np.asarray(rows, np.float64).reshape(len(rows), len(header))
  return {d: (table[:, 1 + 2 * i], table[:, 2 + 2 * i]) for i, d in enumerate(dims)}


def _clip_values(films: Mapping, what: str) -> tuple[dict, dict]:
  """Per-clip benchmarks: one CSV per clip -> {dim: true_N}, {dim: pred_N} (pred = mean over
  the clip's rows; the true label must be one value per clip)."""
  true, pred = {}, {}
  for clip, per_dim in films.items():
    for dim, (t, p) in per_dim.items():
      if t.size == 0 or np.ptp(t) != 0:
        raise DataError(f"{what}: clip {clip!r} has {t.size} rows whose {dim}_true values are not "
                        "one constant label; these predictions are not per clip.")
      true.setdefault(dim, []).append(t[0])
      pred.setdefault(dim, []).append(p.mean())
  return ({d: np.asarray(v) for d, v in true.items()}, {d: np.asarray(v) for d, v in pred.items()})


def nearest_class(x) -> np.ndarray:
  """Continuous predictions -> the nearest MediaEval 2015 class (-1, 0, 1); 0.5 goes to 1,
  -0.5 to -1."""
  x = np.asarray(x, np.float64)
  return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), -1.0, 1.0)


def official_numbers(dataset: str, config: str, eval_dir) -> dict:
  """The benchmark's official numbers from a finished run's evaluation files.

  Args:
    dataset: the TFDS builder name (config.dataset.name).
    config: its builder config (config.dataset.config), e.g. 'official_features', 'discrete'.
    eval_dir: `<workdir>/eval/<split>` (normally the test split); for `cognimuse`, a list of the
      test folders of the leave-one-film-out runs (one held-out film each), or one folder that
      holds every fold's held-out film.

  Returns (per dim, ordered valence, arousal, ...):
    - mediaeval2018: `mediaeval2018` above (MSE, PCC over all test seconds, per film);
    - liris_accede `discrete*` / `mediaeval2016_global*`: `liris_discrete` (MSE, PCC, p-value per
      dimension over clips; one CSV per clip, its prediction = the mean over the clip's rows);
    - liris_accede `mediaeval2015*`: `mediaeval2015_accuracy`, each clip's prediction rounded to
      the nearest class (`nearest_class`);
    - cognimuse: `cognimuse_lofo` (MSE, PCC pooled over all held-out segments of all folds).

  Raises:
    DataError: a benchmark without an official protocol here, or bad prediction files.
  """
  known = (dataset in ("mediaeval2018", "cognimuse") or dataset == "liris_accede" and
           config.startswith(("discrete", "mediaeval2015", "mediaeval2016_global")))
  if not known:
    raise DataError(f"no official protocol for dataset {dataset!r} config {config!r}: known are "
                    "mediaeval2018 (any config), liris_accede (discrete*, mediaeval2015*, "
                    "mediaeval2016_global*) and cognimuse (any config).")
  if dataset == "cognimuse":
    dirs = [eval_dir] if isinstance(eval_dir, (str, os.PathLike)) else list(eval_dir)
    folds = {}
    for d in dirs:
      for film, per_dim in read_predictions(d).items():
        if film in folds:
          raise DataError(f"cognimuse: film {film!r} is held out in more than one of "
                          f"{[str(x) for x in dirs]}; give each leave-one-film-out fold's test "
                          "folder once.")
        folds[film] = per_dim
    return cognimuse_lofo(folds)
  films = read_predictions(eval_dir)
  if dataset == "mediaeval2018":
    return mediaeval2018(films)
  true, pred = _clip_values(films, f"liris_accede/{config} ({eval_dir})")
  if config.startswith("mediaeval2015"):
    return mediaeval2015_accuracy(true, {d: nearest_class(p) for d, p in pred.items()})
  return liris_discrete(true, pred)


# ---------------------------------------------------------------------------------------------
# Per-dataset protocols, looked up by dataset name.


@dataclasses.dataclass(frozen=True)
class Folds:
  """A leave-one-film-out scheme: the films, and split names of the dataset's builder.

  `module` holds `FILMS`, `film_split(code)`, `all_films_split(codes)` (a TFDS split expression),
  imported when used (the builder is not needed to read a protocol)."""
  module: str

  @property
  def _m(self):
    return importlib.import_module(self.module)

  @property
  def films(self) -> tuple[str, ...]:
    return tuple(self._m.FILMS)

  def film_split(self, code: str) -> str:
    return self._m.film_split(code)

  def all_films_split(self, codes: Sequence[str]) -> str:
    return self._m.all_films_split(list(codes))


@dataclasses.dataclass(frozen=True)
class Protocol:
  """What a benchmark adds to the common evaluation."""
  dataset: str
  title: str = ""                         # the benchmark's name in messages
  official_after_evaluation: bool = False  # write eval/test/official.json after evaluating
  folds: Folds | None = None              # leave-one-film-out folds (python -m emojax.folds)

  def official(self, config: str, eval_dir) -> dict:
    """The benchmark's official numbers from a finished run's evaluation files."""
    return official_numbers(self.dataset, config, eval_dir)

  def fold_scheme(self) -> Folds:
    """The leave-one-film-out folds, or a ConfigError naming the datasets that have some."""
    if self.folds is None:
      from emojax.errors import ConfigError  # pylint: disable=import-outside-toplevel
      have = sorted(k for k, v in PROTOCOLS.items() if v.folds is not None)
      raise ConfigError(f"dataset {self.dataset!r} (config.dataset.name) has no leave-one-film-out "
                        f"folds; folds exist for {have}")
    return self.folds


PROTOCOLS: dict[str, Protocol] = {
    "mediaeval2018": Protocol("mediaeval2018", "MediaEval 2018", official_after_evaluation=True),
    "liris_accede": Protocol("liris_accede", "LIRIS-ACCEDE"),
    "cognimuse": Protocol("cognimuse", "COGNIMUSE", folds=Folds("emojax.datasets.cognimuse")),
}


def get(dataset: str) -> Protocol:
  """The protocol of a dataset (by config.dataset.name); a plain one for other datasets."""
  return PROTOCOLS.get(dataset) or Protocol(dataset, dataset)
