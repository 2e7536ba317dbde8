"""The one Orbax module: every checkpoint emojax writes or reads goes through here.

Layout of a training workdir:
  checkpoints/<phase>/latest/<step>/   model state + optimizer state + meta (keep N, for resuming)
  checkpoints/<phase>/best/<step>/     model state of the best validation score of the phase (keep 1)
Everything else (phase records, manifests) is plain JSON next to it.

What is kept (`config.checkpoint.finished`, `prune_phases`): the running phase keeps its latest
`config.checkpoint.keep` steps and its best; when the next phase starts, a finished phase's latest
steps (optimizer state, only for resuming it) are deleted, and with "last" (the default) so is the
best of every finished phase but the newest (resume restores only that one; the final model holds
the rest). When the run ends only the last phase's best and `final_model/` remain. `disk_estimate`
tells the largest and final size of that from the model's parameters, printed before training.

Damaged checkpoints (a deleted or truncated data file, removed or garbage metadata) raise
`DamagedCheckpointError` (a DataError) naming the step folder and what to delete or rerun. Resuming
a phase falls back to its newest latest step that still reads (Orbax keeps `config.checkpoint.keep`
of them); the damaged newer steps are moved aside to `<phase>/damaged/`, never deleted.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
import warnings
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts
from flax import nnx

from emojax import distributed, errors


_READ_ONLY = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False)


class DamagedCheckpointError(errors.DataError):
  """A checkpoint on disk cannot be read (files deleted, truncated or garbled)."""


class DamagedCheckpointWarning(UserWarning):
  """A damaged latest checkpoint was skipped; training resumes from an older step."""


def _cause(e: BaseException) -> str:
  """The first line of an Orbax/TensorStore error, short enough for one message."""
  text = " ".join(str(e).split()) or type(e).__name__
  return text if len(text) <= 240 else text[:237] + "..."


def _check_readable(step_dir: pathlib.Path, items: tuple[str, ...]) -> None:
  """Reads every stored value of the array items of a step, one at a time, and raises
  DamagedCheckpointError at the first missing, truncated or unreadable file.

  Run before Orbax restores: Orbax reads all arrays concurrently, and when one read fails the
  others' callbacks land on a closed event loop and print a dozen tracebacks. Reading the OCDBT
  key-value store synchronously costs one more pass over the step (milliseconds for emojax's
  models).
  """
  for item in items:
    item_dir = step_dir / item
    if not item_dir.is_dir():
      raise DamagedCheckpointError(f"checkpoint {step_dir} is damaged (its {item!r} folder is "
                                   "missing)")
    uses_ocdbt = any(item_dir.glob("ocdbt.process_*")) or (item_dir / "d").is_dir()
    if not uses_ocdbt:
      continue  # another storage layout: Orbax's own restore reports problems
    if not (item_dir / "manifest.ocdbt").is_file():
      raise DamagedCheckpointError(
          f"checkpoint {step_dir} is damaged ({item_dir / 'manifest.ocdbt'} is missing)")
    try:
      kv = ts.KvStore.open({"driver": "ocdbt", "base": f"file://{item_dir}/"}).result()
      for key in kv.list().result():
        if kv.read(key).result().state != "value":
          raise ValueError(f"value {key!r} is missing")
    except (ValueError, OSError) as e:
      raise DamagedCheckpointError(f"checkpoint {step_dir} is damaged ({_cause(e)})") from None


def _damaged_or_misfit(step_dir: pathlib.Path, error: Exception,
                       raw_restore: Callable[[], Any]) -> Exception:
  """The error to raise when restoring `step_dir` failed: a restore of what was saved, without a
  target structure, tells a damaged checkpoint (it fails too) from one of another model (it
  works: the config differs)."""
  try:
    raw_restore()
  except Exception:  # pylint: disable=broad-except
    return DamagedCheckpointError(f"checkpoint {step_dir} is damaged ({_cause(error)})")
  return errors.ConfigError(
      f"checkpoint {step_dir} does not fit the model built from this config ({_cause(error)}); "
      "evaluate with the config the checkpoint was trained with (it is saved as config.json in "
      "the workdir)")


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
    """(step, model, optimizer state, meta) of the newest latest step that reads.

    Damaged newer steps are moved to `<phase>/damaged/` with a DamagedCheckpointWarning (so the
    resumed run can save those steps again); when none reads, DamagedCheckpointError says what to
    delete.
    """
    args = ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(model_pure_like)),
        opt=ocp.args.StandardRestore(_abstract(opt_state_like)),
        meta=ocp.args.JsonRestore())
    steps = sorted(self._latest.all_steps(), reverse=True)
    damaged: list[tuple[int, str]] = []
    for step in steps:
      try:
        _check_readable(self.directory / "latest" / str(step), ("model", "opt"))
      except DamagedCheckpointError as e:
        damaged.append((step, str(e).split(" is damaged ", 1)[-1]))
        continue
      try:
        restored = self._latest.restore(step, args=args)
      except Exception as e:  # pylint: disable=broad-except
        error = _damaged_or_misfit(self.directory / "latest" / str(step), e,
                                   lambda s=step: self._raw_restore_latest(s))
        if not isinstance(error, DamagedCheckpointError):
          raise error from e
        damaged.append((step, _cause(e)))
        continue
      if damaged:
        moved = self._move_aside("latest", [s for s, _ in damaged])
        warnings.warn(
            f"phase checkpoints {self.directory}: latest step(s) "
            f"{', '.join(str(s) for s, _ in damaged)} are damaged ({damaged[0][1]}); resuming from "
            f"step {step}. The damaged steps were moved to {moved}.", DamagedCheckpointWarning,
            stacklevel=2)
      return step, restored["model"], restored["opt"], restored["meta"]
    raise DamagedCheckpointError(
        f"every latest checkpoint of {self.directory / 'latest'} is damaged (steps "
        f"{', '.join(str(s) for s, _ in damaged)}; {damaged[0][1] if damaged else 'none found'}). "
        f"Delete {self.directory} and rerun the same command to train this phase again from its "
        "start (finished phases are kept)")

  def _raw_restore_latest(self, step: int) -> None:
    self._latest.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(), opt=ocp.args.StandardRestore(),
        meta=ocp.args.JsonRestore()))

  def _move_aside(self, kind: str, steps: list[int]) -> pathlib.Path:
    """Moves damaged step folders out of the manager's sight (kept for inspection)."""
    target = self.directory / "damaged" / time.strftime("%Y%m%d-%H%M%S")
    if distributed.is_main():  # several processes: one moves, the others wait for it
      target.mkdir(parents=True, exist_ok=True)
      for step in steps:
        shutil.move(os.fspath(self.directory / kind / str(step)),
                    os.fspath(target / f"{kind}_{step}"))
    distributed.barrier(f"move aside {self.directory / kind}")
    (self._latest if kind == "latest" else self._best).reload()
    return target

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
    try:
      _check_readable(self.directory / "best" / str(step), ("model",))
      restored = self._best.restore(step, args=ocp.args.Composite(
          model=ocp.args.StandardRestore(_abstract(model_pure_like))))
    except Exception as e:  # pylint: disable=broad-except
      error = e if isinstance(e, DamagedCheckpointError) else _damaged_or_misfit(
          self.directory / "best" / str(step), e,
          lambda: self._best.restore(step, args=ocp.args.Composite(
              model=ocp.args.StandardRestore())))
      if isinstance(error, DamagedCheckpointError):
        error = DamagedCheckpointError(
            f"{error}: the best model of this phase is lost. Train again in a new --workdir, or "
            f"delete {self.directory} and remove this phase's record (and every later one) from "
            "the workdir's phases.json, then rerun the same command to retrain from this phase")
      raise error from None
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


