"""AttendAffectNet model pieces against an independent NumPy reference (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import toy_data_dir
from configs import attendaffectnet as aan_config
from emojax import contract, errors
from emojax.models import attendaffectnet as aan

DIMS = {"audio": 6, "scene": 5, "expression": 7}


def make(variant, *, layer_norm="authors", streams=("audio", "scene", "expression"), **over):
  c = aan_config.get_config(f"{variant},arousal")
  with c.unlocked():
    c.inputs.streams = streams
    c.model.layer_norm = layer_norm
    c.model.encoder_layers = 2
    c.model.decoder_layers = 2
    c.model.num_clips = 4
    c.model.start_value = 0.25
    for k, v in over.items():
      setattr(c.inputs if k in ("streams", "unit") else c.model, k, v)
  model = aan.create(c, DIMS, nnx.Rngs(1))
  model.eval()
  return c, model


# ---- NumPy reference -----------------------------------------------------------------------------


def np_params(net):
  return jax.tree.map(lambda v: np.asarray(v, np.float64), nnx.to_pure_dict(nnx.state(net)))


def np_ln(x, p, kind):
  mean = x.mean(-1, keepdims=True)
  if kind == "authors":
    return p["scale"] * (x - mean) / (x.std(-1, ddof=1, keepdims=True) + 1e-6) + p["bias"]
  return p["scale"] * (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-6) + p["bias"]


def np_lin(x, p):
  return x @ p["kernel"] + p["bias"]


def np_mha(q_in, kv_in, p, mask, heads=2):
  n, tq, d = q_in.shape
  tk = kv_in.shape[1]
  sp = lambda z, t: z.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)
  q, k, v = sp(np_lin(q_in, p["q"]), tq), sp(np_lin(kv_in, p["k"]), tk), sp(np_lin(kv_in, p["v"]), tk)
  s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads)
  if mask is not None:
    s = np.where(mask[:, None], s, -1e9)
  s = np.exp(s - s.max(-1, keepdims=True))
  s /= s.sum(-1, keepdims=True)
  return np_lin((s @ v).transpose(0, 2, 1, 3).reshape(n, tq, d), p["out"])


def np_ff(x, p, ff):
  """relu: ReLU(w x); x_plus_tanh: w(x + tanh x) (the released audio-only / video-only FF)."""
  return np_lin(x + np.tanh(x), p) if ff == "x_plus_tanh" else np.maximum(np_lin(x, p), 0)


def np_block(x, ln_p, fn, kind, norm):
  """pre: x + f(LN(x)); post (the paper's text): LN(x + f(x))."""
  return np_ln(x + fn(x), ln_p, kind) if norm == "post" else x + fn(np_ln(x, ln_p, kind))


def np_encode(tokens, p, kind, norm="pre", ff="relu"):
  lead = tokens.shape[:-2]
  x = tokens.reshape(-1, *tokens.shape[-2:])
  for i in sorted(p["layers"]):
    lp = p["layers"][i]
    x = np_block(x, lp["norm1"], lambda y: np_mha(y, y, lp["attn"], None), kind, norm)
    x = np_block(x, lp["norm2"], lambda y: np_ff(y, lp["ff"]["w"], ff), kind, norm)
  if norm == "pre":    # post-norm: no final LayerNorm
    x = np_ln(x, p["norm"], kind)
  return x.reshape(*lead, *x.shape[-2:])


def np_feature(feats, p, streams, kind, norm="pre", ff="relu", head="none"):
  t = np.stack([np_lin(feats[s], p["streams"]["proj"][s]) for s in streams], -2)
  pooled = np_encode(t, p["streams"], kind, norm, ff).mean(-2)
  return np_lin(np.tanh(pooled) if head == "tanh" else pooled, p["head"])[..., 0]


def np_pe(l, d):
  pe = np.zeros((l, d))
  for pos in range(l):
    for i in range(0, d, 2):
      w = 1.0 / 10000 ** (i / d)
      pe[pos, i] = math.sin(pos * w)
      if i + 1 < d:
        pe[pos, i + 1] = math.cos(pos * w)
  return pe


def np_decode(feats, prev, valid, p, streams, kind, start, feature=False, causal_memory=True,
              norm="pre", ff="relu", head="none"):
  """Outputs (B, L) of the decoder given the previous values prev (B, L) (position j reads <j)."""
  if feature:
    t = np.stack([np_lin(feats[s], p["streams"]["proj"][s]) for s in streams], -2)
    t = np_encode(t, p["streams"], kind, norm, ff)
  else:
    t = np.stack([np_lin(feats[s], p["streams"]["proj"][s]) for s in streams], -2)
  b, l = t.shape[:2]
  d = t.shape[-1] * t.shape[-2]
  mem = t.reshape(b, l, d) + np_pe(l, d)
  shifted = np.concatenate([np.full((b, 1), start), prev[:, :-1]], 1)
  x = np.repeat(shifted[..., None], d, -1) + np_pe(l, d)
  causal = np.tril(np.ones((l, l), bool))
  self_mask = causal[None] & valid[:, None, :]
  mem_mask = self_mask if causal_memory else np.broadcast_to(valid[:, None, :], (b, l, l))
  for i in sorted(p["layers"]):
    lp = p["layers"][i]
    x = np_block(x, lp["norm1"], lambda y: np_mha(y, y, lp["self_attn"], self_mask), kind, norm)
    x = np_block(x, lp["norm2"], lambda y: np_mha(y, mem, lp["src_attn"], mem_mask), kind, norm)
    x = np_block(x, lp["norm3"], lambda y: np_ff(y, lp["ff"]["w"], ff), kind, norm)
  if norm == "pre":
    x = np_ln(x, p["norm"], kind)
  return np_lin(np.tanh(x) if head == "tanh" else x, p["head"])[..., 0]


def window_batch(rng, b=3, l=4, s=3, streams=DIMS):
  x = {k: rng.normal(size=(b, l, s, d)).astype(np.float32) for k, d in streams.items()}
  sm = rng.random((b, l, s)) > 0.3
  sm[..., 0] = True
  cm = np.ones((b, l), bool)
  cm[0, -1] = False
  y = rng.uniform(-1, 1, (b, l)).astype(np.float32)
  return {"x": x, "x_mask": {k: sm for k in x}, "clip_mask": cm, "y": {"arousal": y}}


def np_clip_means(batch):
  sm = next(iter(batch["x_mask"].values())).astype(np.float64)
  return {k: (v * sm[..., None]).sum(2) / sm.sum(2)[..., None] for k, v in batch["x"].items()}


# ---- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,norm,ff,head", [
    ("authors", "pre", "relu", "none"), ("standard", "pre", "relu", "none"),
    ("authors", "post", "relu", "none"), ("authors", "pre", "x_plus_tanh", "tanh"),
    ("standard", "post", "x_plus_tanh", "none")])
