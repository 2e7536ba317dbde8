"""`audio_functionals`: an openSMILE-emobase-like set of per-second functionals, from librosa.

Frame-level descriptors on each second of 16 kHz mono audio (frames of 25 ms = 400 samples in an
FFT of 512, hop 10 ms = 160 samples, centred: 101 frames per second; each second is analysed on
its own, so deltas repeat the edge frames at the second's borders):
  rms, zcr, spectral centroid (Hz), bandwidth (Hz), roll-off 85% (Hz), flatness,
  20 MFCCs (40 mel bands, 0-8 kHz, from the power spectrum in dB), their 20 deltas (width 9),
  F0 (Hz, 0 where unvoiced, as openSMILE's F0 contour) and voicing probability
  -> 48 descriptors; per descriptor the functionals mean, std, min, max and linear-regression slope
  (per second) -> 240 values, descriptor-major (`feature_names()` lists them).

Pitch. librosa.pyin costs ~100 ms per second of audio here, more than decoding the film, so F0 is
a normalised autocorrelation estimate (the core of Boersma's method, without its path search):
frames of 40 ms (640 samples, Hann) centred on the descriptor frames; r(tau) = acf(tau) /
acf_window(tau) / acf(0), the window's own autocorrelation dividing out its taper; the best lag in
[sr / fmax, sr / fmin] (60-500 Hz) (the shortest lag whose local peak reaches 0.9 of the
best, against octave errors) refined by parabolic interpolation gives F0, its r value the
voicing probability; frames with voicing < 0.5 or almost no energy are unvoiced (F0 = 0).
"""

from __future__ import annotations

import librosa
import numpy as np
import scipy.fft

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
_MEL = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=8000.0)


def descriptors(x_S: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
  """(48, frames) frame-level descriptors of one block of audio."""
  y = np.ascontiguousarray(x_S, dtype=np.float32)
  S_FxN = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN, center=True))
  n = S_FxN.shape[1]
  rms = librosa.feature.rms(y=y, frame_length=WIN, hop_length=HOP, center=True)[0]
  zcr = librosa.feature.zero_crossing_rate(y, frame_length=WIN, hop_length=HOP, center=True)[0]
  centroid = librosa.feature.spectral_centroid(S=S_FxN, sr=sr, n_fft=N_FFT)[0]
  bandwidth = librosa.feature.spectral_bandwidth(S=S_FxN, sr=sr, n_fft=N_FFT)[0]
  rolloff = librosa.feature.spectral_rolloff(S=S_FxN, sr=sr, n_fft=N_FFT, roll_percent=0.85)[0]
  flatness = librosa.feature.spectral_flatness(S=S_FxN)[0]
  mel_db = librosa.power_to_db(_MEL @ (S_FxN ** 2), ref=1.0, amin=1e-10, top_db=None)
  mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
  delta = librosa.feature.delta(mfcc, width=9, mode="nearest")
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
