"""Films -> per-second features: decoding (PyAV), extractors by name, the feature manifest.

Entry points: `extract_film(path, extractors)` (emojax.features.extract), `registry.names()`,
`manifest.compare_manifests(expected, offered)`. See docs/features.md.

Importing the package imports nothing else: the entry points below load their module (and PyAV,
through emojax.features.decode) on first use, so a run that reads extracted features never
imports PyAV.
"""

import importlib

_LAZY = {"DEFAULT": "extract", "FilmFeatures": "extract", "extract_film": "extract",
         "compare_manifests": "manifest"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(f"emojax.features.{_LAZY[name]}"), name)
  raise AttributeError(f"module 'emojax.features' has no attribute {name!r}")