def test_feature_aan_matches_numpy_on_masked_windows(kind, norm, ff, head):
  rng = np.random.default_rng(0)
  c, model = make("feature", layer_norm=kind, norm=norm, feed_forward=ff, head_activation=head)
  if norm == "post":   # post-norm layers end in their own LayerNorm: no final one
    assert model.nets["arousal"].streams.norm is None
  batch = window_batch(rng)
  got = aan.outputs(c)["arousal"].forward(model, batch, None)
  want = np_feature(np_clip_means(batch), np_params(model.nets["arousal"]), tuple(c.inputs.streams),
                    kind, norm, ff, head)
  assert got.shape == (3, 4)
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-5)


def test_layer_norms_differ():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 8)), jnp.float32)
  a, s = aan.LayerNorm(8, "authors"), aan.LayerNorm(8, "standard")
  xs = np.asarray(x, np.float64)
  np.testing.assert_allclose(np.asarray(a(x)), (xs - xs.mean(-1, keepdims=True)) / (
      xs.std(-1, ddof=1, keepdims=True) + 1e-6), atol=1e-5)
  np.testing.assert_allclose(np.asarray(s(x)), (xs - xs.mean(-1, keepdims=True)) / np.sqrt(
      xs.var(-1, keepdims=True) + 1e-6), atol=1e-5)
  with pytest.raises(errors.ConfigError, match="layer_norm"):
    aan.LayerNorm(8, "rms")


