"""Curve plots of true vs predicted valence/arousal per film (matplotlib Agg, no display).

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly (no pyplot), so
plotting needs no display, keeps no global figure state and is safe from threads. matplotlib is
imported at the first figure (`_figure`), not with this module: a run with `config.eval.plots =
False` never loads it (~0.5 s of CPU per process).
"""

import io
import math
import os
import pathlib
from collections.abc import Mapping

import numpy as np

from emojax import fileio
from emojax.errors import DataError
from emojax.metrics import ordered_dims

# Films longer than this are drawn with a minutes axis.
MINUTES_ABOVE_SECONDS = 600
_TOP_IN, _BOTTOM_IN, _PANEL_IN, _GAP_IN = 0.65, 0.55, 2.2, 0.4
_METRIC_LABELS = (("mse", "MSE"), ("pcc", "PCC"), ("ccc", "CCC"))


def _figure(figsize: tuple[float, float]):
  """A matplotlib Figure on its own Agg canvas."""
  # pylint: disable=import-outside-toplevel  (matplotlib only where a plot is drawn)
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=figsize, dpi=100)
  FigureCanvasAgg(fig)
  return fig


def _fmt(v) -> str:
  return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def plot_film(path: str | os.PathLike, seconds_T, curves: Mapping[str, tuple],
              title: str, metrics: Mapping[str, Mapping] | None = None) -> pathlib.Path:
  """Writes a PNG with one panel per dimension: true vs predicted over time.

  Args:
    path: the PNG to write (atomically; parent folders are created).
    seconds_T, curves, title, metrics: as in `film_figure`.
  """
  fig = film_figure(seconds_T, curves, title, metrics, where=str(path))
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  return fileio.atomic_write_bytes(path, buf.getvalue())


def film_figure(seconds_T, curves: Mapping[str, tuple], title: str,
                metrics: Mapping[str, Mapping] | None = None,
                where: str = "plot") -> "matplotlib.figure.Figure":
  """Builds the figure of `plot_film` (one panel per dimension).

  Args:
    seconds_T: (T,) time of each value in seconds.
    curves: dim -> (true_T or None, pred_T); None (predict mode) draws the prediction only.
      Panels are ordered valence, arousal, then other dims.
    title: figure title (e.g. the film id).
    metrics: optional dim -> {mse, pcc, ccc, ...}; shown in that dim's panel title.
    where: names the output in error messages.
  """
  if not curves:
    raise DataError(f"{where}: no curves to draw.")
  sec_T = np.asarray(seconds_T, dtype=np.float64).reshape(-1)
  in_minutes = sec_T.size > 0 and sec_T.max() - sec_T.min() > MINUTES_ABOVE_SECONDS
  x_T = sec_T / 60.0 if in_minutes else sec_T
  dims = ordered_dims(curves)
  # Fixed margins in inches (constrained layout doubles the cost of a plot on a busy CPU).
  n = len(dims)
  height = _TOP_IN + _BOTTOM_IN + n * _PANEL_IN + (n - 1) * _GAP_IN
  fig = _figure((11, height))
  fig.subplots_adjust(left=0.07, right=0.985, top=1 - _TOP_IN / height, bottom=_BOTTOM_IN / height,
                      hspace=_GAP_IN / _PANEL_IN)
  axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
  for ax, dim in zip(axes, dims):
    true_T, pred_T = curves[dim]
    for name, y in (("true", true_T), ("predicted", pred_T)):
      if y is not None and np.asarray(y).reshape(-1).shape != sec_T.shape:
        raise DataError(f"{where}: {dim} {name} has {np.asarray(y).size} values "
                        f"but there are {sec_T.size} seconds.")
    ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
    if true_T is not None:
      ax.plot(x_T, np.asarray(true_T).reshape(-1), color="black", linewidth=1.5, label="true",
              zorder=3)
    ax.plot(x_T, np.asarray(pred_T).reshape(-1), color="tab:red" if dim == "arousal" else
            "tab:blue", linewidth=1.1, alpha=0.85, label="predicted", zorder=2)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel(dim)
    ax.grid(True, alpha=0.3)
    # Above the panel, right of its left-aligned title: never hides a curve.
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False,
              borderaxespad=0.1)
    panel = dim
    if metrics and dim in metrics:
      m = metrics[dim]
      panel += "    " + "   ".join(f"{lab} {_fmt(m.get(key))}" for key, lab in _METRIC_LABELS
                                   if key in m)
    ax.set_title(panel, fontsize=10, loc="left")
  if x_T.size and x_T.max() > x_T.min():
    axes[-1].set_xlim(x_T.min(), x_T.max())
  axes[-1].set_xlabel("time (min)" if in_minutes else "time (s)")
  fig.suptitle(title, fontsize=11)
  return fig


