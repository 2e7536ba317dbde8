"""Training: a method's phases run in order, each a jitted pure train step over the trainable part.

A method (emojax/models/<name>.py) says *what* to train as a sequence of `Phase`s (`plan`); this
module says *how*: data, sharding, optimizer, validation, checkpoints, logging and resume. Every
phase trains a subset of one model's parameters (the rest frozen: no gradient, no update), so
progressive schedules are just filters. Killing training at any point and rerunning the same
command resumes from the latest checkpoint and ends with the same parameters.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import pathlib
import signal
import time
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx

from emojax import (checkpoint, contract, distributed, errors, fileio, inference, input_pipeline,
                    runinfo)
from emojax import layout
from emojax.contract import Phase, get_method  # noqa: F401  (re-exported for callers of train)


# --------------------------------------------------------------------------------------------
# Config checks (before anything is written).


def check_config(config: ml_collections.ConfigDict, task: contract.Task) -> None:
  """Harness-level config checks; each error names the key."""
  d = config.data
  positive = {"config.data.batch_size": d.batch_size,
              "config.data.eval_batch_size": d.eval_batch_size,
              "config.data.train_stride": d.train_stride,
              "config.checkpoint.keep": config.checkpoint.keep,
              "config.checkpoint.every_steps": config.checkpoint.every_steps,
              "config.log.every_steps": config.log.every_steps}
  for key, v in positive.items():
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise errors.ConfigError(f"{key}={v!r}: must be a positive integer")
  input_pipeline.store_class(task.unit).check_config(config, task)   # the data unit's own keys
  if d.batch_size % jax.process_count():  # several processes: each reads an equal slice
    raise errors.ConfigError(
        f"config.data.batch_size={d.batch_size} is not divisible by the {jax.process_count()} "
        "processes of this run (each process reads an equal slice of every batch); use a "
        f"multiple of {jax.process_count()}")
  if "optim" in config:   # the common optimizer block, checked once before anything is written
    contract.make_optimizer(contract.optimizer_spec(config.optim), steps=1, steps_per_epoch=1)
  if not config.dataset.splits.train:
    raise errors.ConfigError("config.dataset.splits.train is empty: name the training split")
  from emojax import evaluate  # pylint: disable=g-import-not-at-top  (as train_and_evaluate)
  evaluate.draws_plots(config)   # config.eval.plots: a bool


# --------------------------------------------------------------------------------------------
# Pure, jitted steps.


def make_train_step(graphdef, forward: contract.Forward, task: contract.Task,
                    tx: optax.GradientTransformation, l2: float = 0.0) -> "TrainStep":
  """The jitted `contract.step_fn`: (params, mutable, frozen, opt_state, batch, key) ->
  (params, mutable, opt_state, loss), donating the params, mutable and optimizer buffers.

  Its form (`step_form`: Eigen threads, dropout RNG, flat optimizer update) is chosen at the
  first call from the size of the trainable parameters, so the same config always gets the same
  form; the Trainer records it per phase (`step_form.json`) and a resumed run keeps it. A loop of
  steps runs through `TrainStep.start` / `advance` / `trees` (the state carried in the form's own
  layout between steps), as the Trainer does.
  """
  return build_train_step(graphdef, forward, task, tx, l2)


def build_train_step(graphdef, forward, task, tx, l2: float = 0.0, *,
                     eigen: bool | None = None, rbg: bool | None = None,
                     flat: bool | None = None) -> "TrainStep":
  """`make_train_step` with (parts of) its form given; None: `step_form`'s size rule."""
  return TrainStep(graphdef, forward, task, tx, l2, dict(eigen=eigen, rbg=rbg, flat=flat))


