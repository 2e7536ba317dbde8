"""benchmarks/results.py: the docs table from runs, checked against NumPy on made-up runs."""

import json

import numpy as np

from benchmarks import results


def _fake_run(root, row, seed, pcc, film_pccs):
  d = root / row.key / "sweep" / "trials" / f"seed={seed}"
  (d / "eval" / "test").mkdir(parents=True)
  (d / "trial_done.json").write_text("{}")
  (d / "config.json").write_text(json.dumps({"dataset": {"name": "synthetic_benchmark",
                                                         "config": "default"},
                                             "targets": ["valence"]}))
  per_film = {f"f{i}": {"pcc": v} for i, v in enumerate(film_pccs)}
  m = {"valence": {"pcc": pcc, "mse": 0.1, "ccc": 0.2,
                   "film_mean": {"pcc": float(np.mean(film_pccs))}, "per_film": per_film}}
  (d / "eval" / "test" / "metrics.json").write_text(json.dumps(m))


def test_report_gives_mean_std_over_seeds_and_lists_rows_not_run(tmp_path, monkeypatch):
  monkeypatch.setenv("EMOJAX_DATA_DIR", str(tmp_path / "no_data"))
  row = results.ROWS[3]   # ridge
  _fake_run(tmp_path, row, 0, 0.30, [0.1, 0.5, 0.3])
  _fake_run(tmp_path, row, 1, 0.40, [0.2, 0.6, 0.4])
  out = tmp_path / "results.md"
  results.write_report(tmp_path, "default", (0, 1), list(results.ROWS), out)
  text = out.read_text()
  want = f"{np.mean([0.3, 0.4]):.3f} ± {np.std([0.3, 0.4], ddof=1):.3f}"
  line = next(l for l in text.splitlines() if l.startswith(f"| {row.label} | default: ridge | 2 | valence"))
  assert want in line
  assert f"| {results.ROWS[0].label} | default: two_timescale | not run yet |" in text
  assert "spans up to 0.100 between seeds" in text


def test_bootstrap_interval_brackets_the_mean_of_seed_averaged_films():
  by_seed = [{"a": 0.1, "b": 0.5, "c": 0.9}, {"a": 0.3, "b": 0.5, "c": 0.7}]
  lo, hi = results.bootstrap_interval(by_seed, n=4000)
  assert lo <= 0.5 <= hi and lo >= 0.2 - 1e-9 and hi <= 0.8 + 1e-9


def test_interval_only_with_enough_test_films(tmp_path, monkeypatch):
  monkeypatch.setenv("EMOJAX_DATA_DIR", str(tmp_path / "no_data"))
  few, many = results.ROWS[3], results.ROWS[1]   # ridge with 3 test films, M1 with 6
  for s in (0, 1):
    _fake_run(tmp_path, few, s, 0.3, [0.1, 0.5, 0.3])
    _fake_run(tmp_path, many, s, 0.3, [0.1 * s + v for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)])
  out = tmp_path / "results.md"
  results.write_report(tmp_path, "default", (0, 1), list(results.ROWS), out)
  text = out.read_text()
  line = next(l for l in text.splitlines() if l.startswith(f"| {few.label} | default: ridge | 2 | valence"))
  assert "| n/a (3 test films) |" in line
  assert "No 95% interval where the test split has fewer than 5 films (here 3 at most)" in text
  line = next(l for l in text.splitlines() if l.startswith(f"| {many.label} | default: two_timescale | 2 | valence"))
  cell = line.split(" | ")[6]
  lo, hi = (float(x) for x in cell.strip("[]").split(", "))
  # The seed-averaged films are 0.05 + 0.2 k, mean 0.55; a bootstrap of 6 films stays inside
  # the films' range and brackets their mean.
  assert 0.05 <= lo < 0.55 < hi <= 1.05


