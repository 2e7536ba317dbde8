"""End-to-end video convnets of seed 004: C3D, R(2+1)D-18, TSN and ECO Lite / Full (one method).

`config.model.arch` picks the network; all read uint8 frames and regress one dimension with an
MSE head (valence and arousal are trained separately: one phase each, a fresh network per phase).

Streams (per-clip datasets, uint8, frames stored larger than `config.model.crop`):
  C3D, R(2+1)D   `config.inputs.streams` (default ("frame_clips",)): (N, H, W, 3), N >= num_frames
                 dense frames (5 fps in seed 004); the centre num_frames are used.
  TSN, ECO       `config.inputs.streams` (default ("tsn_frames",)): (K, M, H, W, 3): K segments of M
                 candidate frames; training draws one candidate per segment, evaluation takes
                 the centre one (M // 2), as TSN's sampling rule.
Augmentation happens in the forward from the uint8 batch: in training a random crop (one offset per
clip, all its frames) and a horizontal flip with probability 1/2, drawn from the step's `rngs`
(reproducible from the seed and the step); at evaluation (`rngs` None) the centre crop. Pixels are
scaled to [0, 1] and standardised with the ImageNet mean / std.

Networks (channels-last; every convolution is a `video_conv.Conv`, lowering chosen per layer):
  c3d        8 convs 3x3x3 (64, 128, 256, 256, 512, 512, 512, 512), BN + ReLU after each; pools
             (1,2,2) then (2,2,2) x 3 then (1,2,2) padded (8 frames: T 8->8->4->2->1->1), fc6 /
             fc7 (4096, dropout 0.5), head.
  r2plus1d   R(2+1)D-18: stem (1,7,7)/2 to 45 mid channels + (3,1,1) to 64; 4 stages of 2 basic
             blocks (64, 128, 256, 512; stride 2 in T, H, W from stage 2); each 3x3x3 conv
             factored into (1,3,3) -> BN -> ReLU -> (3,1,1) with M = floor(27 Ni No / (9 Ni +
             3 No)) mid channels (the parameter count of the 3-D conv; both convs of a block use
             the block's first M, as torchvision's r2plus1d_18); global average pool, head.
  tsn        a 2-D ResNet-18 on each of the K frames, a head per frame, average consensus.
             Partial BN (`partial_bn`): every BatchNorm but the first uses its stored statistics
             in training too (TSN's rule for ImageNet-initialised backbones; off from scratch).
  eco_lite   2-D ResNet-18 stem + stages 1-2 per frame (128 ch at 1/8 size), stacked in time ->
             3-D ResNet-18 stages 3-5 (3x3x3 basic blocks, 128 -> 256 -> 512), pool, head.
  eco_full   eco_lite plus a 2-D branch (2-D ResNet-18 stages 3-4 on the same per-frame features,
             pooled over space and frames) concatenated with the 3-D features before the head.
`width` multiplies every channel count, `depth` the blocks per ResNet stage (>= 1), so `runlocal`
trains in minutes; the defaults (1.0, 1.0) are the paper's sizes.

Labels: the head's output z is mapped to the dataset's scale as `label_center + label_half_range *
z` (LIRIS-ACCEDE's 1-5 values: 3 and 2, i.e. training on (v - 3) / 2; the synthetic benchmarks:
0 and 1). The harness's MSE is then on the original scale, half_range^2 times the normalised one,
so SGD's learning rate is divided by half_range^2 (the same steps as training on (v - 3) / 2; Adam
is scale-free). Metrics are reported on the original scale.

Pretrained weights the user owns: `config.model.weights` = a .npz whose keys are the parameter
paths of `weight_names(model)` ("features/conv1a/kernel", "head/kernel", ...); every key must
exist with the same shape (another architecture fails naming the parameter); parameters missing
from the file (e.g. a new head) keep their initialisation and are listed in the phase info.
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import contract
from emojax import errors
from emojax import layout
from emojax import weights
from emojax.nn import layers
from emojax.nn import video_conv

ARCHS = ("c3d", "r2plus1d", "tsn", "eco_lite", "eco_full")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _ch(n: int, width: float) -> int:
  return max(4, int(round(n * width)))


class BN(nnx.Module):
  """BatchNorm over the channel axis; `frozen_stats` uses the stored statistics in training too."""

  def __init__(self, n: int, *, frozen_stats: bool = False, rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(n, momentum=0.9, epsilon=1e-5, rngs=rngs)
    self.frozen_stats = frozen_stats

  def __call__(self, x):
    if self.frozen_stats:
      b = self.bn
      inv = jax.lax.rsqrt(b.var[...] + b.epsilon) * b.scale[...]
      return (x - b.mean[...]) * inv + b.bias[...]
    return self.bn(x)


class ConvBN(nnx.Module):
  def __init__(self, ci, co, kernel, *, stride=1, padding=0, relu=True, frozen_stats=False,
               conv_kw, rngs):
    self.conv = video_conv.Conv(ci, co, kernel, stride=stride, padding=padding, rngs=rngs,
                                **conv_kw)
    self.bn = BN(co, frozen_stats=frozen_stats, rngs=rngs)
    self.relu = relu

  def __call__(self, x):
    y = self.bn(self.conv(x))
    return jax.nn.relu(y) if self.relu else y


# ----------------------------------------------------------------------------------------------
# C3D.

class C3D(nnx.Module):
  CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
  # pool after conv index -> (window, padding); 8 frames: T 8 -> 8 -> 4 -> 2 -> 1 -> 1.
  POOLS = {0: ((1, 2, 2), (0, 0, 0)), 1: ((2, 2, 2), (0, 0, 0)), 3: ((2, 2, 2), (0, 0, 0)),
           5: ((2, 2, 2), (0, 0, 0)), 7: ((1, 2, 2), (0, 1, 1))}

  def __init__(self, m, crop: int, num_frames: int, conv_kw, rngs):
    chans = [_ch(c, m.width) for c in self.CHANNELS]
    self.convs = nnx.List([ConvBN(ci, co, 3, padding=1, conv_kw=conv_kw, rngs=rngs)
                           for ci, co in zip([3] + chans[:-1], chans)])
    t, s = num_frames, crop
    for i in range(8):
      if i in self.POOLS:
        (wt, ws, _), (_, ps, _) = self.POOLS[i]
        t, s = (t - wt) // wt + 1, (s + 2 * ps - ws) // ws + 1
    if t < 1 or s < 1:
      raise errors.ConfigError(f"C3D: {num_frames} frames of {crop} px are too small for its 5 "
                               "poolings (config.model.num_frames >= 8, crop >= 16)")
    fc = _ch(4096, m.width)
    self.fc6 = nnx.Linear(chans[-1] * t * s * s, fc, rngs=rngs)
    self.fc7 = nnx.Linear(fc, fc, rngs=rngs)
    self.drop = nnx.Dropout(m.dropout)
    self.head = nnx.Linear(fc, 1, rngs=rngs)

  def __call__(self, x, rngs):
    for i, conv in enumerate(self.convs):
      x = conv(x)
      if i in self.POOLS:
        w, p = self.POOLS[i]
        x = video_conv.max_pool(x, w, w, p)
    x = x.reshape(x.shape[0], -1)
    x = self.drop(jax.nn.relu(self.fc6(x)), rngs=rngs)
    x = self.drop(jax.nn.relu(self.fc7(x)), rngs=rngs)
    return self.head(x)[:, 0]


# ----------------------------------------------------------------------------------------------
# R(2+1)D-18 and 3-D ResNet stages.

def mid_channels(ci: int, co: int, kt: int = 3, k: int = 3) -> int:
  """R(2+1)D's M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)) (Tran et al. 2018)."""
  return (kt * k * k * ci * co) // (k * k * ci + kt * co)


