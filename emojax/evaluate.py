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

from emojax import checkpoint, errors, fileio, input_pipeline, metrics, protocols, reporting
from emojax.features import manifest

SPLITS = ("validation", "test")


def _films_for_report(store: input_pipeline.FilmStore, preds: dict) -> dict:
  return {fid: {t: (store.labels[t][i], preds[fid][t]) for t in preds[fid]}
          for i, fid in enumerate(store.film_ids)}


def evaluate_model(model: nnx.Module, method, config: ml_collections.ConfigDict,
                   stores: dict[str, input_pipeline.FilmStore], workdir: pathlib.Path, mesh,
                   records: list[dict] | None = None, plots: bool = True) -> dict[str, float]:
  """Writes the evaluation files for every split in `stores`; returns flat metrics."""
  flat, ablation_rows = {}, []
  for split, store in stores.items():
    preds = method.predict(model, config, store, mesh)
    out = reporting.write_eval_outputs(workdir / "eval" / split, _films_for_report(store, preds),
                                       plot=plots)
    for target, m in out.items():
      for k in ("mse", "rmse", "mae", "pcc", "ccc"):
        flat[f"{split}/{target}/{k}"] = m[k]
      ablation_rows.append((f"final ({config.method})", split, target, m))
    for name, vpreds in method.ablations(model, config, store, mesh).items():
      for target in next(iter(vpreds.values())):
        true = [store.labels[target][i] for i in range(len(store.film_ids))]
        pred = [vpreds[fid][target] for fid in store.film_ids]
        m = metrics.regression_metrics(np.concatenate(true), np.concatenate(pred))
        ablation_rows.append((name, split, target, m))
        flat[f"{split}/{target}/{name}/pcc"] = m["pcc"]
    print(f"   eval {split}: " + ", ".join(
        f"{t} pcc {m['pcc']:.3f} mse {m['mse']:.4f}" for t, m in out.items()), flush=True)
  for r in records or []:
    for split in SPLITS:
      if split in r:
        ablation_rows.append((f"phase {r['name']}", split, r["target"], r[split]))
  _write_ablation(workdir / "eval", ablation_rows, stores)
  if "test" in stores and config.dataset.name == "mediaeval2018":
    # The benchmark's official numbers, computed from the written predictions as a check.
    official = protocols.official_numbers(config.dataset.name, config.dataset.config,
                                          workdir / "eval" / "test")
    fileio.write_json(workdir / "eval" / "test" / "official.json", official)
    print("   official MediaEval 2018 numbers (test): " + ", ".join(
        f"{t} MSE {m['mse']:.4f} PCC {m['pcc']:.3f}" for t, m in official.items()
        if isinstance(m, dict) and "mse" in m), flush=True)
  fileio.write_json(workdir / "eval" / "summary.json", flat)
  return flat


def _write_ablation(out_dir: pathlib.Path, rows, stores) -> None:
  lines = ["# Evaluation summary", "",
           "Per-second metrics pooled over all seconds of the split. Phase rows: the network as it "
           "stood at the end of that training phase (clip predictions repeated over their seconds, "
           "before any post-processing).", "",
           "| variant | split | target | MSE | PCC | CCC |", "|---|---|---|---|---|---|"]
  for name, split, target, m in rows:
    lines.append(f"| {name} | {split} | {target} | {m['mse']:.4f} | {m['pcc']:.3f} | "
                 f"{m['ccc']:.3f} |")
  metadata = next(iter(stores.values())).metadata if stores else {}
  by_split = metadata.get("ceiling_by_split") or {}
  for split in stores:
    ceiling = by_split.get(split) or (metadata.get("ceiling") if split == "test" else None)
    if ceiling:
      lines += ["", f"Ceiling recorded by the dataset ({split}; noiseless labels against the "
                f"noisy ones): " + ", ".join(
                    f"{t} MSE {m['mse']:.4f} PCC {m['pcc']:.3f}" for t, m in ceiling.items())]
  out_dir.mkdir(parents=True, exist_ok=True)
  tmp = out_dir / "ablation.md.tmp"
  tmp.write_text("\n".join(lines) + "\n")
  tmp.replace(out_dir / "ablation.md")


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
  return ml_collections.ConfigDict(fileio.read_json(path))


def load_trained_model(config: ml_collections.ConfigDict, checkpoint_dir: pathlib.Path):
  """(method, model, meta, feature stats) of a `final_model` checkpoint trained with `config`."""
  from emojax import train  # pylint: disable=g-import-not-at-top
  method = train.get_method(config)
  meta, stats = checkpoint.read_model_meta(checkpoint_dir)
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
  mods, targets = method.modalities(config), tuple(config.targets)
  stores = {k: input_pipeline.load_split(config, getattr(config.dataset.splits, k), mods, targets)
            for k in SPLITS if getattr(config.dataset.splits, k)}
  for split, store in stores.items():
    check_manifest(meta, store.feature_manifest, f"the {store.name} split")
    if stats:
      store.standardize(stats)
  records = fileio.read_json(workdir / "phases.json", [])
  return evaluate_model(model, method, config, stores, workdir, input_pipeline.make_mesh(), records)
