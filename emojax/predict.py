"""Predict mode: a new film -> features (as the run's dataset made them) -> its predictions.

  python main.py --mode=predict --workdir=runs/films --video=film.mp4 [--output=DIR]
      [--allow_missing_audio]

For every video: the extractors that made the run's inputs run over the film (with a progress
bar), the features are standardised with the training statistics, and the model gives
- per-second models (unit "second": two_timescale, gru_moe, ridge, per-second AttendAffectNet):
  the extractors of the run's feature manifest; the method's post-processing (EMA, inter-clip
  context...) gives per-second predictions, written as `<out>/<film>.csv`
  (`second,valence,arousal` for the trained targets) and `<out>/<film>.png` (the curve as steps
  over each second, the axis covering the whole film);
- per-clip models (unit "clip": fusion_lstm, video_convnets, per-clip and imported AttendAffectNet):
  the film cut into windows of the training clip's length W, hop W (the last window holds the
  remaining seconds), each window one example of a `ClipStore` (`input_pipeline.window_store`)
  whose streams are made as the run's dataset made them (`predict_checks.clip_recipe`: the
  manifest's extractors, or the extractor named like the stream); `<out>/<film>.csv` has one row
  per window (`window,start,end,<target>` for regression; `<target>_class,<target>_p0..` for
  classification) and `<out>/<film>.png` the values as steps over the film.
A film shorter than one clip / window is predicted with a warning that says so (a per-second model
then predicts from one partial clip; a per-clip model from one window of the film's seconds); a
film under one second is skipped (nothing to predict: features are per whole second).
A video that cannot be read is reported and skipped; the others are still predicted. A film without
an audio stream is skipped too, unless `--allow_missing_audio` (`allow_missing_audio=True`) asks
for its audio features to be computed on silence. The output folder is checked before any work.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from emojax import checkpoint, cli, errors, evaluate, fileio, inference, input_pipeline, metrics
from emojax import plots, predict_checks, reporting
from emojax.features import decode, extract, frame_clips, manifest

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


def _steps(starts, ends, values: np.ndarray, duration_s: float):
  """(x, y) drawing values[k] flat over [starts[k], ends[k]), the x axis reaching the film's end
  (a NaN point at duration_s when the last whole second ends before it)."""
  x = np.stack([starts, ends], 1).reshape(-1).astype(np.float64)
  y = np.repeat(np.asarray(values, np.float64), 2)
  if duration_s > x[-1] + 1e-6:
    x, y = np.append(x, duration_s), np.append(y, np.nan)
  return x, y


def _short(path: pathlib.Path, ff, what: str, length: int) -> str:
  return (f"   warning: {path.name} lasts {ff.duration_s:.1f} s ({ff.num_seconds} whole seconds), "
          f"shorter than one {length} s {what}")


def _predict_seconds(path, ff, name, config, method, model, meta, stats, mesh, out_dir):
  store = film_store(name, ff.streams, meta["modalities"])
  if stats:
    store.standardize(stats)
  per_target = inference.predict_outputs(model, method.outputs(config), store, mesh,
                                         clip_seconds=config.data.clip_seconds,
                                         batch_size=config.data.eval_batch_size)
  preds = {t: films[0] for t, films in per_target.items()}
  clip = int(config.data.clip_seconds)
  if ff.num_seconds < clip:
    flat = all(np.ptp(p) == 0 for p in preds.values())
    print(_short(path, ff, "clip of the model (config.data.clip_seconds)", clip) + ": predicted "
          "from one partial clip" + (", so every second gets the same value (a flat line)"
                                     if flat else ""), flush=True)
  csv = out_dir / f"{reporting.safe_filename(name)}.csv"
  reporting.write_prediction_csv(csv, ff.num_seconds, preds)
  sec = np.arange(ff.num_seconds)
  curves = {}
  for t, p in preds.items():
    x, y = _steps(sec, sec + 1, p, ff.duration_s)
    curves[t] = (None, y)
  plots.plot_film(out_dir / f"{reporting.safe_filename(name)}.png", x, curves,
                  title=f"{path.name}: predicted {' and '.join(preds)} per second")
  return csv, preds


def window_examples(ff, recipe: predict_checks.ClipRecipe
                    ) -> tuple[list[dict], list[int], list[int]]:
  """The film's windows as examples of the model's streams: (examples, starts, ends) in seconds."""
  w, t = recipe.window, ff.num_seconds
  starts = list(range(0, t, w))
  ends = [min(t, a + w) for a in starts]
  examples = []
  for k, (a, b) in enumerate(zip(starts, ends)):
    ex = {}
    for s, (name, way) in recipe.streams.items():
      rows = ff.streams[name]
      if way == "clip":
        if len(rows) != len(starts):
          raise errors.DataError(f"{ff.path}: extractor {name!r} gave {len(rows)} clips for "
                                 f"{len(starts)} windows of {w} s")
        v = rows[k]
        if name in predict_checks.FRAME_EXTRACTORS:
          v = frame_clips.decode_clips(np.asarray(v, dtype=object).reshape(1, -1))[0].reshape(
              recipe.shapes[s])
      elif way == "stack":
        v = np.asarray(rows[a:b])
      else:
        v = np.asarray(rows[a:b]).mean(0).astype(rows.dtype)
      ex[s] = v
    examples.append(ex)
  return examples, starts, ends


def _predict_windows(path, ff, name, config, method, model, meta, stats, mesh, out_dir,
                     recipe: predict_checks.ClipRecipe):
  examples, starts, ends = window_examples(ff, recipe)
  ragged = [s for s, (_, way) in recipe.streams.items() if way == "stack"]
  store = input_pipeline.window_store(name, name, examples, list(recipe.streams), recipe.shapes,
                                      ragged if ends[-1] - starts[-1] < recipe.window else ())
  if stats:
    store.standardize(stats)
  task = method.task(config)
  preds = inference.predict_outputs(model, method.outputs(config), store, mesh,
                                    clip_seconds=config.data.clip_seconds,
                                    batch_size=max(1, min(config.data.eval_batch_size,
                                                          len(examples))))
  w = recipe.window
  if ff.num_seconds < w:
    print(_short(path, ff, "window (the training clips' length)", w) + f": predicted from one "
          f"window of its {ff.num_seconds} s" + (" (per-second rows zero-padded and masked)"
                                                 if ragged else ""), flush=True)
  elif ends[-1] - starts[-1] < w:
    print(f"   note: the last window holds {ends[-1] - starts[-1]} s of {w} s", flush=True)
  header, cols = ["window", "start", "end"], [[str(k) for k in range(len(starts))],
                                              [str(a) for a in starts], [str(b) for b in ends]]
  curves, labels = {}, []
  for t in metrics.ordered_dims(preds):
    p = np.asarray(preds[t])
    if not np.all(np.isfinite(p)):
      raise errors.DataError(f"{path}: the {t} predictions hold NaN/Inf values")
    if task.kind == "classification":
      names = reporting.class_names(None, t, p.shape[-1])
      header += [f"{t}_class"] + [f"{t}_p{c}" for c in range(p.shape[-1])]
      cols += [[str(int(c)) for c in p.argmax(-1)]]
      cols += [[f"{v:.6g}" for v in p[:, c]] for c in range(p.shape[-1])]
      value = p @ np.linspace(-1.0, 1.0, p.shape[-1])
      labels.append(f"{t}: expected class, {names[0]} -1 .. {names[-1]} +1")
    else:
      header += [t]
      cols += [[f"{v:.6g}" for v in p]]
      value = p
    curves[t] = (None, _steps(np.asarray(starts), np.asarray(ends), value, ff.duration_s)[1])
  csv = out_dir / f"{reporting.safe_filename(name)}.csv"
  lines = [",".join(header)] + [",".join(r) for r in zip(*cols)]
  fileio.atomic_write_text(csv, "\n".join(lines) + "\n")
  x, _ = _steps(np.asarray(starts), np.asarray(ends), np.zeros(len(starts)), ff.duration_s)
  plots.plot_film(out_dir / f"{reporting.safe_filename(name)}.png", x, curves,
                  title=f"{path.name}: predicted {' and '.join(curves)} per {w} s window"
                  + (f" ({'; '.join(labels)})" if labels else ""))
  summary = {t: (np.asarray(preds[t]) @ np.linspace(-1, 1, np.shape(preds[t])[-1])
                 if task.kind == "classification" else np.asarray(preds[t])) for t in preds}
  return csv, summary


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
  # A stream without an extractor: refused before the model is built.
  if (why := predict_checks.refusal(ckpt, checkpoint.read_model_meta(ckpt)[0])) is not None:
    raise errors.ManifestMismatchError(why)
  method, model, meta, stats = evaluate.load_trained_model(config, ckpt)
  recipe = None
  if method.task(config).unit == "clip":
    recipe = predict_checks.clip_recipe(ckpt, meta, config.data.clip_seconds)
    expected, spec = recipe.expected, recipe.spec
    print(f"per-clip model: one prediction per window: {recipe.describe()}", flush=True)
  else:
    expected = meta.get("feature_manifest")
    spec = manifest.extractor_spec(expected)
  manifest.check_current(expected, what=f"the model {ckpt} (its feature manifest)")
  mesh = input_pipeline.make_mesh()
  videos = find_videos(video)
  written, failed = {}, {}
  for i, path in enumerate(videos):
    print(f"[{i + 1}/{len(videos)}] {path}", flush=True)
    try:
      ff = extract.extract_film(path, spec, fast=bool(expected.get("fast", False)), progress=True,
                                allow_missing_audio=allow_missing_audio)
      if ff.num_seconds < 1:
        raise errors.DataError(f"lasts {ff.duration_s:.2f} s, under one second: nothing to "
                               "predict (features and predictions are per whole second)")
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
    args = (path, ff, path.stem, config, method, model, meta, stats, mesh, out_dir)
    csv, preds = (_predict_windows(*args, recipe) if recipe is not None
                  else _predict_seconds(*args))
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
