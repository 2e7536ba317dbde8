"""Seed 002's fusion LSTM: pieces against NumPy references, masks, pretrained weights, phases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import fusion_lstm as fusion_config
from emojax import contract, errors
from emojax.models import fusion_lstm as fl

TINY_CONV = ((4, 3, 1, 1, True, True), (6, 3, 1, 1, False, False))
L, SIDE, CROP = 3, 10, 8
DIMS = {"keyframe": (L, SIDE, SIDE, 3), "spectrogram_image": (L, SIDE, SIDE)}


def _config(fusion="modal", target="arousal", **model):
  c = fusion_config.get_config(f"{target},runlocal" + ("" if fusion == "modal" else f",{fusion}"))
  with c.unlocked():
    c.model.conv = TINY_CONV
    c.model.crop = CROP
    c.model.width = 1.0
    c.model.fc_width = 8
    c.model.fusion_dim = 6
    c.model.lstm_hidden = 5
    c.model.mlp_hidden = 4
    c.model.update(model)
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
  return c


def _batch(b=2, seed=0):
  rng = np.random.default_rng(seed)
  return {"x": {"keyframe": jnp.asarray(rng.integers(0, 256, (b, L, SIDE, SIDE, 3), np.uint8)),
                "spectrogram_image": jnp.asarray(rng.integers(0, 256, (b, L, SIDE, SIDE), np.uint8))},
          "clip_mask": jnp.ones(b), "y": {"arousal_class": jnp.asarray(rng.integers(0, 3, b))}}


@pytest.fixture(scope="module")
def small_clips_dir(tmp_path_factory):
  """One data dir for the module's two harness runs: `synthetic_clips/small` is built once."""
  return tmp_path_factory.mktemp("small_clips")


@pytest.fixture(scope="module")
def modal():
  config = _config()
  model = fl.create(config, DIMS, nnx.Rngs(0))
  model.eval()
  return config, model


# ---------------------------------------------------------------------------- NumPy reference


def _np_conv(x_NxHxWxC, w_KxKxCxO, b_O, stride, pad):
  x = np.pad(x_NxHxWxC, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  k = w_KxKxCxO.shape[0]
  ho = (x.shape[1] - k) // stride + 1
  wo = (x.shape[2] - k) // stride + 1
  out = np.zeros((x.shape[0], ho, wo, w_KxKxCxO.shape[-1]))
  for i in range(ho):
    for j in range(wo):
      patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
      out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w_KxKxCxO)
  return out + b_O


def _np_pool(x):
  ho, wo = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
  return np.array([[x[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2)) for j in range(wo)]
                   for i in range(ho)]).transpose(2, 0, 1, 3)


