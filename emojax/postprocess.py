"""Post-processing of predictions: clip-to-second expansion, EMA over clips, Butterworth smoothing,
moving average.

All functions are numpy/SciPy (they run once per film after the model), keep a floating input's
dtype (other inputs come back as float64) and raise `DataError` on NaN/Inf input, `ConfigError`
on a bad parameter.
"""

import math

import numpy as np
from scipy import signal

from emojax.errors import ConfigError, DataError


def _as_float_array(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if not np.issubdtype(x.dtype, np.floating):
    x = x.astype(np.float64)
  if not np.all(np.isfinite(x)):
    raise DataError(f"{name} holds NaN/Inf values; fix the predictions that produced them.")
  return x


def repeat_to_seconds(clip_pred_C, num_seconds: int, clip_seconds: int = 10) -> np.ndarray:
  """Repeats each clip prediction over its seconds: (C,) -> (num_seconds,).

  Clip c covers seconds [c * clip_seconds, (c + 1) * clip_seconds); the last clip may be partial,
  so C must be ceil(num_seconds / clip_seconds).
  """
  if clip_seconds < 1 or int(clip_seconds) != clip_seconds:
    raise ConfigError(f"clip_seconds must be a positive integer, got {clip_seconds!r}.")
  if num_seconds < 0 or int(num_seconds) != num_seconds:
    raise DataError(f"num_seconds must be a non-negative integer, got {num_seconds!r}.")
  pred_C = _as_float_array(clip_pred_C, "clip predictions")
  if pred_C.ndim != 1:
    raise DataError(f"clip predictions must be 1-D (C,), got shape {pred_C.shape}.")
  num_clips = math.ceil(num_seconds / clip_seconds)
  if pred_C.shape[0] != num_clips:
    raise DataError(
        f"{pred_C.shape[0]} clip predictions for a film of {num_seconds} s: with "
        f"{clip_seconds} s clips it needs ceil({num_seconds}/{clip_seconds}) = {num_clips}.")
  return np.repeat(pred_C, int(clip_seconds))[:int(num_seconds)]


def ema(y_C, beta: float, axis: int = -1) -> np.ndarray:
  """Exponential moving average along `axis` (the paper's arousal smoothing over clips).

  ema_i = beta * ema_{i-1} + (1 - beta) * y_i, with the initial condition ema_0 = y_0 (the
  first clip is its own average, not pulled towards 0), i.e.
  ema_i = beta^i y_0 + sum_{k=1..i} (1 - beta) beta^(i-k) y_k.
  Vectorised with `scipy.signal.lfilter` (state zi = beta * y_0 gives ema_0 = y_0).
  """
  if not 0.0 <= beta <= 1.0:
    raise ConfigError(f"ema beta must lie in [0, 1], got {beta!r} (the paper uses 0.96-0.99).")
  y = _as_float_array(y_C, "ema input")
  if y.ndim == 0:
    raise DataError("ema input must have at least one axis.")
  if y.shape[axis] == 0:
    return y.copy()
  zi = beta * np.take(y, [0], axis=axis)
  out, _ = signal.lfilter([1.0 - beta], [1.0, -beta], y, axis=axis, zi=zi)
  return out.astype(y.dtype, copy=False)


def butterworth(x, cutoff_hz: float, order: int = 4, fs_hz: float = 1.0,
                axis: int = -1) -> np.ndarray:
  """Zero-phase low-pass Butterworth filter (forward-backward, `scipy.signal.sosfiltfilt`).

  Args:
    x: the signal, e.g. per-second predictions (T,) sampled at `fs_hz` (1 Hz).
    cutoff_hz: -3 dB cutoff (of one pass) in Hz, 0 < cutoff_hz < fs_hz / 2.
    order: filter order of one pass (the forward-backward result has twice the roll-off and the
      squared magnitude response). Paper 001 gives no order; 4 is a common default.
    fs_hz: sampling rate of `x`.
    axis: time axis.

  Short series are safe: the odd-extension padding is shortened to T - 1 samples when SciPy's
  default (3 * (2 * sections + 1)) does not fit, and T <= 1 returns a copy.
  """
  if int(order) != order or order < 1:
    raise ConfigError(f"butterworth order must be a positive integer, got {order!r}.")
  if not fs_hz > 0:
    raise ConfigError(f"butterworth fs_hz must be > 0, got {fs_hz!r}.")
  if not 0 < cutoff_hz < fs_hz / 2:
    raise ConfigError(f"butterworth cutoff_hz must lie in (0, fs_hz/2) = (0, {fs_hz / 2}), "
                      f"got {cutoff_hz!r}.")
  x = _as_float_array(x, "butterworth input")
  if x.ndim == 0:
    raise DataError("butterworth input must have at least one axis.")
  n = x.shape[axis]
  if n <= 1:
    return x.copy()
  sos = signal.butter(int(order), cutoff_hz, btype="low", fs=fs_hz, output="sos")
  # SciPy's default padlen for sosfiltfilt.
  zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
  padlen = min(3 * (2 * len(sos) + 1 - zeros), n - 1)
  out = signal.sosfiltfilt(sos, x, axis=axis, padtype="odd", padlen=padlen)
  return out.astype(x.dtype, copy=False)


def moving_average(x, width: int, axis: int = -1) -> np.ndarray:
  """Centred (zero-phase) moving average of `width` samples along `axis`.

  y_t = mean of x over [t - (width - 1) // 2, t + width // 2] clipped to the series: at the ends the
  window shrinks to the samples that exist (no padding values enter the mean). The alternative to
  the Butterworth filter in paper 001.
  """
  if int(width) != width or width < 1:
    raise ConfigError(f"moving average width must be a positive integer, got {width!r}.")
  x = _as_float_array(x, "moving average input")
  if x.ndim == 0:
    raise DataError("moving average input must have at least one axis.")
  width = int(width)
  xt = np.moveaxis(x, axis, -1).astype(np.float64)
  n = xt.shape[-1]
  if n == 0:
    return x.copy()
  csum = np.concatenate([np.zeros(xt.shape[:-1] + (1,)), np.cumsum(xt, axis=-1)], axis=-1)
  t = np.arange(n)
  lo = np.clip(t - (width - 1) // 2, 0, n)
  hi = np.clip(t + width // 2 + 1, 0, n)
  out = (csum[..., hi] - csum[..., lo]) / (hi - lo)
  return np.moveaxis(out, -1, axis).astype(x.dtype, copy=False)
