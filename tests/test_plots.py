"""Tests of emojax.plots: the PNG is written and the figure shows what it should."""

import numpy as np
import pytest
from matplotlib import image

from emojax import plots
from emojax.errors import DataError


def _curves(T, with_true=True):
  rng = np.random.default_rng(T)
  def pair():
    return (rng.uniform(-1, 1, T) if with_true else None, rng.uniform(-1, 1, T))
  return {"arousal": pair(), "valence": pair()}


def test_plot_film_writes_png(tmp_path):
  path = tmp_path / "sub" / "film.png"
  out = plots.plot_film(path, np.arange(120), _curves(120), "film", metrics={
      "valence": {"mse": 0.1, "pcc": float("nan"), "ccc": 0.25}})
  assert out == path and path.exists()
  rgba = image.imread(path)
  assert rgba.ndim == 3 and rgba.shape[0] > 300 and rgba.shape[1] > 800
  assert rgba[..., :3].std() > 0.05  # Not a blank image.
  assert [p.name for p in path.parent.iterdir()] == ["film.png"]  # No temp file left behind.


def test_figure_panels_titles_and_axes():
  fig = plots.film_figure(np.arange(120), _curves(120), "my film", metrics={
      "valence": {"mse": 0.1234, "pcc": float("nan"), "ccc": 0.25}})
  axes = fig.axes
  assert [ax.get_ylabel() for ax in axes] == ["valence", "arousal"]
  assert axes[0].get_title(loc="left") == "valence    MSE 0.123   PCC n/a   CCC 0.250"
  assert axes[1].get_title(loc="left") == "arousal"
  assert fig.get_suptitle() == "my film"
  for ax in axes:
    assert ax.get_ylim() == pytest.approx((-1.05, 1.05))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true", "predicted"]
  assert axes[-1].get_xlabel() == "time (s)"


def test_long_film_uses_minutes_and_predict_mode():
  T = 3600
  fig = plots.film_figure(np.arange(T), _curves(T, with_true=False), "predict")
  ax = fig.axes[-1]
  assert ax.get_xlabel() == "time (min)"
  assert ax.get_xlim() == pytest.approx((0, (T - 1) / 60))
  for ax in fig.axes:
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["predicted"]
    np.testing.assert_allclose(ax.get_lines()[-1].get_xdata(), np.arange(T) / 60)


def test_plot_film_rejects_length_mismatch(tmp_path):
  with pytest.raises(DataError, match="valence predicted has 5 values but there are 6"):
    plots.plot_film(tmp_path / "x.png", np.arange(6), {"valence": (None, np.zeros(5))}, "x")
  assert not (tmp_path / "x.png").exists()
