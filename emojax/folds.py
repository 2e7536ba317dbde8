r"""Leave-one-film-out cross-validation as one command, for datasets whose protocol has folds
(`emojax.protocols.get(config.dataset.name).folds`; COGNIMUSE: 12 folds).

  python -m emojax.folds --config=configs/attendaffectnet.py:cognimuse,arousal --workdir=runs/loo
  python -m emojax.folds ... --folds=BMI,CHI            # some folds only
  python -m emojax.folds ... --validation=test          # validate on the held-out film
  python -m emojax.folds ... --config.dataset.manual_dir=/data/cognimuse   # any config override

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

import csv
import pathlib
import sys
from typing import Callable, Sequence

import ml_collections
import numpy as np

from emojax import cli, errors, fileio, metrics, protocols

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
  per_fold, pooled, base = {}, {}, {}
  for code in codes:
    fold_dir = workdir / f"fold_{code}"
    m = fileio.read_json(fold_dir / "eval" / "test" / "metrics.json")
    if m is None:
      continue
    per_fold[code] = {d: {"mse": v["mse"], "pcc": v["pcc"], "num": v.get("num_seconds")}
                      for d, v in m.items() if isinstance(v, dict) and "mse" in v}
    for d, v in m.items():   # each fold's constant baselines (from its own training films)
      for name, b in ((v.get("baselines") or {}) if isinstance(v, dict) else {}).items():
        base.setdefault(name, {}).setdefault(d, []).append(b.get("mse"))
    for path in sorted((fold_dir / "eval" / "test" / "predictions").glob("*.csv")):
      for d, (t, p) in _read_predictions(path).items():
        pooled.setdefault(d, ([], []))
        pooled[d][0].append(t)
        pooled[d][1].append(p)
  out = {"folds": per_fold, "pooled": {}, "mean": {}, "std": {},
         "baselines": {name: {d: {"mse": float(np.mean([v for v in vals if v is not None]))}
                              for d, vals in by_dim.items() if any(v is not None for v in vals)}
                       for name, by_dim in base.items()}}
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
  for name, by_dim in (summary.get("baselines") or {}).items():
    lines.append(f"| baseline: {name} (mean over folds) | " + " | ".join(
        f"{_fmt(by_dim.get(d, {}).get('mse'))} | n/a" for d in dims) + " |")
  lines += ["", f"{len(summary['folds'])} folds; pooled = every held-out segment of every fold; "
            "std = population std over folds. Baselines: a constant prediction from each fold's "
            "training labels (zero, the training mean), what the folds must beat; PCC of a "
            "constant: n/a."]
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


FLAG_HELP = {
    "config": "config file[:args], as main.py's --config; then --config.<key>=<value> overrides "
              "any key of it (e.g. --config.dataset.manual_dir=/data/cognimuse) and "
              "--config.method_args.<key>=<value> a method's own keys",
    "workdir": "the folds' root: each fold trains in <workdir>/fold_<CODE>; folds.md and "
               "folds.json are written there",
    "folds": "comma-separated film codes to run (default: every film), e.g. BMI,CHI",
    "films": "comma-separated films of the dataset, in order (default: those of its protocol, "
             "e.g. the 12 of COGNIMUSE); the validation film of a fold is the one after it in this "
             "order",
    "validation": "what a fold validates on (selects its best checkpoints): 'next' = the film "
                  "after the held-out one (default), 'test' = the held-out film itself (as the "
                  "paper may have), 'none' = no validation split (a seeded share of the training "
                  "films is held out instead)",
}


def _parse(argv: list[str]):
  """The flags of `python -m emojax.folds` (absl + ml_collections config flags, as main.py), with
  `--config.x.y=value` overrides. Returns (flag values, method_args overrides)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from emojax import own_method  # pylint: disable=g-import-not-at-top
  argv, method_args = own_method.split_args(argv)
  for arg in argv[1:]:
    if arg.startswith("--config="):
      file = pathlib.Path(arg[len("--config="):].partition(":")[0])
      if not file.is_file():
        raise errors.ConfigError(f"config file {file} does not exist (--config)")
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, FLAG_HELP["config"], flag_values=fv,
                                  lock_config=True, sys_argv=argv)
  flags.DEFINE_string("workdir", None, FLAG_HELP["workdir"], flag_values=fv)
  flags.DEFINE_string("folds", "", FLAG_HELP["folds"], flag_values=fv)
  flags.DEFINE_string("films", "", FLAG_HELP["films"], flag_values=fv)
  flags.DEFINE_enum("validation", "next", VALIDATION, FLAG_HELP["validation"], flag_values=fv)
  if any(a in ("-h", "--help", "-help", "--helpfull", "--helpshort") for a in argv[1:]):
    print(f"{__doc__}\nFlags:\n" + fv.get_help(include_special_flags=False))
    raise SystemExit(0)
  try:
    rest = fv(argv)
  except flags.Error as e:
    lines = [l for l in str(e).splitlines() if l.strip()]
    if any(l.startswith("Traceback") for l in lines):  # a config file raised: keep its message
      lines = [lines[0], lines[-1].strip()]
    raise errors.ConfigError(" ".join(lines) + " (python -m emojax.folds --help lists the flags)")
  except (AttributeError, KeyError, ValueError, TypeError) as e:
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    msg = (str(e).replace("\\'", "'").replace("\\n", " ").replace("\n", " ")
           .replace("' Did", " (did").strip("'\" "))
    raise errors.ConfigError(f"bad config override among {overrides}: {msg}") from None
  if len(rest) > 1:
    raise errors.ConfigError(f"unexpected arguments {rest[1:]} (python -m emojax.folds --help "
                             "lists the flags)")
  for name in ("config", "workdir"):
    if fv[name].value is None:
      raise errors.ConfigError(f"--{name} is required: {FLAG_HELP[name]}")
  return fv, method_args


def main(argv: Sequence[str] | None = None) -> int:
  argv = ["python -m emojax.folds", *(sys.argv[1:] if argv is None else argv)]
  split = lambda s: [w.strip() for w in s.split(",") if w.strip()]

  def work():
    fv, method_args = _parse(argv)
    cli.check_output_dir(fv.workdir, "--workdir")  # an existing file, a place one cannot write
    try:
      config = fv.config
      _ = config.method  # config_flags reports a broken config file on first attribute access
    except OSError as e:
      raise errors.ConfigError(" ".join(str(e).split()) + " (--config)") from None
    from emojax import own_method  # pylint: disable=g-import-not-at-top
    config = own_method.apply(config, method_args)
    summary = run_folds(config, fv.workdir, folds=split(fv.folds),
                        films=split(fv.films) or None, validation=fv.validation)
    print(table(summary))
  return cli.run(work)


if __name__ == "__main__":
  sys.exit(main())