def _np_lrn(x, size=5, k=2.0, alpha=1e-4, beta=0.75):
  out = np.empty_like(x)
  c = x.shape[-1]
  for ch in range(c):
    lo, hi = max(0, ch - size // 2), min(c, ch + size // 2 + 1)
    out[..., ch] = x[..., ch] / (k + alpha * np.sum(x[..., lo:hi] ** 2, axis=-1)) ** beta
  return out


def _np_alexnet(net, x):
  h = x
  for layer, (_, _, stride, pad, pool, lrn) in zip(net.convs, TINY_CONV):
    h = np.maximum(_np_conv(h, np.asarray(layer.kernel[...]), np.asarray(layer.bias[...]),
                            stride, pad), 0)
    h = _np_lrn(h) if lrn else h
    h = _np_pool(h) if pool else h
  h = h.reshape(h.shape[0], -1)
  for fc in (net.fc6, net.fc7):
    h = np.maximum(h @ np.asarray(fc.kernel[...]) + np.asarray(fc.bias[...]), 0)
  return h


def _sig(z):
  return 1 / (1 + np.exp(-z))


def _np_branch(br, feats, mask_BxL=None):
  p = lambda v: np.asarray(v[...], np.float64)
  alpha = p(br.alpha)
  x = sum(alpha[i] * np.maximum(feats[m] @ p(br.proj[m].kernel) + p(br.proj[m].bias), 0)
          for i, m in enumerate(br.modalities))
  hdim = p(br.lstm.w_hh).shape[0]
  b, steps = x.shape[:2]
  h, c = np.zeros((b, hdim)), np.zeros((b, hdim))
  for t in range(steps):
    z = x[:, t] @ p(br.lstm.w_ih) + h @ p(br.lstm.w_hh) + p(br.lstm.b_ih) + p(br.lstm.b_hh)
    i, f, g, o = (z[:, k * hdim:(k + 1) * hdim] for k in range(4))
    c_new = _sig(f) * c + _sig(i) * np.tanh(g)
    h_new = _sig(o) * np.tanh(c_new)
    keep = np.ones(b, bool) if mask_BxL is None else np.asarray(mask_BxL[:, t], bool)
    h, c = np.where(keep[:, None], h_new, h), np.where(keep[:, None], c_new, c)
  z = np.maximum(h @ p(br.mlp.kernel) + p(br.mlp.bias), 0)
  return z @ p(br.out.kernel) + p(br.out.bias)


def _np_features(model, batch):
  off = (SIDE - CROP) // 2
  out = {}
  for m, stream in (("visual", "keyframe"), ("audio", "spectrogram_image")):
    x = np.asarray(batch["x"][stream], np.float64)
    x = x if m == "visual" else x[..., None]
    b = x.shape[0]
    x = x[:, :, off:off + CROP, off:off + CROP].reshape(b * L, CROP, CROP, -1)
    x = (x - 127.5) / 127.5
    out[m] = _np_alexnet(model.encoders[m], x).reshape(b, L, -1)
  return out


# ---------------------------------------------------------------------------- tests


def test_forward_matches_numpy_reference(modal):
  config, model = modal
  batch = _batch()
  logits = fl.outputs(config)["arousal"].forward(model, batch, None)
  want = _np_branch(model.branches["fused"], _np_features(model, batch))
  assert logits.shape == (2, 3)
  np.testing.assert_allclose(np.asarray(logits), want, rtol=2e-4, atol=2e-5)


def test_segment_mask_takes_the_last_valid_step(modal):
  _, model = modal
  batch = _batch()
  mask = jnp.asarray([[1, 1, 1], [1, 1, 0]], bool)
  batch["x"]["segment_mask"] = mask
  got = np.asarray(model.branch("fused", batch, None))
  want = _np_branch(model.branches["fused"], _np_features(model, batch), np.asarray(mask))
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
  # Clip 1 equals its own 2-segment version padded with anything.
  short = {k: v.at[1, 2].set(0) for k, v in batch["x"].items() if k != "segment_mask"}
  again = np.asarray(model.branch("fused", {"x": {**short, "segment_mask": mask}}, None))
  np.testing.assert_allclose(again, got, rtol=1e-5, atol=1e-6)


def test_train_step_gradients_finite_and_random_crops():
  config = _config(learn_alpha=True)
  model = fl.create(config, DIMS, nnx.Rngs(1))
  model.train()
  phase = fl.plan(config, [])
  batch = _batch(4)

  def loss_fn(m, key):
    return contract.loss_value(phase.task, phase.forward(m, batch, nnx.Rngs(dropout=key)), batch)

  loss, grads = nnx.jit(nnx.value_and_grad(loss_fn))(model, jax.random.key(0))  # one program
  leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
  assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in leaves)
  assert float(jnp.abs(grads.branches["fused"].alpha[...]).sum()) > 0  # alpha is learned
  # Random crops: every crop is a window of its image; another key gives other windows.
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, SIDE, SIDE, 1), np.uint8))
  a = np.asarray(fl.crop_images(x, CROP, jax.random.key(0)))
  b = np.asarray(fl.crop_images(x, CROP, jax.random.key(1)))
  windows = lambda img: [img[i:i + CROP, j:j + CROP] for i in range(3) for j in range(3)]
  for n in range(6):
    assert any(np.array_equal(a[n], w) for w in windows(np.asarray(x[n])))
  assert not np.array_equal(a, b)
  np.testing.assert_array_equal(fl.crop_images(x, CROP, None), x[:, 1:9, 1:9])
  with pytest.raises(errors.ConfigError, match="model.crop=12 is larger"):
    fl.crop_images(x, 12, None)


def test_late_fusion_mixes_the_branch_probabilities():
  config = _config("late")
  model = fl.create(config, DIMS, nnx.Rngs(2))
  model.eval()
  batch = _batch()
  p = jax.nn.softmax(fl.outputs(config)["arousal"].forward(model, batch, None))
  p_a = jax.nn.softmax(model.branch("audio", batch, None))
  p_v = jax.nn.softmax(model.branch("visual", batch, None))
  np.testing.assert_allclose(p, 0.56 * p_a + 0.44 * p_v, rtol=1e-5)
  # Two phases, each training its own encoder and branch only.
  first = fl.plan(config, [])
  second = fl.plan(config, [{}])
  assert fl.plan(config, [{}, {}]) is None
  assert (first.name, second.name) == ("arousal/late_audio", "arousal/late_visual")
  trained = nnx.state(model, first.trainable)
  paths = {"/".join(str(k) for k in path) for path, _ in nnx.to_flat_state(trained)}
  assert paths and all(p.startswith(("encoders/audio/", "branches/audio/")) for p in paths)
  assert set(fl.variants(config)) == {"late_audio_branch", "late_visual_branch"}


