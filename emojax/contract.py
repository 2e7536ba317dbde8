"""The method contract: what a model family gives the harness, and what the harness gives back.

A method is one module `emojax/models/<name>.py` (found by `config.method`) with:

  task(config) -> Task                      what the run predicts (targets, kind, unit, loss)
  modalities(config) -> tuple[str, ...]     the dataset streams it reads
  create(config, feature_dims, rngs) -> nnx.Module
  plan(config, done: list[dict]) -> Phase | None      the next training phase (None: finished)
  outputs(config) -> {target: Output}        the trained model's final predictions
  variants(config) -> {name: {target: Output}}        optional: extra rows of eval/ablation.md

`feature_dims` maps a stream to its feature size (per-second datasets) or to the shape of one
example's array (per-clip datasets). The harness owns everything else: data, batching, sharding,
losses, optimizers, train/eval modes, dropout randomness, validation, early stopping, checkpoints,
resume, prediction and reporting. This module imports no other part of emojax except `errors`, so
models, `train`, `inference` and `evaluate` can all import it without circles.

Forward functions: `forward(model, batch, rngs) -> outputs`, where `rngs` is an `nnx.Rngs` with a
`dropout` stream (fresh for every training step, reproducible from the seed and the step: a resumed
run draws the same masks) or None at evaluation. The harness calls `model.train()` before the
training steps and `model.eval()` before validation and prediction, so `nnx.Dropout` and
`nnx.BatchNorm` switch by themselves. Variables other than `nnx.Param` (BatchNorm statistics, ...)
are carried through the step and returned updated: write them with `v[...] = ...` in the forward.

How the data is cut around a forward (windows of clips, sequence-to-one, outputs per second, the
loss on a window's last clip only) is the store's business, not the contract's: a Phase or Output
says it in `window`, a mapping of the keys the store of its task's unit reads (per-second data:
`input_pipeline.FilmWindow`; per-clip data: none), checked by that store.

Outputs have the shape of the task's labels: per-second windows (B, L) (one value per clip of the
window), or (B, L, S) per second with `window={"resolution": "second"}`; per-clip examples (B,).
Classification adds a trailing class axis of logits. A task with several targets returns
{target: array}. What the outputs mean depends on the loss (`LOSSES`): values in [-1, 1] for "mse"
and "mse_pcc", logits of (y + 1) / 2 for "sigmoid_ce", class logits for "softmax_ce".
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from emojax import errors

Forward = Callable[[nnx.Module, dict, "nnx.Rngs | None"], Any]

KINDS = ("regression", "classification")
# loss name -> the task kinds it fits.
LOSSES = {"mse": "regression", "mse_pcc": "regression", "sigmoid_ce": "regression",
          "softmax_ce": "classification"}
REGRESSION_METRICS = ("mse", "rmse", "mae", "pcc", "ccc")
CLASSIFICATION_METRICS = ("accuracy", "macro_f1")
# Non-parameter variables the train step carries and returns (BatchNorm statistics, counters).
MUTABLE = nnx.Not(nnx.Param)


@dataclasses.dataclass(frozen=True)
class Task:
  """What a phase (or a run) predicts and how it is scored."""
  targets: tuple[str, ...]          # ("valence",), ("arousal",) or ("valence", "arousal")
  kind: str = "regression"          # "regression" | "classification"
  num_classes: int = 0              # classification: labels 0..num_classes-1 in y["<target>_class"]
  unit: str = "second"              # the data unit (the store the harness reads it from,
                                    # input_pipeline.STORES): "second": per-second film windows;
                                    # "clip": one example a clip
  loss: str = "mse"                 # a name of LOSSES
  best_metric: str = "pcc"          # validation metric selecting the best step (see metric_names)
  best_mode: str = "max"            # "max" | "min"

  def __post_init__(self):
    object.__setattr__(self, "targets", tuple(self.targets))
    check_task(self)

  def label_key(self, target: str) -> str:
    return f"{target}_class" if self.kind == "classification" else target

  def metric_names(self) -> tuple[str, ...]:
    """Names `best_metric` may take: pooled, and `film_<name>` = the mean over films."""
    base = REGRESSION_METRICS if self.kind == "regression" else CLASSIFICATION_METRICS
    return base + tuple(f"film_{m}" for m in base)


def units() -> tuple[str, ...]:
  """The data units with a registered Store (emojax/input_pipeline.py STORES)."""
  from emojax import input_pipeline  # pylint: disable=g-import-not-at-top  (data: imported late)
  return tuple(input_pipeline.STORES)


def check_task(task: Task, where: str = "task") -> None:
  """Raises ConfigError when the task's parts do not fit together."""
  if not task.targets:
    raise errors.ConfigError(f"{where}: no targets; set config.targets")
  if task.kind not in KINDS:
    raise errors.ConfigError(f"{where}: kind {task.kind!r}; use one of {KINDS}")
  if task.unit not in units():
    raise errors.ConfigError(f"{where}: unit {task.unit!r}; use one of {units()}")
  if task.loss not in LOSSES:
    raise errors.ConfigError(f"{where}: unknown loss {task.loss!r} (config key `loss`); use one "
                             f"of {sorted(LOSSES)}")
  if LOSSES[task.loss] != task.kind:
    raise errors.ConfigError(
        f"{where}: loss {task.loss!r} is for {LOSSES[task.loss]} but the task is {task.kind}; "
        f"use one of {[k for k, v in LOSSES.items() if v == task.kind]} (config key `loss`)")
  if task.kind == "classification" and task.num_classes < 2:
    raise errors.ConfigError(f"{where}: classification needs num_classes >= 2, got "
                             f"{task.num_classes}")
  if task.best_metric not in task.metric_names():
    raise errors.ConfigError(
        f"{where}: best metric {task.best_metric!r} (config.checkpoint.best_metric) is not a "
        f"{task.kind} metric; use one of {task.metric_names()}")
  if task.best_mode not in ("max", "min"):
    raise errors.ConfigError(f"{where}: best mode {task.best_mode!r} (config.checkpoint.best_mode);"
                             " use 'max' or 'min'")


