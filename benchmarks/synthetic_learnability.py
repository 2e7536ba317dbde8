"""How learnable is the synthetic benchmark? Non-neural proxies against its ceiling (numpy only).

  python benchmarks/synthetic_learnability.py [default|small]

For valence (audio+scene+expression) and arousal (audio+scene+action), on the test films, pooled
over all seconds against the noisy labels:
  ceiling          the noiseless labels (what the dataset metadata records)
  ridge/second     closed-form ridge from one second's features to that second's label
  ridge/clip       ridge from a 10 s clip's mean features to the clip's mean label, repeated over
                   the clip's seconds (what a clip model sees, minus the nonlinearity)
  ridge/clip+ctx   the same with the clip means of the 2 clips before and after concatenated
                   (valence: a few neighbouring clips, as the inter-clip biLSTM sees)
  ridge/clip+ema   ridge/clip followed by the arousal EMA over clips (beta = 0.97)
  per modality     ridge/clip on one modality alone (the stage-1 ranking)
The ridge penalty of each row is chosen by MSE on the validation films. Generates the films on the
fly (no TFDS), streaming, so memory stays at a few hundred MB for the default config.
"""

import sys
import time

import numpy as np

from emojax.datasets import synthetic_benchmark as sb

MODALITIES_OF = {"valence": ("audio", "scene", "expression"),
                 "arousal": ("audio", "scene", "action")}
CLIP = 10
LAMBDAS = np.logspace(-2, 5, 15)


