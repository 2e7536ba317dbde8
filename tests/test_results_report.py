"""benchmarks/results.py: the docs table from runs, checked against NumPy on made-up runs."""

import json

import numpy as np

from benchmarks import results


def _fake_run(root, row, seed, pcc, film_pccs):
  d = root / row.key / "sweep" / "trials" / f"seed={seed}"
  (d / "eval" / "test").mkdir(parents=True)
  (d / "trial_done.json").write_text("{}")
  (d / "config.json").write_text(json.dumps({"dataset": {"name": "synthetic_benchmark",
                                                         "config": "default"}}))
  per_film = {f"f{i}": {"pcc": v} for i, v in enumerate(film_pccs)}
  m = {"valence": {"pcc": pcc, "mse": 0.1, "ccc": 0.2,
                   "film_mean": {"pcc": float(np.mean(film_pccs))}, "per_film": per_film}}
  (d / "eval" / "test" / "metrics.json").write_text(json.dumps(m))


def test_report_gives_mean_std_over_seeds_and_lists_rows_not_run(tmp_path):
  row = results.ROWS[3]   # ridge
  _fake_run(tmp_path, row, 0, 0.30, [0.1, 0.5, 0.3])
  _fake_run(tmp_path, row, 1, 0.40, [0.2, 0.6, 0.4])
  out = tmp_path / "results.md"
  results.write_report(tmp_path, "default", (0, 1), list(results.ROWS), out)
  text = out.read_text()
  want = f"{np.mean([0.3, 0.4]):.3f} ± {np.std([0.3, 0.4], ddof=1):.3f}"
  line = next(l for l in text.splitlines() if l.startswith(f"| {row.label} | 2 | valence"))
  assert want in line
  assert f"| {results.ROWS[0].label} | not run yet |" in text
  assert "spans up to 0.100 between seeds" in text


def test_bootstrap_interval_brackets_the_mean_of_seed_averaged_films():
  by_seed = [{"a": 0.1, "b": 0.5, "c": 0.9}, {"a": 0.3, "b": 0.5, "c": 0.7}]
  lo, hi = results.bootstrap_interval(by_seed, n=4000)
  assert lo <= 0.5 <= hi and lo >= 0.2 - 1e-9 and hi <= 0.8 + 1e-9


def test_clip_ceilings_line_names_every_modality_and_the_majority():
  md = {"modality_ceiling_expected": {
            "arousal": {"picture": {"accuracy": 0.5774}, "sound": {"accuracy": 0.6468},
                        "fused": {"accuracy": 0.7037}, "latent": {"accuracy": 0.837}}},
        "majority": {"arousal": {"class": 0, "accuracy": 0.3958}}}
  line = results.clip_ceilings_line(md)
  assert ("arousal: picture 0.577, sound 0.647, fused 0.704, latent 0.837; "
          "majority class (test) 0.396") in line
  assert results.clip_ceilings_line({}) == ""