def _final_hint(directory: pathlib.Path) -> str:
  return (f"Delete {directory} and rerun the training command with the same --workdir and config: "
          "finished phases are not trained again and the final model is written anew")


def read_model_meta(directory: str | os.PathLike) -> tuple[dict, dict]:
  """The metadata and feature statistics of a `save_model` checkpoint, without building a model."""
  directory = pathlib.Path(directory).absolute()
  if not directory.exists():
    raise errors.ConfigError(f"checkpoint directory {directory} does not exist; train first or "
                             "point --checkpoint at the 'final_model' folder of a training workdir")
  if not directory.is_dir():
    raise errors.ConfigError(f"checkpoint {directory} is a file; point --checkpoint at the "
                             "'final_model' folder of a training workdir")
  with ocp.CheckpointManager(directory, options=_READ_ONLY) as mngr:
    step = mngr.latest_step()
    if step is None:
      raise errors.ConfigError(f"no checkpoint found in {directory}")
    has_stats = (directory / str(step) / "feature_stats").exists()
    args = dict(meta=ocp.args.JsonRestore())
    if has_stats:
      args["feature_stats"] = ocp.args.StandardRestore()
    try:
      if has_stats:
        _check_readable(directory / str(step), ("feature_stats",))
      restored = mngr.restore(step, args=ocp.args.Composite(**args))
    except DamagedCheckpointError as e:
      raise DamagedCheckpointError(f"{e}. {_final_hint(directory)}") from None
    except Exception as e:  # pylint: disable=broad-except
      raise DamagedCheckpointError(f"checkpoint {directory / str(step)} is damaged "
                                   f"({_cause(e)}). {_final_hint(directory)}") from e
  if not isinstance(restored["meta"], dict):
    raise DamagedCheckpointError(f"checkpoint {directory / str(step)} is damaged (its meta is not "
                                 f"a JSON object). {_final_hint(directory)}")
  stats = restored["feature_stats"] if has_stats else None
  return restored["meta"], jax.tree.map(np.asarray, stats or {})


