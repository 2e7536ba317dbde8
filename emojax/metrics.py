"""Regression and classification metrics, pooled over films and per film (numpy, float64).

Every function takes array-likes of any float (or int) dtype, flattens them, computes in float64
and returns python floats. Inputs of different lengths, empty inputs and non-finite values (NaN,
Inf) raise `emojax.errors.DataError`: a NaN prediction is a bug upstream, never a metric value.

Undefined correlations. Pearson's r is undefined when either series is constant (zero variance) or
has fewer than 2 values: `pcc` returns `float('nan')` then (like `scipy.stats.pearsonr`).
Lin's CCC = 2 cov / (var_t + var_p + (mean_t - mean_p)^2) with population (1/N) moments stays
defined when only one series is constant (it is 0 then: a constant prediction does not concord),
and is `nan` only when its denominator is 0, i.e. both series are the same constant. A series
counts as constant when all its values are exactly equal; its deviations are then exactly 0, so
rounding in the mean cannot turn a constant into a spurious correlation.
`emojax.reporting.write_json` writes these NaNs as JSON `null`.

Range. Correlations are computed on series scaled by powers of two (exact), so any finite input
works, from about 1e-300 to 1e308 (PCC and CCC do not depend on the scale); a non-finite
intermediate result raises DataError instead of returning a wrong number.
"""

from collections.abc import Mapping

import numpy as np

from emojax.errors import DataError

# Dimensions in the order every output lists them; others follow in order of appearance.
DIM_ORDER = ("valence", "arousal")
REGRESSION_KEYS = ("mse", "rmse", "mae", "pcc", "ccc")


def _as_vector(x, name: str) -> np.ndarray:
  """Returns `x` as a finite float64 vector, or raises DataError naming `name`."""
  try:
    x_N = np.asarray(x, dtype=np.float64).reshape(-1)
  except (TypeError, ValueError) as e:
    raise DataError(f"{name}: cannot read as numbers ({e}).") from e
  if x_N.size == 0:
    raise DataError(f"{name} is empty: a metric needs at least one value.")
  bad = ~np.isfinite(x_N)
  if bad.any():
    first = int(np.flatnonzero(bad)[0])
    raise DataError(
        f"{name} holds {int(bad.sum())} non-finite value(s) (first at index {first}: "
        f"{x_N[first]}); fix the predictions or labels that produced them.")
  return x_N


def _pair(y_true, y_pred, where: str = "") -> tuple[np.ndarray, np.ndarray]:
  prefix = f"{where}: " if where else ""
  t_N = _as_vector(y_true, f"{prefix}y_true")
  p_N = _as_vector(y_pred, f"{prefix}y_pred")
  if t_N.shape != p_N.shape:
    raise DataError(
        f"{prefix}y_true has {t_N.size} values but y_pred has {p_N.size}; "
        "give one prediction per label (same length).")
  return t_N, p_N


def _centered(x_N: np.ndarray) -> np.ndarray:
  """Deviations from the mean; exactly zero for a constant series."""
  if x_N[0] == x_N[-1] and np.all(x_N == x_N[0]):
    return np.zeros_like(x_N)
  return x_N - x_N.mean()


def _pow2_scale(*xs: np.ndarray) -> float:
  """A power of two that brings the largest |value| of `xs` into [0.5, 1) (1.0 if all are 0).

  Multiplying by a power of two is exact (outside the subnormal range), so correlations computed
  on scaled series equal the unscaled ones bit for bit while sums of squares cannot overflow.
  """
  m = max(float(np.max(np.abs(x))) for x in xs)
  if m == 0.0:
    return 1.0
  return float(np.ldexp(1.0, -int(np.frexp(m)[1])))


def _finite(value: float, what: str) -> float:
  if not np.isfinite(value):
    raise DataError(f"{what} is not finite ({value}) although every input value is: the values "
                    "are too large or too small to correlate in float64; rescale them.")
  return value


def mse(y_true, y_pred) -> float:
  """Mean squared error."""
  t_N, p_N = _pair(y_true, y_pred)
  return float(np.mean((p_N - t_N) ** 2))


def rmse(y_true, y_pred) -> float:
  """Root mean squared error."""
  return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
  """Mean absolute error."""
  t_N, p_N = _pair(y_true, y_pred)
  return float(np.mean(np.abs(p_N - t_N)))