class TrainStep:
  """The harness's jitted step in a form, called two ways:

  - `step(params, mutable, frozen, opt_state, batch, key)` -> (params, mutable, opt_state, loss):
    one step on the state trees (the form chosen at the first call from `params`);
  - a loop, as the Trainer runs it: `carry = step.start(params, mutable, opt_state)`, then
    `carry, loss = step.advance(carry, frozen, batch, phase_key(seed, phase), s)` per step, and
    `step.trees(carry)` -> (params, mutable, opt_state) wherever the trees are needed (validation,
    checkpoints, the end). Between steps the carry holds the state in the form's layout: with the
    flat update, the parameters and the optimizer's parameter-shaped states as flat vectors, so a
    step neither concatenates nor slices ~100 arrays per tree (the small AAN's step had ~300 slice
    thunks and ~300 output buffers for that alone). Step s's dropout key is
    fold_in(phase_key, s) = `step_key(seed, phase, s)`, computed inside the jitted step. The two
    ways give the same results (tests/test_train_step_forms.py).
  """

  def __init__(self, graphdef, forward, task, tx, l2: float, given: dict):
    self.graphdef, self.forward, self.task, self.tx, self.l2 = graphdef, forward, task, tx, l2
    self.given = given
    self._compiled = {}   # tree structure of params -> the jitted tree step
    self._carried = {}    # tree structure of params -> _Carried

  def form(self, params) -> dict:
    return step_form(params, **self.given)

  def __call__(self, params, mutable, frozen, opt_state, batch, key):
    sig = jax.tree.structure(params)
    if sig not in self._compiled:
      form = self.form(params)
      self._compiled[sig] = jit_step(
          formed_step(self.graphdef, self.forward, self.task, self.tx, self.l2, form), form,
          donate_argnums=(0, 1, 3))
    return self._compiled[sig](params, mutable, frozen, opt_state, batch, key)

  def start(self, params, mutable, opt_state):
    """The carry of a loop of steps from the state trees (new buffers: the loop donates them)."""
    sig = jax.tree.structure(params)
    if sig not in self._carried:
      self._carried[sig] = _Carried(self, params, opt_state)
    c = self._carried[sig]
    return (c, *_fresh(c.pack(params, mutable, opt_state)))

  def advance(self, carry, frozen, batch, phase_key_: jax.Array, step: int):
    """One step of the loop: (carry, loss); the carry given is donated."""
    c, *state = carry
    *state, loss = c.step(*state, frozen, batch, phase_key_, np.uint32(step))
    return (c, *state), loss

  def trees(self, carry):
    """(params, mutable, opt_state) of a carry (which stays valid)."""
    c, *state = carry
    return _fresh(c.unpack(*state))


def _fresh(tree):
  """New buffers for every leaf (what the loop donates must alias nothing else: a jitted
  function may return an input it passes through as the same buffer)."""
  return jax.tree.map(jnp.copy, tree)


class _Carried:
  """The jitted loop step of one parameter structure, with its carry layout (`pack`: trees ->
  carry, `unpack`: carry -> trees)."""

  def __init__(self, owner: TrainStep, params, opt_state):
    form = owner.form(params)
    layout = _FlatLayout(params, opt_state) if form["flat"] else None
    step = formed_step(owner.graphdef, owner.forward, owner.task, owner.tx, owner.l2, form,
                       layout=layout)

    def keyed(p, mutable, opt, frozen, batch, pkey, s):
      return step(p, mutable, frozen, opt, batch, jax.random.fold_in(pkey, s))
    self.step = jit_step(keyed, form, donate_argnums=(0, 1, 2))
    if layout is None:
      self.pack = self.unpack = lambda *trees: trees
    else:
      self.pack = jax.jit(lambda p, mutable, opt: (layout.ravel(p), mutable,
                                                   layout.ravel_opt(opt)))
      self.unpack = jax.jit(lambda fp, mutable, fopt: (layout.unravel(fp), mutable,
                                                       layout.unravel_opt(fopt)))


class _FlatLayout:
  """Parameters as one flat vector (`ravel_pytree`), and the optimizer's state with each tree
  shaped like the parameters (Adam's moments ...) as one such vector (its other leaves as they
  are)."""

  def __init__(self, params, opt_state):
    from jax.flatten_util import ravel_pytree  # pylint: disable=g-import-not-at-top
    self._ravel_pytree = ravel_pytree
    self.unravel = ravel_pytree(params)[1]   # a function of the shapes and dtypes only
    self.treedef = jax.tree.structure(params)
    self.opt_template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), opt_state)

  def _is_tree(self, t) -> bool:
    return jax.tree.structure(t) == self.treedef

  def ravel(self, params):
    return self._ravel_pytree(params)[0]

  def ravel_opt(self, opt_state):
    return jax.tree.map(lambda t: self.ravel(t) if self._is_tree(t) else t, opt_state,
                        is_leaf=self._is_tree)

  def unravel_opt(self, flat_opt):
    return jax.tree.map(lambda t, f: self.unravel(f) if self._is_tree(t) else f,
                        self.opt_template, flat_opt, is_leaf=self._is_tree)


# Below this many trainable parameters (all members of an ensemble together) a CPU step is bound
# by per-op overhead, not arithmetic (docs/benchmarks.md, "The harness step's form"): one thread
# per XLA op (no hand-off to Eigen's pool for tiny kernels), dropout masks from XLA's
# RngBitGenerator (one op per mask instead of a threefry hash), and the optimizer's update over one
# flat vector (a few ops instead of a few per parameter array).
SMALL_STEP_PARAMS = 2_000_000
FORM_KEYS = ("eigen", "rbg", "flat")
LEGACY_FORM = {"eigen": True, "rbg": False, "flat": False}   # the step before forms existed


