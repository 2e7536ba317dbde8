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
import functools
import importlib
import os
import pathlib
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from emojax import checkpoint, errors, fileio, input_pipeline, metrics, postprocess, runinfo

Forward = Callable[[nnx.Module, dict], jax.Array]  # (model, batch) -> per-clip predictions (B, L)


@dataclasses.dataclass
class Phase:
  """One training phase of a method."""
  name: str                     # unique in the run, e.g. "valence/stage1_audio"
  target: str                   # the label the phase regresses ("valence" / "arousal")
  forward: Forward | None       # per-clip predictions in [-1, 1] for `target`
  trainable: Any = None         # nnx filter of the parameters this phase trains
  num_clips: int = 1            # windows of L clips (1 = clip-level training)
  steps: int = 0
  learning_rate: float = 1e-3
  setup: Callable[[nnx.Module], None] | None = None          # run once before the first step
  fit: Callable[[nnx.Module, Any, Any], None] | None = None  # closed-form fit instead of SGD
  info: dict = dataclasses.field(default_factory=dict)       # recorded with the phase result


def get_method(config: ml_collections.ConfigDict):
  try:
    return importlib.import_module(f"emojax.models.{config.method}")
  except ModuleNotFoundError as e:
    if e.name != f"emojax.models.{config.method}":
      raise
    raise errors.ConfigError(
        f"unknown method {config.method!r}: no module emojax/models/{config.method}.py") from e


# --------------------------------------------------------------------------------------------
# Pure, jitted steps.


def masked_mse(pred_BxL: jax.Array, y_BxL: jax.Array, mask_BxL: jax.Array) -> jax.Array:
  """Mean squared error over the valid clips of the batch (eqs. 1 and 3 of seed 000)."""
  w = mask_BxL.astype(pred_BxL.dtype)
  return jnp.sum(w * (pred_BxL - y_BxL) ** 2) / jnp.maximum(jnp.sum(w), 1.0)


def make_train_step(graphdef, forward: Forward, target: str, tx: optax.GradientTransformation):
  def train_step(train_state, frozen_state, opt_state, batch):
    def loss_fn(ts):
      model = nnx.merge(graphdef, ts, frozen_state)
      pred = forward(model, batch)
      return masked_mse(pred, batch["y"][target], batch["clip_mask"])
    loss, grads = jax.value_and_grad(loss_fn)(train_state)
    updates, opt_state = tx.update(grads, opt_state, train_state)
    train_state = optax.apply_updates(train_state, updates)
    return train_state, opt_state, loss
  return jax.jit(train_step, donate_argnums=(0, 2))


class ClipPredictor:
  """Jitted per-clip predictions of `forward` for every window of a FilmStore."""

  def __init__(self, model: nnx.Module, forward: Forward, mesh):
    self.graphdef, state = nnx.split(model)
    self.state = jax.device_put(state, NamedSharding(mesh, P()))
    self.mesh = mesh
    self._fn = functools.partial(_jitted_forward(forward), self.graphdef)

  def film_clips(self, store: input_pipeline.FilmStore, *, clip_seconds: int, num_clips: int,
                 batch_size: int) -> list[np.ndarray]:
    """Per film, predictions (C,) of its C clips (windows of `num_clips` clips, non-overlapping)."""
    out = [np.zeros(input_pipeline.num_clips(int(t), clip_seconds), np.float32)
           for t in store.lengths]
    batch_size = _round_up(batch_size, jax.device_count())
    for batch in input_pipeline.eval_batches(store, clip_seconds=clip_seconds,
                                             num_clips_per_window=num_clips,
                                             batch_size=batch_size):
      pred = np.asarray(self._fn(self.state, input_pipeline.shard_batch(batch, self.mesh)))
      for b in range(batch_size):
        f, c0 = int(batch["film_index"][b]), int(batch["clip_start"][b])
        for k in range(num_clips):
          if batch["clip_mask"][b, k]:
            out[f][c0 + k] = pred[b, k]
    return out


@functools.lru_cache(maxsize=64)
def _jitted_forward(forward: Forward):
  """One jitted function per forward (a phase's forward is reused by all its validations)."""
  return jax.jit(lambda graphdef, state, batch: forward(nnx.merge(graphdef, state), batch),
                 static_argnums=0)


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def clips_to_seconds(store: input_pipeline.FilmStore, clip_preds: list[np.ndarray],
                     clip_seconds: int) -> list[np.ndarray]:
  """Each clip prediction repeated over its seconds (the paper's per-second evaluation)."""
  return [postprocess.repeat_to_seconds(c, int(t), clip_seconds)
          for c, t in zip(clip_preds, store.lengths)]


def score(store: input_pipeline.FilmStore, target: str, preds_s: list[np.ndarray]) -> dict:
  """Pooled per-second metrics of one target over a split."""
  true = np.concatenate(store.labels[target])
  return metrics.regression_metrics(true, np.concatenate(preds_s))


