"""`audio_functionals`: an openSMILE-emobase-like set of per-second functionals.

Frame-level descriptors on each second of 16 kHz mono audio (frames of 25 ms = 400 samples in an
FFT of 512, hop 10 ms = 160 samples, centred: 101 frames per second; each second is analysed on
its own, so deltas repeat the edge frames at the second's borders):
  rms, zcr, spectral centroid (Hz), bandwidth (Hz), roll-off 85% (Hz), flatness,
  20 MFCCs (40 mel bands, 0-8 kHz, from the power spectrum in dB), their 20 deltas (width 9),
  F0 (Hz, 0 where unvoiced, as openSMILE's F0 contour) and voicing probability
  -> 48 descriptors; per descriptor the functionals mean, std, min, max and linear-regression slope
  (per second) -> 240 values, descriptor-major (`feature_names()` lists them).

The descriptors are librosa 0.11's (`librosa.stft`, `feature.rms`, `feature.zero_crossing_rate`,
`feature.spectral_centroid` / `_bandwidth` / `_rolloff` / `_flatness`, `power_to_db`,
`feature.mfcc`, `feature.delta`, `filters.mel`, with the arguments named above), written here in
NumPy / SciPy with librosa's operations, dtypes and memory order: bit-identical descriptors
(checked against librosa 0.11 on 48 blocks: noise from 1e-6 to 1, rounded values, a tone, a chirp,
silence, 1e-12, blocks shorter than a second, and the fixture film's first 5 s of sound), without
librosa's import, whose Numba kernels cost about 20 s of compilation in every new environment
(and ~2 s to load after that).

Pitch. librosa.pyin costs ~100 ms per second of audio here, more than decoding the film, so F0 is
a normalised autocorrelation estimate (the core of Boersma's method, without its path search):
frames of 40 ms (640 samples, Hann) centred on the descriptor frames; r(tau) = acf(tau) /
acf_window(tau) / acf(0), the window's own autocorrelation dividing out its taper; the best lag in
[sr / fmax, sr / fmin] (60-500 Hz) (the shortest lag whose local peak reaches 0.9 of the
best, against octave errors) refined by parabolic interpolation gives F0, its r value the
voicing probability; frames with voicing < 0.5 or almost no energy are unvoiced (F0 = 0).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from emojax.features import registry

SAMPLE_RATE = 16000
N_FFT = 512
WIN = 400
HOP = 160
N_MFCC = 20
N_MELS = 40
PITCH_WIN = 640
PITCH_FFT = 1024  # >= PITCH_WIN + max lag: no circular wrap
OCTAVE_TOLERANCE = 0.9
FMIN, FMAX = 60.0, 500.0
VOICING_THRESHOLD = 0.5
DESCRIPTORS = (["rms", "zcr", "centroid", "bandwidth", "rolloff", "flatness"]
               + [f"mfcc{i}" for i in range(N_MFCC)] + [f"mfcc{i}_delta" for i in range(N_MFCC)]
               + ["f0", "voicing"])
FUNCTIONALS = ("mean", "std", "min", "max", "slope")


def feature_names() -> list[str]:
  return [f"{d}_{f}" for d in DESCRIPTORS for f in FUNCTIONALS]


def pitch_track(x: np.ndarray, num_frames: int, sr: int = SAMPLE_RATE
                ) -> tuple[np.ndarray, np.ndarray]:
  """(f0 Hz with 0 where unvoiced, voicing in [0, 1]) for frames centred at i * HOP."""
  half = PITCH_WIN // 2
  xp = np.pad(np.asarray(x, np.float32), (half, half))
  frames_NxW = np.lib.stride_tricks.sliding_window_view(xp, PITCH_WIN)[::HOP][:num_frames]
  frames_NxW = (frames_NxW - frames_NxW.mean(axis=1, keepdims=True)) * _PITCH_WINDOW
  spec = scipy.fft.rfft(frames_NxW, PITCH_FFT, axis=1)
  acf_NxL = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, PITCH_FFT, axis=1)
  energy_N = acf_NxL[:, 0].astype(np.float64)
  lo, hi = int(np.floor(sr / FMAX)), int(np.ceil(sr / FMIN))
  r_NxL = acf_NxL[:, :hi + 2] / _WINDOW_ACF[None, :hi + 2] / np.maximum(energy_N[:, None], 1e-12)
  # Octave errors: take the shortest lag whose peak reaches OCTAVE_TOLERANCE of the best one.
  band_NxK = r_NxL[:, lo:hi + 1]
  peak_NxK = (band_NxK >= r_NxL[:, lo - 1:hi]) & (band_NxK >= r_NxL[:, lo + 1:hi + 2])
  good_NxK = peak_NxK & (band_NxK >= OCTAVE_TOLERANCE * band_NxK.max(axis=1, keepdims=True))
  lag_N = lo + np.where(good_NxK.any(axis=1), np.argmax(good_NxK, axis=1),
                        np.argmax(band_NxK, axis=1))
  rows = np.arange(num_frames)
  y0, y1, y2 = r_NxL[rows, lag_N - 1], r_NxL[rows, lag_N], r_NxL[rows, lag_N + 1]
  denom = y0 - 2 * y1 + y2
  safe = np.abs(denom) > 1e-12
  shift = np.clip(np.where(safe, 0.5 * (y0 - y2) / np.where(safe, denom, 1.0), 0.0), -0.5, 0.5)
  sounding = energy_N > 1e-8 * PITCH_WIN
  voicing = np.where(sounding, np.clip(y1, 0.0, 1.0), 0.0)
  f0 = np.where(sounding & (voicing >= VOICING_THRESHOLD), sr / (lag_N + shift), 0.0)
  return f0, voicing


_PITCH_WINDOW = np.hanning(PITCH_WIN + 2)[1:-1]
_WINDOW_ACF = np.correlate(_PITCH_WINDOW, _PITCH_WINDOW, "full")[PITCH_WIN - 1:]
_WINDOW_ACF = (_WINDOW_ACF / _WINDOW_ACF[0]).astype(np.float32)
_PITCH_WINDOW = _PITCH_WINDOW.astype(np.float32)
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
  """Slaney's mel scale (librosa.hz_to_mel, htk=False): linear below 1 kHz, logarithmic above."""
  f = np.asanyarray(f, dtype=np.float64)
  mels = f / (200.0 / 3)
  log_t = f >= 1000.0
  mels[log_t] = 15.0 + np.log(f[log_t] / 1000.0) / (np.log(6.4) / 27.0)
  return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
  freqs = (200.0 / 3) * mels
  log_t = mels >= 15.0
  freqs[log_t] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_t] - 15.0))
  return freqs


