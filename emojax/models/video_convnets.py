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
  tsn        a 2-D backbone on each of the K frames (`backbone`: 'bn_inception', the paper's,
             its pooled inception_5b (1024); or 'resnet18'), a head per frame, average consensus
             (the paper concatenates the segments' features; emojax averages per-frame outputs).
             Partial BN (`partial_bn`): every BatchNorm but the first uses its stored statistics
             in training too (TSN's rule for ImageNet-initialised backbones; off from scratch).
  eco_lite   2-D part per frame, stacked in time -> 3-D ResNet-18 stages 3-5 (3x3x3 basic
             blocks, 128 -> 256 -> 512), pool, head. BN-Inception: the 2-D part ends after
             inception_3c (576 channels at 1/16 size; the published ECO cuts inside 3c, at
             inception_3c_double_3x3_1, 96 channels at 1/8: emojax cuts at the block's end, so
             the 3-D stages see 14 x 14 maps at 224 px); ResNet-18: stem + stages 1-2 (128 ch,
             1/8 size). BN-Inception's 4a-5b and ImageNet classifier are unused (no gradient).
  eco_full   eco_lite plus a 2-D branch (the rest of the 2-D network -- BN-Inception 4a-5b or
             ResNet-18 stages 3-4 -- on the same per-frame features, pooled over space and
             frames) concatenated with the 3-D features before the head.
`head_layers` 3 puts two hidden ReLU layers (512 * width) before the output (Table II's "FC
layer 3"; the widths are not given). BN-Inception reads BGR 0-255 minus its mean (its published
weights' input); the other networks ImageNet-standardised RGB. `backbone_weights` = a .npz
converted from the published BN-Inception (python -m emojax.backbones.convert --network=bn_inception) loaded into
TSN's / ECO's BN-Inception with its BatchNorm statistics before training.
`width` multiplies every channel count, `depth` the blocks per ResNet stage (>= 1), so `runlocal`
trains in minutes (BN-Inception's sizes are fixed); the defaults (1.0, 1.0) are the paper's sizes.

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

import functools
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
from emojax.backbones import bn_inception
from emojax.nn import layers
from emojax.nn import video_conv

ARCHS = ("c3d", "r2plus1d", "tsn", "eco_lite", "eco_full")
SEGMENTED = ("tsn", "eco_lite", "eco_full")
BACKBONES = ("bn_inception", "resnet18")
ECO_CUT = "inception_3c"      # ECO's 2-D part: BN-Inception up to the end of this block
FC3_WIDTH = 512               # the hidden width of Table II's three-FC-layer head (not given)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _ch(n: int, width: float) -> int:
  return max(4, int(round(n * width)))


def _bn_train_fwd(x, scale, bias, eps, relu):
  c = x.shape[-1]
  x2 = x.reshape(-1, c)
  mean = jnp.mean(x2, 0)
  var = jnp.maximum(0.0, jnp.mean(jnp.square(x2), 0) - jnp.square(mean))   # as flax's fast var
  inv = jax.lax.rsqrt(var + eps)
  y = (x - mean) * (inv * scale) + bias                                   # flax's _normalize
  if relu:
    y = jnp.maximum(y, 0.0)
  return (y, mean, var), (x, y if relu else None, mean, inv, scale)


def _bn_train_bwd(eps, relu, res, cts):
  del eps
  x, y, mean, inv, scale = res
  gy, gmean, gvar = cts
  c = x.shape[-1]
  n = x.size // c
  gz = jnp.where(y > 0, gy, 0.0) if relu else gy        # ReLU's gradient (0 at 0, as jax.nn.relu)
  xc = x - mean
  s1 = jnp.sum(gz.reshape(-1, c), 0)                    # d bias
  s2 = jnp.sum((gz * xc).reshape(-1, c), 0)             # d scale / inv
  a = scale * inv
  gx = (a * gz - (a / n) * s1 - (a * inv * inv / n) * s2 * xc
        + gmean / n + (2.0 / n) * gvar * xc)
  return gx, s2 * inv, s1


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def bn_train(x, scale, bias, eps: float, relu: bool):
  """Training-mode BatchNorm over the last axis (batch statistics), optionally + ReLU, with a
  hand-written VJP: (y, batch mean, batch variance).

  The forward is flax's `nnx.BatchNorm` (fast variance E[x^2] - E[x]^2 clipped at 0, then (x -
  mean) * rsqrt(var + eps) * scale + bias) and jax.nn.relu; the backward is the closed form
  gx = a (gz - mean(gz) - xhat mean(gz xhat)) with a = scale * rsqrt(var + eps) (plus the
  mean / variance outputs' own cotangents), two per-channel sums and one elementwise pass, where
  autodiff of the module materialises x - mean, the ReLU mask and several more full-size
  temporaries (docs/benchmarks.md, "Where the step's time goes"). The same gradient up to float32
  reassociation (tests/test_video_convnets.py checks it against autodiff of nnx.BatchNorm)."""
  return _bn_train_fwd(x, scale, bias, eps, relu)[0]


bn_train.defvjp(_bn_train_fwd, _bn_train_bwd)


class BN(nnx.Module):
  """BatchNorm over the channel axis; `frozen_stats` uses the stored statistics in training too.

  `relu=True` applies ReLU after it. In training (batch statistics) both go through `bn_train`'s
  fused VJP, with the running statistics updated as nnx.BatchNorm does."""

  def __init__(self, n: int, *, frozen_stats: bool = False, rngs: nnx.Rngs):
    self.bn = nnx.BatchNorm(n, momentum=0.9, epsilon=1e-5, rngs=rngs)
    self.frozen_stats = frozen_stats

  def __call__(self, x, relu: bool = False):
    b = self.bn
    if self.frozen_stats or b.use_running_average:
      inv = jax.lax.rsqrt(b.var[...] + b.epsilon) * b.scale[...]
      y = (x - b.mean[...]) * inv + b.bias[...]
      return jax.nn.relu(y) if relu else y
    y, mean, var = bn_train(x, b.scale[...], b.bias[...], float(b.epsilon), bool(relu))
    b.mean[...] = jax.lax.stop_gradient(b.momentum * b.mean[...] + (1 - b.momentum) * mean)
    b.var[...] = jax.lax.stop_gradient(b.momentum * b.var[...] + (1 - b.momentum) * var)
    return y


def _hidden(m, dim: int, rngs) -> tuple[nnx.List, int]:
  """The `head_layers` - 1 hidden FC layers (FC3_WIDTH * width, ReLU) before the one regression
  output `head` (Table II's "FC layer 3"; the output keeps the one-layer head's name)."""
  fcs = []
  for _ in range(int(m.head_layers) - 1):
    fcs.append(nnx.Linear(dim, _ch(FC3_WIDTH, m.width), rngs=rngs))
    dim = _ch(FC3_WIDTH, m.width)
  return nnx.List(fcs), dim


def _through(hidden, drop, x, rngs):
  for fc in hidden:
    x = jax.nn.relu(fc(drop(x, rngs=rngs)))
  return drop(x, rngs=rngs)


class ConvBN(nnx.Module):
  def __init__(self, ci, co, kernel, *, stride=1, padding=0, relu=True, frozen_stats=False,
               conv_kw, rngs):
    self.conv = video_conv.Conv(ci, co, kernel, stride=stride, padding=padding, rngs=rngs,
                                **conv_kw)
    self.bn = BN(co, frozen_stats=frozen_stats, rngs=rngs)
    self.relu = relu

  def __call__(self, x):
    return self.bn(self.conv(x), relu=self.relu)


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
    self.hidden, dim = _hidden(m, fc, rngs)
    self.head = nnx.Linear(dim, 1, rngs=rngs)

  def __call__(self, x, rngs):
    for i, conv in enumerate(self.convs):
      x = conv(x)
      if i in self.POOLS:
        w, p = self.POOLS[i]
        x = video_conv.max_pool(x, w, w, p)
    x = x.reshape(x.shape[0], -1)
    x = self.drop(jax.nn.relu(self.fc6(x)), rngs=rngs)
    x = jax.nn.relu(self.fc7(x))
    x = self.drop(x, rngs=rngs) if not self.hidden else _through(self.hidden, self.drop, x, rngs)
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
    y = self.bn2(self.c2(self.bn1(self.c1(x), relu=True)))
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
    self.hidden, dim = _hidden(m, ci, rngs)
    self.head = nnx.Linear(dim, 1, rngs=rngs)

  def __call__(self, x, rngs):
    x = self.stem(x)
    for b in self.blocks:
      x = b(x)
    return self.head(_through(self.hidden, self.drop, x.mean((1, 2, 3)), rngs))[:, 0]


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


def _bn_inception(m, rngs) -> bn_inception.BNInception:
  return bn_inception.BNInception(partial_bn=bool(m.partial_bn), rngs=rngs)


def bn_inception_fits(crop: int) -> bool:
  """Whether BN-Inception's branches of the stride-2 blocks agree in size at this crop: a
  3x3/2 conv gives ceil(n / 2), the ceil-mode 3x3/2 max pool ceil((n - 1) / 2) (n even)."""
  n = -(-crop // 2)                      # conv1 7x7/2
  n = -(-(n - 1) // 2)                   # pool 3x3/2 ceil
  n = -(-(n - 1) // 2)                   # pool 3x3/2 ceil: inception_3c's input
  for _ in range(2):                     # inception_3c, inception_4e
    if n % 2:
      return False
    n //= 2
  return True


class TSN(nnx.Module):
  """A 2-D backbone on each of the K frames (BN-Inception's pooled inception_5b, 1024, or
  ResNet-18's pooled stage 4), a head per frame, average consensus."""

  def __init__(self, m, conv_kw, rngs):
    self.bn_inception = m.backbone == "bn_inception"
    if self.bn_inception:
      self.backbone = _bn_inception(m, rngs)
      dim = bn_inception.FEATURE_DIM
    else:
      self.backbone = ResNet2D(m, (0, 1, 2, 3), conv_kw, rngs, partial_bn=m.partial_bn)
      dim = self.backbone.out_ch
    self.drop = nnx.Dropout(m.dropout)
    self.hidden, dim = _hidden(m, dim, rngs)
    self.head = nnx.Linear(dim, 1, rngs=rngs)

  def __call__(self, x, rngs):
    if self.bn_inception:
      f = self.backbone.pool(x)                             # (B, K, 1024) per-segment features
    else:
      f = self.backbone(x).mean((2, 3))                     # (B, K, C)
    return self.head(_through(self.hidden, self.drop, f, rngs))[..., 0].mean(1)   # consensus


class ECO(nnx.Module):
  """2-D part per frame (BN-Inception to the end of inception_3c: 576 channels at 1/16 size; or
  ResNet-18 stem + stages 1-2), stacked in time -> 3-D ResNet-18 stages 3-5 -> pool; ECO Full adds
  the rest of the 2-D network (BN-Inception 4a-5b / ResNet-18 stages 3-4) pooled over space and
  frames."""

  def __init__(self, m, full: bool, conv_kw, rngs):
    self.bn_inception = m.backbone == "bn_inception"
    if self.bn_inception:
      self.backbone = _bn_inception(m, rngs)
      ci = dict((b[0], b) for b in bn_inception.BLOCKS)["inception_4a"][1]   # 3c's output: 576
    else:
      self.features = ResNet2D(m, (0, 1), conv_kw, rngs)
      ci = self.features.out_ch
    c = [_ch(n, m.width) for n in (128, 256, 512)]
    blocks, f_ch = [], ci
    for i, co in enumerate(c):
      for j in range(_blocks(m.depth)):
        blocks.append(Block3D(ci, co, 2 if (i > 0 and j == 0) else 1, False, conv_kw, rngs))
        ci = co
    self.blocks3d = nnx.List(blocks)
    self.full = full
    if full and self.bn_inception:
      dim = ci + bn_inception.FEATURE_DIM
    elif full:
      self.branch2d = ResNet2D(m, (2, 3), conv_kw, rngs, stem=False, in_ch=f_ch)
      dim = ci + self.branch2d.out_ch
    else:
      dim = ci
    self.drop = nnx.Dropout(m.dropout)
    self.hidden, dim = _hidden(m, dim, rngs)
    self.head = nnx.Linear(dim, 1, rngs=rngs)

  def __call__(self, x, rngs):
    if self.bn_inception:
      f = self.backbone.endpoint(x, ECO_CUT)                # (B, K, h, w, 576): stacked in time
    else:
      f = self.features(x)
    y = f
    for b in self.blocks3d:
      y = b(y)
    z = y.mean((1, 2, 3))
    if self.full:
      g = (self.backbone.blocks_after(f, ECO_CUT) if self.bn_inception else self.branch2d(f))
      z = jnp.concatenate([z, g.mean((1, 2, 3))], -1)
    return self.head(_through(self.hidden, self.drop, z, rngs))[:, 0]


class VideoNet(nnx.Module):
  """Input handling (frame choice, crop, flip, normalisation) around one of the networks."""

  def __init__(self, config, stored_shape, rngs):
    m = config.model
    check_stream_shape(config, stored_shape)
    self.arch, self.crop, self.num_frames = m.arch, int(m.crop), int(m.num_frames)
    self.flip = bool(m.flip)
    if m.arch in SEGMENTED and m.backbone not in BACKBONES:
      raise errors.ConfigError(f"config.model.backbone={m.backbone!r}; use one of {BACKBONES}")
    if int(m.head_layers) not in (1, 3):
      raise errors.ConfigError(f"config.model.head_layers={m.head_layers}; use 1 or 3 (Table II)")
    if m.arch in SEGMENTED and m.backbone == "bn_inception" and not bn_inception_fits(self.crop):
      raise errors.ConfigError(
          f"config.model.crop={self.crop}: BN-Inception's stride-2 blocks (3c, 4e) need even "
          "maps there (crops that are multiples of 32, e.g. 224); change the crop or set "
          "config.model.backbone='resnet18'")
    # BN-Inception reads BGR 0-255 minus its mean (the converted published weights' input).
    self.bgr = m.arch in SEGMENTED and m.backbone == "bn_inception"
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
    if self.bgr:
      return bn_inception.preprocess(x)
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
  segmented = m.arch in SEGMENTED
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


def load_backbone(net: VideoNet, config) -> str:
  """Loads config.model.backbone_weights (a converted BN-Inception .npz) into TSN's / ECO's
  BN-Inception: parameters and BatchNorm running statistics. Returns the published file's sha256."""
  m = config.model
  if m.arch not in SEGMENTED or m.backbone != "bn_inception":
    raise errors.ConfigError(
        f"config.model.backbone_weights={m.backbone_weights!r} is for TSN / ECO on BN-Inception; "
        f"this is {m.arch} on {m.backbone}: set config.model.backbone_weights=''")
  loaded, sha = bn_inception.load(m.backbone_weights, partial_bn=bool(m.partial_bn))
  nnx.update(net.net.backbone, nnx.state(loaded))
  return sha


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
    if config.model.backbone_weights:
      sha = load_backbone(net, config)
      print(f"   backbone {config.model.backbone} from {config.model.backbone_weights} "
            f"(published file sha256 {sha[:12] or '?'}): weights and BatchNorm statistics")
    if config.model.weights:
      missing = load_weights(net, config.model.weights)
      if missing:
        print(f"   weights {config.model.weights}: {len(missing)} parameter(s) not in the file "
              f"keep their initialisation: {missing[:4]}{' ...' if len(missing) > 4 else ''}")
    if config.model.conv_lowering == "auto" and config.model.autotune:
      # Training and evaluation shapes in one tuning (one summary line).
      video_conv.tune([k for batch_size in dict.fromkeys((config.data.batch_size,
                                                          config.data.eval_batch_size))
                       for k in conv_keys(net, config, batch_size)], verbose=True)
  return setup


def example_shape(config, stored_shape=None) -> tuple[int, ...]:
  m = config.model
  if stored_shape is not None:
    return tuple(stored_shape)
  side = m.crop + max(8, m.crop // 7)
  if m.arch in SEGMENTED:
    return (m.num_frames, 3, side, side, 3)
  return (m.num_frames, side, side, 3)


def tune_model(net: VideoNet, config, batch_size: int, stored_shape=None,
               verbose: bool = True) -> dict[str, str]:
  """Times the lowerings of every `auto` convolution of `net` at this batch size (cached);
  `verbose`: one summary line."""
  return video_conv.tune(conv_keys(net, config, batch_size, stored_shape), verbose=verbose)


def conv_keys(net: VideoNet, config, batch_size: int, stored_shape=None) -> list[str]:
  """The layer keys of every `auto` convolution of `net` at this batch size (shapes only)."""
  shape = (batch_size,) + example_shape(config, stored_shape)
  graphdef, state = nnx.split(net)

  def run(state, clips):
    copy = nnx.merge(graphdef, state)
    copy.eval()       # shapes only: no dropout or statistics (a copy: `net` keeps its mode)
    return copy(clips, None)
  with video_conv.record_shapes() as keys:
    jax.eval_shape(run, state, jax.ShapeDtypeStruct(shape, jnp.uint8))
  return list(keys)


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
