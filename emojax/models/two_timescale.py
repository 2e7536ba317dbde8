"""Seed 000: two-time-scale bi-LSTMs with residual-based progressive training.

Paper: "Two-time-scale ... residual-based progressive training" (shared/seeds/000_*.txt,
docs: methods.md section 000). Per target (valence, arousal) one `TargetNet`:
- intra-clip: per modality a 2-layer bidirectional LSTM over the clip's seconds; the final step's
  hidden state is the modality feature (2H); modality features are summed; FC1 (+ReLU) gives the
  clip-level multi-modal feature and FC2 (+tanh) the clip prediction ("two FC layers after the sum").
- stage 1: each modality alone with 2 auxiliary FC layers (its own copy of the encoder), ranked by
  validation score; stage 2: modality i's encoder trained with encoders 1..i-1 frozen and 2 fresh
  auxiliary FC layers on the running sum; then fine-tuning of everything (FC1, FC2 and encoders).
- valence: the intra-clip part frozen; a 2-layer bidirectional LSTM over L consecutive clips of
  FC1 features, FC+tanh per clip, loss averaged over the L clips (eq. 3).
- arousal: FC2+tanh per clip, then ema_i = beta ema_{i-1} + (1 - beta) y_i over the film's clips.
Baselines: M1 (`fusion="joint"`: every part trained at once) and M2 (`fusion="decision"`: the average
of the stage-1 modality-specific models).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from emojax import postprocess
from emojax.models.layers import BiLSTM

FUSIONS = ("progressive", "joint", "decision")
CONTEXTS = ("lstm", "ema", "none")


class Head(nnx.Module):
  """Two FC layers: in -> hidden (ReLU) -> 1 (tanh): the auxiliary heads of stages 1 and 2."""

  def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(in_features, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, 1, rngs=rngs)

  def __call__(self, h_NxF: jax.Array) -> jax.Array:
    return jnp.tanh(self.fc2(jax.nn.relu(self.fc1(h_NxF))))[..., 0]


class TargetNet(nnx.Module):
  """The seed-000 network of one target."""

  def __init__(self, dims: dict[str, int], task: ml_collections.ConfigDict,
               model: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.modalities = tuple(task.modalities)
    h, two_h = model.hidden, 2 * model.hidden
    enc = lambda m: BiLSTM(dims[m], h, model.num_layers, rngs=rngs)
    self.encoders = nnx.Dict({m: enc(m) for m in self.modalities})
    # Stage 1's modality-specific models (kept apart so that M2 can be evaluated at any time).
    self.stage1_encoders = nnx.Dict({m: enc(m) for m in self.modalities})
    self.stage1_heads = nnx.Dict(
        {m: Head(two_h, model.aux_hidden, rngs=rngs) for m in self.modalities})
    # Stage 2: fresh auxiliary heads on the running sum, one per progressive step.
    self.progressive_heads = nnx.Dict(
        {m: Head(two_h, model.aux_hidden, rngs=rngs) for m in self.modalities})
    self.fc1 = nnx.Linear(two_h, model.clip_features, rngs=rngs)
    self.fc2 = nnx.Linear(model.clip_features, 1, rngs=rngs)
    if task.context == "lstm":
      self.inter = BiLSTM(model.clip_features, model.inter_hidden, model.num_layers, rngs=rngs)
      self.inter_fc = nnx.Linear(2 * model.inter_hidden, 1, rngs=rngs)

  # Pieces ---------------------------------------------------------------------------------------
  @staticmethod
  def _clips(batch: dict, m: str) -> tuple[jax.Array, jax.Array]:
    x_BxLxSxD = batch["x"][m]
    b, l, s, d = x_BxLxSxD.shape
    return x_BxLxSxD.reshape(b * l, s, d), batch["second_mask"].reshape(b * l, s)

  def encode(self, encoders: nnx.Dict, batch: dict, modalities: Sequence[str]) -> jax.Array:
    """Sum over `modalities` of their encoders' final hidden states: (B*L, 2H)."""
    total = None
    for m in modalities:
      x, mask = self._clips(batch, m)
      _, h_Nx2H = encoders[m](x, mask)
      total = h_Nx2H if total is None else total + h_Nx2H
    return total

  def clip_features(self, batch: dict) -> jax.Array:
    return jax.nn.relu(self.fc1(self.encode(self.encoders, batch, self.modalities)))

  def _per_clip(self, y_N: jax.Array, batch: dict) -> jax.Array:
    b, l = batch["clip_mask"].shape
    return y_N.reshape(b, l)

  # Forwards of the phases: (batch) -> per-clip predictions (B, L) ----------------------------------
  def stage1(self, batch: dict, m: str) -> jax.Array:
    h = self.encode(self.stage1_encoders, batch, (m,))
    return self._per_clip(self.stage1_heads[m](h), batch)

  def decision(self, batch: dict) -> jax.Array:
    return sum(self.stage1(batch, m) for m in self.modalities) / len(self.modalities)

  def progressive(self, batch: dict, order: Sequence[str]) -> jax.Array:
    h = self.encode(self.encoders, batch, order)
    return self._per_clip(self.progressive_heads[order[-1]](h), batch)

  def intra(self, batch: dict) -> jax.Array:
    return self._per_clip(jnp.tanh(self.fc2(self.clip_features(batch)))[..., 0], batch)

  def inter_clip(self, batch: dict) -> jax.Array:
    b, l = batch["clip_mask"].shape
    e_BxLxF = self.clip_features(batch).reshape(b, l, -1)
    y_BxLx2H, _ = self.inter(jax.lax.stop_gradient(e_BxLxF), batch["clip_mask"])
    return jnp.tanh(self.inter_fc(y_BxLx2H))[..., 0]


