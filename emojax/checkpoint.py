"""The one Orbax module: every checkpoint emojax writes or reads goes through here.

Layout of a training workdir:
  checkpoints/<phase>/latest/<step>/   model state + optimizer state + meta (keep N, for resuming)
  checkpoints/<phase>/best/<step>/     model state of the best validation score of the phase (keep 1)
Everything else (phase records, manifests) is plain JSON next to it.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from emojax import errors


_READ_ONLY = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False)


def _abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def model_pure_state(model: nnx.Module) -> dict:
  """All variables of the model as a nested dict of arrays (what we save)."""
  return nnx.to_pure_dict(nnx.state(model))


def load_pure_state(model: nnx.Module, pure: dict) -> None:
  """Writes a saved nested dict of arrays back into the model, in place."""
  state = nnx.state(model)
  try:
    nnx.replace_by_pure_dict(state, pure)
  except (KeyError, ValueError) as e:
    raise errors.ConfigError(
        f"checkpoint does not fit the model built from this config ({e}); evaluate with the "
        "config the checkpoint was trained with (it is saved as config.json in the workdir)") from e
  nnx.update(model, state)


class PhaseCheckpoints:
  """Latest-N (for resume) and best-1 (by a validation metric) checkpoints of one training phase."""

  def __init__(self, directory: str | os.PathLike, *, keep: int, best_metric: str,
               best_mode: str):
    self.directory = pathlib.Path(directory).absolute()
    self.best_metric = best_metric
    self._latest = ocp.CheckpointManager(
        self.directory / "latest",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))
    self._best = ocp.CheckpointManager(
        self.directory / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m[best_metric], best_mode=best_mode,
            keep_checkpoints_without_metrics=False, enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def save_latest(self, step: int, model_pure: dict, opt_state: Any, meta: dict) -> None:
    self._latest.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(model_pure),
        opt=ocp.args.StandardSave(opt_state),
        meta=ocp.args.JsonSave(meta)))

  def restore_latest(self, model_pure_like: dict, opt_state_like: Any) -> tuple[int, dict, Any, dict]:
    step = self._latest.latest_step()
    restored = self._latest.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(model_pure_like)),
        opt=ocp.args.StandardRestore(_abstract(opt_state_like)),
        meta=ocp.args.JsonRestore()))
    return step, restored["model"], restored["opt"], restored["meta"]

  def save_best(self, step: int, model_pure: dict, metrics: dict[str, float]) -> None:
    value = metrics.get(self.best_metric)
    if value is None or not np.isfinite(value):
      return  # an undefined score (e.g. PCC of a constant prediction) never becomes "best"
    self._best.save(step, args=ocp.args.Composite(model=ocp.args.StandardSave(model_pure)),
                    metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)})

  def best_step(self) -> int | None:
    return self._best.best_step()

  def best_latest_step(self) -> int | None:
    """The newest step evaluated into the best manager (to never save a step twice on resume)."""
    return self._best.latest_step()

  def restore_best(self, model_pure_like: dict) -> dict:
    step = self._best.best_step()
    if step is None:
      raise errors.ConfigError(f"no best checkpoint in {self.directory / 'best'}")
    restored = self._best.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(model_pure_like))))
    return restored["model"]

  def restore_best_into(self, model: nnx.Module) -> None:
    load_pure_state(model, self.restore_best(model_pure_state(model)))

  def wait(self) -> None:
    self._latest.wait_until_finished()
    self._best.wait_until_finished()

  def close(self) -> None:
    self._latest.close()
    self._best.close()


def save_model(directory: str | os.PathLike, model: nnx.Module, meta: dict,
               feature_stats: dict[str, dict[str, np.ndarray]] | None = None) -> None:
  """Saves a standalone model checkpoint (the final model of a run): the model's variables, its
  metadata (method, feature dims, feature manifest) and the input standardisation statistics."""
  directory = pathlib.Path(directory).absolute()
  items = dict(model=ocp.args.StandardSave(model_pure_state(model)), meta=ocp.args.JsonSave(meta))
  if feature_stats:
    items["feature_stats"] = ocp.args.StandardSave(dict(feature_stats))
  with ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
      max_to_keep=1, create=True, enable_async_checkpointing=False)) as mngr:
    step = (mngr.latest_step() or 0) + 1
    mngr.save(step, args=ocp.args.Composite(**items))
    mngr.wait_until_finished()


def read_model_meta(directory: str | os.PathLike) -> tuple[dict, dict]:
  """The metadata and feature statistics of a `save_model` checkpoint, without building a model."""
  directory = pathlib.Path(directory).absolute()
  if not directory.exists():
    raise errors.ConfigError(f"checkpoint directory {directory} does not exist; train first or "
                             "point --checkpoint at the 'final_model' folder of a training workdir")
  with ocp.CheckpointManager(directory, options=_READ_ONLY) as mngr:
    step = mngr.latest_step()
    if step is None:
      raise errors.ConfigError(f"no checkpoint found in {directory}")
    has_stats = (directory / str(step) / "feature_stats").exists()
    args = dict(meta=ocp.args.JsonRestore())
    if has_stats:
      args["feature_stats"] = ocp.args.StandardRestore()
    restored = mngr.restore(step, args=ocp.args.Composite(**args))
  stats = restored["feature_stats"] if has_stats else None
  return restored["meta"], jax.tree.map(np.asarray, stats or {})


def restore_model(directory: str | os.PathLike, model: nnx.Module) -> dict:
  """Restores a checkpoint written by `save_model` (or a phase's best) into `model`; returns meta."""
  directory = pathlib.Path(directory).absolute()
  if not directory.exists():
    raise errors.ConfigError(f"checkpoint directory {directory} does not exist")
  with ocp.CheckpointManager(directory, options=_READ_ONLY) as mngr:
    step = mngr.latest_step()
    if step is None:
      raise errors.ConfigError(
          f"no checkpoint found in {directory}; train first or point --checkpoint at a "
          "'final_model' folder of a training workdir")
    restored = mngr.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(model_pure_state(model))),
        meta=ocp.args.JsonRestore()))
  load_pure_state(model, restored["model"])
  return restored["meta"]
