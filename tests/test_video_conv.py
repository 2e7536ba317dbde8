"""Every convolution lowering of emojax/nn/video_conv.py against lax.conv_general_dilated."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from emojax import errors
from emojax.nn import video_conv

# (input shape, kernel (kt, kh, kw, Cin, Cout), stride, padding): 3x3x3, strided (2+1)D parts,
# a 1x1x1 shortcut with stride 2, a 2-D 7x7 stem.
CASES = [
    ((2, 4, 6, 5, 3), (3, 3, 3, 3, 4), 1, 1),
    ((1, 5, 7, 6, 2), (1, 3, 3, 2, 3), (1, 2, 2), (0, 1, 1)),
    ((2, 5, 3, 3, 3), (3, 1, 1, 3, 2), (2, 1, 1), (1, 0, 0)),
    ((1, 4, 5, 5, 3), (1, 1, 1, 3, 2), 2, 0),
    ((1, 2, 9, 8, 3), (1, 7, 7, 3, 2), (1, 2, 2), (0, 3, 3)),
]


def _reference(x, w, stride, padding):
  s, p = video_conv._triple(stride), video_conv._triple(padding)  # pylint: disable=protected-access
  return lax.conv_general_dilated(x, w, s, [(a, a) for a in p],
                                  dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
                                  precision=lax.Precision.HIGHEST)


@pytest.mark.parametrize("lowering", video_conv.LOWERINGS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_lowering_matches_lax_conv_values_and_gradients(lowering, case):
  in_shape, kernel, stride, padding = CASES[case]
  rng = np.random.default_rng(case)
  x = jnp.asarray(rng.standard_normal(in_shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal(kernel), jnp.float32)
  ref = _reference(x, w, stride, padding)
  got = video_conv.conv3d(x, w, stride, padding, lowering)
  np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4)
  g = jnp.asarray(rng.standard_normal(ref.shape), jnp.float32)
  _, vjp_ref = jax.vjp(lambda a, b: _reference(a, b, stride, padding), x, w)
  _, vjp = jax.vjp(lambda a, b: video_conv.conv3d(a, b, stride, padding, lowering), x, w)
  for a, b in zip(vjp(g), vjp_ref(g)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=5e-4)


def test_forward_matches_numpy_loops():
  """An independent NumPy definition of the strided, padded 3-D cross-correlation."""
  rng = np.random.default_rng(7)
  x = rng.standard_normal((1, 4, 5, 5, 2)).astype(np.float32)
  w = rng.standard_normal((3, 3, 3, 2, 3)).astype(np.float32)
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
  want = np.zeros((1, 2, 3, 3, 3), np.float32)
  for t in range(2):
    for i in range(3):
      for j in range(3):
        patch = xp[0, 2 * t:2 * t + 3, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        want[0, t, i, j] = np.einsum("abcd,abcde->e", patch, w)
  for lowering in video_conv.LOWERINGS:
    got = video_conv.conv3d(jnp.asarray(x), jnp.asarray(w), 2, 1, lowering)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=lowering)


def test_bfloat16_close_to_float32():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((1, 4, 6, 6, 8)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 8, 4)) * 0.1, jnp.float32)
  ref = _reference(x, w, 1, 1)
  got = video_conv.conv3d(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), 1, 1, "gemm")
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref, rtol=0.05, atol=0.05)


def test_flops_closed_form():
  # C3D conv2 at batch 8: 8 * 8*56*56 outputs * 27 taps * 64 in * 128 out * 2.
  assert video_conv.flops((8, 8, 56, 56, 64), (3, 3, 3, 64, 128), 1, 1) == \
      2 * 8 * 8 * 56 * 56 * 27 * 64 * 128


def test_tune_caches_the_fastest_and_auto_uses_it(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("EMOJAX_VIDEO_CONV_CACHE", str(tmp_path / "lowering.json"))
  video_conv.clear_memory_cache()
  conv = video_conv.Conv(3, 4, (3, 3, 3), padding=1, rngs=__import__("flax").nnx.Rngs(0))
  x = jnp.ones((1, 4, 6, 6, 3))
  with video_conv.record_shapes() as keys:
    jax.eval_shape(lambda a: conv(a), x)  # pylint: disable=unnecessary-lambda
  assert len(keys) == 1
  best = video_conv.tune(keys, verbose=True)[keys[0]]
  stored = json.loads((tmp_path / "lowering.json").read_text())
  # One summary line per tuning (not one line per layer); tuned again: cached, nothing measured.
  (line,) = capsys.readouterr().out.splitlines()
  assert re.fullmatch(rf"   convolution tuning: 1 shapes, 1 measured now \(\d+\.\d s\), 0 cached; "
                      rf"chosen: {best} 1 \(per-layer timings: .*lowering\.json\)", line), line
  video_conv.tune(keys * 3, verbose=True)
  (line,) = capsys.readouterr().out.splitlines()
  assert ": 1 shapes, 0 measured now" in line and ", 1 cached;" in line, line
  (entry,) = stored.values()
  assert entry[keys[0]]["best"] == best
  assert best == min(entry[keys[0]]["ms"], key=entry[keys[0]]["ms"].get)
  assert video_conv.resolve(keys[0], (3, 3, 3)) == best
  video_conv.clear_memory_cache()       # a fresh process reads the file
  assert video_conv.resolve(keys[0], (3, 3, 3)) == best
  np.testing.assert_allclose(conv(x), _reference(x, conv.kernel[...], 1, 1), rtol=1e-4,
                             atol=1e-4)
  video_conv.clear_memory_cache()


def test_bad_lowering_and_too_small_input():
  with pytest.raises(errors.ConfigError, match="lowering"):
    video_conv.conv3d(jnp.ones((1, 3, 3, 3, 1)), jnp.ones((1, 1, 1, 1, 1)), lowering="winograd")
  with pytest.raises(errors.ConfigError, match="smaller than the kernel"):
    video_conv.conv3d(jnp.ones((1, 2, 3, 3, 1)), jnp.ones((3, 3, 3, 1, 1)))


def test_frame_scan_dw_matches_numpy_definition():
  """dw[a, c, d, i, o] = sum xpad[b, st*t+a, sh*h+c, sw*w+d, i] g[b, t, h, w, o], in NumPy."""
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, 5, 7, 6, 3)).astype(np.float32)
  kernel, stride, pad = (3, 3, 2, 3, 4), (2, 1, 2), (1, 1, 0)
  to, ho, wo = (video_conv.out_size(n, k, s, p) for n, k, s, p in
                zip(x.shape[1:4], kernel[:3], stride, pad))
  g = rng.standard_normal((2, to, ho, wo, 4)).astype(np.float32)
  xp = np.pad(x, ((0, 0),) + tuple((p, p) for p in pad) + ((0, 0),))
  want = np.zeros(kernel, np.float64)
  for a in range(3):
    for c in range(3):
      for d in range(2):
        tap = xp[:, a:a + stride[0] * (to - 1) + 1:stride[0], c:c + stride[1] * (ho - 1) + 1:
                 stride[1], d:d + stride[2] * (wo - 1) + 1:stride[2]]
        want[a, c, d] = np.einsum("bthwi,bthwo->io", tap, g)
  got = video_conv.frame_scan_dw(jnp.asarray(x), jnp.asarray(g), kernel, stride, pad)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_tune_remeasures_an_entry_timed_over_other_candidates(tmp_path, monkeypatch):
  """A cache written before a lowering existed is timed again, with the new candidate in it."""
  path = tmp_path / "lowering.json"
  monkeypatch.setenv("EMOJAX_VIDEO_CONV_CACHE", str(path))
  video_conv.clear_memory_cache()
  key = video_conv.layer_key((1, 3, 5, 5, 2), (3, 3, 3, 2, 2), 1, 1, jnp.float32)
  old = {"best": "xla", "ms": {"xla": 1.0, "frames2d": 2.0}}
  path.write_text(json.dumps({video_conv._machine(): {key: old}}))  # pylint: disable=protected-access
  assert video_conv.resolve(key, (3, 3, 3)) == "xla"
  video_conv.tune([key])
  entry = json.loads(path.read_text())[video_conv._machine()][key]  # pylint: disable=protected-access
  assert set(entry["ms"]) == set(video_conv.candidates((1, 3, 5, 5, 2), (3, 3, 3, 2, 2), 1, 1,
                                                       jnp.float32))
  assert "frames2d_scandw" in entry["ms"] and entry["ms"] != old["ms"]
  video_conv.clear_memory_cache()


def test_frames2d_scandw_bfloat16_kernel_gradient_close_to_float32():
  """compute_dtype bfloat16: the frame-scan kernel gradient (bfloat16 patches and output gradient,
  float32 accumulation) stays within bfloat16's rounding of the float32 reference."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((1, 4, 6, 6, 8)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 8, 4)) * 0.1, jnp.float32)
  g = jnp.asarray(rng.standard_normal((1, 4, 6, 6, 4)), jnp.float32)
  want = jax.vjp(lambda b: _reference(x, b, 1, 1), w)[1](g)[0]
  got = jax.vjp(lambda b: video_conv.conv3d(x.astype(jnp.bfloat16), b.astype(jnp.bfloat16), 1, 1,
                                            "frames2d_scandw"), w)[1](g)[0]
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05 * float(jnp.abs(want).max()))


