"""The seed-004 video convnets: sizes against published counts, augmentation, bad input, weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import video_convnets as cfg_lib
from emojax import errors
from emojax.models import video_convnets as vcn


def _config(arch, **model):
  c = cfg_lib.get_config(f"{arch},valence,runlocal")
  c.unlock()
  c.model.conv_lowering = "gemm"
  for k, v in model.items():
    c.model[k] = v
  return c


def _abstract(c, shape):
  return nnx.eval_shape(lambda: vcn.VideoNet(c, shape, nnx.Rngs(0)))


def test_r2plus1d_mid_channels_and_parameter_count_match_torchvision():
  # torchvision r2plus1d_18: 31,505,325 parameters with its 400-class fc (512*400 + 400).
  assert vcn.mid_channels(64, 64) == 144 and vcn.mid_channels(64, 128) == 230
  c = _config("r2plus1d", width=1.0, depth=1.0, crop=112)
  n = vcn.parameter_count(_abstract(c, (8, 128, 171, 3)))
  assert n == 31_505_325 - (512 * 400 + 400) + 513


def test_tsn_backbone_is_resnet18():
  # torchvision resnet18: 11,689,512 parameters with its 1000-class fc.
  c = _config("tsn", width=1.0, depth=1.0, crop=224)
  n = vcn.parameter_count(_abstract(c, (8, 3, 256, 256, 3)))
  assert n == 11_689_512 - (512 * 1000 + 1000) + 513


def test_c3d_parameter_count_closed_form():
  c = _config("c3d", width=1.0, depth=1.0, crop=112)
  chans = [3, 64, 128, 256, 256, 512, 512, 512, 512]
  convs = sum(27 * a * b + 2 * b for a, b in zip(chans[:-1], chans[1:]))
  fcs = (512 * 4 * 4 * 4096 + 4096) + (4096 * 4096 + 4096) + 4097
  assert vcn.parameter_count(_abstract(c, (8, 128, 171, 3))) == convs + fcs


@pytest.mark.parametrize("arch", cfg_lib.ARCHS)
def test_each_architecture_takes_a_real_step_at_a_small_size(arch):
  """One real forward + gradient + SGD step per network, at the runlocal widths on 20 px frames
  cropped to 16 (the size test_trains_end_to_end_through_the_harness trains c3d at; the full-size
  combinations are traced abstractly below). Expectations: the SGD update is params - lr * grads,
  and a small step against the gradient lowers the loss (the same dropout masks and batch)."""
  c = cfg_lib.get_config(f"{arch},valence,runlocal")
  c.unlock()
  c.model.conv_lowering, c.model.crop = "frames2d", 16
  shape = _stored_shape(c)[:-3] + (20, 20, 3)
  net = vcn.VideoNet(c, shape, nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2,) + shape), jnp.uint8)
  y = jnp.asarray([0.5, -0.5])
  graphdef, params, rest = nnx.split(net, nnx.Param, ...)

  @jax.jit
  def loss(params, rest):     # the same dropout masks on every call
    out = nnx.merge(graphdef, params, rest)(x, nnx.Rngs(dropout=1))
    return jnp.mean((out - y) ** 2), out
  (value, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, rest)
  assert out.shape == (2,) and np.isfinite(float(value))
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  # Each computation below is one jitted program: run eagerly, every operation of these networks
  # compiles on its own (a third of this test's time).
  grads_np = jax.tree.map(np.asarray, grads)
  norm2 = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in jax.tree.leaves(grads_np))
  assert norm2 > 0
  lr = 0.05 * float(value) / norm2          # a first-order decrease of 5% of the loss
  stepped = float(jax.jit(lambda p, g, r: loss(jax.tree.map(lambda a, b: a - lr * b, p, g), r)[0])(
      params, grads, rest))
  assert stepped < float(value), (stepped, float(value))
  before = jax.tree.map(np.array, nnx.state(net, nnx.Param))
  opt = nnx.Optimizer(net, __import__("optax").sgd(0.1), wrt=nnx.Param)
  nnx.jit(lambda o, n, g: o.update(n, g))(opt, net, grads)
  jax.tree.map(lambda b, g, a: np.testing.assert_allclose(a, b - 0.1 * g, rtol=1e-5, atol=1e-6),
               before, grads_np, jax.tree.map(np.asarray, nnx.state(net, nnx.Param)))
  net.eval()
  assert nnx.jit(lambda n: n(x, None))(net).shape == (2,)


def test_crop_and_flip_are_windows_of_the_input_and_reproducible():
  c = _config("c3d")
  net = _abstract(c, (10, 40, 40, 3))
  x = np.random.default_rng(1).integers(0, 256, (4, 10, 40, 40, 3)).astype(np.uint8)
  back = lambda y: np.rint((np.asarray(y) * vcn.STD + vcn.MEAN) * 255).astype(int)  # noqa: E731
  centre = back(net.frames(jnp.asarray(x), None))
  np.testing.assert_array_equal(centre, x[:, 1:9, 4:36, 4:36])
  a = back(net.frames(jnp.asarray(x), nnx.Rngs(dropout=3)))
  b = back(net.frames(jnp.asarray(x), nnx.Rngs(dropout=3)))
  np.testing.assert_array_equal(a, b)
  flips = 0
  for i in range(4):           # every training view is a 32x32 window, maybe mirrored
    hits = [(oy, ox, f) for oy in range(9) for ox in range(9) for f in (0, 1)
            if np.array_equal(a[i], (x[i, 1:9, oy:oy + 32, ox:ox + 32])[:, :, ::-1 if f else 1])]
    assert hits
    flips += hits[0][2]
  other = back(net.frames(jnp.asarray(x), nnx.Rngs(dropout=4)))
  assert not np.array_equal(a, other)


def test_tsn_picks_one_candidate_per_segment():
  c = _config("tsn")
  net = _abstract(c, (8, 3, 32, 32, 3))
  x = np.zeros((2, 8, 3, 32, 32, 3), np.uint8)
  x[:, :, :, :, :, 0] = np.arange(3)[None, None, :, None, None] * 50   # candidate m: red = 50 m
  red = lambda y: np.rint((np.asarray(y)[..., 0] * vcn.STD[0] + vcn.MEAN[0]) * 255)  # noqa: E731
  assert np.all(red(net.frames(jnp.asarray(x), None)) == 50)                        # centre
  drawn = red(net.frames(jnp.asarray(x), nnx.Rngs(dropout=0)))[:, :, 0, 0]
  assert set(np.unique(drawn)) <= {0, 50, 100} and len(np.unique(drawn)) > 1


def test_bad_streams_name_the_stream():
  with pytest.raises(errors.DataError, match="'frame_clips'.*4 frames"):
    vcn.VideoNet(_config("c3d"), (4, 40, 40, 3), nnx.Rngs(0))
  with pytest.raises(errors.DataError, match="'frame_clips'.*24x24.*crop=32"):
    vcn.VideoNet(_config("c3d"), (8, 24, 24, 3), nnx.Rngs(0))
  with pytest.raises(errors.DataError, match="'tsn_frames'.*\\(K, M, H, W, 3\\)"):
    vcn.VideoNet(_config("tsn"), (8, 40, 40, 3), nnx.Rngs(0))


def test_weights_round_trip_and_other_architecture(tmp_path):
  c = _config("r2plus1d")
  a = vcn.VideoNet(c, (8, 40, 40, 3), nnx.Rngs(0))
  b = vcn.VideoNet(c, (8, 40, 40, 3), nnx.Rngs(1))
  vcn.save_weights(a, tmp_path / "w.npz")
  assert vcn.load_weights(b, tmp_path / "w.npz") == []
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 8, 40, 40, 3)), jnp.uint8)
  a.eval(), b.eval()
  forward = nnx.jit(lambda net: net(x, None))   # one program for both (eagerly: every operation)
  np.testing.assert_allclose(forward(a), forward(b), rtol=1e-5, atol=1e-6)
  c3d = vcn.VideoNet(_config("c3d"), (8, 40, 40, 3), nnx.Rngs(0))
  with pytest.raises(errors.ConfigError, match="parameter 'net/"):
    vcn.load_weights(c3d, tmp_path / "w.npz")
  wide = vcn.VideoNet(_config("r2plus1d", width=0.25), (8, 40, 40, 3), nnx.Rngs(0))
  with pytest.raises(errors.ConfigError, match="has shape"):
    vcn.load_weights(wide, tmp_path / "w.npz")


def test_partial_bn_keeps_statistics_after_the_first_layer():
  c = _config("tsn", partial_bn=True)
  net = vcn.VideoNet(c, (8, 3, 40, 40, 3), nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 8, 3, 40, 40, 3)), jnp.uint8)
  nnx.jit(lambda n: n(x, nnx.Rngs(dropout=0)))(net)   # a training forward (jitted: one program)
  bb = net.net.backbone
  assert not np.allclose(bb.stem.bn.bn.mean[...], 0.0)          # the first BN learns statistics
  np.testing.assert_array_equal(bb.blocks[0].c1.bn.bn.mean[...], 0.0)   # the others do not


def test_trains_end_to_end_through_the_harness(tmp_path, monkeypatch):
  """The one video network trained (c3d); the others take one real step above and one abstract
  harness step per phase in test_video_convnets_configs.py."""
  arch = "c3d"
  import json  # pylint: disable=import-outside-toplevel
  from emojax import evaluate, train  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv("EMOJAX_VIDEO_CONV_CACHE", str(tmp_path / "lowering.json"))
  c = cfg_lib.get_config(f"{arch},valence,runlocal")
  with c.unlocked():
    c.dataset.name, c.dataset.config = "emojax_toy_video_clips", ""
    c.dataset.import_module = "toy_video_clips"
    c.dataset.data_dir = str(tmp_path / "data")
    c.dataset.splits.validation = ""
    c.data.holdout_fraction = 0.2
    c.model.crop, c.model.conv_lowering, c.model.autotune = 16, "frames2d", False
    c.train.epochs = 8.0
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
  trainer = train.Trainer(c, tmp_path / "run")
  trainer.run()
  flat = evaluate.evaluate_trainer(trainer)
  m = json.loads((tmp_path / "run" / "eval" / "test" / "metrics.json").read_text())["valence"]
  assert np.isfinite(m["mse"]) and np.isfinite(m["pcc"])
  # Better than the constant predictor (the training mean) on the test clips.
  y_test = trainer.stores["test"].labels["valence"]
  constant = float(np.mean((y_test - trainer.stores["train"].labels["valence"].mean()) ** 2))
  assert flat["test/valence/mse"] < constant


def test_synthetic_clips_frame_streams_pick_the_frames_on_screen():
  import dataclasses  # pylint: disable=import-outside-toplevel
  from emojax.datasets import synthetic_clips as sc  # pylint: disable=import-outside-toplevel
  cfg = dataclasses.replace(sc.SyntheticClipsConfig(name="t"), clip_seconds=4, clips_per_film=2,
                            fps=6, frame_clips_frames=8, frame_clips_fps=5.0, frame_height=8,
                            frame_width=10, tsn_segments=4, tsn_candidates=3)
  n = cfg.fps * cfg.clip_seconds * cfg.clips_per_film
  frames = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None], 3, -1)
  frames = np.broadcast_to(frames, (n, 16, 20, 3)).copy()      # frame i: every pixel = i
  out = sc.clip_frame_streams(cfg, frames, 1)                    # the second clip: 4 s .. 8 s
  assert out["frame_clips"].shape == (8, 8, 10, 3) and out["tsn_frames"].shape == (4, 3, 8, 10, 3)
  # Dense: 8 frames 0.2 s apart centred at 6 s: 5.3, 5.5, ..., 6.7 s -> frame floor(6 t).
  want = np.floor((6.0 + (np.arange(8) - 3.5) / 5.0) * 6 + 1e-9).astype(int)
  np.testing.assert_array_equal(out["frame_clips"][:, 0, 0, 0], want)
  # TSN: segment k of 1 s, candidates at 4 + k + (m + 0.5) / 3 s.
  t = 4 + np.arange(4)[:, None] + (np.arange(3)[None] + 0.5) / 3
  np.testing.assert_array_equal(out["tsn_frames"][:, :, 0, 0, 0], np.floor(t * 6).astype(int))
  assert sc.SyntheticClipsConfig(name="x").fingerprint() == json_roundtrip_without_frames()


def json_roundtrip_without_frames():
  """The fingerprint of a config without frame streams, as before those fields existed."""
  return {"seed": 0, "num_train_films": 32, "num_validation_films": 8, "num_test_films": 8,
          "clips_per_film": 6, "clip_seconds": 6, "fps": 8, "render_width": 96,
          "render_height": 72, "image_size": 40, "label_noise_std": 0.15, "hist_bins": 16}


# ----------------------------------------------------------------------------------------------
# The paper's defaults (004): every argument combination on its default data, BN-Inception.

def _stored_shape(c):
  """The frame stream's per-clip shape in the config's default dataset, from the builder config
  (no build): synthetic_clips' frame sizes, or LIRIS-ACCEDE's frame configs' `frame_size`."""
  from emojax.datasets import synthetic_clips as sc  # pylint: disable=import-outside-toplevel
  segmented = c.model.arch in cfg_lib.SEGMENTED
  if c.dataset.name == "synthetic_clips":
    b = {x.name: x for x in sc.SyntheticClips.BUILDER_CONFIGS}[c.dataset.config]
    h, w = b.frame_height, b.frame_width
    return (b.tsn_segments, b.tsn_candidates, h, w, 3) if segmented else (
        b.frame_clips_frames, h, w, 3)
  from emojax.datasets import liris_accede as la  # pylint: disable=import-outside-toplevel
  s = {x.name: x for x in la.LirisAccede.BUILDER_CONFIGS}[c.dataset.config].frame_size
  return (8, 3, s, s, 3) if segmented else (8, s, s, 3)


