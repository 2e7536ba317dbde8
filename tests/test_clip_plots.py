"""Per-clip plots: regression gets predicted-vs-true scatters, classification confusion matrices
with the classes by name (the dataset's, else low / medium / high)."""


import numpy as np
import pytest
from PIL import Image

from emojax import contract, input_pipeline, plots, reporting
from emojax.errors import DataError


def test_class_names_from_the_dataset_else_low_medium_high():
  md = {"class_names": {"arousal": ["calm", "neutral", "active"]}}
  assert reporting.class_names(md, "arousal", 3) == ["calm", "neutral", "active"]
  assert reporting.class_names(md, "valence", 3) == ["low", "medium", "high"]
  assert reporting.class_names(None, "valence", 2) == ["low", "high"]
  assert reporting.class_names(md, "arousal", 4) == ["class 0", "class 1", "class 2", "class 3"]


def test_scatter_draws_every_clip_at_its_true_and_predicted_value(tmp_path):
  true = np.array([-0.5, 0.0, 0.25, 0.9])
  pred = np.array([-0.4, 0.1, np.nan, 1.2])
  fig = plots.scatter_figure(true, pred, "valence")
  ax = fig.axes[0]
  points = ax.collections[0].get_offsets()
  np.testing.assert_allclose(points, [[-0.5, -0.4], [0.0, 0.1], [0.9, 1.2]])  # NaN left out
  assert ax.get_xlim() == ax.get_ylim() == (-1.0, 1.2)
  assert "3 clips" in [t.get_text() for t in ax.get_legend().get_texts()]
  with pytest.raises(DataError, match="2 true and 1 predicted"):
    plots.scatter_figure([0, 1], [0], "x")
  path = plots.plot_scatter(tmp_path / "s.png", true, pred, "valence")
  with Image.open(path) as im:
    assert im.format == "PNG"


def _store(labels, metadata=None):
  """A ClipStore holding labels and ids only (the report reads no features)."""
  n = len(next(iter(labels.values())))
  return input_pipeline.ClipStore(
      name="test", source=None, rows=np.arange(n), clip_ids=[f"c{i}" for i in range(n)],
      film_ids=[f"f{i % 2}" for i in range(n)], labels=labels, streams=(), shapes={},
      metadata=metadata or {})


def test_clip_report_draws_scatter_for_regression_and_named_confusion(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  true = rng.uniform(-1, 1, 12)
  pred = true * 0.5
  task = contract.Task(("valence", "arousal"), unit="clip")
  _store({"valence": true, "arousal": -true}).write_report(
      tmp_path / "reg", task, {"valence": pred, "arousal": pred})
  for t in ("valence", "arousal"):
    with Image.open(tmp_path / "reg" / "plots" / f"scatter_{t}.png") as im:
      assert im.format == "PNG"

  drawn = {}
  real = plots.confusion_figure

  def spy(matrix, names, title, where="plot"):
    drawn[title.split(":")[0]] = (list(names), np.asarray(matrix))
    return real(matrix, names, title, where)
  monkeypatch.setattr(plots, "confusion_figure", spy)
  labels = np.array([0, 1, 2, 2, 1, 0])
  logits = np.eye(3)[[0, 1, 1, 2, 1, 2]]
  task = contract.Task(("valence", "arousal"), kind="classification", num_classes=3,
                       loss="softmax_ce", unit="clip", best_metric="accuracy")
  md = {"class_names": {"arousal": ["calm", "neutral", "active"]}}
  _store({"valence_class": labels, "arousal_class": labels}, md).write_report(
      tmp_path / "cls", task, {"valence": logits, "arousal": logits})
  assert drawn["valence"][0] == ["low", "medium", "high"]
  assert drawn["arousal"][0] == ["calm", "neutral", "active"]
  np.testing.assert_array_equal(drawn["valence"][1], [[1, 0, 1], [0, 2, 0], [0, 1, 1]])
  assert (tmp_path / "cls" / "plots" / "confusion_arousal.png").exists()