def _pcc(t_N: np.ndarray, p_N: np.ndarray) -> float:
  if t_N.size < 2:
    return float("nan")
  # Scaled twice by powers of two (exact): the values, so the mean cannot overflow, then the
  # deviations, so the sums of squares lie in [0.25, N] and their product cannot overflow
  # (values around 1e160 would overflow ss_t * ss_p; around 1e76 the product did).
  dt_N, dp_N = _centered(t_N * _pow2_scale(t_N)), _centered(p_N * _pow2_scale(p_N))
  if not (dt_N.any() and dp_N.any()):
    return float("nan")
  dt_N, dp_N = dt_N * _pow2_scale(dt_N), dp_N * _pow2_scale(dp_N)
  ss_t, ss_p = float(dt_N @ dt_N), float(dp_N @ dp_N)
  r = _finite(float(dt_N @ dp_N) / np.sqrt(ss_t * ss_p), "pcc")
  return float(np.clip(r, -1.0, 1.0))


def _ccc(t_N: np.ndarray, p_N: np.ndarray) -> float:
  # CCC is invariant to scaling both series by one factor: a common power of two keeps every
  # moment below overflow.
  scale = _pow2_scale(t_N, p_N)
  t_N, p_N = t_N * scale, p_N * scale
  dt_N, dp_N = _centered(t_N), _centered(p_N)
  n = t_N.size
  cov = float(dt_N @ dp_N) / n
  var_t, var_p = float(dt_N @ dt_N) / n, float(dp_N @ dp_N) / n
  mean_t = t_N[0] if not dt_N.any() else t_N.mean()
  mean_p = p_N[0] if not dp_N.any() else p_N.mean()
  denom = var_t + var_p + float(mean_t - mean_p) ** 2
  if denom == 0.0:
    return float("nan")
  return _finite(float(2.0 * cov / denom), "ccc")


def pcc(y_true, y_pred) -> float:
  """Pearson correlation; nan when either series is constant or has < 2 values."""
  return _pcc(*_pair(y_true, y_pred))


def ccc(y_true, y_pred) -> float:
  """Lin's concordance correlation (population moments); nan only when both are one constant."""
  return _ccc(*_pair(y_true, y_pred))


def accuracy(labels_true, labels_pred) -> float:
  """Share of positions where the labels are equal (global accuracy)."""
  t_N, p_N = _pair(labels_true, labels_pred)
  return float(np.mean(t_N == p_N))


def regression_metrics(y_true, y_pred, where: str = "") -> dict:
  """Returns {mse, rmse, mae, pcc, ccc} as python floats plus num_seconds (int).

  `where` (e.g. "film X / valence") prefixes error messages.
  """
  t_N, p_N = _pair(y_true, y_pred, where)
  err_N = p_N - t_N
  m = float(np.mean(err_N ** 2))
  return {
      "mse": m,
      "rmse": float(np.sqrt(m)),
      "mae": float(np.mean(np.abs(err_N))),
      "pcc": _pcc(t_N, p_N),
      "ccc": _ccc(t_N, p_N),
      "num_seconds": int(t_N.size),
  }


def film_key(film_id) -> str:
  """A film id as str (TFDS Text features come back as bytes: decoded as UTF-8)."""
  if isinstance(film_id, (bytes, bytearray, np.bytes_)):
    return bytes(film_id).decode("utf-8")
  return str(film_id)


def ordered_dims(dims) -> list[str]:
  """Dims in output order: valence, arousal, then the others in order of appearance."""
  dims = list(dict.fromkeys(dims))
  return [d for d in DIM_ORDER if d in dims] + [d for d in dims if d not in DIM_ORDER]


def evaluate_films(films: Mapping[str, Mapping[str, tuple]]) -> dict:
  """Metrics per dimension, pooled over all seconds of all films and per film.

  Args:
    films: film_id -> {dim: (true_T, pred_T)}. A film may lack a dim; it is then left out of
      that dim only. bytes film ids are decoded (UTF-8).

  Returns:
    {dim: {mse, rmse, mae, pcc, ccc, num_seconds, film_mean: {mse, ..., ccc},
    per_film: {film_id: {mse, ..., num_seconds}}}}, where film_mean is the mean over films of the
    per-film metric (films where it is undefined left out),
    dims ordered valence, arousal, then others; films in the given order. The pooled numbers
    concatenate every film's seconds (so a long film weighs more), as the benchmarks do.
  """
  if not films:
    raise DataError("evaluate_films: no films given; nothing to evaluate.")
  dims = ordered_dims(d for per_dim in films.values() for d in per_dim)
  if not dims:
    raise DataError("evaluate_films: the films hold no dimension (valence / arousal) to evaluate.")
  out = {}
  for dim in dims:
    per_film, trues, preds = {}, [], []
    for film_id, per_dim in films.items():
      if dim not in per_dim:
        continue
      pair = per_dim[dim]
      if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise DataError(f"film {film_key(film_id)!r} / {dim}: expected a (true_T, pred_T) pair, "
                        f"got {type(pair).__name__}.")
      key = film_key(film_id)
      where = f"film {key!r} / {dim}"
      if key in per_film:
        raise DataError(f"{where}: the film id appears twice (as str and bytes?).")
      t_T, p_T = _pair(pair[0], pair[1], where)
      per_film[key] = regression_metrics(t_T, p_T, where)
      trues.append(t_T)
      preds.append(p_T)
    pooled = regression_metrics(np.concatenate(trues), np.concatenate(preds), f"all films / {dim}")
    out[dim] = {**pooled, "film_mean": film_means(per_film, REGRESSION_KEYS),
                "per_film": per_film}
  return out


