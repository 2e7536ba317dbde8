"""Extractors registered by name, and the interface every extractor implements.

An extractor is a class registered with `@register`; `extract_film` creates one instance per film
with the user's params and feeds it one decode pass (see docs/features.md):

- audio extractors (`modality = 'audio'`) get `audio_rows(s, x_S)` for every second s, with
  x_S the second's 16 kHz mono float32 samples (S = 16000), and return the rows that are complete
  (a list; by default `[audio_second(s, x_S)]`, that second's row: most extractors implement only
  `audio_second`); an extractor whose rows need later audio (a window centred on the second, a
  clip) returns them once it has seen that audio, and the rest from `finish()`;
- video extractors (`modality = 'video'`) get `frame(f)` for every decoded frame (a
  `decode.Frame`, time-stamped from the film's origin, in presentation order), then the first
  frame at or after T (`f.second == T`: look-ahead only, its second is not part of the film);
  `end_second(s)` comes once second s is over, always after the first frame past it (also for
  seconds in which no new frame started: a still picture), and returns the rows that are complete
  (a list, usually one row; a row may be delayed, e.g. per-clip rows when a clip ends);
- all get `begin(num_seconds)` before decoding and `finish()` after it (returning the last rows).

The rows of a stream must number `num_rows(T)` (T for per-second streams) and each has
`row_shape()` / `dtype`; the manifest records name, version, per, shape, dtype and params.

Names resolve lazily: `get('face_expression')` imports `emojax.features.face_expression` when
the name is not yet registered, so a new extractor is one new module, nothing else to edit.
"""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any, ClassVar

import numpy as np

from emojax.errors import ConfigError

_REGISTRY: dict[str, type[Extractor]] = {}


class Extractor:
  """Base class: declares identity and parameters; subclasses implement the hooks they need."""

  name: ClassVar[str] = ""
  version: ClassVar[int] = 1
  modality: ClassVar[str] = ""  # 'audio' or 'video'
  per: ClassVar[str] = "second"  # 'second' (T rows) or 'clip' (num_rows(T) rows)
  dtype: ClassVar[str] = "float32"  # numpy dtype name of the rows ('object' for encoded bytes)
  defaults: ClassVar[dict[str, Any]] = {}  # every parameter with its default value

  def __init__(self, **params: Any):
    unknown = sorted(set(params) - set(self.defaults))
    if unknown:
      raise ConfigError(f"extractor {self.name!r}: unknown parameter(s) {unknown}; known: "
                        f"{sorted(self.defaults)}")
    merged = copy.deepcopy(self.defaults)
    merged.update(params)
    # Params must survive a JSON round trip unchanged (they go into the manifest).
    self.params: dict[str, Any] = json.loads(json.dumps(merged))
    self.num_seconds = 0

  # -- declarations -------------------------------------------------------------------------------
  def row_shape(self) -> tuple[int, ...]:
    """Shape of one output row (one second, or one clip)."""
    raise NotImplementedError

  def num_rows(self, num_seconds: int) -> int:
    return num_seconds

  # -- hooks --------------------------------------------------------------------------------------
  def begin(self, num_seconds: int) -> None:
    self.num_seconds = num_seconds

  def audio_second(self, s: int, x_S: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def audio_rows(self, s: int, x_S: np.ndarray) -> list[np.ndarray]:
    return [self.audio_second(s, x_S)]

  def frame(self, f) -> None:
    raise NotImplementedError

  def end_second(self, s: int) -> list[np.ndarray]:
    raise NotImplementedError

  def finish(self) -> list[np.ndarray]:
    return []


def register(cls: type[Extractor]) -> type[Extractor]:
  """Class decorator: registers an extractor under `cls.name`."""
  if not cls.name or cls.modality not in ("audio", "video") or cls.per not in ("second", "clip"):
    raise TypeError(f"{cls.__name__}: an extractor needs a name, modality 'audio'|'video' and "
                    "per 'second'|'clip'")
  other = _REGISTRY.get(cls.name)
  if other is not None and other.__qualname__ != cls.__qualname__:
    raise TypeError(f"extractor name {cls.name!r} is taken by {other.__module__}")
  _REGISTRY[cls.name] = cls
  return cls


def get(name: str) -> type[Extractor]:
  """The extractor class registered as `name` (imports emojax.features.<name> on first use)."""
  if name not in _REGISTRY:
    try:
      importlib.import_module(f"emojax.features.{name}")
    except ModuleNotFoundError as e:
      if e.name != f"emojax.features.{name}":
        raise
    if name not in _REGISTRY:
      raise ConfigError(f"unknown feature extractor {name!r}; known: {names()} (an extractor "
                        "is a module emojax/features/<name>.py with an @register class)")
  return _REGISTRY[name]


BUILTIN = ("vggish_logmel", "audio_functionals", "spectrogram_image", "keyframe",
           "visual_stats", "frame_clips", "tsn_frames", "face_expression", "opensmile_functionals",
           "vggish_embedding", "i3d_rgb", "flownets", "bn_inception_pool", "resnet50_pool",
           "vgg16_places365_pool5", "vgg16_fc7", "alexnet_fc7", "inception_v3_pool",
           "inception_v3_faces")


def names() -> list[str]:
  """Registered names, after importing the built-in modules that import cleanly."""
  for name in BUILTIN:
    if name not in _REGISTRY:
      try:
        importlib.import_module(f"emojax.features.{name}")
      except ImportError:  # optional extras (face_expression needs emojax[face])
        pass
  return sorted(_REGISTRY)


def create(name: str, params: dict[str, Any] | None = None) -> Extractor:
  return get(name)(**(params or {}))

