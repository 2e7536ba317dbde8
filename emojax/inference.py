"""Prediction owned by the harness: a method's `Output`s run over every film or clip of a split.

Training (validation), evaluation, ablations and predict all go through `predict_outputs`, so a
method only says what to compute (`contract.Output`), never how to batch, shard or reassemble it.
Results are per film: per-second arrays (T,) for per-second datasets (clip predictions repeated
over their seconds, after the output's post-processing), one value (or class probabilities) per
clip for per-clip datasets.
"""

from __future__ import annotations

import functools
from typing import Mapping

import jax
import numpy as np
from flax import nnx

from emojax import contract, distributed, errors, input_pipeline, metrics, postprocess


@functools.lru_cache(maxsize=128)
def _jitted(forward, task: contract.Task):
  """One jitted prediction function per (forward, task): outputs -> predictions."""
  def fn(graphdef, state, batch):
    return contract.predictions(task, forward(nnx.merge(graphdef, state), batch, None))
  return jax.jit(fn, static_argnums=0)


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


class Predictor:
  """The model in eval mode, replicated over the mesh, ready for jitted forwards."""

  def __init__(self, model: nnx.Module, mesh):
    model.eval()
    self.graphdef, state = nnx.split(model)
    self.state = distributed.replicate(state, mesh)
    self.mesh = mesh

  def run(self, out: contract.Output, batch: dict, target: str | None = None) -> np.ndarray:
    """The output's predictions of `target` (default: its task's first target) on one batch."""
    target = target or out.task.targets[0]
    if target not in out.task.targets:
      raise errors.ConfigError(f"an Output for {target!r} has a task of {out.task.targets}")
    # Every process holds the whole eval batch: each feeds its devices' rows, all get every row.
    pred = _jitted(out.forward, out.task)(self.graphdef, self.state,
                                          distributed.global_batch(batch, self.mesh))
    return distributed.to_host(pred[target])

  # Per-second datasets -------------------------------------------------------------------------
  def film_sliding(self, out: contract.Output, store: input_pipeline.FilmStore, *,
                   batch_size: int, target: str | None = None) -> list[np.ndarray]:
    """Per film, (T,): each second's prediction from the window of seconds ending at it."""
    res = [np.zeros(int(t), np.float32) for t in store.lengths]
    batch_size = _round_up(batch_size, jax.device_count())
    for batch in input_pipeline.sliding_batches(store, window_seconds=out.sliding_seconds,
                                                batch_size=batch_size):
      pred = self.run(out, batch, target)
      for b in np.flatnonzero(np.asarray(batch["clip_mask"])[:, 0]):
        res[int(batch["film_index"][b])][int(batch["clip_start"][b])] = pred[b, 0]
    return res

  def film_raw(self, out: contract.Output, store: input_pipeline.FilmStore, *, clip_seconds: int,
               batch_size: int, target: str | None = None) -> list[np.ndarray]:
    """Per film, predictions before post-processing: (C,) per clip, or (T,) per second."""
    if out.sliding_seconds:
      return self.film_sliding(out, store, batch_size=batch_size, target=target)
    per_second = out.resolution == "second"
    res = [np.zeros(int(t) if per_second else input_pipeline.num_clips(int(t), clip_seconds),
                    np.float32) for t in store.lengths]
    batch_size = _round_up(batch_size, jax.device_count())
    l = out.num_clips
    for batch in input_pipeline.eval_batches(store, clip_seconds=clip_seconds,
                                             num_clips_per_window=l, batch_size=batch_size):
      pred = self.run(out, batch, target)
      for b in range(batch_size):
        f, c0 = int(batch["film_index"][b]), int(batch["clip_start"][b])
        for k in range(l):
          if not batch["clip_mask"][b, k]:
            continue
          if per_second:
            s0 = (c0 + k) * clip_seconds
            n = int(batch["second_mask"][b, k].sum())
            res[f][s0:s0 + n] = pred[b, k, :n]
          else:
            res[f][c0 + k] = pred[b, k]
    return res

  def film_seconds(self, out: contract.Output, store: input_pipeline.FilmStore, raw=None, *,
                   clip_seconds: int, batch_size: int) -> list[np.ndarray]:
    """Per film, per-second predictions (T,) after the output's post-processing."""
    if raw is None:
      raw = self.film_raw(out, store, clip_seconds=clip_seconds, batch_size=batch_size)
    res = []
    for r, t in zip(raw, store.lengths):
      r = out.postprocess(r) if out.postprocess is not None else r
      res.append(r if out.resolution == "second" or out.sliding_seconds
                 else postprocess.repeat_to_seconds(r, int(t), clip_seconds))
    return res

  # Per-clip datasets ---------------------------------------------------------------------------
  def clip_values(self, out: contract.Output, store: input_pipeline.ClipStore, *,
                  batch_size: int, target: str | None = None) -> np.ndarray:
    """(N,) values or (N, C) class probabilities, one row per clip of the store."""
    batch_size = _round_up(batch_size, jax.device_count())
    rows = []
    for batch in input_pipeline.clip_eval_batches(store, batch_size=batch_size):
      pred = self.run(out, batch, target)
      rows.append(pred[np.asarray(batch["index"]) >= 0])
    res = np.concatenate(rows)
    if out.postprocess is not None:
      res = out.postprocess(res)
    return res


def predict_outputs(model: nnx.Module, outputs: Mapping[str, contract.Output], store, mesh, *,
                    clip_seconds: int, batch_size: int, cache: dict | None = None) -> dict:
  """{target: per film (T,) per-second predictions | per clip (N,) / (N, C)} of a split.

  `cache` (shared between calls) keeps the raw predictions of outputs with the same `key`, so
  variants that differ only in post-processing run the network once.
  """
  predictor = Predictor(model, mesh)
  cache = {} if cache is None else cache
  res = {}
  for target, out in outputs.items():
    if store.unit == "clip":
      res[target] = predictor.clip_values(out, store, batch_size=batch_size, target=target)
      continue
    key = (out.key, target, store.name) if out.key else None
    raw = cache.get(key) if key else None
    if raw is None:
      raw = predictor.film_raw(out, store, clip_seconds=clip_seconds, batch_size=batch_size,
                               target=target)
      if key:
        cache[key] = raw
    res[target] = predictor.film_seconds(out, store, raw, clip_seconds=clip_seconds,
                                         batch_size=batch_size)
  return res


def score(task: contract.Task, store, preds: Mapping[str, object]) -> dict:
  """Validation metrics of a phase: per target, pooled and mean-per-film, and `score`: the task's
  best metric averaged over its targets (what selects the best step)."""
  out = {}
  for target in task.targets:
    if store.unit == "clip":
      key = task.label_key(target)
      true = store.labels[key]
      m = metrics.clip_metrics(task.kind, true, np.asarray(preds[target]), store.film_ids)
    else:
      m = metrics.film_metrics(store.labels[target], preds[target], store.film_ids)
    out[target] = m
  if len(task.targets) == 1:
    flat = dict(out[task.targets[0]])
  else:
    flat = {}
    for k in out[task.targets[0]]:
      vals = [out[t][k] for t in task.targets]
      if all(isinstance(v, (int, float)) for v in vals):
        flat[k] = float(np.mean(vals))
    for t in task.targets:
      flat.update({f"{t}_{k}": v for k, v in out[t].items() if isinstance(v, (int, float))})
  if task.best_metric not in flat:
    raise errors.ConfigError(f"best metric {task.best_metric!r} was not computed (have "
                             f"{sorted(flat)}); fix config.checkpoint.best_metric")
  return {k: v for k, v in flat.items() if isinstance(v, (int, float))}
