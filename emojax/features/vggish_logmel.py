"""`vggish_logmel`: the exact VGGish input, one 96x64 log-mel patch per second.

VGGish's front end (tensorflow/models research/audioset/vggish, `mel_features.py` and
`vggish_params.py`): 16 kHz mono; frames of 400 samples (25 ms) every 160 samples (10 ms),
no centring/padding; periodic Hann window 0.5 - 0.5 cos(2 pi n / 400); |rfft| with FFT length 512
(magnitude, not power); 64 mel bands from 125 to 7500 Hz on the HTK mel scale
mel(f) = 1127 ln(1 + f / 700), triangles linear in mel with unit peak and no area normalisation,
the DC bin weighted 0; log(mel + 0.01). A patch is 96 frames (0.96 s): here the first 0.96 s of
each second (96 frames need 95 * 160 + 400 = 15600 samples, within the second), so patch s covers
[s, s + 0.96) and the last 0.04 s of each second is not seen, as in the papers that feed VGGish one
patch per second.

Why not librosa's mel filters: `librosa.filters.mel(htk=True, norm=None)` builds the triangles on
the FFT bin frequencies in Hz with its own edge handling and keeps the DC weight; it differs from
VGGish's matrix by up to ~4e-3 per weight, enough to shift embeddings of a pretrained VGGish. The
matrix below follows VGGish's `spectrogram_to_mel_matrix` from its published constants.
"""

from __future__ import annotations

import numpy as np

from emojax.features import registry

SAMPLE_RATE = 16000
WINDOW = 400
HOP = 160
FFT = 512
NUM_BANDS = 64
LOW_HZ = 125.0
HIGH_HZ = 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96


def hertz_to_mel(f_hz: np.ndarray) -> np.ndarray:
  """HTK mel scale."""
  return 1127.0 * np.log1p(np.asarray(f_hz, np.float64) / 700.0)


def mel_matrix(num_bands: int = NUM_BANDS, num_bins: int = FFT // 2 + 1,
               sample_rate: int = SAMPLE_RATE, low_hz: float = LOW_HZ,
               high_hz: float = HIGH_HZ) -> np.ndarray:
  """(num_bins, num_bands) weights: triangles linear in HTK mel, DC row zero (VGGish's)."""
  bins_mel_F = hertz_to_mel(np.linspace(0.0, sample_rate / 2, num_bins))
  edges_mel = np.linspace(hertz_to_mel(low_hz), hertz_to_mel(high_hz), num_bands + 2)
  lower_M, center_M, upper_M = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
  rising_FxM = (bins_mel_F[:, None] - lower_M) / (center_M - lower_M)
  falling_FxM = (upper_M - bins_mel_F[:, None]) / (upper_M - center_M)
  weights_FxM = np.maximum(0.0, np.minimum(rising_FxM, falling_FxM))
  weights_FxM[0, :] = 0.0
  return weights_FxM


def periodic_hann(n: int) -> np.ndarray:
  return 0.5 - 0.5 * np.cos(2.0 * np.pi / n * np.arange(n))


def log_mel(x_S: np.ndarray, num_frames: int = PATCH_FRAMES) -> np.ndarray:
  """(num_frames, 64) float32 log-mel of the first frames of a 16 kHz signal (zero-padded)."""
  need = (num_frames - 1) * HOP + WINDOW
  x = np.zeros(need, np.float64)
  n = min(need, x_S.size)
  x[:n] = x_S[:n]
  idx_NxW = np.arange(num_frames)[:, None] * HOP + np.arange(WINDOW)[None, :]
  frames_NxW = x[idx_NxW] * _WINDOW
  mag_NxF = np.abs(np.fft.rfft(frames_NxW, FFT))
  return np.log(mag_NxF @ _MEL_FxM + LOG_OFFSET).astype(np.float32)


_WINDOW = periodic_hann(WINDOW)
_MEL_FxM = mel_matrix()


@registry.register
class VggishLogmel(registry.Extractor):
  """One (96, 64) VGGish log-mel patch per second (first 0.96 s of the second)."""

  name = "vggish_logmel"
  version = 2
  modality = "audio"
  defaults = {}

  def row_shape(self) -> tuple[int, ...]:
    return (PATCH_FRAMES, NUM_BANDS)

  def audio_second(self, s: int, x_S: np.ndarray) -> np.ndarray:
    del s
    return log_mel(x_S)
