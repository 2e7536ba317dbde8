"""Seed 001 (emojax/models/gru_moe.py): the forward against a NumPy reference written from the
paper's equations (GRU -> concat -> context gating -> YouTube-8M MoE -> context gating), masks,
causality, the two BN inference modes, the smoothers against SciPy, and the config errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import signal

from configs import gru_moe as gru_moe_config
from emojax import contract
from emojax import errors
from emojax import postprocess
from emojax.models import gru_moe

DIMS = {"scene": 5, "audio": 3, "expression": 4}
B, L = 4, 6


def _config(**model):
  c = gru_moe_config.get_config("runlocal")
  with c.unlocked():
    c.model.hidden = 4
    c.model.window_seconds = L
    for k, v in model.items():
      c.model[k] = v
  return c


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((B, L), bool)
  mask[1, 4:] = False          # a film's end inside the window
  mask[3, :] = False           # a blank row of a padded evaluation batch
  x = {m: rng.normal(size=(B, L, 1, d)).astype(np.float32) for m, d in DIMS.items()}
  y = {t: rng.uniform(-1, 1, size=(B, L)).astype(np.float32) for t in ("valence", "arousal")}
  return {"x": x, "y": y, "x_mask": {m: mask[..., None] for m in x}, "clip_mask": mask}


@functools.lru_cache(maxsize=None)
def _model(encoder="gru", bn_inference="population", tcn_output="last"):
  return gru_moe.create(_config(encoder=encoder, bn_inference=bn_inference, tcn_output=tcn_output),
                        DIMS, nnx.Rngs(0))


def _np(v):
  return np.asarray(v[...], np.float64)


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _ref_gru(x_TxD, layer):
  w_ih, w_hh, b_ih, b_hh = (_np(v) for v in (layer.w_ih, layer.w_hh, layer.b_ih, layer.b_hh))
  n_h = w_hh.shape[0]
  h, hs = np.zeros(n_h), []
  for x in x_TxD:
    gi, gh = x @ w_ih + b_ih, h @ w_hh + b_hh
    r, z = _sigmoid(gi[:n_h] + gh[:n_h]), _sigmoid(gi[n_h:2 * n_h] + gh[n_h:2 * n_h])
    n = np.tanh(gi[2 * n_h:] + r * gh[2 * n_h:])
    h = (1 - z) * n + z * h
    hs.append(h)
  return np.stack(hs)


def _ref_bn(a_NxF, bn, valid_N, stats):
  """BatchNorm: population (running statistics) or the valid rows' batch statistics."""
  if stats == "population":
    mean, var = _np(bn.bn.mean), _np(bn.bn.var)
  else:
    mean, var = a_NxF[valid_N].mean(0), a_NxF[valid_N].var(0)
  return (a_NxF - mean) / np.sqrt(var + bn.bn.epsilon) * _np(bn.bn.scale) + _np(bn.bn.bias)


def _ref_forward(model, batch, stats, rows=None):
  """The paper's head in NumPy from the model's weights (float64), eval mode (no dropout); with
  `rows` (B,) the head runs on second rows[b] of each window b only (batch statistics over the
  valid ones): {target: (B,)}."""
  hs = []
  for m in DIMS:
    layer = model.encoder.stacks[m][0]
    h_BxLxH = np.zeros((B, L, model.encoder.stacks[m][0].hidden))
    for b in range(B):
      valid = batch["clip_mask"][b]
      if valid.any():   # the encoder skips masked seconds (holds its state); outputs there are 0
        h_BxLxH[b, valid] = _ref_gru(batch["x"][m][b, valid, 0].astype(np.float64), layer)
    hs.append(h_BxLxH)
  x = np.concatenate(hs, -1).reshape(B * L, -1)
  valid_N = batch["clip_mask"].reshape(-1)
  if rows is not None:
    x, valid_N = x[np.arange(B) * L + rows], valid_N[np.arange(B) * L + rows]
  cg1 = model.gate_in
  x = x * _sigmoid(_ref_bn(x @ _np(cg1.w.kernel), cg1.bn, valid_N, stats))
  c, k = 2, model.moe.m
  gates = x @ _np(model.moe.gate.kernel)
  gates = np.exp(gates.reshape(-1, c, k + 1))
  gates /= gates.sum(-1, keepdims=True)                   # softmax over M + 1
  experts = _sigmoid((x @ _np(model.moe.experts.kernel) + _np(model.moe.experts.bias))
                     .reshape(-1, c, k))
  p = (gates[..., :k] * experts).sum(-1)                  # the dummy expert adds 0
  cg2 = model.gate_out
  p = p * _sigmoid(_ref_bn(p @ _np(cg2.w.kernel), cg2.bn, valid_N, stats))
  shape = (B, L) if rows is None else (B,)
  return {t: p[:, i].reshape(shape) for i, t in enumerate(("valence", "arousal"))}


@functools.partial(jax.jit, static_argnums=(0, 3))
def _eval_forward(graphdef, state, batch, bn_inference):
  model = nnx.merge(graphdef, state)
  return model(batch, None, bn_inference)