def clip_means(x_T: np.ndarray) -> np.ndarray:
  """(T, ...) -> (ceil(T / CLIP), ...) means over non-overlapping clips (last one partial)."""
  n = -(-len(x_T) // CLIP)
  starts = np.arange(n) * CLIP
  sums = np.add.reduceat(np.asarray(x_T, np.float64), starts, axis=0)
  counts = np.minimum(CLIP, len(x_T) - starts)
  return sums / counts.reshape((-1,) + (1,) * (sums.ndim - 1))


def with_context(x_NxD: np.ndarray, k: int) -> np.ndarray:
  """Concatenates clips i-k..i+k (edges repeated)."""
  n = len(x_NxD)
  idx = np.clip(np.arange(n)[:, None] + np.arange(-k, k + 1)[None], 0, n - 1)
  return x_NxD[idx].reshape(n, -1)


def ema(y_N: np.ndarray, beta: float) -> np.ndarray:
  out = np.empty_like(y_N)
  acc = y_N[0]
  for i, y in enumerate(y_N):
    acc = beta * acc + (1 - beta) * y
    out[i] = acc
  return out


def pcc_mse(pred, true):
  pred, true = np.concatenate(pred), np.concatenate(true)
  return float(np.corrcoef(pred, true)[0, 1]), float(np.mean((pred - true) ** 2))


class Ridge:
  """Closed-form ridge with intercept from X^T X statistics, all penalties at once."""

  def __init__(self, dim: int):
    self.xtx = np.zeros((dim, dim))
    self.xty = np.zeros(dim)
    self.sx = np.zeros(dim)
    self.sy = 0.0
    self.n = 0

  def add(self, x_NxD, y_N):
    x_NxD = np.asarray(x_NxD, np.float64)
    self.xtx += x_NxD.T @ x_NxD
    self.xty += x_NxD.T @ y_N
    self.sx += x_NxD.sum(0)
    self.sy += y_N.sum()
    self.n += len(y_N)

  def solve(self):
    mx, my = self.sx / self.n, self.sy / self.n
    c = self.xtx - self.n * np.outer(mx, mx)
    b = self.xty - self.n * mx * my
    scale = np.trace(c) / len(c)  # Penalties relative to the mean feature variance x n.
    evals, evecs = np.linalg.eigh(c)
    proj = evecs.T @ b
    self.weights = [(evecs @ (proj / (evals + lam * scale)), mx, my) for lam in LAMBDAS]

  def predict(self, x_NxD):
    x_NxD = np.asarray(x_NxD, np.float64)
    return [(x_NxD - mx) @ w + my for w, mx, my in self.weights]


def dual_ridge(x_NxD: np.ndarray, y_N: np.ndarray):
  """Ridge with intercept through the N x N kernel (for N << D), all penalties at once."""
  mx, my = x_NxD.mean(0), y_N.mean()
  xc_NxD = x_NxD - mx
  k_NxN = (xc_NxD @ xc_NxD.T).astype(np.float64)
  scale = np.trace(k_NxN) / x_NxD.shape[1]
  evals, evecs = np.linalg.eigh(k_NxN)
  proj = evecs.T @ (y_N - my)
  return [((xc_NxD.T @ (evecs @ (proj / (evals + lam * scale)))).astype(np.float32), mx, my)
          for lam in LAMBDAS]


def main(name: str = "default"):
  cfg = {c.name: c for c in sb.SyntheticBenchmark.BUILDER_CONFIGS}[name]
  t0 = time.time()
  lengths = sb.film_lengths(cfg)
  maps = sb.modality_maps(cfg)
  splits = cfg.split_films()
  films = {}  # index -> clip means and labels (small); per-second features are regenerated.

  def film(i, keep_seconds=False):
    f = sb.generate_film(cfg, i, lengths[i], maps)
    out = {k: clip_means(f[k]) for k in sb.MODALITIES}
    out.update({t: f[t].astype(np.float64) for t in sb.TARGETS})
    out.update({f"{t}_clean": f[f"{t}_clean"] for t in sb.TARGETS})
    if keep_seconds:
      out["seconds"] = f
    return out

  # Per-second ridge: stream the training films into X^T X.
  sec = {t: Ridge(sum(cfg.dims[m] for m in MODALITIES_OF[t])) for t in sb.TARGETS}
  for i in splits["train"]:
    f = film(i, keep_seconds=True)
    for t in sb.TARGETS:
      sec[t].add(np.concatenate([f["seconds"][m] for m in MODALITIES_OF[t]], -1), f[t])
    del f["seconds"]
    films[i] = f
  for r in sec.values():
    r.solve()
  sec_pred = {t: {} for t in sb.TARGETS}
  for i in splits["validation"] + splits["test"]:
    f = film(i, keep_seconds=True)
    for t in sb.TARGETS:
      x = np.concatenate([f["seconds"][m] for m in MODALITIES_OF[t]], -1)
      sec_pred[t][i] = sec[t].predict(x)
    del f["seconds"]
    films[i] = f
  gen_s = time.time() - t0

  def pick(preds_by_film, target, split_val="validation", split_test="test", post=None):
    """Chooses the penalty on validation MSE; returns test (pcc, mse)."""
    def score(split, j):
      p = [preds_by_film[i][j] for i in splits[split]]
      if post:
        p = [post(x) for x in p]
      p = [np.repeat(x, CLIP)[:len(films[i][target])] if len(x) < len(films[i][target]) else x
           for x, i in zip(p, splits[split])]
      return pcc_mse(p, [films[i][target] for i in splits[split]])
    best = min(range(len(LAMBDAS)), key=lambda j: score(split_val, j)[1])
    return score(split_test, best)

  def clip_ridge(target, modalities, k):
    feats = {i: with_context(np.concatenate([films[i][m] for m in modalities], -1), k)
             .astype(np.float32) for i in films}
    weights = dual_ridge(np.concatenate([feats[i] for i in splits["train"]]),
                         np.concatenate([clip_means(films[i][target]) for i in splits["train"]]))
    return {i: [(feats[i] - mx) @ w + my for w, mx, my in weights]
            for i in splits["validation"] + splits["test"]}

  rows = []
  for t in sb.TARGETS:
    test = splits["test"]
    ceil = pcc_mse([films[i][f"{t}_clean"] for i in test], [films[i][t] for i in test])
    rows.append((t, "ceiling (noiseless labels)", ceil))
    rows.append((t, "ridge/second", pick(sec_pred[t], t)))
    pc = clip_ridge(t, MODALITIES_OF[t], 0)
    rows.append((t, "ridge/clip", pick(pc, t)))
    rows.append((t, "ridge/clip+ctx (+-2 clips)", pick(clip_ridge(t, MODALITIES_OF[t], 2), t)))
    if t == "arousal":
      rows.append((t, "ridge/clip+ema(0.97)", pick(pc, t, post=lambda x: ema(x, 0.97))))
    for m in MODALITIES_OF[t]:
      rows.append((t, f"ridge/clip {m} only", pick(clip_ridge(t, (m,), 0), t)))
  print(f"config {name}: {len(lengths)} films, {sum(lengths)} s; generated + fitted in "
        f"{time.time() - t0:.1f} s (generation + per-second ridge {gen_s:.1f} s)")
  print("| target | predictor | test PCC | test MSE | PCC / ceiling |")
  print("|---|---|---|---|---|")
  for t, what, (pcc, mse) in rows:
    c = [r for r in rows if r[0] == t][0][2][0]
    print(f"| {t} | {what} | {pcc:.3f} | {mse:.4f} | {pcc / c:.2f} |")


if __name__ == "__main__":
  main(*sys.argv[1:])
