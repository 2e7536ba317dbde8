"""The trivial baselines of every evaluation (issue 21 item 8), against NumPy on the toy labels:
predicting zero / the training mean (regression), the training majority class (classification);
the 'not better than a constant' flag; the ceiling in the run's metrics only; the sweep table."""

import numpy as np
import pytest

import toy_dataset
from conftest import toy_config
from emojax import contract, evaluate, input_pipeline, sweep


def _toy_labels(seeds) -> dict[str, list[np.ndarray]]:
  """The toy films' labels regenerated from tests/toy_dataset.py (not read through emojax)."""
  out = {"valence": [], "arousal": []}
  for seed in seeds:
    rng = np.random.default_rng(seed)
    film = toy_dataset.make_film(rng, int(rng.integers(25, 48)))
    for t in out:
      out[t].append(film[t].astype(np.float64))
  return out


def test_film_baselines_are_the_constants_of_the_training_labels_scored_on_the_split():
  config = toy_config(targets=("valence", "arousal"))
  task = contract.Task(targets=("valence", "arousal"))
  stores, _ = input_pipeline.load_stores(config, task, ("audio",))
  constants = stores["train"].label_constants(task)
  train, test = _toy_labels(range(6)), _toy_labels((200, 201))
  preds = {t: [np.zeros(len(y), np.float32) + 0.25 for y in test[t]] for t in test}
  got = stores["test"].evaluation(task, preds, constants)
  for t in ("valence", "arousal"):
    mean = np.concatenate(train[t]).mean()
    assert constants[t] == {"zero": 0.0, "train_mean": pytest.approx(mean, rel=1e-6)}
    y = np.concatenate(test[t])
    b = got[t]["baselines"]
    assert b["zero"]["mse"] == pytest.approx(np.mean(y ** 2), rel=1e-6)
    assert b["train_mean"]["mse"] == pytest.approx(np.mean((y - mean) ** 2), rel=1e-6)
    assert b["train_mean"]["mae"] == pytest.approx(np.mean(np.abs(y - mean)), rel=1e-6)
    assert b["train_mean"]["film_mse"] == pytest.approx(
        np.mean([np.mean((f - mean) ** 2) for f in test[t]]), rel=1e-6)
    for name in ("zero", "train_mean"):
      assert np.isnan(b[name]["pcc"]) and np.isnan(b[name]["film_pcc"])  # undefined, not 0
      assert b[name]["ccc"] == 0.0   # no covariance with a constant
    # The model's own numbers are those of the evaluation without baselines.
    assert got[t]["mse"] == pytest.approx(np.mean((y - 0.25) ** 2), rel=1e-6)


def test_the_training_labels_of_evaluate_mode_are_the_trained_share(tmp_path):
  config = toy_config(targets=("arousal",))
  task = contract.Task(targets=("arousal",))
  with config.unlocked():
    config.data.fraction = 0.5
  store = input_pipeline.training_labels(config, task)
  all_ids = [f"film{i:03d}" for i in range(6)]
  assert sorted(store.film_ids) == input_pipeline.fraction_films(all_ids, 0.5, config.seed)
  assert len(store.film_ids) == 3 and not store.streams
  labels = _toy_labels(range(6))["arousal"]
  kept = np.concatenate([labels[all_ids.index(f)] for f in store.film_ids])
  assert store.label_constants(task)["arousal"]["train_mean"] == pytest.approx(kept.mean(),
                                                                               rel=1e-6)


def _clip_store(classes, film_ids=None, name="toy/test"):
  classes = np.asarray(classes, np.int32)
  ids = [f"c{i}" for i in range(len(classes))]
  return input_pipeline.ClipStore(name, None, np.arange(len(classes)), ids,
                                  film_ids or ids, {"valence_class": classes}, (), {})


def test_clip_majority_baseline_accuracy_and_macro_f1():
  task = contract.Task(targets=("valence",), kind="classification", num_classes=3, unit="clip",
                       loss="softmax_ce", best_metric="accuracy")
  train = _clip_store([2, 1, 1, 2, 0])       # 1 and 2 tie: the lowest class (1) is the majority
  assert train.label_constants(task) == {"valence": {"majority": 1}}
  true = np.array([0, 1, 1, 2, 2, 2, 1, 0])
  test = _clip_store(true, film_ids=["a"] * 4 + ["b"] * 4)
  probs = np.eye(3, dtype=np.float32)[true]   # a perfect model
  got = test.evaluation(task, {"valence": probs}, train.label_constants(task))["valence"]
  b = got["baselines"]["majority"]
  assert b["class"] == 1
  assert b["accuracy"] == pytest.approx(3 / 8)
  # F1 of class 1: 2 * 3 / (3 true + 8 predicted); classes 0 and 2 occur: F1 0; mean of 3.
  assert b["macro_f1"] == pytest.approx((2 * 3 / 11) / 3)
  assert b["film_accuracy"] == pytest.approx((2 / 4 + 1 / 4) / 2)
  assert got["accuracy"] == 1.0 and evaluate.not_beaten("classification", got,
                                                        got["baselines"]) == []
  bad = dict(got, accuracy=0.3, macro_f1=0.9)
  assert evaluate.not_beaten("classification", bad, got["baselines"]) == [
      "accuracy 0.3000 vs 0.3750 (predicting the training majority class)"]