class Conv2Plus1D(nnx.Module):
  """(1,k,k) spatial conv -> BN -> ReLU -> (kt,1,1) temporal conv (no BN after: the caller's)."""

  def __init__(self, ci, co, *, stride=1, mid=None, conv_kw, rngs):
    mid = mid or mid_channels(ci, co)
    s = video_conv._triple(stride)  # pylint: disable=protected-access
    self.spatial = ConvBN(ci, mid, (1, 3, 3), stride=(1, s[1], s[2]), padding=(0, 1, 1),
                          conv_kw=conv_kw, rngs=rngs)
    self.temporal = video_conv.Conv(mid, co, (3, 1, 1), stride=(s[0], 1, 1), padding=(1, 0, 0),
                                    rngs=rngs, **conv_kw)

  def __call__(self, x):
    return self.temporal(self.spatial(x))


class Block3D(nnx.Module):
  """A basic residual block: conv -> BN -> ReLU -> conv -> BN, + shortcut, ReLU."""

  def __init__(self, ci, co, stride, factored: bool, conv_kw, rngs):
    if factored:
      mid = mid_channels(ci, co)   # both convs, as torchvision's R(2+1)D-18 (31.5 M parameters)
      self.c1 = Conv2Plus1D(ci, co, stride=stride, mid=mid, conv_kw=conv_kw, rngs=rngs)
      self.c2 = Conv2Plus1D(co, co, mid=mid, conv_kw=conv_kw, rngs=rngs)
    else:
      self.c1 = video_conv.Conv(ci, co, 3, stride=stride, padding=1, rngs=rngs, **conv_kw)
      self.c2 = video_conv.Conv(co, co, 3, padding=1, rngs=rngs, **conv_kw)
    self.bn1, self.bn2 = BN(co, rngs=rngs), BN(co, rngs=rngs)
    self.short = (ConvBN(ci, co, 1, stride=stride, relu=False, conv_kw=conv_kw, rngs=rngs)
                  if stride != 1 or ci != co else None)

  def __call__(self, x):
    y = jax.nn.relu(self.bn1(self.c1(x)))
    y = self.bn2(self.c2(y))
    return jax.nn.relu(y + (self.short(x) if self.short is not None else x))