def _mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
  """(n_mels, 1 + n_fft // 2) float32 Slaney-normalised triangles (librosa.filters.mel)."""
  fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
  mel_f = _mel_to_hz(np.linspace(*_hz_to_mel(np.array([fmin, fmax])), n_mels + 2))
  fdiff = np.diff(mel_f)
  ramps = np.subtract.outer(mel_f, fftfreqs)
  weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
  for i in range(n_mels):
    weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
  weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
  return weights


_MEL = _mel_filters(SAMPLE_RATE, N_FFT, N_MELS, 0.0, 8000.0)
_FREQ_F = np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)  # Hz of each STFT bin (float64)
_STFT_WINDOW = np.zeros(N_FFT)  # periodic Hann of WIN samples, centred in N_FFT (float64)
_STFT_WINDOW[(N_FFT - WIN) // 2:(N_FFT - WIN) // 2 + WIN] = scipy.signal.get_window(
    "hann", WIN, fftbins=True)


def _frames(y: np.ndarray, length: int) -> np.ndarray:
  """(length, frames) view of `y` in frames of `length` every HOP samples (librosa.util.frame)."""
  return np.lib.stride_tricks.sliding_window_view(y, length)[::HOP].T


def _l1_normalized(S_FxN: np.ndarray) -> np.ndarray:
  """Each column over its L1 norm, float32 (librosa.util.normalize(norm=1, axis=-2)); a column
  whose norm is below float32's smallest normal number is left as it is."""
  length = np.sum(np.abs(S_FxN).astype(float), axis=0, keepdims=True)
  length[length < np.finfo(np.float32).tiny] = 1.0
  out = np.empty_like(S_FxN)
  out[:] = S_FxN / length
  return out