@dataclasses.dataclass
class Phase:
  """One training phase of a method: which parameters, on which task, for how long."""
  name: str                         # unique in the run, e.g. "valence/stage1_audio"
  task: Task
  forward: Forward | None           # (model, batch, rngs) -> outputs (see the module docstring)
  trainable: Any = nnx.Param        # nnx filter of the Params this phase trains; the rest is frozen
  window: Mapping = dataclasses.field(default_factory=dict)  # how the store of the task's unit
                                    # cuts its batches (the store's keys, checked by it; see the
                                    # module docstring); validation reads it as Output.window
  steps: int = 0                    # duration: steps, or
  epochs: float = 0.0               # epochs over the training windows / examples
  optimizer: Mapping | None = None  # an optimizer spec (`optimizer_spec`); None = Adam 1e-3
  eval_every: int = 0               # validate every N steps (0: at the end only), or
  eval_every_epochs: float = 0.0    # every N epochs
  patience: int = 0                 # early stopping: validations without improvement (0 = off)
  setup: Callable[[nnx.Module], None] | None = None          # run once before the first step
  fresh: bool = False               # start from the run's initial weights (`create`'s with the
                                    # run's rngs; an ensemble member's own), not from the previous
                                    # phase's result; before `setup` / `fit`
  fit: Callable[[nnx.Module, Any, Any], None] | None = None  # closed-form fit instead of SGD
  info: dict = dataclasses.field(default_factory=dict)       # recorded with the phase result
  train_splits: tuple[str, ...] = ()  # dataset split names (config.dataset.splits values) it
                                    # trains on, joined; () = the run's training split. Such a
                                    # phase has no validation-based selection or early stopping:
                                    # its last step is its result

  def __post_init__(self):
    self.train_splits = tuple(self.train_splits)
    if self.train_splits and self.patience:
      raise errors.ConfigError(
          f"phase {self.name}: patience={self.patience} with train_splits={self.train_splits}: "
          "a phase trained on named splits has no validation-based early stopping; set patience=0")

  @property
  def target(self) -> str:
    """The phase's first target (records and the ablation table name phases by it)."""
    return self.task.targets[0]