def step_form(params, *, eigen=None, rbg=None, flat=None) -> dict:
  """{"eigen", "rbg", "flat", "params"} of a step over `params`: True = multi-threaded Eigen
  kernels / RngBitGenerator dropout keys / a flat optimizer update. Unset ones follow the size
  rule (`SMALL_STEP_PARAMS`); the flat update needs one dtype for all parameters."""
  leaves = jax.tree.leaves(params)
  n = sum(int(np.prod(v.shape)) for v in leaves)
  small = n < SMALL_STEP_PARAMS
  one_dtype = len({jnp.dtype(v.dtype) for v in leaves}) <= 1
  return {"eigen": (not small) if eigen is None else bool(eigen),
          "rbg": small if rbg is None else bool(rbg),
          "flat": (small and one_dtype) if flat is None else bool(flat) and one_dtype,
          "params": n}


def jit_options(form: dict) -> dict:
  """`jax.jit` keyword arguments of a form: single-threaded Eigen kernels as a compile option of
  this step only (the process's other programs keep XLA's defaults)."""
  return {} if form["eigen"] else {"compiler_options": {"xla_cpu_multi_thread_eigen": False}}


# Small-form steps below this many trainable parameters (all members together) lower threefry
# unrolled (`jit_step`): measured faster for the K = 4 Feature AAN ensemble (195 k parameters,
# tiny masks), slower for K = 4 GRU-32 members (1.7 M, masks over batch 512 x 60 s: CPU 3.95 ->
# 4.47 s per step), docs/benchmarks.md.
UNROLLED_THREEFRY_PARAMS = 1_000_000


def jit_step(fn, form: dict, donate_argnums=()):
  """`jax.jit` of a step in a form. The small form (`eigen` off) of a model under
  `UNROLLED_THREEFRY_PARAMS` also lowers JAX's threefry hash unrolled (JAX's CPU lowering rolls
  its 5 round groups into an XLA while loop: ~10 thunks per hash, per dropout mask; unrolled it
  fuses into the mask's own loop): the same bits, fewer thunks (the K = 4 AAN ensemble's threefry
  masks: CPU 11.2 -> 7.9 ms per step)."""
  jitted = jax.jit(fn, donate_argnums=donate_argnums, **jit_options(form))
  if form["eigen"] or form.get("params", 0) >= UNROLLED_THREEFRY_PARAMS:
    return jitted

  def call(*args):
    with _UnrolledThreefry():
      return jitted(*args)
  call.lower = lambda *args: _lower_unrolled(jitted, args)
  return call


def _lower_unrolled(jitted, args):
  with _UnrolledThreefry():
    return jitted.lower(*args)


class _UnrolledThreefry:
  """While it is entered, JAX lowers threefry2x32 for CPU with its unrolled (GPU / default) rule;
  a no-op where this JAX lacks the private tables (the rolled rule stays: the same bits)."""
  _swap = None

  def __enter__(self):
    cls = type(self)
    if cls._swap is None:
      try:
        from jax._src.interpreters import mlir  # pylint: disable=g-import-not-at-top
        from jax._src.random import threefry2x32  # pylint: disable=g-import-not-at-top
        cls._swap = (mlir._platform_specific_lowerings["cpu"], threefry2x32.threefry2x32_p,  # pylint: disable=protected-access
                     mlir.LoweringRuleEntry(threefry2x32._threefry2x32_lowering_rule, False))  # pylint: disable=protected-access
      except (ImportError, AttributeError, KeyError):
        cls._swap = ()
    if cls._swap:
      table, prim, rule = cls._swap
      self._old = table.get(prim)
      table[prim] = rule
    return self

  def __exit__(self, *exc):
    if type(self)._swap:
      table, prim, _ = type(self)._swap
      if self._old is None:
        table.pop(prim, None)
      else:
        table[prim] = self._old


def formed_step(graphdef, forward, task, tx, l2: float, form: dict,
                layout: "_FlatLayout | None" = None):
  """The pure step (`contract.step_fn`'s signature) in a form. The flat update changes only the
  layout of the optimizer's arithmetic (XLA may round it differently in the last bit); rbg keys
  change the dropout masks (another stream, the same for the same seed and step). With a flat
  `layout` (the loop's carry, `TrainStep.start`) the step takes and returns the parameters and
  the optimizer's state in that layout instead of as trees."""
  if form["flat"]:
    step = (_flat_core(graphdef, forward, task, tx, l2, layout.unravel) if layout is not None
            else _flat_update_step(graphdef, forward, task, tx, l2))
  else:
    step = contract.step_fn(graphdef, forward, task, tx, l2)
  if not form["rbg"]:
    return step

  def rbg_step(params, mutable, frozen, opt_state, batch, key):
    # The step's threefry key (train.step_key) seeds an RngBitGenerator key: one op per mask.
    key = jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl="unsafe_rbg")
    return step(params, mutable, frozen, opt_state, batch, key)
  return rbg_step


