"""The feature manifest: which extractors (versions, params, shapes) produced a set of features.

A manifest is a plain JSON-serialisable dict, stored with every dataset (DatasetInfo metadata) and
every checkpoint trained on it:

  {"format": 1,
   "seconds": "floor(video duration)",
   "fast": false,
   "extractors": {"vggish_logmel": {"version": 1, "modality": "audio", "per": "second",
                                    "shape": [96, 64], "dtype": "float32", "params": {...}}, ...}}

`compare_manifests(expected, offered)` refuses offered features that differ from what a model was
trained on, naming every difference. Extra extractors in `offered` are fine (not used).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from emojax.errors import ManifestMismatchError

FORMAT = 1
SECONDS_RULE = "floor(video duration)"

# Why an extractor's version changed: {name: {new version: what differs from the previous one}}.
# A manifest that differs in version gets this note, so the user knows the old features are stale.
VERSION_CHANGES: dict[str, dict[int, str]] = {
    name: {2: "audio is down-mixed to the plain channel mean (VGGish's) instead of libswresample's "
              "unnormalised matrix ((L + R) / sqrt(2) for stereo, about 5.3x the mean for 5.1); "
              "damaged audio packets become silence"}
    for name in ("vggish_logmel", "audio_functionals", "spectrogram_image")}


def entry(extractor) -> dict[str, Any]:
  """The manifest entry of one extractor instance."""
  return {"version": int(extractor.version), "modality": extractor.modality,
          "per": extractor.per, "shape": [int(d) for d in extractor.row_shape()],
          "dtype": str(extractor.dtype), "params": json.loads(json.dumps(extractor.params))}


def build(extractors: Iterable, *, fast: bool = False) -> dict[str, Any]:
  """The manifest of a set of extractor instances."""
  return {"format": FORMAT, "seconds": SECONDS_RULE, "fast": bool(fast),
          "extractors": {e.name: entry(e) for e in extractors}}


def for_spec(spec: Iterable[str] | Mapping[str, dict], *, fast: bool = False) -> dict[str, Any]:
  """The manifest `extract_film(path, spec, fast=fast)` would produce, without any media."""
  from emojax.features import registry  # pylint: disable=g-import-not-at-top
  return build((registry.create(n, p) for n, p in normalize_spec(spec).items()), fast=fast)


def normalize_spec(spec: Iterable[str] | Mapping[str, dict]) -> dict[str, dict]:
  """Extractor spec -> {name: params}; a sequence of names means default params."""
  if isinstance(spec, str):
    spec = [spec]
  if isinstance(spec, Mapping):
    return {str(k): dict(v or {}) for k, v in spec.items()}
  return {str(n): {} for n in spec}


def extractor_spec(manifest: Mapping[str, Any]) -> dict[str, dict]:
  """The {name: params} spec that reproduces a manifest's features (for predict)."""
  return {n: dict(e["params"]) for n, e in manifest["extractors"].items()}


def to_json(manifest: Mapping[str, Any]) -> str:
  return json.dumps(manifest, sort_keys=True, indent=2)


def from_json(text: str) -> dict[str, Any]:
  return json.loads(text)


def _fmt(v: Any) -> str:
  return json.dumps(v, sort_keys=True)


def differences(expected: Mapping[str, Any], offered: Mapping[str, Any]) -> list[str]:
  """Human-readable differences of `offered` from `expected` (empty when compatible)."""
  diffs = []
  exp, off = expected.get("extractors", {}), offered.get("extractors", {})
  for name in sorted(exp):
    if name not in off:
      diffs.append(f"extractor {name!r} is missing (offered: {sorted(off)})")
      continue
    e, o = exp[name], off[name]
    for key in ("version", "modality", "per", "shape", "dtype"):
      if e.get(key) != o.get(key):
        diffs.append(f"extractor {name!r}: {key} differs: expected {_fmt(e.get(key))}, "
                     f"offered {_fmt(o.get(key))}" + (_version_note(name, e.get(key), o.get(key))
                                                      if key == "version" else ""))
    ep, op = e.get("params", {}), o.get("params", {})
    for key in sorted(set(ep) | set(op)):
      if key not in op:
        diffs.append(f"extractor {name!r}: param {key!r} missing from offered "
                     f"(expected {_fmt(ep[key])})")
      elif key not in ep:
        diffs.append(f"extractor {name!r}: param {key!r} not expected (offered {_fmt(op[key])})")
      elif json.loads(_fmt(ep[key])) != json.loads(_fmt(op[key])):
        diffs.append(f"extractor {name!r}: param {key!r} differs: expected {_fmt(ep[key])}, "
                     f"offered {_fmt(op[key])}")
  if expected.get("seconds", SECONDS_RULE) != offered.get("seconds", SECONDS_RULE):
    diffs.append(f"seconds rule differs: expected {expected.get('seconds')!r}, offered "
                 f"{offered.get('seconds')!r}")
  return diffs


def _version_note(name: str, expected: Any, offered: Any) -> str:
  """' (v2: what changed)' between two versions of an extractor ('' when unknown)."""
  try:
    lo, hi = sorted((int(expected), int(offered)))
  except (TypeError, ValueError):
    return ""
  notes = [f"v{v}: {VERSION_CHANGES[name][v]}" for v in range(lo + 1, hi + 1)
           if v in VERSION_CHANGES.get(name, {})]
  return f" ({'; '.join(notes)})" if notes else ""


REBUILD_HINT = ("features of an older extractor version cannot be mixed with new ones: rebuild the "
                "dataset (`--mode=build` with a new --data_dir, or after deleting the dataset's "
                "version folder; its `extracted` cache is keyed by version and can stay) and "
                "retrain")


def check_current(stored: Mapping[str, Any], *, what: str) -> None:
  """Refuses features (a dataset's, a checkpoint's) made by an extractor version this emojax no
  longer produces, naming what changed and what to rebuild.

  Extractors unknown to this installation (e.g. of an extra not installed) are not checked here.
  """
  from emojax.features import registry  # pylint: disable=g-import-not-at-top
  stale = []
  for name, e in sorted(stored.get("extractors", {}).items()):
    try:
      current = int(registry.get(name).version)
    except Exception:  # pylint: disable=broad-except
      continue
    if e.get("version") != current:
      stale.append(f"extractor {name!r}: version {_fmt(e.get('version'))}, this emojax makes "
                   f"version {current}" + _version_note(name, e.get("version"), current))
  if stale:
    raise ManifestMismatchError(
        f"{what} holds features of another emojax version:\n  - " + "\n  - ".join(stale)
        + f"\n{REBUILD_HINT[0].upper()}{REBUILD_HINT[1:]}.")


def compare_manifests(expected: Mapping[str, Any], offered: Mapping[str, Any], *,
                      what: str = "features") -> None:
  """Raises ManifestMismatchError naming every difference; `fast` decoding is not compared."""
  diffs = differences(expected, offered)
  if diffs:
    versions = any(": version differs:" in d for d in diffs)
    raise ManifestMismatchError(
        f"the offered {what} do not match the feature manifest the model was trained on:\n  - "
        + "\n  - ".join(diffs)
        + ("\nRe-extract the features with the expected extractors and params "
           "(manifest.extractor_spec(expected) gives them)"
           + (f"; {REBUILD_HINT}." if versions else ".")))