@dataclasses.dataclass
class Output:
  """How the trained model predicts one target of whole films or clips."""
  forward: Forward
  task: Task                        # the loss says how outputs map to predictions
  window: Mapping = dataclasses.field(default_factory=dict)  # how the store of the task's unit
                                    # cuts the prediction batches and puts the outputs back (the
                                    # store's keys, checked by it; see the module docstring)
  postprocess: Callable | None = None   # per film: predictions (C,) or (T,) -> same shape
  key: str = ""                     # outputs with the same key share one forward pass


# ----------------------------------------------------------------------------------------------
# Durations.


def to_steps(steps: int = 0, epochs: float = 0.0, *, examples_per_epoch: int, batch_size: int,
             what: str = "duration") -> int:
  """Steps from a duration given in steps or in epochs (exactly one of them, > 0 when given)."""
  if steps and epochs:
    raise errors.ConfigError(f"{what}: give steps or epochs, not both ({steps} / {epochs})")
  if steps < 0 or epochs < 0:
    raise errors.ConfigError(f"{what}: must not be negative (steps {steps}, epochs {epochs})")
  if epochs:
    return max(1, math.ceil(epochs * examples_per_epoch / max(batch_size, 1)))
  return int(steps)


# ----------------------------------------------------------------------------------------------
# Optimizers.

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")


def optimizer_spec(block: Mapping | None = None, **overrides) -> dict:
  """An optimizer spec: `config.optim` (see configs/common.py) with per-phase overrides."""
  spec = dict(name="adam", learning_rate=1e-3, momentum=0.9, nesterov=False, weight_decay=0.0,
              l2=0.0, grad_clip=0.0, schedule="constant", decay_every=0, decay_every_epochs=0.0,
              decay_factor=0.1)
  given = dict(block.items()) if block is not None else {}
  unknown = set(given) - set(spec)
  if unknown:
    raise errors.ConfigError(f"config.optim has unknown key(s) {sorted(unknown)}; known: "
                             f"{sorted(spec)}")
  spec.update(given)
  spec.update(overrides)
  return spec


