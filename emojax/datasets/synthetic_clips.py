"""synthetic_clips: a per-clip 3-class benchmark rendered on the fly, with a recorded ceiling.

The classification counterpart of `synthetic_benchmark` (seed 002's task on a fresh machine, no
download). Film i uses the generator of `synthetic_films_render.render_film(seed=seed + i,
duration_s=clips_per_film * clip_seconds, fps, size=(render_width, render_height),
sample_rate=16000, channels=1)`: the same latent valence/arousal curves (the labels' source),
pictures and soundtrack, taken straight from the renderer (no mp4 round trip, so the build stays
under a minute on 2 cores). But each modality is driven by its own curves, a known share
(`SHARES`) of the latent plus private noise (`modality_curves`), and arousal also sets the
pictures' contrast (`apply_contrast`), valence also a pad's pitch in the sound (`add_pad`): every
modality carries every target, none alone all of it (docs/synthetic_clips.md). Each
film is cut into `clips_per_film` consecutive clips of `clip_seconds` seconds; one example a clip:

  clip_id            "film_007_clip_03"
  film_id            "film_007"
  keyframe           (clip_seconds, image_size, image_size, 3) uint8: per 1 s segment, the frame
                     whose RGB histogram is closest in L1 to the segment's mean histogram
  spectrogram_image  (clip_seconds, image_size, image_size) uint8: per segment, the 40 ms Hamming /
                     20 ms hop spectrogram of the 16 kHz soundtrack (`features.spectrogram_image`)
  frame_clips        (configs with frame_clips_frames > 0) (N, frame_height, frame_width, 3) uint8:
                     N dense frames at frame_clips_fps centred in the clip (seed 004's C3D /
                     R(2+1)D input; `features.frame_clips.clip_targets`), bilinear resize
  tsn_frames         (configs with tsn_segments > 0) (K, M, frame_height, frame_width, 3) uint8:
                     K equal segments, M evenly spaced candidate frames each (TSN / ECO draw one
                     per segment in training, the centre one at test)
  valence, arousal   float32: the clip mean of the latent curve + annotator noise
                     N(0, label_noise_std^2), clipped to [-1, 1]
  valence_class, arousal_class   int64 0..2 (`clip_streams.CLASS_NAMES`): the value's tercile class,
                     boundaries at the 1/3 and 2/3 quantiles of the training split's values

Images are stored larger than a model's crop (e.g. 40 for a 32 crop) as zlib-compressed uint8
tensors. Splits are by film (no film's clips in two splits): the first `num_train_films` films
train, then validation, then test.

Metadata (`builder.info.metadata`):
  params            the config's numbers (a cached build under the same name must match them)
  splits            film ids per split
  class_boundaries  {dim: [lo, hi]}
  class_names       {dim: [3 names]}
  ceiling           {dim: {accuracy}}: the classes of the noiseless clip-mean latents (same
                    boundaries) against the labels' classes, on the test split
  ceiling_by_split  the same per split
  majority          {dim: {class, accuracy}}: the training split's most frequent class and its
                    rate on the test split (the floor a classifier must beat)
  class_counts      {split: {dim: [n0, n1, n2]}}
  shares            SHARES: {modality: {dim: share of the latent in that modality's curves}}
  modality_streams  MODALITY_STREAMS: the streams each modality renders
  modality_ceiling  {dim: {picture, sound, fused, latent: {accuracy}}}: a least-squares line from
                    the modality's noiseless clip means (fused: both; latent: the latents) to the
                    labels, fitted on train, its classes scored on the test split
  modality_ceiling_by_split   the same per split
  modality_ceiling_expected   the same on _EXPECTED_FILMS further simulated films (half fit, half
                    score): the ceilings in expectation
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from emojax import errors
from emojax.datasets import clip_streams
from emojax.datasets import synthetic_films_render as render
from emojax.features import frame_clips as frame_clips_lib

TARGETS = ("valence", "arousal")
FRAME_STREAMS = ("frame_clips", "tsn_frames")
_FRAME_FIELDS = ("frame_clips_frames", "frame_clips_fps", "frame_height", "frame_width",
                 "tsn_segments", "tsn_candidates")
SPLITS = ("train", "validation", "test")
_LABEL_STREAM = 1
_PRIVATE_STREAM = 2
# Each modality is driven by its own valence / arousal curves: for target t and modality m,
# d_mt = w z_t + (1 - w) p_mt, with z_t the film's latent curve (the labels' source) and p_mt a
# private curve of the same law (render.latent_curves' segments), independent of everything else.
# SHARES[m][t] = w^2 / (w^2 + (1 - w)^2) is the fraction of d_mt's variance that z_t carries; the
# rest is private noise, so no modality alone reaches what both together know.
SHARES = {"picture": {"valence": 0.7, "arousal": 0.6},
          "sound": {"valence": 0.6, "arousal": 0.7}}
_EXPECTED_FILMS = 2000  # simulated films (labels only, no rendering) for the expected ceilings
# The streams each modality's curves render (picture: colour, brightness, contrast, faces,
# motion, cuts; sound: mode, pad pitch, tempo, loudness, timbre).
MODALITY_STREAMS = {"picture": ("keyframe", "frame_clips", "tsn_frames"),
                    "sound": ("spectrogram_image",)}


@dataclasses.dataclass(eq=False)
class SyntheticClipsConfig(tfds.core.BuilderConfig):
  """Sizes of one per-clip benchmark; give each different size a different `name`."""
  seed: int = 0
  num_train_films: int = 32
  num_validation_films: int = 8
  num_test_films: int = 8
  clips_per_film: int = 6
  clip_seconds: int = 6
  fps: int = 8
  render_width: int = 96
  render_height: int = 72
  image_size: int = 40
  label_noise_std: float = 0.15
  hist_bins: int = 16
  # Raw-frame streams for the video convnets of seed 004 (0 frames = not stored; the fields then
  # stay out of the fingerprint, so caches of the configs without them remain valid):
  frame_clips_frames: int = 0       # `frame_clips` (N, frame_height, frame_width, 3): N dense frames
  frame_clips_fps: float = 5.0      #   at this rate, centred in the clip (features.frame_clips)
  frame_height: int = 0             # stored frame size (larger than the model's crop)
  frame_width: int = 0
  tsn_segments: int = 0             # `tsn_frames` (K, M, frame_height, frame_width, 3): K equal
  tsn_candidates: int = 3           #   segments, M evenly spaced candidate frames in each

  @property
  def num_films(self) -> int:
    return self.num_train_films + self.num_validation_films + self.num_test_films

  @property
  def film_seconds(self) -> int:
    return self.clips_per_film * self.clip_seconds

  def split_films(self) -> dict[str, list[int]]:
    a, b = self.num_train_films, self.num_train_films + self.num_validation_films
    return {"train": list(range(a)), "validation": list(range(a, b)),
            "test": list(range(b, self.num_films))}

  def fingerprint(self) -> dict[str, Any]:
    base = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
    if not (self.frame_clips_frames or self.tsn_segments):
      base |= set(_FRAME_FIELDS)
    return json.loads(json.dumps({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                  if f.name not in base}))

  def validate(self) -> None:
    problems = []
    if min(self.num_train_films, self.num_validation_films, self.num_test_films) < 1:
      problems.append("num_train_films, num_validation_films and num_test_films must be >= 1")
    if self.num_train_films * self.clips_per_film < 3:
      problems.append("the training split needs >= 3 clips for its terciles")
    if self.clips_per_film < 1 or self.clip_seconds < 1:
      problems.append("clips_per_film and clip_seconds must be >= 1")
    if self.fps < 1:
      problems.append(f"fps={self.fps} must be >= 1")
    if (self.render_width % 2 or self.render_height % 2 or min(self.render_width,
                                                                self.render_height) < 32):
      problems.append(f"render_width x render_height ({self.render_width} x {self.render_height})"
                      " must be even and >= 32")
    if self.image_size < 8:
      problems.append(f"image_size={self.image_size} must be >= 8")
    if self.label_noise_std < 0:
      problems.append(f"label_noise_std={self.label_noise_std} must be >= 0")
    if self.frame_clips_frames < 0 or self.tsn_segments < 0 or self.tsn_candidates < 1:
      problems.append("frame_clips_frames and tsn_segments must be >= 0, tsn_candidates >= 1")
    if (self.frame_clips_frames or self.tsn_segments) and min(self.frame_height,
                                                              self.frame_width) < 8:
      problems.append(f"frame_height x frame_width ({self.frame_height} x {self.frame_width}) "
                      "must be >= 8 when frame streams are stored")
    if self.frame_clips_frames and self.frame_clips_fps <= 0:
      problems.append(f"frame_clips_fps={self.frame_clips_fps} must be > 0")
    if problems:
      raise errors.ConfigError(f"synthetic_clips config {self.name!r}: " + "; ".join(problems))


def film_id(index: int) -> str:
  return f"film_{index:03d}"


def clip_id(index: int, clip: int) -> str:
  return f"{film_id(index)}_clip_{clip:02d}"


def _film_rng(cfg: SyntheticClipsConfig, index: int) -> np.random.Generator:
  return np.random.default_rng(cfg.seed + index)  # render_film's generator for seed + index


def mix_weight(share: float) -> float:
  """w with w^2 / (w^2 + (1 - w)^2) = share: the latent's weight in a modality's curve."""
  r = np.sqrt(share / (1.0 - share))
  return float(r / (1.0 + r))


def modality_curves(cfg: SyntheticClipsConfig, index: int) -> dict[str, dict[str, np.ndarray]]:
  """{modality: {target: (film_seconds,) float64}}: the curves that drive each modality of film
  `index`, w * latent + (1 - w) * private with w = mix_weight(SHARES[modality][target])."""
  latent = dict(zip(TARGETS, render.latent_curves(_film_rng(cfg, index), cfg.film_seconds)))
  private = np.random.default_rng([cfg.seed, _PRIVATE_STREAM, index])
  out = {}
  for m in MODALITY_STREAMS:
    out[m] = {}
    for t in TARGETS:
      w = mix_weight(SHARES[m][t])
      p_T = render._segment_curve(private, cfg.film_seconds)  # pylint: disable=protected-access
      out[m][t] = w * latent[t] + (1.0 - w) * p_T
  return out


def _clip_means(cfg: SyntheticClipsConfig, curve_T: np.ndarray) -> np.ndarray:
  return curve_T.astype(np.float64).reshape(cfg.clips_per_film, cfg.clip_seconds).mean(1)


def film_labels(cfg: SyntheticClipsConfig, index: int) -> dict[str, np.ndarray]:
  """Per-clip `<dim>_latent` (clip means of the latent curves, float64), `<dim>_<modality>` (clip
  means of the modality's driving curve, float64) and `<dim>` (labels, float32) of film `index`;
  no rendering."""
  v_T, a_T = render.latent_curves(_film_rng(cfg, index), cfg.film_seconds)
  noise = np.random.default_rng([cfg.seed, _LABEL_STREAM, index])
  out = {}
  for m, curves in modality_curves(cfg, index).items():
    for t in TARGETS:
      out[f"{t}_{m}"] = _clip_means(cfg, curves[t])
  for name, curve_T in (("valence", v_T), ("arousal", a_T)):
    latent_C = _clip_means(cfg, curve_T)
    out[f"{name}_latent"] = latent_C
    noisy_C = latent_C + cfg.label_noise_std * noise.standard_normal(cfg.clips_per_film)
    out[name] = np.clip(noisy_C, -1.0, 1.0).astype(np.float32)
  return out


def render_streams(cfg: SyntheticClipsConfig, index: int) -> dict[str, np.ndarray]:
  """(film_seconds, ...) uint8 `keyframe` and `spectrogram_image` of film `index`, and when the
  config stores them (clips_per_film, ...) uint8 `frame_clips` / `tsn_frames`."""
  rng = _film_rng(cfg, index)
  render.latent_curves(rng, cfg.film_seconds)  # advance the generator as render_film does
  picture_rng, sound_rng = rng.spawn(2)
  curves = modality_curves(cfg, index)
  pv_T, pa_T = curves["picture"]["valence"], curves["picture"]["arousal"]
  frames = [f for _, f, _ in render._render_frames(  # pylint: disable=protected-access
      picture_rng, pv_T, pa_T, cfg.fps, cfg.render_width, cfg.render_height)]
  second_N = np.arange(len(frames)) // cfg.fps
  times_N = (np.arange(len(frames)) + 0.5) / cfg.fps  # the renderer's frame times
  a_N = render._at_times(pa_T, times_N)  # pylint: disable=protected-access
  frames_NxHxWx3 = apply_contrast(np.stack(frames), a_N)
  sv_T, sa_T = curves["sound"]["valence"], curves["sound"]["arousal"]
  audio_n = render.synthesize_music(sound_rng, sv_T, sa_T, clip_streams.SAMPLE_RATE, 1)[0]
  audio_n = add_pad(audio_n, sv_T, sa_T, clip_streams.SAMPLE_RATE)
  per_clip = [clip_frame_streams(cfg, frames_NxHxWx3, j) for j in range(cfg.clips_per_film)]
  out = {k: np.stack([c[k] for c in per_clip]) for k in FRAME_STREAMS if k in per_clip[0]}
  return {
      **out,
      "keyframe": clip_streams.keyframes(frames_NxHxWx3, second_N, cfg.film_seconds,
                                         cfg.image_size, cfg.hist_bins),
      "spectrogram_image": clip_streams.spectrogram_images(audio_n, cfg.film_seconds,
                                                           cfg.image_size),
  }


def contrast(arousal) -> np.ndarray:
  """Contrast (1 = as rendered) at the given arousal, log-linear: 0.1 calm ... 1 active."""
  return 10.0 ** ((np.asarray(arousal, np.float64) - 1.0) / 2.0)


def apply_contrast(frames_NxHxWx3: np.ndarray, arousal_N: np.ndarray) -> np.ndarray:
  """Each frame's pixels pulled towards the frame's mean colour by `contrast(arousal)`, so a still
  frame shows arousal (a flat, washed-out picture when calm) while its mean brightness and colour
  (valence's cues) stay."""
  f = frames_NxHxWx3.astype(np.float32)
  mean = f.mean(axis=(1, 2), keepdims=True)
  c = contrast(arousal_N).astype(np.float32)[:, None, None, None]
  return np.clip(np.round(mean + c * (f - mean)), 0, 255).astype(np.uint8)


def pad_hz(valence) -> np.ndarray:
  """Pitch of the sustained pad at the given valence: 2 kHz (negative) ... 7 kHz (positive)."""
  return 2000.0 * 3.5 ** ((np.asarray(valence, np.float64) + 1.0) / 2.0)


def add_pad(audio_n: np.ndarray, valence_T: np.ndarray, arousal_T: np.ndarray,
            sample_rate: int) -> np.ndarray:
  """The music plus a sine pad whose pitch follows valence (`pad_hz`), at 0.6 x the music's
  arousal gain (`render.loudness_gain`), so valence is heard beyond the major/minor mode."""
  t_n = (np.arange(audio_n.size) + 0.5) / sample_rate
  v_n = render._at_times(valence_T, t_n)  # pylint: disable=protected-access
  a_n = render._at_times(arousal_T, t_n)  # pylint: disable=protected-access
  phase_n = 2 * np.pi * np.cumsum(pad_hz(v_n)) / sample_rate
  pad_n = 0.6 * render.loudness_gain(a_n) * np.sin(phase_n)
  return np.clip(audio_n + pad_n, -1.0, 1.0).astype(np.float32)


def _pick(frames_NxHxWx3: np.ndarray, times: np.ndarray, fps: int, height: int,
          width: int) -> np.ndarray:
  """The frames on screen at `times` (seconds), resized bilinearly to height x width."""
  idx = np.clip(np.floor(np.asarray(times) * fps + 1e-9).astype(int), 0, len(frames_NxHxWx3) - 1)
  out = [np.asarray(PIL.Image.fromarray(frames_NxHxWx3[i]).resize((width, height),
                                                                   PIL.Image.BILINEAR))
         for i in idx.reshape(-1)]
  return np.stack(out).reshape(*np.shape(times), height, width, 3)


def clip_frame_streams(cfg: SyntheticClipsConfig, frames_NxHxWx3: np.ndarray,
                       clip: int) -> dict[str, np.ndarray]:
  """`frame_clips` (N, H, W, 3) and `tsn_frames` (K, M, H, W, 3) uint8 of clip `clip`.

  Dense frames use `features.frame_clips.clip_targets` (N frames at frame_clips_fps centred in the
  clip); TSN candidates sit at start + (k + (m + 0.5) / M) L / K, so the centre candidate (M odd) is
  the segment centre, TSN's test-time frame.
  """
  out = {}
  start, length = clip * cfg.clip_seconds, cfg.clip_seconds
  if cfg.frame_clips_frames:
    t = frame_clips_lib.clip_targets(length, 0, cfg.frame_clips_frames, "dense",
                                     cfg.frame_clips_fps)[0] + start
    out["frame_clips"] = _pick(frames_NxHxWx3, t, cfg.fps, cfg.frame_height, cfg.frame_width)
  if cfg.tsn_segments:
    k, m = cfg.tsn_segments, cfg.tsn_candidates
    t = start + (np.arange(k)[:, None] + (np.arange(m)[None, :] + 0.5) / m) * length / k
    out["tsn_frames"] = _pick(frames_NxHxWx3, t, cfg.fps, cfg.frame_height, cfg.frame_width)
  return out


def modality_ceilings(labels: dict[int, dict[str, np.ndarray]], splits: dict[str, list[int]],
                      bounds: dict[str, tuple[float, float]]) -> dict[str, dict[str, dict]]:
  """{split: {target: {modality, "fused" or "latent": {"accuracy"}}}}: what a modality's noiseless
  content can tell. Per target, a least-squares line from the modality's clip-mean driving curves
  (`fused`: all modalities' together; `latent`: the latent clip means themselves) to the labels is
  fitted on the training split; its predictions' classes (the labels' boundaries) are scored
  against the labels' classes on each split."""
  def stack(split, key):
    return np.concatenate([labels[i][key] for i in splits[split]]).astype(np.float64)

  groups = {m: (m,) for m in MODALITY_STREAMS}
  groups["fused"] = tuple(MODALITY_STREAMS)
  groups["latent"] = ("latent",)
  out = {s: {t: {} for t in TARGETS} for s in splits}
  for t in TARGETS:
    for g, ms in groups.items():
      def design(split, ms=ms):
        cols = [stack(split, f"{t}_{m}") for m in ms]
        return np.stack([np.ones_like(cols[0])] + cols, 1)
      coef = np.linalg.lstsq(design("train"), stack("train", t), rcond=None)[0]
      for s in splits:
        pred = clip_streams.class_of(design(s) @ coef, bounds[t])
        out[s][t][g] = {"accuracy": class_accuracy(pred, clip_streams.class_of(stack(s, t),
                                                                               bounds[t]))}
  return out


def expected_modality_ceilings(cfg: SyntheticClipsConfig,
                               num_films: int = _EXPECTED_FILMS) -> dict[str, dict[str, dict]]:
  """{target: {modality, "fused", "latent": {"accuracy"}}}: `modality_ceilings` on `num_films`
  further films of the same generator (indices after the config's films; labels only), half
  fitting and half scoring, with their own terciles: the ceilings in expectation, free of the
  small test split's luck."""
  first = cfg.num_films
  labels = {first + k: film_labels(cfg, first + k) for k in range(num_films)}
  half = num_films // 2
  splits = {"train": list(range(first, first + half)),
            "test": list(range(first + half, first + num_films))}
  bounds = {t: clip_streams.terciles(np.concatenate([labels[i][t] for i in splits["train"]]))
            for t in TARGETS}
  return modality_ceilings(labels, splits, bounds)["test"]


def class_accuracy(pred_classes, true_classes) -> float:
  p, t = np.asarray(pred_classes).reshape(-1), np.asarray(true_classes).reshape(-1)
  return float(np.mean(p == t)) if t.size else float("nan")


class SyntheticClips(tfds.core.GeneratorBasedBuilder):
  """Rendered short clips with 3-class valence / arousal labels and a known ceiling."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First version.",
      "2.0.0": "Each target in every modality: picture and sound driven by their own curves "
               "(SHARES of the latent's variance, the rest private); arousal also in the "
               "frames' contrast, valence also in a pad's pitch; modality_ceiling metadata.",
  }
  BUILDER_CONFIGS = [
      SyntheticClipsConfig(
          name="default",
          description="288 clips of 6 s (48 films of 36 s: 32/8/8), 40 px images."),
      SyntheticClipsConfig(
          name="small", num_train_films=4, num_validation_films=2, num_test_films=2,
          clips_per_film=3, clip_seconds=4, fps=6, render_width=64, render_height=48,
          image_size=24, description="24 clips of 4 s with 24 px images, for tests."),
      SyntheticClipsConfig(
          name="images256", image_size=256,
          description="the default benchmark with 256 x 256 key frames and spectrogram images "
                      "(seed 002's size: 227 crops for the full AlexNet)."),
      SyntheticClipsConfig(
          name="frames",
          frame_clips_frames=8, frame_height=128, frame_width=171, tsn_segments=8,
          tsn_candidates=3, render_width=172, render_height=128,
          description="the default benchmark plus raw frames for seed 004: frame_clips (8 frames "
                      "at 5 fps) and tsn_frames (8 segments x 3 candidates), 128x171 for 112 "
                      "crops."),
      SyntheticClipsConfig(
          name="frames224",
          frame_clips_frames=8, frame_height=224, frame_width=224, tsn_segments=8,
          tsn_candidates=3, render_width=172, render_height=128,
          description="the default benchmark plus raw frames for seed 004 resized to 224 x 224 "
                      "(bilinear, the paper's input): frame_clips (8 frames at 5 fps) and "
                      "tsn_frames (8 segments x 3 candidates)."),
      SyntheticClipsConfig(
          name="frames_small", num_train_films=16, num_validation_films=4, num_test_films=4,
          clips_per_film=6, clip_seconds=4, fps=6, render_width=64, render_height=48,
          image_size=24, frame_clips_frames=8, frame_height=40, frame_width=40, tsn_segments=8,
          tsn_candidates=3,
          description="144 clips of 4 s with 40x40 frame_clips / tsn_frames (32 crops), for "
                      "runlocal video convnets and tests."),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    cfg = self.builder_config
    cfg.validate()
    if self.is_prepared():
      stored = dict(self.info.metadata or {}).get("params") or {}
      if stored != cfg.fingerprint():
        raise errors.ConfigError(
            f"{self.data_dir}: cached synthetic_clips config {cfg.name!r} was generated with "
            f"other parameters ({stored} != {cfg.fingerprint()}); give this config a new name or "
            "delete that directory.")

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    n, s = cfg.clip_seconds, cfg.image_size
    features = {
        "clip_id": tfds.features.Text(),
        "film_id": tfds.features.Text(),
        "keyframe": tfds.features.Tensor(shape=(n, s, s, 3), dtype=np.uint8, encoding="zlib"),
        "spectrogram_image": tfds.features.Tensor(shape=(n, s, s), dtype=np.uint8,
                                                  encoding="zlib"),
    }
    h, w = cfg.frame_height, cfg.frame_width
    if cfg.frame_clips_frames:
      features["frame_clips"] = tfds.features.Tensor(
          shape=(cfg.frame_clips_frames, h, w, 3), dtype=np.uint8, encoding="zlib")
    if cfg.tsn_segments:
      features["tsn_frames"] = tfds.features.Tensor(
          shape=(cfg.tsn_segments, cfg.tsn_candidates, h, w, 3), dtype=np.uint8, encoding="zlib")
    for t in TARGETS:
      features[t] = tfds.features.Scalar(dtype=np.float32)
      features[f"{t}_class"] = tfds.features.ClassLabel(names=clip_streams.CLASS_NAMES[t])
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features),
                                          metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is rendered here.
    cfg = self.builder_config
    splits = cfg.split_films()
    labels = {i: film_labels(cfg, i) for i in range(cfg.num_films)}
    bounds = {t: clip_streams.terciles(np.concatenate([labels[i][t] for i in splits["train"]]))
              for t in TARGETS}

    def classes(split: str, key: str, t: str) -> np.ndarray:
      return clip_streams.class_of(np.concatenate([labels[i][key] for i in splits[split]]),
                                   bounds[t])

    md = self.info.metadata
    md["params"] = cfg.fingerprint()
    md["splits"] = {s: [film_id(i) for i in idx] for s, idx in splits.items()}
    md["class_boundaries"] = {t: list(bounds[t]) for t in TARGETS}
    md["class_names"] = {t: list(clip_streams.CLASS_NAMES[t]) for t in TARGETS}
    md["ceiling_by_split"] = {
        s: {t: {"accuracy": class_accuracy(classes(s, f"{t}_latent", t), classes(s, t, t))}
            for t in TARGETS} for s in splits}
    md["ceiling"] = md["ceiling_by_split"]["test"]
    md["shares"] = {m: dict(SHARES[m]) for m in MODALITY_STREAMS}
    md["modality_streams"] = {m: list(v) for m, v in MODALITY_STREAMS.items()}
    md["modality_ceiling_by_split"] = modality_ceilings(labels, splits, bounds)
    md["modality_ceiling"] = md["modality_ceiling_by_split"]["test"]
    md["modality_ceiling_expected"] = expected_modality_ceilings(cfg)
    md["class_counts"] = {s: {t: np.bincount(classes(s, t, t), minlength=3).tolist()
                              for t in TARGETS} for s in splits}
    majority = {}
    for t in TARGETS:
      top = int(np.argmax(md["class_counts"]["train"][t]))
      majority[t] = {"class": top, "accuracy": class_accuracy(
          np.full(len(classes("test", t, t)), top), classes("test", t, t))}
    md["majority"] = majority
    return {s: self._generate_examples(idx, labels, bounds) for s, idx in splits.items()}

  def _generate_examples(self, indices, labels, bounds):
    cfg = self.builder_config
    n = cfg.clip_seconds
    for i in indices:
      streams = render_streams(cfg, i)
      for j in range(cfg.clips_per_film):
        example = {"clip_id": clip_id(i, j), "film_id": film_id(i)}
        example.update({k: v[j] if k in FRAME_STREAMS else v[j * n:(j + 1) * n]
                        for k, v in streams.items()})
        for t in TARGETS:
          value = labels[i][t][j]
          example[t] = value
          example[f"{t}_class"] = int(clip_streams.class_of([value], bounds[t])[0])
        yield clip_id(i, j), example
