r"""Seed 004 runs and the ridge on frame statistics, scored on further films of the benchmark.

  python -m benchmarks.heldout_films --films=36 \
      --runs=<data dir>/results/default/runs/seed004_c3d_valence/sweep/trials/seed=0,...

The raw-frame benchmark of the results page (`synthetic_clips/frames_small`) has 4 test films (24
clips): a pooled test PCC moves by about 0.1 between such splits (the PCC of the labels with the
frames' noiseless valence cue has a std of 0.098 over 4-film splits of the generator), so two
readers of the same cue are not ranked by it. This check renders `--films` further films of the
same generator (the film indices after the dataset's own, `synthetic_clips.render_streams` /
`film_labels` with the dataset's config: the clips its builder would store) and scores, on the
dataset's test split and on those films: the ridge on `results.frame_statistics` (fitted on the
training split, its strength chosen on the validation split, as `results.trivial_baselines`) and
each run's `final_model` (evaluation mode, the centre crop, as `--mode=evaluate`). It writes
nothing; the runs are only read.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from benchmarks import results
from emojax import cli, errors


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


def scores(pred, labels, films) -> dict[str, float]:
  """Pooled PCC over all clips, the mean over films of each film's PCC, and the MSE."""
  pred, labels, films = (np.asarray(a) for a in (pred, labels, films))
  per_film = [results._pcc(pred[films == f], labels[films == f])  # pylint: disable=protected-access
              for f in np.unique(films)]
  return {"pcc": results._pcc(pred, labels),  # pylint: disable=protected-access
          "film_pcc": float(np.nanmean(per_film)),
          "mse": float(np.mean((np.asarray(pred, np.float64) - labels) ** 2))}


def _predict(run_dir: pathlib.Path, target: str, clips: dict[str, np.ndarray]) -> dict:
  """{split: predictions} of a run's final model on each array of clips."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax import evaluate  # pylint: disable=import-outside-toplevel
  config = evaluate.load_run_config(run_dir)
  if target not in config.targets:
    raise errors.ConfigError(f"{run_dir}: trained on {list(config.targets)}, not {target!r}")
  _, model, _, _ = evaluate.load_trained_model(config, run_dir / "final_model")
  model.eval()
  forward = nnx.jit(lambda net, x: net(x, None))
  batch = int(config.data.eval_batch_size)
  out = {}
  for name, x in clips.items():
    z = np.concatenate([np.asarray(forward(model[target], jnp.asarray(x[i:i + batch])))
                        for i in range(0, len(x), batch)])
    out[name] = float(config.model.label_center) + float(config.model.label_half_range) * z
  return out


def _main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True, help="comma-separated trial folders (each with "
                 "config.json and final_model), all on the same dataset and target")
  p.add_argument("--films", type=int, default=36, help="further films to render (default 36)")
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
  print("| predictor | validation PCC | test PCC | test PCC per film | further PCC | "
        "further PCC per film | further MSE |\n|---|---|---|---|---|---|---|")
  for name, pred in rows:
    v, t, u = (scores(pred[s], y[s], f[s]) for s in ("validation", "test", "further"))
    print(f"| {name} | {v['pcc']:.3f} | {t['pcc']:.3f} | {t['film_pcc']:.3f} | {u['pcc']:.3f} | "
          f"{u['film_pcc']:.3f} | {u['mse']:.3f} |")


def main(argv=None) -> int:
  return cli.run(lambda: _main(argv))


if __name__ == "__main__":
  sys.exit(main())