@pytest.mark.parametrize("variant,norm,ff,head", [
    ("temporal", "pre", "relu", "none"), ("feature_temporal", "pre", "relu", "none"),
    ("temporal", "post", "x_plus_tanh", "tanh"), ("feature_temporal", "post", "relu", "none")])
def test_temporal_teacher_forcing_and_autoregression_match_numpy(variant, norm, ff, head):
  rng = np.random.default_rng(2)
  c, model = make(variant, norm=norm, feed_forward=ff, head_activation=head)
  batch = window_batch(rng)
  p, streams = np_params(model.nets["arousal"]), tuple(c.inputs.streams)
  feats, valid = np_clip_means(batch), batch["clip_mask"]
  feature = variant == "feature_temporal"
  arch = dict(norm=norm, ff=ff, head=head)
  # Teacher forcing (a training step: rngs given; model.eval() keeps dropout off).
  tf = aan.temporal_train_forward(c, "arousal")(model, batch, nnx.Rngs(dropout=0))
  want_tf = np_decode(feats, batch["y"]["arousal"].astype(np.float64), valid, p, streams,
                      "authors", 0.25, feature, **arch)
  np.testing.assert_allclose(np.asarray(tf)[valid], want_tf[valid], atol=2e-5)
  # Step by step in NumPy: step j feeds the outputs of steps < j.
  out = np.zeros((3, 4))
  for j in range(4):
    out[:, j] = np_decode(feats, out, valid, p, streams, "authors", 0.25, feature, **arch)[:, j]
  ar = jax.jit(lambda m, b: aan.outputs(c)["arousal"].forward(m, b, None))(model, batch)
  np.testing.assert_allclose(np.asarray(ar)[valid], out[valid], atol=2e-5)
  # Validation during training (no rngs) decodes step by step too, never from the labels.
  val = aan.temporal_train_forward(c, "arousal")(model, batch, None)
  np.testing.assert_allclose(np.asarray(val)[valid], out[valid], atol=2e-5)


def test_causal_memory_and_padding():
  rng = np.random.default_rng(3)
  c, model = make("temporal")
  batch = window_batch(rng)
  fwd = aan.outputs(c)["arousal"].forward
  base = np.asarray(fwd(model, batch, None))
  later = {**batch, "x": {k: v.copy() for k, v in batch["x"].items()}}
  for v in later["x"].values():
    v[:, 2:] += 5.0                                      # change segments 2, 3
  changed = np.asarray(fwd(model, later, None))
  np.testing.assert_allclose(changed[:, :2], base[:, :2], atol=1e-6)   # outputs 0, 1 unchanged
  assert np.abs(changed[:, 2:] - base[:, 2:]).max() > 1e-3
  # Without causal memory every output reads every segment.
  c2, model2 = make("temporal", causal_memory=False)
  assert np.abs(np.asarray(aan.outputs(c2)["arousal"].forward(model2, later, None))[:, :2] -
                np.asarray(aan.outputs(c2)["arousal"].forward(model2, batch, None))[:, :2]
                ).max() > 1e-4


def test_per_clip_subsegments_match_numpy():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, 12, 3)).astype(np.float32)
  mask = np.zeros((2, 12), bool)
  mask[0, :9] = True
  mask[1, :12] = True
  got = np.asarray(aan.subsegment_features({"x": {"a": x}, "x_mask": {"a": mask}}, ["a"], 4)["a"])
  for b in range(2):
    n = mask[b].sum()
    parts = np.array_split(np.arange(n), 4)     # 9 -> 3,2,2,2 ; floor(i*4/9) -> 3,2,2,2 as well
    for k, idx in enumerate(parts):
      np.testing.assert_allclose(got[b, k], x[b, idx].mean(0), atol=1e-6)