class TwoTimeScale(nnx.Module):
  def __init__(self, config: ml_collections.ConfigDict, dims: dict[str, int], *, rngs: nnx.Rngs):
    self.nets = nnx.Dict({t: TargetNet({m: dims[m] for m in config[t].modalities}, config[t],
                                       config.model, rngs=rngs) for t in config.targets})


# ----------------------------------------------------------------------------------------------
# The method interface used by emojax.train.


def modalities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return tuple(dict.fromkeys(m for t in config.targets for m in config[t].modalities))


def create(config: ml_collections.ConfigDict, feature_dims: dict[str, int],
           rngs: nnx.Rngs) -> TwoTimeScale:
  _check(config)
  return TwoTimeScale(config, feature_dims, rngs=rngs)


def _check(config: ml_collections.ConfigDict) -> None:
  from emojax import errors  # pylint: disable=g-import-not-at-top
  if config.train.fusion not in FUSIONS:
    raise errors.ConfigError(f"config.train.fusion={config.train.fusion!r}; use one of {FUSIONS}")
  for t in config.targets:
    if config[t].context not in CONTEXTS:
      raise errors.ConfigError(f"config.{t}.context={config[t].context!r}; use one of {CONTEXTS}")


def _under(*prefixes: tuple) -> nnx.filterlib.Filter:
  """nnx filter: the Params whose path starts with one of `prefixes`."""
  def f(path, x):
    return isinstance(x, nnx.Param) and any(tuple(path[:len(p)]) == p for p in prefixes)
  return f


def _net_forward(target: str, method: str, *args):
  def forward(model: TwoTimeScale, batch: dict) -> jax.Array:
    return getattr(model.nets[target], method)(batch, *args)
  return forward


def _copy_stage1_encoder(target: str, m: str):
  def setup(model: TwoTimeScale) -> None:
    net = model.nets[target]
    nnx.update(net.encoders[m], jax.tree.map(jnp.copy, nnx.state(net.stage1_encoders[m])))
  return setup


def stage1_ranking(config: ml_collections.ConfigDict, target: str, done: list[dict]) -> list[str]:
  """Modalities sorted best first by the stage-1 validation score (the paper's training order)."""
  metric, mode = config.train.rank_metric, config.train.rank_mode
  scores = {}
  for r in done:
    if r["name"].startswith(f"{target}/stage1_"):
      split = "validation" if "validation" in r else "test"
      scores[r["info"]["modality"]] = r[split][metric]
  sign = -1.0 if mode == "max" else 1.0
  return sorted(scores, key=lambda m: (sign * _nan_last(scores[m], mode), m))


def _nan_last(v: float, mode: str) -> float:
  if v is None or not np.isfinite(v):
    return -np.inf if mode == "max" else np.inf
  return v