def check_fits(directory: str | os.PathLike, meta: dict, *, method: str,
               modalities, targets) -> None:
  """Raises ConfigError when a `save_model` checkpoint was trained for other streams, targets or
  method than a config asks for (instead of a KeyError while building the model)."""
  directory = pathlib.Path(directory).absolute()
  diffs = []
  if meta.get("method") not in (None, method):
    diffs.append(f"method {meta.get('method')!r} (config: {method!r})")
  saved_mods = sorted(meta.get("feature_dims") or meta.get("modalities") or [])
  if saved_mods and sorted(modalities) != saved_mods:
    diffs.append(f"streams {saved_mods} (config: {sorted(modalities)})")
  if meta.get("targets") and sorted(meta["targets"]) != sorted(targets):
    diffs.append(f"targets {sorted(meta['targets'])} (config: {sorted(targets)})")
  if diffs:
    run = directory.parent
    hint = (f"--workdir={run} (its config.json)" if (run / "config.json").exists()
            else "the config it was trained with")
    raise errors.ConfigError(
        f"checkpoint {directory} was trained with {'; '.join(diffs)}: it does not fit this config. "
        f"Evaluate it with {hint}, or pass the --checkpoint of a run trained with this config")


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
    try:
      _check_readable(directory / str(step), ("model",))
      restored = mngr.restore(step, args=ocp.args.Composite(
          model=ocp.args.StandardRestore(_abstract(model_pure_state(model))),
          meta=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      error = e if isinstance(e, DamagedCheckpointError) else _damaged_or_misfit(
          directory / str(step), e, lambda: mngr.restore(step, args=ocp.args.Composite(
              model=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())))
      if isinstance(error, DamagedCheckpointError):
        error = DamagedCheckpointError(f"{error}. {_final_hint(directory)}")
      raise error from None
  load_pure_state(model, restored["model"])
  return restored["meta"]


FINISHED_POLICIES = ("last", "best", "all")


def check_policy(policy: str) -> None:
  if policy not in FINISHED_POLICIES:
    raise errors.ConfigError(
        f"config.checkpoint.finished is {policy!r}; use one of {', '.join(FINISHED_POLICIES)} "
        "(what the finished phases keep: the newest one's best, every best, or everything)")


def prune_phases(checkpoints_dir: str | os.PathLike, finished: list[str], policy: str) -> list[str]:
  """Deletes what the finished phases (in order, names as in phases.json) no longer need.

  "last": every finished phase loses its latest steps, and all but the newest lose their best
  (resume restores only the newest's best); "best": every finished phase keeps its best; "all":
  nothing is deleted. Returns the deleted folders. Only process 0 deletes; all wait for it.
  """
  check_policy(policy)
  root = pathlib.Path(checkpoints_dir).absolute()
  doomed: list[pathlib.Path] = []
  if policy != "all":
    for i, name in enumerate(finished):
      phase = root / name.replace("/", "__")
      doomed.append(phase / "latest")
      if policy == "last" and i < len(finished) - 1:
        doomed.append(phase / "best")
  doomed = [d for d in doomed if d.exists()]
  if distributed.is_main():
    for d in doomed:
      shutil.rmtree(d)
      if d.parent.is_dir() and not any(d.parent.iterdir()):
        d.parent.rmdir()
  distributed.barrier(f"prune {root}")
  return [os.fspath(d) for d in doomed]


def state_bytes(tree: Any) -> tuple[int, int]:
  """(number of values, bytes) of the arrays of a tree (a model's pure state, an optimizer's)."""
  count = size = 0
  for x in jax.tree.leaves(tree):
    if not hasattr(x, "shape") or jax.dtypes.issubdtype(getattr(x, "dtype", None),
                                                         jax.dtypes.prng_key):
      continue
    count += int(np.prod(x.shape))
    size += int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
  return count, size


def disk_estimate(model_bytes: int, opt_bytes: int, *, keep: int,
                  policy: str) -> tuple[int, int, int]:
  """(at most while a phase runs, when training ends, more per finished phase) bytes of
  checkpoints a run keeps on disk.

  A latest step holds the model and the optimizer state, a best step and the final model the model
  only. While a phase runs: its `keep` latest and its best, the previous phase's best and the final
  model (written once at the end). "best" keeps one model more per finished phase, "all" its
  latest steps too.
  """
  latest = model_bytes + opt_bytes
  check_policy(policy)
  largest = keep * latest + 3 * model_bytes
  end = 2 * model_bytes
  per_finished = {"last": 0, "best": model_bytes, "all": keep * latest + model_bytes}[policy]
  return largest, end, per_finished


def human_bytes(n: float) -> str:
  for unit in ("B", "KB", "MB"):
    if n < 1000:
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1000
  return f"{n:.2f} GB"


def disk_line(model_pure: dict, *, keep: int, policy: str) -> str:
  """The line printed before training: the model's size and the checkpoints the run keeps (the
  optimizer state counted as Adam's two moments of every parameter, its most)."""
  count, model_bytes = state_bytes(model_pure)
  opt_bytes = 2 * model_bytes
  largest, end, per = disk_estimate(model_bytes, opt_bytes, keep=keep, policy=policy)
  more = f" + {human_bytes(per)} per finished phase" if per else ""
  return (f"checkpoints: model {count:,} values ({human_bytes(model_bytes)}); keeping "
          f"config.checkpoint.keep={keep} latest + the best of the running phase, "
          f"config.checkpoint.finished={policy!r}: at most about {human_bytes(largest)}{more} on "
          f"disk, {human_bytes(end)}{more} when training ends")