# ----------------------------------------------------------------------------------------------
# Pooled and mean-per-film metrics (what validation selects on and what reports show side by side).

REGRESSION_KEYS = ("mse", "rmse", "mae", "pcc", "ccc")


def film_means(per_film: Mapping[str, Mapping[str, float]], keys) -> dict:
  """The mean over films of each metric; films where it is undefined (NaN) are left out."""
  out = {}
  for k in keys:
    vals = np.array([float(m[k]) for m in per_film.values()], np.float64)
    finite = vals[np.isfinite(vals)]
    out[k] = float(finite.mean()) if finite.size else float("nan")
  return out


def film_metrics(true_by_film, pred_by_film, film_ids) -> dict:
  """Per-second regression metrics of a split: pooled over all seconds, and `film_<m>` = the mean
  over films of the per-film metric (between-film offsets do not inflate it)."""
  per_film = {film_key(f): regression_metrics(t, p, f"film {film_key(f)!r}")
              for f, t, p in zip(film_ids, true_by_film, pred_by_film)}
  pooled = regression_metrics(np.concatenate(list(true_by_film)),
                              np.concatenate(list(pred_by_film)))
  pooled.update({f"film_{k}": v for k, v in film_means(per_film, REGRESSION_KEYS).items()})
  return pooled


def confusion_matrix(labels_true, labels_pred, num_classes: int) -> np.ndarray:
  """(num_classes, num_classes) counts: rows true class, columns predicted class."""
  t_N, p_N = _pair(labels_true, labels_pred)
  t_N, p_N = t_N.astype(np.int64), p_N.astype(np.int64)
  for name, v in (("true", t_N), ("predicted", p_N)):
    if v.size and (v.min() < 0 or v.max() >= num_classes):
      raise DataError(f"{name} class labels outside 0..{num_classes - 1} "
                      f"(found {int(v.min())}..{int(v.max())})")
  return np.bincount(t_N * num_classes + p_N, minlength=num_classes ** 2).reshape(
      num_classes, num_classes)


def macro_f1(labels_true, labels_pred, num_classes: int) -> float:
  """Unweighted mean over classes of F1 (a class absent from both truth and prediction: F1 = 0
  is not counted; it is left out of the mean, as scikit-learn's zero_division handling for
  labels that never occur)."""
  cm = confusion_matrix(labels_true, labels_pred, num_classes).astype(np.float64)
  tp = np.diag(cm)
  support, predicted = cm.sum(1), cm.sum(0)
  present = (support + predicted) > 0
  f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1), 0.0)
  return float(f1[present].mean()) if present.any() else float("nan")


def classification_metrics(labels_true, probs_NxC) -> dict:
  """accuracy, macro_f1 and the confusion matrix (a list of rows) of class probabilities."""
  probs = np.asarray(probs_NxC, np.float64)
  if probs.ndim != 2:
    raise DataError(f"classification predictions must be (N, C) probabilities, got {probs.shape}")
  c = probs.shape[1]
  pred = probs.argmax(-1)
  return {"accuracy": accuracy(labels_true, pred), "macro_f1": macro_f1(labels_true, pred, c),
          "confusion": confusion_matrix(labels_true, pred, c).tolist(),
          "num_clips": int(pred.size)}


def clip_metrics(kind: str, true_N, pred, film_ids) -> dict:
  """Metrics of a per-clip split: pooled over clips and `film_<m>` = mean over films."""
  film_ids = np.asarray([film_key(f) for f in film_ids])
  true_N, pred = np.asarray(true_N), np.asarray(pred)
  fn = classification_metrics if kind == "classification" else regression_metrics
  pooled = fn(true_N, pred)
  per_film = {}
  for f in dict.fromkeys(film_ids):
    sel = film_ids == f
    per_film[f] = fn(true_N[sel], pred[sel])   # one clip: PCC is NaN, left out of the mean
  keys = ("accuracy", "macro_f1") if kind == "classification" else REGRESSION_KEYS
  pooled.update({f"film_{k}": v for k, v in film_means(per_film, keys).items()})
  return pooled