# --------------------------------------------------------------------------------------------
# The phase loop.


class Trainer:
  """Runs the phases of a method in a workdir; resumes whatever was interrupted."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | pathlib.Path):
    self.config = config
    self.workdir = pathlib.Path(workdir)
    self.method = get_method(config)
    self.mesh = input_pipeline.make_mesh()
    self.modalities = self.method.modalities(config)
    self.targets = tuple(config.targets)
    splits = config.dataset.splits
    self.stores = {
        k: input_pipeline.load_split(config, getattr(splits, k), self.modalities, self.targets)
        for k in ("train", "validation", "test") if getattr(splits, k)}
    self.feature_dims = self.stores["train"].feature_dims()
    self.feature_manifest = self.stores["train"].feature_manifest
    self.feature_stats = self.stores["train"].feature_stats() if config.data.standardize else {}
    for store in self.stores.values():
      if self.feature_stats:
        store.standardize(self.feature_stats)
    self.model = self.method.create(config, self.feature_dims, nnx.Rngs(config.seed))
    self.records_path = self.workdir / "phases.json"
    self.records: list[dict] = fileio.read_json(self.records_path, [])
    self._writer = None

  # Logging ------------------------------------------------------------------------------------
  @property
  def writer(self):
    if self._writer is None and jax.process_index() == 0:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._writer = SummaryWriter(str(self.workdir / "tensorboard"))
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
    if self.records:
      last = self.records[-1]
      print(f"resuming {self.workdir} after {len(self.records)} finished phases "
            f"(last: {last['name']})", flush=True)
      ckpt = self._phase_checkpoints(last["name"])
      ckpt.restore_best_into(self.model)
      ckpt.close()
    while (phase := self.method.plan(self.config, self.records)) is not None:
      if any(r["name"] == phase.name for r in self.records):
        raise RuntimeError(f"method planned phase {phase.name} twice")
      record = self.run_phase(phase)
      self.records.append(record)
      fileio.write_json(self.records_path, self.records)
    checkpoint.save_model(self.workdir / "final_model", self.model, self.model_meta(),
                          self.feature_stats)
    if self._writer is not None:
      self._writer.close()
    return self.records

  def _check_same_config(self) -> None:
    """Resuming continues the run that is in the workdir: a different config is refused."""
    saved = fileio.read_json(self.workdir / "config.json")
    if saved is None:
      return
    now = fileio.to_jsonable(self.config.to_dict())
    diffs = sorted(_dict_diff(saved, now))
    if diffs:
      raise errors.ConfigError(
          f"{self.workdir} holds a run trained with another config ({'; '.join(diffs[:8])}); "
          "train in a new --workdir, or rerun with the same config to resume")

  def model_meta(self) -> dict:
    return {"method": self.config.method, "feature_dims": self.feature_dims,
            "modalities": list(self.modalities), "targets": list(self.targets),
            "feature_manifest": self.feature_manifest,
            "phases": [r["name"] for r in self.records]}

  def _phase_checkpoints(self, name: str) -> checkpoint.PhaseCheckpoints:
    c = self.config.checkpoint
    return checkpoint.PhaseCheckpoints(
        self.workdir / "checkpoints" / name.replace("/", "__"), keep=c.keep,
        best_metric=c.best_metric, best_mode=c.best_mode)

  def validate(self, phase: Phase, splits=("validation", "test")) -> dict[str, dict]:
    """Per-second metrics of the phase's forward: validation during training (model selection),
    validation and test at the end of the phase (the ablation table)."""
    d = self.config.data
    predictor = ClipPredictor(self.model, phase.forward, self.mesh)
    out = {}
    for split in splits:
      if split not in self.stores:
        continue
      store = self.stores[split]
      clips = predictor.film_clips(store, clip_seconds=d.clip_seconds, num_clips=phase.num_clips,
                                   batch_size=d.eval_batch_size)
      out[split] = score(store, phase.target, clips_to_seconds(store, clips, d.clip_seconds))
    return out

  def run_phase(self, phase: Phase) -> dict:
    cfg, d = self.config, self.config.data
    t0 = time.time()
    logging.info("phase %s: %s", phase.name, phase.info or "")
    print(f"== phase {phase.name} ({phase.steps} steps) {phase.info or ''}", flush=True)
    ckpt = self._phase_checkpoints(phase.name)
    if phase.fit is not None:
      if ckpt.best_step() is None:
        phase.fit(self.model, self.stores["train"], self.stores.get("validation"))
        val = self.validate(phase, ("validation",) if "validation" in self.stores else ("test",))
        ckpt.save_best(1, checkpoint.model_pure_state(self.model),
                            _flat_metrics(val.get("validation", val.get("test"))))
        ckpt.wait()
      ckpt.restore_best_into(self.model)
      ckpt.close()
      return self._record(phase, self.validate(phase), 1, t0)

    graphdef, train_state, frozen_state = nnx.split(self.model, phase.trainable, ...)
    if not jax.tree.leaves(train_state):
      raise errors.ConfigError(f"phase {phase.name} selects no trainable parameters")
    tx = optax.chain(optax.clip_by_global_norm(cfg.train.grad_clip),
                     optax.adam(phase.learning_rate))
    opt_state = tx.init(train_state)
    start = 0
    if ckpt.latest_step() is not None:
      start, pure, opt_state, _ = ckpt.restore_latest(
          checkpoint.model_pure_state(self.model), opt_state)
      checkpoint.load_pure_state(self.model, pure)
      print(f"   resumed {phase.name} at step {start}", flush=True)
    elif phase.setup is not None:
      phase.setup(self.model)
    if start < phase.steps:
      graphdef, train_state, frozen_state = nnx.split(self.model, phase.trainable, ...)
      # Fresh buffers for what the step donates: no other variable may alias them.
      train_state = jax.tree.map(jnp.copy, train_state)
      replicated = NamedSharding(self.mesh, P())
      train_state, frozen_state, opt_state = jax.device_put(
          (train_state, frozen_state, opt_state), replicated)
      step_fn = make_train_step(graphdef, phase.forward, phase.target, tx)
      batches = input_pipeline.train_batches(
          self.stores["train"], clip_seconds=d.clip_seconds, num_clips_per_window=phase.num_clips,
          batch_size=d.batch_size, seed=cfg.seed + _stable_hash(phase.name), start_step=start,
          stride=d.train_stride)
      eval_every = max(1, min(cfg.train.eval_every_steps or phase.steps, phase.steps))
      ckpt_every = max(1, cfg.checkpoint.every_steps)
      t_last, s_last = time.time(), start
      for step in range(start, phase.steps):
        batch = input_pipeline.shard_batch(next(batches), self.mesh)
        train_state, opt_state, loss = step_fn(train_state, frozen_state, opt_state, batch)
        loss = float(loss)
        if not np.isfinite(loss):
          raise errors.NonFiniteLossError(
              f"phase {phase.name}: loss is {loss} at step {step + 1}; nothing after the last "
              f"checkpoint in {ckpt.directory} is kept. Lower config.train.learning_rate, check "
              "the features for extreme values, or raise config.train.grad_clip")
        done = step + 1
        _fault_injection(phase.name, done)
        if done % cfg.log.every_steps == 0 or done == phase.steps:
          now = time.time()
          rate = (done - s_last) / max(now - t_last, 1e-9)
          eta = (phase.steps - done) / max(rate, 1e-9)
          print(f"   {phase.name} step {done}/{phase.steps} loss {loss:.4f} "
                f"{rate:.2f} steps/s ETA {eta:.0f}s", flush=True)
          self._scalar(f"{phase.name}/train_loss", loss, done)
          self._scalar(f"{phase.name}/steps_per_s", rate, done)
          t_last, s_last = now, done
        if done % eval_every == 0 or done == phase.steps:
          nnx.update(self.model, train_state, frozen_state)
          val = self.validate(phase, ("validation",) if "validation" in self.stores else ("test",))
          for split, m in val.items():
            for k, v in m.items():
              self._scalar(f"{phase.name}/{split}_{k}", v, done)
          if done > (ckpt.best_latest_step() or 0):
            ckpt.save_best(done, checkpoint.model_pure_state(self.model),
                                _flat_metrics(val.get("validation", val.get("test"))))
        if done % ckpt_every == 0 or done == phase.steps:
          nnx.update(self.model, train_state, frozen_state)
          ckpt.save_latest(done, checkpoint.model_pure_state(self.model), opt_state,
                                  {"phase": phase.name, "step": done})
      ckpt.wait()
    ckpt.restore_best_into(self.model)
    best_step = ckpt.best_step()
    ckpt.close()
    return self._record(phase, self.validate(phase), best_step, t0)

  def _record(self, phase: Phase, val: dict, best_step, t0: float) -> dict:
    rec = {"name": phase.name, "target": phase.target, "best_step": best_step,
           "steps": phase.steps, "seconds": round(time.time() - t0, 2), "info": phase.info}
    rec.update(val)
    summary = ", ".join(f"{s} pcc {m['pcc']:.3f} mse {m['mse']:.4f}" for s, m in val.items())
    print(f"   done {phase.name}: {summary}", flush=True)
    return rec


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


def _stable_hash(s: str) -> int:
  return int.from_bytes(s.encode()[:8].ljust(8, b"\0"), "little") % 100_003


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
  """Train mode: all phases, then evaluation of the final model on every split."""
  from emojax import evaluate  # pylint: disable=g-import-not-at-top
  trainer = Trainer(config, workdir)
  trainer.run()
  return evaluate.evaluate_trainer(trainer)
