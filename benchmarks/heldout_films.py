r"""Seed 004 runs and the ridge on frame statistics, scored on further films of the benchmark.

  python -m benchmarks.heldout_films --films=36 \
      --runs=<data dir>/results/default/runs/seed004_c3d_valence/sweep/trials/seed=0,...

The raw-frame benchmark of the results page (`synthetic_clips/frames_small`) has 4 test films (24
clips): a pooled test PCC moves by about 0.1 between such splits (the PCC of the labels with the
frames' noiseless valence cue has a std of 0.100 over 200 groups of 4 further films of the
generator), so two readers of the same cue are not ranked by it. This check renders `--films` further films of the
same generator (the film indices after the dataset's own, `synthetic_clips.render_streams` /
`film_labels` with the dataset's config: the clips its builder would store) and scores, on the
dataset's test split and on those films: the ridge on `results.frame_statistics` (fitted on the
training split, its strength chosen on the validation split, as `results.trivial_baselines`) and
each run's `final_model` (evaluation mode, the centre crop, as `--mode=evaluate`). For
`frame_clips` runs it also reports the cue, the pictures' noiseless curve of the target at the
frames' times (`picture_cue`: what the frames can show), its PCC with the labels (the frames'
ceiling for a linear reader) and with each predictor (how exactly it reads the cue), and the
spread of that ceiling over `--cue_groups` groups of as many films as the test split. It writes
nothing; the runs are only read.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from benchmarks import results
from emojax import cli, errors, metrics


def further_films(cfg, stream: str, target: str, first: int, count: int):
  """(clips (n, ...) uint8 of `stream`, labels (n,) float32, film index (n,)) of films first ..
  first + count - 1 rendered with the builder config `cfg` (its seed, sizes and frame streams)."""
  from emojax.datasets import synthetic_clips  # pylint: disable=import-outside-toplevel
  clips, labels, films = [], [], []
  for i in range(first, first + count):
    clips.append(synthetic_clips.render_streams(cfg, i)[stream])
    labels.append(synthetic_clips.film_labels(cfg, i)[target])
    films += [i] * cfg.clips_per_film
  return np.concatenate(clips), np.concatenate(labels).astype(np.float32), np.asarray(films)


def picture_cue(cfg, target: str, index: int) -> np.ndarray:
  """(clips_per_film,): the noiseless curve that drives `target` in film `index`'s pictures
  (`synthetic_clips.modality_curves`), averaged over the times of each clip's `frame_clips`
  frames (`features.frame_clips.clip_targets`, as the builder picks them): what the frames can
  show of the target."""
  from emojax.datasets import synthetic_clips  # pylint: disable=import-outside-toplevel
  from emojax.datasets import synthetic_films_render as render  # pylint: disable=import-outside-toplevel
  from emojax.features import frame_clips  # pylint: disable=import-outside-toplevel
  t = frame_clips.clip_targets(cfg.clip_seconds, 0, cfg.frame_clips_frames, "dense",
                               cfg.frame_clips_fps)[0]
  curve = synthetic_clips.modality_curves(cfg, index)["picture"][target]
  return np.array([render._at_times(curve, t + j * cfg.clip_seconds).mean()  # pylint: disable=protected-access
                   for j in range(cfg.clips_per_film)])


def cue_spread(cfg, target: str, first: int, groups: int, films_per_group: int):
  """PCC of the labels with `picture_cue` over `groups` groups of `films_per_group` further films
  (labels and curves only, nothing rendered): (mean, sample std) over the groups."""
  from emojax.datasets import synthetic_clips  # pylint: disable=import-outside-toplevel
  vals = []
  for g in range(groups):
    idx = range(first + g * films_per_group, first + (g + 1) * films_per_group)
    cue = np.concatenate([picture_cue(cfg, target, i) for i in idx])
    lab = np.concatenate([synthetic_clips.film_labels(cfg, i)[target] for i in idx])
    vals.append(metrics.pcc(cue, lab))
  return float(np.mean(vals)), float(np.std(vals, ddof=1))


def scores(pred, labels, films) -> dict[str, float]:
  """Pooled PCC over all clips, the mean over films of each film's PCC, and the MSE."""
  pred, labels, films = (np.asarray(a) for a in (pred, labels, films))
  per_film = [metrics.pcc(pred[films == f], labels[films == f])
              for f in np.unique(films)]
  return {"pcc": metrics.pcc(pred, labels),
          "film_pcc": float(np.nanmean(per_film)),
          "mse": float(np.mean((np.asarray(pred, np.float64) - labels) ** 2))}


