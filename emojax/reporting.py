"""Evaluation outputs (docs/design.md "Evaluation outputs"): metrics.json, per-film CSVs, plots.

Layout written by `write_eval_outputs(out_dir, films)`:
  out_dir/metrics.json                   `metrics.evaluate_films(films)`, NaN written as null
  out_dir/predictions/<name>.csv         second,<dim>_true,<dim>_pred for every dim of the film
  out_dir/plots/<name>.png               one panel per dim, true vs predicted
Per-clip classification: `write_clip_predictions(path, clip_ids, dims)` writes
`clip,<dim>_true,<dim>_pred,<dim>_p0..p{C-1}`. `write_clip_plots` draws per-clip results:
  out_dir/plots/confusion_<dim>.png      classification: the confusion matrix, classes by name
                                         (`class_names`: the dataset's, else low/medium/high)
  out_dir/plots/scatter_<dim>.png        regression: predicted against true, one point per clip
metrics.json is written last, so its presence means the whole evaluation was written. Files of
films no longer evaluated are left alone (nothing is deleted).

File names. <name> = `safe_filename(film_id)`: the film id itself when it only holds
[A-Za-z0-9._-], does not start with '.' and has at most 100 characters; otherwise every other
character becomes '_', leading dots are dropped, the result is cut to 100 characters, and
'-' + the first 8 hex digits of the id's SHA-1 are appended, so two ids that sanitise alike
('a/b', 'a b') still get different files. metrics.json keeps the original ids.

Numbers are written with the shortest text that reads back to the same value in the array's
dtype (float32 predictions stay short).
"""

import csv
import hashlib
import io
import os
import pathlib
import re
from collections.abc import Mapping

import numpy as np

from emojax import fileio, metrics, plots
from emojax.errors import DataError
from emojax.fileio import write_json  # Re-exported: the one strict-JSON writer.

__all__ = ["class_names", "safe_filename", "write_clip_plots", "write_clip_predictions",
           "write_eval_outputs", "write_json", "write_prediction_csv"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 100


def safe_filename(film_id) -> str:
  """A file-name stem for `film_id` (see the module docstring for the rule)."""
  key = metrics.film_key(film_id)
  stem = _UNSAFE.sub("_", key)
  if stem == key and key and not key.startswith(".") and len(key) <= _MAX_STEM:
    return key
  digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]
  stem = stem.lstrip(".")[:_MAX_STEM] or "film"
  return f"{stem}-{digest}"


def _column_text(x, name: str) -> np.ndarray:
  x = np.asarray(x).reshape(-1)
  if not np.issubdtype(x.dtype, np.floating):
    x = x.astype(np.float64)
  if not np.all(np.isfinite(x)):
    raise DataError(f"{name} holds NaN/Inf values; fix the predictions that produced them.")
  return x.astype(str)


def _seconds_text(seconds, num_rows: int, where: str) -> np.ndarray:
  sec = np.asarray(seconds).reshape(-1)
  if sec.size != num_rows:
    raise DataError(f"{where}: {sec.size} seconds for {num_rows} values per column.")
  if np.issubdtype(sec.dtype, np.floating) and np.all(sec == np.round(sec)):
    sec = sec.astype(np.int64)
  return sec.astype(str)


def _csv_text(header: list[str], columns: list[np.ndarray]) -> str:
  buf = io.StringIO()
  buf.write(",".join(header) + "\n")
  for row in zip(*columns):
    buf.write(",".join(row) + "\n")
  return buf.getvalue()


def write_prediction_csv(path: str | os.PathLike, seconds,
                         preds: Mapping[str, np.ndarray]) -> pathlib.Path:
  """Predict mode: writes `second,valence,arousal` (only the dims present), one row per second.

  Args:
    path: the CSV to write (atomically).
    seconds: (T,) the second of each row, or an int T for seconds 0..T-1.
    preds: dim -> pred_T.
  """
  if not preds:
    raise DataError(f"{path}: no predictions to write.")
  dims = metrics.ordered_dims(preds)
  cols = [_column_text(preds[d], f"{path}: {d} predictions") for d in dims]
  lengths = {d: c.size for d, c in zip(dims, cols)}
  if len(set(lengths.values())) != 1:
    raise DataError(f"{path}: the dims have different lengths {lengths}; give one value per "
                    "second for each.")
  num_rows = cols[0].size
  if isinstance(seconds, (int, np.integer)):
    seconds = np.arange(int(seconds))
  sec = _seconds_text(seconds, num_rows, str(path))
  return fileio.atomic_write_text(path, _csv_text(["second", *dims], [sec, *cols]))