def test_early_and_single_modality_shapes():
  for fusion, streams in (("early", ("spectrogram_image", "keyframe")), ("visual", ("keyframe",)),
                          ("audio", ("spectrogram_image",))):
    config = _config(fusion)
    assert fl.modalities(config) == streams
    model = fl.create(config, {s: DIMS[s] for s in streams}, nnx.Rngs(0))
    model.eval()
    assert set(model.encoders) == {"visual", "audio"} & {
        {"keyframe": "visual", "spectrogram_image": "audio"}[s] for s in streams}
    out = fl.outputs(config)["arousal"].forward(model, _batch(), None)
    assert out.shape == (2, 3) and np.all(np.isfinite(out))


def test_pretrained_weights_round_trip_and_wrong_shapes(tmp_path, modal):
  config, model = modal
  arrays = {k: np.asarray(v[...]) for k, v in model.encoders["visual"].named_arrays().items()}
  arrays["fc8/kernel"] = np.zeros((8, 1000), np.float32)  # ignored
  np.savez(tmp_path / "visual.npz", **arrays)
  rgb = dict(arrays)
  rgb["conv1/kernel"] = np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32)
  np.savez(tmp_path / "audio.npz", **rgb)
  config2 = _config(visual_weights=str(tmp_path / "visual.npz"),
                    audio_weights=str(tmp_path / "audio.npz"))
  other = fl.create(config2, DIMS, nnx.Rngs(7))
  for k, v in other.encoders["visual"].named_arrays().items():
    np.testing.assert_array_equal(v[...], arrays[k])
  np.testing.assert_allclose(other.encoders["audio"].convs[0].kernel[...],
                             rgb["conv1/kernel"].sum(axis=2, keepdims=True), rtol=1e-6)
  bad = dict(arrays, **{"fc6/kernel": np.zeros((9216, 8), np.float32)})
  np.savez(tmp_path / "bad.npz", **bad)
  with pytest.raises(errors.DataError,
                     match=r"bad.npz: array 'fc6/kernel' has shape \(9216, 8\) but the network "
                           r"needs \(\d+, 8\) \(config.model.visual_weights\)"):
    fl.create(_config(visual_weights=str(tmp_path / "bad.npz")), DIMS, nnx.Rngs(0))
  del arrays["conv2/bias"]
  np.savez(tmp_path / "missing.npz", **arrays)
  with pytest.raises(errors.DataError, match=r"missing.npz: lacks \['conv2/bias'\]"):
    fl.create(_config(audio_weights=str(tmp_path / "missing.npz")), DIMS, nnx.Rngs(0))
  with pytest.raises(errors.DataError, match="nowhere.npz: pretrained weights not found"):
    fl.create(_config(visual_weights=str(tmp_path / "nowhere.npz")), DIMS, nnx.Rngs(0))


def test_config_task_and_errors():
  c = fusion_config.get_config()
  assert c.targets == ("arousal",) and c.model.fusion == "modal" and c.optim.name == "sgd"
  # The paper's AlexNet: 227-pixel crops leave 6 x 6 x 256 = 9,216 inputs to fc6.
  assert fl.conv_output_side(227, c.model.conv) == 6 and c.model.fc_width == 4096
  t = fl.task(fusion_config.get_config("valence,late"))
  assert (t.targets, t.kind, t.num_classes, t.unit, t.loss, t.best_metric) == (
      ("valence",), "classification", 3, "clip", "softmax_ce", "accuracy")
  assert fusion_config.get_config("mediaeval2015").dataset.name == "liris_accede"
  with pytest.raises(ValueError, match="at most one"):
    fusion_config.get_config("early,late")
  with pytest.raises(errors.ConfigError, match="one dimension per run"):
    fl.task(_two_targets())
  with pytest.raises(errors.ConfigError, match="config.model.fusion='mid'"):
    bad = _config()
    bad.model.fusion = "mid"
    fl.create(bad, DIMS, nnx.Rngs(0))
  with pytest.raises(errors.ConfigError, match="shrinks a 32-pixel crop"):
    fl.conv_output_side(32, c.model.conv)
  with pytest.raises(errors.ConfigError, match="no stream 'keyframe'"):
    fl.create(_config(), {"spectrogram_image": DIMS["spectrogram_image"]}, nnx.Rngs(0))


