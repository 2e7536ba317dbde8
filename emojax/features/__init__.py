"""Films -> per-second features: decoding (PyAV), extractors by name, the feature manifest.

Entry points: `extract_film(path, extractors)` (emojax.features.extract), `registry.names()`,
`manifest.compare_manifests(expected, offered)`. See docs/features.md.
"""

from emojax.features.extract import DEFAULT
from emojax.features.extract import FilmFeatures
from emojax.features.extract import extract_film
from emojax.features.manifest import compare_manifests