def test_per_clip_temporal_predicts_one_value_per_clip():
  rng = np.random.default_rng(5)
  c, model = make("temporal", unit="clip")
  batch = {"x": {k: rng.normal(size=(3, 10, d)).astype(np.float32) for k, d in DIMS.items()},
           "clip_mask": np.ones((3,), bool), "y": {"arousal": np.array([0.1, -0.2, 0.3], np.float32)}}
  assert aan.outputs(c)["arousal"].forward(model, batch, None).shape == (3,)
  assert aan.temporal_train_forward(c, "arousal")(model, batch, nnx.Rngs(dropout=0)).shape == (3,)


def test_predict_film_is_last_output_of_each_window():
  rng = np.random.default_rng(6)
  c, model = make("temporal")
  net = model.nets["arousal"]
  t = 9
  feats = {k: jnp.asarray(rng.normal(size=(t, d)), jnp.float32) for k, d in DIMS.items()}
  got = np.asarray(jax.jit(lambda n, f: aan.predict_film(n, f, 4))(net, feats))
  p, streams = np_params(net), tuple(c.inputs.streams)
  for i in range(t):
    lo = max(0, i - 3)
    w = {k: np.asarray(v, np.float64)[None, lo:i + 1] for k, v in feats.items()}
    l = i + 1 - lo
    out = np.zeros((1, l))
    for j in range(l):
      out[:, j] = np_decode(w, out, np.ones((1, l), bool), p, streams, "authors", 0.25)[:, j]
    np.testing.assert_allclose(got[i], out[0, -1], atol=2e-5)


def test_training_loss_gradients_finite_and_subsets():
  rng = np.random.default_rng(7)
  c, model = make("feature_temporal", streams=("audio",), encoder_layers=1, decoder_layers=1)
  model.train()
  assert aan.modalities(c) == ("audio",)
  batch = window_batch(rng, streams={"audio": 6})
  phase = aan.plan(c, [])
  assert phase.name == "arousal/feature_temporal" and phase.patience == 30
  assert phase.window == {"num_clips": 4, "loss_on": "last"}
  assert aan.plan(c, [{"name": "arousal/feature_temporal"}]) is None
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def loss(params):
    m = nnx.merge(graphdef, params, rest)
    return contract.loss_value(phase.task, phase.forward(m, batch, nnx.Rngs(dropout=0)), batch)

  value, grads = jax.jit(jax.value_and_grad(loss))(params)
  assert np.isfinite(float(value))
  leaves = jax.tree.leaves(grads)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
  assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0


def test_bad_inputs():
  c, model = make("feature")
  with pytest.raises(errors.DataError, match="stream"):
    aan.create(c, {"audio": 3}, nnx.Rngs(0))
  batch = window_batch(np.random.default_rng(0), streams={"audio": 6})
  with pytest.raises(errors.DataError, match="lacks stream"):
    aan.outputs(c)["arousal"].forward(model, batch, None)
  with pytest.raises(ValueError, match="exclude each other"):
    aan_config.get_config("feature,temporal")
  c2 = aan_config.get_config("feature")
  with c2.unlocked():
    c2.model.variant = "decoder"
  with pytest.raises(errors.ConfigError, match="model.variant"):
    aan.create(c2, DIMS, nnx.Rngs(0))
  for key, bad in (("norm", "sandwich"), ("feed_forward", "gelu"), ("head_activation", "relu")):
    c3 = aan_config.get_config("feature")
    with c3.unlocked():
      c3.model[key] = bad
    with pytest.raises(errors.ConfigError, match=rf"config\.model\.{key}='{bad}'"):
      aan.create(c3, DIMS, nnx.Rngs(0))