def _two_targets():
  c = _config()
  with c.unlocked():
    c.targets = ("valence", "arousal")
  return c


# ---------------------------------------------------------------------------- end to end


def test_late_fusion_trains_end_to_end_on_the_small_clip_benchmark(tmp_path, small_clips_dir):
  """The harness runs both late-fusion phases on `synthetic_clips/small` and writes its outputs."""
  import json  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  c = _config("late")
  with c.unlocked():
    c.dataset.config = "small"
    c.dataset.data_dir = str(small_clips_dir)
    c.model.crop = 16   # of the small config's 24-pixel images
    c.data.batch_size = 4
    c.data.eval_batch_size = 8
    c.train.epochs = 1.0
    c.train.eval_every_epochs = 1.0
    c.checkpoint.every_steps = 100
  flat = train.train_and_evaluate(c, tmp_path / "run")
  run = tmp_path / "run"
  records = json.loads((run / "phases.json").read_text())
  assert [r["name"] for r in records] == ["arousal/late_audio", "arousal/late_visual"]
  # Phases given in epochs record the steps they ran: validated once, at the end, so the best
  # step is the last (phases.json used to record the configured `steps`, 0 here).
  assert all(r["steps"] > 0 and r["best_step"] == r["steps"] for r in records)
  m = json.loads((run / "eval" / "test" / "metrics.json").read_text())["arousal"]
  assert 0.0 <= m["accuracy"] <= 1.0 and flat["test/arousal/accuracy"] == pytest.approx(m["accuracy"])
  assert np.sum(m["confusion"]) == 6   # the small config's 6 test clips
  rows = (run / "eval" / "test" / "predictions.csv").read_text().splitlines()
  assert len(rows) == 7 and rows[0].startswith("clip,film,arousal_true,arousal_pred,arousal_p0")
  assert "late_audio_branch" in (run / "eval" / "ablation.md").read_text()


# ------------------------------------------------------------- train.loss_on = "every_step"


def _np_ce(logits_C, y):
  z = logits_C - logits_C.max()
  return float(np.log(np.exp(z).sum()) - z[y])


def test_logits_with_ce_give_that_cross_entropy_and_its_gradient():
  ce = jnp.asarray([1e-6, 0.3, 1.0986, 7.0, 200.0])
  y = jnp.asarray([0, 2, 1, 1, 0])
  got = contract.loss_value(contract.Task(("arousal",), kind="classification", num_classes=3,
                                          unit="clip", loss="softmax_ce", best_metric="accuracy"),
                            fl.logits_with_ce(ce, y, 3), {"clip_mask": jnp.ones(5),
                                                          "y": {"arousal_class": y}})
  np.testing.assert_allclose(float(got), float(np.mean(np.asarray(ce))), rtol=1e-5)
  grad = jax.grad(lambda c: jnp.sum(optax_ce(fl.logits_with_ce(c, y, 3), y)))(ce)
  np.testing.assert_allclose(np.asarray(grad), np.ones(5), rtol=1e-4)


def optax_ce(logits, y):
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=-1)[:, 0]