@pytest.mark.parametrize("stats", ["population", "batch"])
def test_forward_matches_numpy_reference(stats):
  model = _model()
  model.eval()
  graphdef, state = nnx.split(model)
  batch = _batch()
  # Non-trivial running statistics, so that population and batch modes differ.
  for bn in (model.gate_in.bn.bn, model.gate_out.bn.bn):
    bn.mean[...] = jnp.full(bn.mean.shape, 0.1)
    bn.var[...] = jnp.full(bn.var.shape, 2.0)
  graphdef, state = nnx.split(model)
  logits = _eval_forward(graphdef, state, batch, stats)
  want = _ref_forward(model, batch, stats)
  for t in ("valence", "arousal"):
    got_p = _sigmoid(np.asarray(logits[t], np.float64))
    valid = batch["clip_mask"]
    np.testing.assert_allclose(got_p[valid], want[t][valid], rtol=2e-4, atol=1e-6)


def test_training_head_runs_on_each_windows_loss_second():
  """head_seconds="last" (the default): in training (a batch with `loss_mask`) the head runs on
  the loss second of each window, BatchNorm over those rows; "all": on every valid second."""
  batch = _batch()
  rows = np.array([5, 3, 2, 0])         # window 1's last valid second is 3; window 3 is blank
  loss_mask = np.zeros((B, L), bool)
  loss_mask[np.arange(3), rows[:3]] = True
  batch["loss_mask"] = loss_mask
  for head, want_rows in (("last", rows), ("all", None)):
    model = gru_moe.create(_config(dropout=0.0, head_seconds=head), DIMS, nnx.Rngs(0))
    model.train()
    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s, b: nnx.merge(graphdef, s)(b, nnx.Rngs(dropout=0)))(state, batch)
    want = _ref_forward(model, batch, "batch", want_rows)
    for t in ("valence", "arousal"):
      got = _sigmoid(np.asarray(out[t], np.float64))
      if want_rows is None:
        np.testing.assert_allclose(got[loss_mask], want[t][loss_mask], rtol=2e-4, atol=1e-6)
      else:
        np.testing.assert_allclose(got[np.arange(3), rows[:3]], want[t][:3], rtol=2e-4,
                                   atol=1e-6)
  # The two forms differ (other batch statistics), so the test above tells them apart.
  assert not np.allclose(_ref_forward(model, batch, "batch", rows)["valence"][:3],
                         _ref_forward(model, batch, "batch")["valence"][np.arange(3), rows[:3]])


def test_padding_and_blank_rows_do_not_change_valid_outputs_in_training():
  model = _model()
  model.train()
  graphdef, state = nnx.split(model)
  batch = _batch()
  other = jax.tree.map(np.copy, batch)
  for m in DIMS:   # garbage wherever the mask is off
    other["x"][m][~batch["clip_mask"]] = 1e3

  @jax.jit
  def run(state, batch):
    model = nnx.merge(graphdef, state)
    out = model(batch, nnx.Rngs(dropout=1))
    return out, nnx.state(model, nnx.BatchStat)

  (a, stats_a), (b, stats_b) = run(state, batch), run(state, other)
  valid = batch["clip_mask"]
  for t in a:
    np.testing.assert_allclose(np.asarray(a[t])[valid], np.asarray(b[t])[valid], rtol=1e-5)
  for x, y in zip(jax.tree.leaves(stats_a), jax.tree.leaves(stats_b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5)


@pytest.mark.parametrize("encoder", ["gru", "tcn"])
def test_encoders_are_causal(encoder):
  """The output at second t depends on the seconds <= t of the window only (via gradients)."""
  model = _model(encoder)
  model.eval()
  graphdef, state = nnx.split(model)
  batch = _batch()
  t = 2

  def out_at_t(xs):
    m = nnx.merge(graphdef, state)
    h, _ = m.encode({**batch, "x": xs})
    return jnp.sum(h[:, t])

  grads = jax.grad(out_at_t)({m: jnp.asarray(v) for m, v in batch["x"].items()})
  for m, g in grads.items():
    g = np.asarray(g)[:2]   # rows with valid seconds around t
    assert np.all(g[:, t + 1:] == 0.0), (encoder, m)
    assert np.any(g[:, :t + 1] != 0.0), (encoder, m)


def test_loss_gradients_are_finite_for_every_encoder():
  task = gru_moe.task(_config())
  batch = _batch()
  for encoder in ("gru", "lstm", "tcn"):
    model = _model(encoder)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, rest):
      m = nnx.merge(graphdef, params, rest, copy=True)
      return contract.loss_value(task, gru_moe.forward(m, batch, nnx.Rngs(dropout=0)), batch)

    value, grads = jax.jit(jax.value_and_grad(loss))(params, rest)
    assert np.isfinite(float(value)), encoder
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads)), encoder