COMBOS = [f"{a}{x}" for a in cfg_lib.ARCHS
          for x in ("", ",liris", ",adam", ",fc3", ",crop112,resnet18", ",resnet18",
                    ",fc3,crop112,liris,resnet18")] + ["c3d,crop112", "r2plus1d,fc3,crop112"]


def _network(arg: str) -> tuple[dict, tuple]:
  """What the test below builds for a combination: `VideoNet` reads `config.model` and the
  stored frame shape, nothing else."""
  c = cfg_lib.get_config(arg)
  return c.model.to_dict(), _stored_shape(c)


def _same_network_groups(combos) -> list[tuple[str, ...]]:
  """The combinations grouped by `_network` (e.g. "tsn" and "tsn,adam": the optimizer is not
  part of the network), in COMBOS' order; each group is built and stepped once."""
  groups: dict[str, list[str]] = {}
  for arg in combos:
    groups.setdefault(repr(_network(arg)), []).append(arg)
  return [tuple(g) for g in groups.values()]


@pytest.mark.parametrize("args", _same_network_groups(COMBOS), ids=" = ".join)
def test_every_combination_builds_on_its_default_data_and_steps_abstractly(args):
  """Each combination's network (combinations with the same `config.model` and frame shape, e.g.
  with and without `adam`, share one build: the optimizer is not part of the network; every
  combination's optimizer is built, and `adam`'s steps, in test_video_convnets_configs.py): created abstractly on its default data's frame shape, a
  gradient of the same structure as the state, an eval-mode prediction per clip."""
  assert all(_network(a) == _network(args[0]) for a in args), args
  c = cfg_lib.get_config(args[0])
  shape = _stored_shape(c)
  net = nnx.eval_shape(lambda: vcn.VideoNet(c, shape, nnx.Rngs(0)))
  graphdef, state = nnx.split(net)

  def step(state, x):
    def loss(state):
      return jnp.mean(nnx.merge(graphdef, state)(x, nnx.Rngs(dropout=0)) ** 2)
    return jax.grad(loss)(state)
  x = jax.ShapeDtypeStruct((2,) + shape, jnp.uint8)
  grads = jax.eval_shape(step, state, x)
  assert jax.tree.structure(grads) == jax.tree.structure(state)

  def predict(state, x):
    copy = nnx.merge(graphdef, state)
    copy.eval()
    return copy(x, None)
  assert jax.eval_shape(predict, state, x).shape == (2,)