def test_every_step_loss_is_the_clip_label_ce_averaged_over_valid_steps():
  config = _config(crop=SIDE)   # whole images: the training forward's random crop is the identity
  with config.unlocked():
    config.train.loss_on = "every_step"
  model = fl.create(config, DIMS, nnx.Rngs(2))
  model.eval()                  # no dropout, as the NumPy reference
  phase = fl.plan(config, [])
  batch = _batch(3, seed=1)
  mask = np.asarray([[1, 1, 1], [1, 1, 0], [1, 0, 0]], bool)
  batch["x"]["segment_mask"] = jnp.asarray(mask)
  y = np.asarray(batch["y"]["arousal_class"])
  feats = {}
  for m, stream in (("visual", "keyframe"), ("audio", "spectrogram_image")):
    x = np.asarray(batch["x"][stream], np.float64)
    x = (x if m == "visual" else x[..., None]).reshape(3 * L, SIDE, SIDE, -1)
    feats[m] = _np_alexnet(model.encoders[m], (x - 127.5) / 127.5).reshape(3, L, -1)
  br = model.branches["fused"]
  per_clip = []
  for b in range(3):   # the logits of step t see steps 0..t only
    ces = [_np_ce(_np_branch(br, {m: f[b:b + 1, :t + 1] for m, f in feats.items()},
                             mask[b:b + 1, :t + 1])[0], y[b]) for t in range(L) if mask[b, t]]
    per_clip.append(np.mean(ces))
  # The model's computations run jitted (one program each; eagerly every operation compiles).
  via_contract = lambda mdl: contract.loss_value(
      phase.task, phase.forward(mdl, batch, nnx.Rngs(dropout=0)), batch)
  got = nnx.jit(via_contract)(model)
  np.testing.assert_allclose(float(got), np.mean(per_clip), rtol=2e-4)
  # Evaluation (rngs None): the last valid step's logits, as with loss_on="last".
  evaluated = nnx.jit(lambda mdl: phase.forward(mdl, batch, None))(model)
  np.testing.assert_allclose(np.asarray(evaluated), _np_branch(br, feats, mask), rtol=2e-4,
                             atol=2e-5)
  last_phase = fl.plan(_config(crop=SIDE), [])
  last = nnx.jit(lambda mdl: contract.loss_value(
      last_phase.task, last_phase.forward(mdl, batch, nnx.Rngs(dropout=0)), batch))(model)
  assert abs(float(last) - float(got)) > 1e-4   # another objective

  def direct(mdl):   # the per-step loss written with log_softmax on the per-step logits
    logits, valid = mdl.branch_steps("fused", batch, nnx.Rngs(dropout=0))
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.asarray(y)[:, None, None]
                              .repeat(L, 1), axis=-1)[..., 0]
    return jnp.mean(jnp.sum(ce * valid, 1) / jnp.sum(valid, 1))

  g1 = nnx.state(nnx.jit(nnx.grad(via_contract))(model), nnx.Param)   # one program each, not
  g2 = nnx.state(nnx.jit(nnx.grad(direct))(model), nnx.Param)         # an eager op at a time
  jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3,
                                                       atol=1e-6), g1, g2)


def test_loss_on_default_and_bad_value():
  assert fusion_config.get_config("").train.loss_on == "last"
  c = _config()
  with c.unlocked():
    c.train.loss_on = "first"
  with pytest.raises(errors.ConfigError, match="config.train.loss_on='first'"):
    fl.plan(c, [])


# ------------------------------------------------- model.alexnet_weights (the paper's fine-tuning)

BIG = 70   # torchvision AlexNet needs >= 63-pixel crops


def _converted_alexnet(tmp_path, seed=3):
  """A narrow emojax.backbones.alexnet with generated weights, saved as the converter saves it."""
  from emojax.backbones import alexnet as bb_alexnet
  from emojax.backbones import common as bb_common
  cfg = {"width": 1 / 16, "fc": 12, "num_classes": 5}
  net = bb_alexnet.AlexNet(cfg, rngs=nnx.Rngs(seed))
  for _, var in nnx.to_flat_state(nnx.state(net, nnx.Param)):   # nonzero biases too
    var.set_value(jax.random.normal(jax.random.key(seed), var.get_value().shape) * 0.1)
    seed += 1
  source = tmp_path / "alexnet-owt.pth"
  source.write_bytes(b"generated for the test")
  out = bb_common.save(tmp_path / "alexnet.npz", bb_alexnet.ALEXNET, cfg,
                       {k: np.asarray(v) for k, v in bb_common.flax_arrays(net).items()}, source)
  return net, str(out)


