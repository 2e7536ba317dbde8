"""`synthetic_films`: rendered films with a soundtrack, extracted like any film; labels = latents.

Renders `num_films` films with `synthetic_films_render.render_film` (picture brightness, warmth,
faces, motion, cuts; music tempo, loudness, mode, timbre follow latent valence/arousal curves) as
real mp4 files (H.264 + AAC) into `<download_dir>/synthetic_films/<render-hash>/`, then runs the
feature extractors over them (`film_builder`), so the whole media path runs on a fresh machine.
Labels are the latent per-second curves. Film i has seed `seed + i`; splits are by film: the last
`num_test` films are `test`, the `num_validation` before them `validation`, the rest `train`.

Builder kwargs (besides those of `film_builder.FilmBuilder`):
  num_films (12), duration_s (30), fps (12), width (320), height (240), sample_rate (22050),
  channels (2), seed (0), num_validation (2), num_test (2),
  include_bad_films (False): also write six broken files to `train` (random bytes, an mp4 cut
  before its index, an mp4 cut after its index, zero bytes, an mp4 without frames, a film
  without audio) to exercise the skip report.
Any non-default kwarg gives the dataset its own config name (`custom_<hash>`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

import numpy as np

from emojax.datasets import film_builder
from emojax.datasets import synthetic_films_render as render
from emojax.errors import ConfigError

RENDER_DEFAULTS = {"num_films": 12, "duration_s": 30, "fps": 12, "width": 320, "height": 240,
                   "sample_rate": 22050, "channels": 2, "seed": 0, "num_validation": 2,
                   "num_test": 2, "include_bad_films": False}
BAD_FILMS = ("bad_corrupt", "bad_no_index", "bad_truncated", "bad_zero_length", "bad_no_frames",
             "bad_no_audio")


def _write_bad(directory: pathlib.Path, seed: int, duration_s: int) -> dict[str, pathlib.Path]:
  paths = {name: directory / f"{name}.mp4" for name in BAD_FILMS}
  if not paths["bad_corrupt"].exists():
    render.write_corrupt_film(paths["bad_corrupt"], seed=seed, kind="garbage")
  if not paths["bad_no_index"].exists():
    render.write_corrupt_film(paths["bad_no_index"], seed=seed, kind="no_index")
  if not paths["bad_truncated"].exists():
    render.write_corrupt_film(paths["bad_truncated"], seed=seed, kind="truncated")
  if not paths["bad_zero_length"].exists():
    render.write_zero_length_film(paths["bad_zero_length"])
  if not paths["bad_no_frames"].exists():
    render.write_zero_length_film(paths["bad_no_frames"], kind="no_frames")
  if not paths["bad_no_audio"].exists():
    render.render_film_with_labels(paths["bad_no_audio"], seed=seed, duration_s=duration_s,
                                   size=(160, 120), audio=False)
  return paths


class SyntheticFilms(film_builder.FilmBuilder):
  """Procedurally rendered films whose picture and sound follow latent valence/arousal curves."""

  DESCRIPTION = __doc__

  def __init__(self, *, num_films: int = 12, duration_s: int = 30, fps: int = 12,
               width: int = 320, height: int = 240, sample_rate: int = 22050, channels: int = 2,
               seed: int = 0, num_validation: int = 2, num_test: int = 2,
               include_bad_films: bool = False, **kwargs):
    self._render = {"num_films": int(num_films), "duration_s": int(duration_s), "fps": int(fps),
                    "width": int(width), "height": int(height),
                    "sample_rate": int(sample_rate), "channels": int(channels),
                    "seed": int(seed), "num_validation": int(num_validation),
                    "num_test": int(num_test), "include_bad_films": bool(include_bad_films)}
    if num_validation < 0 or num_test < 0 or num_films - num_validation - num_test < 1:
      raise ConfigError(f"synthetic_films: num_films={num_films} leaves no training film with "
                        f"num_validation={num_validation}, num_test={num_test}")
    super().__init__(**kwargs)

  def _content_params(self) -> dict[str, Any]:
    return {**super()._content_params(), "render": self._render}

  def _default_content_params(self) -> dict[str, Any]:
    return {**super()._default_content_params(), "render": RENDER_DEFAULTS}

  def _split_of(self, i: int) -> str:
    n, n_val, n_test = (self._render[k] for k in ("num_films", "num_validation", "num_test"))
    if i >= n - n_test:
      return "test"
    if i >= n - n_test - n_val:
      return "validation"
    return "train"

  def _film_records(self, dl_manager):
    params = self._render
    picture = {k: v for k, v in params.items() if k not in ("num_validation", "num_test")}
    digest = hashlib.sha256(json.dumps(picture, sort_keys=True).encode()).hexdigest()[:12]
    directory = pathlib.Path(os.fspath(dl_manager.download_dir)) / "synthetic_films" / digest
    directory.mkdir(parents=True, exist_ok=True)
    paths = [str(directory / f"film_{i:04d}.mp4") for i in range(params["num_films"])]
    kwargs = {"duration_s": params["duration_s"], "fps": params["fps"],
              "size": (params["width"], params["height"]), "sample_rate": params["sample_rate"],
              "channels": params["channels"]}
    seeds = [params["seed"] + i for i in range(len(paths))]
    workers = self._num_workers if self._num_workers is not None else (os.cpu_count() or 1)
    workers = min(workers, len(paths))
    if workers <= 1:
      for p, seed in zip(paths, seeds):
        render.render_film_with_labels(p, seed=seed, **kwargs)
    else:  # spawned workers import only the renderer (numpy, PyAV, PIL)
      with film_builder.worker_pool(workers) as pool:
        futures = [pool.submit(render.render_film_with_labels, p, seed=seed, **kwargs)
                   for p, seed in zip(paths, seeds)]
        for future in futures:
          future.result()
    records = []
    for i, p in enumerate(paths):
      labels = render.load_labels(p)
      records.append(film_builder.FilmRecord(film_id=pathlib.Path(p).stem, path=p,
                                             split=self._split_of(i), labels=labels))
    if params["include_bad_films"]:
      bad = _write_bad(directory, params["seed"] + 10_000, min(params["duration_s"], 6))
      for name, p in bad.items():
        if pathlib.Path(f"{p}.labels.npz").exists():
          labels = render.load_labels(p)
        else:  # unreadable files: labels of the length the header would claim
          labels = {k: np.zeros(params["duration_s"], np.float32) for k in film_builder.LABELS}
        records.append(film_builder.FilmRecord(film_id=name, path=str(p), split="train",
                                               labels=labels))
    return records, []