def test_clip_regression_baselines():
  task = contract.Task(targets=("valence",), unit="clip")
  train_y = np.array([0.5, -0.1, 0.2, 0.4], np.float32)
  test_y = np.array([0.1, -0.3, 0.6, 0.0, 0.2], np.float32)
  ids = [f"c{i}" for i in range(5)]
  train = input_pipeline.ClipStore("toy/train", None, np.arange(4), ids[:4], ids[:4],
                                   {"valence": train_y}, (), {})
  test = input_pipeline.ClipStore("toy/test", None, np.arange(5), ids, ["a", "a", "b", "b", "b"],
                                  {"valence": test_y}, (), {})
  mean = float(np.mean(train_y.astype(np.float64)))
  got = test.evaluation(task, {"valence": test_y + 0.05}, train.label_constants(task))["valence"]
  y = test_y.astype(np.float64)
  b = got["baselines"]
  assert b["train_mean"]["value"] == pytest.approx(mean)
  assert b["train_mean"]["mse"] == pytest.approx(np.mean((y - np.float32(mean)) ** 2), rel=1e-6)
  assert b["zero"]["mae"] == pytest.approx(np.mean(np.abs(y)), rel=1e-6)
  assert b["zero"]["film_mse"] == pytest.approx((np.mean(y[:2] ** 2) + np.mean(y[2:] ** 2)) / 2,
                                                rel=1e-6)
  assert np.isnan(b["zero"]["pcc"]) and b["zero"]["ccc"] == 0.0
  assert got["mse"] == pytest.approx(0.0025, rel=1e-4)


def test_not_beaten_names_the_metric_and_the_best_constant():
  baselines = {"zero": {"mse": 0.417, "ccc": 0.0, "pcc": float("nan")},
               "train_mean": {"mse": 0.5, "ccc": 0.0, "pcc": float("nan")}}
  assert evaluate.not_beaten("regression", {"mse": 0.863, "ccc": 0.1}, baselines) == [
      "MSE 0.8630 vs 0.4170 (predicting zero)"]
  assert evaluate.not_beaten("regression", {"mse": 0.3, "ccc": -0.2}, baselines) == [
      "CCC -0.2000 vs 0.0000 (predicting zero)"]
  assert evaluate.not_beaten("regression", {"mse": 0.3, "ccc": 0.2}, baselines) == []
  text = evaluate.summary_text("regression", "valence", {"mse": 0.3, "pcc": 0.5, "ccc": 0.2,
                                                         "baselines": baselines})
  assert "[constant baselines: zero mse 0.4170, ccc 0.000; train_mean mse 0.5000" in text


class _Store:
  def __init__(self, metadata):
    self.metadata = metadata


def test_ablation_shows_baseline_rows_flags_and_only_the_runs_ceiling(tmp_path):
  metadata = {"ceiling_by_split": {"test": {"valence": {"accuracy": 0.9, "mse": 0.01}}}}
  rows = [("final (m)", "test", "valence", {"mse": 0.863, "pcc": 0.1, "ccc": 0.05}),
          ("baseline: predicting zero", "test", "valence",
           {"mse": 0.417, "pcc": float("nan"), "ccc": 0.0})]
  flags = [("final (m)", "test", "valence", "MSE 0.8630 vs 0.4170 (predicting zero)")]
  task = contract.Task(targets=("valence",))
  evaluate._write_ablation(tmp_path, rows, {"test": _Store(metadata)}, evaluate.ROW_KEYS, task,
                           flags)
  text = (tmp_path / "ablation.md").read_text()
  assert "| baseline: predicting zero | test | valence | 0.4170 | n/a | n/a | 0.0000 |" in text
  assert "- final (m), test valence: MSE 0.8630 vs 0.4170 (predicting zero)" in text
  assert "valence mse 0.0100" in text and "accuracy" not in text   # a regression run
  ctask = contract.Task(targets=("valence",), kind="classification", num_classes=3, unit="clip",
                        loss="softmax_ce", best_metric="accuracy")
  evaluate._write_ablation(tmp_path, [], {"test": _Store(metadata)}, evaluate.CLASS_ROW_KEYS,
                           ctask)
  text = (tmp_path / "ablation.md").read_text()
  assert "valence accuracy 0.9000" in text and "mse 0.0100" not in text


def test_sweep_tables_carry_the_baselines(tmp_path):
  records = [{"name": f"t{i}", "setting": f"lr={i}", "seed": 0, "overrides": {"lr": i},
              "metrics": {"validation/valence/pcc": 0.1 * i, "validation/valence/mse": 0.5,
                          "test/valence/pcc": 0.2, "test/valence/mse": 0.6,
                          "validation/valence/baseline_zero_mse": 0.4,
                          "validation/valence/baseline_train_mean_mse": 0.45,
                          "test/valence/baseline_zero_mse": 0.41,
                          "test/valence/baseline_train_mean_mse": 0.46}} for i in (1, 2)]
  sweep._write_results(tmp_path, records, "validation/valence/pcc", "max",
                       ["validation/valence/mse"])
  text = (tmp_path / "results.md").read_text()
  assert "| – | baseline: zero | – | n/a | 0.4000 |" in text
  assert "| – | baseline: train_mean | – | n/a | 0.4500 |" in text
  assert "| – | baseline: zero | – | n/a | 0.4100 |" in text   # the test table
  # MSE 0.5 is no better than predicting zero (0.4): marked; PCC has no constant to beat.
  assert "| 1 | lr=2 | 0 | 0.2000 | 0.5000 ✗ |" in text
  records[0]["metrics"]["validation/valence/mse"] = 0.3
  sweep._write_results(tmp_path, records, "validation/valence/pcc", "max",
                       ["validation/valence/mse"])
  text = (tmp_path / "results.md").read_text()
  assert "| 2 | lr=1 | 0 | 0.1000 | 0.3000 |" in text
  assert "| 1 | lr=2 | 0 | 0.2000 | 0.5000 ✗ |" in text