def test_probability_logit_matches_numpy():
  p = np.array([1e-12, 1e-4, 0.3, 0.5, 0.9, 1 - 1e-6])
  got = np.asarray(gru_moe.probability_logit(jnp.asarray(np.log(p), jnp.float32)))
  np.testing.assert_allclose(got, np.log(p) - np.log1p(-p), rtol=1e-3)


# Post-processing --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 5, 14, 16, 40])
def test_butterworth_short_films_equal_filtfilt_with_explicit_padlen(n):
  """Films shorter than the filter's padding (order 4: 3 * (2 * 2 + 1) = 15 samples) are padded
  with n - 1 samples, i.e. SciPy's filtfilt with padlen = min(15, n - 1)."""
  x = np.random.default_rng(n).normal(size=n)
  b, a = signal.butter(4, 0.05, btype="low", fs=1.0)
  want = signal.filtfilt(b, a, x, padtype="odd", padlen=min(15, n - 1))
  c = _config()
  got = gru_moe.smoother("butterworth", c)(x)
  np.testing.assert_allclose(got, want, atol=1e-8)


def test_butterworth_single_second_film_is_returned_unchanged():
  np.testing.assert_array_equal(gru_moe.smoother("butterworth", _config())(np.array([0.3])), [0.3])


@pytest.mark.parametrize("width", [1, 4, 5])
def test_moving_average_matches_numpy_reference(width):
  x = np.random.default_rng(0).normal(size=9)
  want = np.array([x[max(t - (width - 1) // 2, 0):t + width // 2 + 1].mean() for t in range(9)])
  np.testing.assert_allclose(postprocess.moving_average(x, width), want, rtol=1e-12)


def test_no_smoothing_is_none():
  c = _config()
  assert gru_moe.smoother("none", c) is None


# Configs and bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["", "runlocal", "mediaeval2018", "mediaeval2018,runlocal",
                                 "films", "films,runlocal", "films,own"])
def test_configs_load_and_pass_the_checks(arg):
  c = gru_moe_config.get_config(arg)
  gru_moe.check_config(c)
  assert gru_moe.task(c).loss == "sigmoid_ce"
  phase = gru_moe.plan(c, [])
  assert phase.window["num_clips"] == c.model.window_seconds
  assert gru_moe.plan(c, [{"name": phase.name}]) is None
  outs = gru_moe.outputs(c)
  assert set(outs) == set(c.targets)
  # The harness reads an Output's first target and caches raw predictions by key.
  assert {t: o.task.targets for t, o in outs.items()} == {t: (t,) for t in c.targets}
  assert len({o.key for o in outs.values()}) == len(c.targets)


def test_paper_defaults():
  c = gru_moe_config.get_config("")
  assert (c.model.encoder, c.model.window_seconds, c.model.num_experts) == ("gru", 60, 2)
  assert c.optim.l2 == 1e-8 and c.optim.name == "adam"
  assert c.eval.postprocess == "butterworth"
  assert gru_moe_config.get_config("mediaeval2018").data.batch_size == 512


@pytest.mark.parametrize("key,value,match", [
    ("encoder", "transformer", "config.model.encoder"),
    ("bn_inference", "running", "config.model.bn_inference"),
    ("window_seconds", 0, "config.model.window_seconds"),
    ("head_seconds", "first", "config.model.head_seconds"),
])
def test_bad_model_settings_name_the_key(key, value, match):
  with pytest.raises(errors.ConfigError, match=match):
    gru_moe.create(_config(**{key: value}), DIMS, nnx.Rngs(0))


def test_other_bad_settings_name_the_key():
  c = _config()
  with c.unlocked():
    c.data.clip_seconds = 10
  with pytest.raises(errors.ConfigError, match="config.data.clip_seconds"):
    gru_moe.check_config(c)
  c = _config()
  with c.unlocked():
    c.eval.postprocess = "kalman"
  with pytest.raises(errors.ConfigError, match="config.eval.postprocess"):
    gru_moe.check_config(c)
  c = _config()
  with c.unlocked():
    c.inputs.streams = ("scene", "faces")
  with pytest.raises(errors.ConfigError, match="faces"):
    gru_moe.create(c, DIMS, nnx.Rngs(0))


def test_ensemble_that_does_not_fit_the_devices_names_the_key(monkeypatch):
  c = _config()
  with c.unlocked():
    c.train.ensemble = 3
  gru_moe.check_config(c)   # one device: any K fits
  monkeypatch.setattr(jax, "device_count", lambda: 2)
  with pytest.raises(errors.ConfigError, match="config.train.ensemble=3"):
    gru_moe.check_config(c)


def test_window_longer_than_every_film_names_the_key():
  c = _config()
  gru_moe.check_windows(c, [L, 3])
  with pytest.raises(errors.ConfigError, match="config.model.window_seconds"):
    gru_moe.check_windows(c, [L - 1, 3])


def test_variants_give_the_other_smoothers_and_bn_mode():
  c = _config()
  names = set(gru_moe.variants(c))
  assert names == {"smoothing_moving_average", "smoothing_none", "bn_inference_batch"}
