"""synthetic_benchmark: per-second films with a known ceiling, generated from a seed.

A learnability benchmark, not a claim about real films (docs/synthetic_benchmark.md has the
equations). Each film has latent valence / arousal in [-1, 1] built from scene segments, slow drift
and occasional jumps; each modality's per-second feature vector is a fixed random nonlinear map of a
lagged window of the latents, distractor factors and per-second noise; labels are the latents seen
through annotator inertia plus noise. The ceiling (noiseless labels against the noisy test labels)
is stored in the DatasetInfo metadata.

The numpy functions at the top (`film_lengths`, `generate_latents`, `annotate`, `modality_maps`,
`generate_features`, `generate_film`, `ceiling`) are the whole generator; the TFDS builder at the
bottom only writes their output. Usage:

  builder = SyntheticBenchmark(config="default", data_dir=d, file_format="array_record")
  builder.download_and_prepare()
  train = builder.as_data_source()["train"]
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from scipy import signal
import tensorflow_datasets as tfds

from emojax import errors

TARGETS = ("valence", "arousal")
MODALITIES = ("audio", "scene", "expression", "action")
SPLITS = ("train", "validation", "test")

# Independent random streams: np.random.default_rng([seed, stream, index...]), so that no film
# depends on how many films there are or on another film's length.
_LENGTH_STREAM, _LATENT_STREAM, _LABEL_STREAM, _MAP_STREAM, _FEATURE_STREAM = range(5)


@dataclasses.dataclass(frozen=True)
class Carrier:
  """How one modality carries one latent dimension."""
  lag_lo: int  # Window of latent seconds t - lag for lag in [lag_lo, lag_hi] (negative = future).
  lag_hi: int
  jitter: float  # Std of the white per-second noise added to the window mean.


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
  """Every number of the generator (defaults = the `default` and `small` configs)."""
  # Latents: z = film mean + scene segment level + slow drift; latent = tanh(z).
  seg_min_s: float = 8.0  # Scene segments last seg_min_s + Exponential(seg_mean_s - seg_min_s).
  seg_mean_s: float = 45.0
  transition_tau_s: float = 2.0  # First-order smoothing of the segment steps.
  jump_prob: float = 0.08  # Chance that a segment starts with a jump (shared by both dims).
  film_std: tuple[float, float] = (0.3, 0.35)  # (valence, arousal), in z units.
  seg_std: tuple[float, float] = (0.45, 0.2)
  seg_rho: tuple[float, float] = (0.5, 0.7)  # AR(1) of the level from one segment to the next.
  jump_std: tuple[float, float] = (1.0, 0.8)  # Arousal jumps are upward (|N|), valence either way.
  drift_std: tuple[float, float] = (0.2, 0.3)
  drift_tau_s: tuple[float, float] = (120.0, 300.0)
  # Labels: first-order annotator inertia, then AR(1) noise, clipped to [-1, 1].
  inertia_tau_s: tuple[float, float] = (4.0, 6.0)
  label_noise_std: tuple[float, float] = (0.2, 0.2)
  label_noise_tau_s: float = 3.0
  # Features: x = tanh(u W1 + b1) W2 + obs_noise * N(0, 1); u = [signal, distractors, nuisance].
  carriers: tuple[tuple[str, str, Carrier], ...] = (
      ("audio", "valence", Carrier(-5, 5, 2.0)),
      ("audio", "arousal", Carrier(-3, 3, 1.7)),
      ("scene", "valence", Carrier(-20, 20, 2.7)),
      ("scene", "arousal", Carrier(-20, 20, 2.7)),
      ("expression", "valence", Carrier(0, 2, 2.4)),
      ("action", "arousal", Carrier(0, 3, 2.2)),
  )
  signal_gain: float = 1.5  # Multiplies the signal inputs of u.
  num_shared_distractors: int = 2  # Slow OU factors shared by all modalities.
  num_private_distractors: int = 2  # Slow OU factors of one modality.
  distractor_tau_s: tuple[float, float] = (90.0, 45.0)  # (shared, private).
  num_nuisance: int = 2  # White per-second inputs of one modality.
  weight_scale: float = 1.5  # W1 ~ N(0, weight_scale^2 / K).
  bias_std: float = 0.5
  obs_noise: float = 0.5  # Independent per-dimension, per-second noise on x.


@dataclasses.dataclass(eq=False)
class SyntheticBenchmarkConfig(tfds.core.BuilderConfig):
  """Sizes of one synthetic benchmark; give each different size a different `name`."""
  seed: int = 0
  audio_dim: int = 128
  scene_dim: int = 512
  expression_dim: int = 3072
  action_dim: int = 128
  num_train: int = 16
  num_validation: int = 4
  num_test: int = 4
  min_seconds: int = 600  # Film length uniform in [min_seconds, max_seconds].
  max_seconds: int = 2400
  map_hidden: int = 64  # Width H of each modality's random map.
  params: GeneratorParams = GeneratorParams()

  @property
  def dims(self) -> dict[str, int]:
    return {m: getattr(self, f"{m}_dim") for m in MODALITIES}

  @property
  def num_films(self) -> int:
    return self.num_train + self.num_validation + self.num_test

  def split_films(self) -> dict[str, list[int]]:
    """Film indices of each split (films are i.i.d., so the split is by index)."""
    a, b = self.num_train, self.num_train + self.num_validation
    return {"train": list(range(a)), "validation": list(range(a, b)),
            "test": list(range(b, self.num_films))}

  def fingerprint(self) -> dict[str, Any]:
    """Everything that determines the bytes, in JSON form (stored in the metadata)."""
    base = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in base}
    return json.loads(json.dumps(d, default=_jsonable))

  def validate(self) -> None:
    problems = []
    for m, d in self.dims.items():
      if d < 1:
        problems.append(f"{m}_dim={d} must be >= 1")
    if min(self.num_train, self.num_validation, self.num_test) < 1:
      problems.append("num_train, num_validation and num_test must each be >= 1")
    if not 20 <= self.min_seconds <= self.max_seconds:
      problems.append(f"need 20 <= min_seconds ({self.min_seconds}) <= max_seconds "
                      f"({self.max_seconds})")
    if self.map_hidden < 1:
      problems.append(f"map_hidden={self.map_hidden} must be >= 1")
    p = self.params
    for m, t, c in p.carriers:
      if m not in MODALITIES or t not in TARGETS or c.lag_lo > c.lag_hi or c.jitter < 0:
        problems.append(f"params.carriers entry ({m!r}, {t!r}, {c}) needs a modality in "
                        f"{MODALITIES}, a target in {TARGETS}, lag_lo <= lag_hi, jitter >= 0")
    if not 0 < p.seg_min_s < p.seg_mean_s:
      problems.append(f"need 0 < params.seg_min_s ({p.seg_min_s}) < seg_mean_s ({p.seg_mean_s})")
    taus = (p.transition_tau_s, p.label_noise_tau_s, *p.drift_tau_s, *p.inertia_tau_s,
            *p.distractor_tau_s)
    if min(taus) <= 0:
      problems.append(f"params time constants must be > 0, got {taus}")
    if p.num_shared_distractors + p.num_private_distractors + p.num_nuisance < 1:
      problems.append("params need at least one distractor or nuisance input")
    if problems:
      raise errors.ConfigError(f"synthetic_benchmark config {self.name!r}: " + "; ".join(problems))


def _diff(stored: dict, given: dict, prefix: str = "") -> list[str]:
  """`key: cached A != given B` for every (nested) key whose values differ."""
  out = []
  for k in sorted(set(stored) | set(given)):
    a, b = stored.get(k, "<missing>"), given.get(k, "<missing>")
    if isinstance(a, dict) and isinstance(b, dict):
      out += _diff(a, b, f"{prefix}{k}.")
    elif a != b:
      out.append(f"{prefix}{k}: cached {a} != given {b}")
  return out


def _jsonable(x):
  if dataclasses.is_dataclass(x):
    return dataclasses.asdict(x)
  raise TypeError(f"not JSON serialisable: {x!r}")


# ----------------------------------------------------------------------------- numpy generator


def _rng(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng([seed, *keys])


def first_order_lag(x_T: np.ndarray, tau_s: float) -> np.ndarray:
  """y[0] = x[0]; y[t] = y[t-1] + alpha (x[t] - y[t-1]), alpha = 1 - exp(-1 / tau_s)."""
  alpha = 1.0 - np.exp(-1.0 / tau_s)
  y, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], x_T, zi=[(1.0 - alpha) * x_T[0]])
  return y


def ar1(rng: np.random.Generator, n: int, std: float, tau: float) -> np.ndarray:
  """Stationary AR(1) with marginal std `std` and correlation exp(-1/tau) per step."""
  phi = np.exp(-1.0 / tau)
  w = rng.standard_normal(n) * std
  w[1:] *= np.sqrt(1.0 - phi**2)
  return signal.lfilter([1.0], [1.0, -phi], w)


def film_lengths(cfg: SyntheticBenchmarkConfig) -> list[int]:
  """Length in seconds of every film (index order)."""
  return [int(_rng(cfg.seed, _LENGTH_STREAM, i).integers(cfg.min_seconds, cfg.max_seconds + 1))
          for i in range(cfg.num_films)]


def generate_latents(seed: int, index: int, num_seconds: int,
                     p: GeneratorParams) -> dict[str, np.ndarray]:
  """Latent valence / arousal (T,) float64 in (-1, 1) of film `index`."""
  rng = _rng(seed, _LATENT_STREAM, index)
  # Scene segments shared by both dimensions.
  max_segs = int(num_seconds // p.seg_min_s) + 2
  durations = p.seg_min_s + rng.exponential(p.seg_mean_s - p.seg_min_s, max_segs)
  starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
  num_segs = int(np.searchsorted(starts, num_seconds))
  seg_of_t = np.searchsorted(starts[:num_segs], np.arange(num_seconds), side="right") - 1
  jumps = rng.random(num_segs) < p.jump_prob
  jumps[0] = False
  out = {}
  for c, name in enumerate(TARGETS):
    film_mean = rng.standard_normal() * p.film_std[c]
    rho = p.seg_rho[c]
    innov = rng.standard_normal(num_segs) * p.seg_std[c]
    innov[1:] *= np.sqrt(1.0 - rho**2)
    jump = rng.standard_normal(num_segs) * p.jump_std[c]
    if name == "arousal":
      jump = np.abs(jump)
    innov += np.where(jumps, jump, 0.0)
    level_S = signal.lfilter([1.0], [1.0, -rho], innov)
    seg_T = first_order_lag(level_S[seg_of_t], p.transition_tau_s)
    drift_T = ar1(rng, num_seconds, p.drift_std[c], p.drift_tau_s[c])
    out[name] = np.tanh(film_mean + seg_T + drift_T)
  return out


def annotate(seed: int, index: int, latents: dict[str, np.ndarray],
             p: GeneratorParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(clean, noisy) labels of a film: inertia-lagged latents, then + AR(1) noise, clipped."""
  rng = _rng(seed, _LABEL_STREAM, index)
  clean, noisy = {}, {}
  for c, name in enumerate(TARGETS):
    clean[name] = first_order_lag(latents[name], p.inertia_tau_s[c])
    noise = ar1(rng, len(clean[name]), p.label_noise_std[c], p.label_noise_tau_s)
    noisy[name] = np.clip(clean[name] + noise, -1.0, 1.0)
  return clean, noisy