def test_tiled_max_pool_value_and_gradient_match_numpy_definition():
  """Window max, and its gradient shared equally among each window's maxima (jnp.max's rule),
  from NumPy loops; ties are planted (zeros as after a ReLU, and a repeated positive maximum)."""
  rng = np.random.default_rng(3)
  x = np.maximum(rng.standard_normal((2, 4, 4, 6, 3)), 0).astype(np.float32)
  x[0, 0, 0, 0, 0] = x[0, 0, 1, 1, 0] = 5.0          # two maxima in one (1,2,2) / (2,2,2) window
  g = rng.standard_normal((2, 4, 2, 3, 3)).astype(np.float32)
  for window in ((1, 2, 2), (2, 2, 2)):
    kt, kh, kw = window
    gw = g[:, ::kt] if kt > 1 else g
    y, vjp = jax.vjp(lambda a: video_conv.max_pool(a, window), jnp.asarray(x))
    want_y = np.zeros(gw.shape, np.float32)
    want_gx = np.zeros_like(x)
    for b, t, h, w, c in np.ndindex(*gw.shape):
      win = x[b, t * kt:(t + 1) * kt, h * kh:(h + 1) * kh, w * kw:(w + 1) * kw, c]
      want_y[b, t, h, w, c] = win.max()
      hits = win == win.max()
      want_gx[b, t * kt:(t + 1) * kt, h * kh:(h + 1) * kh, w * kw:(w + 1) * kw, c] += (
          hits * gw[b, t, h, w, c] / hits.sum())
    np.testing.assert_allclose(y, want_y)
    np.testing.assert_allclose(vjp(jnp.asarray(gw))[0], want_gx, rtol=1e-6, atol=1e-7)