def plot_confusion(path: str | os.PathLike, matrix, class_names, title: str) -> pathlib.Path:
  """Writes a PNG of a confusion matrix: rows true class, columns predicted class.

  Each cell shows its count and its share of the row (the recall of the row's class on the
  diagonal); the colour is that share, so classes of different sizes read alike.

  Args:
    path: the PNG to write (atomically; parent folders are created).
    matrix: (C, C) counts, matrix[i, j] = clips of true class i predicted as j.
    class_names: C names, in class order.
    title: figure title (e.g. "arousal, test: accuracy 0.542").
  """
  fig = confusion_figure(matrix, class_names, title, where=str(path))
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  return fileio.atomic_write_bytes(path, buf.getvalue())


def confusion_figure(matrix, class_names, title: str,
                     where: str = "plot") -> "matplotlib.figure.Figure":
  """Builds the figure of `plot_confusion`."""
  m_CxC = np.asarray(matrix)
  names = [str(n) for n in class_names]
  if m_CxC.ndim != 2 or m_CxC.shape[0] != m_CxC.shape[1] or m_CxC.shape[0] == 0:
    raise DataError(f"{where}: a confusion matrix must be square and non-empty, got shape "
                    f"{m_CxC.shape}.")
  if len(names) != m_CxC.shape[0]:
    raise DataError(f"{where}: {len(names)} class names for a {m_CxC.shape[0]}-class matrix.")
  m_CxC = m_CxC.astype(np.float64)
  if not np.all(np.isfinite(m_CxC)) or np.any(m_CxC < 0):
    raise DataError(f"{where}: confusion counts must be finite and >= 0.")
  rows_C = m_CxC.sum(axis=1, keepdims=True)
  share_CxC = np.divide(m_CxC, rows_C, out=np.zeros_like(m_CxC), where=rows_C > 0)
  c = len(names)
  side = 1.2 + 0.9 * c
  fig = _figure((side + 1.2, side))
  ax = fig.add_subplot(1, 1, 1)
  image = ax.imshow(share_CxC, cmap="Blues", vmin=0.0, vmax=1.0)
  fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
  for i in range(c):
    for j in range(c):
      count = int(m_CxC[i, j]) if m_CxC[i, j] == round(m_CxC[i, j]) else m_CxC[i, j]
      ax.text(j, i, f"{count}\n{100 * share_CxC[i, j]:.0f}%", ha="center", va="center",
              fontsize=9, color="white" if share_CxC[i, j] > 0.6 else "black")
  ax.set_xticks(range(c), names)
  ax.set_yticks(range(c), names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(title, fontsize=10)
  fig.subplots_adjust(left=0.22, right=0.95, bottom=0.18, top=0.9)
  return fig


def plot_scatter(path: str | os.PathLike, true_N, pred_N, title: str,
                 label: str = "") -> pathlib.Path:
  """Writes a PNG of predicted against true values (per-clip regression), with the y = x line."""
  fig = scatter_figure(true_N, pred_N, title, label, where=str(path))
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  return fileio.atomic_write_bytes(path, buf.getvalue())


def scatter_figure(true_N, pred_N, title: str, label: str = "",
                   where: str = "plot") -> "matplotlib.figure.Figure":
  """Builds the figure of `plot_scatter`: one point per clip, the identity line, both axes on
  the range of the values (at least [-1, 1])."""
  t = np.asarray(true_N, np.float64).reshape(-1)
  p = np.asarray(pred_N, np.float64).reshape(-1)
  if t.shape != p.shape or t.size == 0:
    raise DataError(f"{where}: {t.size} true and {p.size} predicted values; a scatter needs the "
                    "same non-zero number of each.")
  fig = _figure((5.2, 5.0))
  ax = fig.add_subplot(1, 1, 1)
  ok = np.isfinite(t) & np.isfinite(p)
  lo = min(-1.0, float(np.min(t[ok], initial=0)), float(np.min(p[ok], initial=0)))
  hi = max(1.0, float(np.max(t[ok], initial=0)), float(np.max(p[ok], initial=0)))
  ax.plot([lo, hi], [lo, hi], color="0.6", linewidth=1.0, zorder=1, label="predicted = true")
  ax.scatter(t[ok], p[ok], s=10, alpha=min(1.0, max(0.15, 30.0 / max(ok.sum(), 1) ** 0.5)),
             color="tab:blue", zorder=2, label=f"{int(ok.sum())} clips")
  ax.set_xlim(lo, hi)
  ax.set_ylim(lo, hi)
  ax.set_aspect("equal")
  ax.set_xlabel(f"true {label}".strip())
  ax.set_ylabel(f"predicted {label}".strip())
  ax.grid(True, alpha=0.3)
  ax.legend(loc="upper left", fontsize=8, frameon=False)
  ax.set_title(title, fontsize=10)
  fig.subplots_adjust(left=0.14, right=0.97, bottom=0.11, top=0.92)
  return fig
