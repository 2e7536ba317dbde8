"""Ensembles from train mode: member runs (`config.train.ensemble_members`, a list of config
overrides) or K members of one config in one jit(vmap) (`config.train.ensemble`, below).

Each entry ("model.dropout=0.0", "seed=1", or several separated by ";") makes one member: the
run's config with those keys set, trained and evaluated as its own run in
`<workdir>/members/<i>/` (resumable like any run). The run's prediction is the average of the
members' predictions (per second of every film, or per clip), evaluated into `<workdir>/eval/`
with the same files as a single run; `<workdir>/members.json` lists the members. The paper's run 5
(001 Sec. 3) averages runs that differ this way (no dropout / BN, another initialisation).

K members of one config in one jit(vmap) (`config.train.ensemble = K`,
`train_and_evaluate_vmapped`): each member selects its own best validation step, the K-member
state is checkpointed and resumed like a single run's, and the run evaluates the mean of the
members' selected models' predictions. Each member runs the phases its own run would
(`member_records`): a phase whose length follows the member's selection (gru_moe's retraining on
the development set for the selected steps) runs the members of different lengths in one jit, each
keeping its state at its own end; a `fresh` phase restarts each member from its own initial
weights; a phase's `setup` and a closed-form `fit` run on each member alone (`per_member`).
"""

from __future__ import annotations

import ast
import copy
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from emojax import (contract, distributed, ensemble, errors, evaluate, fileio, inference,
                    input_pipeline)

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
                     evaluate.label_constants(config, task, stores), evaluate.draws_plots(config))


