"""Seed 001's options (001 Sec. 2.2, 3): per-modality encoder sizes, against a NumPy GRU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import gru_moe as gru_moe_config
from emojax import errors
from emojax.models import gru_moe

DIMS = {"scene": 5, "audio": 3, "expression": 4}
B, L = 3, 5


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
  mask[1, 3:] = False
  x = {m: rng.normal(size=(B, L, 1, d)).astype(np.float32) for m, d in DIMS.items()}
  return {"x": x, "x_mask": {m: mask[..., None] for m in x}, "clip_mask": mask}


def _sig(z):
  return 1.0 / (1.0 + np.exp(-z))


def _np_gru(x_TxD, layer):
  p = lambda v: np.asarray(v[...], np.float64)
  w_ih, w_hh, b_ih, b_hh = p(layer.w_ih), p(layer.w_hh), p(layer.b_ih), p(layer.b_hh)
  n = w_hh.shape[0]
  h, hs = np.zeros(n), []
  for x in x_TxD:
    gi, gh = x @ w_ih + b_ih, h @ w_hh + b_hh
    r, z = _sig(gi[:n] + gh[:n]), _sig(gi[n:2 * n] + gh[n:2 * n])
    h = (1 - z) * np.tanh(gi[2 * n:] + r * gh[2 * n:]) + z * h
    hs.append(h)
  return np.stack(hs)


def test_sizes_by_stream_give_each_modality_its_width_and_depth():
  sizes = ((3, 1), (6, 2), (2, 1))
  model = gru_moe.create(_config(sizes_by_stream=sizes), DIMS, nnx.Rngs(0))
  batch = _batch()
  h_BxTxF, _ = model.encode(batch)
  assert h_BxTxF.shape == (B, L, 3 + 6 + 2)
  cols = np.cumsum([0, 3, 6, 2])
  for i, m in enumerate(DIMS):
    stack = model.encoder[m].stacks[m]
    assert [layer.w_hh.shape[0] for layer in stack] == [sizes[i][0]] * sizes[i][1]
    for b in range(B):
      valid = batch["clip_mask"][b]
      want = batch["x"][m][b, valid, 0].astype(np.float64)
      for layer in stack:          # the layers stacked: each reads the previous one's outputs
        want = _np_gru(want, layer)
      got = np.asarray(h_BxTxF[b, valid, cols[i]:cols[i + 1]])
      np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
  model.eval()
  out = model(batch, None)
  assert set(out) == {"valence", "arousal"} and out["valence"].shape == (B, L)
  assert np.all(np.isfinite(np.asarray(out["valence"])))


def test_without_sizes_by_stream_every_modality_has_model_hidden():
  model = gru_moe.create(_config(), DIMS, nnx.Rngs(0))
  assert model.encode(_batch())[0].shape == (B, L, 4 * 3)
  assert gru_moe.stream_sizes(_config()) == {m: (4, 1) for m in DIMS}


@pytest.mark.parametrize("sizes", [((3, 1), (6, 2)), ((3, 1), (6, 0), (2, 1)), ((3,), (6,), (2,))])
def test_bad_sizes_by_stream_name_the_key(sizes):
  with pytest.raises(errors.ConfigError, match="config.model.sizes_by_stream"):
    gru_moe.create(_config(sizes_by_stream=sizes), DIMS, nnx.Rngs(0))


# ----------------------------------------------- the paper's encoder-decoder TCN (a sequence)


def _np_conv1d(x_TxD, conv, left, right):
  w, b = np.asarray(conv.kernel[...], np.float64), np.asarray(conv.bias[...], np.float64)
  x = np.pad(x_TxD, ((left, right), (0, 0)))
  k = w.shape[0]
  return np.stack([np.einsum("kd,kdh->h", x[t:t + k], w) for t in range(len(x_TxD))]) + b


def _np_norm_relu(z_TxH):
  """Lea et al.'s normalized ReLU: ReLU, then divided by its largest channel (+ 1e-5) per step."""
  r = np.maximum(z_TxH, 0)
  return r / (r.max(axis=-1, keepdims=True) + 1e-5)


