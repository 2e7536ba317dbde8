"""Ensembles of member runs: `config.train.ensemble_members`, a list of config overrides.

Each entry ("model.dropout=0.0", "seed=1", or several separated by ";") makes one member: the
run's config with those keys set, trained and evaluated as its own run in
`<workdir>/members/<i>/` (resumable like any run). The run's prediction is the average of the
members' predictions (per second of every film, or per clip), evaluated into `<workdir>/eval/`
with the same files as a single run; `<workdir>/members.json` lists the members. The paper's run 5
(001 Sec. 3) averages runs that differ this way (no dropout / BN, another initialisation).
"""

from __future__ import annotations

import ast
import copy
import pathlib

import jax
import ml_collections
import numpy as np

from emojax import distributed, errors, evaluate, fileio, inference, input_pipeline

KEY = "config.train.ensemble_members"


def overrides(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return tuple(config.train.get("ensemble_members", ()) or ())


def member_config(config: ml_collections.ConfigDict, spec: str) -> ml_collections.ConfigDict:
  """The run's config with the member's overrides ("a.b=value; c=value") set."""
  c = copy.deepcopy(config)
  c.train.ensemble_members = ()
  for item in filter(None, (s.strip() for s in str(spec).split(";"))):
    path, eq, text = item.partition("=")
    if not eq or not path.strip():
      raise errors.ConfigError(f"{KEY}: member {spec!r} has {item!r}; write key=value, e.g. "
                               "'model.dropout=0.0'")
    try:
      value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      value = text.strip()
    *parents, leaf = path.strip().split(".")
    node = c
    try:
      for p in parents:
        node = node[p]
      if leaf not in node:
        raise KeyError(leaf)
      node[leaf] = value
    except (KeyError, AttributeError, TypeError) as e:
      raise errors.ConfigError(f"{KEY}: member {spec!r} sets config.{path.strip()}, which it "
                               f"cannot ({type(e).__name__}: {e}); name an existing key with a "
                               "value of its type") from None
  return c


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Trains every member in `<workdir>/members/<i>/`, then evaluates their average."""
  from emojax import train  # pylint: disable=g-import-not-at-top  (train dispatches here)
  workdir = pathlib.Path(workdir)
  specs = overrides(config)
  configs = [member_config(config, s) for s in specs]   # every override checked before training
  for i, (spec, mc) in enumerate(zip(specs, configs)):
    if tuple(mc.targets) != tuple(config.targets):
      raise errors.ConfigError(f"{KEY}: member {spec!r} changes config.targets; members must "
                               "predict the run's targets")
    print(f"== ensemble member {i}: {spec}", flush=True)
    train.train_and_evaluate(mc, workdir / "members" / str(i))
  method = train.get_method(config)
  task = method.task(config)
  stores, _ = input_pipeline.load_stores(config, task, method.modalities(config),
                                         evaluate.SPLITS)
  sums: dict[str, list] = {split: [] for split in stores}
  for i, mc in enumerate(configs):
    for split, preds in member_predictions(mc, workdir / "members" / str(i), stores).items():
      sums[split].append(preds)
  flat = {}
  for split, store in stores.items():
    mean = jax.tree.map(lambda *a: np.mean(np.stack(a), 0), *sums[split])
    if distributed.is_main():
      out = store.write_report(workdir / "eval" / split, task, mean)
    else:
      out = store.evaluation(task, mean)
    for target, m in out.items():
      flat.update({f"{split}/{target}/{k}": v for k, v in m.items()
                   if isinstance(v, (int, float)) and not k.startswith("num_")})
    print(f"   eval {split} (mean of {len(configs)} members): " + ", ".join(
        f"{t} pcc {flat.get(f'{split}/{t}/pcc', float('nan')):.3f}" for t in out), flush=True)
  if distributed.is_main():
    fileio.write_json(workdir / "members.json", {
        "members": [{"overrides": s, "workdir": f"members/{i}"} for i, s in enumerate(specs)],
        "prediction": "the mean of the members' predictions"})
    fileio.write_json(workdir / "eval" / "summary.json", flat)
  return flat


def member_predictions(config: ml_collections.ConfigDict, run: pathlib.Path,
                       stores: dict) -> dict:
  """{split: {target: predictions}} of a member's final model on the run's splits (read with the
  member's own streams and standardisation; the same films / clips in the same order)."""
  method, model, _, stats = evaluate.load_trained_model(config, run / "final_model")
  own, _ = input_pipeline.load_stores(config, method.task(config), method.modalities(config),
                                      tuple(stores))
  mesh = input_pipeline.make_mesh()
  out = {}
  for split, store in own.items():
    if store.film_ids != stores[split].film_ids:
      raise errors.ConfigError(f"{KEY}: a member reads other {split} films than the run ("
                               f"{store.name}); members may not change config.dataset")
    if stats:
      store.standardize(stats)
    out[split] = inference.predict_outputs(model, method.outputs(config), store, mesh,
                                           clip_seconds=config.data.clip_seconds,
                                           batch_size=config.data.eval_batch_size)
  return out
