"""Which extractors compute a trained or imported model's inputs from a raw film, or why none do.

`predict` computes a model's inputs from a video with extractors and writes its predictions:
per-second models (unit "second") a curve per second, per-clip models (unit "clip") one row per
window of the film. A model it cannot serve is refused before any video is decoded, in one line
naming the stream without an extractor and what to do:
  - per-second models need the feature manifest of the dataset they were trained on (datasets
    built from films record one: `films`, `synthetic_films`, the benchmark builders);
  - per-clip models: each input stream is made by the extractor the dataset's manifest names for it,
    else (datasets without a manifest, e.g. `synthetic_clips`) by the registered extractor of the
    stream's name, its parameters read from the stored shape (`SHAPE_PARAMS`), its defaults
    otherwise; an imported model records its streams' extractors at import
    (`meta["stream_extractors"]`, e.g. `python -m emojax.importers.attendaffectnet
    --backbones=DIR`).

Windows of a per-clip model (`ClipRecipe`): W seconds, hop W (consecutive windows from the film's
start; the last one holds the remaining seconds, shorter when T is not a multiple of W), where W is
the training clip's length: the first axis of a stream stored as per-second rows (e.g. seed 002's
key frames, one per second of a clip), else the clip length a per-clip extractor was given
(`clip_seconds` in the manifest), else `config.data.clip_seconds`. A stream is one of:
  'clip'  a per-clip extractor run on each window (its `clip_seconds` set to W);
  'stack' the window's per-second rows, (W, *row) (a shorter last window is zero-padded and
          masked in x_mask, as the harness pads ragged clips);
  'mean'  the mean of the window's per-second rows (a clip-level vector of a per-second extractor).
"""

from __future__ import annotations

import copy
import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

EVALUATE = "evaluate it instead with `python main.py --mode=evaluate --workdir=...` on a dataset " \
           "holding those streams"
# Frame extractors: rows of encoded frames, stored by the per-clip datasets decoded
# ((*row_shape, size, size, 3) uint8).
FRAME_EXTRACTORS = ("frame_clips", "tsn_frames")
# Parameters of an extractor read from a stream's stored shape (datasets without a manifest).
SHAPE_PARAMS = {
    "keyframe": lambda shp: {"size": int(shp[-2])},
    "spectrogram_image": lambda shp: {"size": int(shp[-1])},
    "frame_clips": lambda shp: {"num_frames": int(shp[0]), "size": int(shp[1])},
    "tsn_frames": lambda shp: {"num_segments": int(shp[0]), "candidates": int(shp[1]),
                               "size": int(shp[2])},
}


@dataclasses.dataclass
class ClipRecipe:
  """How a per-clip model's inputs are made from a film (see the module docstring)."""
  spec: dict[str, dict[str, Any]]          # extractor -> params (extract_film's spec)
  expected: dict[str, Any]                 # the manifest the extraction must match
  streams: dict[str, tuple[str, str]]      # model stream -> (extractor, 'clip' | 'stack' | 'mean')
  shapes: dict[str, tuple[int, ...]]       # model stream -> one example's shape
  window: int                              # seconds per window (= the hop)
  window_from: str                         # where W comes from (printed)

  def describe(self) -> str:
    return (f"windows of {self.window} s, hop {self.window} s ({self.window_from}); streams: "
            + ", ".join(f"{s} <- {e} ({way})" for s, (e, way) in self.streams.items()))


def _extractor_names() -> list[str]:
  from emojax.features import registry  # pylint: disable=g-import-not-at-top
  return registry.names()


def _unit(meta: Mapping[str, Any]) -> str:
  return (meta.get("task") or {}).get("unit", "second")


def refusal(ckpt: str | pathlib.Path, meta: Mapping[str, Any]) -> str | None:
  """The one-line reason `predict` cannot compute this model's inputs from a film, or None."""
  method = meta.get("method", "?")
  streams = list(meta.get("modalities") or [])
  manifest = meta.get("feature_manifest")
  known = _extractor_names()
  if _unit(meta) == "clip":
    mapped = dict(meta.get("stream_extractors") or {})
    in_manifest = set((manifest or {}).get("extractors", {}))
    missing = [s for s in streams if mapped.get(s, s) not in known
               and mapped.get(s, s) not in in_manifest]
    if not missing:
      return None
    if meta.get("imported_from"):
      return (f"{ckpt} is an imported {method} model (from {meta['imported_from']}) whose input "
              f"streams {missing} name no emojax extractor; re-import it with the extractors of "
              "its features (AttendAffectNet: `python -m emojax.importers.attendaffectnet ... "
              "--backbones=DIR`, docs/backbones.md), or " + EVALUATE)
    return (f"{ckpt} is a per-clip {method} model whose streams {missing} have no extractor "
            f"(extractors: {known}), so predict cannot compute them from a video; train on a "
            "dataset whose streams are extractor outputs (a feature manifest, or streams named "
            f"by an extractor), or {EVALUATE}")
  if meta.get("imported_from") and not manifest:
    missing = [s for s in streams if s not in known] or streams
    return (f"{ckpt} is an imported {method} model (from {meta['imported_from']}) whose input "
            f"streams {missing} name no emojax extractor, so predict cannot compute them from "
            f"a video; {EVALUATE}")
  if not manifest:
    missing = [s for s in streams if s not in known]
    if missing and len(missing) == len(streams):
      return (f"{ckpt} was trained on streams {missing} that no emojax extractor computes "
              f"(extractors: {known}) and without a feature manifest, so predict cannot compute "
              f"them from a video; {EVALUATE}, or train on a dataset built from films (e.g. "
              "configs/two_timescale_films.py on synthetic_films or your films)")
    return (f"{ckpt} was trained on precomputed features without a feature manifest (e.g. the "
            "synthetic_benchmark), so emojax cannot compute its inputs from a video; train on a "
            "dataset built from films (e.g. configs/two_timescale_films.py on synthetic_films or "
            "your films)")
  return None