def _blocks(depth: float) -> int:
  return max(1, int(round(2 * depth)))


class R2Plus1D(nnx.Module):
  def __init__(self, m, conv_kw, rngs):
    c = [_ch(n, m.width) for n in (64, 128, 256, 512)]
    self.stem = nnx.Sequential(
        ConvBN(3, _ch(45, m.width), (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
               conv_kw=conv_kw, rngs=rngs),
        ConvBN(_ch(45, m.width), c[0], (3, 1, 1), padding=(1, 0, 0), conv_kw=conv_kw, rngs=rngs))
    blocks, ci = [], c[0]
    for i, co in enumerate(c):
      for j in range(_blocks(m.depth)):
        blocks.append(Block3D(ci, co, 2 if (i > 0 and j == 0) else 1, True, conv_kw, rngs))
        ci = co
    self.blocks = nnx.List(blocks)
    self.drop = nnx.Dropout(m.dropout)
    self.head = nnx.Linear(ci, 1, rngs=rngs)

  def __call__(self, x, rngs):
    x = self.stem(x)
    for b in self.blocks:
      x = b(x)
    return self.head(self.drop(x.mean((1, 2, 3)), rngs=rngs))[:, 0]


# ----------------------------------------------------------------------------------------------
# 2-D ResNet-18 (per frame: convolutions with kt = 1 on (B, K, H, W, C)).

class Block2D(nnx.Module):
  def __init__(self, ci, co, stride, frozen, conv_kw, rngs):
    st = (1, stride, stride)
    self.c1 = ConvBN(ci, co, (1, 3, 3), stride=st, padding=(0, 1, 1), frozen_stats=frozen,
                     conv_kw=conv_kw, rngs=rngs)
    self.c2 = ConvBN(co, co, (1, 3, 3), padding=(0, 1, 1), relu=False, frozen_stats=frozen,
                     conv_kw=conv_kw, rngs=rngs)
    self.short = (ConvBN(ci, co, 1, stride=st, relu=False, frozen_stats=frozen, conv_kw=conv_kw,
                         rngs=rngs) if stride != 1 or ci != co else None)

  def __call__(self, x):
    y = self.c2(self.c1(x))
    return jax.nn.relu(y + (self.short(x) if self.short is not None else x))


class ResNet2D(nnx.Module):
  """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and the stages `stages` of ResNet-18."""

  def __init__(self, m, stages, conv_kw, rngs, *, stem=True, in_ch=None, partial_bn=False):
    c = [_ch(n, m.width) for n in (64, 128, 256, 512)]
    self.stem = (ConvBN(3, c[0], (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), conv_kw=conv_kw,
                        rngs=rngs) if stem else None)   # the first BN: never frozen
    blocks, ci = [], (c[0] if stem else in_ch)
    for i in stages:
      for j in range(_blocks(m.depth)):
        blocks.append(Block2D(ci, c[i], 2 if (i > 0 and j == 0) else 1, partial_bn, conv_kw,
                              rngs))
        ci = c[i]
    self.blocks = nnx.List(blocks)
    self.out_ch = ci

  def __call__(self, x):
    if self.stem is not None:
      x = self.stem(x)
      x = video_conv.max_pool(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for b in self.blocks:
      x = b(x)
    return x


class TSN(nnx.Module):
  def __init__(self, m, conv_kw, rngs):
    self.backbone = ResNet2D(m, (0, 1, 2, 3), conv_kw, rngs, partial_bn=m.partial_bn)
    self.drop = nnx.Dropout(m.dropout)
    self.head = nnx.Linear(self.backbone.out_ch, 1, rngs=rngs)

  def __call__(self, x, rngs):
    f = self.backbone(x).mean((2, 3))                       # (B, K, C) per-segment features
    return self.head(self.drop(f, rngs=rngs))[..., 0].mean(1)   # average consensus


class ECO(nnx.Module):
  def __init__(self, m, full: bool, conv_kw, rngs):
    self.features = ResNet2D(m, (0, 1), conv_kw, rngs)
    c = [_ch(n, m.width) for n in (128, 256, 512)]
    blocks, ci = [], self.features.out_ch
    for i, co in enumerate(c):
      for j in range(_blocks(m.depth)):
        blocks.append(Block3D(ci, co, 2 if (i > 0 and j == 0) else 1, False, conv_kw, rngs))
        ci = co
    self.blocks3d = nnx.List(blocks)
    self.branch2d = (ResNet2D(m, (2, 3), conv_kw, rngs, stem=False, in_ch=self.features.out_ch)
                     if full else None)
    dim = ci + (self.branch2d.out_ch if full else 0)
    self.drop = nnx.Dropout(m.dropout)
    self.head = nnx.Linear(dim, 1, rngs=rngs)

  def __call__(self, x, rngs):
    f = self.features(x)                                    # (B, K, h, w, C): stacked in time
    y = f
    for b in self.blocks3d:
      y = b(y)
    z = y.mean((1, 2, 3))
    if self.branch2d is not None:
      z = jnp.concatenate([z, self.branch2d(f).mean((1, 2, 3))], -1)
    return self.head(self.drop(z, rngs=rngs))[:, 0]


class VideoNet(nnx.Module):
  """Input handling (frame choice, crop, flip, normalisation) around one of the networks."""

  def __init__(self, config, stored_shape, rngs):
    m = config.model
    check_stream_shape(config, stored_shape)
    self.arch, self.crop, self.num_frames = m.arch, int(m.crop), int(m.num_frames)
    self.flip = bool(m.flip)
    conv_kw = dict(lowering=m.conv_lowering, compute_dtype=m.compute_dtype)
    if m.arch == "c3d":
      self.net = C3D(m, self.crop, self.num_frames, conv_kw, rngs)
    elif m.arch == "r2plus1d":
      self.net = R2Plus1D(m, conv_kw, rngs)
    elif m.arch == "tsn":
      self.net = TSN(m, conv_kw, rngs)
    else:
      self.net = ECO(m, m.arch == "eco_full", conv_kw, rngs)

  def frames(self, clips, rngs):
    """uint8 stored clips -> float32 (B, T, crop, crop, 3), augmented in training."""
    b = clips.shape[0]
    key = rngs.dropout() if rngs is not None else None
    if clips.ndim == 6:                                     # (B, K, M, H, W, 3): a frame a segment
      m = clips.shape[2]
      if key is None:
        pick = jnp.full((b, clips.shape[1]), m // 2)
      else:
        key, sub = jax.random.split(key)
        pick = jax.random.randint(sub, (b, clips.shape[1]), 0, m)
      clips = jnp.take_along_axis(clips, pick[:, :, None, None, None, None], 2)[:, :, 0]
    else:
      start = (clips.shape[1] - self.num_frames) // 2
      clips = clips[:, start:start + self.num_frames]
    h, w, c = clips.shape[2], clips.shape[3], self.crop
    if key is None:
      x = clips[:, :, (h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]
    else:
      k1, k2, k3 = jax.random.split(key, 3)
      oy = jax.random.randint(k1, (b,), 0, h - c + 1)
      ox = jax.random.randint(k2, (b,), 0, w - c + 1)
      rows = (oy[:, None] + jnp.arange(c))[:, None, :, None, None]      # (B, 1, c, 1, 1)
      cols = (ox[:, None] + jnp.arange(c))[:, None, None, :, None]      # (B, 1, 1, c, 1)
      x = jnp.take_along_axis(clips, rows, 2)
      x = jnp.take_along_axis(x, cols, 3)
      if self.flip:
        flip = jax.random.bernoulli(k3, 0.5, (b,))
        x = jnp.where(flip[:, None, None, None, None], x[:, :, :, ::-1], x)
    x = x.astype(jnp.float32) / 255.0
    return (x - MEAN) / STD

  def __call__(self, clips, rngs):
    # The harness shards batches along "data" with sharding in types (explicit axes), under which
    # the lowerings' reshapes (batch x frames merged) are refused; the network runs on the whole
    # batch (replicated) and its output goes back to the batch's sharding.
    sharding = _explicit_sharding(clips)
    if sharding is not None:
      clips = jax.sharding.reshard(clips, jax.sharding.NamedSharding(
          sharding.mesh, jax.sharding.PartitionSpec()))
    out = self.net(self.frames(clips, rngs), rngs)
    if sharding is not None:
      out = jax.sharding.reshard(out, jax.sharding.NamedSharding(
          sharding.mesh, jax.sharding.PartitionSpec(sharding.spec[0])))
    return out


def _explicit_sharding(x):
  """The sharding of x's type when it names mesh axes (explicit sharding), else None."""
  try:
    sharding = jax.typeof(x).sharding
    spec = sharding.spec
  except (AttributeError, TypeError):
    return None
  return sharding if any(a is not None for a in spec) else None


# ----------------------------------------------------------------------------------------------
# Checks and weights.

def check_stream_shape(config, shape) -> None:
  """The stored stream fits the architecture, the frame count and the crop, or ConfigError."""
  m = config.model
  s = frame_stream(config)
  segmented = m.arch in ("tsn", "eco_lite", "eco_full")
  want = "(K, M, H, W, 3)" if segmented else "(N, H, W, 3)"
  if len(shape) != (5 if segmented else 4) or shape[-1] != 3:
    raise errors.DataError(f"stream {s!r} has clips of shape {tuple(shape)}; {m.arch} needs "
                           f"{want} uint8 RGB (config.inputs.streams)")
  n, h, w = shape[0], shape[-3], shape[-2]
  if m.crop < 16:  # the convolutions and pools would shrink the frames to nothing
    raise errors.ConfigError(f"config.model.crop={m.crop} is below 16 px; use 16 or more "
                             "(runlocal uses 32, the paper 112 or 224)")
  if n < m.num_frames:
    raise errors.DataError(
        f"stream {s!r} has {n} {'segments' if segmented else 'frames'} per clip; {m.arch} needs "
        f"config.model.num_frames={m.num_frames}: rebuild the dataset with more frames or lower "
        "num_frames")
  if segmented and n != m.num_frames:
    raise errors.DataError(f"stream {s!r} has {n} segments per clip; config.model.num_frames="
                           f"{m.num_frames} (TSN/ECO use one frame per segment)")
  if min(h, w) < m.crop:
    raise errors.DataError(f"stream {s!r} has frames of {h}x{w}, smaller than config.model.crop="
                           f"{m.crop}: lower the crop or rebuild the dataset with larger frames")


def weight_names(model: nnx.Module) -> dict[str, tuple[int, ...]]:
  """{"net/convs/0/conv/kernel": shape, ...}: the npz keys `load_weights` reads."""
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  return {"/".join(str(p) for p in path): tuple(v.get_value().shape) for path, v in flat}


def save_weights(model: nnx.Module, path) -> None:
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  np.savez(path, **{"/".join(str(p) for p in k): np.asarray(v[...]) for k, v in flat})


def load_weights(model: nnx.Module, path) -> list[str]:
  """Loads an npz (keys of `weight_names`); returns the parameters the file does not hold."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.ConfigError(f"config.model.weights={str(path)!r} is not a file")
  names = weight_names(model)
  state = nnx.state(model, nnx.Param)
  flat = dict(nnx.to_flat_state(state))
  by_name = {"/".join(str(p) for p in k): k for k in flat}
  f = weights.read_state_dict(path, what="config.model.weights")  # a damaged file: WeightsError
  for key, a in f.items():
    if key not in names:
      raise errors.ConfigError(
          f"{path}: parameter {key!r} is not in this {type(model).__name__} (another "
          f"architecture or width?); expected names like {sorted(names)[:3]}")
    if tuple(a.shape) != names[key]:
      raise errors.ConfigError(f"{path}: parameter {key!r} has shape {a.shape}, the model "
                               f"{names[key]} (config.model width/depth/arch must match)")
    flat[by_name[key]][...] = jnp.asarray(a, jnp.float32)
  missing = sorted(set(names) - set(f))
  nnx.update(model, state)
  return missing


# ----------------------------------------------------------------------------------------------
# The method contract.

def _target_list(config) -> tuple[str, ...]:
  return tuple(config.targets)


def task(config, target: str | None = None):
  """The task of one target's phase, or (no target) of the whole run: every target, so that the
  harness loads each target's labels (a phase of the second target reads them)."""
  targets = (target,) if target else _target_list(config)
  return layout.task(config, targets, loss="mse", unit="clip")


def frame_stream(config) -> str:
  """The one stream of frames the networks read (config.inputs.streams)."""
  streams = layout.streams(config)
  if len(streams) != 1:
    raise errors.ConfigError(f"config.inputs.streams={streams}: the video convnets read one "
                             "stream of frames, e.g. ('frame_clips',) or ('tsn_frames',)")
  return streams[0]


def modalities(config):
  return (frame_stream(config),)


def create(config, feature_dims, rngs):
  m, s = config.model, frame_stream(config)
  if m.arch not in ARCHS:
    raise errors.ConfigError(f"config.model.arch={m.arch!r}; use one of {ARCHS}")
  if s not in feature_dims:
    raise errors.DataError(f"the dataset has no stream {s!r} (config.inputs.streams); it has "
                           f"{sorted(feature_dims)}")
  return nnx.Dict({t: VideoNet(config, tuple(feature_dims[s]), rngs)
                   for t in _target_list(config)})


def _forward_for(config, target):
  stream = frame_stream(config)
  center, half = float(config.model.label_center), float(config.model.label_half_range)

  def forward(model, batch, rngs):
    z = model[target](batch["x"][stream], rngs)
    return center + half * z
  return forward


def _setup_for(config, target):
  def setup(model):
    net = model[target]
    if config.model.weights:
      missing = load_weights(net, config.model.weights)
      if missing:
        print(f"   weights {config.model.weights}: {len(missing)} parameter(s) not in the file "
              f"keep their initialisation: {missing[:4]}{' ...' if len(missing) > 4 else ''}")
    if config.model.conv_lowering == "auto" and config.model.autotune:
      for batch_size in dict.fromkeys((config.data.batch_size, config.data.eval_batch_size)):
        tune_model(net, config, batch_size)      # training and evaluation shapes
  return setup


def example_shape(config, stored_shape=None) -> tuple[int, ...]:
  m = config.model
  if stored_shape is not None:
    return tuple(stored_shape)
  side = m.crop + max(8, m.crop // 7)
  if m.arch in ("tsn", "eco_lite", "eco_full"):
    return (m.num_frames, 3, side, side, 3)
  return (m.num_frames, side, side, 3)


def tune_model(net: VideoNet, config, batch_size: int, stored_shape=None,
               verbose: bool = True) -> dict[str, str]:
  """Times the lowerings of every `auto` convolution of `net` at this batch size (cached)."""
  shape = (batch_size,) + example_shape(config, stored_shape)
  graphdef, state = nnx.split(net)

  def run(state, clips):
    copy = nnx.merge(graphdef, state)
    copy.eval()       # shapes only: no dropout or statistics (a copy: `net` keeps its mode)
    return copy(clips, None)
  with video_conv.record_shapes() as keys:
    jax.eval_shape(run, state, jax.ShapeDtypeStruct(shape, jnp.uint8))
  if verbose:
    print(f"   tuning {len(set(keys))} convolution shapes (cache {video_conv.cache_path()})",
          flush=True)
  return video_conv.tune(keys, verbose=verbose)


def _optimizer(config):
  spec = contract.optimizer_spec(config.optim)
  if spec["name"] == "sgd":    # see the module docstring: same steps as on (v - c) / half
    spec["learning_rate"] = spec["learning_rate"] / float(config.model.label_half_range) ** 2
  return spec


def plan(config, done):
  targets = _target_list(config)
  if len(done) >= len(targets):
    return None
  t = targets[len(done)]
  return contract.Phase(
      f"{t}/{config.model.arch}", task(config, t), _forward_for(config, t),
      trainable=layers.params_under((t,)), epochs=float(config.train.epochs),
      optimizer=_optimizer(config), eval_every_epochs=float(config.train.eval_every_epochs),
      setup=_setup_for(config, t), info={"arch": config.model.arch})


def outputs(config):
  return {t: contract.Output(_forward_for(config, t), task(config, t))
          for t in _target_list(config)}


def parameter_count(model) -> int:
  return sum(math.prod(s) for s in weight_names(model).values())
