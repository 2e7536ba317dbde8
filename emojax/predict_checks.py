"""Why a trained or imported model cannot predict a raw film (`--mode=predict`), said truly.

`predict` computes a model's inputs from a video with the extractors its feature manifest names,
and writes a per-second curve of each film. A model it cannot serve is refused before any video is
decoded, with the first reason that applies:
  - an imported model (`<workdir>/imported.json`, `meta["imported_from"]`): its input streams come
    from networks emojax has no extractor for (e.g. the released AttendAffectNet's resnet50 /
    flownet / i3d / emobase features);
  - a per-clip model (`task.unit == "clip"`: one value per clip of a per-clip dataset, e.g. the
    video convnets, fusion LSTM, per-clip AttendAffectNet): predict writes per-second curves;
  - streams without a registered extractor;
  - precomputed features without a feature manifest (e.g. the synthetic_benchmark).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

EVALUATE = "evaluate it instead with `python main.py --mode=evaluate --workdir=...` on a dataset " \
           "holding those streams"


def _extractor_names() -> list[str]:
  from emojax.features import registry  # pylint: disable=g-import-not-at-top
  return registry.names()


def refusal(ckpt: str | pathlib.Path, meta: Mapping[str, Any]) -> str | None:
  """The one-line reason `predict` cannot compute this model's inputs from a film, or None."""
  method = meta.get("method", "?")
  streams = list(meta.get("modalities") or [])
  manifest = meta.get("feature_manifest")
  if meta.get("imported_from"):
    known = _extractor_names()
    missing = [s for s in streams if s not in known] or streams
    return (f"{ckpt} is an imported {method} model (from {meta['imported_from']}) whose input "
            f"streams {missing} are features of networks emojax has no extractor for, so predict "
            f"cannot compute them from a video; {EVALUATE}")
  unit = (meta.get("task") or {}).get("unit", "second")
  if unit == "clip":
    return (f"{ckpt} is a per-clip model (method {method}: one value per clip of a per-clip "
            "dataset) and predict writes per-second curves of films, so it cannot serve it; "
            f"{EVALUATE} (the test split's clips)")
  if not manifest:
    known = _extractor_names()
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
