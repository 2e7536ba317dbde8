"""`visual_stats`: cheap per-second picture statistics (lighting, colour, edges, motion, cuts).

Sampled frames. At `fps` target times per second, s + (k + 0.5) / fps, the frame on screen (by
timestamp) and the frame after it (a consecutive pair) are scaled to `width` x `height` RGB
(swscale 'area' averaging: the right filter for an 8x reduction, and the cheapest). From each pair (stats averaged over the second's samples):
  brightness     mean luma Y' = 0.299 R + 0.587 G + 0.114 B, in [0, 1]
  contrast       std of luma
  saturation     mean HSV saturation (max - min) / max
  colourfulness  Hasler & Suesstrunk (2003): sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2),
                 rg = R - G, yb = (R + G) / 2 - B, on [0, 1] values
  edge_density   fraction of pixels whose luma gradient (central differences) exceeds
                 `edge_threshold` (0.1: a 20% step across two pixels)
  motion_energy  mean |luma(next) - luma(frame)|
  flow_mean, flow_std, flow_p90, flow_global
                 optical flow by block Lucas-Kanade (one scale, no iterations): for each
                 `block` x `block` block, the least-squares (u, v) solving Ix u + Iy v + It = 0
                 on the 3x3-box-smoothed luma pair; blocks with too little texture (smallest
                 eigenvalue of the structure tensor < 1e-4 per pixel) count as still. Magnitudes
                 in frame widths per second (|(u, v)| / width / (t_next - t)); `flow_global` is
                 the norm of the mean vector (camera pan), the others are over blocks. Valid for
                 motions under about a pixel per frame at the analysis size (~8 px at 720p);
                 faster motion is underestimated, motion_energy still grows with it.
  hue_hist       `hue_bins` bins of HSV hue weighted by saturation, summing to 1 (0 if grey)
Every frame (all of them, not only sampled ones), on a luma thumbnail taken by subsampling the
decoded plane (near free):
  frame_diff     mean |luma difference| of consecutive frames over the second
  cuts           number of shot cuts that start in the second: consecutive frames whose
                 32-bin luma histograms differ by more than `cut_threshold` in half-L1 distance
  cut_score      the largest such distance in the second
Row: the 16 scalars in the order of `SCALARS`, then the hue histogram.
"""

from __future__ import annotations

import collections

import numpy as np

from emojax.features import decode
from emojax.features import registry

SCALARS = ("brightness", "contrast", "saturation", "colourfulness", "edge_density",
           "motion_energy", "flow_mean", "flow_std", "flow_p90", "flow_global",
           "frame_diff", "cuts", "cut_score")
THUMB_WIDTH = 80  # target width of the every-frame luma thumbnail
LUMA_BINS = 32


def luma(rgb_HxWx3: np.ndarray) -> np.ndarray:
  return rgb_HxWx3 @ np.array([0.299, 0.587, 0.114], np.float32)


