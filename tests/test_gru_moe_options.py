"""Seed 001's options (001 Sec. 2.2, 3): per-modality encoder sizes, against a NumPy GRU."""

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
  return {"x": x, "second_mask": mask[..., None], "clip_mask": mask}


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