def _flat_core(graphdef, forward, task, tx, l2, unravel):
  """`contract.step_fn` over a flat parameter vector and an optimizer state of flat vectors
  (`_FlatLayout`): (flat_params, mutable, frozen, flat_opt, batch, key) -> (flat_params, mutable,
  flat_opt, loss)."""
  def step(flat_p, mutable, frozen, flat_opt, batch, key):
    def loss_fn(fp):
      model = nnx.merge(graphdef, unravel(fp), mutable, frozen, copy=True)
      outputs = forward(model, batch, nnx.Rngs(dropout=key))
      loss = contract.loss_value(task, outputs, batch)
      if l2:
        loss = loss + l2 * contract.l2_penalty(unravel(fp))
      return loss, nnx.state(model, contract.MUTABLE)
    (loss, mutable_new), grads = jax.value_and_grad(loss_fn, has_aux=True)(flat_p)
    updates, flat_opt = tx.update(grads, flat_opt, flat_p)
    return optax.apply_updates(flat_p, updates), mutable_new, flat_opt, loss
  return step


def _flat_update_step(graphdef, forward, task, tx, l2):
  """`contract.step_fn` with the gradient and the optimizer's update over one flat vector (the
  trees raveled and unraveled inside the step)."""
  def step(params, mutable, frozen, opt_state, batch, key):
    layout = _FlatLayout(params, opt_state)
    flat_p, mutable_new, flat_opt, loss = _flat_core(graphdef, forward, task, tx, l2,
                                                     layout.unravel)(
        layout.ravel(params), mutable, frozen, layout.ravel_opt(opt_state), batch, key)
    return layout.unravel(flat_p), mutable_new, layout.unravel_opt(flat_opt), loss
  return step


def phase_key(seed: int, phase_name: str) -> jax.Array:
  """The key whose fold_in with a step number is that step's dropout key (`step_key`)."""
  return jax.random.key(seed + _stable_hash(phase_name))


def step_key(seed: int, phase_name: str, step: int) -> jax.Array:
  """The dropout key of a step: a function of seed, phase and step only (same after a resume)."""
  return jax.random.fold_in(phase_key(seed, phase_name), step)


def _stable_hash(s: str) -> int:
  """A hash of the whole string, the same in every process and Python run (not `hash`)."""
  return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little") % 100_003


# --------------------------------------------------------------------------------------------
# The phase loop.