def test_defaults_are_the_papers():
  for arch in cfg_lib.ARCHS:
    c = cfg_lib.get_config(arch)
    seg = arch in cfg_lib.SEGMENTED
    assert c.model.crop == 224 and c.model.num_frames == 8 and c.model.head_layers == 1
    assert _stored_shape(c)[-3:-1] == (224, 224)       # resized to 224 x 224: the crop is the frame
    assert c.model.backbone == "bn_inception"
    assert (c.train.epochs, c.optim.decay_every_epochs) == ((30.0, 5.0) if seg else (20.0, 4.0))
    assert c.optim.learning_rate == (1e-3 if seg else 1e-4) and c.optim.decay_factor == 0.1
    liris = cfg_lib.get_config(f"{arch},liris")
    assert dict(liris.dataset.splits) == {"train": "test", "validation": "validation",
                                         "test": "train"}
  assert cfg_lib.get_config("c3d,crop112").model.crop == 112
  assert _stored_shape(cfg_lib.get_config("c3d,crop112"))[1:3] == (128, 171)
  with pytest.raises(ValueError, match="crop112"):
    cfg_lib.get_config("tsn,crop112")


def test_bn_inception_crops_that_fit():
  assert [s for s in range(64, 257, 16) if vcn.bn_inception_fits(s)] == [64, 96, 128, 160, 192,
                                                                         224, 256]
  c = cfg_lib.get_config("tsn,valence,runlocal")
  c.unlock()
  c.model.backbone, c.model.crop = "bn_inception", 112
  with pytest.raises(errors.ConfigError, match="crop=112.*resnet18"):
    vcn.VideoNet(c, (8, 3, 128, 128, 3), nnx.Rngs(0))


