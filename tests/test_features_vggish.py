"""vggish_logmel against an independent reference written from VGGish's published constants."""

import math

import numpy as np
import scipy.fft
import scipy.signal

from conftest import MEDIA_FIXTURE
from emojax.features import decode
from emojax.features import extract_film


def _reference_log_mel(x, start):
  """VGGish front end with loops: 25 ms periodic Hann frames every 10 ms, |FFT 512|, 64 HTK mel
  bands 125-7500 Hz linear in mel (DC weight 0), log(mel + 0.01); 96 frames from `start`."""
  sr, win, hop, nfft, bands = 16000, 400, 160, 512, 64
  window = scipy.signal.get_window("hann", win, fftbins=True)  # periodic
  mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)
  lo, hi = mel(125.0), mel(7500.0)
  edges = [lo + (hi - lo) * i / (bands + 1) for i in range(bands + 2)]
  nbins = nfft // 2 + 1
  weights = np.zeros((nbins, bands))
  for k in range(1, nbins):  # bin 0 (DC) keeps weight 0
    m = mel(k * (sr / 2) / (nbins - 1))
    for b in range(bands):
      left, center, right = edges[b], edges[b + 1], edges[b + 2]
      if left < m <= center:
        weights[k, b] = (m - left) / (center - left)
      elif center < m < right:
        weights[k, b] = (right - m) / (right - center)
  out = np.zeros((96, bands))
  for i in range(96):
    seg = x[start + i * hop: start + i * hop + win].astype(np.float64)
    spec = np.abs(scipy.fft.rfft(seg * window, nfft))
    out[i] = np.log(spec @ weights + 0.01)
  return out


def test_vggish_logmel_matches_reference_on_fixture():
  feats = extract_film(MEDIA_FIXTURE, ["vggish_logmel"])
  x = decode.decode_audio(MEDIA_FIXTURE)
  patches = feats.streams["vggish_logmel"]
  assert patches.shape == (5, 96, 64) and patches.dtype == np.float32
  for s in range(feats.num_seconds):
    ref = _reference_log_mel(x, s * 16000)
    np.testing.assert_allclose(patches[s], ref, atol=2e-4, rtol=1e-5)


def test_vggish_logmel_tone_peaks_at_its_band():
  from emojax.features import vggish_logmel
  t = np.arange(16000) / 16000
  for f0 in (300.0, 1000.0, 4000.0):
    patch = vggish_logmel.log_mel(np.sin(2 * np.pi * f0 * t).astype(np.float32))
    mel = lambda f: 1127.0 * np.log1p(f / 700.0)
    centers = np.linspace(mel(125.0), mel(7500.0), 66)[1:-1]
    assert abs(int(patch.mean(0).argmax()) - int(np.abs(centers - mel(f0)).argmin())) <= 1
    np.testing.assert_allclose(patch, _reference_log_mel(np.sin(2 * np.pi * f0 * t), 0),
                               atol=2e-4)
