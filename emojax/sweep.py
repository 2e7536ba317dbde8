"""Sweeps over config fields: grid, random and seed axes; finished trials are skipped on re-runs.

Declared in the config (all optional but `metric` for `run_sweep`):

  config.sweep.grid = (("optim.learning_rate", (1e-3, 3e-4)),
                       ("per_target.valence.model.num_clips", (3, 4, 5, 6)))
  config.sweep.random = (("optim.learning_rate", "loguniform", 1e-4, 1e-2),   # also "uniform"
                         ("model.hidden", "choice", (64, 128)),     # and "randint", lo, hi
                        )                                           # (inclusive)
  config.sweep.num_random = 4          # random draws
  config.sweep.seeds = (0, 1, 2)       # seed axis: sets config.seed; () = config.seed only
  config.sweep.metric = "validation/valence/pcc"
  config.sweep.mode = "max"            # or "min"

Settings = every grid point x every random draw (the `num_random` draws are shared by all grid
points, so grid values are compared on the same draws). Draws come from
`np.random.default_rng(config.seed)`, so they are deterministic; sampled floats are rounded to 4
significant digits so that the trial name states the value exactly. Duplicate settings (a
"choice" axis drawn twice alike) are run once. Trials run seed-major: every setting with the
first seed, then every setting with the next seed, so an interrupted sweep covers all settings
early.

Trial names are `<axis>=<value>,...,seed=<seed>`; an axis is named by the last part of its path
(the full path when two axes share it); values are written short (floats with 6 significant
digits, sequences joined by '_'), and characters outside [A-Za-z0-9._+=,-] become '_'.

On disk, under `<workdir>/sweep/`:
  trials/<name>/                the trial's own workdir (what `run_trial` writes)
  trials/<name>/trial_done.json {name, setting, seed, overrides, metrics, seconds}: the trial is
                                finished; a re-run skips it
  results.csv                   one row per finished trial: name, setting, seed, overrides (JSON),
                                then every metric (the sweep metric first)
  results.md                    one row per setting, best first by the sweep metric (undefined,
                                NaN, values sort last): mean and sample std (ddof=1) over seeds of
                                the sweep metric and of `config.sweep.columns` (default: a few of
                                the same split, `default_columns`); then, apart, the same columns on
                                the test split (reported, never used to rank); every other metric
                                is in results.csv only. Under each table, `baseline:` rows: the
                                trials' constant baselines (`<split>/<target>/baseline_<name>_<m>`
                                metrics: zero / training mean, or the majority class) in the
                                same columns; a setting's mean no better than the best of them is
                                marked ✗

Each trial evaluates as a run does, its plots included; `config.eval.plots = False` (e.g.
`--config.eval.plots=False`) leaves them out of every trial when only the tables are read: the same
metrics, ~0.1 s of CPU less per plotted film and no matplotlib import.
"""

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import pathlib
import re
import time
from collections.abc import Callable, Mapping

import ml_collections
import numpy as np

from emojax import fileio
from emojax.errors import ConfigError, DataError

RANDOM_KINDS = ("loguniform", "uniform", "choice", "randint")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]")
_MAX_NAME = 150


@dataclasses.dataclass(frozen=True)
class Trial:
  """One run of the sweep."""
  name: str  # Unique, filesystem-safe: "lr=0.001,num_clips=4,seed=0".
  setting: str  # The name without the seed ("lr=0.001,num_clips=4"; "default" with no axes).
  seed: int
  overrides: dict  # Dotted config path -> value, including "seed".


def _fmt_value(v) -> str:
  if isinstance(v, bool) or v is None:
    return str(v)
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  if isinstance(v, (float, np.floating)):
    return format(float(v), ".6g")
  if isinstance(v, (tuple, list)):
    return "_".join(_fmt_value(x) for x in v)
  return str(v)


def _safe(text: str) -> str:
  text = _UNSAFE.sub("_", text)
  if len(text) > _MAX_NAME:
    text = text[:_MAX_NAME - 9] + "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
  return text


def _python(v):
  """numpy scalars -> python scalars (ConfigDict type checks want python types)."""
  if isinstance(v, np.generic):
    return v.item()
  if isinstance(v, list):
    return tuple(_python(x) for x in v)
  if isinstance(v, tuple):
    return tuple(_python(x) for x in v)
  return v


def _sweep_block(config):
  sweep = config.get("sweep") if hasattr(config, "get") else None
  if sweep is None:
    raise ConfigError("config has no `sweep` block: add config.sweep with grid / random / seeds "
                      "/ metric (see emojax/sweep.py).")
  return sweep