def _predict(run_dir: pathlib.Path, target: str, clips: dict[str, np.ndarray]) -> dict:
  """{split: predictions} of a run's final model on each array of clips, through the method's
  own prediction output (`method.outputs`: the forward the harness predicts with) and
  `contract.predictions` (how the task maps outputs to predictions)."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax import contract, evaluate  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets  # pylint: disable=import-outside-toplevel
  config = evaluate.load_run_config(run_dir)
  if target not in config.targets:
    raise errors.ConfigError(f"{run_dir}: trained on {list(config.targets)}, not {target!r}")
  method, model, _, _ = evaluate.load_trained_model(config, run_dir / "final_model")
  model.eval()
  output = method.outputs(config)[target]
  stream = video_convnets.frame_stream(config)
  forward = nnx.jit(lambda net, x: contract.predictions(
      output.task, output.forward(net, {"x": {stream: x}}, None))[target])
  batch = int(config.data.eval_batch_size)
  return {name: np.concatenate([np.asarray(forward(model, jnp.asarray(x[i:i + batch])))
                                for i in range(0, len(x), batch)]).astype(np.float64)
          for name, x in clips.items()}


def _main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True, help="comma-separated trial folders (each with "
                 "config.json and final_model), all on the same dataset and target")
  p.add_argument("--films", type=int, default=36, help="further films to render (default 36)")
  p.add_argument("--cue_groups", type=int, default=200, help="frame_clips runs: groups of as many "
                 "films as the test split, after the rendered ones, over which the spread of the "
                 "PCC of the labels with the pictures' noiseless curve is measured (labels only; "
                 "default 200, 0 = none)")
  a = p.parse_args(argv)
  runs = [pathlib.Path(r) for r in a.runs.split(",") if r.strip()]
  for r in runs:
    if not (r / "config.json").is_file() or not (r / "final_model").is_dir():
      raise errors.ConfigError(f"--runs: {r} has no config.json and final_model: give a trained "
                               "run's folder, e.g. .../sweep/trials/seed=0")
  if a.films < 1:
    raise errors.ConfigError(f"--films={a.films}: give at least 1")
  configs = [json.loads((r / "config.json").read_text()) for r in runs]
  ds, target = configs[0]["dataset"], configs[0]["targets"][0]
  stream = configs[0]["inputs"]["streams"][0]
  for r, c in zip(runs, configs):
    if c["dataset"] != ds or c["targets"][0] != target or c["inputs"]["streams"][0] != stream:
      raise errors.ConfigError(f"--runs: {r} has another dataset, target or stream than {runs[0]}")
  if ds["name"] != "synthetic_clips":
    raise errors.ConfigError(f"--runs: the runs read {ds['name']!r}; further films can only be "
                             "rendered for synthetic_clips")
  from emojax import datasets  # pylint: disable=import-outside-toplevel
  builder = datasets.get_builder(ds["name"], ds.get("config") or None, ds.get("data_dir") or None)
  if not builder.is_prepared():
    raise errors.DataError(f"synthetic_clips/{ds.get('config')} is not built in "
                           f"{builder.data_dir}: run `python main.py --mode=build "
                           f"--dataset=synthetic_clips --dataset_config={ds.get('config')}`")
  cfg = builder.builder_config
  source = builder.as_data_source()
  split = {s: [source[s][i] for i in range(len(source[s]))] for s in ("train", "validation", "test")}
  x = {s: np.stack([e[stream] for e in ex]) for s, ex in split.items()}
  y = {s: np.array([float(e[target]) for e in ex], np.float32) for s, ex in split.items()}
  f = {s: np.array([e["film_id"] for e in ex]) for s, ex in split.items()}
  print(f"rendering films {cfg.num_films}..{cfg.num_films + a.films - 1} of "
        f"synthetic_clips/{cfg.name} ({a.films * cfg.clips_per_film} clips)", flush=True)
  x["further"], y["further"], f["further"] = further_films(cfg, stream, target, cfg.num_films,
                                                           a.films)
  feats = {s: np.stack([results.frame_statistics(c) for c in x[s]]).astype(np.float64) for s in x}
  ridge = {s: results._ridge(feats["train"], y["train"], feats["validation"],  # pylint: disable=protected-access
                             y["validation"], feats[s]) for s in ("validation", "test", "further")}
  rows = [("ridge on frame statistics", ridge)]
  for r in runs:
    rows.append((str(r), _predict(r, target, {s: x[s] for s in ("validation", "test",
                                                                 "further")})))
    print(f"scored {r}", flush=True)
  print(f"\n{target}: validation ({len(y['validation'])} clips), test ({len(y['test'])} clips, "
        f"{len(set(f['test']))} films), {a.films} further films ({len(y['further'])} clips)\n")
  cue = {}
  if stream == "frame_clips":   # the frames' times are the builder's dense clip targets
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    for s in ("validation", "test"):   # clip ids "film_<i>_clip_<j>" (synthetic_clips.clip_id)
      ij = [tuple(int(x) for x in text(e["clip_id"]).split("_")[1::2]) for e in split[s]]
      by_film = {i: picture_cue(cfg, target, i) for i in {i for i, _ in ij}}
      cue[s] = np.array([by_film[i][j] for i, j in ij])
    cue["further"] = np.concatenate([picture_cue(cfg, target, i)
                                     for i in range(cfg.num_films, cfg.num_films + a.films)])
  print("| predictor | validation PCC | test PCC | test PCC per film | further PCC | "
        "further PCC per film | further MSE |" + (" PCC with the cue (test / further) |"
                                                  if cue else "")
        + "\n|---|---|---|---|---|---|---|" + ("---|" if cue else ""))
  for name, pred in rows:
    v, t, u = (scores(pred[s], y[s], f[s]) for s in ("validation", "test", "further"))
    print(f"| {name} | {v['pcc']:.3f} | {t['pcc']:.3f} | {t['film_pcc']:.3f} | {u['pcc']:.3f} | "
          f"{u['film_pcc']:.3f} | {u['mse']:.3f} |" + (
              f" {metrics.pcc(pred['test'], cue['test']):.3f} / "
              f"{metrics.pcc(pred['further'], cue['further']):.3f} |" if cue else ""))
  if cue:
    line = ("\nThe cue: the pictures' noiseless " + target + " curve at the frames' times (what "
            "the frames can show); its PCC with the labels: " + ", ".join(
                f"{s} {metrics.pcc(cue[s], y[s]):.3f}" for s in cue))
    if a.cue_groups > 1:
      n = len(set(f["test"]))
      m, sd = cue_spread(cfg, target, cfg.num_films + a.films, a.cue_groups, n)
      line += (f"; over {a.cue_groups} groups of {n} further films (as many as the test split): "
               f"mean {m:.3f}, std {sd:.3f}")
    print(line + ".")


def main(argv=None) -> int:
  return cli.run(lambda: _main(argv))


if __name__ == "__main__":
  sys.exit(main())
