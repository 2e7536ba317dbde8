"""Predict mode: a new film -> features (as the checkpoint's manifest says) -> its emotional curve.

  python main.py --mode=predict --workdir=runs/films --video=film.mp4 [--output=DIR]
      [--allow_missing_audio]

For every video: the extractors named by the trained run's feature manifest run over the film
(with a progress bar), the features are standardised with the training statistics, the model and the
method's post-processing (EMA, inter-clip context...) give per-second predictions, written as
`<out>/<film>.csv` (`second,valence,arousal` for the trained targets) and `<out>/<film>.png`.
A video that cannot be read is reported and skipped; the others are still predicted. A film without
an audio stream is skipped too, unless `--allow_missing_audio` (`allow_missing_audio=True`) asks
for its audio features to be computed on silence. The output folder is checked before any work.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from emojax import checkpoint, cli, errors, evaluate, inference, input_pipeline, plots
from emojax import predict_checks, reporting
from emojax.features import decode, extract, manifest

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


def check_output_dir(out_dir: pathlib.Path, flag: str = "--output") -> None:
  """Creates the output folder or raises ConfigError naming `flag` (before any extraction)."""
  cli.check_output_dir(out_dir, flag, create=True)


def _reason(error: Exception, path: pathlib.Path) -> str:
  """The error message without the video's path in front (it is printed once already)."""
  msg = str(error)
  for prefix in (f"{path}: ", f"{path} "):
    if msg.startswith(prefix):
      return msg[len(prefix):]
  return msg


def predict(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, video: str,
            output: str | None = None, checkpoint_path: str | None = None, *,
            allow_missing_audio: bool = False) -> dict[str, pathlib.Path]:
  """Predicts every video; returns {film: csv path}. Raises if no video could be predicted.

  `allow_missing_audio`: a film without an audio stream gets its audio features computed on
  silence instead of being skipped (the command line's `--allow_missing_audio`).
  """
  workdir = pathlib.Path(workdir)
  out_dir = pathlib.Path(output) if output else workdir / "predict"
  check_output_dir(out_dir, "--output" if output else "the output folder (<workdir>/predict)")
  ckpt = pathlib.Path(checkpoint_path) if checkpoint_path else workdir / "final_model"
  # Imported, per-clip, no manifest: refused before the model is built.
  if (why := predict_checks.refusal(ckpt, checkpoint.read_model_meta(ckpt)[0])) is not None:
    raise errors.ManifestMismatchError(why)
  method, model, meta, stats = evaluate.load_trained_model(config, ckpt)
  expected = meta.get("feature_manifest")
  manifest.check_current(expected, what=f"the model {ckpt} (its feature manifest)")
  spec = manifest.extractor_spec(expected)
  mesh = input_pipeline.make_mesh()
  videos = find_videos(video)
  written, failed = {}, {}
  for i, path in enumerate(videos):
    print(f"[{i + 1}/{len(videos)}] {path}", flush=True)
    try:
      ff = extract.extract_film(path, spec, fast=bool(expected.get("fast", False)), progress=True,
                                allow_missing_audio=allow_missing_audio)
    except decode.NoAudioError:
      failed[str(path)] = ("no audio stream, and the model needs audio features; pass "
                           "--allow_missing_audio to predict it with silence in place of its "
                           "sound (allow_missing_audio=True in emojax.predict.predict)")
      print(f"   skipped: {failed[str(path)]}", flush=True)
      continue
    except errors.DataError as e:
      failed[str(path)] = _reason(e, path)
      print(f"   skipped: {failed[str(path)]}", flush=True)
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
    silent = "" if ff.has_audio else " (no audio stream: audio features of silence)"
    print("   " + ", ".join(f"{t}: mean {p.mean():+.3f}, range [{p.min():+.2f}, {p.max():+.2f}]"
                            for t, p in preds.items()) + f"{silent} -> {csv}", flush=True)
  if failed:
    print(f"{len(failed)} of {len(videos)} videos could not be predicted:")
    for p, why in failed.items():
      print(f"  {p}: {why}")
  if not written:
    only = next(iter(failed.items())) if len(failed) == 1 else None
    raise errors.DataError(f"no video could be predicted ({len(failed)} failed"
                           + (f": {only[0]}: {only[1]})" if only else ", see above)"))
  return written
