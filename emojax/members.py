"""Ensembles from train mode: member runs (`config.train.ensemble_members`, a list of config
overrides) or K members of one config in one jit(vmap) (`config.train.ensemble`, below).

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
from flax import nnx

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
  return _write_mean(workdir, task, stores, sums, list(specs),
                     evaluate.label_constants(config, task, stores))


def _write_mean(workdir: pathlib.Path, task, stores: dict, sums: dict, names: list[str],
                constants: dict | None = None) -> dict:
  """Evaluates the mean of the members' predictions into <workdir>/eval/ (beside the trivial
  baselines of `constants`, evaluate.label_constants); writes members.json."""
  flat = {}
  for split, store in stores.items():
    mean = jax.tree.map(lambda *a: np.mean(np.stack(a), 0), *sums[split])
    if distributed.is_main():
      out = store.write_report(workdir / "eval" / split, task, mean, constants=constants)
    else:
      out = store.evaluation(task, mean, constants)
    for target, m in out.items():
      flat.update({f"{split}/{target}/{k}": v for k, v in m.items()
                   if isinstance(v, (int, float)) and not k.startswith("num_")})
      flat.update(evaluate.baseline_flat(split, target, m.get("baselines"), task.kind))
    print(f"   eval {split} (mean of {len(names)} members): "
          + "; ".join(evaluate.summary_text(task.kind, t, m) for t, m in out.items()), flush=True)
    for t, m in out.items():
      if f := evaluate.not_beaten(task.kind, m, m.get("baselines")):
        print(f"   ! eval {split} {t}: no better than a constant: {'; '.join(f)}", flush=True)
  if distributed.is_main():
    fileio.write_json(workdir / "members.json", {
        "members": [{"overrides": s, "workdir": f"members/{i}"} for i, s in enumerate(names)],
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


# ----------------------------------------------------------------------------------------------
# K identical members in one jit(vmap) (config.train.ensemble = K).


def ensemble_size(config: ml_collections.ConfigDict) -> int:
  return int(config.train.get("ensemble", 1) or 1)


def train_and_evaluate_vmapped(config: ml_collections.ConfigDict,
                               workdir: str | pathlib.Path) -> dict:
  """K members of one config (initialisations `ensemble.member_key(seed, i)`, dropout keys
  `fold_in(step key, i)`) trained in one jit(vmap) step per batch (emojax/ensemble.py) through the
  method's phases; each phase runs its full duration (no per-member selection: the final state is
  the result). Member i is evaluated and saved as a run of its own in `<workdir>/members/<i>/`
  (final_model, eval/), and the run evaluates the mean of the members' predictions."""
  from emojax import checkpoint, contract, ensemble, train  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  k = ensemble_size(config)
  one = copy.deepcopy(config)
  one.train.ensemble = 1
  trainer = train.Trainer(one, workdir)   # data, statistics and the method, as a single run
  ensemble.check_sharding(k, config.data.batch_size, jax.device_count(),
                          config.train.get("ensemble_sharding", "members"))
  workdir.mkdir(parents=True, exist_ok=True)
  fileio.write_json(workdir / "config.json", config.to_dict())
  method, cfg, d = trainer.method, trainer.config, config.data
  create = lambda rngs: method.create(cfg, trainer.feature_dims, rngs)  # noqa: E731
  records, state = [], None
  while (phase := method.plan(cfg, records)) is not None:
    if phase.fit is not None or phase.setup is not None:
      raise errors.ConfigError(
          f"config.train.ensemble={k}: phase {phase.name} has a setup or closed-form fit, which "
          "one jit(vmap) over members cannot run; list the members as runs in "
          f"{KEY} instead (or turn the phase off, e.g. config.train.retrain_on_dev=False)")
    members = ensemble.create(create, k, int(cfg.seed), phase.trainable)
    params, mutable, frozen = members.states()
    if state is not None:   # the previous phase's variables, split by this phase's filter
      params, mutable, frozen = state(phase.trainable)
    steps, per_epoch = trainer._duration(phase)  # pylint: disable=protected-access
    spec = dict(phase.optimizer or contract.optimizer_spec())
    tx = contract.make_optimizer(spec, steps=steps,
                                 steps_per_epoch=max(1, per_epoch // d.batch_size))
    opt = ensemble.init_optimizer(tx, params)
    step_fn = ensemble.make_train_step(members.train_graphdef, phase.forward, phase.task, tx,
                                       float(spec["l2"]))
    batches = trainer._batches(phase, 0)  # pylint: disable=protected-access
    print(f"== phase {phase.name} ({steps} steps, {k} members in one jit)", flush=True)
    for s in range(steps):
      batch = next(batches)   # one process: the members' step places it (no explicit mesh)
      params, mutable, opt, loss = step_fn(params, mutable, frozen, opt, batch, ensemble.step_keys(
          train.step_key(int(cfg.seed), phase.name, s), k))
    loss = np.asarray(loss)
    if not np.all(np.isfinite(loss)):
      raise errors.NonFiniteLossError(f"phase {phase.name}: member losses {loss.tolist()}; lower "
                                      "the learning rate or clip gradients (config.optim.grad_clip)")
    graphdef = members.train_graphdef
    merged = (params, mutable, frozen)
    state = lambda trainable, g=graphdef, m=merged: jax.vmap(  # noqa: E731
        lambda p, mu, f: nnx.split(nnx.merge(g, p, mu, f, copy=True), trainable,
                                   contract.MUTABLE, ...)[1:])(*m)
    records.append({"name": phase.name, "target": phase.target, "targets": list(phase.task.targets),
                    "best_step": steps, "steps": steps, "members": k,
                    "final_loss": [float(x) for x in loss]})
  fileio.write_json(workdir / "phases.json", records)
  sums: dict[str, list] = {}
  stores = {s: v for s, v in trainer.stores.items() if s in evaluate.SPLITS}
  constants = trainer.stores["train"].label_constants(trainer.task)
  for i in range(k):
    model = method.create(cfg, trainer.feature_dims, nnx.Rngs(int(cfg.seed)))
    nnx.update(model, *jax.tree.map(lambda x, i=i: x[i], merged))
    run = workdir / "members" / str(i)
    checkpoint.save_model(run / "final_model", model, trainer.model_meta(), trainer.feature_stats)
    evaluate.evaluate_model(model, method, cfg, stores, run, trainer.mesh, records,
                            constants=constants)
    for split, store in stores.items():
      sums.setdefault(split, []).append(inference.predict_outputs(
          model, method.outputs(cfg), store, trainer.mesh, clip_seconds=d.clip_seconds,
          batch_size=d.eval_batch_size))
  return _write_mean(workdir, method.task(cfg), stores, sums,
                     [f"member {i} of {k} (one jit)" for i in range(k)], constants)
