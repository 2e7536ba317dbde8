r"""Regenerates docs/results.md from runs: every method on the embedded benchmarks, over seeds.

  python -m benchmarks.results                      # all rows, 3 seeds, paper-size configs
  python -m benchmarks.results --profile=runlocal   # the shrunken configs (minutes; a smoke check),
                                                    # written under <data dir>/results/runlocal/
  python -m benchmarks.results --rows=seed000,ridge --seeds=0,1,2
  python -m benchmarks.results --report_only        # rewrite the docs from the runs that exist

Each row is a config run as a sweep over `config.sweep.seeds` (emojax/sweep.py: one folder per
seed under `runs/results/<profile>/<row>/sweep/trials/seed=<k>/`), so finished seeds are skipped and
an interrupted run resumes where it stopped (the harness resumes a killed training from its last
checkpoint). The full set takes hours on 2 CPU cores: rerun the same command until it is complete;
rows not run yet are listed as such in the docs, never filled in by hand.

Reported per row and target, on the test split: pooled PCC / MSE (over all seconds or clips of the
split) and the mean over films of the per-film PCC (between-film offsets do not inflate it), each as
mean +- sample std over seeds, and a 95% bootstrap interval over test films of the seed-averaged
mean per-film PCC (2,000 resamples of the films) where the split has at least
MIN_FILMS_FOR_INTERVAL (5) test films (fewer films give too few distinct resamples for an
interval: the table says so instead). Classification rows report accuracy and macro-F1.

Progress: each row prints "row k/n" and an ETA, from the mean time per seed trained so far times
the seeds still to train (rows differ in cost: a rough guide).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

from emojax import cli, errors

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Row:
  key: str                      # --rows name and folder
  label: str                    # what the table calls it
  config: str                   # configs/<file>.py[:args] (":runlocal" is added by the profile)
  table: str = "regression"     # which table: "regression" (synthetic_benchmark) / "clips"
  overrides: tuple = ()         # ((dotted key, value), ...)


ROWS = (
    Row("seed000", "seed 000: two-time-scale bi-LSTMs, progressive (the default job)",
        "configs/two_timescale.py"),
    Row("seed000_m1", "seed 000 M1: joint feature-level fusion", "configs/two_timescale_m1.py"),
    Row("seed000_m2", "seed 000 M2: decision-level fusion", "configs/two_timescale_m2.py"),
    Row("ridge", "ridge regression per second, same features", "configs/ridge.py"),
    Row("seed001", "seed 001: GRU + context gating + MoE, Butterworth", "configs/gru_moe.py"),
    Row("aan_feature", "seed 003: Feature AttendAffectNet", "configs/attendaffectnet.py:feature"),
    Row("aan_temporal", "seed 003: Temporal AttendAffectNet", "configs/attendaffectnet.py:temporal"),
    Row("aan_feature_temporal", "seed 003: Feature + Temporal AttendAffectNet",
        "configs/attendaffectnet.py:feature_temporal"),
    Row("seed002_arousal", "seed 002: modal fusion + LSTM (arousal)",
        "configs/fusion_lstm.py:arousal", table="clips"),
    Row("seed002_valence", "seed 002: modal fusion + LSTM (valence)",
        "configs/fusion_lstm.py:valence", table="clips"),
    Row("seed002_early", "seed 002 baseline: early fusion (arousal)",
        "configs/fusion_lstm.py:arousal,early", table="clips"),
    Row("seed002_late", "seed 002 baseline: late fusion, a = 0.56 (arousal)",
        "configs/fusion_lstm.py:arousal,late", table="clips"),
    Row("seed002_visual", "seed 002 baseline: visual only (arousal)",
        "configs/fusion_lstm.py:arousal,visual", table="clips"),
    Row("seed002_audio", "seed 002 baseline: audio only (arousal)",
        "configs/fusion_lstm.py:arousal,audio", table="clips"),
    Row("seed004_c3d", "seed 004: C3D (valence)", "configs/video_convnets.py:c3d,valence",
        table="clip_regression"),
    Row("seed004_r2plus1d", "seed 004: R(2+1)D-18 (valence)",
        "configs/video_convnets.py:r2plus1d,valence", table="clip_regression"),
    Row("seed004_tsn", "seed 004: TSN (valence)", "configs/video_convnets.py:tsn,valence",
        table="clip_regression"),
    Row("seed004_eco_lite", "seed 004: ECO Lite (valence)",
        "configs/video_convnets.py:eco_lite,valence", table="clip_regression"),
    Row("seed004_eco_full", "seed 004: ECO Full (valence)",
        "configs/video_convnets.py:eco_full,valence", table="clip_regression"),
)
SEEDS = (0, 1, 2)
MIN_FILMS_FOR_INTERVAL = 5   # fewer test films: no bootstrap interval (3 films: 10 resamples)


def _with_profile(config_arg: str, profile: str) -> str:
  if profile != "runlocal":
    return config_arg
  path, _, args = config_arg.partition(":")
  return f"{path}:{args + ',' if args else ''}runlocal"


def load_config(row: Row, profile: str, seeds):
  """The row's config with a seed-only sweep (the sweep's seed axis is the one way to run seeds)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  from emojax import sweep  # pylint: disable=import-outside-toplevel
  path, _, arg = _with_profile(row.config, profile).partition(":")
  spec = importlib.util.spec_from_file_location(f"results_cfg_{row.key}", REPO / path)
  module = importlib.util.module_from_spec(spec)
  sys.path.insert(0, str(REPO))
  spec.loader.exec_module(module)
  c = module.get_config(arg or None)
  c = sweep.apply_overrides(c, dict(row.overrides)) if row.overrides else c
  with c.unlocked():
    c.sweep.grid = ()
    c.sweep.random = ()
    c.sweep.num_random = 0
    c.sweep.seeds = tuple(seeds)
    c.sweep.metric = f"validation/{c.targets[0]}/" + (
        "accuracy" if row.table == "clips" else "pcc")
    c.sweep.mode = "max"
  return c