def phases(config: ml_collections.ConfigDict, target: str, done: list[dict]):
  """The phases of one target, in order; some depend on the records of earlier ones."""
  from emojax.train import Phase  # pylint: disable=g-import-not-at-top
  task, tr = config[target], config.train
  p = lambda *a: ("nets", target, *a)
  steps = tr.steps_per_phase
  if tr.fusion in ("progressive", "decision"):
    for m in task.modalities:
      yield Phase(f"{target}/stage1_{m}", target, _net_forward(target, "stage1", m),
                  _under(p("stage1_encoders", m), p("stage1_heads", m)), 1, steps,
                  tr.learning_rate, info={"stage": 1, "modality": m})
  if tr.fusion == "decision":
    return
  if tr.fusion == "progressive":
    order = stage1_ranking(config, target, done)
    for i, m in enumerate(order):
      setup = _copy_stage1_encoder(target, m) if tr.init_from_stage1 else None
      yield Phase(f"{target}/progressive{i + 1}_{m}", target,
                  _net_forward(target, "progressive", tuple(order[:i + 1])),
                  _under(p("encoders", m), p("progressive_heads", m)), 1, steps, tr.learning_rate,
                  setup=setup, info={"stage": 2, "order": order[:i + 1]})
    yield Phase(f"{target}/finetune", target, _net_forward(target, "intra"),
                _under(p("encoders"), p("fc1"), p("fc2")), 1, steps, tr.finetune_learning_rate,
                info={"stage": 2, "order": order})
  else:  # M1: joint feature-level fusion, everything trained at once.
    yield Phase(f"{target}/joint", target, _net_forward(target, "intra"),
                _under(p("encoders"), p("fc1"), p("fc2")), 1, steps, tr.learning_rate,
                info={"stage": "M1"})
  if task.context == "lstm":
    yield Phase(f"{target}/inter_clip", target, _net_forward(target, "inter_clip"),
                _under(p("inter"), p("inter_fc")), task.num_clips, tr.inter_steps,
                tr.learning_rate, info={"num_clips": task.num_clips})


def plan(config: ml_collections.ConfigDict, done: list[dict]):
  names = {r["name"] for r in done}
  for target in config.targets:
    for phase in phases(config, target, done):
      if phase.name not in names:
        return phase
  return None


# ----------------------------------------------------------------------------------------------
# Prediction of whole films (evaluation and predict mode).


def final_forward(config: ml_collections.ConfigDict, target: str):
  """(forward, window length in clips) of the trained network of `target` (before EMA)."""
  task = config[target]
  if config.train.fusion == "decision":
    return _net_forward(target, "decision"), 1
  if task.context == "lstm":
    return _net_forward(target, "inter_clip"), task.num_clips
  return _net_forward(target, "intra"), 1


def postprocess_clips(config: ml_collections.ConfigDict, target: str,
                      clips_C: np.ndarray) -> np.ndarray:
  task = config[target]
  if task.context == "ema":
    return postprocess.ema(clips_C, task.ema_beta)
  return clips_C


def predict(model: TwoTimeScale, config: ml_collections.ConfigDict, store, mesh) -> dict:
  """Per film, per target, per-second predictions after the method's post-processing."""
  from emojax import train  # pylint: disable=g-import-not-at-top
  d = config.data
  out = {fid: {} for fid in store.film_ids}
  for target in config.targets:
    forward, l = final_forward(config, target)
    clips = train.ClipPredictor(model, forward, mesh).film_clips(
        store, clip_seconds=d.clip_seconds, num_clips=l, batch_size=d.eval_batch_size)
    clips = [postprocess_clips(config, target, c) for c in clips]
    for fid, s in zip(store.film_ids, train.clips_to_seconds(store, clips, d.clip_seconds)):
      out[fid][target] = s
  return out


def ablations(model: TwoTimeScale, config: ml_collections.ConfigDict, store, mesh) -> dict:
  """Variants evaluated after training: M2 (the average of the stage-1 modality-specific models,
  decision-level fusion) and the arousal EMA decays of the paper's Table 4.
  Returns {variant: {film_id: {target: per-second predictions}}}."""
  from emojax import train  # pylint: disable=g-import-not-at-top
  d, out = config.data, {}

  def clip_preds(forward):
    return train.ClipPredictor(model, forward, mesh).film_clips(
        store, clip_seconds=d.clip_seconds, num_clips=1, batch_size=d.eval_batch_size)

  def by_film(clips):
    return dict(zip(store.film_ids, train.clips_to_seconds(store, clips, d.clip_seconds)))

  for target in config.targets:
    if config.train.fusion == "progressive":
      for fid, s in by_film(clip_preds(_net_forward(target, "decision"))).items():
        out.setdefault("M2_decision", {}).setdefault(fid, {})[target] = s
    if config[target].context == "ema" and config[target].ema_betas_ablation:
      raw = clip_preds(_net_forward(target, "intra"))
      for beta in config[target].ema_betas_ablation:
        smoothed = by_film([postprocess.ema(c, beta) for c in raw])
        out[f"{target}_ema_beta{beta}"] = {fid: {target: s} for fid, s in smoothed.items()}
  return out
