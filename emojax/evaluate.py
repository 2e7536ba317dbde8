"""Evaluation: a trained model -> per-second predictions -> the files of the evaluation contract.

`<workdir>/eval/<split>/metrics.json`, `predictions/<film>.csv`, `plots/<film>.png` (see
emojax/reporting.py), plus `eval/ablation.md`: every training phase's validation/test scores (the
paper's Tables 1-2: single modalities, progressive steps, fine-tuning, inter-clip) and the extra
variants of the method (M2 decision fusion, the EMA decay sweep of Table 4).
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np
from flax import nnx

from emojax import (checkpoint, contract, distributed, errors, fileio, inference, input_pipeline,
                    protocols)
from emojax import layout
from emojax.features import manifest

SPLITS = ("validation", "test")
ROW_KEYS = ("mse", "pcc", "film_pcc", "ccc")
CLASS_ROW_KEYS = ("accuracy", "macro_f1", "film_accuracy")


def label_constants(config: ml_collections.ConfigDict, task, stores: dict) -> dict:
  """The trivial baselines' constants from the run's training labels (`Store.label_constants`):
  the loaded training store when `stores` holds it, else the training split read again without
  features (evaluate mode: the same films, so the same constants)."""
  train = stores["train"] if "train" in stores else input_pipeline.training_labels(config, task)
  return train.label_constants(task)


def draws_plots(config: ml_collections.ConfigDict) -> bool:
  """`config.eval.plots`: whether the evaluation draws plots/*.png (True for a config without the
  key, e.g. one written before it existed)."""
  value = config.get("eval", {}).get("plots", True)
  if not isinstance(value, bool):
    raise errors.ConfigError(f"config.eval.plots={value!r}: must be True or False (False: the "
                             "evaluation writes no plots/*.png)")
  return value


def evaluate_model(model: nnx.Module, method, config: ml_collections.ConfigDict,
                   stores: dict, workdir: pathlib.Path, mesh,
                   records: list[dict] | None = None, plots: bool | None = None,
                   constants: dict | None = None) -> dict[str, float]:
  """Writes the evaluation files for every split in `stores` (not "train"); returns flat
  metrics. `constants`: the trivial baselines (`label_constants`; None = from the data);
  `plots`: draw plots/*.png (None = `config.eval.plots`)."""
  if plots is None:
    plots = draws_plots(config)
  task = method.task(config)
  if constants is None:
    constants = label_constants(config, task, stores)
  stores = {k: v for k, v in stores.items() if k in SPLITS}
  outputs = method.outputs(config)
  variants = contract.variants(method, config)
  d = config.data
  flat, ablation_rows, cache, flags = {}, [], {}, []
  keys = CLASS_ROW_KEYS if task.kind == "classification" else ROW_KEYS
  for split, store in stores.items():
    preds = inference.predict_outputs(model, outputs, store, mesh, clip_seconds=d.clip_seconds,
                                      batch_size=d.eval_batch_size, cache=cache)
    out_dir = workdir / "eval" / split
    if distributed.is_main():  # several processes: only process 0 writes the files
      out = store.write_report(out_dir, task, preds, plots, constants=constants)
    else:
      out = store.evaluation(task, preds, constants)
    final = f"final ({config.method})"
    for target, m in out.items():
      for k, v in m.items():
        if isinstance(v, (int, float)) and not k.startswith("num_"):
          flat[f"{split}/{target}/{k}"] = v
        elif k == "film_mean":
          flat.update({f"{split}/{target}/film_{kk}": vv for kk, vv in v.items()})
      ablation_rows.append((final, split, target, _row_metrics(m)))
      flat.update(baseline_flat(split, target, m.get("baselines"), task.kind))
      ablation_rows += [(f"baseline: {input_pipeline.BASELINE_TITLES.get(name, name)}", split,
                         target, b) for name, b in (m.get("baselines") or {}).items()]
      flags += [(final, split, target, "; ".join(f))
                for f in [not_beaten(task.kind, _row_metrics(m), m.get("baselines"))] if f]
    for name, vouts in variants.items():
      vpreds = inference.predict_outputs(model, vouts, store, mesh, clip_seconds=d.clip_seconds,
                                         batch_size=d.eval_batch_size, cache=cache)
      for target, m in store.score(task, vpreds).items():
        ablation_rows.append((name, split, target, m))
        for k in keys:
          flat[f"{split}/{target}/{name}/{k}"] = m.get(k, float("nan"))
        flags += [(name, split, target, "; ".join(f)) for f in [not_beaten(
            task.kind, m, (out.get(target) or {}).get("baselines"))] if f]
    print(f"   eval {split}: " + "; ".join(summary_text(task.kind, t, m) for t, m in out.items()),
          flush=True)
    for name, fsplit, target, f in flags:
      if fsplit == split and name == final:
        print(f"   ! eval {split} {target}: no better than a constant: {f}", flush=True)
  for r in records or []:
    for split in SPLITS:
      if split in r:
        for t in r.get("targets", [r["target"]]):
          m = r[split]
          if len(r.get("targets", [])) > 1:
            m = {k[len(t) + 1:]: v for k, v in m.items() if k.startswith(f"{t}_")}
          ablation_rows.append((f"phase {r['name']}", split, t, m))
  if not distributed.is_main():
    return flat
  _write_ablation(workdir / "eval", ablation_rows, stores, keys, task, flags)
  protocol = protocols.get(config.dataset.name)
  if "test" in stores and protocol.official_after_evaluation:
    # The benchmark's official numbers, computed from the written predictions as a check.
    official = protocol.official(config.dataset.config, workdir / "eval" / "test")
    fileio.write_json(workdir / "eval" / "test" / "official.json", official)
    print(f"   official {protocol.title} numbers (test): " + ", ".join(
        f"{t} MSE {m['mse']:.4f} PCC {m['pcc']:.3f}" for t, m in official.items()
        if isinstance(m, dict) and "mse" in m), flush=True)
  fileio.write_json(workdir / "eval" / "summary.json", flat)
  return flat


def _num(v) -> float:
  return float(v) if isinstance(v, (int, float)) and v is not None else float("nan")


def baseline_flat(split: str, target: str, baselines: dict | None, kind: str) -> dict:
  """The baselines' headline numbers as flat keys `<split>/<target>/baseline_<name>_<metric>`
  (summary.json, sweep results.csv): MSE / CCC (regression; PCC of a constant is undefined),
  accuracy / macro-F1 (classification)."""
  names = CLASS_ROW_KEYS[:2] if kind == "classification" else ("mse", "ccc")
  return {f"{split}/{target}/baseline_{b}_{k}": _num(m.get(k))
          for b, m in (baselines or {}).items() for k in names}


# What "beats a constant" means: (metric, label, higher is better).
BEAT_METRICS = {"regression": (("mse", "MSE", False), ("ccc", "CCC", True)),
                "classification": (("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True))}


def not_beaten(kind: str, m: dict, baselines: dict | None) -> list[str]:
  """Phrases naming each headline metric on which the model does no better than the best of the
  constant baselines (`m`: flat metrics of one split and target), e.g. 'MSE 0.8630 vs 0.4170
  (predicting zero)'; empty when it beats every one of them (or there are none)."""
  out = []
  for k, label, higher in BEAT_METRICS[kind]:
    v = _num(m.get(k))
    vals = {n: _num(b.get(k)) for n, b in (baselines or {}).items()}
    vals = {n: x for n, x in vals.items() if np.isfinite(x)}
    if not vals or not np.isfinite(v):
      continue
    best = (max if higher else min)(vals, key=vals.get)
    if (v <= vals[best]) if higher else (v >= vals[best]):
      out.append(f"{label} {v:.4f} vs {vals[best]:.4f} "
                 f"({input_pipeline.BASELINE_TITLES.get(best, best)})")
  return out


def summary_text(kind: str, target: str, m: dict) -> str:
  """One target's printed evaluation: the headline metrics beside the constant baselines'."""
  fm = m.get("film_mean") or {}
  if kind == "classification":
    text = (f"{target} accuracy {_num(m.get('accuracy')):.3f} (film mean "
            f"{_num(m.get('film_accuracy')):.3f}), macro-F1 {_num(m.get('macro_f1')):.3f}")
    base = [f"{n} accuracy {_num(b.get('accuracy')):.3f}, macro-F1 {_num(b.get('macro_f1')):.3f}"
            for n, b in (m.get("baselines") or {}).items()]
  else:
    text = (f"{target} pcc {_num(m.get('pcc')):.3f} (film mean "
            f"{_num(m.get('film_pcc', fm.get('pcc'))):.3f}), mse {_num(m.get('mse')):.4f}, "
            f"ccc {_num(m.get('ccc')):.3f}")
    base = [f"{n} mse {_num(b.get('mse')):.4f}, ccc {_num(b.get('ccc')):.3f}"
            for n, b in (m.get("baselines") or {}).items()]
  return text + (f" [constant baselines: {'; '.join(base)}]" if base else "")


def _row_metrics(m: dict) -> dict:
  """Pooled metrics plus the film means (`film_<m>`) as one flat dict."""
  row = {k: v for k, v in m.items() if isinstance(v, (int, float))}
  row.update({f"film_{k}": v for k, v in (m.get("film_mean") or {}).items()})
  return row


def _fmt(v) -> str:
  return "" if v is None or not np.isfinite(v) else (f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}")


def _write_ablation(out_dir: pathlib.Path, rows, stores, keys, task=None, flags=()) -> None:
  names = {"mse": "MSE", "pcc": "PCC (pooled)", "film_pcc": "PCC (mean per film)", "ccc": "CCC",
           "accuracy": "accuracy", "macro_f1": "macro-F1", "film_accuracy": "accuracy (mean per film)"}
  lines = ["# Evaluation summary", "",
           "Metrics pooled over all seconds (or clips) of the split, and the mean over its films of "
           "the per-film metric (between-film offsets do not inflate it). Phase rows: the network as "
           "it stood at the end of that training phase (before any post-processing). Baseline "
           "rows: a constant prediction from the training split's labels (zero and the training "
           "mean per target for regression, the majority class for classification); the PCC of a "
           "constant is undefined (n/a).", "",
           "| variant | split | target | " + " | ".join(names[k] for k in keys) + " |",
           "|---|---|---|" + "---|" * len(keys)]
  for name, split, target, m in rows:
    constant = name.startswith("baseline: ")
    lines.append(f"| {name} | {split} | {target} | " + " | ".join(
        "n/a" if constant and "pcc" in k else _fmt(m.get(k)) for k in keys) + " |")
  if flags:
    lines += ["", "**Not better than a constant baseline** (the model does no better than "
              "predicting a constant from the training labels):", ""]
    lines += [f"- {name}, {split} {target}: {f}" for name, split, target, f in flags]
  # The dataset's recorded ceiling, in the metrics this run reports only (a regression run shows
  # no accuracy ceiling of a dataset that also has class labels).
  allowed = set(task.metric_names()) if task is not None else set(keys)
  metadata = next(iter(stores.values())).metadata if stores else {}
  by_split = metadata.get("ceiling_by_split") or {}
  for split in stores:
    ceiling = by_split.get(split) or (metadata.get("ceiling") if split == "test" else None)
    parts = [f"{t} " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()
                                 if isinstance(v, (int, float)) and k in allowed)
             for t, m in (ceiling or {}).items()
             if any(isinstance(v, (int, float)) and k in allowed for k, v in m.items())]
    if parts:
      lines += ["", f"Ceiling recorded by the dataset ({split}; noiseless labels against the "
                f"noisy ones): " + ", ".join(parts)]
  out_dir.mkdir(parents=True, exist_ok=True)
  fileio.atomic_write_text(out_dir / "ablation.md", "\n".join(lines) + "\n")


def evaluate_trainer(trainer) -> dict[str, float]:
  """Evaluation at the end of train mode, on the trainer's loaded splits."""
  stores = {k: v for k, v in trainer.stores.items() if k in SPLITS}
  constants = trainer.stores["train"].label_constants(trainer.task)
  return evaluate_model(trainer.model, trainer.method, trainer.config, stores, trainer.workdir,
                        trainer.mesh, trainer.records, constants=constants)


def load_run_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  path = workdir / "config.json"
  if not path.exists():
    raise errors.ConfigError(f"{path} not found: {workdir} is not a training workdir; pass "
                             "--config as well, or train first")
  # Workdirs written before the config layout of configs/common.py load mapped onto it.
  return ml_collections.ConfigDict(layout.upgrade(fileio.read_json(path)))


def load_trained_model(config: ml_collections.ConfigDict, checkpoint_dir: pathlib.Path):
  """(method, model, meta, feature stats) of a `final_model` checkpoint trained with `config`."""
  method = contract.get_method(config)
  meta, stats = checkpoint.read_model_meta(checkpoint_dir)
  # Another run's model (e.g. --checkpoint): refused with a message when its streams differ.
  checkpoint.check_fits(checkpoint_dir, meta, method=config.method,
                        modalities=method.modalities(config), targets=config.targets)
  model = method.create(config, meta["feature_dims"], nnx.Rngs(config.seed))
  checkpoint.restore_model(checkpoint_dir, model)
  return method, model, meta, stats


def check_manifest(meta: dict, offered: dict | None, what: str) -> None:
  """Refuses features made by other extractors (or params) than the model was trained on."""
  expected = meta.get("feature_manifest")
  if expected and offered:
    manifest.compare_manifests(expected, offered, what=what)
  elif expected and not offered:
    raise errors.ManifestMismatchError(
        f"the model was trained on features extracted by emojax (manifest with extractors "
        f"{sorted(expected.get('extractors', {}))}) but {what} records no feature manifest")


def evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
             checkpoint_path: str | None = None) -> dict[str, float]:
  """Evaluate mode: the final model of `workdir` (or the checkpoint at `checkpoint_path`)."""
  workdir = pathlib.Path(workdir)
  ckpt = pathlib.Path(checkpoint_path) if checkpoint_path else workdir / "final_model"
  method, model, meta, stats = load_trained_model(config, ckpt)
  stores, _ = input_pipeline.load_stores(config, method.task(config), method.modalities(config), SPLITS)
  for split, store in stores.items():
    check_manifest(meta, store.feature_manifest, f"the {store.name} split")
    if stats:
      store.standardize(stats)
  records = fileio.read_json(workdir / "phases.json", [])
  return evaluate_model(model, method, config, stores, workdir, input_pipeline.make_mesh(), records)