class Trainer:
  """Runs the phases of a method in a workdir; resumes whatever was interrupted."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | pathlib.Path):
    self.config = config
    self.workdir = pathlib.Path(workdir)
    if self.workdir.exists() and not self.workdir.is_dir():
      raise errors.ConfigError(f"--workdir {self.workdir} is a file; give a folder")
    self.method = get_method(config)
    self.task = self.method.task(config)
    check_config(config, self.task)
    self.mesh = input_pipeline.make_mesh()
    self.modalities = tuple(self.method.modalities(config))
    self.targets = self.task.targets
    self.stores, self.holdout = input_pipeline.load_stores(config, self.task, self.modalities)
    # config.data.fraction < 1: a seeded share of the training films (after any held-out ones).
    self.stores["train"], self.trained_films = input_pipeline.train_fraction(
        self.stores["train"], float(config.data.get("fraction", 1.0)), config.seed)
    self.feature_dims = self.stores["train"].feature_dims()
    self.feature_manifest = self.stores["train"].feature_manifest
    self.feature_stats = self.stores["train"].feature_stats() if config.data.standardize else {}
    for store in self.stores.values():
      if self.feature_stats:
        store.standardize(self.feature_stats)
    self.model = self.method.create(config, self.feature_dims, nnx.Rngs(config.seed))
    self.outputs = self.method.outputs(config)
    for out in self.outputs.values():
      self._check_window(out.window, "the method's final output")
    self.records_path = self.workdir / "phases.json"
    self.records: list[dict] = fileio.read_json(self.records_path, [])
    self._writer = None
    self._joined: dict[tuple[str, ...], input_pipeline.Store] = {}

  def restart(self) -> None:
    """The model's initial weights again (a `fresh` phase): `create`'s with nnx.Rngs(seed)."""
    nnx.update(self.model, nnx.state(self.method.create(self.config, self.feature_dims,
                                                        nnx.Rngs(self.config.seed))))

  def _check_window(self, window, what: str, store=None) -> None:
    (store or self.stores["train"]).check_window(window, self.config.data.clip_seconds, what)

  def train_store(self, phase: Phase) -> input_pipeline.Store:
    """The store a phase trains on: the training split, or its `train_splits` joined in order.

    A split name is read through the run's stores that hold it (the training split with its
    held-out films when validation is held out of it); any other split of the dataset is loaded
    (an unknown one is refused by the store's `load`).
    Every store is standardised with the training split's statistics. The training split is
    the share of its films `config.data.fraction` keeps (`self.trained_films`).
    """
    if not phase.train_splits:
      return self.stores["train"]
    key = tuple(phase.train_splits)
    if key not in self._joined:
      names = self.config.dataset.splits
      parts = []
      for split in key:
        roles = [r for r in ("train", "validation", "test")
                 if r in self.stores and getattr(names, r) == split]
        if split == names.train and self.holdout:   # the held-out films belong to that split
          roles.append("validation")
        if roles:
          parts += [self.stores[r] for r in dict.fromkeys(roles)]
          continue
        store = input_pipeline.store_class(self.task.unit).load(self.config, split,
                                                                self.modalities, self.task)
        if self.feature_stats:
          store.standardize(self.feature_stats)
        parts.append(store)
      name = f"{self.config.dataset.name}/{'+'.join(key)}"
      self._joined[key] = parts[0] if len(parts) == 1 else type(parts[0]).concat(parts, name)
    return self._joined[key]

  # Logging ------------------------------------------------------------------------------------
  @property
  def writer(self):
    if self._writer is None and jax.process_index() == 0:
      self._writer = fileio.summary_writer_class()(str(self.workdir / "tensorboard"))
    return self._writer

  def _scalar(self, tag: str, value: float, step: int) -> None:
    if self.writer is not None:
      self.writer.add_scalar(tag, value, step)

  # Running ------------------------------------------------------------------------------------
  def run(self) -> list[dict]:
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._check_same_config()
    if jax.process_index() == 0:
      fileio.write_json(self.workdir / "config.json", self.config.to_dict())
      fileio.atomic_write_text(self.workdir / "config.py.txt", str(self.config))
      fileio.write_json(self.workdir / "run_info.json", runinfo.run_info())
      if self.holdout:
        fileio.write_json(self.workdir / "holdout.json", {
            "validation_films": self.holdout, "fraction": self.config.data.holdout_fraction,
            "seed": self.config.seed,
            "why": "the dataset has no validation split: these training films select the best "
                   "steps and rankings instead (never the test split)"})
      if self.trained_films:
        fileio.write_json(self.workdir / "fraction.json", {
            "train_films": self.trained_films, "fraction": self.config.data.fraction,
            "seed": self.config.seed,
            "why": "config.data.fraction < 1: the run trains on these films of the training "
                   "split only (input_pipeline.fraction_films); validation and test are whole"})
    if self.records:
      last = self.records[-1]
      print(f"resuming {self.workdir} after {len(self.records)} finished phases "
            f"(last: {last['name']})", flush=True)
      ckpt = self._phase_checkpoints(last["name"], self.task)
      ckpt.restore_best_into(self.model)
      ckpt.close()
    keep_finished = self.config.checkpoint.get("finished", "last")
    checkpoint.check_policy(keep_finished)
    if jax.process_index() == 0:
      print(checkpoint.disk_line(checkpoint.model_pure_state(self.model),
                                 keep=self.config.checkpoint.keep, policy=keep_finished),
            flush=True)
    while (phase := self.method.plan(self.config, self.records)) is not None:
      if any(r["name"] == phase.name for r in self.records):
        raise RuntimeError(f"method planned phase {phase.name} twice")
      checkpoint.prune_phases(self.workdir / "checkpoints", [r["name"] for r in self.records],
                              keep_finished)
      record = self.run_phase(phase)
      self.records.append(record)
      if jax.process_index() == 0:
        fileio.write_json(self.records_path, self.records)
    checkpoint.prune_phases(self.workdir / "checkpoints", [r["name"] for r in self.records],
                            keep_finished)
    checkpoint.save_model(self.workdir / "final_model", self.model, self.model_meta(),
                          self.feature_stats)
    if self._writer is not None:
      self._writer.close()
    return self.records

  def _check_same_config(self) -> None:
    """Resuming continues the run that is in the workdir: a different config is refused."""
    saved = fileio.read_json(self.workdir / "config.json")
    if saved is None or not (self.records or any(  # a start that failed before a saved step
        p.name.isdigit() for p in (self.workdir / "checkpoints").glob("*/*/*"))):
      return  # (a bad weights path, a bad crop): the corrected config is taken
    saved = layout.upgrade(saved)  # a workdir written before the layout of configs/common.py
    now = fileio.to_jsonable(self.config.to_dict())
    diffs = sorted(_dict_diff(saved, now))
    if diffs:
      raise errors.ConfigError(
          f"{self.workdir} holds a run trained with another config ({'; '.join(diffs[:8])}); "
          "train in a new --workdir, or rerun with the same config to resume")

  def model_meta(self) -> dict:
    return {"method": self.config.method, "feature_dims": self.feature_dims,
            "modalities": list(self.modalities), "targets": list(self.targets),
            "task": dataclasses.asdict(self.task),
            "feature_manifest": self.feature_manifest,
            "phases": [r["name"] for r in self.records]}

  def _phase_checkpoints(self, name: str, task: contract.Task) -> checkpoint.PhaseCheckpoints:
    return checkpoint.PhaseCheckpoints(
        self.workdir / "checkpoints" / name.replace("/", "__"), keep=self.config.checkpoint.keep,
        best_metric=task.best_metric, best_mode=task.best_mode)

  def validate(self, phase: Phase, splits=("validation", "test")) -> dict[str, dict]:
    """Metrics of the phase's forward (pooled and mean per film): validation during training
    (model selection), validation and test at the end of the phase (the ablation table)."""
    d = self.config.data
    task = phase.task
    outputs = {t: contract.Output(phase.forward, dataclasses.replace(task, targets=(t,)),
                                  window=phase.window) for t in task.targets}
    out = {}
    for split in splits:
      if split not in self.stores:
        continue
      store = self.stores[split]
      preds = inference.predict_outputs(self.model, outputs, store, self.mesh,
                                        clip_seconds=d.clip_seconds,
                                        batch_size=d.eval_batch_size)
      out[split] = inference.score(task, store, preds)
    self.model.train()
    return out

  def _selects(self, phase: Phase) -> bool:
    """Whether the phase selects its best step on the validation split during training."""
    return "validation" in self.stores and not phase.train_splits

  def _duration(self, phase: Phase) -> tuple[int, int]:
    """(steps, examples per epoch) of a phase."""
    d = self.config.data
    n = self.train_store(phase).examples_per_epoch(window=phase.window,
                                                clip_seconds=d.clip_seconds,
                                                stride=d.train_stride)
    steps = contract.to_steps(phase.steps, phase.epochs, examples_per_epoch=n,
                              batch_size=d.batch_size, what=f"phase {phase.name}")
    if steps <= 0:
      raise errors.ConfigError(
          f"phase {phase.name} has {steps} steps: give it a positive duration (the method's "
          "config.train.steps or config.train.epochs)")
    return steps, n

  def _batches(self, phase: Phase, start: int):
    d, cfg = self.config.data, self.config
    return self.train_store(phase).train_batches(
        window=phase.window, clip_seconds=d.clip_seconds, batch_size=d.batch_size,
        seed=cfg.seed + _stable_hash(phase.name), start_step=start, stride=d.train_stride)

  def _train_step(self, phase: Phase, graphdef, tx, l2: float, params, resumed: bool):
    """The phase's jitted step (`make_train_step`) in the form recorded for the phase in
    `<workdir>/step_form.json`: a resumed phase keeps the form it started with (its dropout
    stream); a new phase records the size rule's form (`step_form`). A phase resumed from a
    workdir written before forms were recorded keeps that code's form (threefry, per leaf)."""
    path = self.workdir / "step_form.json"
    forms = fileio.read_json(path, {})
    form = forms.get(phase.name)
    if form is None:
      form = dict(LEGACY_FORM) if resumed else step_form(params)
      forms[phase.name] = form
      if jax.process_index() == 0:
        fileio.write_json(path, forms)
    return build_train_step(graphdef, phase.forward, phase.task, tx, l2,
                            **{k: form[k] for k in FORM_KEYS})

  def run_phase(self, phase: Phase) -> dict:
    cfg = self.config
    t0 = time.time()
    task = phase.task
    logging.info("phase %s: %s", phase.name, phase.info or "")
    if phase.fit is None:   # checked before the phase writes anything
      self._check_window(phase.window, f"phase {phase.name}", self.train_store(phase))
      steps, per_epoch = self._duration(phase)
      steps_per_epoch = max(1, per_epoch // cfg.data.batch_size)
      spec = dict(phase.optimizer or contract.optimizer_spec())
      tx = contract.make_optimizer(spec, steps=steps, steps_per_epoch=steps_per_epoch)
    ckpt = self._phase_checkpoints(phase.name, task)
    if phase.fit is not None:
      print(f"== phase {phase.name} (closed form) {phase.info or ''}", flush=True)
      if ckpt.best_step() is None:
        if phase.fresh:
          self.restart()
        phase.fit(self.model, self.train_store(phase),
                  None if phase.train_splits else self.stores.get("validation"))
        val = self.validate(phase, ("validation",) if self._selects(phase) else ())
        ckpt.save_best(1, checkpoint.model_pure_state(self.model),
                       _flat_metrics(val.get("validation", {task.best_metric: 0.0})))
        ckpt.wait()
      ckpt.restore_best_into(self.model)
      ckpt.close()
      return self._record(phase, self.validate(phase), 1, t0)

    print(f"== phase {phase.name} ({steps} steps) {phase.info or ''}", flush=True)
    self.model.train()
    graphdef, params, mutable, frozen = nnx.split(self.model, phase.trainable, contract.MUTABLE,
                                                  ...)
    if not jax.tree.leaves(params):
      raise errors.ConfigError(f"phase {phase.name} selects no trainable parameters")
    opt_state = tx.init(params)
    start, since_best, stopped = 0, 0, False
    if ckpt.latest_step() is not None:
      start, pure, opt_state, meta = ckpt.restore_latest(
          checkpoint.model_pure_state(self.model), opt_state)
      checkpoint.load_pure_state(self.model, pure)
      since_best, stopped = int(meta.get("since_best", 0)), bool(meta.get("stopped", False))
      print(f"   resumed {phase.name} at step {start}", flush=True)
    else:
      if phase.fresh:
        self.restart()
      if phase.setup is not None:
        phase.setup(self.model)
    eval_every = contract.to_steps(phase.eval_every, phase.eval_every_epochs,
                                   examples_per_epoch=per_epoch, batch_size=cfg.data.batch_size,
                                   what=f"phase {phase.name} validation interval")
    eval_every = max(1, min(eval_every or steps, steps))
    if start < steps and not stopped:
      self.model.train()
      graphdef, params, mutable, frozen = nnx.split(self.model, phase.trainable,
                                                    contract.MUTABLE, ...)
      # Fresh buffers for what the step donates: no other variable may alias them.
      params, mutable = jax.tree.map(jnp.copy, (params, mutable))
      params, mutable, frozen, opt_state = distributed.replicate(
          (params, mutable, frozen, opt_state), self.mesh)
      step_fn = self._train_step(phase, graphdef, tx, float(spec["l2"]), params, resumed=start > 0)
      carry = step_fn.start(params, mutable, opt_state)   # the state in the step's own layout
      del params, opt_state
      pkey = phase_key(cfg.seed, phase.name)
      batches = self._batches(phase, start)
      ckpt_every = max(1, cfg.checkpoint.every_steps)
      _ = self.writer   # opened before the steps are timed
      losses, progress = [], Progress(phase.name, start, steps)
      for step in range(start, steps):
        batch = input_pipeline.shard_batch(next(batches), self.mesh)
        carry, loss = step_fn.advance(carry, frozen, batch, pkey, step)   # key: step_key(...)
        losses.append(loss)
        done = step + 1
        if step == start:   # the first step compiles: the rate is measured from its end
          progress.compiled(jax.block_until_ready(loss))
        _fault_injection(phase.name, done)
        log_now = done % cfg.log.every_steps == 0 or done == steps
        eval_now = done % eval_every == 0 or done == steps
        ckpt_now = done % ckpt_every == 0 or done == steps
        if not (log_now or eval_now or ckpt_now):
          continue
        # The host reads the losses back only here (no wait on the device at every step).
        values = np.asarray(jax.device_get(losses), np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
          raise errors.NonFiniteLossError(
              f"phase {phase.name}: loss is {values[bad[0]]} at step {done - len(values) + bad[0] + 1}"
              f"; nothing after the last checkpoint in {ckpt.directory} is kept. Lower the "
              "learning rate, check the features for extreme values, or clip gradients "
              "(config.optim.grad_clip)")
        loss_v, losses = float(values[-1]), []
        if log_now:
          print(progress.line(done, loss_v), flush=True)
          self._scalar(f"{phase.name}/train_loss", loss_v, done)
          if progress.rate is not None:
            self._scalar(f"{phase.name}/steps_per_s", progress.rate, done)
        if (eval_now and self._selects(phase)) or ckpt_now:
          params, mutable, opt_state = step_fn.trees(carry)
        if eval_now and self._selects(phase):
          nnx.update(self.model, params, mutable, frozen)
          t_val = time.time()
          val = self.validate(phase, ("validation",))
          progress.first_time("validation", time.time() - t_val)
          for split, m in val.items():
            for k, v in m.items():
              self._scalar(f"{phase.name}/{split}_{k}", v, done)
          if done > (ckpt.best_latest_step() or 0) and "validation" in val:
            ckpt.save_best(done, checkpoint.model_pure_state(self.model),
                           _flat_metrics(val["validation"]))
            since_best = 0 if ckpt.best_step() == done else since_best + 1
          if phase.patience and since_best >= phase.patience:
            stopped = True
        if ckpt_now or stopped:
          t_ckpt = time.time()
          nnx.update(self.model, params, mutable, frozen)
          ckpt.save_latest(done, checkpoint.model_pure_state(self.model), opt_state,
                           {"phase": phase.name, "step": done, "since_best": since_best,
                            "stopped": stopped})
          progress.first_time("checkpoint", time.time() - t_ckpt)
        if stopped:
          print(f"   {phase.name}: early stop at step {done} ({since_best} validations without "
                f"a better {task.best_metric})", flush=True)
          break
      ckpt.wait()
    if ckpt.best_step() is None:
      # No validation split, a phase on named splits (`train_splits`: no selection), or only
      # undefined scores: the last step is the phase's result.
      ckpt.save_best(ckpt.latest_step(), checkpoint.model_pure_state(self.model),
                     {task.best_metric: 0.0})
      ckpt.wait()
    ckpt.restore_best_into(self.model)
    best_step = ckpt.best_step()
    ckpt.close()
    return self._record(phase, self.validate(phase), best_step, t0, stopped=stopped,
                        steps=steps)

  def _record(self, phase: Phase, val: dict, best_step, t0: float, stopped: bool = False,
              steps: int | None = None) -> dict:
    """The phase's line of phases.json; `steps` is the phase's length in steps as resolved (a
    phase given in epochs has `phase.steps` 0), for readers that compare it with `best_step`."""
    rec = {"name": phase.name, "target": phase.target, "targets": list(phase.task.targets),
           "best_step": best_step, "steps": phase.steps if steps is None else steps,
           "early_stopped": stopped,
           "seconds": round(time.time() - t0, 2), "info": phase.info}
    rec.update(val)   # validation and test: the rows of eval/ablation.md
    print(phase_done_line(phase.name, phase.task, val.get("validation"), best_step,
                          rec["seconds"]), flush=True)
    return rec


def phase_done_line(name: str, task: contract.Task, val: dict | None, best_step,
                    seconds: float) -> str:
  """The line closing a phase: its validation metrics per target, labelled (the phase's network,
  before the method's post-processing); never the test split's, which only the end of the run
  prints (a score printed after every phase invites selecting on test)."""
  keys = (("accuracy", "macro_f1") if task.kind == "classification" else ("pcc", "ccc", "mse"))
  joint = len(task.targets) > 1
  parts = []
  for t in task.targets:
    m = {k: (val or {}).get(f"{t}_{k}" if joint else k) for k in keys}
    parts.append(f"{t} " + " ".join(f"{k} {v:.4f}" if k == "mse" else f"{k} {v:.3f}"
                                     for k, v in m.items() if isinstance(v, (int, float))))
  what = (f"validation (before post-processing): {'; '.join(parts)}" if val
          else "no validation split")
  step = f"best step {best_step}, " if best_step is not None else ""
  return f"   done {name} ({step}{seconds:.0f} s): {what}"


class Progress:
  """The steps/s and ETA of a phase's log lines, measured after compilation: the first step
  (which compiles the train step), the first validation (which compiles the prediction) and the
  first checkpoint save are left out of the rate (later ones are in it: they recur); until a
  compiled step has been timed the line shows the first step's time instead of an ETA."""

  def __init__(self, name: str, start: int, steps: int):
    self.name, self.steps = name, steps
    self.t_begin = time.time()
    self.t_from, self.s_from = None, start + 1
    self.compile_s, self.rate, self.seen = None, None, set()

  def compiled(self, _) -> None:
    """The first step of the run is done (its output ready): the rate is timed from here."""
    self.t_from = time.time()
    self.compile_s = self.t_from - self.t_begin

  def first_time(self, kind: str, seconds: float) -> None:
    """The first `kind` (validation, checkpoint) of the phase compiles / sets up: its time is
    left out of the rate."""
    if kind not in self.seen and self.t_from is not None:
      self.t_from += seconds
    self.seen.add(kind)

  def line(self, done: int, loss: float) -> str:
    head = f"   {self.name} step {done}/{self.steps} loss {loss:.4f}"
    if self.t_from is None or done <= self.s_from:
      first = f" (first step with compilation {self.compile_s:.1f} s)" if self.compile_s else ""
      return head + first + "; ETA after the next compiled steps"
    self.rate = (done - self.s_from) / max(time.time() - self.t_from, 1e-9)
    eta = (self.steps - done) / max(self.rate, 1e-9)
    return head + f" {self.rate:.2f} steps/s ETA {eta:.0f}s"


def _fault_injection(phase: str, step: int) -> None:
  """EMOJAX_FAULT_KILL_AT="<phase glob>:<step>" SIGKILLs the process after that step (tests of
  resuming use it to interrupt training at an exact point, as a crash or a pre-emption would)."""
  spec = os.environ.get("EMOJAX_FAULT_KILL_AT")
  if spec:
    pattern, _, at = spec.rpartition(":")
    if int(at) == step and fnmatch.fnmatch(phase, pattern):
      os.kill(os.getpid(), signal.SIGKILL)


def _dict_diff(a, b, prefix: str = "") -> list[str]:
  """Dotted keys whose values differ between two nested dicts (JSON form)."""
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _dict_diff(a.get(k), b.get(k), f"{prefix}{k}.")
    return out
  return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def _flat_metrics(m: dict) -> dict[str, float]:
  return {k: float(v) for k, v in m.items() if isinstance(v, (int, float))}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Train mode: all phases, then evaluation of the final model on every split; with
  config.train.ensemble_members, every member's run and the evaluation of their average
  (emojax/members.py)."""
  from emojax import evaluate, members  # pylint: disable=g-import-not-at-top
  if members.overrides(config):
    return members.train_and_evaluate(config, workdir)
  if members.ensemble_size(config) > 1:
    return members.train_and_evaluate_vmapped(config, workdir)
  trainer = Trainer(config, workdir)
  trainer.run()
  return evaluate.evaluate_trainer(trainer)