def _carriers(p: GeneratorParams, modality: str) -> list[tuple[str, Carrier]]:
  return [(t, c) for m, t, c in p.carriers if m == modality]


def modality_maps(cfg: SyntheticBenchmarkConfig) -> dict[str, dict[str, np.ndarray]]:
  """The fixed random map of every modality: W1 (K, H), b1 (H,), W2 (H, D), float32."""
  p, maps = cfg.params, {}
  for i, m in enumerate(MODALITIES):
    rng = _rng(cfg.seed, _MAP_STREAM, i)
    k = len(_carriers(p, m)) + p.num_shared_distractors + p.num_private_distractors + p.num_nuisance
    h, d = cfg.map_hidden, cfg.dims[m]
    maps[m] = {
        "w1": (rng.standard_normal((k, h)) * (p.weight_scale / np.sqrt(k))).astype(np.float32),
        "b1": (rng.standard_normal(h) * p.bias_std).astype(np.float32),
        "w2": (rng.standard_normal((h, d), dtype=np.float32) / np.float32(np.sqrt(h))),
    }
  return maps


def lagged_window_mean(x_T: np.ndarray, lag_lo: int, lag_hi: int) -> np.ndarray:
  """out[t] = mean of x[t - lag] for lag in [lag_lo, lag_hi], edges held constant."""
  n = len(x_T)
  pad_lo, pad_hi = max(lag_hi, 0), max(-lag_lo, 0)
  xp = np.concatenate([np.full(pad_lo, x_T[0]), x_T, np.full(pad_hi, x_T[-1])])
  csum = np.concatenate([[0.0], np.cumsum(xp)])
  t = np.arange(n) + pad_lo  # index of x[t] in xp
  return (csum[t - lag_lo + 1] - csum[t - lag_hi]) / (lag_hi - lag_lo + 1)


