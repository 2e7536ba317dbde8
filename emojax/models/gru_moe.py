"""Seed 001: per-modality GRU / LSTM / TCN, context gating, mixture of experts, smoothing.

Paper: seed 001 (MediaEval 2018); every default and its source: docs/methods.md, section gru_moe.

  x[m] (B, T, D_m) --encoder[m]--> h[m] (B, T, H)      one causal encoder per modality
  concat_m h[m] (B, T, M H) -> dropout -> CG -> MoE -> CG -> logits of (valence + 1) / 2, (arousal + 1) / 2

- Encoders (`config.model.encoder`): "gru" (the paper's choice), "lstm", or "tcn" (an
  encoder-decoder TCN, `CausalEDTCN`, with Lea et al.'s normalized ReLU keeping its outputs in
  [0, 1) as the GRU's tanh keeps the GRU's in (-1, 1)): with `config.model.tcn_output="sequence"`
  (the default) the paper's sequence-to-sequence ED-TCN (non-causal; the loss on every second of a
  training window, films predicted window by window), with "last" made causal and read
  sequence-to-one as the GRU;
  1-2 layers of 32-256 units. All modalities' GRU / LSTM
  recurrences run in one scan per layer (`layers.MultiRecurrent`), or, with per-stream sizes
  (`config.model.sizes_by_stream`: (hidden, layers) per stream, the paper's "optimized for each of
  the modalities"), one recurrence per modality; the head reads their concatenation.
- Context gating (the YouTube-8M "Willow" form): y = x * sigmoid(BN(x W)).
- Mixture of experts (the YouTube-8M starter code): per target a gate without bias gives a softmax
  over M + 1 gates; each of the M experts is a logistic regression; the extra gate belongs to a dummy
  expert whose output is 0, so p = sum_m gate_m sigmoid(expert_m). It is computed in log space
  (logsumexp of log gates + log sigmoids), and the second context gate multiplies p by
  sigmoid(BN(p W2)), so the model's outputs are the logits log p - log(1 - p) of the final
  probabilities, as the contract's "sigmoid_ce" loss wants them.
- Batch norm inference (`config.model.bn_inference`): "population" (running statistics) or "batch"
  (statistics of the batch being predicted, as the paper's results were made), both over the valid
  rows only (the `clip_mask`).
- Post-processing per film (`config.eval.postprocess`): zero-phase Butterworth (the paper's choice,
  `postprocess.butterworth`: forward-backward, odd extension of 3 * (2 * sections + 1) samples at
  each end, 15 for order 4), centred moving average (`postprocess.moving_average`, the window
  shrinks at the film's ends), or none. A film shorter than the Butterworth padding (T <= 15 s at
  order 4) is filtered with the padding cut to T - 1 samples, exactly SciPy's
  `filtfilt(b, a, x, padlen=T - 1)`; a 1-second film is returned unchanged (tests/test_gru_moe.py).
  `variants` adds the other smoothers and the other BN mode as extra rows of the ablation table
  without retraining.

Windows (sequence-to-one, as the paper; the phase's `window`, read by the per-second store).
Training: per-second windows of W one-second clips (`config.data.clip_seconds = 1`, window
`num_clips = config.model.window_seconds` = W, `train_stride = 1`), the loss on each window's last
valid second only (window `loss_on = "last"`): the prediction of second t from the W seconds ending
at t. Validation and prediction of whole films: the store's sliding windows (window
`sliding_seconds = W`): for every second t the W seconds ending at t, right-aligned and
masked where they would start before the film (left-padded), so every second is predicted from
min(t + 1, W) seconds. The forward reads the encoder state at the last second of each clip, which
serves both layouts ((B, W, 1) training windows and (B, 1, W) sliding windows). In training
(`config.model.head_seconds="last"`, the default; a batch with the store's `loss_mask`) the head
(dropout, context gates with their batch norm, MoE) runs on each window's loss second only: the
paper's sequence-to-one model, its batch statistics over the B final states, the states evaluation
predicts from (the logits of the other seconds are 0 and carry no loss). "all" runs it on every
second of the window (B W rows, statistics over all of them; ~18% more arithmetic at the paper's
shapes, docs/benchmarks.md). The sequence TCN always takes "all".
"""

