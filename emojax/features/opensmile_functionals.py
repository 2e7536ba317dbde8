"""`opensmile_functionals`: openSMILE's feature sets (IS09-IS13, emobase, eGeMAPS, ComParE).

Optional extra `emojax[opensmile]` (`pip install opensmile==2.6.0`: the openSMILE library and its
configs ship in the wheel; nothing is downloaded at run time). openSMILE is licensed by audEERING
for research and personal use only; commercial use needs a licence from audEERING.

Each row holds the functionals of one feature set (`feature_set`, a name of
`opensmile.FeatureSet`, e.g. 'IS10' = 1,582 values, 'eGeMAPSv02' = 88, 'ComParE_2016' = 6,373)
over a window of the film's 16 kHz mono audio, in openSMILE's attribute order
(`feature_names(feature_set)`). `feature_set='emobase2010'` (1,582, MediaEval 2018's official
audio features) is openSMILE 2.x's emobase2010.conf, derived at run time from the package's IS10
config (`emobase2010_config`; IS10 differs from it in 321 of the 1,582 values, see
docs/features.md):

- `level='second'` (T rows): the window of second s is `window_s` long and centred on the second's
  middle, [s + 0.5 - window_s / 2, s + 0.5 + window_s / 2) cut to the film [0, T) (the first and
  last seconds get shorter windows); `window_s=1` is the second's own samples;
- `level='clip'` (ceil(T / clip_seconds) rows): clip c is [c L, min((c + 1) L, T)) with
  L = `clip_seconds`; `clip_seconds=0` makes the whole film one clip.

Each window is analysed on its own, exactly as `opensmile.Smile(feature_set,
'Functionals').process_signal(window_samples, 16000)` does (the config, the sink options, the
16-bit conversion of the samples): same numbers, bit for bit. The only difference is that samples
outside [-1, 1) are clipped before the 16-bit conversion (the package's `astype(int16)` wraps them
round to the opposite sign). The library instance is initialised once and reset between windows,
which skips the ~2-11 ms of config parsing of every `process_signal` call; the analysis itself
(~4-60 ms per window, see docs/extraction.md) is the rest. Why not one pass over the film with the
functionals in openSMILE's frame mode: for IS10 it was not faster (16.2 vs 15.1 ms per film
second, 1 s windows) and its windows see their neighbours' audio through the low-level
descriptors' context (smoothing, deltas, pitch tracking): 83% of IS10's values differed by over
0.1% from `process_signal` on the same second (median relative difference 6%), so its rows would
not be the features of that window.

Rows that need later audio (centred windows, clips) are returned as soon as the audio is there;
the extractor keeps only the samples of the windows not yet analysed (a few seconds for
`level='second'`, one clip for `level='clip'`: the whole film's audio when `clip_seconds=0`,
~230 MB per 2 hours as 16-bit samples).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import tempfile

import numpy as np

from emojax import errors
from emojax import fileio
from emojax.features import registry

SAMPLE_RATE = 16000
OPENSMILE_VERSION = "2.6.0"
INSTALL_HINT = f"pip install opensmile=={OPENSMILE_VERSION}  (or: pip install 'emojax[opensmile]')"
LEVELS = ("second", "clip")
_SOURCE = "extsource"  # opensmile.config.EXTERNAL_SOURCE_COMPONENT
_SINK = "extsink"  # opensmile.config.EXTERNAL_OUTPUT_COMPONENT


def _require():
  try:
    import opensmile  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"the opensmile_functionals extractor needs the `opensmile` package "
                      f"(optional extra emojax[opensmile]); install it with: {INSTALL_HINT}"
                      ) from e
  return opensmile


EMOBASE2010 = "emobase2010"

# openSMILE 2.x's emobase2010.conf (MediaEval 2018's official audio features) differs from the
# package's IS10_paraling_compat.conf only in options the latter sets explicitly: derived by
# removing these {section: options} (back to openSMILE's defaults) and setting the functionals'
# position normalisation. Checked bit for bit against emobase2010.conf (adapted to the package's
# external source and sink) on the fixture film and on synthetic signals (docs/features.md).
_EMOBASE2010_DROP = {
    "fr40": ("frameMode", "noPostEOIprocessing"),
    "fftmagphase40": ("magnitude", "phase"),
    "fftmagphase": ("magnitude", "phase"),
    "scale": ("specSmooth", "auditoryWeighting", "specEnhance", "minF", "maxF", "interpMethod"),
    "pitchShs": ("greedyPeakAlgo", "compressionFactor", "nHarmonics", "voicingCutoff",
                 "maxPitch", "minPitch"),
    "pitchJitter": ("inputMaxDelaySec", "usePeakToPeakPeriodLength", "shimmerUseRmsAmplitude",
                    "minCC", "minNumPeriods", "useBrokenJitterThresh"),
    "mspec": ("specScale", "bwMethod"),
    "mspec2": ("specScale", "bwMethod"),
    "mfcc": ("copyInputName",),
    "lld2": ("smaWin", "noZeroSma"),
    "functOnsets": ("frameSize", "frameStep", "Onset.norm"),
    "functL1": ("Regression.oldBuggyQerr", "Regression.normInputs", "Regression.normRegCoeff"),
    "functL1nz": ("frameMode", "Regression.oldBuggyQerr", "Regression.normInputs",
                  "Regression.normRegCoeff"),
}
_EMOBASE2010_SET = {"functL1": {"Extremes.norm": "segment", "Times.norm": "turn"},
                    "functL1nz": {"Extremes.norm": "segment"}}


def emobase2010_config(is10_text: str) -> str:
  """emobase2010's config text from the text of the package's IS10_paraling_compat.conf."""
  out, section = [], None
  seen = {s: set() for s in _EMOBASE2010_SET}
  for line in is10_text.split("\n"):
    header = re.match(r"\s*\[([^:\]]+):", line)
    if header:
      section = header.group(1)
    stripped = line.strip()
    key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
    if key and not stripped.startswith((";", "//")):
      if key in _EMOBASE2010_DROP.get(section, ()):
        continue
      if key in _EMOBASE2010_SET.get(section, {}):
        line = f"{key} = {_EMOBASE2010_SET[section][key]}"
        seen[section].add(key)
    out.append(line)
  missing = {s: sorted(set(keys) - seen[s]) for s, keys in _EMOBASE2010_SET.items()
             if set(keys) - seen[s]}
  if missing:
    raise RuntimeError(f"opensmile_functionals: the package's IS10 config lacks {missing}; "
                       f"emobase2010 is derived from opensmile=={OPENSMILE_VERSION}'s")
  return "\n".join(out)


def feature_sets() -> list[str]:
  """The feature set names: `opensmile.FeatureSet`'s and 'emobase2010'."""
  return list(_require().FeatureSet.__members__) + [EMOBASE2010]


