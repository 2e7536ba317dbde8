"""Seed 000: two-time-scale bi-LSTMs with residual-based progressive training.

Paper: "Two-time-scale ... residual-based progressive training" (seed 000; every default and its
source: docs/methods.md, section two_timescale). Per target (valence, arousal) one `TargetNet`:
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

from emojax import contract, errors, layout, postprocess
from emojax.contract import Phase
from emojax.nn.layers import BiLSTM, params_under

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

  def __init__(self, dims: dict[str, int], cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    """`cfg`: the blocks of this target (emojax.layout.for_target)."""
    model = cfg.model
    self.modalities = tuple(cfg.inputs.streams)
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
    if model.context == "lstm":
      self.inter = BiLSTM(model.clip_features, model.inter_hidden, model.num_layers, rngs=rngs)
      self.inter_fc = nnx.Linear(2 * model.inter_hidden, 1, rngs=rngs)

  # Pieces ---------------------------------------------------------------------------------------
  @staticmethod
  def _clips(batch: dict, m: str) -> tuple[jax.Array, jax.Array]:
    x_BxLxSxD = batch["x"][m]
    b, l, s, d = x_BxLxSxD.shape
    return x_BxLxSxD.reshape(b * l, s, d), batch["x_mask"][m].reshape(b * l, s)

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
    self.nets = nnx.Dict({t: TargetNet({m: dims[m] for m in layout.streams(config, t)},
                                       layout.for_target(config, t), rngs=rngs)
                          for t in config.targets})


# ----------------------------------------------------------------------------------------------
# The method contract (emojax/contract.py).


def task(config: ml_collections.ConfigDict, targets=None) -> contract.Task:
  """Per-second regression of valence and/or arousal with masked MSE (eqs. 1 and 3)."""
  return layout.task(config, targets, loss="mse", unit="second")


def modalities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return layout.streams(config)


def create(config: ml_collections.ConfigDict, feature_dims: dict[str, int],
           rngs: nnx.Rngs) -> TwoTimeScale:
  _check(config)
  return TwoTimeScale(config, feature_dims, rngs=rngs)


def _check(config: ml_collections.ConfigDict) -> None:
  for key in ("steps", "inter_clip_steps"):
    if config.train[key] <= 0:
      raise errors.ConfigError(f"config.train.{key}={config.train[key]}: every phase needs a "
                               "positive number of steps")
  if config.train.fusion not in FUSIONS:
    raise errors.ConfigError(f"config.train.fusion={config.train.fusion!r}; use one of {FUSIONS}")
  for t in config.targets:
    context = layout.for_target(config, t).model.context
    if context not in CONTEXTS:
      raise errors.ConfigError(f"config.per_target.{t}.model.context={context!r}; use one of "
                               f"{CONTEXTS}")


@functools.lru_cache(maxsize=None)
def _net_forward(target: str, method: str, *args):
  """The forward of one network method; cached, so each is jitted once per run."""
  def forward(model: TwoTimeScale, batch: dict, rngs=None) -> jax.Array:
    del rngs  # no dropout in seed 000
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
      if "validation" not in r:  # never rank on the test split
        raise errors.ConfigError(
            f"phase {r['name']} has no validation score to rank the modalities by; give the "
            "dataset a validation split or keep config.data.holdout_fraction > 0")
      scores[r["info"]["modality"]] = r["validation"].get(metric)
  sign = -1.0 if mode == "max" else 1.0
  return sorted(scores, key=lambda m: (sign * _nan_last(scores[m], mode), m))


def _nan_last(v: float, mode: str) -> float:
  if v is None or not np.isfinite(v):
    return -np.inf if mode == "max" else np.inf
  return v


def _optimizer(config: ml_collections.ConfigDict, learning_rate: float) -> dict:
  return contract.optimizer_spec(config.optim, learning_rate=learning_rate)


def phases(config: ml_collections.ConfigDict, target: str, done: list[dict]):
  """The phases of one target, in order; some depend on the records of earlier ones."""
  cfg = layout.for_target(config, target)
  tr = cfg.train
  tk = task(config, (target,))
  p = lambda *a: ("nets", target, *a)
  steps = tr.steps
  common = dict(steps=steps, eval_every=tr.eval_every_steps,
                optimizer=_optimizer(config, config.optim.learning_rate))
  if tr.fusion in ("progressive", "decision"):
    for m in cfg.inputs.streams:
      yield Phase(f"{target}/stage1_{m}", tk, _net_forward(target, "stage1", m),
                  params_under(p("stage1_encoders", m), p("stage1_heads", m)), **common,
                  info={"stage": 1, "modality": m})
  if tr.fusion == "decision":
    return
  if tr.fusion == "progressive":
    order = stage1_ranking(config, target, done)
    for i, m in enumerate(order):
      setup = _copy_stage1_encoder(target, m) if tr.init_from_stage1 else None
      yield Phase(f"{target}/progressive{i + 1}_{m}", tk,
                  _net_forward(target, "progressive", tuple(order[:i + 1])),
                  params_under(p("encoders", m), p("progressive_heads", m)), **common,
                  setup=setup, info={"stage": 2, "order": order[:i + 1]})
    yield Phase(f"{target}/finetune", tk, _net_forward(target, "intra"),
                params_under(p("encoders"), p("fc1"), p("fc2")), steps=steps,
                eval_every=tr.eval_every_steps,
                optimizer=_optimizer(config, tr.finetune_learning_rate),
                info={"stage": 2, "order": order})
  else:  # M1: joint feature-level fusion, everything trained at once.
    yield Phase(f"{target}/joint", tk, _net_forward(target, "intra"),
                params_under(p("encoders"), p("fc1"), p("fc2")), **common, info={"stage": "M1"})
  if cfg.model.context == "lstm":
    yield Phase(f"{target}/inter_clip", tk, _net_forward(target, "inter_clip"),
                params_under(p("inter"), p("inter_fc")),
                window={"num_clips": cfg.model.num_clips}, steps=tr.inter_clip_steps,
                eval_every=tr.eval_every_steps,
                optimizer=_optimizer(config, config.optim.learning_rate),
                info={"num_clips": cfg.model.num_clips})


def plan(config: ml_collections.ConfigDict, done: list[dict]):
  names = {r["name"] for r in done}
  for target in config.targets:
    for phase in phases(config, target, done):
      if phase.name not in names:
        return phase
  return None


# ----------------------------------------------------------------------------------------------
# Prediction of whole films (the harness runs these outputs: evaluation, ablations, predict).


def final_forward(config: ml_collections.ConfigDict, target: str):
  """(forward, window length in clips, key) of the trained network of `target` (before EMA)."""
  cfg = layout.for_target(config, target)
  if cfg.train.fusion == "decision":
    return _net_forward(target, "decision"), 1, f"{target}/decision"
  if cfg.model.context == "lstm":
    return _net_forward(target, "inter_clip"), cfg.model.num_clips, f"{target}/inter_clip"
  return _net_forward(target, "intra"), 1, f"{target}/intra"


def _ema(beta: float):
  return functools.partial(postprocess.ema, beta=beta)


def outputs(config: ml_collections.ConfigDict) -> dict:
  """Per target: the final network, then the arousal EMA over the film's clips."""
  out = {}
  for target in config.targets:
    forward, l, key = final_forward(config, target)
    cfg = layout.for_target(config, target)
    post = _ema(cfg.eval.ema_beta) if cfg.model.context == "ema" else None
    out[target] = contract.Output(forward, task(config, (target,)), window={"num_clips": l},
                                  postprocess=post, key=key)
  return out


def variants(config: ml_collections.ConfigDict) -> dict:
  """Rows of eval/ablation.md: M2 (the average of the stage-1 modality-specific models,
  decision-level fusion) and the arousal EMA decays of the paper's Table 4."""
  out = {}
  for target in config.targets:
    tk = task(config, (target,))
    cfg = layout.for_target(config, target)
    if cfg.train.fusion == "progressive":
      out.setdefault("M2_decision", {})[target] = contract.Output(
          _net_forward(target, "decision"), tk, key=f"{target}/decision")
    if cfg.model.context == "ema":
      for beta in cfg.eval.ema_betas_ablation:
        out[f"{target}_ema_beta{beta}"] = {target: contract.Output(
            _net_forward(target, "intra"), tk, postprocess=_ema(beta), key=f"{target}/intra")}
  return out