from __future__ import annotations

import functools
import logging
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from emojax import contract
from emojax import ensemble
from emojax import errors
from emojax import layout
from emojax import postprocess
from emojax.nn import layers

ENCODERS = ("gru", "lstm", "tcn")
BN_INFERENCE = ("population", "batch")
SMOOTHERS = ("butterworth", "moving_average", "none")


# ----------------------------------------------------------------------------------------------
# Pieces.


class MaskedBatchNorm(nnx.Module):
  """`nnx.BatchNorm` over the valid rows, with a choice of statistics at inference.

  Training: batch statistics of the rows where `valid_N` is true (padding never enters them), and
  the running statistics are updated. Inference ("eval" mode): the running statistics
  (`inference="population"`) or the valid rows' statistics of the batch being predicted
  (`inference="batch"`; the running statistics are then left alone).
  """

  def __init__(self, features: int, inference: str = "population", momentum: float = 0.99,
               epsilon: float = 1e-3, *, rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(features, momentum=momentum, epsilon=epsilon, rngs=rngs)
    self.inference = inference

  def __call__(self, x_NxF: jax.Array, valid_N: jax.Array, inference: str | None = None
               ) -> jax.Array:
    mode = inference or self.inference
    mask_Nx1 = jnp.asarray(valid_N, bool)[:, None]
    if not self.bn.use_running_average or mode == "population":
      return self.bn(x_NxF, mask=mask_Nx1)
    w = mask_Nx1.astype(x_NxF.dtype)
    n = jnp.maximum(jnp.sum(w), 1.0)
    mean_F = jnp.sum(w * x_NxF, axis=0) / n
    var_F = jnp.sum(w * (x_NxF - mean_F) ** 2, axis=0) / n
    y = (x_NxF - mean_F) * jax.lax.rsqrt(var_F + self.bn.epsilon)
    return y * self.bn.scale[...] + self.bn.bias[...]


class ContextGating(nnx.Module):
  """y = x * sigmoid(BN(x W)) (with `batch_norm=False`: x * sigmoid(x W + b))."""

  def __init__(self, features: int, *, batch_norm: bool, bn_inference: str, bn_momentum: float,
               rngs: nnx.Rngs):
    self.w = nnx.Linear(features, features, use_bias=not batch_norm, rngs=rngs)
    self.bn = (MaskedBatchNorm(features, bn_inference, bn_momentum, rngs=rngs)
               if batch_norm else None)

  def log_gate(self, x_NxF: jax.Array, valid_N: jax.Array, bn_inference: str | None = None
               ) -> jax.Array:
    """log sigmoid(BN(x W)): the log of the gate that multiplies x."""
    a_NxF = self.w(x_NxF)
    if self.bn is not None:
      a_NxF = self.bn(a_NxF, valid_N, bn_inference)
    return jax.nn.log_sigmoid(a_NxF)

  def __call__(self, x_NxF: jax.Array, valid_N: jax.Array, bn_inference: str | None = None
               ) -> jax.Array:
    return x_NxF * jnp.exp(self.log_gate(x_NxF, valid_N, bn_inference))


class MixtureOfExperts(nnx.Module):
  """YouTube-8M MoE of logistic experts; returns log p (N, C) of the C targets."""

  def __init__(self, features: int, num_targets: int, num_experts: int, *, rngs: nnx.Rngs):
    self.c, self.m = num_targets, num_experts
    self.gate = nnx.Linear(features, num_targets * (num_experts + 1), use_bias=False, rngs=rngs)
    self.experts = nnx.Linear(features, num_targets * num_experts, rngs=rngs)

  def __call__(self, x_NxF: jax.Array) -> jax.Array:
    n = x_NxF.shape[0]
    log_gates_NxCxM1 = jax.nn.log_softmax(self.gate(x_NxF).reshape(n, self.c, self.m + 1), -1)
    log_experts_NxCxM = jax.nn.log_sigmoid(self.experts(x_NxF).reshape(n, self.c, self.m))
    # The dummy expert (gate index M) outputs 0: it only takes probability mass away.
    return jax.nn.logsumexp(log_gates_NxCxM1[..., :self.m] + log_experts_NxCxM, axis=-1)


def normalized_relu(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Lea et al.'s ED-TCN activation: ReLU(x) / (max over channels of ReLU(x) + eps), per time step,
  so every output lies in [0, 1). A plain ReLU leaves the encoder's outputs unbounded: in the
  default gru_moe run they grew ~25x within 20 Adam steps, drove the MoE's logistic experts to
  sigmoid = 1 (the dummy expert's gate to 0) and made the second context gate's batch norm see a
  constant, after which the prediction was 0.5 for every second and no gradient reached the
  encoder (the seed001_tcn row of issue 24: loss flat at ln 2)."""
  y = jax.nn.relu(x)
  return y / (jnp.max(y, axis=-1, keepdims=True) + eps)


class CausalEDTCN(nnx.Module):
  """Encoder-decoder TCN (Lea et al.'s ED-TCN) made causal; output at every step (B, T, H).

  Encoder level: causal conv (kernel k, left padding k - 1) -> normalized ReLU -> max-pool of the
  pairs (2i, 2i + 1). Decoder level: each pooled step repeated twice and shifted right by one step
  (so step j sees pooled step (j - 1) // 2, which ends at or before j) -> causal conv -> normalized
  ReLU (`normalized_relu`: Lea et al.'s activation, every output in [0, 1), normalised over the
  channels of its own step, so causality holds). The output at step t depends on the inputs at
  steps <= t only (tested through gradients). Sequences are left-padded with zeros to a multiple
  of 2**levels; invalid input steps are zeroed.
  """

  def __init__(self, in_features: int, hidden: int, levels: int = 2, kernel: int = 5, *,
               causal: bool = True, rngs: nnx.Rngs):
    self.levels, self.kernel, self.causal = levels, kernel, causal
    # causal=False: Lea et al.'s own ED-TCN ("same" convolutions, upsampling without the shift):
    # step t sees about kernel * 2**levels steps on both sides (config.model.tcn_output="sequence").
    pad = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)
    conv = lambda i, o: nnx.Conv(i, o, kernel_size=(kernel,), padding=(pad,), rngs=rngs)
    self.enc = nnx.List([conv(in_features if i == 0 else hidden, hidden) for i in range(levels)])
    self.dec = nnx.List([conv(hidden, hidden) for _ in range(levels)])

  def __call__(self, x_BxTxD: jax.Array, mask_BxT: jax.Array | None = None) -> jax.Array:
    b, t, _ = x_BxTxD.shape
    if mask_BxT is not None:
      x_BxTxD = jnp.where(mask_BxT[..., None], x_BxTxD, 0.0)
    unit = 2 ** self.levels
    pad = (-t) % unit
    y = jnp.pad(x_BxTxD, ((0, 0), (pad, 0), (0, 0)))
    for conv in self.enc:
      y = normalized_relu(conv(y))
      y = jnp.max(y.reshape(b, y.shape[1] // 2, 2, -1), axis=2)
    for conv in self.dec:
      y = jnp.repeat(y, 2, axis=1)
      if self.causal:
        y = jnp.pad(y, ((0, 0), (1, 0), (0, 0)))[:, :-1]
      y = normalized_relu(conv(y))
    return y[:, pad:]


# ----------------------------------------------------------------------------------------------
# The model.


class GruMoe(nnx.Module):
  """Seed 001's network (see the module docstring); `__call__` gives {target: logits (B, L)}."""

  def __init__(self, config: ml_collections.ConfigDict, dims: dict[str, int], *, rngs: nnx.Rngs):
    m = config.model
    self.modalities = layout.streams(config)
    self.targets = tuple(config.targets)
    self.dims = tuple(sorted((k, int(v)) for k, v in dims.items()))  # the sizes it reads
    self.encoder_kind = m.encoder
    self.head_seconds = "all" if sequence_tcn(config) else m.get("head_seconds", "last")
    sizes = stream_sizes(config)
    self.per_stream = bool(m.get("sizes_by_stream", ()))
    if m.encoder == "tcn":
      causal = not sequence_tcn(config)
      self.encoder = nnx.Dict({k: CausalEDTCN(dims[k], sizes[k][0], m.tcn_levels, m.tcn_kernel,
                                              causal=causal, rngs=rngs) for k in self.modalities})
    elif self.per_stream:  # one recurrence per modality, each of its own width and depth
      self.encoder = nnx.Dict({k: layers.MultiRecurrent({k: dims[k]}, sizes[k][0], sizes[k][1],
                                                        m.encoder, rngs=rngs)
                               for k in self.modalities})
    else:  # all modalities in one scan per layer
      self.encoder = layers.MultiRecurrent({k: dims[k] for k in self.modalities}, m.hidden,
                                           m.num_layers, m.encoder, rngs=rngs)
    f = sum(sizes[k][0] for k in self.modalities)
    c = len(self.targets)
    bn = dict(batch_norm=m.batch_norm, bn_inference=m.bn_inference, bn_momentum=m.bn_momentum)
    self.dropout = nnx.Dropout(m.dropout)
    self.gate_in = ContextGating(f, **bn, rngs=rngs) if m.context_gating else None
    if m.mixture_of_experts:
      self.moe = MixtureOfExperts(f, c, m.num_experts, rngs=rngs)
      self.logistic = None
    else:  # the ablation: one logistic regression per target instead of the mixture
      self.moe = None
      self.logistic = nnx.Linear(f, c, rngs=rngs)
    self.gate_out = ContextGating(c, **bn, rngs=rngs) if m.context_gating else None

  def encode(self, batch: dict) -> tuple[jax.Array, jax.Array]:
    """Concatenated per-second encoder outputs (B, T, M H) and the valid seconds (B, T)."""
    hs, mask_BxT = self.encode_streams(batch)
    return jnp.concatenate(hs, axis=-1), mask_BxT

  def encode_streams(self, batch: dict, time_major: bool = False
                     ) -> tuple[list[jax.Array], jax.Array]:
    """Per-second encoder outputs of each modality [(B, T, H_m)], or [(T, B, H_m)] if
    `time_major` (the recurrences' own layout), and the valid seconds (B, T)."""
    b, l, s = batch["x_mask"][self.modalities[0]].shape   # every stream's valid seconds
    mask_BxT = batch["x_mask"][self.modalities[0]].reshape(b, l * s)
    xs = {k: batch["x"][k].reshape(b, l * s, -1) for k in self.modalities}
    if self.encoder_kind == "tcn":
      hs = [self.encoder[k](xs[k], mask_BxT) for k in self.modalities]
      hs = [jnp.swapaxes(h, 0, 1) for h in hs] if time_major else hs
    elif self.per_stream:
      hs = [self.encoder[k]({k: xs[k]}, mask_BxT, time_major)[k][0] for k in self.modalities]
    else:
      out = self.encoder(xs, mask_BxT, time_major)
      hs = [out[k][0] for k in self.modalities]
    return hs, mask_BxT

  def __call__(self, batch: dict, rngs: nnx.Rngs | None = None,
               bn_inference: str | None = None) -> dict[str, jax.Array]:
    b, l, s = batch["x_mask"][self.modalities[0]].shape
    # One prediction per clip from the encoder state at the clip's last second: training windows
    # are L one-second clips (S = 1); the harness's sequence-to-one evaluation windows are one clip
    # of W seconds, right-aligned, ending at the second they predict (L = 1, S = W).
    valid_BxL = jnp.asarray(batch["clip_mask"], bool).reshape(b, l)
    if self.head_seconds == "last" and "loss_mask" in batch:
      # Sequence-to-one training (loss_on="last": at most one loss second per window): the head
      # runs on each window's loss second only, its BatchNorm statistics over those B rows. The
      # B states are picked from each stream's time-major outputs, so no (B, T, M H) array of
      # every second (nor its gradient) is laid out.
      hs_TxBxH, _ = self.encode_streams(batch, time_major=True)
      loss_BxL = jnp.asarray(batch["loss_mask"], bool).reshape(b, l)
      last_B = jnp.argmax(loss_BxL, axis=1)
      t_B = last_B * s + (s - 1)     # the last second of the loss clip
      h_NxF = jnp.concatenate([jnp.take_along_axis(h, t_B[None, :, None], axis=0)[0]
                               for h in hs_TxBxH], axis=-1)
      valid_N = jnp.any(loss_BxL & valid_BxL, axis=1)
      logits_NxC = self._head(h_NxF, valid_N, rngs, bn_inference)
      at_BxL = jnp.arange(l)[None, :] == last_B[:, None]
      return {t: jnp.where(at_BxL, logits_NxC[:, i:i + 1], 0.0)
              for i, t in enumerate(self.targets)}
    h_BxTxF, _ = self.encode(batch)
    h_BxLxF = h_BxTxF.reshape(b, l, s, -1)[:, :, -1]
    logits_NxC = self._head(h_BxLxF.reshape(b * l, -1), valid_BxL.reshape(b * l), rngs,
                            bn_inference)
    return {t: logits_NxC[:, i].reshape(b, l) for i, t in enumerate(self.targets)}

  def _head(self, h_NxF: jax.Array, valid_N: jax.Array, rngs: nnx.Rngs | None,
            bn_inference: str | None) -> jax.Array:
    """Dropout -> CG -> MoE (or logistic) -> CG on N encoder states: logits (N, C)."""
    h_NxF = self.dropout(h_NxF, rngs=rngs)
    if self.gate_in is not None:
      h_NxF = self.gate_in(h_NxF, valid_N, bn_inference)
    if self.moe is not None:
      logp_NxC = self.moe(h_NxF)
    else:
      logp_NxC = jax.nn.log_sigmoid(self.logistic(h_NxF))
    if self.gate_out is not None:
      logp_NxC = logp_NxC + self.gate_out.log_gate(jnp.exp(logp_NxC), valid_N, bn_inference)
    return probability_logit(logp_NxC)


TCN_OUTPUTS = ("sequence", "last")
HEAD_SECONDS = ("last", "all")


def sequence_tcn(config: ml_collections.ConfigDict) -> bool:
  """The paper's encoder-decoder TCN (001 Sec. 2.2: "a sequence of valence and arousal
  predictions"): non-causal, trained on every second of its windows and predicting films window by
  window (config.model.encoder="tcn", config.model.tcn_output="sequence"). Otherwise the model is
  sequence-to-one (the GRU / LSTM, and the causal TCN of tcn_output="last")."""
  m = config.model
  return m.encoder == "tcn" and m.get("tcn_output", "last") == "sequence"


def stream_sizes(config: ml_collections.ConfigDict) -> dict[str, tuple[int, int]]:
  """{stream: (hidden, layers)} of its encoder: config.model.sizes_by_stream, one (hidden, layers)
  per stream of config.inputs.streams, or () = (model.hidden, model.num_layers) for every stream
  (the TCN uses the hidden width only)."""
  m, streams = config.model, layout.streams(config)
  given = tuple(tuple(v) for v in m.get("sizes_by_stream", ()))
  if not given:
    return {k: (int(m.hidden), int(m.num_layers)) for k in streams}
  if len(given) != len(streams) or any(len(v) != 2 or int(v[0]) < 1 or int(v[1]) < 1
                                       for v in given):
    raise errors.ConfigError(
        f"config.model.sizes_by_stream={given}: give one (hidden, layers) pair, each >= 1, per "
        f"stream of config.inputs.streams {streams}, e.g. {tuple((64, 1) for _ in streams)}, or () "
        "for model.hidden / num_layers everywhere")
  return {k: (int(v[0]), int(v[1])) for k, v in zip(streams, given)}


def probability_logit(logp: jax.Array, max_logp: float = -1e-7) -> jax.Array:
  """log p - log(1 - p) from log p, stable for p near 0 and capped just below p = 1."""
  logp = jnp.minimum(logp, max_logp)
  return logp - jnp.log(-jnp.expm1(logp))


def forward(model: GruMoe, batch: dict, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
  return model(batch, rngs)


@functools.lru_cache(maxsize=None)
def forward_with_bn(bn_inference: str):
  """A forward with the other BN inference mode (for `variants`)."""
  def fwd(model: GruMoe, batch: dict, rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    return model(batch, rngs, bn_inference)
  return fwd


# ----------------------------------------------------------------------------------------------
# Post-processing.


def smoother(kind: str, config: ml_collections.ConfigDict):
  """Per-film post-processing (T,) -> (T,) of `kind`, with the numbers of `config.eval`."""
  p = config.eval
  fs_hz = 1.0 / config.data.clip_seconds
  if kind == "butterworth":
    return functools.partial(postprocess.butterworth, cutoff_hz=p.butterworth_cutoff_hz,
                             order=p.butterworth_order, fs_hz=fs_hz)
  if kind == "moving_average":
    return functools.partial(postprocess.moving_average, width=p.moving_average_seconds)
  if kind == "none":
    return None
  raise errors.ConfigError(f"config.eval.postprocess={kind!r}; use one of {SMOOTHERS}")


# ----------------------------------------------------------------------------------------------
# The method contract.


def task(config: ml_collections.ConfigDict) -> contract.Task:
  return layout.task(config, loss="sigmoid_ce")


def modalities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return layout.streams(config)


def create(config: ml_collections.ConfigDict, feature_dims: dict[str, int],
           rngs: nnx.Rngs) -> GruMoe:
  check_config(config)
  if config.train.ensemble > 1:
    raise errors.ConfigError(
        f"config.train.ensemble={config.train.ensemble}: create builds one model; train the K "
        "members with main.py / emojax.train.train_and_evaluate (emojax/members.py), or from "
        "Python with emojax.ensemble, or set config.train.ensemble=1")
  missing = [m for m in layout.streams(config) if m not in feature_dims]
  if missing:
    raise errors.ConfigError(f"config.inputs.streams names {missing}, which the dataset does not "
                             f"have; it has {sorted(feature_dims)}")
  return GruMoe(config, feature_dims, rngs=rngs)


def _window(config: ml_collections.ConfigDict) -> dict:
  """A phase's window (the per-second store's keys): training windows of W seconds (clips of
  1 s); sequence-to-one, the loss on each window's last valid second and validation on the W
  seconds ending at every second; the sequence TCN, the loss on every second of a window and
  validation window by window."""
  w = config.model.window_seconds
  if sequence_tcn(config):
    return {"num_clips": w}
  return {"num_clips": w, "loss_on": "last", "sliding_seconds": int(w)}


RETRAIN = "gru_moe_dev"  # the phase retraining on train + validation (config.train.retrain_on_dev)


def plan(config: ml_collections.ConfigDict, done: list[dict]) -> contract.Phase | None:
  """"gru_moe" (model selection on the validation split), then, with config.train.retrain_on_dev,
  "gru_moe_dev": the same model trained afresh on train + validation for the selected number of
  steps (the paper, 001 Sec. 3: "We then trained our models on the entire development set")."""
  names = [r["name"] for r in done]
  tr = config.train
  if "gru_moe" not in names:
    return contract.Phase(
        name="gru_moe", task=task(config), forward=forward, window=_window(config),
        steps=tr.steps, epochs=tr.epochs, optimizer=contract.optimizer_spec(config.optim),
        eval_every=tr.eval_every_steps, eval_every_epochs=tr.eval_every_epochs,
        patience=tr.patience,
        info={"encoder": config.model.encoder, "window_seconds": config.model.window_seconds,
              "ensemble": tr.ensemble})
  if not tr.get("retrain_on_dev", False) or RETRAIN in names:
    return None
  return retrain_phase(config, done[names.index("gru_moe")])


def dev_splits(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The development set: the training split and the validation split (when the dataset has one;
  otherwise the training split, held-out films included)."""
  s = config.dataset.splits
  return tuple(x for x in (s.train, s.validation) if x)


def retrain_phase(config: ml_collections.ConfigDict, selected: dict) -> contract.Phase | None:
  """The retraining phase after `selected` (the "gru_moe" record): fresh weights (`Phase.fresh`:
  the run's initial ones, as `create` with nnx.Rngs(seed) gives them; each ensemble member's own),
  the development splits (`Phase.train_splits`), `selected["best_step"]` steps, no
  validation-based selection (its last step is its result)."""
  steps = int(selected.get("best_step") or 0)
  if steps < 1:
    logging.warning("gru_moe: no selected step to retrain for (record %s); skipping %s",
                    selected.get("name"), RETRAIN)
    return None
  splits = dev_splits(config)
  return contract.Phase(
      name=RETRAIN, task=task(config), forward=forward, window=_window(config), steps=steps,
      optimizer=contract.optimizer_spec(config.optim), eval_every=0, patience=0,
      fresh=True, train_splits=splits,
      info={"train_splits": splits, "steps_from": f"gru_moe best step {steps}",
            "note": "validation scores of this phase include its training films"})


def target_task(config: ml_collections.ConfigDict, target: str) -> contract.Task:
  """The one-target task of an Output: the harness's predictor reads the task's first target and
  `contract.predictions` picks it out of the joint forward's {target: logits}."""
  return layout.task(config, (target,), loss="sigmoid_ce")


def _outputs(config, forward_fn, post, key: str) -> dict[str, contract.Output]:
  # Raw predictions are cached per key, so the key names the target (and the forward): outputs that
  # differ only in post-processing share it.
  w = config.model.window_seconds
  window = {"num_clips": w} if sequence_tcn(config) else {"sliding_seconds": w}
  return {t: contract.Output(forward=forward_fn, task=target_task(config, t), window=window,
                             postprocess=post,
                             key=f"{key}/{t}") for t in config.targets}


def outputs(config: ml_collections.ConfigDict) -> dict[str, contract.Output]:
  return _outputs(config, forward, smoother(config.eval.postprocess, config), "gru_moe")


def variants(config: ml_collections.ConfigDict) -> dict[str, dict[str, contract.Output]]:
  """The other smoothers, and the other BN inference mode, of the trained model."""
  out = {}
  for kind in SMOOTHERS:
    if kind != config.eval.postprocess:
      out[f"smoothing_{kind}"] = _outputs(config, forward, smoother(kind, config), "gru_moe")
  if config.model.batch_norm and config.model.context_gating:
    other = [m for m in BN_INFERENCE if m != config.model.bn_inference][0]
    out[f"bn_inference_{other}"] = _outputs(config, forward_with_bn(other),
                                            smoother(config.eval.postprocess, config),
                                            f"gru_moe_bn_{other}")
  return out


# ----------------------------------------------------------------------------------------------
# Checks (before any training step).


def check_config(config: ml_collections.ConfigDict) -> None:
  """ConfigError naming the key for every setting the model cannot run with."""
  m, p = config.model, config.eval
  if m.encoder not in ENCODERS:
    raise errors.ConfigError(f"config.model.encoder={m.encoder!r}; use one of {ENCODERS}")
  if int(m.window_seconds) != m.window_seconds or m.window_seconds < 1:
    raise errors.ConfigError(f"config.model.window_seconds={m.window_seconds!r} must be a "
                             "positive integer (the paper: 10, 30 or 60)")
  if config.data.clip_seconds != 1:
    raise errors.ConfigError(f"config.data.clip_seconds={config.data.clip_seconds}: gru_moe "
                             "predicts every second; set it to 1")
  if m.hidden < 1 or m.num_layers < 1:
    raise errors.ConfigError(f"config.model.hidden={m.hidden} and config.model.num_layers="
                             f"{m.num_layers} must be >= 1")
  if layout.streams(config):
    stream_sizes(config)
  if m.get("head_seconds", "last") not in HEAD_SECONDS:
    raise errors.ConfigError(f"config.model.head_seconds={m.head_seconds!r}; use one of "
                             f"{HEAD_SECONDS}")
  if m.get("tcn_output", "last") not in TCN_OUTPUTS:
    raise errors.ConfigError(f"config.model.tcn_output={m.tcn_output!r}; use one of {TCN_OUTPUTS}")
  if m.encoder == "tcn" and (m.tcn_levels < 1 or m.tcn_kernel < 1):
    raise errors.ConfigError(f"config.model.tcn_levels={m.tcn_levels} and tcn_kernel="
                             f"{m.tcn_kernel} must be >= 1")
  if m.bn_inference not in BN_INFERENCE:
    raise errors.ConfigError(f"config.model.bn_inference={m.bn_inference!r}; use one of "
                             f"{BN_INFERENCE}")
  if m.mixture_of_experts and m.num_experts < 1:
    raise errors.ConfigError(f"config.model.num_experts={m.num_experts} must be >= 1")
  if not 0.0 <= m.dropout < 1.0:
    raise errors.ConfigError(f"config.model.dropout={m.dropout} must lie in [0, 1)")
  if not layout.streams(config):
    raise errors.ConfigError("config.inputs.streams is empty; name the dataset streams to encode")
  if p.postprocess not in SMOOTHERS:
    raise errors.ConfigError(f"config.eval.postprocess={p.postprocess!r}; use one of {SMOOTHERS}")
  smoother(p.postprocess, config)
  if p.postprocess == "butterworth":  # the numbers are checked by a dry run on a short signal
    postprocess.butterworth(np.zeros(4), p.butterworth_cutoff_hz, p.butterworth_order,
                            1.0 / config.data.clip_seconds)
  if int(p.moving_average_seconds) != p.moving_average_seconds or p.moving_average_seconds < 1:
    raise errors.ConfigError(f"config.eval.moving_average_seconds="
                             f"{p.moving_average_seconds!r} must be a positive integer")
  if int(config.train.ensemble) != config.train.ensemble or config.train.ensemble < 1:
    raise errors.ConfigError(f"config.train.ensemble={config.train.ensemble!r} must be a "
                             "positive integer (1 = no ensemble)")
  if config.train.ensemble > 1:
    ensemble.check_sharding(config.train.ensemble, config.data.batch_size, jax.device_count(),
                            config.train.ensemble_sharding)


def check_windows(config: ml_collections.ConfigDict, film_lengths: Sequence[int],
                  split: str = "train") -> None:
  """ConfigError when the window (config.model.window_seconds) is longer than every film of a split.

  The harness's training windows of a film shorter than the window are padded at the end, so every
  output of such a film sees fewer than W seconds: a window longer than every film is a mistake
  (a smaller W, or the right dataset).
  """
  w = int(config.model.window_seconds) * int(config.data.clip_seconds)
  lengths = [int(t) for t in film_lengths]
  if lengths and w > max(lengths):
    raise errors.ConfigError(
        f"config.model.window_seconds={config.model.window_seconds} is longer than every film of "
        f"the {split} split (longest {max(lengths)} s); use a window of at most {max(lengths)} s")
