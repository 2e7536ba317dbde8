"""Per-clip classification outputs: the prediction CSV and the confusion-matrix plot."""

import csv

import numpy as np
import pytest
from PIL import Image

from emojax import plots, reporting
from emojax.errors import DataError


def test_write_clip_predictions_columns_and_values(tmp_path):
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(3), size=4).astype(np.float32)
  dims = {"arousal": (np.array([0, 2, 1, 1]), probs.argmax(1), probs),
          "valence": (None, np.array([2, 2, 0, 1]), np.eye(3)[[2, 2, 0, 1]])}
  path = reporting.write_clip_predictions(tmp_path / "p" / "clips.csv",
                                          [b"film_0_clip_0", "a,b", "c\"d", "x"], dims)
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["clip", "valence_pred", "valence_p0", "valence_p1", "valence_p2",
                     "arousal_true", "arousal_pred", "arousal_p0", "arousal_p1", "arousal_p2"]
  assert [r[0] for r in rows[1:]] == ["film_0_clip_0", "a,b", "c\"d", "x"]
  got = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
  np.testing.assert_array_equal(got[:, 0], [2, 2, 0, 1])
  np.testing.assert_array_equal(got[:, 1:4], np.eye(3)[[2, 2, 0, 1]])
  np.testing.assert_array_equal(got[:, 4], [0, 2, 1, 1])
  np.testing.assert_array_equal(got[:, 5], probs.argmax(1))
  # float32 probabilities read back exactly.
  np.testing.assert_array_equal(got[:, 6:].astype(np.float32), probs)


@pytest.mark.parametrize("dims, match", [
    ({"arousal": ([0, 3], [0, 1], np.full((2, 3), 1 / 3))}, r"arousal_true holds 3"),
    ({"arousal": ([0, 1], [0, 1.5], np.full((2, 3), 1 / 3))}, r"arousal_pred holds 1.5"),
    ({"arousal": ([0, 1], [0], np.full((2, 3), 1 / 3))}, r"arousal_pred has 1 values for 2"),
    ({"arousal": ([0, 1], [0, 1], np.full((3, 3), 1 / 3))}, r"shape \(3, 3\)"),
    ({"arousal": ([0, 1], [0, 1], [[np.nan, 0, 1], [0, 0, 1]])}, r"NaN/Inf"),
    ({}, r"no dimensions"),
])
def test_write_clip_predictions_rejects_bad_input(tmp_path, dims, match):
  with pytest.raises(DataError, match=match):
    reporting.write_clip_predictions(tmp_path / "c.csv", ["a", "b"], dims)
  assert not (tmp_path / "c.csv").exists()


def test_plot_confusion_png_and_cells(tmp_path):
  m = np.array([[5, 1, 0], [2, 2, 2], [0, 0, 0]])
  path = plots.plot_confusion(tmp_path / "plots" / "cm.png", m, ("calm", "neutral", "active"),
                              "arousal, test")
  with Image.open(path) as im:
    assert im.format == "PNG" and im.size[0] > 100
  fig = plots.confusion_figure(m, ("calm", "neutral", "active"), "t")
  ax = fig.axes[0]
  texts = [t.get_text() for t in ax.texts]
  # Row shares: 5/6, 1/6, 0; 1/3 each; an empty row stays 0.
  assert texts[:3] == ["5\n83%", "1\n17%", "0\n0%"]
  assert texts[3:6] == ["2\n33%"] * 3 and texts[6:] == ["0\n0%"] * 3
  np.testing.assert_allclose(ax.images[0].get_array(), m / np.maximum(m.sum(1, keepdims=True), 1))
  assert [t.get_text() for t in ax.get_xticklabels()] == ["calm", "neutral", "active"]
  with pytest.raises(DataError, match="square"):
    plots.confusion_figure(np.zeros((2, 3)), ("a", "b"), "t")
  with pytest.raises(DataError, match="2 class names for a 3-class"):
    plots.confusion_figure(np.zeros((3, 3)), ("a", "b"), "t")
  with pytest.raises(DataError, match=">= 0"):
    plots.confusion_figure(-np.ones((2, 2)), ("a", "b"), "t")