def _write_mean(workdir: pathlib.Path, task, stores: dict, sums: dict, names: list[str],
                constants: dict | None = None, plots: bool = True) -> dict:
  """Evaluates the mean of the members' predictions into <workdir>/eval/ (beside the trivial
  baselines of `constants`, evaluate.label_constants; `plots`: config.eval.plots); writes
  members.json."""
  flat = {}
  for split, store in stores.items():
    mean = jax.tree.map(lambda *a: np.mean(np.stack(a), 0), *sums[split])
    if distributed.is_main():
      out = store.write_report(workdir / "eval" / split, task, mean, plots, constants=constants)
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
  method's phases (`_members_plan`: each member's phase as its own run plans it).

  Each member selects its own best validation step (the task's metric, as a single run does; with
  `patience`, a member stops improving its selection after that many validations without a better
  one, and the phase ends when every member has stopped); the members' selected states start the
  next phase and are the result. Phases without validation-based selection (no validation split,
  `train_splits`) keep their last step. The K-member state (current, selected, optimizer, each
  member's best step and score) is checkpointed in `<workdir>/checkpoints/<phase>/` as a single
  run's is, so a killed run resumes where it was and ends with the same members. Member i is
  evaluated and saved as a run of its own in `<workdir>/members/<i>/` (final_model, eval/), and the
  run evaluates the mean of the members' predictions."""
  from emojax import checkpoint, train  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  k = ensemble_size(config)
  one = copy.deepcopy(config)
  one.train.ensemble = 1
  trainer = train.Trainer(one, workdir)   # data, statistics and the method, as a single run
  ensemble.check_sharding(k, config.data.batch_size, jax.device_count(),
                          config.train.get("ensemble_sharding", "members"))
  workdir.mkdir(parents=True, exist_ok=True)
  records: list[dict] = fileio.read_json(workdir / "phases.json", [])
  _check_same_config(config, workdir, records)
  if distributed.is_main():
    fileio.write_json(workdir / "config.json", config.to_dict())
  method, cfg, d = trainer.method, trainer.config, config.data
  create = lambda rngs: method.create(cfg, trainer.feature_dims, rngs)  # noqa: E731
  keep_finished = cfg.checkpoint.get("finished", "last")
  checkpoint.check_policy(keep_finished)
  full = None   # the K members' stacked state (every variable) after the last finished phase
  if records:
    last = records[-1]
    print(f"resuming {workdir} after {len(records)} finished phases (last: {last['name']})",
          flush=True)
    template = nnx.merge_state(*ensemble.create(create, k, int(cfg.seed)).states())
    ckpt = trainer._phase_checkpoints(  # pylint: disable=protected-access
        last["name"], method.task(cfg))
    full = _from_pure(template, ckpt.restore_best(nnx.to_pure_dict(template)))
    ckpt.close()
  while (planned := _members_plan(method, cfg, records, k)) is not None:
    phase, ends = planned
    checkpoint.prune_phases(workdir / "checkpoints", [r["name"] for r in records], keep_finished)
    if phase.fit is not None:
      full, record = _members_fit(trainer, phase, k, create, full)
    else:
      full, record = _members_phase(trainer, phase, k, create, full, ends)
    records.append(record)
    if distributed.is_main():
      fileio.write_json(workdir / "phases.json", records)
  checkpoint.prune_phases(workdir / "checkpoints", [r["name"] for r in records], keep_finished)
  sums: dict[str, list] = {}
  stores = {s: v for s, v in trainer.stores.items() if s in evaluate.SPLITS}
  constants = trainer.stores["train"].label_constants(trainer.task)
  for i in range(k):
    model = method.create(cfg, trainer.feature_dims, nnx.Rngs(int(cfg.seed)))
    nnx.update(model, ensemble.unstack(full, i))
    run = workdir / "members" / str(i)
    checkpoint.save_model(run / "final_model", model, trainer.model_meta(), trainer.feature_stats)
    evaluate.evaluate_model(model, method, cfg, stores, run, trainer.mesh, records,
                            constants=constants)
    for split, store in stores.items():
      sums.setdefault(split, []).append(inference.predict_outputs(
          model, method.outputs(cfg), store, trainer.mesh, clip_seconds=d.clip_seconds,
          batch_size=d.eval_batch_size))
  return _write_mean(workdir, method.task(cfg), stores, sums,
                     [f"member {i} of {k} (one jit)" for i in range(k)], constants,
                     evaluate.draws_plots(cfg))


def member_records(records: list[dict], i: int) -> list[dict]:
  """The phase records member i's own run would have: each K-member record with member i's
  selected step as its `best_step`."""
  return [dict(r, best_step=r["member_best_steps"][i]) if "member_best_steps" in r else r
          for r in records]


def _members_plan(method, cfg, records: list[dict], k: int):
  """The next phase of the K members and each member's duration in steps (None: one duration),
  or None when training is complete. Each member's phase is the one its own run would plan
  (`member_records`: e.g. gru_moe's retraining for that member's selected number of steps); the
  members must agree on everything else."""
  phases = [method.plan(cfg, member_records(records, i)) for i in range(k)]
  if all(p is None for p in phases):
    return None
  first = phases[0]
  if any(p is None or p.name != first.name for p in phases):
    raise errors.ConfigError(
        f"config.train.ensemble={k}: the members' own runs plan different phases next "
        f"({[None if p is None else p.name for p in phases]}); list the members as runs in "
        f"{KEY} instead")
  steps = [int(p.steps) for p in phases]
  if len(set(steps)) == 1 and all(p.epochs == first.epochs for p in phases):
    return first, None
  if any(p.epochs for p in phases):
    raise errors.ConfigError(
        f"config.train.ensemble={k}: phase {first.name} lasts {steps} steps / "
        f"{[p.epochs for p in phases]} epochs for the members; one jit runs members of different "
        f"lengths in steps only; list the members as runs in {KEY} instead")
  spec = dict(first.optimizer or contract.optimizer_spec())
  if spec.get("schedule") == "cosine":
    raise errors.ConfigError(
        f"config.train.ensemble={k}: phase {first.name} lasts {steps} steps for the members and "
        "its cosine schedule depends on the length, which one jit shares; use "
        f"config.optim.schedule='constant' / 'step', or list the members as runs in {KEY}")
  return phases[int(np.argmax(steps))], steps


def per_member(trainer, full, k: int, fn) -> Any:
  """The K members' stacked state after `fn(model)` ran on each member alone: member i's state in
  the trainer's model, `fn` on it, its state read back (a setup, a closed-form fit)."""
  pure = []
  for i in range(k):
    nnx.update(trainer.model, ensemble.unstack(full, i))
    fn(trainer.model)
    pure.append(nnx.to_pure_dict(nnx.state(trainer.model)))
  return _from_pure(full, jax.tree.map(lambda *xs: jnp.stack(xs), *pure))


def _start_state(trainer, phase, k: int, create, full):
  """The K members' stacked state a phase starts from: the previous phase's result, or the
  members' initial weights (the first phase; a `fresh` phase)."""
  if full is None or phase.fresh:
    return nnx.merge_state(*ensemble.create(create, k, int(trainer.config.seed)).states())
  return full


def _members_fit(trainer, phase, k: int, create, full):
  """A closed-form phase (`Phase.fit`) for the K members: each member fitted alone (`per_member`),
  as its own run's phase would fit it; checkpointed as one state. Returns (the members' stacked
  state, the phase record)."""
  t0 = time.time()
  task = phase.task
  start = _start_state(trainer, phase, k, create, full)
  ckpt = trainer._phase_checkpoints(phase.name, task)  # pylint: disable=protected-access
  print(f"== phase {phase.name} (closed form, {k} members, each fitted alone)", flush=True)
  if ckpt.best_step() is None:
    store = trainer.train_store(phase)
    validation = None if phase.train_splits else trainer.stores.get("validation")
    fitted = per_member(trainer, start, k,
                        lambda model: phase.fit(model, store, validation))
    scores = (member_scores(trainer, phase, fitted, k)
              if trainer._selects(phase) else np.full(k, np.nan))  # pylint: disable=protected-access
    finite = scores[np.isfinite(scores)]
    ckpt.save_best(1, nnx.to_pure_dict(fitted),
                   {task.best_metric: float(finite.mean()) if finite.size else 0.0})
    ckpt.wait()
  else:
    fitted = _from_pure(start, ckpt.restore_best(nnx.to_pure_dict(start)))
    scores = (member_scores(trainer, phase, fitted, k)
              if trainer._selects(phase) else np.full(k, np.nan))  # pylint: disable=protected-access
  ckpt.close()
  record = {"name": phase.name, "target": phase.target, "targets": list(task.targets),
            "best_step": 1, "member_best_steps": [1] * k,
            f"member_best_{task.best_metric}": _nan_to_none(scores), "steps": 0,
            "members": k, "closed_form": True, "early_stopped": [False] * k,
            "validation_history": [], "final_loss": [None] * k,
            "seconds": round(time.time() - t0, 2), "info": phase.info}
  return fitted, record


def _check_same_config(config: ml_collections.ConfigDict, workdir: pathlib.Path,
                       records: list) -> None:
  """Resuming continues the run in the workdir: another config is refused (as train.Trainer)."""
  from emojax import layout, train  # pylint: disable=g-import-not-at-top
  saved = fileio.read_json(workdir / "config.json")
  started = records or any(p.name.isdigit() for p in (workdir / "checkpoints").glob("*/*/*"))
  if saved is None or not started:
    return
  diffs = sorted(train._dict_diff(layout.upgrade(saved),  # pylint: disable=protected-access
                                  fileio.to_jsonable(config.to_dict())))
  if diffs:
    raise errors.ConfigError(
        f"{workdir} holds a run trained with another config ({'; '.join(diffs[:8])}); train in a "
        "new --workdir, or rerun with the same config to resume")


def _from_pure(template, pure):
  """A new nnx.State of `template`'s structure holding the arrays of a restored pure dict
  (`template` itself, and what shares its variables, are left as they are)."""
  fresh = jax.tree.map(lambda x: x, template)
  nnx.replace_by_pure_dict(fresh, pure)
  return fresh


def _where(mask: np.ndarray, new, old):
  """Per member (the leading axis): `new` where mask, else `old` (random keys: `new`)."""
  def pick(a, b):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
      return a
    return jnp.where(jnp.asarray(mask).reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
  return jax.tree.map(pick, new, old)


def member_scores(trainer, phase, full, k: int) -> np.ndarray:
  """(K,) each member's validation score (the phase task's best metric; NaN when undefined),
  computed as a single run's validation is (`Trainer.validate` on the member's state)."""
  out = []
  for i in range(k):
    nnx.update(trainer.model, ensemble.unstack(full, i))
    val = trainer.validate(phase, ("validation",)).get("validation", {})
    value = val.get(phase.task.best_metric)
    out.append(float(value) if isinstance(value, (int, float)) else float("nan"))
  return np.asarray(out, np.float64)


def _nan_to_none(a) -> list:
  return [None if v is None or not np.isfinite(v) else float(v) for v in a]


def _members_phase(trainer, phase, k: int, create, full, ends=None):
  """Trains one phase for the K members in one jit(vmap) step; returns (the members' selected
  stacked state, the phase record). `ends`: each member's duration in steps where they differ
  (the phase lasts the longest; member i's result is its own run's: selected among its
  validations up to its end, else its state at its end)."""
  from emojax import train  # pylint: disable=g-import-not-at-top
  cfg, d, task = trainer.config, trainer.config.data, phase.task
  t0 = time.time()
  members = ensemble.create(create, k, int(cfg.seed), phase.trainable)
  graphdef = members.train_graphdef
  params, mutable, frozen = members.states()
  if full is not None and not phase.fresh:   # the previous phase's members, by this phase's filter
    params, mutable, frozen = nnx.split_state(full, phase.trainable, contract.MUTABLE, ...)
  steps, per_epoch = trainer._duration(phase)  # pylint: disable=protected-access
  ends = np.full(k, steps, np.int64) if ends is None else np.asarray(ends, np.int64)
  spec = dict(phase.optimizer or contract.optimizer_spec())
  tx = contract.make_optimizer(spec, steps=steps,
                               steps_per_epoch=max(1, per_epoch // d.batch_size))
  opt = ensemble.init_optimizer(tx, params)
  selects = trainer._selects(phase)  # pylint: disable=protected-access
  sign = 1.0 if task.best_mode == "max" else -1.0
  ckpt = trainer._phase_checkpoints(phase.name, task)  # pylint: disable=protected-access
  start, best = 0, None
  best_value = np.full(k, np.nan)
  best_step = np.zeros(k, np.int64)          # 0: no validated step yet (the last step is kept)
  since = np.zeros(k, np.int64)
  stopped = np.zeros(k, bool)
  history: list[dict] = []
  loss = np.full(k, np.nan)
  if ckpt.latest_step() is not None:
    current = nnx.merge_state(params, mutable, frozen)
    like = {"current": nnx.to_pure_dict(current), "best": nnx.to_pure_dict(current)}
    start, pure, opt, meta = ckpt.restore_latest(like, opt)
    current = _from_pure(current, pure["current"])
    params, mutable, frozen = nnx.split_state(current, phase.trainable, contract.MUTABLE, ...)
    if meta.get("has_best"):
      best = _from_pure(nnx.merge_state(*members.states()), pure["best"])
    best_value = np.asarray([np.nan if v is None else v for v in meta["best_value"]], np.float64)
    best_step = np.asarray(meta["best_step"], np.int64)
    since = np.asarray(meta["since_best"], np.int64)
    stopped = np.asarray(meta["stopped"], bool)
    history = list(meta["history"])
    loss = np.asarray([np.nan if v is None else v for v in meta["loss"]], np.float64)
    print(f"   resumed {phase.name} at step {start} ({k} members)", flush=True)
  elif phase.setup is not None:   # each member's, as its own run's (e.g. copied weights)
    start_state = per_member(trainer, nnx.merge_state(params, mutable, frozen), k, phase.setup)
    params, mutable, frozen = nnx.split_state(start_state, phase.trainable, contract.MUTABLE, ...)
  eval_every = contract.to_steps(phase.eval_every, phase.eval_every_epochs,
                                 examples_per_epoch=per_epoch, batch_size=d.batch_size,
                                 what=f"phase {phase.name} validation interval")
  # Each member validates as its own run would: every eval_every steps and at its own end.
  member_every = np.maximum(1, np.minimum(eval_every or ends, ends))
  eval_every = max(1, min(eval_every or steps, steps))
  ckpt_every = max(1, cfg.checkpoint.every_steps)
  print(f"== phase {phase.name} ({steps} steps, {k} members in one jit"
        f"{', each selecting its best validation step' if selects else ''})", flush=True)
  step_fn = ensemble.make_train_step(graphdef, phase.forward, task, tx, float(spec["l2"]))
  params, mutable = jax.tree.map(jnp.copy, (params, mutable))   # the step donates them
  done = start
  if start < steps and not stopped.all():
    batches = trainer._batches(phase, start)  # pylint: disable=protected-access
    carry = step_fn.start(params, mutable, opt)   # the members' state in the step's layout
    pkey = train.phase_key(int(cfg.seed), phase.name)
    for s in range(start, steps):
      batch = next(batches)   # one process: the members' step places it (no explicit mesh)
      # member i's dropout key: ensemble.step_keys(train.step_key(seed, phase, s), k)[i]
      carry, loss_k = step_fn.advance(carry, frozen, batch, pkey, s)
      done = s + 1
      train._fault_injection(phase.name, done)  # pylint: disable=protected-access
      due = ((done % member_every == 0) | (done == ends)) & (done <= ends)  # (K,) validate now
      ended = done == ends                  # (K,) members whose own run ends at this step
      eval_now = selects and bool(due.any())
      ckpt_now = done % ckpt_every == 0 or done == steps
      if not (eval_now or ckpt_now or ended.any() or done % cfg.log.every_steps == 0):
        continue
      loss = np.asarray(loss_k, np.float64)
      if not np.all(np.isfinite(loss)):
        raise errors.NonFiniteLossError(
            f"phase {phase.name}: member losses {loss.tolist()} at step {done}; lower the "
            "learning rate or clip gradients (config.optim.grad_clip)")
      print(f"   {phase.name} step {done}/{steps} member losses "
            f"{' '.join(f'{x:.4f}' for x in loss)}", flush=True)
      params, mutable, opt = step_fn.trees(carry)
      current = nnx.merge_state(params, mutable, frozen)
      if eval_now:
        scores = member_scores(trainer, phase, current, k)
        better = due & np.isfinite(scores) & ~stopped & (
            ~np.isfinite(best_value) | (sign * (scores - best_value) > 0))
        best = (jax.tree.map(jnp.copy, current) if best is None
                else _where(better, current, best))
        best_value = np.where(better, scores, best_value)
        best_step = np.where(better, done, best_step)
        since = np.where(better, 0, np.where(stopped | ~due, since, since + 1))
        if phase.patience:
          stopped |= since >= phase.patience
        history.append({"step": done, task.best_metric: _nan_to_none(scores)})
        print(f"   validation {task.best_metric} of the members: "
              f"{' '.join(f'{x:.4f}' for x in scores)}; best steps {best_step.tolist()}",
              flush=True)
      if ended.any() and (ends < steps).any():
        # A member shorter than the phase: without a selected step, its state at its own end is
        # its result (as the last step of its own run).
        take = ended & (best_step == 0)
        best = (jax.tree.map(jnp.copy, current) if best is None
                else _where(take, current, best))
        best_step = np.where(take, done, best_step)
      all_stopped = bool(phase.patience) and bool(stopped.all())
      if ckpt_now or all_stopped:
        ckpt.save_latest(done, {"current": nnx.to_pure_dict(current),
                                "best": nnx.to_pure_dict(best if best is not None else current)},
                         opt, {"phase": phase.name, "step": done, "has_best": best is not None,
                               "best_value": _nan_to_none(best_value),
                               "best_step": best_step.tolist(), "since_best": since.tolist(),
                               "stopped": stopped.tolist(), "history": history,
                               "loss": _nan_to_none(loss)})
      if all_stopped:
        print(f"   {phase.name}: every member stopped early at step {done}", flush=True)
        break
    ckpt.wait()
  final = nnx.merge_state(params, mutable, frozen)
  selected = final if best is None else _where(best_step > 0, best, final)
  if ckpt.best_step() is None:
    finite = best_value[np.isfinite(best_value)]
    ckpt.save_best(max(done, 1), nnx.to_pure_dict(selected),
                   {task.best_metric: float(finite.mean()) if finite.size else 0.0})
    ckpt.wait()
  ckpt.close()
  member_best = [int(b) if b > 0 else int(done) for b in best_step]
  record = {"name": phase.name, "target": phase.target, "targets": list(task.targets),
            "best_step": max(member_best), "member_best_steps": member_best,
            f"member_best_{task.best_metric}": _nan_to_none(best_value),
            "steps": steps, "member_steps": ends.tolist(), "members": k,
            "early_stopped": stopped.tolist(),
            "validation_history": history, "final_loss": _nan_to_none(loss),
            "seconds": round(time.time() - t0, 2), "info": phase.info}
  return selected, record