def _bn_inception_params(with_classifier=True):
  from emojax.backbones import bn_inception, common  # pylint: disable=import-outside-toplevel
  lay = common.published_layout(bn_inception.BN_INCEPTION)
  return sum(int(np.prod(s)) for k, s in lay.items()
             if not k.endswith(("running_mean", "running_var"))
             and (with_classifier or not k.startswith("last_linear")))


def test_tsn_and_eco_use_bn_inception():
  c = cfg_lib.get_config("tsn")
  n = vcn.parameter_count(_abstract(c, (8, 3, 224, 224, 3)))
  assert n == _bn_inception_params() + 1024 + 1                 # + the one-output head
  fc3 = cfg_lib.get_config("tsn,fc3")
  n3 = vcn.parameter_count(_abstract(fc3, (8, 3, 224, 224, 3)))
  assert n3 == _bn_inception_params() + (1024 * 512 + 512) + (512 * 512 + 512) + 513
  eco = _abstract(cfg_lib.get_config("eco_lite"), (8, 3, 224, 224, 3))
  x = jax.ShapeDtypeStruct((1, 8, 224, 224, 3), jnp.float32)
  g, st = nnx.split(eco.net.backbone)
  f = jax.eval_shape(lambda s, x: nnx.merge(g, s).endpoint(x, vcn.ECO_CUT), st, x)
  assert f.shape == (1, 8, 14, 14, 576)                         # the end of inception_3c
  full = _abstract(cfg_lib.get_config("eco_full"), (8, 3, 224, 224, 3))
  assert full.net.head.in_features == 512 + 1024