def test_alexnet_weights_load_the_backbone_and_give_its_fc7(tmp_path):
  net, path = _converted_alexnet(tmp_path)
  config = _config(crop=67, alexnet_weights=path)
  dims = {"keyframe": (L, BIG, BIG, 3), "spectrogram_image": (L, BIG, BIG)}
  model = fl.create(config, dims, nnx.Rngs(0))
  model.eval()
  rng = np.random.default_rng(4)
  batch = {"x": {"keyframe": jnp.asarray(rng.integers(0, 256, (2, L, BIG, BIG, 3), np.uint8)),
                 "spectrogram_image": jnp.asarray(rng.integers(0, 256, (2, L, BIG, BIG),
                                                               np.uint8))}}
  off = (BIG - 67) // 2
  for m, stream in (("visual", "keyframe"), ("audio", "spectrogram_image")):
    x = np.asarray(batch["x"][stream])
    x = x if m == "visual" else np.repeat(x[..., None], 3, axis=-1)   # grey as RGB
    x = x[:, :, off:off + 67, off:off + 67].reshape(2 * L, 67, 67, 3).astype(np.float64) / 255
    x = (x - np.asarray([0.485, 0.456, 0.406])) / np.asarray([0.229, 0.224, 0.225])
    want = np.asarray(net(jnp.asarray(x, jnp.float32), "fc7")).reshape(2, L, -1)
    got = np.asarray(model.encode(batch, m, None))
    assert got.shape == (2, L, 12)   # the file's fc7 width, not model.fc_width
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # Each stream fine-tunes its own copy.
  k_v = model.encoders["visual"].net.features["0"].kernel
  k_a = model.encoders["audio"].net.features["0"].kernel
  assert k_v is not k_a
  np.testing.assert_array_equal(np.asarray(k_v[...]), np.asarray(k_a[...]))
  # It trains: dropout at model.fc_dropout when rngs are given, gradients reach conv1.
  assert model.encoders["visual"].net.classifier["0"].rate == config.model.fc_dropout
  model.train()
  phase = fl.plan(config, [])
  batch["clip_mask"] = jnp.ones(2)
  batch["y"] = {"arousal_class": jnp.asarray([0, 2])}
  grads = nnx.grad(lambda mdl: contract.loss_value(
      phase.task, phase.forward(mdl, batch, nnx.Rngs(dropout=1)), batch))(model)
  assert float(jnp.abs(grads.encoders["visual"].net.features["0"].kernel[...]).sum()) > 0


def test_alexnet_weights_errors_name_the_key(tmp_path):
  config = _config(alexnet_weights=str(tmp_path / "missing.npz"))
  with pytest.raises(errors.ConfigError, match="config.model.alexnet_weights=.*no such file"):
    fl.create(config, DIMS, nnx.Rngs(0))
  _, path = _converted_alexnet(tmp_path)
  config = _config(alexnet_weights=path, visual_weights=path)
  with pytest.raises(errors.ConfigError, match="alexnet_weights and config.model.visual_weights"):
    fl.create(config, DIMS, nnx.Rngs(0))


def test_every_step_loss_trains_through_the_harness(tmp_path, small_clips_dir):
  """The harness trains with the per-step loss (its forward reads the batch's labels) and scores
  the last step's predictions."""
  import json  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  c = _config()
  with c.unlocked():
    c.dataset.config = "small"
    c.dataset.data_dir = str(small_clips_dir)
    c.model.crop = 16
    c.data.batch_size = 4
    c.data.eval_batch_size = 8
    c.train.epochs = 1.0
    c.train.eval_every_epochs = 1.0
    c.train.loss_on = "every_step"
    c.checkpoint.every_steps = 100
  flat = train.train_and_evaluate(c, tmp_path / "run")
  m = json.loads((tmp_path / "run" / "eval" / "test" / "metrics.json").read_text())["arousal"]
  assert np.sum(m["confusion"]) == 6 and flat["test/arousal/accuracy"] == pytest.approx(
      m["accuracy"])


def test_max_pool_value_and_gradient_match_numpy_first_maximum():
  """3x3 / stride 2 windows (overlapping): the max, and the gradient to each window's first
  maximum in row-major order, from NumPy loops; ties are planted (zeros as after a ReLU and a
  repeated positive maximum shared by two overlapping windows)."""
  rng = np.random.default_rng(4)
  x = np.maximum(rng.standard_normal((2, 7, 9, 3)), 0).astype(np.float32)
  x[0, 2, 2, 0] = x[0, 2, 4, 0] = x[0, 1, 3, 0] = 6.0
  y, vjp = jax.vjp(fl.max_pool, jnp.asarray(x))
  g = rng.standard_normal(y.shape).astype(np.float32)
  want_y = np.zeros(y.shape, np.float32)
  want_gx = np.zeros_like(x)
  for b, i, j, c in np.ndindex(*y.shape):
    win = x[b, 2 * i:2 * i + 3, 2 * j:2 * j + 3, c]
    want_y[b, i, j, c] = win.max()
    di, dj = np.unravel_index(np.argmax(win), win.shape)     # NumPy's argmax: the first maximum
    want_gx[b, 2 * i + di, 2 * j + dj, c] += g[b, i, j, c]
  np.testing.assert_array_equal(y, want_y)
  np.testing.assert_allclose(vjp(jnp.asarray(g))[0], want_gx, rtol=1e-6, atol=1e-7)