def test_temporal_width_is_8_per_stream():
  """The paper's d = 40 for its five streams (003 Sec. III-C(c)); 8 x streams for other sets."""
  dims = {s: 3 for s in aan.RELEASED_STREAMS}
  for streams, d in ((aan.RELEASED_STREAMS, 40), (aan.RELEASED_STREAMS[3:], 16),
                     (aan.RELEASED_STREAMS[:3], 24)):
    c = aan_config.get_config("temporal,arousal")
    with c.unlocked():
      c.inputs.streams = streams
      c.model.decoder_layers = 1
    net = aan.create(c, dims, nnx.Rngs(0)).nets["arousal"]
    assert net.d == d and net.head.kernel[...].shape == (d, 1)
    assert net.layers[0].self_attn.q.kernel[...].shape == (d, d)


def test_streams_with_several_feature_axes_average_all_but_the_last():
  rng = np.random.default_rng(8)
  x = rng.normal(size=(2, 3, 4, 6, 5)).astype(np.float32)     # (B, L, S, frames, bins)
  sm = rng.random((2, 3, 4)) > 0.3
  sm[..., 0] = True
  got = np.asarray(aan.clip_features({"x": {"m": x}, "x_mask": {"m": sm}}, ["m"])["m"])
  per_sec = x.astype(np.float64).mean(3)
  want = (per_sec * sm[..., None]).sum(2) / sm.sum(2)[..., None]
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert aan._flat_dim((10, 96, 64)) == 64 and aan._flat_dim(7) == 7