def _np_edtcn(x_TxD, tcn):
  """Lea et al.'s ED-TCN: ('same' conv, normalized ReLU, max-pool 2) x levels, (upsample 2,
  'same' conv, normalized ReLU) x levels, the input left-padded with zeros to a multiple of
  2**levels."""
  k = tcn.kernel
  pad = (-len(x_TxD)) % 2 ** tcn.levels
  y = np.pad(x_TxD, ((pad, 0), (0, 0)))
  for conv in tcn.enc:
    y = _np_norm_relu(_np_conv1d(y, conv, (k - 1) // 2, k // 2))
    y = np.maximum(y[0::2], y[1::2])
  for conv in tcn.dec:
    y = _np_norm_relu(_np_conv1d(np.repeat(y, 2, axis=0), conv, (k - 1) // 2, k // 2))
  return y[pad:]


def test_sequence_tcn_matches_numpy_and_sees_both_sides():
  c = _config(encoder="tcn", tcn_kernel=3)
  assert c.model.tcn_output == "sequence"   # the paper's (001 Sec. 2.2)
  model = gru_moe.create(c, DIMS, nnx.Rngs(0))
  batch = _batch()
  batch["clip_mask"][1, 3:] = True          # whole windows: the masked-input zeroing aside
  batch["x_mask"] = {m: batch["clip_mask"][..., None] for m in batch["x"]}
  h_BxTxF, _ = model.encode(batch)
  for i, m in enumerate(DIMS):
    for b in range(B):
      want = _np_edtcn(batch["x"][m][b, :, 0].astype(np.float64), model.encoder[m])
      np.testing.assert_allclose(np.asarray(h_BxTxF[b, :, 4 * i:4 * (i + 1)]), want,
                                 rtol=2e-4, atol=2e-6)
  # Not causal: the output at second 1 moves with the input at second 3.
  grads = jax.grad(lambda xs: jnp.sum(model.encode({**batch, "x": xs})[0][:, 1]))(
      {m: jnp.asarray(v) for m, v in batch["x"].items()})
  assert any(np.any(np.asarray(g)[:, 3] != 0) for g in grads.values())


@pytest.mark.parametrize("tcn_output", ["sequence", "last"])
def test_tcn_outputs_stay_in_unit_interval_whatever_the_input_scale(tcn_output):
  """The normalized ReLU bounds every encoder output to [0, 1) with one channel near 1 wherever a
  step has any positive activation, for inputs of any scale. With a plain ReLU the outputs grow
  with the input (and with the weights in training): issue 24's default TCN run grew them ~25x in
  20 steps and saturated the MoE's experts, after which it predicted 0.5 everywhere."""
  model = gru_moe.create(_config(encoder="tcn", tcn_output=tcn_output), DIMS, nnx.Rngs(0))
  batch = _batch()
  for scale in (1e-2, 1.0, 1e3):
    h_BxTxF, _ = model.encode({**batch, "x": {m: v * scale for m, v in batch["x"].items()}})
    h = np.asarray(h_BxTxF, np.float64)
    assert h.min() >= 0.0 and h.max() < 1.0, scale
    for i in range(len(DIMS)):           # per stream and step: the largest channel is ~1 or all 0
      top = h[..., 4 * i:4 * (i + 1)].max(-1)
      assert np.all((top > 0.99) | (top == 0.0)), (scale, i)


def test_sequence_tcn_trains_on_every_second_and_predicts_window_by_window():
  c = _config(encoder="tcn")
  phase = gru_moe.plan(c, [])
  assert phase.window == {"num_clips": L}   # the loss on every second, windows of L seconds
  for o in gru_moe.outputs(c).values():
    assert o.window == {"num_clips": L}
  # The causal TCN and the GRU stay sequence-to-one.
  for model in ({"encoder": "tcn", "tcn_output": "last"}, {"encoder": "gru"}):
    c = _config(**model)
    phase = gru_moe.plan(c, [])
    assert phase.window == {"num_clips": L, "loss_on": "last", "sliding_seconds": L}
    assert [o.window for o in gru_moe.outputs(c).values()] == [{"sliding_seconds": L}] * len(
        c.targets)
  with pytest.raises(errors.ConfigError, match="config.model.tcn_output"):
    gru_moe.create(_config(encoder="tcn", tcn_output="middle"), DIMS, nnx.Rngs(0))


# ------------------------------------------------- batch-norm statistics at inference (001 Sec. 3)


def test_bn_batch_mode_normalises_with_the_valid_rows_of_the_batch():
  bn = gru_moe.MaskedBatchNorm(3, "batch", rngs=nnx.Rngs(0))
  bn.bn.scale[...] = jnp.asarray([1.0, 2.0, 0.5])
  bn.bn.bias[...] = jnp.asarray([0.0, -1.0, 3.0])
  bn.bn.mean[...] = jnp.asarray([5.0, 5.0, 5.0])   # running statistics that must not be used
  bn.bn.var[...] = jnp.asarray([9.0, 9.0, 9.0])
  bn.eval()
  x = np.random.default_rng(0).normal(2.0, 3.0, size=(6, 3)).astype(np.float32)
  valid = np.asarray([1, 1, 0, 1, 1, 0], bool)
  got = np.asarray(bn(jnp.asarray(x), jnp.asarray(valid)))
  v = x[valid].astype(np.float64)
  want = (x - v.mean(0)) / np.sqrt(v.var(0) + 1e-3) * [1.0, 2.0, 0.5] + [0.0, -1.0, 3.0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  pop = np.asarray(bn(jnp.asarray(x), jnp.asarray(valid), "population"))
  np.testing.assert_allclose(pop, (x - 5.0) / np.sqrt(9.0 + 1e-3) * [1.0, 2.0, 0.5]
                             + [0.0, -1.0, 3.0], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(bn.bn.mean[...]), [5.0, 5.0, 5.0])  # left alone