def test_profiles_write_under_the_data_dir_not_the_source_tree(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("EMOJAX_DATA_DIR", str(tmp_path / "data"))
  before = sorted(p.name for p in (results.REPO / "docs").iterdir())
  results.main(["--profile=quick", "--report_only", "--rows=ridge"])
  out = tmp_path / "data" / "results" / "quick" / "results.md"
  assert out.exists() and f"wrote {out}" in capsys.readouterr().out
  assert "(quick)" in out.read_text().splitlines()[0]
  # The default profile with rows missing leaves docs/results.md alone as well.
  results.main(["--report_only", "--rows=ridge"])
  assert (tmp_path / "data" / "results" / "default" / "results.md").exists()
  assert sorted(p.name for p in (results.REPO / "docs").iterdir()) == before


def test_rows_print_their_number_and_an_eta(tmp_path, monkeypatch, capsys):
  rows = [results.ROWS[3], results.ROWS[1], results.ROWS[2]]
  _fake_run(tmp_path, rows[0], 0, 0.3, [0.1, 0.5])   # ridge seed 0 finished before
  clock = [1000.0]
  monkeypatch.setattr(results.time, "time", lambda: clock[0])

  def fake_row(row, profile, seeds, root):
    for s in seeds:   # each seed not yet done "trains" for 60 s (ridge 1 seed, the others 2)
      if not (root / row.key / "sweep" / "trials" / f"seed={s}" / "trial_done.json").exists():
        clock[0] += 60.0
        _fake_run(root, row, s, 0.3, [0.1, 0.5])
  monkeypatch.setattr(results, "run_row", fake_row)
  results.run_rows(rows, "quick", (0, 1), tmp_path)
  lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[results]")]
  assert lines == [
      f"[results] row 1/3 {rows[0].key}: 1 of 2 seeds to train; 5 seeds to train; ETA after the "
      "first seed",
      f"[results] row 2/3 {rows[1].key}: 2 of 2 seeds to train; ETA 4 min for 4 seeds to train "
      "(60 s per seed so far)",
      f"[results] row 3/3 {rows[2].key}: 2 of 2 seeds to train; ETA 2 min for 2 seeds to train "
      "(60 s per seed so far)"]


def test_a_row_run_with_other_profile_settings_is_set_aside_and_trained_again(
    tmp_path, monkeypatch, capsys):
  row = results.ROWS[3]
  _fake_run(tmp_path, row, 0, 0.3, [0.1, 0.5])
  # Runs from before row.json was kept are taken as they are (and adopt the current spec) ...
  trained = []
  def fake_row(r, profile, seeds, root):   # the sweep trains only seeds without trial_done.json
    if not (root / r.key / "sweep" / "trials" / "seed=0" / "trial_done.json").exists():
      trained.append(r.key)
  monkeypatch.setattr(results, "run_row", fake_row)
  results.run_rows([row], "quick", (0,), tmp_path)
  assert trained == [] and list(results._trial_dirs(tmp_path, row, (0,), "quick")) == [0]  # pylint: disable=protected-access
  spec = json.loads((tmp_path / row.key / "row.json").read_text())
  assert spec["config"].startswith(row.config.split(":")[0])
  # ... a record that differs from what the profile runs now (here: other epochs) is stale:
  # not read by the report, moved aside (kept) and the row trained again.
  spec["overrides"] = {"train.epochs": 10.0}
  (tmp_path / row.key / "row.json").write_text(json.dumps(spec))
  assert results._trial_dirs(tmp_path, row, (0,), "quick") == {}   # pylint: disable=protected-access
  results.run_rows([row], "quick", (0,), tmp_path)
  assert trained == [row.key]
  moved = list((tmp_path / "_stale").iterdir())
  assert len(moved) == 1 and (moved[0] / "sweep" / "trials" / "seed=0" / "trial_done.json").exists()
  assert "train.epochs" in capsys.readouterr().out
  assert json.loads((tmp_path / row.key / "row.json").read_text())["overrides"] != {
      "train.epochs": 10.0}


def test_clip_ceilings_line_names_every_modality_and_the_majority():
  md = {"modality_ceiling_expected": {
            "arousal": {"picture": {"accuracy": 0.5774}, "sound": {"accuracy": 0.6468},
                        "fused": {"accuracy": 0.7037}, "latent": {"accuracy": 0.837}}},
        "majority": {"arousal": {"class": 0, "accuracy": 0.3958}}}
  line = results.clip_ceilings_line(md)
  assert ("arousal: picture 0.577, sound 0.647, fused 0.704, latent 0.837; "
          "majority class (test) 0.396") in line
  assert results.clip_ceilings_line({}) == ""