def _grid_axes(sweep) -> list[tuple[str, tuple]]:
  axes = []
  for i, entry in enumerate(sweep.get("grid", None) or ()):
    if (not isinstance(entry, (tuple, list)) or len(entry) != 2 or not isinstance(entry[0], str)
        or not isinstance(entry[1], (tuple, list)) or not entry[1]):
      raise ConfigError(f"config.sweep.grid[{i}] = {entry!r}: expected (\"dotted.path\", "
                        "(value, ...)) with at least one value.")
    axes.append((entry[0], tuple(_python(v) for v in entry[1])))
  return axes


def _valid_random_axis(entry) -> bool:
  if not (isinstance(entry, (tuple, list)) and len(entry) >= 3 and isinstance(entry[0], str)):
    return False
  kind = entry[1]
  if kind == "choice":
    return len(entry) == 3 and isinstance(entry[2], (tuple, list)) and len(entry[2]) > 0
  if kind not in ("loguniform", "uniform", "randint") or len(entry) != 4:
    return False
  lo, hi = entry[2], entry[3]
  if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (lo, hi)):
    return False
  if kind == "randint":
    return int(lo) == lo and int(hi) == hi and lo <= hi
  return lo < hi and (kind != "loguniform" or lo > 0)


def _random_axes(sweep) -> list[tuple]:
  axes = []
  for i, entry in enumerate(sweep.get("random", None) or ()):
    if not _valid_random_axis(entry):
      raise ConfigError(
          f"config.sweep.random[{i}] = {entry!r}: expected (path, \"loguniform\", lo > 0, hi), "
          "(path, \"uniform\", lo, hi), (path, \"randint\", lo, hi) with lo < hi (<= for randint) "
          "or (path, \"choice\", (value, ...)).")
    axes.append(tuple(entry))
  return axes


def _draw(axis, rng: np.random.Generator):
  kind = axis[1]
  if kind == "loguniform":
    return float(f"{math.exp(rng.uniform(math.log(axis[2]), math.log(axis[3]))):.4g}")
  if kind == "uniform":
    return float(f"{rng.uniform(axis[2], axis[3]):.4g}")
  if kind == "randint":
    return int(rng.integers(int(axis[2]), int(axis[3]) + 1))
  values = axis[2]
  return _python(values[int(rng.integers(len(values)))])


def _short_names(paths: list[str]) -> dict[str, str]:
  last = [p.split(".")[-1] for p in paths]
  return {p: (l if last.count(l) == 1 else p) for p, l in zip(paths, last)}


def expand_trials(config) -> list[Trial]:
  """All trials of `config.sweep`, seed-major; every override is checked against the config."""
  sweep = _sweep_block(config)
  grid = _grid_axes(sweep)
  rand = _random_axes(sweep)
  paths = [p for p, _ in grid] + [a[0] for a in rand]
  dup = sorted({p for p in paths if paths.count(p) > 1})
  if dup:
    raise ConfigError(f"config.sweep: the axes {dup} are declared twice (grid and random?); "
                      "keep one.")
  if "seed" in paths:
    raise ConfigError("config.sweep: sweep seeds with config.sweep.seeds, not a grid/random axis.")
  num_random = int(sweep.get("num_random", 0) or 0)
  draws = [{}]
  if rand:
    if num_random < 1:
      raise ConfigError("config.sweep.random is set but config.sweep.num_random is "
                        f"{num_random}; set it to the number of random draws (>= 1).")
    rng = np.random.default_rng(int(config.seed))
    draws = [{a[0]: _draw(a, rng) for a in rand} for _ in range(num_random)]
  seeds = tuple(int(s) for s in (sweep.get("seeds", None) or (config.seed,)))
  if len(set(seeds)) != len(seeds):
    raise ConfigError(f"config.sweep.seeds = {seeds} repeats a seed.")
  short = _short_names(paths)

  settings, seen = [], set()
  for values in itertools.product(*[vals for _, vals in grid]):
    for draw in draws:
      overrides = {**dict(zip([p for p, _ in grid], values)), **draw}
      key = json.dumps(fileio.to_jsonable(overrides))
      if key in seen:
        continue
      seen.add(key)
      label = ",".join(f"{short[p]}={_fmt_value(v)}" for p, v in overrides.items())
      settings.append((label or "default", overrides))

  trials, names = [], {}
  for seed in seeds:
    for label, overrides in settings:
      raw = f"seed={seed}" if label == "default" else f"{label},seed={seed}"
      name = _safe(raw)
      setting = _safe(label)
      if name in names:
        raise ConfigError(
            f"config.sweep: settings {names[name]} and {overrides} get the same trial name "
            f"{name!r} (values equal to 6 digits?); make the values differ more.")
      names[name] = overrides
      trial = Trial(name=name, setting=setting, seed=seed, overrides={**overrides, "seed": seed})
      apply_overrides(config, trial.overrides)  # Fails now, naming the field, not mid-sweep.
      trials.append(trial)
  return trials