def _shape(v) -> tuple[int, ...]:
  return tuple(int(d) for d in (v if isinstance(v, (list, tuple)) else (v,)))


def clip_recipe(ckpt: str | pathlib.Path, meta: Mapping[str, Any],
                clip_seconds: int) -> ClipRecipe:
  """The extractors, windows and stream layouts that make a per-clip model's inputs from a film.

  `clip_seconds`: the run's config.data.clip_seconds (the window when nothing else gives it).
  Raises ManifestMismatchError (one line) when a stream cannot be made.
  """
  from emojax import errors  # pylint: disable=g-import-not-at-top
  from emojax.features import registry  # pylint: disable=g-import-not-at-top
  manifest = copy.deepcopy(meta.get("feature_manifest") or {"extractors": {}})
  entries = manifest.get("extractors", {})
  mapped = dict(meta.get("stream_extractors") or {})
  dims = meta.get("feature_dims") or {}
  spec: dict[str, dict] = {}
  instances, shapes, names = {}, {}, {}
  for s in meta.get("modalities") or []:
    name = mapped.get(s, s)
    shp = _shape(dims[s])
    params = dict(entries[name]["params"]) if name in entries else (
        SHAPE_PARAMS[name](shp) if name in SHAPE_PARAMS else {})
    if name in spec and spec[name] != params:
      others = [k for k, v in names.items() if v == name]
      raise errors.ManifestMismatchError(f"{ckpt}: streams {others} and {s!r} need extractor "
                                         f"{name!r} with different params")
    try:
      instances[s] = registry.create(name, params)
    except errors.ConfigError as e:
      raise errors.ManifestMismatchError(f"{ckpt}: stream {s!r} (extractor {name!r}): {e}"
                                         ) from None
    spec[name], shapes[s], names[s] = params, shp, name

  ways, stacked, clip_lengths = {}, {}, {}
  for s, ex in instances.items():
    row, shp = tuple(ex.row_shape()), shapes[s]
    if ex.per == "clip":
      if "clip_seconds" not in ex.params:
        raise errors.ManifestMismatchError(
            f"{ckpt}: stream {s!r}: extractor {names[s]!r} is per clip without a clip_seconds "
            "parameter, so predict cannot cut the film into windows for it")
      size = int(ex.params.get("size", 0))
      want = row + (size, size, 3) if names[s] in FRAME_EXTRACTORS else row
      ways[s] = "clip"
      if int(ex.params["clip_seconds"]) > 0:
        clip_lengths[s] = int(ex.params["clip_seconds"])
    elif shp == row:
      ways[s], want = "mean", row
    elif shp[1:] == row and len(shp) == len(row) + 1:
      ways[s], want = "stack", shp
      stacked[s] = int(shp[0])
    else:
      want = row
    if want != shp:
      raise errors.ManifestMismatchError(
          f"{ckpt}: stream {s!r} holds examples of shape {shp}, but extractor {names[s]!r} "
          f"gives {want} per {ex.per}; predict cannot make that stream from a video; "
          f"{EVALUATE}")
  lengths = {**stacked, **clip_lengths}
  if len(set(lengths.values())) > 1:
    raise errors.ManifestMismatchError(f"{ckpt}: the streams hold clips of different lengths "
                                       f"{lengths} (seconds); predict needs one window length")
  if stacked:
    s = next(iter(stacked))
    window, window_from = stacked[s], f"the training clips' length: stream {s!r} holds " \
        f"{stacked[s]} per-second rows"
  elif clip_lengths:
    s = next(iter(clip_lengths))
    window, window_from = clip_lengths[s], f"the training clips' length: extractor " \
        f"{names[s]!r} made clips of {clip_lengths[s]} s"
  else:
    window, window_from = int(clip_seconds), "the run's config.data.clip_seconds"
  if window < 1:
    raise errors.ManifestMismatchError(f"{ckpt}: window of {window} s; set "
                                       "config.data.clip_seconds to the training clips' length")
  for s, way in ways.items():
    if way == "clip":
      spec[names[s]]["clip_seconds"] = window
  from emojax.features import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  built = manifest_lib.for_spec(spec)
  expected = {**{k: v for k, v in manifest.items() if k != "extractors"}, "extractors": {}}
  expected.setdefault("seconds", built["seconds"])
  for name, params in spec.items():
    entry = copy.deepcopy(entries[name]) if name in entries else built["extractors"][name]
    if "clip_seconds" in params:
      entry["params"]["clip_seconds"] = params["clip_seconds"]
    expected["extractors"][name] = entry
  return ClipRecipe(spec=spec, expected=expected,
                    streams={s: (names[s], ways[s]) for s in instances}, shapes=shapes,
                    window=window, window_from=window_from)
