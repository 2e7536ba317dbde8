"""benchmarks/results.py: the rows and profiles, the trivial baselines and the below-baseline marks,
checked against hand-computed values (no training)."""

import json

import numpy as np
import pytest

from benchmarks import results


def test_every_row_loads_under_every_profile_and_the_ablations_are_there():
  keys = {r.key for r in results.ROWS}
  # The families' ablations (issue 24): seed 001 encoder / window / gating / MoE / ensemble,
  # seed 003 stream subsets x variants, seed 002 five fusions x two dimensions, seed 004 five
  # networks x two dimensions.
  assert {"seed001_lstm", "seed001_tcn", "seed001_w10", "seed001_w30", "seed001_w60",
          "seed001_no_gating", "seed001_no_moe", "seed001_ensemble4"} <= keys
  assert {f"aan_{v}_{s}" for v in ("feature", "temporal", "feature_temporal")
          for s in ("audio", "video")} <= keys
  assert len([r for r in results.ROWS if r.table == "clips"]) == 10
  assert len([r for r in results.ROWS if r.table == "clip_regression"]) == 10
  for profile, families in results.PROFILES.items():
    assert {r.family for r in results.ROWS} == set(families), profile
    for r in results.ROWS:
      c = results.load_config(r, profile, (0, 1, 2))
      assert tuple(c.sweep.seeds) == (0, 1, 2) and not c.sweep.grid
      for k, v in r.overrides:   # the row's own setting wins over the profile's
        node = c
        for part in k.split("."):
          node = node[part]
        assert node == v, (profile, r.key, k)


def test_rows_with_the_same_config_are_trained_once():
  quick = results.aliases(results.ROWS, "quick")
  default = results.aliases(results.ROWS, "default")
  # runlocal's window is 10 s and the config's default 60 s (configs/gru_moe.py).
  assert quick == {"seed001_w10": "seed001"}
  assert default == {"seed001_w60": "seed001"}


def test_frame_statistics_by_hand():
  frames = np.zeros((2, 8, 8, 3), np.uint8)
  frames[:, :, :4] = 255          # left half white, right half black, both frames
  frames[1, :, :, 0] = 255        # frame 2: red channel all on
  s = results.frame_statistics(frames, grid=2)
  layout = s[:12].reshape(2, 2, 3)
  np.testing.assert_allclose(layout[:, 0], 1.0)                    # left column white
  np.testing.assert_allclose(layout[:, 1], [[0.5, 0, 0]] * 2)      # right: red in 1 of 2 frames
  np.testing.assert_allclose(s[12:15], [0.25, 0.5, 0.5])           # spatial std per channel
  np.testing.assert_allclose(s[15:18], [0.5, 0, 0])                # red changed on half the pixels


def test_ridge_recovers_a_linear_target():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 4))
  y = x @ np.array([1.0, -2.0, 0.0, 0.5]) + 3.0
  pred = results._ridge(x[:200], y[:200], x[200:250], y[200:250], x[250:])  # pylint: disable=protected-access
  np.testing.assert_allclose(pred, y[250:], atol=0.05)


class _FakeBuilder:
  def __init__(self, source):
    self.source = source

  def is_prepared(self):
    return True

  def as_data_source(self):
    return self.source


def test_trivial_baselines_by_hand(monkeypatch):
  from emojax import datasets  # pylint: disable=import-outside-toplevel
  films = {"train": [{"valence": np.array([0.2, 0.4]), "arousal": np.array([0.0, 0.0])},
                     {"valence": np.array([0.6]), "arousal": np.array([1.0])}],
           "validation": [{"valence": np.array([0.1]), "arousal": np.array([0.1])}],
           "test": [{"valence": np.array([0.5, -0.5]), "arousal": np.array([0.2, 0.4])}]}
  clips = {"train": [{"arousal_class": c} for c in (0, 2, 2, 1)],
           "validation": [{"arousal_class": 0}],
           "test": [{"arousal_class": c} for c in (2, 0, 2, 1, 2)]}
  monkeypatch.setattr(datasets, "get_builder", lambda name, *a, **k: _FakeBuilder(
      films if name == "films_fake" else clips))
  reg = results.trivial_baselines({"name": "films_fake"}, "regression", ["valence", "arousal"])
  assert reg["valence"]["constant 0"]["mse"] == pytest.approx(0.25)
  # train mean 0.4: ((0.1)^2 + (0.9)^2) / 2
  assert reg["valence"]["train mean"]["mse"] == pytest.approx(0.41)
  assert reg["arousal"]["train mean"]["mse"] == pytest.approx(((0.2 - 1 / 3) ** 2
                                                                 + (0.4 - 1 / 3) ** 2) / 2)
  cls = results.trivial_baselines({"name": "clips_fake"}, "clips", ["arousal"])
  assert cls["arousal"]["majority class"]["accuracy"] == pytest.approx(3 / 5)