def descriptors(x_S: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
  """(48, frames) frame-level descriptors of one block of audio."""
  if sr != SAMPLE_RATE:
    raise ValueError(f"audio_functionals analyses {SAMPLE_RATE} Hz audio, not {sr} Hz")
  y = np.ascontiguousarray(x_S, dtype=np.float32)
  # |STFT|: zero-padded by N_FFT / 2 each side (center=True, pad_mode="constant"); the window
  # (float64) times the float32 frames is transformed in float64 and kept in complex64, in
  # column-major order as librosa (its sums over frequency then add the same numbers in the same
  # order: equal to the last bit).
  frames = _frames(np.pad(y, (N_FFT // 2, N_FFT // 2)), N_FFT)
  S_FxN = np.abs(np.asfortranarray(
      scipy.fft.rfft(_STFT_WINDOW[:, None] * frames, axis=0), dtype=np.complex64))
  n = S_FxN.shape[1]
  # rms and zcr on frames of WIN samples, padded by WIN / 2 with zeros (rms) or the edge (zcr).
  rms = np.sqrt(np.mean(np.square(_frames(np.pad(y, (WIN // 2, WIN // 2)), WIN),
                                  dtype=np.float32), axis=0))
  z = _frames(np.pad(y, (WIN // 2, WIN // 2), mode="edge"), WIN)
  z = np.where(np.abs(z) <= 1e-10, 0, z)  # |x| <= 1e-10 counts as 0, and 0 as positive
  crossings = np.zeros(z.shape, bool)
  crossings[1:] = np.signbit(z[1:]) != np.signbit(z[:-1])
  zcr = np.mean(crossings, axis=0)
  S_norm = _l1_normalized(S_FxN)
  centroid = np.sum(_FREQ_F[:, None] * S_norm, axis=0)
  deviation_FxN = np.abs(np.subtract.outer(centroid, _FREQ_F).T)
  bandwidth = np.sum(S_norm * deviation_FxN ** 2, axis=0) ** 0.5
  total = np.cumsum(S_FxN, axis=0)
  below = total < np.expand_dims(0.85 * total[-1], 0)
  rolloff = np.nanmin(np.where(below, np.nan, 1) * _FREQ_F[:, None], axis=0)
  power = np.maximum(1e-10, S_FxN ** 2.0)
  flatness = np.exp(np.mean(np.log(power), axis=0)) / np.mean(power, axis=0)
  mel_db = 10.0 * np.log10(np.maximum(1e-10, _MEL @ (S_FxN ** 2)))  # power_to_db, ref 1
  mfcc = scipy.fft.dct(mel_db, axis=0, type=2, norm="ortho")[:N_MFCC]
  delta = scipy.signal.savgol_filter(mfcc, 9, 1, deriv=1, axis=-1, mode="nearest")
  f0, voicing = pitch_track(y, n, sr)
  out = np.concatenate([np.stack([rms[:n], zcr[:n], centroid, bandwidth, rolloff, flatness]),
                        mfcc, delta, np.stack([f0, voicing])], axis=0)
  return out.astype(np.float64)


def functionals(d_DxN: np.ndarray, hop_s: float = HOP / SAMPLE_RATE) -> np.ndarray:
  """(D * 5,) mean, std, min, max, slope (per second) of each descriptor, descriptor-major."""
  t_N = np.arange(d_DxN.shape[1]) * hop_s
  tc_N = t_N - t_N.mean()
  mean = d_DxN.mean(axis=1)
  slope = ((d_DxN - mean[:, None]) @ tc_N) / np.sum(tc_N ** 2)
  stats_Dx5 = np.stack([mean, d_DxN.std(axis=1), d_DxN.min(axis=1), d_DxN.max(axis=1), slope],
                       axis=1)
  return stats_Dx5.reshape(-1)


@registry.register
class AudioFunctionals(registry.Extractor):
  """(240,) functionals of 48 frame-level descriptors per second."""

  name = "audio_functionals"
  version = 2
  modality = "audio"
  defaults = {}

  def row_shape(self) -> tuple[int, ...]:
    return (len(DESCRIPTORS) * len(FUNCTIONALS),)

  def audio_second(self, s: int, x_S: np.ndarray) -> np.ndarray:
    del s
    return functionals(descriptors(x_S)).astype(np.float32)