def run_row(row: Row, profile: str, seeds, root: pathlib.Path) -> None:
  from emojax import sweep, train  # pylint: disable=import-outside-toplevel
  config = load_config(row, profile, seeds)
  print(f"== {row.key}: {row.label} ({_with_profile(row.config, profile)}, seeds {list(seeds)})",
        flush=True)
  sweep.run_sweep(config, root / row.key, train.train_and_evaluate)


def _fmt_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 90:
    return f"{seconds} s"
  if seconds < 5400:
    return f"{seconds / 60:.0f} min"
  return f"{seconds / 3600:.1f} h"


def run_rows(rows, profile: str, seeds, root: pathlib.Path, after_row=None) -> None:
  """Runs the rows in order, printing "row k/n" and an ETA before each: the mean seconds per seed
  trained in this invocation times the seeds still to train (finished seeds are skipped)."""
  todo = {r.key: len(seeds) - len(_trial_dirs(root, r, seeds)) for r in rows}
  trained, spent = 0, 0.0
  for k, r in enumerate(rows, 1):
    remaining = sum(todo[x.key] for x in rows[k - 1:])
    if not todo[r.key]:
      eta = "finished before"
    elif trained:
      eta = (f"ETA {_fmt_duration(spent / trained * remaining)} for {remaining} seeds to train "
             f"({_fmt_duration(spent / trained)} per seed so far)")
    else:
      eta = f"{remaining} seeds to train; ETA after the first seed"
    print(f"[results] row {k}/{len(rows)} {r.key}: {todo[r.key]} of {len(seeds)} seeds to train; "
          f"{eta}", flush=True)
    t0 = time.time()
    run_row(r, profile, seeds, root)
    done_now = todo[r.key] - (len(seeds) - len(_trial_dirs(root, r, seeds)))
    if done_now > 0:
      trained += done_now
      spent += time.time() - t0
    todo[r.key] -= max(done_now, 0)
    if after_row is not None:
      after_row()


# ----------------------------------------------------------------------------------------------
# Reading the runs back.


def _trial_dirs(root: pathlib.Path, row: Row, seeds) -> dict[int, pathlib.Path]:
  out = {}
  for s in seeds:
    d = root / row.key / "sweep" / "trials" / f"seed={s}"
    if (d / "trial_done.json").exists():
      out[s] = d
  return out


