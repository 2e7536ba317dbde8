"""Prediction owned by the harness: a method's `Output`s run over every film or clip of a split.

Training (validation), evaluation, ablations and predict all go through `predict_outputs`, so a
method only says what to compute (`contract.Output`), never how to batch, shard or reassemble it.
What a prediction is (per film or per clip), how batches are cut and how their rows go back
is the store's (`input_pipeline.Store`): this module only runs the model on the store's batches.
"""

from __future__ import annotations

import functools
from typing import Mapping

import jax
import numpy as np
from flax import nnx

from emojax import contract, distributed, errors, input_pipeline


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


def predict_outputs(model: nnx.Module, outputs: Mapping[str, contract.Output],
                    store: input_pipeline.Store, mesh, *, clip_seconds: int, batch_size: int,
                    cache: dict | None = None) -> dict:
  """{target: the store's predictions of a split} (per film (T,) per-second predictions for a
  FilmStore; per clip (N,) / (N, C) for a ClipStore).

  The walk goes down and comes back once per step: the store gives the batches, the predictor
  runs each (distributed places and gathers it), the store's collector puts the rows back, and
  the store finishes (post-processes, reassembles) them. `cache` (shared between calls) keeps the
  collected predictions of outputs with the same `key`, so variants that differ only in
  post-processing run the network once.
  """
  predictor = Predictor(model, mesh)
  batch_size = _round_up(batch_size, jax.device_count())
  cache = {} if cache is None else cache
  res = {}
  for target, out in outputs.items():
    key = (out.key, target, store.name) if out.key else None
    raw = cache.get(key) if key else None
    if raw is None:
      collector = store.collector(out, clip_seconds=clip_seconds)
      for batch in store.prediction_batches(out, clip_seconds=clip_seconds,
                                            batch_size=batch_size):
        collector.add(batch, predictor.run(out, batch, target))
      raw = collector.result()
      if key:
        cache[key] = raw
    res[target] = store.finish(out, raw, clip_seconds=clip_seconds)
  return res


def score(task: contract.Task, store: input_pipeline.Store, preds: Mapping[str, object]) -> dict:
  """Validation metrics of a phase: per target, pooled and mean-per-film, and `score`: the task's
  best metric averaged over its targets (what selects the best step)."""
  out = store.score(task, {t: preds[t] for t in task.targets})
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
