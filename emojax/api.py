"""A small Python API over a run's workdir, for notebooks.

  from emojax import api
  run = api.load_run("runs/films")
  run.config.method, run.config.targets          # the config it was trained with (config.json)
  run.splits                                     # the evaluated splits, e.g. ["test", "validation"]
  run.metrics("test")["arousal"]["pcc"]          # eval/test/metrics.json
  run.summary()                                  # {"test/arousal/pcc": ..., ...} (eval/summary.json)
  run.phases                                     # phases.json: every training phase's record
  run.predictions("test")                        # {film: {"second": array, "arousal_true": ...}}
  run.can_predict                                # trained on features extracted from films?
  run.predict_film("my_film.mp4")                # {"second": array, "valence": ..., "arousal": ...}

Everything reads the files the run wrote (docs/design.md, "Evaluation outputs"): nothing is
trained, and `metrics` of a split that was not evaluated says which command writes it.
`predict_film` runs predict mode (emojax/predict.py) on one film and returns its curve.
"""

from __future__ import annotations

import csv
import pathlib
import tempfile

import ml_collections
import numpy as np

from emojax import errors, fileio


def _read_csv_columns(path: pathlib.Path) -> dict[str, np.ndarray]:
  """A CSV of numbers as {column: array}; text columns (clip and film ids) stay strings."""
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  if not rows:
    raise errors.DataError(f"{path} is empty; rerun the evaluation that writes it")
  out = {}
  for j, name in enumerate(rows[0]):
    values = [r[j] for r in rows[1:]]
    try:
      out[name] = np.array([float(v) for v in values], np.float64)
    except ValueError:
      out[name] = np.array(values, dtype=object)
  return out


class Run:
  """A training workdir, read back: its config, phases, metrics, predictions and model."""

  def __init__(self, workdir: str | pathlib.Path):
    self.workdir = pathlib.Path(workdir).expanduser().absolute()
    path = self.workdir / "config.json"
    if not path.is_file():
      raise errors.ConfigError(f"{path} not found: {self.workdir} is not a training workdir "
                               "(train into it with python main.py --config=... --workdir=...)")
    self.config = ml_collections.ConfigDict(fileio.read_json(path))

  def __repr__(self) -> str:
    return f"Run({str(self.workdir)!r}, method={self.config.method!r}, splits={self.splits})"

  @property
  def phases(self) -> list[dict]:
    """The records of the finished training phases (phases.json), in order."""
    return fileio.read_json(self.workdir / "phases.json", [])

  @property
  def splits(self) -> list[str]:
    """The splits evaluated so far (those with eval/<split>/metrics.json)."""
    root = self.workdir / "eval"
    return sorted(p.name for p in root.iterdir() if (p / "metrics.json").is_file()) \
        if root.is_dir() else []

  def metrics(self, split: str = "test") -> dict:
    """eval/<split>/metrics.json: {target: {mse, pcc, ccc, ..., per_film / film_mean}}."""
    path = self.workdir / "eval" / split / "metrics.json"
    if not path.is_file():
      raise errors.ConfigError(
          f"{path} not found: split {split!r} of {self.workdir} was not evaluated (evaluated: "
          f"{', '.join(self.splits) or 'none'}); python main.py --mode=evaluate "
          f"--workdir={self.workdir} writes every split")
    return fileio.read_json(path)

  def summary(self) -> dict[str, float]:
    """eval/summary.json: every metric as a flat {split/target/metric: value} (what sweeps read)."""
    path = self.workdir / "eval" / "summary.json"
    if not path.is_file():
      raise errors.ConfigError(f"{path} not found: evaluate first (python main.py --mode=evaluate "
                               f"--workdir={self.workdir})")
    return fileio.read_json(path)

  def predictions(self, split: str = "test") -> dict[str, dict[str, np.ndarray]]:
    """The evaluated predictions of a split: per-second data {film: {column: array}} from
    eval/<split>/predictions/<film>.csv (columns second, <target>_true, <target>_pred); per-clip
    data {"clips": {column: array}} from eval/<split>/predictions.csv."""
    self.metrics(split)   # the split was evaluated (else the error says how)
    root = self.workdir / "eval" / split
    if (root / "predictions.csv").is_file():
      return {"clips": _read_csv_columns(root / "predictions.csv")}
    metrics = self.metrics(split)
    films = {f for m in metrics.values() if isinstance(m, dict) for f in m.get("per_film", {})}
    from emojax import reporting  # pylint: disable=g-import-not-at-top
    return {f: _read_csv_columns(root / "predictions" / f"{reporting.safe_filename(f)}.csv")
            for f in sorted(films)}

  @property
  def can_predict(self) -> bool:
    """Whether predict_film works: the final model records the features it was trained on."""
    from emojax import checkpoint  # pylint: disable=g-import-not-at-top
    if not (self.workdir / "final_model").is_dir():
      return False
    meta, _ = checkpoint.read_model_meta(self.workdir / "final_model")
    return bool(meta.get("feature_manifest"))

  def predict_film(self, path: str | pathlib.Path, *, allow_missing_audio: bool = False,
                   output: str | pathlib.Path | None = None) -> dict[str, np.ndarray]:
    """One film's predicted curve: {"second": array, <target>: array}. Its CSV and PNG go to
    `output` (default: a temporary folder, removed afterwards). Raises the predict mode's errors
    (e.g. a run trained on precomputed features cannot predict films; see `can_predict`)."""
    from emojax import predict  # pylint: disable=g-import-not-at-top
    film = pathlib.Path(path).expanduser()
    if not film.is_file():
      raise errors.DataError(f"{film} is not a video file; give the path of one film")
    with tempfile.TemporaryDirectory(prefix="emojax_predict_") as tmp:
      out = pathlib.Path(output) if output else pathlib.Path(tmp) / "out"
      written = predict.predict(self.config, self.workdir, str(film), str(out),
                                allow_missing_audio=allow_missing_audio)
      return _read_csv_columns(next(iter(written.values())))


def load_run(workdir: str | pathlib.Path) -> Run:
  """The run trained in `workdir` (see the module docstring)."""
  return Run(workdir)


__all__ = ["Run", "load_run"]
