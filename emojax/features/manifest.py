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
                     f"offered {_fmt(o.get(key))}")
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


def compare_manifests(expected: Mapping[str, Any], offered: Mapping[str, Any], *,
                      what: str = "features") -> None:
  """Raises ManifestMismatchError naming every difference; `fast` decoding is not compared."""
  diffs = differences(expected, offered)
  if diffs:
    raise ManifestMismatchError(
        f"the offered {what} do not match the feature manifest the model was trained on:\n  - "
        + "\n  - ".join(diffs)
        + "\nRe-extract the features with the expected extractors and params "
          "(manifest.extractor_spec(expected) gives them).")