def write_eval_outputs(out_dir: str | os.PathLike, films: Mapping[str, Mapping[str, tuple]],
                       plot: bool = True, baselines: Mapping[str, dict] | None = None) -> dict:
  """Writes metrics.json, predictions/<film>.csv and (if `plot`) plots/<film>.png.

  Args:
    out_dir: e.g. <workdir>/eval/<split>.
    films: film_id -> {dim: (true_T, pred_T)}, per-second values, second = 0..T-1.
    baselines: dim -> {baseline: metrics} (input_pipeline.score_baselines), written as each
      dim's `baselines` in metrics.json.

  Returns:
    The metrics written to metrics.json (`metrics.evaluate_films(films)`).
  """
  out_dir = pathlib.Path(out_dir)
  result = metrics.evaluate_films(films)  # Validates lengths and values first.
  names = {}
  for film_id in films:
    name = safe_filename(film_id)
    if name in names:
      raise DataError(f"films {names[name]!r} and {metrics.film_key(film_id)!r} map to the "
                      f"same file name {name!r}; rename one of them.")
    names[name] = metrics.film_key(film_id)
  for film_id, per_dim in films.items():
    key, name = metrics.film_key(film_id), safe_filename(film_id)
    dims = metrics.ordered_dims(per_dim)
    lengths = {d: np.asarray(per_dim[d][0]).size for d in dims}
    if len(set(lengths.values())) != 1:
      raise DataError(f"film {key!r}: its dims have different numbers of seconds {lengths}; "
                      "truncate them to the shortest.")
    num_seconds = next(iter(lengths.values()))
    header, cols = ["second"], [np.arange(num_seconds).astype(str)]
    for d in dims:
      header += [f"{d}_true", f"{d}_pred"]
      cols += [_column_text(per_dim[d][0], f"film {key!r} / {d} true"),
               _column_text(per_dim[d][1], f"film {key!r} / {d} pred")]
    fileio.atomic_write_text(out_dir / "predictions" / f"{name}.csv", _csv_text(header, cols))
    if plot:
      plots.plot_film(out_dir / "plots" / f"{name}.png", np.arange(num_seconds),
                      {d: per_dim[d] for d in dims}, title=key,
                      metrics={d: result[d]["per_film"][key] for d in dims})
  for d, b in (baselines or {}).items():
    if d in result:
      result[d]["baselines"] = b
  write_json(out_dir / "metrics.json", result)
  return result


def write_clip_predictions(path: str | os.PathLike, clip_ids,
                           dims: Mapping[str, tuple]) -> pathlib.Path:
  """Per-clip classification predictions: `clip,<dim>_true,<dim>_pred,<dim>_p0..p{C-1}`.

  One row per clip, dims in the order valence, arousal, then others. `true` may be None (predict
  mode: no `<dim>_true` column). Clip ids are written as given (CSV-quoted when they hold a comma
  or quote).

  Args:
    path: the CSV to write (atomically).
    clip_ids: (N,) ids (str or bytes).
    dims: dim -> (true_N classes or None, pred_N classes, probs_NxC).
  """
  ids = [c.decode("utf-8") if isinstance(c, bytes) else str(c)
         for c in np.asarray(clip_ids, dtype=object).reshape(-1)]
  if not dims:
    raise DataError(f"{path}: no dimensions to write.")
  n = len(ids)
  header, cols = ["clip"], [np.asarray(ids, dtype=object)]
  for d in metrics.ordered_dims(dims):
    true, pred, probs = dims[d]
    p_NxC = np.asarray(probs, dtype=np.float64)
    if p_NxC.ndim != 2 or p_NxC.shape[0] != n:
      raise DataError(f"{path}: {d} probabilities have shape {p_NxC.shape}; expected ({n}, "
                      "num_classes), one row per clip.")
    num_classes = p_NxC.shape[1]
    parts = [("pred", pred)] if true is None else [("true", true), ("pred", pred)]
    for name, classes in parts:
      c_N = np.asarray(classes).reshape(-1)
      if c_N.size != n:
        raise DataError(f"{path}: {d}_{name} has {c_N.size} values for {n} clips.")
      as_float = c_N.astype(np.float64)
      bad = ~np.isfinite(as_float) | (as_float != np.round(as_float)) | (as_float < 0) | (
          as_float >= num_classes)
      if bad.any():
        raise DataError(f"{path}: {d}_{name} holds {c_N.tolist()[np.flatnonzero(bad)[0]]!r}, not a class "
                        f"in 0..{num_classes - 1}.")
      header.append(f"{d}_{name}")
      cols.append(as_float.astype(np.int64).astype(str))
    for k in range(num_classes):
      header.append(f"{d}_p{k}")
      cols.append(_column_text(p_NxC[:, k], f"{path}: {d} probabilities"))
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(header)
  writer.writerows(zip(*cols))
  return fileio.atomic_write_text(path, buf.getvalue())


DEFAULT_CLASS_NAMES = {2: ("low", "high"), 3: ("low", "medium", "high")}


def class_names(metadata: Mapping | None, target: str, num_classes: int) -> list[str]:
  """The names of a target's classes: the dataset's (`metadata["class_names"][target]`), else
  low / medium / high (2 classes: low / high), else "class k"."""
  given = ((metadata or {}).get("class_names") or {}).get(target)
  if given is not None and len(given) == num_classes:
    return [str(n) for n in given]
  return list(DEFAULT_CLASS_NAMES.get(num_classes, [f"class {k}" for k in range(num_classes)]))


def write_clip_plots(plots_dir: str | os.PathLike, kind: str, target: str, true, pred,
                     result: Mapping, metadata: Mapping | None = None) -> pathlib.Path:
  """The plot of one target's per-clip results: a confusion matrix with the classes by name
  (classification; `result["confusion"]`), or predicted against true (regression)."""
  plots_dir = pathlib.Path(plots_dir)
  if kind == "classification":
    matrix = np.asarray(result["confusion"])
    return plots.plot_confusion(
        plots_dir / f"confusion_{target}.png", matrix,
        class_names(metadata, target, matrix.shape[0]),
        f"{target}: accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}")
  parts = [f"{lab} {result[k]:.3f}" for k, lab in (("pcc", "PCC"), ("ccc", "CCC"), ("mse", "MSE"))
           if isinstance(result.get(k), (int, float))]
  return plots.plot_scatter(plots_dir / f"scatter_{target}.png", true, pred,
                            f"{target}: " + ", ".join(parts), label=target)