@functools.lru_cache(maxsize=None)
def _smile(feature_set: str):
  opensmile = _require()
  if feature_set == EMOBASE2010:
    is10 = opensmile.Smile(opensmile.FeatureSet.IS10, opensmile.FeatureLevel.Functionals)
    with open(is10.config_path) as f:
      text = emobase2010_config(f.read())
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), "emojax_opensmile", f"emobase2010-{digest}.conf")
    if not os.path.exists(path):
      fileio.atomic_write_text(path, text)
    return opensmile.Smile(path, "func")
  if feature_set not in opensmile.FeatureSet.__members__:
    raise errors.ConfigError(
        f"opensmile_functionals: unknown feature_set {feature_set!r}; known: {feature_sets()}")
  return opensmile.Smile(opensmile.FeatureSet[feature_set], opensmile.FeatureLevel.Functionals)


def feature_names(feature_set: str) -> tuple[str, ...]:
  """openSMILE's attribute names of one feature set's functionals, in row order."""
  return tuple(_smile(feature_set).feature_names)


def to_int16(x: np.ndarray) -> np.ndarray:
  """Float samples -> 16-bit as the package converts them (x * 32768, truncated), clipped first."""
  x = np.clip(np.asarray(x, np.float32), -1.0, 32767.0 / 32768.0)
  return (x * np.float32(32768)).astype(np.int16)


class Analyser:
  """One initialised openSMILE instance of a feature set's functionals, reused window after window.

  `__call__(samples_int16)` gives the (num_features,) float32 functionals of one window, equal to
  `Smile(feature_set, 'Functionals').process_signal(samples / 32768, 16000)`.
  """

  def __init__(self, feature_set: str):
    from opensmile.core import lib  # pylint: disable=g-import-not-at-top
    smile = _smile(feature_set)
    self.feature_set = feature_set
    self.num_features = len(smile.feature_names)
    # The options Smile.process_signal builds (opensmile 2.6.0, Smile._extract).
    options = smile._options()  # pylint: disable=protected-access
    options["source"] = os.path.join(smile.default_config_root,
                                     "shared/standard_external_wave_input.conf.inc")
    options["sampleRate"] = SAMPLE_RATE
    options["nBits"] = 16
    self._lib = lib.OpenSMILE()
    self._lib.initialize(config_file=smile.config_path, options=options, loglevel=smile.loglevel,
                         log_file=smile.logfile, debug=False)

  def __call__(self, samples_int16: np.ndarray) -> np.ndarray:
    out: list[np.ndarray] = []
    self._lib.external_sink_set_callback_ex(_SINK, lambda data, meta: out.append(data.copy()))
    data = np.ascontiguousarray(samples_int16, np.int16)
    if not self._lib.external_audio_source_write_data(_SOURCE, data.tobytes()):
      raise RuntimeError(f"openSMILE refused {data.size} samples of audio")
    self._lib.external_audio_source_set_eoi(_SOURCE)
    self._lib.run()
    self._lib.reset()
    if not out:  # too short for the set's frames: the package fills NaN too
      return np.full(self.num_features, np.nan, np.float32)
    if len(out) != 1 or out[0].size != self.num_features:
      raise RuntimeError(f"openSMILE {self.feature_set}: expected one row of "
                         f"{self.num_features} functionals, got {[o.size for o in out]}")
    return out[0].astype(np.float32).reshape(-1)

  def __del__(self):
    lib_obj = getattr(self, "_lib", None)
    if lib_obj is not None:
      lib_obj.free()