def make_optimizer(spec: Mapping, *, steps: int, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optax transformation of a spec. `l2` is not here: the loss adds it (coupled L2)."""
  name, lr = spec["name"], float(spec["learning_rate"])
  if name not in OPTIMIZERS:
    raise errors.ConfigError(f"config.optim.name={name!r}; use one of {OPTIMIZERS}")
  if spec["schedule"] not in SCHEDULES:
    raise errors.ConfigError(f"config.optim.schedule={spec['schedule']!r}; use one of {SCHEDULES}")
  if not lr > 0:
    raise errors.ConfigError(f"learning rate {lr} must be > 0 (config.optim.learning_rate or the "
                             "method's learning-rate key)")
  if spec["schedule"] == "step":
    every = to_steps(int(spec["decay_every"]), float(spec["decay_every_epochs"]),
                     examples_per_epoch=steps_per_epoch, batch_size=1,
                     what="config.optim.decay_every / decay_every_epochs")
    if every <= 0:
      raise errors.ConfigError("config.optim.schedule='step' needs config.optim.decay_every (steps)"
                               " or decay_every_epochs > 0")
    lr = optax.exponential_decay(lr, every, float(spec["decay_factor"]), staircase=True)
  elif spec["schedule"] == "cosine":
    lr = optax.cosine_decay_schedule(lr, max(steps, 1))
  parts = []
  if spec["grad_clip"]:
    parts.append(optax.clip_by_global_norm(float(spec["grad_clip"])))
  if name == "adam":
    parts.append(optax.adam(lr))
  elif name == "adamw":
    parts.append(optax.adamw(lr, weight_decay=float(spec["weight_decay"])))
  else:
    if spec["weight_decay"]:
      parts.append(optax.add_decayed_weights(float(spec["weight_decay"])))
    parts.append(optax.sgd(lr, momentum=float(spec["momentum"]) or None,
                           nesterov=bool(spec["nesterov"])))
  return optax.chain(*parts)


# ----------------------------------------------------------------------------------------------
# Losses and predictions.


def as_dict(task: Task, outputs) -> dict:
  """Outputs as {target: array} (a one-target task may return the bare array)."""
  if isinstance(outputs, Mapping):
    missing = [t for t in task.targets if t not in outputs]
    if missing:
      raise errors.ConfigError(f"the forward returned {sorted(outputs)} but the task needs "
                               f"{list(task.targets)}")
    return {t: outputs[t] for t in task.targets}
  if len(task.targets) != 1:
    raise errors.ConfigError(f"the forward returned one array for a task of "
                             f"{len(task.targets)} targets {task.targets}; return a dict")
  return {task.targets[0]: outputs}


def _masked_mean(v: jax.Array, w: jax.Array) -> jax.Array:
  return jnp.sum(w * v) / jnp.maximum(jnp.sum(w), 1.0)


def masked_mse(pred: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean squared error over the valid entries (eqs. 1 and 3 of seed 000)."""
  return _masked_mean((pred - y) ** 2, mask.astype(pred.dtype))


def masked_pcc(pred: jax.Array, y: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Pearson correlation over the valid entries (the PCC term of seed 003's loss)."""
  w = mask.astype(pred.dtype)
  n = jnp.maximum(jnp.sum(w), 1.0)
  pc = (pred - jnp.sum(w * pred) / n) * w
  yc = (y - jnp.sum(w * y) / n) * w
  return jnp.sum(pc * yc) / (jnp.sqrt(jnp.sum(pc ** 2) * jnp.sum(yc ** 2)) + eps)


def loss_value(task: Task, outputs, batch: dict) -> jax.Array:
  """The task's loss, averaged over targets, on the entries of `batch["loss_mask"]` when the store
  gives one (e.g. each window's last valid clip), else on every valid entry (`clip_mask`)."""
  outs = as_dict(task, outputs)
  mask = batch["loss_mask"] if "loss_mask" in batch else batch["clip_mask"]
  total = 0.0
  for t, z in outs.items():
    y = batch["y"][task.label_key(t)]
    if task.loss == "mse":
      total += masked_mse(z, y, mask)
    elif task.loss == "mse_pcc":
      total += masked_mse(z, y, mask) + 1.0 - masked_pcc(z, y, mask)
    elif task.loss == "sigmoid_ce":  # targets in [-1, 1] mapped to [0, 1]
      total += _masked_mean(optax.sigmoid_binary_cross_entropy(z, (y + 1.0) / 2.0),
                            mask.astype(z.dtype))
    else:  # softmax_ce on integer classes
      ce = optax.softmax_cross_entropy_with_integer_labels(z, y.astype(jnp.int32))
      total += _masked_mean(ce, mask.astype(z.dtype))
  return total / len(outs)


def predictions(task: Task, outputs) -> dict:
  """{target: predictions}: values in [-1, 1] (regression) or class probabilities (...,C)."""
  out = {}
  for t, z in as_dict(task, outputs).items():
    if task.loss == "sigmoid_ce":
      out[t] = 2.0 * jax.nn.sigmoid(z) - 1.0
    elif task.loss == "softmax_ce":
      out[t] = jax.nn.softmax(z, axis=-1)
    else:
      out[t] = z
  return out


def l2_penalty(params) -> jax.Array:
  """Sum of squares of the (trainable) parameters: the coupled L2 term (config.optim.l2)."""
  leaves = jax.tree.leaves(params)
  return sum(jnp.sum(jnp.square(x)) for x in leaves) if leaves else jnp.zeros(())


def step_fn(graphdef, forward: Forward, task: Task, tx: optax.GradientTransformation,
            l2: float = 0.0):
  """The pure (unjitted) train step of one model, shared by the harness and emojax.ensemble:
  (params, mutable, frozen, opt_state, batch, key) -> (params, mutable, opt_state, loss).

  `params` are the phase's trainable Params, `mutable` every non-Param variable (BatchNorm
  statistics ...: returned updated), `frozen` the other Params; `key` seeds the step's dropout.
  """
  def step(params, mutable, frozen, opt_state, batch, key):
    def loss_fn(p):
      model = nnx.merge(graphdef, p, mutable, frozen, copy=True)
      outputs = forward(model, batch, nnx.Rngs(dropout=key))
      loss = loss_value(task, outputs, batch)
      if l2:
        loss = loss + l2 * l2_penalty(p)
      return loss, nnx.state(model, MUTABLE)
    (loss, mutable_new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, mutable_new, opt_state, loss
  return step


# ----------------------------------------------------------------------------------------------
# Finding a method.

REQUIRED = ("task", "modalities", "create", "plan", "outputs")


def _method_from_file(name: str):
  """The module of a method file (`--config.method=/path/to/my_method.py`), imported once per path
  under the name `emojax_method_<stem>_<hash of the path>`."""
  import hashlib  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(os.path.expanduser(name))
  if not os.path.isfile(path):
    raise errors.ConfigError(
        f"config.method={name!r}: no file {path}; give the path of your method's .py file "
        "(absolute, or relative to the folder you run from)")
  stem = os.path.splitext(os.path.basename(path))[0]
  mod_name = (f"emojax_method_{''.join(c if c.isalnum() else '_' for c in stem)}_"
              f"{hashlib.sha1(path.encode()).hexdigest()[:8]}")
  if mod_name in sys.modules:
    return sys.modules[mod_name], path
  spec = importlib.util.spec_from_file_location(mod_name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[mod_name] = module
  try:
    spec.loader.exec_module(module)
  except BaseException:
    del sys.modules[mod_name]
    raise
  return module, path


def is_method_file(name: str) -> bool:
  return name.endswith(".py") or "/" in name or "\\" in name


def get_method(config):
  """The method module named by `config.method`, checked for the contract's functions.

  `config.method` is one of: a plain name, a module of emojax/models (`ridge`) or else a top-level
  module on the Python path (`my_method`); a dotted module path (`mypackage.my_method`, on
  PYTHONPATH); the path of a .py file anywhere (`/home/me/my_method.py`). A method of your own
  needs no file inside emojax (docs/own_method.md).
  """
  name = config.method
  if is_method_file(name):
    module, path = _method_from_file(name)
  else:
    candidates = [name] if "." in name else [f"emojax.models.{name}", name]
    module = None
    for path in candidates:
      try:
        module = importlib.import_module(path)
        break
      except ModuleNotFoundError as e:
        # Only "this module does not exist" falls through; a missing import inside it is raised.
        if not (e.name and (path == e.name or path.startswith(e.name + "."))):
          raise
    if module is None:
      if "." in name:
        raise errors.ConfigError(
            f"config.method={name!r}: no module {name} on the Python path; put the folder holding "
            f"{name.split('.')[0]} on PYTHONPATH (PYTHONPATH=/that/folder python main.py ...) or "
            "pass the method's file: --config.method=/path/to/my_method.py")
      raise errors.ConfigError(
          f"unknown method {name!r} (config.method): no module emojax.models.{name} nor {name} on "
          "the Python path; pass a method file (--config.method=/path/to/my_method.py) or a dotted "
          "module path on PYTHONPATH")
  missing = [f for f in REQUIRED if not hasattr(module, f)]
  if missing:
    raise errors.ConfigError(f"method module {path} lacks {missing} of the method contract "
                             "(docs/design.md, 'Methods'; docs/own_method.md)")
  return module


def variants(method, config) -> dict:
  return method.variants(config) if hasattr(method, "variants") else {}