def test_backbone_weights_load_parameters_and_batch_statistics(tmp_path):
  from emojax.backbones import bn_inception, common, convert  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  state = {k: rng.standard_normal(s).astype(np.float32)
           for k, s in common.published_layout(bn_inception.BN_INCEPTION).items()}
  for k in state:
    if k.endswith("running_var"):
      state[k] = np.abs(state[k]) + 0.5
  np.savez(tmp_path / "published.npz", **state)
  npz = convert.convert("bn_inception", tmp_path / "published.npz", tmp_path / "bn.npz")
  c = cfg_lib.get_config("eco_lite,valence,runlocal")
  c.unlock()
  c.model.backbone, c.model.backbone_weights, c.model.conv_lowering = "bn_inception", str(npz), "gemm"
  net = vcn.VideoNet(c, (8, 3, 40, 40, 3), nnx.Rngs(0))
  vcn.load_backbone(net, c)
  bb = net.net.backbone
  np.testing.assert_array_equal(bb.inception_3a_1x1_bn.mean[...],
                                state["inception_3a_1x1_bn.running_mean"])
  np.testing.assert_array_equal(bb.conv2_3x3_bn.var[...], state["conv2_3x3_bn.running_var"])
  np.testing.assert_array_equal(bb.conv1_7x7_s2.kernel[...],
                                state["conv1_7x7_s2.weight"].transpose(2, 3, 1, 0))
  c.model.arch = "c3d"
  with pytest.raises(errors.ConfigError, match="backbone_weights"):
    vcn.load_backbone(vcn.VideoNet(c, (8, 40, 40, 3), nnx.Rngs(0)), c)