def second_window(s: int, num_seconds: int, window_s: float) -> tuple[int, int]:
  """[start, end) sample indices of second s's centred window, cut to the film."""
  start = round((s + 0.5 - window_s / 2) * SAMPLE_RATE)
  end = round((s + 0.5 + window_s / 2) * SAMPLE_RATE)
  return max(0, start), min(num_seconds * SAMPLE_RATE, end)


@registry.register
class OpenSmileFunctionals(registry.Extractor):
  """Functionals of an openSMILE feature set per second (centred window) or per clip."""

  name = "opensmile_functionals"
  version = 1
  modality = "audio"
  per = "second"
  defaults = {"feature_set": "eGeMAPSv02", "level": "second", "window_s": 1.0,
              "clip_seconds": 0}

  def __init__(self, **params):
    super().__init__(**params)
    p = self.params
    if p["level"] not in LEVELS:
      raise errors.ConfigError(f"opensmile_functionals: level must be one of {LEVELS}, got "
                               f"{p['level']!r}")
    if not isinstance(p["window_s"], (int, float)) or not p["window_s"] > 0:
      raise errors.ConfigError(f"opensmile_functionals: window_s must be a number of seconds > 0, "
                               f"got {p['window_s']!r}")
    if not isinstance(p["clip_seconds"], int) or p["clip_seconds"] < 0:
      raise errors.ConfigError(f"opensmile_functionals: clip_seconds must be an integer >= 0 "
                               f"(0 = the whole film), got {p['clip_seconds']!r}")
    p["window_s"] = float(p["window_s"])
    self.per = p["level"]  # 'second' or 'clip': the manifest and extract_film read it here
    self.num_features = len(feature_names(p["feature_set"]))
    self.analyser: Analyser | None = None  # created in begin(): manifests need no instance

  def row_shape(self) -> tuple[int, ...]:
    return (self.num_features,)

  def num_rows(self, num_seconds: int) -> int:
    if self.per == "second":
      return num_seconds
    length = self.params["clip_seconds"]
    return min(num_seconds, 1) if length == 0 else math.ceil(num_seconds / length)

  def windows(self, num_seconds: int) -> list[tuple[int, int]]:
    """[start, end) sample indices of every row's window, in row order."""
    if self.per == "second":
      return [second_window(s, num_seconds, self.params["window_s"]) for s in range(num_seconds)]
    length = self.params["clip_seconds"] or max(num_seconds, 1)
    return [(c * length * SAMPLE_RATE, min((c + 1) * length, num_seconds) * SAMPLE_RATE)
            for c in range(self.num_rows(num_seconds))]

  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    if self.analyser is None:
      self.analyser = Analyser(self.params["feature_set"])
    self._windows = self.windows(num_seconds)
    self._next = 0  # the next row to compute
    self._first = 0  # the second of self._seconds[0]
    self._seconds: list[np.ndarray] = []  # int16 samples of the seconds still needed

  def _ready_rows(self, seen: int) -> list[np.ndarray]:
    """Rows whose windows end at or before sample `seen`; drops seconds no later row needs."""
    rows = []
    while self._next < len(self._windows) and self._windows[self._next][1] <= seen:
      start, end = self._windows[self._next]
      first, last = start // SAMPLE_RATE, -(-end // SAMPLE_RATE)
      block = np.concatenate(self._seconds[first - self._first:last - self._first])
      offset = first * SAMPLE_RATE
      rows.append(self.analyser(block[start - offset:end - offset]))
      self._next += 1
    keep_from = self._windows[self._next][0] if self._next < len(self._windows) else seen
    drop = keep_from // SAMPLE_RATE - self._first
    if drop > 0:
      del self._seconds[:drop]
      self._first += drop
    return rows

  def audio_rows(self, s: int, x_S: np.ndarray) -> list[np.ndarray]:
    self._seconds.append(to_int16(x_S))
    return self._ready_rows((s + 1) * SAMPLE_RATE)

  def finish(self) -> list[np.ndarray]:
    return self._ready_rows(self.num_seconds * SAMPLE_RATE)
