"""Predict mode: a new film -> features (as the checkpoint's manifest says) -> its emotional curve.

  python main.py --mode=predict --workdir=runs/films --video=film.mp4 [--output=DIR]

For every video: the extractors named by the trained run's feature manifest run over the film
(with a progress bar), the features are standardised with the training statistics, the model and the
method's post-processing (EMA, inter-clip context...) give per-second predictions, written as
`<out>/<film>.csv` (`second,valence,arousal` for the trained targets) and `<out>/<film>.png`.
A video that cannot be read is reported and skipped; the others are still predicted.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from emojax import errors, evaluate, inference, input_pipeline, plots, reporting
from emojax.features import extract, manifest

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv",
                  ".flv")


def find_videos(video: str | pathlib.Path) -> list[pathlib.Path]:
  path = pathlib.Path(video).expanduser()
  if path.is_dir():
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not found:
      raise errors.DataError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {path}")
    stems = {}
    for p in found:
      if p.stem in stems:
        raise errors.DataError(
            f"{stems[p.stem]} and {p} would both be written as {p.stem}.csv; rename one of them "
            "or predict the folders separately")
      stems[p.stem] = p
    return found
  if not path.exists():
    raise errors.DataError(f"video {path} does not exist")
  return [path]


def film_store(name: str, streams: dict[str, np.ndarray], modalities) -> input_pipeline.FilmStore:
  example = {"film_id": name}
  for m in modalities:
    if m not in streams:
      raise errors.ManifestMismatchError(f"the extracted features have no stream {m!r}")
    example[m] = streams[m].reshape(len(streams[m]), -1)
  return input_pipeline.FilmStore.from_examples(name, [example], modalities, ())


def predict(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, video: str,
            output: str | None = None, checkpoint_path: str | None = None) -> dict[str, pathlib.Path]:
  """Predicts every video; returns {film: csv path}. Raises if no video could be predicted."""
  workdir = pathlib.Path(workdir)
  out_dir = pathlib.Path(output) if output else workdir / "predict"
  ckpt = pathlib.Path(checkpoint_path) if checkpoint_path else workdir / "final_model"
  method, model, meta, stats = evaluate.load_trained_model(config, ckpt)
  expected = meta.get("feature_manifest")
  if not expected:
    raise errors.ManifestMismatchError(
        f"{ckpt} was trained on precomputed features without a feature manifest (e.g. the "
        "synthetic_benchmark), so emojax cannot compute its inputs from a video; train on a dataset "
        "built from films (e.g. configs/two_timescale_films.py on synthetic_films or your films)")
  spec = manifest.extractor_spec(expected)
  mesh = input_pipeline.make_mesh()
  videos = find_videos(video)
  written, failed = {}, {}
  for i, path in enumerate(videos):
    print(f"[{i + 1}/{len(videos)}] {path}", flush=True)
    try:
      ff = extract.extract_film(path, spec, fast=bool(expected.get("fast", False)), progress=True)
    except errors.DataError as e:
      failed[str(path)] = str(e)
      print(f"   skipped: {e}", flush=True)
      continue
    manifest.compare_manifests(expected, ff.manifest, what=f"features of {path}")
    store = film_store(path.stem, ff.streams, meta["modalities"])
    if stats:
      store.standardize(stats)
    per_target = inference.predict_outputs(model, method.outputs(config), store, mesh,
                                           clip_seconds=config.data.clip_seconds,
                                           batch_size=config.data.eval_batch_size)
    preds = {t: films[0] for t, films in per_target.items()}
    csv = out_dir / f"{reporting.safe_filename(path.stem)}.csv"
    reporting.write_prediction_csv(csv, ff.num_seconds, preds)
    plots.plot_film(out_dir / f"{reporting.safe_filename(path.stem)}.png",
                    np.arange(ff.num_seconds), {t: (None, p) for t, p in preds.items()},
                    title=f"{path.name}: predicted {' and '.join(preds)}")
    written[path.stem] = csv
    print("   " + ", ".join(f"{t}: mean {p.mean():+.3f}, range [{p.min():+.2f}, {p.max():+.2f}]"
                            for t, p in preds.items()) + f" -> {csv}", flush=True)
  if failed:
    print(f"{len(failed)} of {len(videos)} videos could not be read:")
    for p, why in failed.items():
      print(f"  {p}: {why}")
  if not written:
    raise errors.DataError(f"no video could be predicted ({len(failed)} failed)")
  return written