def test_bn_inception_frames_are_bgr_minus_the_mean():
  c = cfg_lib.get_config("tsn,valence,runlocal")
  c.unlock()
  c.model.backbone = "bn_inception"
  net = _abstract(c, (8, 3, 32, 32, 3))
  x = np.zeros((1, 8, 3, 32, 32, 3), np.uint8)
  x[..., 0] = 200                                               # red
  y = np.asarray(net.frames(jnp.asarray(x), None))
  np.testing.assert_allclose(y[0, 0, 0, 0], [-104.0, -117.0, 200.0 - 128.0])


def test_tsn_frames_extractor_on_the_fixture_film():
  from conftest import MEDIA_FIXTURE  # pylint: disable=import-outside-toplevel
  from emojax.features import extract_film, frame_clips, tsn_frames  # pylint: disable=import-outside-toplevel
  t = tsn_frames.segment_targets(10, 0, 4, 2)
  np.testing.assert_allclose(t[0], [[0.625, 1.875], [3.125, 4.375], [5.625, 6.875],
                                    [8.125, 9.375]])           # segments of 2.5 s, M = 2
  ff = extract_film(MEDIA_FIXTURE, {"tsn_frames": {"num_segments": 4, "candidates": 2,
                                                   "size": 32}})
  rows = ff.streams["tsn_frames"]
  assert rows.shape == (1, 4, 2) and rows.dtype == object
  px = frame_clips.decode_clips(rows.reshape(1, -1)).reshape(1, 4, 2, 32, 32, 3)
  assert px.dtype == np.uint8 and px.std() > 0


def _flax_bn_reference(x, scale, bias, relu):
  """Training-mode nnx.BatchNorm (+ jax.nn.relu) and its batch statistics, by autodiff."""
  bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
  bn.scale[...], bn.bias[...] = scale, bias
  y = bn(x)
  x2 = x.reshape(-1, x.shape[-1])
  mean = x2.mean(0)
  var = jnp.maximum(0.0, (x2 * x2).mean(0) - mean * mean)
  return (jax.nn.relu(y) if relu else y), mean, var


@pytest.mark.parametrize("relu", [True, False])
def test_bn_train_value_and_gradients_match_autodiff_of_nnx_batchnorm(relu):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 3, 5, 4, 6)).astype(np.float32) * 2 + 0.7
  x[0, 0, 0, :2] = x[0, 0, 1, :2]             # repeated values (ties after BN / the ReLU at 0)
  x = jnp.asarray(x)
  scale = jnp.asarray(rng.uniform(0.5, 1.5, 6), jnp.float32)
  bias = jnp.asarray(rng.standard_normal(6), jnp.float32) * 0.3
  got, vjp = jax.vjp(lambda *a: vcn.bn_train(*a, 1e-5, relu), x, scale, bias)
  want, vjp_ref = jax.vjp(lambda *a: _flax_bn_reference(*a, relu), x, scale, bias)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
  cts = (jnp.asarray(rng.standard_normal(x.shape), jnp.float32),
         jnp.asarray(rng.standard_normal(6), jnp.float32),
         jnp.asarray(rng.standard_normal(6), jnp.float32))
  for g, w in zip(vjp(cts), vjp_ref(cts)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_bn_module_running_statistics_and_eval_match_nnx_batchnorm():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((4, 2, 3, 3, 5)), jnp.float32) + 1.5
  ours, ref = vcn.BN(5, rngs=nnx.Rngs(0)), nnx.BatchNorm(5, momentum=0.9, epsilon=1e-5,
                                                           rngs=nnx.Rngs(0))
  for _ in range(2):
    np.testing.assert_allclose(ours(x, relu=True), jax.nn.relu(ref(x)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours.bn.mean[...], ref.mean[...], rtol=1e-6)
  np.testing.assert_allclose(ours.bn.var[...], ref.var[...], rtol=1e-6)
  ours.eval()
  ref.eval()
  np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)
