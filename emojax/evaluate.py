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


def evaluate_model(model: nnx.Module, method, config: ml_collections.ConfigDict,
                   stores: dict, workdir: pathlib.Path, mesh,
                   records: list[dict] | None = None, plots: bool = True) -> dict[str, float]:
  """Writes the evaluation files for every split in `stores`; returns flat metrics."""
  task = method.task(config)
  outputs = method.outputs(config)
  variants = contract.variants(method, config)
  d = config.data
  flat, ablation_rows, cache = {}, [], {}
  keys = CLASS_ROW_KEYS if task.kind == "classification" else ROW_KEYS
  for split, store in stores.items():
    preds = inference.predict_outputs(model, outputs, store, mesh, clip_seconds=d.clip_seconds,
                                      batch_size=d.eval_batch_size, cache=cache)
    out_dir = workdir / "eval" / split
    if distributed.is_main():  # several processes: only process 0 writes the files
      out = store.write_report(out_dir, task, preds, plots)
    else:
      out = store.evaluation(task, preds)
    for target, m in out.items():
      for k, v in m.items():
        if isinstance(v, (int, float)) and not k.startswith("num_"):
          flat[f"{split}/{target}/{k}"] = v
        elif k == "film_mean":
          flat.update({f"{split}/{target}/film_{kk}": vv for kk, vv in v.items()})
      ablation_rows.append((f"final ({config.method})", split, target, _row_metrics(m)))
    for name, vouts in variants.items():
      vpreds = inference.predict_outputs(model, vouts, store, mesh, clip_seconds=d.clip_seconds,
                                         batch_size=d.eval_batch_size, cache=cache)
      for target, m in store.score(task, vpreds).items():
        ablation_rows.append((name, split, target, m))
        for k in keys:
          flat[f"{split}/{target}/{name}/{k}"] = m.get(k, float("nan"))
    main_key = keys[0] if task.kind == "classification" else "pcc"
    print(f"   eval {split}: " + ", ".join(
        f"{t} {main_key} {flat.get(f'{split}/{t}/{main_key}', float('nan')):.3f} (film mean "
        f"{flat.get(f'{split}/{t}/film_{main_key}', float('nan')):.3f})" for t in out),
        flush=True)
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
  _write_ablation(workdir / "eval", ablation_rows, stores, keys)
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


def _row_metrics(m: dict) -> dict:
  """Pooled metrics plus the film means (`film_<m>`) as one flat dict."""
  row = {k: v for k, v in m.items() if isinstance(v, (int, float))}
  row.update({f"film_{k}": v for k, v in (m.get("film_mean") or {}).items()})
  return row


def _fmt(v) -> str:
  return "" if v is None or not np.isfinite(v) else (f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}")


def _write_ablation(out_dir: pathlib.Path, rows, stores, keys) -> None:
  names = {"mse": "MSE", "pcc": "PCC (pooled)", "film_pcc": "PCC (mean per film)", "ccc": "CCC",
           "accuracy": "accuracy", "macro_f1": "macro-F1", "film_accuracy": "accuracy (mean per film)"}
  lines = ["# Evaluation summary", "",
           "Metrics pooled over all seconds (or clips) of the split, and the mean over its films of "
           "the per-film metric (between-film offsets do not inflate it). Phase rows: the network as "
           "it stood at the end of that training phase (before any post-processing).", "",
           "| variant | split | target | " + " | ".join(names[k] for k in keys) + " |",
           "|---|---|---|" + "---|" * len(keys)]
  for name, split, target, m in rows:
    lines.append(f"| {name} | {split} | {target} | "
                 + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
  metadata = next(iter(stores.values())).metadata if stores else {}
  by_split = metadata.get("ceiling_by_split") or {}
  for split in stores:
    ceiling = by_split.get(split) or (metadata.get("ceiling") if split == "test" else None)
    if ceiling:
      lines += ["", f"Ceiling recorded by the dataset ({split}; noiseless labels against the "
                f"noisy ones): " + ", ".join(
                    f"{t} " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()
                                       if isinstance(v, (int, float)))
                    for t, m in ceiling.items())]
  out_dir.mkdir(parents=True, exist_ok=True)
  fileio.atomic_write_text(out_dir / "ablation.md", "\n".join(lines) + "\n")


def evaluate_trainer(trainer) -> dict[str, float]:
  """Evaluation at the end of train mode, on the trainer's loaded splits."""
  stores = {k: v for k, v in trainer.stores.items() if k in SPLITS}
  return evaluate_model(trainer.model, trainer.method, trainer.config, stores, trainer.workdir,
                        trainer.mesh, trainer.records)


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