def apply_overrides(config, overrides: Mapping[str, object]):
  """Returns a copy of `config` with each dotted path set to its value (config is unchanged).

  Raises ConfigError naming the path when a field does not exist or the value's type does not fit.
  """
  frozen = isinstance(config, ml_collections.FrozenConfigDict)
  new = ml_collections.ConfigDict(config) if frozen else config.copy_and_resolve_references()
  for path, value in overrides.items():
    parts = path.split(".")
    node = new
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:depth]) or "config"
        known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        raise ConfigError(f"sweep override {path!r}: {where} has no field {part!r}"
                          + (f" (fields: {', '.join(known)})." if known else ".")
                          + " Fix the path in config.sweep.")
      if depth < len(parts) - 1:
        node = node[part]
    try:
      node[parts[-1]] = _python(value)
    except (TypeError, ValueError, AttributeError) as e:
      raise ConfigError(f"sweep override {path!r} = {value!r} does not fit the field: {e}") from e
  return ml_collections.FrozenConfigDict(new) if frozen else new


def _read_done(trial_dir: pathlib.Path, trial: Trial) -> dict | None:
  path = trial_dir / "trial_done.json"
  if not path.exists():
    return None
  try:
    record = json.loads(path.read_text())
    metrics = {k: math.nan if v is None else float(v) for k, v in record["metrics"].items()}
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise DataError(f"{path} is unreadable ({e}); delete it to run the trial again.") from e
  if record.get("overrides") != fileio.to_jsonable(trial.overrides):
    raise ConfigError(
        f"{path} records overrides {record.get('overrides')} but this sweep's trial "
        f"{trial.name!r} has {fileio.to_jsonable(trial.overrides)}; use a fresh workdir or "
        "delete that trial folder.")
  return {**record, "metrics": metrics}


def _check_metrics(result, trial: Trial) -> dict[str, float]:
  if not isinstance(result, Mapping):
    raise DataError(f"trial {trial.name}: run_trial returned {type(result).__name__}, "
                    "expected a flat dict of metric name -> number.")
  metrics = {}
  for k, v in result.items():
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
      raise DataError(f"trial {trial.name}: metric {k!r} = {v!r} is not a number; run_trial "
                      "must return a flat dict of metric name -> number.")
    metrics[str(k)] = float(v)
  return metrics


def _fmt_metric(v: float) -> str:
  if not math.isfinite(v):
    return "nan"
  return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4f}"


# The trivial baselines' flat keys (emojax/evaluate.py baseline_flat):
# `<split>/<target>/baseline_<name>_<metric>`.
_BASELINE_KEY = re.compile(r"^[^/]+/[^/]+/baseline_(.+)_(mse|ccc|accuracy|macro_f1)$")
_BASELINE_ORDER = ("zero", "train_mean", "majority")


def _baseline_order(name: str):
  return (_BASELINE_ORDER.index(name) if name in _BASELINE_ORDER else len(_BASELINE_ORDER), name)


def _metric_columns(records: list[dict], metric: str) -> list[str]:
  keys = sorted({k for r in records for k in r["metrics"]})
  return [metric] + [k for k in keys if k != metric] if metric in keys else keys


MAX_DEFAULT_COLUMNS = 4


def default_columns(metric: str, keys) -> list[str]:
  """The columns shown beside the sweep metric when `config.sweep.columns` is empty, on the sweep
  metric's split: for its target, the per-film mean (`film_<name>`, or the pooled one for a
  `film_` metric) and `mse` (regression) / `accuracy` (classification); for every other target,
  the same metric. At most MAX_DEFAULT_COLUMNS."""
  parts = metric.split("/")
  if len(parts) != 3:
    return []
  split, target, name = parts
  base = name[len("film_"):] if name.startswith("film_") else name
  names = [name, "film_" + base if name == base else base, "mse", "accuracy"]
  targets = [target] + sorted({k.split("/")[1] for k in keys if k.count("/") == 2
                               and k.startswith(split + "/")} - {target})
  out = []
  for t in targets:
    for n in (names if t == target else [name]):
      key = f"{split}/{t}/{n}"
      if key in keys and key != metric and key not in out:
        out.append(key)
  return out[:MAX_DEFAULT_COLUMNS]


