"""The one reader of the config layout (configs/common.py) that every method shares.

Blocks: `model`, `inputs` (streams, unit), `train` (steps / epochs, eval_every_steps /
eval_every_epochs, patience, loss ...), `eval` (post-processing, ablation rows), `optim`, and
`per_target.<target>.<block>.<key>`, which overrides `<block>.<key>` for one target. Imports no
model and no config: configs write the layout, models read it through here.

`upgrade` maps the config.json of a workdir written before this layout onto it, so evaluate and
predict still load old runs.
"""

from __future__ import annotations

from typing import Mapping

import ml_collections

from emojax import contract, errors

PER_TARGET_BLOCKS = ("model", "inputs", "train", "eval")


def for_target(config: ml_collections.ConfigDict, target: str) -> ml_collections.ConfigDict:
  """The `model` / `inputs` / `train` / `eval` blocks of `target`: shared keys with
  `config.per_target.<target>` laid over them."""
  merged = {b: dict(config[b].to_dict()) if b in config else {} for b in PER_TARGET_BLOCKS}
  per = config.get("per_target", None)
  over = per.get(target, None) if per is not None else None
  if over is not None:
    for b, keys in over.to_dict().items():
      if b not in merged:
        raise errors.ConfigError(f"config.per_target.{target}.{b}: per-target keys live in "
                                 f"{PER_TARGET_BLOCKS}; move them there")
      merged[b].update(keys)
  return ml_collections.ConfigDict(merged)


def streams(config: ml_collections.ConfigDict, target: str | None = None) -> tuple[str, ...]:
  """The dataset streams of `target`, or of every target of the config (in order, once each)."""
  targets = (target,) if target else tuple(config.targets)
  return tuple(dict.fromkeys(s for t in targets for s in for_target(config, t).inputs.streams))


def task(config: ml_collections.ConfigDict, targets=None, **fields) -> contract.Task:
  """The Task of `targets` (default the config's), best checkpoint by `config.checkpoint`."""
  c = config.checkpoint
  return contract.Task(tuple(targets or config.targets), best_metric=c.best_metric,
                       best_mode=c.best_mode, **fields)


# ------------------------------------------------------------------------------------------------
# Workdirs written before the layout: their config.json mapped onto it.

_TRAIN_KEYS = dict(steps=0, epochs=0.0, eval_every_steps=0, eval_every_epochs=0.0, patience=0)


def _move(d: dict, src: str, dst: str) -> None:
  """Moves d[src] (dotted) to d[dst], creating blocks; nothing when src is absent."""
  *sp, sk = src.split(".")
  node = d
  for p in sp:
    node = node.get(p)
    if not isinstance(node, dict):
      return
  if sk not in node:
    return
  value = node.pop(sk)
  *dp, dk = dst.split(".")
  node = d
  for p in dp:
    node = node.setdefault(p, {})
  node[dk] = value


# Harness keys added since a workdir may have been written, with the value that keeps its meaning.
ADDED_KEYS = {"checkpoint": {"finished": "last"}, "sweep": {"columns": []},
              "train": {"ensemble_members": []}, "data": {"fraction": 1.0},
              "eval": {"plots": True}}


# A method's keys added since, with the value that keeps a saved run's meaning (resuming it under
# the new default is refused in one line naming the key; evaluating it builds the saved form).
METHOD_ADDED_KEYS = {
    # issue 23: the head on each training window's loss second only; runs saved before ran it on
    # every second of the window.
    "gru_moe": {"model": {"head_seconds": "all"}},
}


def upgrade(saved: Mapping) -> dict:
  """A config dict in the layout; `saved` may be a config.json written before it (or before a
  harness key of ADDED_KEYS or a method key of METHOD_ADDED_KEYS existed)."""
  d = _upgrade_layout(saved)
  for block, keys in [*ADDED_KEYS.items(),
                      *METHOD_ADDED_KEYS.get(d.get("method"), {}).items()]:
    if isinstance(d.get(block), Mapping):
      d[block] = {**keys, **d[block]}
  return d


def _upgrade_layout(saved: Mapping) -> dict:
  d = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in saved.items()}
  if "inputs" in d or "per_target" in d:
    return d
  method = d.get("method")
  if method == "two_timescale":
    for t in ("valence", "arousal"):
      for src, dst in (("modalities", "inputs.streams"), ("context", "model.context"),
                       ("num_clips", "model.num_clips"), ("ema_beta", "eval.ema_beta"),
                       ("ema_betas_ablation", "eval.ema_betas_ablation")):
        _move(d, f"{t}.{src}", f"per_target.{t}.{dst}")
      d.pop(t, None)
    if "learning_rate" in d.get("train", {}):
      d.setdefault("optim", {})
      _move(d, "train.learning_rate", "optim.learning_rate")
    _move(d, "train.steps_per_phase", "train.steps")
    _move(d, "train.inter_steps", "train.inter_clip_steps")
    d["sweep"] = dict(d.get("sweep", {}))
    d["sweep"]["grid"] = [[_OLD_TTS_PATHS.get(p, p), v] for p, v in d["sweep"].get("grid", ())]
  elif method == "ridge":
    for t in ("valence", "arousal"):
      _move(d, f"{t}.modalities", f"per_target.{t}.inputs.streams")
      d.pop(t, None)
    _move(d, "ridge.alphas", "model.alphas")
    d.pop("ridge", None)
  elif method == "attendaffectnet":
    _move(d, "loss", "train.loss")
    _move(d, "aan.streams", "inputs.streams")
    _move(d, "aan.unit", "inputs.unit")
    d["model"] = d.pop("aan", {})
    # Keys added later (issue 19): configs saved before them ran the five-stream released form.
    for k, v in (("norm", "pre"), ("feed_forward", "relu"), ("head_activation", "none")):
      d["model"].setdefault(k, v)
    _move(d, "train.eval_every", "train.eval_every_steps")
  elif method == "fusion_lstm":
    model = d.get("model", {})
    d["inputs"] = {"streams": [model.pop("visual_stream", "keyframe"),
                               model.pop("audio_stream", "spectrogram_image")]}
  elif method == "gru_moe":
    _move(d, "modalities", "inputs.streams")
    _move(d, "postprocess.kind", "eval.postprocess")
    for k in ("butterworth_order", "butterworth_cutoff_hz", "moving_average_seconds"):
      _move(d, f"postprocess.{k}", f"eval.{k}")
    d.pop("postprocess", None)
    _move(d, "train.eval_every", "train.eval_every_steps")
  elif method == "video_convnets":
    model = d.get("model", {})
    d["inputs"] = {"streams": [model.pop("stream")]} if "stream" in model else {}
  else:
    return d  # a method of your own: its config.json is read as written
  d["train"] = {**_TRAIN_KEYS, **d.get("train", {})}
  for b in ("model", "inputs", "eval", "per_target"):
    d.setdefault(b, {})
  d["inputs"].setdefault("streams", [])
  return d


_OLD_TTS_PATHS = {f"{t}.{k}": f"per_target.{t}.{b}.{k}" for t in ("valence", "arousal")
                  for b, k in (("model", "num_clips"), ("model", "context"),
                               ("eval", "ema_beta"))}