def _run(root, key, seed, metrics, phases=()):
  d = root / key / "sweep" / "trials" / f"seed={seed}"
  (d / "eval" / "test").mkdir(parents=True)
  (d / "trial_done.json").write_text(json.dumps({"seconds": 10.0}))
  (d / "config.json").write_text(json.dumps({"dataset": {"name": "clips_fake"},
                                             "targets": ["arousal"]}))
  (d / "eval" / "test" / "metrics.json").write_text(json.dumps({"arousal": metrics}))
  (d / "phases.json").write_text(json.dumps(list(phases)))


def test_a_row_below_the_majority_class_is_marked_with_its_runs_evidence(tmp_path, monkeypatch):
  from emojax import datasets  # pylint: disable=import-outside-toplevel
  clips = {"train": [{"arousal_class": c} for c in (1, 1, 0)],
           "test": [{"arousal_class": c} for c in (1, 1, 0, 2)]}          # majority: 0.5
  monkeypatch.setattr(datasets, "get_builder", lambda *a, **k: _FakeBuilder(clips))
  results._BASELINE_CACHE.clear()  # pylint: disable=protected-access
  low, high = results.ROWS[-14], results.ROWS[-13]     # two seed 002 rows
  assert low.table == high.table == "clips"
  for s in (0, 1):
    _run(tmp_path, low.key, s, {"accuracy": 0.5, "macro_f1": 0.2},
         [{"best_step": 30, "steps": 30, "validation": {"accuracy": 0.4}}])
    _run(tmp_path, high.key, s, {"accuracy": 0.7, "macro_f1": 0.6},
         [{"best_step": 10, "steps": 30, "validation": {"accuracy": 0.6}}])
  out = tmp_path / "r.md"
  results.write_report(tmp_path, "quick", (0, 1), [low, high], out, same={})
  text = out.read_text()
  low_line = next(l for l in text.splitlines() if l.startswith(f"| {low.label} |"))
  high_line = next(l for l in text.splitlines() if l.startswith(f"| {high.label} |"))
  assert "**below**: accuracy ≤ majority class 0.500" in low_line
  assert high_line.endswith("| above |")
  assert "| majority class | arousal | accuracy 0.500 |" in text
  note = next(l for l in text.splitlines() if l.startswith(f"- {low.label}"))
  assert "best validation step = the last step in 2 of 2 seeds (still improving" in note
  assert "validation accuracy 0.400 ± 0.000" in note
  assert "40 s of wall time" in text   # 4 trials of 10 s


def test_run_order_gives_every_family_its_first_row_before_any_second():
  order = results.run_order(results.ROWS)
  assert sorted(r.key for r in order) == sorted(r.key for r in results.ROWS)
  first = order[:len(results.RUN_ORDER)]
  assert [r.family for r in first] == list(results.RUN_ORDER)
  assert [r.key for r in first] == ["ridge", "aan_feature", "seed001", "seed002_modal_valence",
                                    "seed004_c3d_valence", "seed000"]


def test_a_quick_row_below_shows_the_default_profiles_run_of_it(tmp_path, monkeypatch):
  from emojax import datasets  # pylint: disable=import-outside-toplevel
  clips = {"train": [{"arousal_class": c} for c in (1, 1, 0)],
           "test": [{"arousal_class": c} for c in (1, 1, 0, 2)]}          # majority: 0.5
  monkeypatch.setattr(datasets, "get_builder", lambda *a, **k: _FakeBuilder(clips))
  results._BASELINE_CACHE.clear()  # pylint: disable=protected-access
  row = results.ROWS[-14]
  quick, default = tmp_path / "quick" / "runs", tmp_path / "default" / "runs"
  _run(quick, row.key, 0, {"accuracy": 0.25})
  _run(default, row.key, 0, {"accuracy": 0.75})
  out = tmp_path / "r.md"
  results.write_report(quick, "quick", (0,), [row], out, same={})
  note = next(l for l in out.read_text().splitlines() if l.startswith(f"- {row.label}"))
  assert "accuracy ≤ majority class 0.500" in note
  assert note.endswith("The default profile's runs of this row (1 seeds): test accuracy 0.750 "
                       "(above, against its baselines there).")


def test_evidence_of_a_phase_given_in_epochs_names_its_best_steps(tmp_path):
  # phases.json records steps 0 for a phase whose duration is in epochs: its best step is not
  # compared with 0 (which would say "the last step in 0 of 2 seeds" whatever happened).
  row = results.ROWS[-14]
  for s, best in ((0, 96), (1, 120)):
    _run(tmp_path, row.key, s, {"accuracy": 0.5},
         [{"best_step": best, "steps": 0, "validation": {"accuracy": 0.5 + s / 10}}])
  text = results.evidence(row, results._trial_dirs(tmp_path, row, (0, 1)), "arousal")  # pylint: disable=protected-access
  assert text.startswith("best validation at step 96 / 120 (a phase given in epochs")
  assert "last step in" not in text
  assert text.endswith("validation accuracy 0.550 ± 0.071")