def generate_features(cfg: SyntheticBenchmarkConfig, index: int, latents: dict[str, np.ndarray],
                      maps: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Per-second features (T, D) float32 of every modality of film `index`."""
  p = cfg.params
  num_seconds = len(latents[TARGETS[0]])
  grng = _rng(cfg.seed, _FEATURE_STREAM, index, len(MODALITIES))  # Shared by all modalities.
  shared_TxK = np.stack([ar1(grng, num_seconds, 1.0, p.distractor_tau_s[0])
                         for _ in range(p.num_shared_distractors)], axis=-1)
  feats = {}
  for i, m in enumerate(MODALITIES):
    rng = _rng(cfg.seed, _FEATURE_STREAM, index, i)
    cols = []
    for target, carrier in _carriers(p, m):
      window_T = lagged_window_mean(latents[target], carrier.lag_lo, carrier.lag_hi)
      cols.append(p.signal_gain * (window_T + carrier.jitter * rng.standard_normal(num_seconds)))
    cols += [ar1(rng, num_seconds, 1.0, p.distractor_tau_s[1])
             for _ in range(p.num_private_distractors)]
    cols += list(rng.standard_normal((p.num_nuisance, num_seconds)))
    u_TxK = np.concatenate([np.stack(cols, axis=-1), shared_TxK], axis=-1).astype(np.float32)
    w = maps[m]
    h_TxH = np.tanh(u_TxK @ w["w1"] + w["b1"])
    x_TxD = h_TxH @ w["w2"]
    x_TxD += np.float32(p.obs_noise) * rng.standard_normal(x_TxD.shape, dtype=np.float32)
    feats[m] = x_TxD
  return feats


def generate_film(cfg: SyntheticBenchmarkConfig, index: int, num_seconds: int,
                  maps: dict[str, dict[str, np.ndarray]] | None = None,
                  with_features: bool = True) -> dict[str, np.ndarray]:
  """All arrays of one film: features, `valence`/`arousal` (noisy labels, float32),
  `<dim>_clean` (noiseless labels) and `<dim>_latent` (float64)."""
  latents = generate_latents(cfg.seed, index, num_seconds, cfg.params)
  clean, noisy = annotate(cfg.seed, index, latents, cfg.params)
  film = {}
  if with_features:
    film.update(generate_features(cfg, index, latents, maps or modality_maps(cfg)))
  for t in TARGETS:
    film[t] = noisy[t].astype(np.float32)
    film[f"{t}_clean"] = clean[t]
    film[f"{t}_latent"] = latents[t]
  return film


def film_id(index: int) -> str:
  return f"film_{index:03d}"


def _mse_pcc(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
  pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
  return {"mse": float(np.mean((pred - true) ** 2)), "pcc": float(np.corrcoef(pred, true)[0, 1])}


def ceiling(films: list[dict[str, np.ndarray]], source: str = "clean") -> dict[str, dict]:
  """MSE / PCC of `<dim>_<source>` against the stored noisy labels, pooled over all seconds, and
  `film_mse` / `film_pcc`: their means over films (the per-film form of the ceiling)."""
  out = {}
  for t in TARGETS:
    m = _mse_pcc(np.concatenate([f[f"{t}_{source}"] for f in films]),
                 np.concatenate([f[t] for f in films]))
    per_film = [_mse_pcc(f[f"{t}_{source}"], f[t]) for f in films]
    m["film_mse"] = float(np.mean([v["mse"] for v in per_film]))
    m["film_pcc"] = float(np.nanmean([v["pcc"] for v in per_film]))
    out[t] = m
  return out


# ----------------------------------------------------------------------------- TFDS builder


class SyntheticBenchmark(tfds.core.GeneratorBasedBuilder):
  """Synthetic per-second films (valence / arousal) with a known ceiling."""

  # Bump whenever the generator's output changes: caches live in
  # <data_dir>/synthetic_benchmark/<config>/<version>.
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First version.",
                   "1.1.0": "The ceiling also in its per-film form (film_mse, film_pcc); the films "
                            "are unchanged."}
  BUILDER_CONFIGS = [
      SyntheticBenchmarkConfig(
          name="default",
          description="24 films of 10-40 min (16/4/4), seed-000 feature sizes 128/512/3072/128."),
      SyntheticBenchmarkConfig(
          name="small", audio_dim=8, scene_dim=16, expression_dim=24, action_dim=8,
          num_train=4, num_validation=2, num_test=2, min_seconds=60, max_seconds=180,
          map_hidden=8, description="8 films of 1-3 min with tiny features, for tests."),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    cfg = self.builder_config
    cfg.validate()
    if self.is_prepared():  # Cached: refuse data generated from other numbers under this name.
      stored = dict(self.info.metadata or {}).get("params") or {}
      given = cfg.fingerprint()
      if stored != given:
        diff = _diff(stored, given)
        raise errors.ConfigError(
            f"{self.data_dir}: cached synthetic_benchmark config {cfg.name!r} was generated with "
            f"other parameters ({'; '.join(diff[:5])}{'; ...' if len(diff) > 5 else ''}); give "
            "this config a new name or delete that directory.")

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    features = {"film_id": tfds.features.Text()}
    for m, d in cfg.dims.items():
      features[m] = tfds.features.Tensor(shape=(None, d), dtype=np.float32, encoding="bytes")
    for t in TARGETS:
      features[t] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is generated.
    cfg = self.builder_config
    lengths = film_lengths(cfg)
    splits = cfg.split_films()
    labels = {s: [generate_film(cfg, i, lengths[i], with_features=False) for i in idx]
              for s, idx in splits.items()}
    md = self.info.metadata
    md["params"] = cfg.fingerprint()
    md["splits"] = {s: [film_id(i) for i in idx] for s, idx in splits.items()}
    md["seconds"] = {film_id(i): n for i, n in enumerate(lengths)}
    md["ceiling"] = ceiling(labels["test"], "clean")
    md["ceiling_latent"] = ceiling(labels["test"], "latent")
    md["ceiling_by_split"] = {s: ceiling(f, "clean") for s, f in labels.items()}
    maps = modality_maps(cfg)
    return {s: self._generate_examples(idx, lengths, maps) for s, idx in splits.items()}

  def _generate_examples(self, indices, lengths, maps):
    cfg = self.builder_config
    for i in indices:
      film = generate_film(cfg, i, lengths[i], maps)
      example = {"film_id": film_id(i)}
      example.update({m: film[m] for m in MODALITIES})
      example.update({t: film[t] for t in TARGETS})
      yield film_id(i), example