def picture_stats(rgb_HxWx3: np.ndarray, hue_bins: int, edge_threshold: float) -> np.ndarray:
  """brightness, contrast, saturation, colourfulness, edge density, then the hue histogram."""
  x = rgb_HxWx3.astype(np.float32) * (1.0 / 255.0)
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  y = luma(x)
  mx, mn = x.max(axis=-1), x.min(axis=-1)
  sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-12), 0.0)
  rg, yb = r - g, 0.5 * (r + g) - b
  colourfulness = (np.sqrt(rg.std() ** 2 + yb.std() ** 2)
                   + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
  gx = np.zeros_like(y)
  gy = np.zeros_like(y)
  gx[:, 1:-1] = 0.5 * (y[:, 2:] - y[:, :-2])
  gy[1:-1, :] = 0.5 * (y[2:, :] - y[:-2, :])
  edges = np.mean(gx * gx + gy * gy > edge_threshold * edge_threshold)
  # HSV hue in [0, 1), only where there is colour (grey pixels carry no hue weight).
  delta = (mx - mn).ravel()
  colour = np.flatnonzero(delta > 0)
  hist = np.zeros(hue_bins)
  if colour.size:
    rr, gg, bb = r.ravel()[colour], g.ravel()[colour], b.ravel()[colour]
    m, d = mx.ravel()[colour], delta[colour]
    h = np.where(m == rr, ((gg - bb) / d) % 6.0,
                 np.where(m == gg, (bb - rr) / d + 2.0, (rr - gg) / d + 4.0)) / 6.0
    idx = np.minimum((h * hue_bins).astype(np.int64), hue_bins - 1)
    hist = np.bincount(idx, weights=sat.ravel()[colour], minlength=hue_bins)
  total = hist.sum()
  hist = hist / total if total > 0 else hist
  return np.concatenate([[y.mean(), y.std(), sat.mean(), colourfulness, edges], hist])


def _box3(a: np.ndarray) -> np.ndarray:
  p = np.pad(a, 1, mode="edge")
  h = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
  return (h[:-2] + h[1:-1] + h[2:]) * (1.0 / 9.0)


def block_flow(y0_HxW: np.ndarray, y1_HxW: np.ndarray, block: int) -> np.ndarray:
  """(blocks, 2) Lucas-Kanade flow (u, v) in pixels per frame, one vector per block."""
  a, b = _box3(y0_HxW), _box3(y1_HxW)
  m = 0.5 * (a + b)
  ix = np.zeros_like(m)
  iy = np.zeros_like(m)
  ix[:, 1:-1] = 0.5 * (m[:, 2:] - m[:, :-2])
  iy[1:-1, :] = 0.5 * (m[2:, :] - m[:-2, :])
  it = b - a
  hb, wb = m.shape[0] // block, m.shape[1] // block

  def bsum(z):
    return z[:hb * block, :wb * block].reshape(hb, block, wb, block).sum(axis=(1, 3)).ravel()

  sxx, syy, sxy = bsum(ix * ix), bsum(iy * iy), bsum(ix * iy)
  sxt, syt = bsum(ix * it), bsum(iy * it)
  det = sxx * syy - sxy * sxy
  trace = sxx + syy
  min_eig = 0.5 * (trace - np.sqrt(np.maximum(trace * trace - 4 * det, 0.0)))
  ok = min_eig > 1e-4 * block * block
  safe = np.where(ok, det, 1.0)
  u = np.where(ok, (-syy * sxt + sxy * syt) / safe, 0.0)
  v = np.where(ok, (sxy * sxt - sxx * syt) / safe, 0.0)
  return np.stack([u, v], axis=1)


@registry.register
class VisualStats(registry.Extractor):
  """(13 + hue_bins,) picture statistics per second."""

  name = "visual_stats"
  version = 1
  modality = "video"
  defaults = {"fps": 1.0, "width": 160, "height": 90, "hue_bins": 12, "edge_threshold": 0.1,
              "flow_block": 10, "cut_threshold": 0.4}

  def row_shape(self) -> tuple[int, ...]:
    return (len(SCALARS) + int(self.params["hue_bins"]),)

  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    fps = float(self.params["fps"])
    self.per_second = max(1, int(round(fps)))
    n = num_seconds * self.per_second
    self.sampler = decode.TimestampSampler((np.arange(n) + 0.5) / self.per_second, pairs=True)
    self.samples = collections.defaultdict(list)  # second -> list of sample stat vectors
    self.frame_diffs = collections.defaultdict(list)
    self.cut_scores = collections.defaultdict(list)
    self.prev_thumb = None
    self.prev_hist = None
    self.step = None

  def _sample(self, i: int, f0, f1) -> None:
    w, h = int(self.params["width"]), int(self.params["height"])
    rgb0 = f0.rgb(w, h, "AREA")
    pic = picture_stats(rgb0, int(self.params["hue_bins"]), float(self.params["edge_threshold"]))
    if f1 is f0:
      motion, flow_stats = 0.0, np.zeros(4)
    else:
      y0 = luma(rgb0.astype(np.float32) * (1.0 / 255.0))
      y1 = luma(f1.rgb(w, h, "AREA").astype(np.float32) * (1.0 / 255.0))
      motion = float(np.mean(np.abs(y1 - y0)))
      dt = max(f1.t - f0.t, 1e-3)
      uv = block_flow(y0, y1, int(self.params["flow_block"])) / (w * dt)
      mag = np.hypot(uv[:, 0], uv[:, 1])
      flow_stats = np.array([mag.mean(), mag.std(), np.percentile(mag, 90),
                             np.hypot(*uv.mean(axis=0))])
    self.samples[i // self.per_second].append((pic, motion, flow_stats))

  def frame(self, f) -> None:
    for i, f0, f1 in self.sampler.push(f):
      self._sample(i, f0, f1)
    if f.second >= self.num_seconds:
      return
    if self.step is None:
      self.step = max(1, f.av_frame.width // THUMB_WIDTH)
    # Runs on every decoded frame: integer sums (exact, and cheaper than np.mean's float path).
    thumb = f.luma_thumb(self.step)
    thumb16 = thumb.astype(np.int16)
    hist = np.bincount((thumb >> 3).ravel(), minlength=LUMA_BINS) / thumb.size
    if self.prev_thumb is not None and self.prev_thumb.shape == thumb.shape:
      self.frame_diffs[f.second].append(
          int(np.abs(thumb16 - self.prev_thumb).sum()) / (thumb.size * 255.0))
      self.cut_scores[f.second].append(0.5 * np.abs(hist - self.prev_hist).sum())
    self.prev_thumb, self.prev_hist = thumb16, hist

  def end_second(self, s: int) -> list[np.ndarray]:
    if s == self.num_seconds - 1:
      for i, f0, f1 in self.sampler.flush():
        self._sample(i, f0, f1)
    samples = self.samples.pop(s)
    pic = np.mean([p for p, _, _ in samples], axis=0)
    motion = np.mean([m for _, m, _ in samples])
    flow = np.mean([fl for _, _, fl in samples], axis=0)
    diffs = self.frame_diffs.pop(s, [])
    scores = np.asarray(self.cut_scores.pop(s, []))
    cuts = float(np.sum(scores > float(self.params["cut_threshold"])))
    scalars = np.concatenate([pic[:5], [motion], flow,
                              [np.mean(diffs) if diffs else 0.0, cuts,
                               scores.max() if scores.size else 0.0]])
    return [np.concatenate([scalars, pic[5:]]).astype(np.float32)]
