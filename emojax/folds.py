r"""Leave-one-film-out cross-validation as one command, for datasets whose protocol has folds
(`emojax.protocols.get(config.dataset.name).folds`; COGNIMUSE: 12 folds).

  python -m emojax.folds --config=configs/attendaffectnet.py:cognimuse,arousal --workdir=runs/loo
  python -m emojax.folds ... --folds=BMI,CHI            # some folds only
  python -m emojax.folds ... --validation=test          # validate on the held-out film

Each fold is an ordinary training run (`emojax.train.train_and_evaluate`) in `<workdir>/fold_<CODE>`
on the dataset's per-film splits (named by its protocol's `Folds`): test = the held-out film,
validation = the film after it in the films' order (`--validation=next`, emojax's choice: the paper
does not say which data its early stopping watched) or the held-out film itself (`test`), train =
the others. A fold whose
`eval/test/metrics.json` exists is skipped; an unfinished one resumes (the run resumes itself).
Then `<workdir>/folds.md` and `folds.json`: per-fold MSE / PCC, pooled over every held-out segment
of every fold (the paper's numbers, "computed for all predicted values"), and mean +- std over
folds. Pooled numbers are computed here from the folds' written predictions
(eval/test/predictions/<film>.csv).
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys
from typing import Callable, Sequence

import ml_collections
import numpy as np

from emojax import errors, fileio, metrics, protocols

VALIDATION = ("next", "test", "none")


def fold_config(config: ml_collections.ConfigDict, code: str, films: Sequence[str],
                validation: str = "next") -> ml_collections.ConfigDict:
  """`config` with the splits of the fold that holds out film `code`."""
  scheme = protocols.get(config.dataset.name).fold_scheme()
  if code not in films:
    raise errors.ConfigError(f"unknown fold {code!r} (--folds); the folds are the films "
                             f"{', '.join(films)}")
  if validation not in VALIDATION:
    raise errors.ConfigError(f"--validation={validation!r}; use one of {VALIDATION}")
  test = scheme.film_split(code)
  val = ""
  rest = [c for c in films if c != code]
  if validation == "next":
    if len(films) < 3:
      raise errors.ConfigError(f"--validation=next needs >= 3 films (train, validation, test); "
                               f"there are {len(films)}")
    val_code = films[(list(films).index(code) + 1) % len(films)]
    rest = [c for c in rest if c != val_code]
    val = scheme.film_split(val_code)
  elif validation == "test":
    val = test
  c = ml_collections.ConfigDict(config.to_dict())
  c.dataset.splits.train = scheme.all_films_split(rest)
  c.dataset.splits.validation = val
  c.dataset.splits.test = test
  return c


def _read_predictions(path: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    raise errors.DataError(f"{path}: no rows")
  dims = [k[:-len("_true")] for k in rows[0] if k.endswith("_true")]
  return {d: (np.array([float(r[f"{d}_true"]) for r in rows]),
              np.array([float(r[f"{d}_pred"]) for r in rows])) for d in dims}


def fold_done(fold_dir: pathlib.Path) -> bool:
  return (fold_dir / "eval" / "test" / "metrics.json").exists()


def summarize(workdir: pathlib.Path, codes: Sequence[str]) -> dict:
  """Per-fold, pooled and mean +- std MSE / PCC of the finished folds among `codes`."""
  per_fold, pooled = {}, {}
  for code in codes:
    fold_dir = workdir / f"fold_{code}"
    m = fileio.read_json(fold_dir / "eval" / "test" / "metrics.json")
    if m is None:
      continue
    per_fold[code] = {d: {"mse": v["mse"], "pcc": v["pcc"], "num": v.get("num_seconds")}
                      for d, v in m.items() if isinstance(v, dict) and "mse" in v}
    for path in sorted((fold_dir / "eval" / "test" / "predictions").glob("*.csv")):
      for d, (t, p) in _read_predictions(path).items():
        pooled.setdefault(d, ([], []))
        pooled[d][0].append(t)
        pooled[d][1].append(p)
  out = {"folds": per_fold, "pooled": {}, "mean": {}, "std": {}}
  for d, (ts, ps) in pooled.items():
    r = metrics.regression_metrics(np.concatenate(ts), np.concatenate(ps), f"pooled / {d}")
    out["pooled"][d] = {"mse": r["mse"], "pcc": r["pcc"]}
    for k in ("mse", "pcc"):
      vals = np.array([f[d][k] for f in per_fold.values() if d in f and f[d][k] is not None],
                      float)
      out["mean"].setdefault(d, {})[k] = float(np.mean(vals)) if vals.size else None
      out["std"].setdefault(d, {})[k] = float(np.std(vals)) if vals.size else None
  return out


def _fmt(v) -> str:
  return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


def table(summary: dict) -> str:
  dims = list(summary["pooled"])
  head = "| fold | " + " | ".join(f"{d} MSE | {d} PCC" for d in dims) + " |"
  lines = ["# Leave-one-film-out", "", head, "|---|" + "---|---|" * len(dims)]
  for code, f in summary["folds"].items():
    lines.append(f"| {code} | " + " | ".join(
        f"{_fmt(f.get(d, {}).get('mse'))} | {_fmt(f.get(d, {}).get('pcc'))}" for d in dims) + " |")
  lines.append("| pooled | " + " | ".join(
      f"{_fmt(summary['pooled'][d]['mse'])} | {_fmt(summary['pooled'][d]['pcc'])}"
      for d in dims) + " |")
  lines.append("| mean +- std | " + " | ".join(
      f"{_fmt(summary['mean'][d]['mse'])} +- {_fmt(summary['std'][d]['mse'])} | "
      f"{_fmt(summary['mean'][d]['pcc'])} +- {_fmt(summary['std'][d]['pcc'])}"
      for d in dims) + " |")
  lines += ["", f"{len(summary['folds'])} folds; pooled = every held-out segment of every fold; "
            "std = population std over folds."]
  return "\n".join(lines) + "\n"


def run_folds(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
              folds: Sequence[str] | None = None, films: Sequence[str] | None = None,
              validation: str = "next", train_fn: Callable | None = None) -> dict:
  """Trains and evaluates every fold (skipping finished ones), then writes the summary.
  `films`: the dataset's films (default: those of its protocol's folds)."""
  workdir = pathlib.Path(workdir)
  films = tuple(films or protocols.get(config.dataset.name).fold_scheme().films)
  codes = tuple(folds) if folds else films
  configs = {code: fold_config(config, code, films, validation) for code in codes}  # checks first
  if train_fn is None:
    from emojax import train  # pylint: disable=g-import-not-at-top
    train_fn = train.train_and_evaluate
  for i, code in enumerate(codes):
    fold_dir = workdir / f"fold_{code}"
    if fold_done(fold_dir):
      print(f"fold {code} ({i + 1}/{len(codes)}): finished, skipped", flush=True)
      continue
    print(f"== fold {code} ({i + 1}/{len(codes)}) in {fold_dir}", flush=True)
    train_fn(configs[code], fold_dir)
  summary = summarize(workdir, codes)
  fileio.write_json(workdir / "folds.json", summary)
  fileio.atomic_write_text(workdir / "folds.md", table(summary))
  return summary


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m emojax.folds", description=__doc__.split("\n")[0])
  p.add_argument("--config", required=True, help="config file[:args], as main.py's --config")
  p.add_argument("--workdir", required=True)
  p.add_argument("--folds", default="", help="comma-separated film codes (default: every film)")
  p.add_argument("--films", default="", help="comma-separated films of the dataset (default: "
                 "those of its protocol, e.g. the 12 of COGNIMUSE)")
  p.add_argument("--validation", default="next", choices=VALIDATION)
  args = p.parse_args(argv)
  split = lambda s: [w.strip() for w in s.split(",") if w.strip()]
  try:
    config = load_config(args.config)
    summary = run_folds(config, args.workdir, folds=split(args.folds),
                        films=split(args.films) or None, validation=args.validation)
  except errors.EmojaxError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(table(summary))
  return 0


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`path/to/config.py[:arg]` -> the config (as main.py's --config, without overrides)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(":")
  file = pathlib.Path(path)
  if not file.exists():
    raise errors.ConfigError(f"config file {file} does not exist (--config)")
  module_spec = importlib.util.spec_from_file_location(f"_folds_config_{file.stem}", file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


if __name__ == "__main__":
  sys.exit(main())