def _test_key(key: str) -> str | None:
  """The test-split counterpart of a validation metric's key (None when it is not one)."""
  return "test/" + key[len("validation/"):] if key.startswith("validation/") else None


def _shown_columns(records: list[dict], metric: str, columns) -> tuple[list[str], list[str]]:
  """(the selection table's columns, the test table's columns) of results.md."""
  keys = {k for r in records for k in r["metrics"]}
  chosen = [c for c in (columns or default_columns(metric, keys)) if c != metric]
  selection = [metric] + [c for c in chosen if not c.startswith("test/")]
  test = [t for t in (_test_key(c) for c in selection) if t and t in keys]
  test += [c for c in chosen if c.startswith("test/") and c not in test]
  return selection, test


def _write_results(sweep_dir: pathlib.Path, records: list[dict], metric: str, mode: str,
                   columns=()):
  all_columns = _metric_columns(records, metric)
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(["name", "setting", "seed", "overrides", *all_columns])
  for r in records:
    writer.writerow([r["name"], r["setting"], r["seed"], json.dumps(r["overrides"]),
                     *[repr(r["metrics"].get(c, math.nan)) for c in all_columns]])
  fileio.atomic_write_text(sweep_dir / "results.csv", buf.getvalue())

  selection, test = _shown_columns(records, metric, columns)
  groups: dict[str, list[dict]] = {}
  for r in records:
    groups.setdefault(r["setting"], []).append(r)
  rows = []
  for setting, rs in groups.items():
    stats = {}
    for c in selection + test:
      vals = np.array([r["metrics"].get(c, math.nan) for r in rs], dtype=np.float64)
      stats[c] = (float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else math.nan)
    rows.append((setting, sorted(r["seed"] for r in rs), stats))

  def sort_key(row):
    v = row[2].get(metric, (math.nan,))[0]
    return (0, -v if mode == "max" else v) if math.isfinite(v) else (1, 0.0)

  rows.sort(key=sort_key)
  baselines = sorted({m.group(1) for r in records for k in r["metrics"]
                      if (m := _BASELINE_KEY.match(k))}, key=_baseline_order)

  def baseline_value(c: str, name: str) -> float | None:
    """A constant baseline's value in column `c` (the mean over trials: trials on other data
    can differ); None when it has none there."""
    split, _, rest = c.partition("/")
    target, _, metric = rest.partition("/")
    key = f"{split}/{target}/baseline_{name}_{metric}"
    vals = np.array([r["metrics"][key] for r in records if key in r["metrics"]], np.float64)
    return float(vals.mean()) if vals.size else None

  def baseline_cell(c: str, name: str) -> str:
    v = baseline_value(c, name)   # PCC of a constant is undefined (n/a)
    if v is not None:
      return _fmt_metric(v)
    return "n/a" if "pcc" in c.rpartition("/")[2] and c.count("/") == 2 else ""

  def beaten(c: str, mean: float) -> bool:
    """Whether a setting's mean in column `c` beats every constant baseline there (lower MSE,
    higher CCC / accuracy / macro-F1); True where no baseline has a value."""
    vals = [v for v in (baseline_value(c, b) for b in baselines) if v is not None and
            math.isfinite(v)]
    if not vals or not math.isfinite(mean):
      return True
    return mean < min(vals) if c.endswith("/mse") else mean > max(vals)

  def table(cols: list[str]) -> list[str]:
    lines = ["| rank | setting | seeds | " + " | ".join(f"`{c}`" for c in cols) + " |",
             "|---:|---|---|" + "---|" * len(cols)]
    for rank, (setting, seeds, stats) in enumerate(rows, 1):
      cells = []
      for c in cols:
        mean, std = stats[c]
        cells.append(_fmt_metric(mean) + (f" ± {_fmt_metric(std)}" if len(seeds) > 1 else "")
                     + ("" if beaten(c, mean) else " ✗"))
      lines.append(f"| {rank} | {setting} | {','.join(map(str, seeds))} | " + " | ".join(cells)
                   + " |")
    for name in baselines:   # the constant baselines beside the settings (not ranked)
      lines.append(f"| – | baseline: {name} | – | "
                   + " | ".join(baseline_cell(c, name) for c in cols) + " |")
    return lines

  rest = len(all_columns) - len(selection) - len(test)
  lines = [
      "# Sweep results",
      "",
      f"Settings sorted by the mean of `{metric}` over seeds ({mode} first); "
      "`mean ± std` over seeds (sample std, ddof=1); nan = undefined in some seed. Columns: "
      "`config.sweep.columns` (default: a few of the sweep metric's split). `baseline:` rows: "
      "a constant prediction from the training labels (zero / the training mean per target, or "
      "the majority class), what every setting must beat (✗: a mean no better than the best "
      "constant in that column); PCC of a constant: n/a.",
      "",
      *table(selection),
  ]
  if test:
    lines += ["", "## Test split (reported only: the ranking above never looks at it)", "",
              *table(test)]
  lines += ["", f"{rest} more metric{'s' if rest != 1 else ''} of every trial: results.csv."]
  fileio.atomic_write_text(sweep_dir / "results.md", "\n".join(lines) + "\n")


