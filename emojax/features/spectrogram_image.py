"""`spectrogram_image`: seed 002's per-second spectrogram, rendered as a grayscale uint8 image.

Per second of 16 kHz audio: STFT with a 40 ms Hamming window (640 samples, symmetric) every 20 ms
(320 samples), FFT length = window length, no padding (49 frames x 321 bins). Magnitudes in dB
relative to full scale (a full-scale sine at a bin frequency reads 0 dBFS: the reference is
sum(window) / 2), clipped to [-db_range, 0] and mapped linearly to [0, 255]. Image rows are
frequency with the highest at the top (row 0 = 8 kHz), columns are time; resized with bilinear
interpolation (PIL, on the float image before quantising) to size x size (256 in seed 002, which
feeds it to AlexNet). A fixed dB scale, not a per-image min-max, so loudness is kept.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from PIL import Image

from emojax.features import registry

SAMPLE_RATE = 16000


@registry.register
class SpectrogramImage(registry.Extractor):
  """(size, size) uint8 spectrogram image per second."""

  name = "spectrogram_image"
  version = 2
  modality = "audio"
  dtype = "uint8"
  defaults = {"size": 256, "window_ms": 40.0, "hop_ms": 20.0, "db_range": 100.0}

  def __init__(self, **params):
    super().__init__(**params)
    self.win = int(round(self.params["window_ms"] * SAMPLE_RATE / 1000))
    self.hop = int(round(self.params["hop_ms"] * SAMPLE_RATE / 1000))
    self.window = scipy.signal.get_window("hamming", self.win, fftbins=False)
    self.ref = self.window.sum() / 2

  def row_shape(self) -> tuple[int, ...]:
    return (self.params["size"], self.params["size"])

  def spectrogram_db(self, x_S: np.ndarray) -> np.ndarray:
    """(bins, frames) dBFS magnitude spectrogram of one second."""
    n = 1 + (x_S.size - self.win) // self.hop
    idx_NxW = np.arange(n)[:, None] * self.hop + np.arange(self.win)[None, :]
    mag_NxF = np.abs(np.fft.rfft(x_S[idx_NxW] * self.window, self.win))
    return 20.0 * np.log10(mag_NxF.T / self.ref + 1e-10)

  def audio_second(self, s: int, x_S: np.ndarray) -> np.ndarray:
    del s
    db_FxN = self.spectrogram_db(x_S.astype(np.float64))
    top = self.params["db_range"]
    img = (np.clip(db_FxN, -top, 0.0) + top) * (255.0 / top)
    img = img[::-1]  # high frequencies on top
    size = self.params["size"]
    resized = Image.fromarray(img.astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR)
    return np.clip(np.rint(np.asarray(resized)), 0, 255).astype(np.uint8)
