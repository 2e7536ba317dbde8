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


@pytest.mark.parametrize("arch,shape", [("c3d", (8, 40, 40, 3)), ("r2plus1d", (8, 40, 40, 3)),
                                        ("tsn", (8, 3, 40, 40, 3)),
                                        ("eco_lite", (8, 3, 40, 40, 3)),
                                        ("eco_full", (8, 3, 40, 40, 3))])
def test_forward_shapes_and_finite_gradients(arch, shape):
  c = _config(arch)
  net = vcn.VideoNet(c, shape, nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2,) + shape), jnp.uint8)

  def loss(net):
    return jnp.sum(net(x, nnx.Rngs(dropout=1)) ** 2)
  value, grads = nnx.value_and_grad(loss)(net)
  assert np.isfinite(value)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  net.eval()
  assert net(x, None).shape == (2,)


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
  np.testing.assert_allclose(a(x, None), b(x, None), rtol=1e-5, atol=1e-6)
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
  net(x, nnx.Rngs(dropout=0))
  bb = net.net.backbone
  assert not np.allclose(bb.stem.bn.bn.mean[...], 0.0)          # the first BN learns statistics
  np.testing.assert_array_equal(bb.blocks[0].c1.bn.bn.mean[...], 0.0)   # the others do not


@pytest.mark.parametrize("arch", ["c3d", "eco_lite"])
def test_trains_end_to_end_through_the_harness(tmp_path, arch, monkeypatch):
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