def test_per_clip_streams_average_only_the_rows_of_their_clip(tmp_path):
  """Issue 19: the harness's own per-clip batches (a ClipStore over a dataset whose `segments`
  stream has 2-4 rows per clip, padded to 4) are averaged over each clip's real rows only."""
  import clip_method  # pylint: disable=import-outside-toplevel
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  config = clip_method.get_config()
  with config.unlocked():
    config.dataset.data_dir = str(toy_data_dir())
  store = input_pipeline.load_clip_split(config, "train", ("segments",), ("valence",))
  assert store.ragged == ("segments",)
  out = contract.Output(lambda m, b, r: b["y"]["valence"], contract.Task(("valence",)))
  batch = next(iter(store.prediction_batches(out, batch_size=len(store))))
  rows = [np.asarray(store.source[int(r)]["segments"], np.float64) for r in store.rows]
  assert {len(r) for r in rows} == {2, 3, 4}       # padding happens in this batch
  got = np.asarray(aan.clip_vectors(batch, ["segments"])["segments"])
  np.testing.assert_allclose(got, np.stack([r.mean(0) for r in rows]), atol=1e-5)
  # The temporal variants' sub-segments: equal parts of the real rows (np.array_split sizes).
  got = np.asarray(aan.subsegment_features(batch, ["segments"], 2)["segments"])
  want = np.stack([[p.mean(0) for p in np.array_split(r, 2)] for r in rows])
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("elementwise_max", [0, 10_000])
@pytest.mark.parametrize("self_attention", [True, False])
def test_attention_as_products_and_sums_or_as_dots_matches_numpy(monkeypatch, elementwise_max,
                                                                 self_attention):
  """Both forms of the attention (broadcast products and sums for tiny heads, batched dots
  otherwise: `aan.ELEMENTWISE_ATTENTION_MAX`) give NumPy's multi-head attention, masked or not."""
  monkeypatch.setattr(aan, "ELEMENTWISE_ATTENTION_MAX", elementwise_max)
  mha = aan.MultiHeadAttention(8, 2, 0.0, rngs=nnx.Rngs(3))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 5, 8)).astype(np.float32)
  kv = x if self_attention else rng.normal(size=(3, 4, 8)).astype(np.float32)
  mask = rng.uniform(size=(3, 5, kv.shape[1])) > 0.3
  mask[..., 0] = True
  p = np_params(mha)
  for m in (None, mask):
    xj = jnp.asarray(x)
    got = mha(xj, xj if self_attention else jnp.asarray(kv), None if m is None else jnp.asarray(m))
    np.testing.assert_allclose(np.asarray(got), np_mha(x, kv, p, m), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropped", [False, True])
def test_feature_major_attention_and_its_vjp_match_numpy(masked, dropped):
  """`aan.attention_fm` (feature-major heads (3, H, C, T, N), hand-written VJP) against NumPy's
  softmax attention and its gradient written out in float64 (ds = P * (dP - sum(dP * P)))."""
  rng = np.random.default_rng(4)
  h, c, t, n = 2, 4, 5, 3
  qkv = rng.normal(size=(3, h, c, t, n))
  drop = ((rng.uniform(size=(h, t, t, n)) > 0.2) / 0.8) if dropped else None
  mask = None
  if masked:
    mask = rng.uniform(size=(1, t, t, n)) > 0.3
    mask[:, :, 0] = True
  do = rng.normal(size=(h, c, t, n))
  # NumPy, token-major per (head, example): q, k, v (T, C).
  q, k, v = (np.moveaxis(qkv[i], (1, 2), (3, 1)) for i in range(3))   # (H, T, N, C) -> below
  q, k, v = (np.moveaxis(z, 2, 0) for z in (q, k, v))                 # (N, H, T, C)
  s = q @ np.swapaxes(k, -1, -2) / math.sqrt(c)                        # (N, H, Q, K)
  m = None if mask is None else np.moveaxis(mask, 3, 0)               # (N, 1, Q, K)
  if m is not None:
    s = np.where(m, s, -1e9)
  p = np.exp(s - s.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  dr = np.ones_like(p) if drop is None else np.moveaxis(drop, 3, 0)
  o = (p * dr) @ v                                                     # (N, H, Q, C)
  g = np.moveaxis(do, (0, 1, 2, 3), (1, 3, 2, 0))                      # (N, H, Q, C)
  dpd = g @ np.swapaxes(v, -1, -2)
  dv = np.swapaxes(p * dr, -1, -2) @ g
  dp = dpd * dr
  ds = p * (dp - (dp * p).sum(-1, keepdims=True))
  if m is not None:
    ds = np.where(m, ds, 0.0)
  ds /= math.sqrt(c)
  dq, dk = ds @ k, np.swapaxes(ds, -1, -2) @ q
  fm = lambda z: np.moveaxis(z, (0, 1, 2, 3), (3, 0, 2, 1))           # (N, H, T, C) -> (H, C, T, N)
  args = (jnp.asarray(qkv, jnp.float32), None if drop is None else jnp.asarray(drop, jnp.float32),
          None if mask is None else jnp.asarray(mask))
  out, vjp = jax.vjp(lambda a: aan.attention_fm(a, *args[1:]), args[0])
  np.testing.assert_allclose(np.asarray(out), fm(o), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(vjp(jnp.asarray(do, jnp.float32))[0]),
                             np.stack([fm(dq), fm(dk), fm(dv)]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("ff", ["relu", "x_plus_tanh"])
def test_feature_major_encoder_draws_the_token_major_dropout_masks(monkeypatch, norm, ff):
  """In training (dropout on), the feature-major encoder (`aan.FEATURE_MAJOR_MAX_WIDTH`) drops the
  same entries as the token-major one: same outputs and parameter gradients for the same keys."""
  c, model = make("feature", norm=norm, feed_forward=ff)
  net = model.nets["arousal"]
  net.train()
  rng = np.random.default_rng(2)
  feats = {s: jnp.asarray(rng.normal(size=(6, d)), jnp.float32) for s, d in DIMS.items()}
  graphdef, params = nnx.split(net, nnx.Param)
  outs = []
  for width in (0, 16):
    monkeypatch.setattr(aan, "FEATURE_MAJOR_MAX_WIDTH", width)

    def loss(p):
      y = nnx.merge(graphdef, p)(feats, nnx.Rngs(dropout=7))
      return jnp.sum(y * jnp.arange(1.0, 7.0)), y
    outs.append(jax.grad(loss, has_aux=True)(params))
  (g0, y0), (g1, y1) = outs
  assert not np.allclose(np.asarray(y0), np.asarray(net.eval() or net(feats)))   # dropout acted
  np.testing.assert_allclose(np.asarray(y1), np.asarray(y0), rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