def run_sweep(config, workdir, run_trial: Callable[[ml_collections.ConfigDict, pathlib.Path],
                                                    Mapping[str, float]]) -> list[dict]:
  """Runs every unfinished trial of `config.sweep` and writes results.csv / results.md.

  Args:
    config: the base config with a `sweep` block.
    workdir: the sweep's root; trial k runs in <workdir>/sweep/trials/<name>/.
    run_trial: (trial_config, trial_dir) -> flat metrics dict, e.g.
      {"validation/valence/pcc": 0.41, "test/valence/pcc": 0.39}; it trains and evaluates.

  Returns:
    One record per trial in trial order: {name, setting, seed, overrides, metrics, seconds}.
    If a trial raises, the results of the finished trials are written before the error goes on.
  """
  sweep = _sweep_block(config)
  metric = sweep.get("metric", None)
  mode = sweep.get("mode", None) or "max"
  if not metric:
    raise ConfigError("config.sweep.metric is not set: name the metric to rank settings by, "
                      "e.g. 'validation/valence/pcc'.")
  if mode not in ("max", "min"):
    raise ConfigError(f"config.sweep.mode = {mode!r}: use 'max' or 'min'.")
  columns = tuple(sweep.get("columns", None) or ())
  if any(not isinstance(c, str) for c in columns):
    raise ConfigError(f"config.sweep.columns = {columns!r}: give metric names, e.g. "
                      "('validation/valence/ccc', 'validation/arousal/pcc')")
  trials = expand_trials(config)
  sweep_dir = pathlib.Path(workdir) / "sweep"
  records = []
  num_done = 0
  try:
    for k, trial in enumerate(trials, 1):
      trial_dir = sweep_dir / "trials" / trial.name
      record = _read_done(trial_dir, trial)
      if record is not None:
        print(f"[sweep] trial {k}/{len(trials)} {trial.name}: finished before, skipped",
              flush=True)
      else:
        print(f"[sweep] trial {k}/{len(trials)} {trial.name}: running", flush=True)
        trial_dir.mkdir(parents=True, exist_ok=True)
        start = time.time()
        result = run_trial(apply_overrides(config, trial.overrides), trial_dir)
        record = {"name": trial.name, "setting": trial.setting, "seed": trial.seed,
                  "overrides": fileio.to_jsonable(trial.overrides),
                  "metrics": _check_metrics(result, trial),
                  "seconds": round(time.time() - start, 3)}
        fileio.write_json(trial_dir / "trial_done.json", record)
        num_done += 1
        print(f"[sweep] trial {k}/{len(trials)} {trial.name}: {metric} = "
              f"{record['metrics'].get(metric, math.nan):.4g} ({record['seconds']:.0f} s)",
              flush=True)
      if metric not in record["metrics"]:
        raise ConfigError(f"config.sweep.metric {metric!r} is not among the metrics of trial "
                          f"{trial.name}: {sorted(record['metrics'])}; fix config.sweep.metric.")
      unknown = [c for c in columns if c not in record["metrics"]]
      if unknown:
        raise ConfigError(f"config.sweep.columns {unknown} are not among the metrics of trial "
                          f"{trial.name} (e.g. {', '.join(sorted(record['metrics'])[:6])}; all in "
                          "results.csv); fix config.sweep.columns.")
      records.append(record)
  finally:
    if records:
      _write_results(sweep_dir, records, metric, mode,
                     [c for c in columns if all(c in r["metrics"] for r in records)])
  print(f"[sweep] {len(trials)} trials ({num_done} run now, {len(trials) - num_done} before); "
        f"results in {sweep_dir / 'results.md'}", flush=True)
  return records