def _mean_std(vals) -> str:
  v = np.asarray([x for x in vals if x is not None], np.float64)
  if not v.size:
    return "n/a"
  if v.size == 1:
    return f"{v[0]:.3f}"
  return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def bootstrap_interval(per_film_by_seed: list[dict[str, float]], n: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
  """95% percentile interval over films of the mean per-film metric (averaged over seeds first)."""
  films = sorted(set.intersection(*[set(d) for d in per_film_by_seed]))
  vals = np.array([np.nanmean([d[f] for d in per_film_by_seed]) for f in films], np.float64)
  vals = vals[np.isfinite(vals)]
  if vals.size < 2:
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  means = vals[rng.integers(0, vals.size, size=(n, vals.size))].mean(1)
  return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def row_stats(row: Row, dirs: dict[int, pathlib.Path], split: str = "test") -> dict:
  """{target: {metric: [value per seed]}, plus per-film dicts for the bootstrap}."""
  out = {}
  for s, d in sorted(dirs.items()):
    m = json.loads((d / "eval" / split / "metrics.json").read_text())
    for t, mt in m.items():
      o = out.setdefault(t, {"per_film": []})
      if row.table == "clips":
        keys = ("accuracy", "macro_f1", "film_accuracy")
        for k in keys:
          o.setdefault(k, []).append(mt.get(k))
      else:
        for k in ("pcc", "mse", "ccc"):
          o.setdefault(k, []).append(mt.get(k))
        o.setdefault("film_pcc", []).append(
            mt.get("film_pcc", (mt.get("film_mean") or {}).get("pcc")))
        if mt.get("per_film"):   # per-second datasets keep the per-film metrics
          o["per_film"].append({f: v["pcc"] for f, v in mt["per_film"].items()})
  return out


def _ceiling(root: pathlib.Path, dirs_by_row) -> dict | None:
  """The test ceiling recorded by the synthetic benchmark (from the dataset's metadata)."""
  for dirs in dirs_by_row.values():
    for d in dirs.values():
      ab = d / "eval" / "ablation.md"
      if ab.exists():
        for line in ab.read_text().splitlines():
          if line.startswith("Ceiling recorded by the dataset (test"):
            return {"text": line.split(":", 1)[1].strip()}
  return None


def clip_ceilings_line(metadata: dict) -> str:
  """One line naming `synthetic_clips`' expected ceilings per modality and its majority rate."""
  exp, majority = metadata.get("modality_ceiling_expected") or {}, metadata.get("majority") or {}
  if not exp:
    return ""
  parts = []
  for t, groups in exp.items():
    cells = ", ".join(f"{g} {v['accuracy']:.3f}" for g, v in groups.items())
    rate = (majority.get(t) or {}).get("accuracy")
    parts.append(f"{t}: {cells}" + (f"; majority class (test) {rate:.3f}" if rate is not None
                                    else ""))
  return ("Ceilings recorded by the dataset (expected accuracy from each modality's noiseless "
          "content, both modalities fused, and the latent; docs/synthetic_clips.md): "
          + " | ".join(parts) + ".")


def _clip_metadata(dirs_by_row) -> dict:
  """The metadata of the `synthetic_clips` build a per-clip run read ({} if none is prepared)."""
  for dirs in dirs_by_row.values():
    for d in dirs.values():
      c = json.loads((d / "config.json").read_text())["dataset"]
      if c.get("name") != "synthetic_clips":
        continue
      from emojax import datasets  # pylint: disable=import-outside-toplevel
      builder = datasets.get_builder(c["name"], c.get("config") or None,
                                     c.get("data_dir") or None)
      return dict(builder.info.metadata or {}) if builder.is_prepared() else {}
  return {}


def _dataset_name(dirs_by_row) -> str:
  """`name/config` of the dataset the runs used (from a run's config.json)."""
  for dirs in dirs_by_row.values():
    for d in dirs.values():
      c = json.loads((d / "config.json").read_text())["dataset"]
      return f"{c['name']}/{c['config']}" if c.get("config") else c["name"]
  return "synthetic_benchmark"


def _git_commit() -> str:
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def ablation_table(root: pathlib.Path, dirs: dict[int, pathlib.Path]) -> list[str]:
  """Seed 000's phases and variants: test PCC (pooled and mean per film), mean +- std over seeds."""
  rows: dict[tuple[str, str], dict[str, list]] = {}
  for _, d in sorted(dirs.items()):
    for r in json.loads((d / "phases.json").read_text()):
      if "test" in r:
        e = rows.setdefault((f"phase {r['name']}", r["target"]), {"pcc": [], "film_pcc": []})
        e["pcc"].append(r["test"].get("pcc"))
        e["film_pcc"].append(r["test"].get("film_pcc"))
    flat = json.loads((d / "eval" / "summary.json").read_text())
    for k, v in flat.items():
      parts = k.split("/")
      if len(parts) == 4 and parts[0] == "test" and parts[3] in ("pcc", "film_pcc"):
        e = rows.setdefault((f"variant {parts[2]}", parts[1]), {"pcc": [], "film_pcc": []})
        e[parts[3]].append(v)
  lines = ["| stage / variant | target | test PCC (pooled) | test PCC (mean per film) |",
           "|---|---|---|---|"]
  for (name, target), e in rows.items():
    lines.append(f"| {name} | {target} | {_mean_std(e['pcc'])} | {_mean_std(e['film_pcc'])} |")
  return lines


def _simple_table(rows, dirs_by_row, title: str, headers, keys) -> list[str]:
  """A section with one line per row and target: mean +- std over seeds of each metric."""
  if not rows:
    return []
  lines = ["", f"## {title}", "", "| method | seeds | target | " + " | ".join(headers) + " |",
           "|---|---|---|" + "---|" * len(headers)]
  for r in rows:
    dirs = dirs_by_row[r.key]
    if not dirs:
      lines.append(f"| {r.label} | not run yet | |" + " |" * len(headers))
      continue
    for t, st in row_stats(r, dirs).items():
      lines.append(f"| {r.label} | {len(dirs)} | {t} | "
                   + " | ".join(_mean_std(st[k]) for k in keys) + " |")
  return lines


def write_report(root: pathlib.Path, profile: str, seeds, rows, out: pathlib.Path) -> None:
  dirs_by_row = {r.key: _trial_dirs(root, r, seeds) for r in rows}
  cmd = "python -m benchmarks.results" + ("" if profile == "default" else f" --profile={profile}")
  lines = [
      "# Results on the embedded benchmarks" + ("" if profile == "default" else f" ({profile})"),
      "",
      f"Generated by `{cmd}` (commit {_git_commit()}, "
      f"{datetime.date.today().isoformat()}, {os.cpu_count()} CPU cores); do not edit by hand: "
      "rerun the command, which skips finished runs and resumes interrupted ones.",
      "",
      f"The synthetic benchmark (`{_dataset_name(dirs_by_row)}`, see "
      "[synthetic_benchmark.md](synthetic_benchmark.md)) is a learnability check with a known "
      "ceiling, not a claim about real films. Test split. **Pooled**: over all seconds of the test "
      "films; **per film**: the mean over test films of each film's PCC (between-film offsets do "
      "not inflate it). Each cell is the mean ± sample std over seeds "
      f"{list(seeds)} (the sweep's seed axis); the interval is a 95% bootstrap over test films of "
      "the seed-averaged mean per-film PCC, given only where the test split has at least "
      f"{MIN_FILMS_FOR_INTERVAL} films.",
      "",
  ]
  reg = [r for r in rows if r.table == "regression"]
  clip_reg = [r for r in rows if r.table == "clip_regression"]
  few_films: list[int] = []
  if reg:
    lines += ["## Regression on `synthetic_benchmark`", "",
              "| method | seeds | target | PCC (pooled) | PCC (per film) | 95% interval (per film) "
              "| MSE (pooled) |",
              "|---|---|---|---|---|---|---|"]
    for r in reg:
      dirs = dirs_by_row[r.key]
      if not dirs:
        lines.append(f"| {r.label} | not run yet | | | | | |")
        continue
      for t, st in row_stats(r, dirs).items():
        n_films = (len(set.intersection(*[set(d) for d in st["per_film"]]))
                   if st["per_film"] else 0)
        if n_films >= MIN_FILMS_FOR_INTERVAL:
          lo, hi = bootstrap_interval(st["per_film"])
          interval = f"[{lo:.3f}, {hi:.3f}]"
        else:
          interval = f"n/a ({n_films} test films)"
          few_films.append(n_films)
        lines.append(f"| {r.label} | {len(dirs)} | {t} | {_mean_std(st['pcc'])} | "
                     f"{_mean_std(st['film_pcc'])} | {interval} | "
                     f"{_mean_std(st['mse'])} |")
    if few_films:
      lines += ["", f"No 95% interval where the test split has fewer than "
                f"{MIN_FILMS_FOR_INTERVAL} films (here {max(few_films)} at most): resampling so "
                "few films gives too few distinct means for a percentile interval to mean "
                "anything. The full-size benchmark has enough."]
    ceiling = _ceiling(root, {r.key: dirs_by_row[r.key] for r in reg})
    if ceiling:
      lines += ["", f"Ceiling recorded by the dataset (noiseless latents against the noisy labels, "
                f"test): {ceiling['text']}."]
    spread = []
    for r in reg:
      for t, st in (row_stats(r, dirs_by_row[r.key]).items() if dirs_by_row[r.key] else []):
        v = np.asarray([x for x in st["pcc"] if x is not None], np.float64)
        if v.size > 1:
          spread.append((float(v.max() - v.min()), r.label, t))
    if spread and max(spread)[0] > 0:
      w = max(spread)
      lines += ["", f"How much the numbers move across seeds: the pooled test PCC of a row spans "
                f"up to {w[0]:.3f} between seeds (largest: {w[1]}, {w[2]}); differences between "
                "rows smaller than that are not findings."]
    elif spread:
      lines += ["", "How much the numbers move across seeds: not known yet (the rows run so far do "
                "not depend on the seed, e.g. ridge's closed form)."]
  clips = [r for r in rows if r.table == "clips"]
  lines += _simple_table(
      clips, dirs_by_row, "Per-clip classification",
      ("accuracy", "macro-F1", "accuracy (per film)"), ("accuracy", "macro_f1", "film_accuracy"))
  note = clip_ceilings_line(_clip_metadata({r.key: dirs_by_row[r.key] for r in clips}))
  if note:
    lines += ["", note]
  lines += _simple_table(
      clip_reg, dirs_by_row, "Per-clip regression on raw frames (`synthetic_clips`)",
      ("PCC (pooled over clips)", "PCC (per film)", "MSE"), ("pcc", "film_pcc", "mse"))
  if dirs_by_row.get("seed000"):
    lines += ["", "## Seed 000 ablation (the paper's Tables 1-4)", "",
              "Every training phase as it stood at its end (before post-processing), and the "
              "variants evaluated after training (M2: the average of the stage-1 models; the "
              "arousal EMA decays of Table 4).", ""]
    lines += ablation_table(root, dirs_by_row["seed000"])
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_suffix(".tmp")
  tmp.write_text("\n".join(lines) + "\n")
  tmp.replace(out)
  print(f"wrote {out}", flush=True)


def main(argv=None) -> int:
  """The command line; a user error ends in one line and exit code 2 (emojax/cli.py)."""
  return cli.run(lambda: _main(argv))


def _main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--profile", choices=("default", "runlocal"), default="default",
                 help="default: the paper-size configs (hours); runlocal: their shrunken "
                 "':runlocal' forms (minutes per row, a smoke check)")
  p.add_argument("--rows", default="", help="comma-separated row keys (default: all)")
  p.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                 help="comma-separated seeds each row is trained with")
  p.add_argument("--root", default="", help="runs folder (default runs/results/default, or "
                 "<data dir>/results/runlocal/runs for --profile=runlocal)")
  p.add_argument("--out", default="", help="the markdown written (default docs/results.md, or "
                 "<data dir>/results/runlocal/results_runlocal.md for --profile=runlocal; the "
                 "data dir is $EMOJAX_DATA_DIR, else ~/emojax_data)")
  p.add_argument("--report_only", action="store_true",
                 help="rewrite the markdown from the runs that exist, train nothing")
  a = p.parse_args(argv)
  try:
    seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
  except ValueError:
    raise errors.ConfigError(f"--seeds={a.seeds}: give comma-separated integers, e.g. "
                             "--seeds=0,1,2") from None
  known = {r.key: r for r in ROWS}
  wanted = [w for w in a.rows.split(",") if w.strip()]
  unknown = [w for w in wanted if w not in known]
  if unknown:
    raise errors.ConfigError(f"--rows: unknown row(s) {unknown}; use some of {sorted(known)}")
  rows = [known[w] for w in wanted] if wanted else list(ROWS)
  from emojax import paths  # pylint: disable=import-outside-toplevel
  local = paths.data_dir() / "results" / "runlocal"
  root = pathlib.Path(a.root) if a.root else (
      REPO / "runs" / "results" / a.profile if a.profile == "default" else local / "runs")
  out = pathlib.Path(a.out) if a.out else (
      REPO / "docs" / "results.md" if a.profile == "default" else local / "results_runlocal.md")
  cli.check_output_file(out, "--out")    # before any run: an existing folder, a place one
  cli.check_output_dir(root, "--root")   # cannot write (nothing written there is touched)
  t0 = time.time()
  if not a.report_only:   # the report after every row: partial progress
    run_rows(rows, a.profile, seeds, root,
             after_row=lambda: write_report(root, a.profile, seeds, list(ROWS), out))
  write_report(root, a.profile, seeds, list(ROWS), out)
  print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
  sys.exit(main())
