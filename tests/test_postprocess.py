"""Tests of emojax.postprocess against closed forms and filter properties."""

import numpy as np
import pytest

from emojax import postprocess
from emojax.errors import ConfigError, DataError


def test_repeat_to_seconds_partial_last_clip():
  got = postprocess.repeat_to_seconds(np.array([1.0, 2.0, 3.0]), 25, clip_seconds=10)
  np.testing.assert_array_equal(got, [1.0] * 10 + [2.0] * 10 + [3.0] * 5)
  got = postprocess.repeat_to_seconds([0.5, -0.5], 6, clip_seconds=3)
  np.testing.assert_array_equal(got, [0.5, 0.5, 0.5, -0.5, -0.5, -0.5])
  assert postprocess.repeat_to_seconds(np.zeros(0), 0).shape == (0,)


def test_repeat_to_seconds_rejects_wrong_clip_count():
  with pytest.raises(DataError, match="ceil\\(25/10\\) = 3"):
    postprocess.repeat_to_seconds(np.zeros(2), 25)
  with pytest.raises(DataError, match="= 3"):
    postprocess.repeat_to_seconds(np.zeros(4), 30)
  with pytest.raises(DataError, match="NaN"):
    postprocess.repeat_to_seconds(np.array([np.nan]), 5)


def _ema_closed_form(y, beta):
  out = np.empty(len(y))
  for i in range(len(y)):
    out[i] = beta ** i * y[0] + sum((1 - beta) * beta ** (i - k) * y[k] for k in range(1, i + 1))
  return out


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.96, 0.99, 1.0])
def test_ema_matches_closed_form(beta):
  y = np.random.default_rng(0).uniform(-1, 1, 40)
  got = postprocess.ema(y, beta)
  np.testing.assert_allclose(got, _ema_closed_form(y, beta), rtol=0, atol=1e-12)
  assert got[0] == y[0]


def test_ema_recursion_and_axis():
  y_BxC = np.random.default_rng(1).uniform(-1, 1, (3, 12)).astype(np.float32)
  got = postprocess.ema(y_BxC, 0.9, axis=1)
  assert got.dtype == np.float32 and got.shape == (3, 12)
  for b in range(3):
    prev = y_BxC[b, 0]
    for i in range(12):
      prev = prev if i == 0 else 0.9 * prev + 0.1 * float(y_BxC[b, i])
      assert got[b, i] == pytest.approx(prev, abs=1e-6)
  np.testing.assert_allclose(postprocess.ema(y_BxC.T, 0.9, axis=0), got.T, atol=0)


def test_ema_rejects_bad_beta():
  with pytest.raises(ConfigError):
    postprocess.ema(np.zeros(3), 1.5)


def test_butterworth_zero_phase_and_attenuation():
  t = np.arange(600.0)
  slow = np.sin(2 * np.pi * t / 200.0)  # 0.005 Hz, far below the 0.05 Hz cutoff.
  fast = np.sin(2 * np.pi * t / 4.0)  # 0.25 Hz, far above it.
  out_slow = postprocess.butterworth(slow, cutoff_hz=0.05, order=4)
  out_fast = postprocess.butterworth(fast, cutoff_hz=0.05, order=4)
  mid = slice(100, 500)
  # No lag: the slow sine passes unchanged (a causal filter of this order would delay it ~20 s).
  np.testing.assert_allclose(out_slow[mid], slow[mid], atol=1e-3)
  lags = np.arange(-10, 11)
  xc = [np.dot(np.roll(out_slow, -k)[mid], slow[mid]) for k in lags]
  assert lags[int(np.argmax(xc))] == 0
  # The fast sine is removed.
  assert np.max(np.abs(out_fast[mid])) < 1e-3
  # Mixed signal: the filter keeps the slow part only.
  np.testing.assert_allclose(postprocess.butterworth(slow + fast, 0.05)[mid], slow[mid], atol=2e-3)


def test_butterworth_half_power_at_cutoff():
  # One pass has |H|^2 = 1/2 at the cutoff; forward-backward applies |H|^2: amplitude 0.5.
  fs, fc = 1.0, 0.1
  t = np.arange(2000.0)
  out = postprocess.butterworth(np.sin(2 * np.pi * fc * t), cutoff_hz=fc, order=3, fs_hz=fs)
  mid = slice(500, 1500)
  design = np.stack([np.sin(2 * np.pi * fc * t[mid]), np.cos(2 * np.pi * fc * t[mid])], axis=1)
  (a, b), *_ = np.linalg.lstsq(design, out[mid], rcond=None)
  assert np.hypot(a, b) == pytest.approx(0.5, abs=2e-3)
  assert abs(b) < 1e-3  # In phase with the input.


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20])
def test_butterworth_short_series(n):
  x = np.random.default_rng(n).uniform(-1, 1, n)
  out = postprocess.butterworth(x, cutoff_hz=0.1)
  assert out.shape == (n,) and np.all(np.isfinite(out))
  # A constant passes unchanged (DC gain 1), whatever the length.
  np.testing.assert_allclose(postprocess.butterworth(np.full(n, 0.3), 0.1), 0.3, atol=1e-9)


def test_butterworth_axis_and_dtype():
  x_BxT = np.random.default_rng(3).uniform(-1, 1, (4, 50)).astype(np.float32)
  out = postprocess.butterworth(x_BxT, 0.1, axis=1)
  assert out.dtype == np.float32
  np.testing.assert_allclose(postprocess.butterworth(x_BxT.T, 0.1, axis=0), out.T, atol=0)
  np.testing.assert_allclose(out[2], postprocess.butterworth(x_BxT[2], 0.1), atol=1e-6)


def test_butterworth_rejects_bad_cutoff():
  with pytest.raises(ConfigError, match="cutoff"):
    postprocess.butterworth(np.zeros(10), cutoff_hz=0.5)
  with pytest.raises(ConfigError, match="cutoff"):
    postprocess.butterworth(np.zeros(10), cutoff_hz=0.0)
