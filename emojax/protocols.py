"""The official numbers of each benchmark, computed from predictions with emojax.metrics.

Each protocol takes either one dimension or several:
  - one dimension: the documented pairs/arrays directly -> a dict of numbers;
  - several: the same with a {dim: ...} level inside (for `mediaeval2018`/`cognimuse_lofo`, inside
    each film/fold; for `mediaeval2015_accuracy`/`liris_discrete`, the two arguments are
    {dim: array} dicts) -> {dim: dict of numbers}, dims ordered valence, arousal, then others.
PCC follows emojax.metrics (nan when a series is constant).
"""

from collections.abc import Mapping

import numpy as np
from scipy import stats

from emojax import metrics, postprocess
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
