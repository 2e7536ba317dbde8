"""Per-second linear (ridge) regression baseline on the same features as the other methods.

Each second's features (the target's modalities, concatenated and standardised with the training
statistics) are mapped linearly to that second's label; the ridge strength is chosen on the
validation split from `config.model.alphas`; the fit is closed form (no SGD), in float64.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from emojax import contract, layout, metrics


class LinearHead(nnx.Module):
  def __init__(self, in_features: int):
    self.mean = nnx.Param(jnp.zeros((in_features,), jnp.float32))
    self.scale = nnx.Param(jnp.ones((in_features,), jnp.float32))
    self.w = nnx.Param(jnp.zeros((in_features,), jnp.float32))
    self.b = nnx.Param(jnp.zeros((), jnp.float32))
    self.alpha = nnx.Param(jnp.zeros((), jnp.float32))


class Ridge(nnx.Module):
  def __init__(self, config: ml_collections.ConfigDict, dims: dict[str, int]):
    self.heads = nnx.Dict({t: LinearHead(sum(dims[m] for m in layout.streams(config, t)))
                           for t in config.targets})


def task(config: ml_collections.ConfigDict, targets=None) -> contract.Task:
  return layout.task(config, targets, loss="mse", unit="second")


def modalities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return layout.streams(config)


def create(config: ml_collections.ConfigDict, feature_dims: dict[str, int], rngs: nnx.Rngs) -> Ridge:
  del rngs
  return Ridge(config, feature_dims)


def _features(store, mods, i: int | None = None) -> np.ndarray:
  films = range(len(store.film_ids)) if i is None else [i]
  return np.concatenate([np.concatenate([store.streams[m][f] for m in mods], -1) for f in films])


def _fit(config, target: str):
  def fit(model: Ridge, train, validation) -> None:
    mods = layout.streams(config, target)
    x = _features(train, mods).astype(np.float64)
    y = np.concatenate(train.labels[target]).astype(np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-8
    z = (x - mean) / scale
    y_mean = y.mean()
    # Solve in the smaller of the primal / dual spaces; one eigendecomposition serves every alpha.
    gram = z.T @ z
    evals, evecs = np.linalg.eigh(gram)
    zty = evecs.T @ (z.T @ (y - y_mean))
    best = None
    for alpha in config.model.alphas:
      w = evecs @ (zty / (evals + alpha))
      if validation is not None:
        xv = (_features(validation, mods) - mean) / scale
        pred = np.clip(xv @ w + y_mean, -1, 1)
        score = metrics.mse(np.concatenate(validation.labels[target]), pred)
      else:
        score = 0.0
      if best is None or score < best[0]:
        best = (score, alpha, w)
    _, alpha, w = best
    head = model.heads[target]
    head.mean[...] = jnp.asarray(mean, jnp.float32)
    head.scale[...] = jnp.asarray(scale, jnp.float32)
    head.w[...] = jnp.asarray(w, jnp.float32)
    head.b[...] = jnp.asarray(y_mean, jnp.float32)
    head.alpha[...] = jnp.asarray(alpha, jnp.float32)
  return fit


def _forward(config, target: str, per_second: bool = False):
  """Per-clip (mean of the per-second predictions) or per-second forward."""
  mods = layout.streams(config, target)

  def forward(model: Ridge, batch: dict, rngs=None):
    del rngs
    head = model.heads[target]
    x = jnp.concatenate([batch["x"][m] for m in mods], -1)
    z = (x - head.mean[...]) / head.scale[...]
    y_BxLxS = jnp.clip(z @ head.w[...] + head.b[...], -1, 1)
    if per_second:
      return y_BxLxS
    mask = batch["x_mask"][mods[0]].astype(y_BxLxS.dtype)   # the window's valid seconds
    return (y_BxLxS * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1)
  return forward


_FORWARDS: dict = {}


def _cached_forward(config, target: str, per_second: bool):
  """One forward function per (target, modalities, resolution): jitted once per run."""
  key = (target, layout.streams(config, target), per_second)
  if key not in _FORWARDS:
    _FORWARDS[key] = _forward(config, target, per_second)
  return _FORWARDS[key]


def plan(config: ml_collections.ConfigDict, done: list[dict]):
  names = {r["name"] for r in done}
  for target in config.targets:
    name = f"{target}/ridge"
    if name not in names:
      return contract.Phase(name, task(config, (target,)), _cached_forward(config, target, False),
                            fit=_fit(config, target), info={"alphas": list(config.model.alphas)})
  return None


def outputs(config: ml_collections.ConfigDict) -> dict:
  """Per-second predictions (each second's features mapped linearly, clipped to [-1, 1])."""
  return {t: contract.Output(_cached_forward(config, t, True), task(config, (t,)),
                             window={"resolution": "second"}, key=f"{t}/ridge")
          for t in config.targets}
