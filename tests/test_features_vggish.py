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


def _decoded_channels(path):
  """Every decoded channel of the first audio stream as float64 (C, S), converted here by hand."""
  import av  # pylint: disable=g-import-not-at-top
  out = []
  with av.open(str(path)) as c:
    for f in c.decode(c.streams.audio[0]):
      x = f.to_ndarray()
      if not f.format.is_planar:  # packed: interleaved samples
        x = x.reshape(-1, len(f.layout.channels)).T
      out.append(x / 32768.0 if x.dtype == np.int16 else x.astype(np.float64))
  return np.concatenate(out, axis=1)


def _published_vggish_patches(path, source_rate, num_seconds):
  """Published VGGish input (vggish_input.waveform_to_examples): the mean of the channels, resampled
  to 16 kHz (SciPy's polyphase filter standing in for resampy), then the log-mel front end."""
  mono = _decoded_channels(path).mean(axis=0)
  g = math.gcd(16000, source_rate)
  x = scipy.signal.resample_poly(mono, 16000 // g, source_rate // g)
  return np.stack([_reference_log_mel(x, s * 16000) for s in range(num_seconds)])


def _assert_close_to_published(ours, ref):
  """Equal up to the resamplers: below ~7 kHz (bands 0-59) within 0.005; the top four bands, near
  the 7.5 kHz edge where the resampling filters' transition bands begin, within 0.25."""
  d_TxFxM = np.abs(ours - ref)
  assert d_TxFxM[..., :60].max() < 5e-3, d_TxFxM.max(axis=(0, 1))
  assert d_TxFxM.max() < 0.25, d_TxFxM.max(axis=(0, 1))
  assert np.median(d_TxFxM[..., 60:]) < 0.02


def test_vggish_logmel_51_fixture_matches_published_channel_mean():
  """The real 5.1 AAC fixture against the published algorithm (channel mean first). The old
  libswresample matrix (about 5.3x the mean on this film) was up to ~2.5 higher."""
  feats = extract_film(MEDIA_FIXTURE, ["vggish_logmel"])
  ref = _published_vggish_patches(MEDIA_FIXTURE, 48000, feats.num_seconds)
  _assert_close_to_published(feats.streams["vggish_logmel"], ref)


def test_vggish_logmel_stereo_matches_published_channel_mean(tmp_path):
  """A stereo 44.1 kHz film with different left and right content (tones, noise, a silent gap in
  one channel): the log-mel of the channel mean, not (L + R) / sqrt(2)."""
  import media_synth  # pylint: disable=g-import-not-at-top
  sr, secs = 44100, 3
  t = np.arange(secs * sr) / sr
  rng = np.random.default_rng(3)
  left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)
  right = 0.2 * np.sin(2 * np.pi * 2500 * t) * (t % 1.0 < 0.6) + 0.02 * rng.normal(size=t.size)
  path = tmp_path / "stereo.mkv"
  media_synth.write_video(path, media_synth.solid_frames(np.arange(secs * 25) % 255),
                          np.arange(secs * 25) / 25, audio=np.stack([left, right]),
                          audio_rate=sr, audio_layout="stereo")
  feats = extract_film(path, ["vggish_logmel"])
  assert feats.num_seconds == secs
  ours = feats.streams["vggish_logmel"]
  ref = _published_vggish_patches(path, sr, secs)
  _assert_close_to_published(ours, ref)
  # (L + R) / sqrt(2), the old down-mix, is log(sqrt(2)) ~ 0.35 higher: far outside the tolerance.
  assert np.median(ours - (ref + np.log(np.sqrt(2)))) < -0.3
