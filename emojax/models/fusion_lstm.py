r"""Seed 002: end-to-end audio-visual modal fusion + LSTM, 3-class valence or arousal per clip.

Per clip of L one-second segments (seed 002; defaults and sources: docs/methods.md, fusion_lstm):

  x_v[t] = CNN_v(key frame t)            AlexNet-style, fc7 output (model.fc_width, 4,096 in the paper)
  x_a[t] = CNN_a(spectrogram image t)    a second network of the same shape, one input channel
  x_f[t] = a_a g(W_a x_a[t] + b_a) + a_v g(W_v x_v[t] + b_v)      (model.fusion_dim = 512, g = ReLU)
  h      = LSTM(x_f[1..L]) at the last valid step                  (model.lstm_hidden = 256)
  logits = W_2 dropout(ReLU(W_1 h + b_1)) + b_2                     (64 hidden units, dropout 0.5, 3 classes)

trained end to end with categorical cross-entropy (Task loss "softmax_ce") and SGD, on the logits of
the last valid step (config.train.loss_on = "last"), or on those of every valid step, each against
the clip's label and averaged over the clip's steps ("every_step": `_every_step_forward`); either
way the prediction is the last valid step's. `model.fusion` picks the paper's method or one of its
baselines:

  "modal"   the equation above; a_a, a_v learned (model.learn_alpha) or fixed at model.alpha
  "visual"  x_f = g(W_v x_v + b_v)          "audio"  x_f = g(W_a x_a + b_a)
  "early"   x_f = g(W [x_a; x_v] + b)       (concatenation)
  "late"    an audio-only and a visual-only network trained one after the other (two phases), then
            p = a p_a + (1 - a) p_v with a = model.late_alpha (0.56); the output's logits are
            log p, so their softmax is p.

CNN. `model.conv` lists the convolutions as (features, kernel, stride, padding, max-pool 3x3/2
after, LRN after); the default is AlexNet's (Krizhevsky et al. 2012, one tower, no grouping), then
fc6 and fc7 (ReLU, dropout model.fc_dropout). Conv widths are multiplied by model.width. Inputs are
uint8 images stored larger than the crop (256 for AlexNet's 227): the forward crops them itself,
at a random offset per image in training (offsets drawn from the `dropout` stream of `rngs`) and at
the centre at evaluation (`rngs` None), then maps pixels to (x - model.pixel_mean) * model.pixel_scale.

The paper fine-tunes an AlexNet pretrained on a large dataset (002 Video segment and low level
feature extraction). model.alexnet_weights = the .npz that `python -m emojax.backbones.convert
--network=alexnet --source=alexnet-owt-7be5be79.pth --out=alexnet.npz` writes (docs/backbones.md):
both streams then start from a copy of that network, `emojax.backbones.alexnet` (torchvision's
one-GPU AlexNet: conv 64-192-384-256-256, no LRN, 6 x 6 average pool, fc6, fc7 of the file's width;
model.conv, width, fc_width are not used), with torchvision's preprocessing (x / 255, ImageNet
mean / std; a spectrogram as a grey RGB image) and dropout model.fc_dropout before fc6 and fc7.
"" (the default) trains the network of model.conv from scratch: emojax's choice, as the weights
are the user's to provide.

Other pretrained weights you own (model.visual_weights, model.audio_weights: paths to .npz files;
"" = train from scratch), for the network of model.conv. Arrays, by name:
  conv1/kernel (kh, kw, c_in, c_out), conv1/bias (c_out,), ... conv5/kernel, conv5/bias,
  fc6/kernel (d_in, d_out), fc6/bias, fc7/kernel, fc7/bias
(flax layout: HWIO kernels, (in, out) dense kernels; a Caffe/PyTorch export transposes them, and
fc6/kernel's rows follow the (h, w, c) flattening of conv5's pooled output). A conv1 kernel with 3
input channels loaded into the 1-channel spectrogram network is summed over its input channels
(the same as feeding the grey image as RGB). Other arrays (fc8, ...) are ignored. A missing name or
a shape that differs from the network's is a DataError naming the file, the array and both shapes.

Batches (per-clip unit), config.inputs.streams = (visual, audio): x[visual] (B, L, H, W, 3) uint8,
x[audio] (B, L, H, W) uint8, the valid segments of clips shorter than L from the harness's
`x_mask` of ragged streams (B, L) (or an x["segment_mask"] stream), clip_mask (B,),
y["<dim>_class"] (B,). One dimension per run (config.targets, one of valence / arousal).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from emojax import contract
from emojax import errors
from emojax import layout
from emojax import weights
from emojax.backbones import common as backbone_common
from emojax.nn import layers

FUSIONS = ("modal", "visual", "audio", "early", "late")
NUM_CLASSES = 3
LOSS_ON = ("last", "every_step")
ALEXNET_CONV = ((96, 11, 4, 0, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
                (384, 3, 1, 1, False, False), (256, 3, 1, 1, True, False))
_HE = jax.nn.initializers.he_normal()


# ----------------------------------------------------------------------------------------------
# Pieces.


def _pool_taps(x_NxHxWxC: jax.Array, k: int, s: int):
  """The k*k strided views (row-major window order) whose elementwise max is the pool."""
  n, h, w, c = x_NxHxWxC.shape
  ho, wo = (h - k) // s + 1, (w - k) // s + 1
  return [((i, j), jax.lax.slice(x_NxHxWxC, (0, i, j, 0), (n, i + s * (ho - 1) + 1,
                                                             j + s * (wo - 1) + 1, c),
                                 (1, s, s, 1)))
          for i in range(k) for j in range(k)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x_NxHxWxC: jax.Array, k: int = 3, s: int = 2) -> jax.Array:
  """AlexNet's overlapping max pool: k x k windows (3), stride s (2), no padding.

  The value is `lax.reduce_window`'s max; the gradient goes to each window's first maximum in
  row-major order (PyTorch's max_pool2d rule; XLA's select-and-scatter picks one maximum too),
  written as a custom VJP: k*k strided compares on the pooled grid and k*k dilated pads summed in
  one elementwise pass, where autodiff of reduce_window lowers to a variadic reduce-window plus
  an index scatter that XLA:CPU runs slowly (docs/benchmarks.md, seed 002's profile)."""
  out = None
  for _, tap in _pool_taps(x_NxHxWxC, k, s):
    out = tap if out is None else jnp.maximum(out, tap)
  return out


def _max_pool_fwd(x, k, s):
  y = max_pool(x, k, s)
  return y, (x, y)


def _max_pool_bwd(k, s, res, g):
  x, y = res
  _, h, w, _ = x.shape
  ho, wo = y.shape[1], y.shape[2]
  found = jnp.zeros(y.shape, bool)
  gx = None
  zero = jnp.zeros((), g.dtype)
  for (i, j), tap in _pool_taps(x, k, s):
    pick = (tap == y) & ~found
    found = found | pick
    part = jax.lax.pad(jnp.where(pick, g, zero), zero,
                       ((0, 0, 0), (i, h - i - s * (ho - 1) - 1, s - 1),
                        (j, w - j - s * (wo - 1) - 1, s - 1), (0, 0, 0)))
    gx = part if gx is None else gx + part
  return (gx,)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def local_response_norm(x_NxHxWxC: jax.Array, size: int = 5, k: float = 2.0, alpha: float = 1e-4,
                        beta: float = 0.75) -> jax.Array:
  """AlexNet's LRN across channels: x / (k + alpha * sum_{|j - c| <= size // 2} x_j^2)^beta."""
  half = size // 2
  sq = jnp.pad(jnp.square(x_NxHxWxC), ((0, 0), (0, 0), (0, 0), (half, half)))
  c = x_NxHxWxC.shape[-1]
  window = sum(sq[..., i:i + c] for i in range(size))
  return x_NxHxWxC / jnp.power(k + alpha * window, beta)


def conv_output_side(side: int, conv: Sequence[Sequence]) -> int:
  """Spatial side after the convolutions and pools of `conv` (square inputs)."""
  given = side
  for _, kernel, stride, pad, pool, _ in conv:
    side = (side + 2 * pad - kernel) // stride + 1
    if pool:
      side = (side - 3) // 2 + 1
    if side < 1:
      raise errors.ConfigError(f"config.model.conv shrinks a {given}-pixel crop (model.crop) to "
                               "nothing; use a larger model.crop or fewer strides / pools")
  return side


def crop_images(x_NxHxWxC: jax.Array, crop: int, key: jax.Array | None) -> jax.Array:
  """(N, crop, crop, C): random offsets per image when `key` is given, else the centre crop."""
  n, h, w, c = x_NxHxWxC.shape
  if crop > h or crop > w:
    raise errors.ConfigError(f"model.crop={crop} is larger than the stored images ({h} x {w}); "
                             "lower model.crop or rebuild the dataset with larger images")
  if key is None:
    top, left = (h - crop) // 2, (w - crop) // 2
    return x_NxHxWxC[:, top:top + crop, left:left + crop]
  ky, kx = jax.random.split(key)
  tops_N = _like_batch(jax.random.randint(ky, (n,), 0, h - crop + 1), x_NxHxWxC)
  lefts_N = _like_batch(jax.random.randint(kx, (n,), 0, w - crop + 1), x_NxHxWxC)
  one = lambda img, t, l: jax.lax.dynamic_slice(img, (t, l, 0), (crop, crop, c))
  return jax.vmap(one)(x_NxHxWxC, tops_N, lefts_N)


def _like_batch(v_N: jax.Array, x_NxDims: jax.Array) -> jax.Array:
  """`v_N` sharded along its axis as `x_NxDims` is along its batch axis (explicit meshes)."""
  sharding = getattr(jax.typeof(x_NxDims), "sharding", None)
  spec = getattr(sharding, "spec", None)
  if not spec or spec[0] is None:
    return v_N
  return jax.sharding.reshard(
      v_N, jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(spec[0])))


class AlexNet(nnx.Module):
  """Convolutions + fc6 + fc7 (ReLU, dropout) on (N, crop, crop, C) float images -> (N, fc_width)."""

  def __init__(self, in_channels: int, crop: int, conv: Sequence[Sequence], width: float,
               fc_width: int, fc_dropout: float, *, rngs: nnx.Rngs):
    self.lrn = tuple(bool(spec[5]) for spec in conv)
    self.pool = tuple(bool(spec[4]) for spec in conv)
    convs, c_in = [], in_channels
    for feats, kernel, stride, pad, _, _ in conv:
      c_out = max(1, int(round(feats * width)))
      convs.append(nnx.Conv(c_in, c_out, (kernel, kernel), (stride, stride),
                            padding=((pad, pad), (pad, pad)), kernel_init=_HE, rngs=rngs))
      c_in = c_out
    self.convs = nnx.List(convs)
    side = conv_output_side(crop, conv)
    self.fc6 = nnx.Linear(side * side * c_in, fc_width, kernel_init=_HE, rngs=rngs)
    self.fc7 = nnx.Linear(fc_width, fc_width, kernel_init=_HE, rngs=rngs)
    self.dropout = nnx.Dropout(fc_dropout)

  def __call__(self, x_NxHxWxC: jax.Array, rngs: nnx.Rngs | None) -> jax.Array:
    h = x_NxHxWxC
    for layer, pool, lrn in zip(self.convs, self.pool, self.lrn):
      h = jax.nn.relu(layer(h))
      if lrn:
        h = local_response_norm(h)
      if pool:
        h = max_pool(h)
    h = h.reshape(h.shape[0], -1)
    h = self.dropout(jax.nn.relu(self.fc6(h)), rngs=rngs)
    return self.dropout(jax.nn.relu(self.fc7(h)), rngs=rngs)

  def named_arrays(self) -> dict[str, nnx.Param]:
    """The arrays of the pretrained-weights naming (module docstring)."""
    out = {}
    for i, layer in enumerate(self.convs):
      out[f"conv{i + 1}/kernel"], out[f"conv{i + 1}/bias"] = layer.kernel, layer.bias
    for name in ("fc6", "fc7"):
      layer = getattr(self, name)
      out[f"{name}/kernel"], out[f"{name}/bias"] = layer.kernel, layer.bias
    return out


def load_pretrained(net: AlexNet, path: str, config_key: str) -> None:
  """Copies the arrays of the .npz at `path` into `net` (see the module docstring)."""
  if not os.path.isfile(path):
    raise errors.DataError(f"{path}: pretrained weights not found ({config_key}). Fix: give the "
                           "path of an .npz you own, or set it to '' to train from scratch.")
  arrays = weights.read_state_dict(path, what=config_key)  # a damaged file: WeightsError
  targets = net.named_arrays()
  missing = [k for k in targets if k not in arrays]
  if missing:
    raise errors.DataError(f"{path}: lacks {missing} ({config_key}); expected the names "
                           f"{sorted(targets)} (emojax/models/fusion_lstm.py docstring).")
  for name, param in targets.items():
    value = np.asarray(arrays[name], np.float32)
    want = tuple(param.shape)
    if name == "conv1/kernel" and value.ndim == 4 and value.shape[2] == 3 and want[2] == 1:
      value = value.sum(axis=2, keepdims=True)  # RGB filters seeing a grey image
    if value.shape != want:
      raise errors.DataError(
          f"{path}: array {name!r} has shape {tuple(np.shape(arrays[name]))} but the network "
          f"needs {want} ({config_key}). Fix: export weights of this architecture (model.conv, "
          "model.width, model.fc_width, model.crop) or change those keys to match the file.")
    param[...] = jnp.asarray(value)


class PretrainedAlexNet(nnx.Module):
  """The AlexNet of a converted torchvision file (`emojax.backbones.alexnet`), fine-tuned here:
  (N, crop, crop, C) ImageNet-normalised images -> fc7 (N, fc) after its ReLU. A 1-channel
  (spectrogram) image is fed as grey RGB. Dropout (torchvision's, before fc6 and fc7, at
  model.fc_dropout) in training, i.e. when `rngs` is given."""

  def __init__(self, net: nnx.Module, fc_dropout: float):
    self.net = net
    for i in ("0", "3"):
      self.net.classifier[i].rate = float(fc_dropout)

  def __call__(self, x_NxHxWxC: jax.Array, rngs: nnx.Rngs | None) -> jax.Array:
    if x_NxHxWxC.shape[-1] == 1:
      x_NxHxWxC = jnp.repeat(x_NxHxWxC, 3, axis=-1)
    return self.net(x_NxHxWxC, "fc7", train=rngs is not None, rngs=rngs)


def load_alexnet(path: str, fc_dropout: float) -> tuple[PretrainedAlexNet, int]:
  """(the fine-tunable network, its fc7 width) from a converted AlexNet .npz (model.alexnet_weights)."""
  from emojax.backbones import alexnet as alexnet_backbone  # pylint: disable=import-outside-toplevel
  from emojax.backbones import convert  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise errors.ConfigError(f"config.model.alexnet_weights={path!r}: no such file. Fix: convert "
                             "your AlexNet with `python -m emojax.backbones.convert "
                             "--network=alexnet --source=alexnet-owt-7be5be79.pth --out=alexnet.npz`"
                             " (docs/backbones.md), or set it to '' to train from scratch")
  loaded = convert.load(path)
  if not isinstance(loaded.model, alexnet_backbone.AlexNet):
    raise errors.ConfigError(f"config.model.alexnet_weights={path!r} holds converted "
                             f"{loaded.network!r} weights; give a converted alexnet file "
                             "(`python -m emojax.backbones.convert --network=alexnet ...`)")
  return PretrainedAlexNet(loaded.model, fc_dropout), int(loaded.config.get("fc", 4096))


class Branch(nnx.Module):
  """Fusion projection(s) -> LSTM -> MLP -> 3 logits, over the CNN features of some modalities."""

  def __init__(self, modalities: Sequence[str], fc_width: int, c: ml_collections.ConfigDict, *,
               early: bool, rngs: nnx.Rngs):
    self.modalities = tuple(modalities)
    self.early = early
    d = c.fusion_dim
    if early:
      self.proj = nnx.Dict({"early": nnx.Linear(fc_width * len(modalities), d, rngs=rngs)})
    else:
      self.proj = nnx.Dict({m: nnx.Linear(fc_width, d, rngs=rngs) for m in modalities})
    alpha = jnp.asarray([float(a) for a in c.alpha], jnp.float32)
    self.alpha = nnx.Param(alpha) if c.learn_alpha else nnx.Variable(alpha)
    self.lstm = layers.LSTMLayer(d, c.lstm_hidden, rngs=rngs)
    self.mlp = nnx.Linear(c.lstm_hidden, c.mlp_hidden, kernel_init=_HE, rngs=rngs)
    self.dropout = nnx.Dropout(c.dropout)
    self.out = nnx.Linear(c.mlp_hidden, NUM_CLASSES, rngs=rngs)

  def fuse(self, feats: dict[str, jax.Array]) -> jax.Array:
    """x_f (B, L, fusion_dim) from {modality: (B, L, fc_width)}."""
    if self.early:
      x = jnp.concatenate([feats[m] for m in self.modalities], axis=-1)
      return jax.nn.relu(self.proj["early"](x))
    if len(self.modalities) == 1:
      return jax.nn.relu(self.proj[self.modalities[0]](feats[self.modalities[0]]))
    alpha = self.alpha[...]
    return sum(alpha[i] * jax.nn.relu(self.proj[m](feats[m]))  # order: MODALITY_ORDER
               for i, m in enumerate(self.modalities))

  def _scan(self, feats: dict[str, jax.Array], mask_BxL: jax.Array | None):
    """LSTM over x_f: (outputs h (L, 1, B, H), 0 at invalid steps; final state (1, B, H))."""
    x_BxLxD = self.fuse(feats)
    gates_LxBx4H = self.lstm.gates(jnp.swapaxes(x_BxLxD, 0, 1))
    mask = None if mask_BxL is None else jnp.asarray(mask_BxL, bool).T[:, None, :]
    return layers.lstm_scan(gates_LxBx4H[:, None], self.lstm.w_hh[...][None], mask)

  def head(self, h_xH: jax.Array, rngs: nnx.Rngs | None) -> jax.Array:
    """The MLP on LSTM outputs (..., H) -> logits (..., 3)."""
    return self.out(self.dropout(jax.nn.relu(self.mlp(h_xH)), rngs=rngs))

  def __call__(self, feats: dict[str, jax.Array], mask_BxL: jax.Array | None,
               rngs: nnx.Rngs | None) -> jax.Array:
    _, h_1xBxH = self._scan(feats, mask_BxL)
    return self.head(h_1xBxH[0], rngs)

  def step_logits(self, feats: dict[str, jax.Array], mask_BxL: jax.Array | None,
                  rngs: nnx.Rngs | None) -> jax.Array:
    """Logits (B, L, 3) of the MLP on the LSTM output of every step (train.loss_on="every_step")."""
    h_Lx1xBxH, _ = self._scan(feats, mask_BxL)
    return self.head(jnp.swapaxes(h_Lx1xBxH[:, 0], 0, 1), rngs)


MODALITY_ORDER = ("audio", "visual")  # alpha[0] = a_a, alpha[1] = a_v


def branch_modalities(fusion: str) -> dict[str, tuple[str, ...]]:
  """Branch name -> the modalities it reads, for a fusion scheme."""
  if fusion in ("modal", "early"):
    return {"fused": MODALITY_ORDER}
  if fusion == "late":
    return {"audio": ("audio",), "visual": ("visual",)}
  return {fusion: (fusion,)}


class FusionLSTM(nnx.Module):
  """CNN encoders (one per modality used) and the branch(es) of `model.fusion`."""

  def __init__(self, config: ml_collections.ConfigDict, feature_dims: dict, *, rngs: nnx.Rngs):
    c = config.model
    self.crop = int(c.crop)
    roles = stream_roles(config)
    self.visual_stream, self.audio_stream = roles["visual"], roles["audio"]
    branches = branch_modalities(c.fusion)
    used = [m for m in MODALITY_ORDER if any(m in ms for ms in branches.values())]
    self.imagenet = bool(c.get("alexnet_weights", ""))  # torchvision preprocessing
    fc_width = c.fc_width
    encoders = {}
    for m in used:
      stream = self.stream(m)
      if stream not in feature_dims:
        raise errors.ConfigError(f"the dataset has no stream {stream!r} (the {m} stream of "
                                 f"config.inputs.streams); it has {sorted(feature_dims)}")
      shape = tuple(feature_dims[stream])
      channels = shape[-1] if m == "visual" else 1
      if (m == "visual" and (len(shape) != 4 or channels != 3)) or (m == "audio" and len(shape) != 3):
        want = "(L, H, W, 3)" if m == "visual" else "(L, H, W)"
        raise errors.ConfigError(f"stream {stream!r} (the {m} stream of config.inputs.streams) has "
                                 f"example shape {shape}, expected {want}")
      crop_images(jnp.zeros((1, *shape[1:3], 1)), self.crop, None)  # crop fits the images
      if self.imagenet:  # the paper's path: fine-tune a pretrained AlexNet (one copy per stream)
        encoders[m], fc_width = load_alexnet(c.alexnet_weights, c.fc_dropout)
      else:
        encoders[m] = AlexNet(channels, self.crop, c.conv, c.width, c.fc_width, c.fc_dropout,
                              rngs=rngs)
    self.encoders = nnx.Dict(encoders)
    self.branches = nnx.Dict({name: Branch(ms, fc_width, c, early=c.fusion == "early", rngs=rngs)
                              for name, ms in branches.items()})
    self.late_alpha = float(c.late_alpha)
    self.pixel_mean = tuple(float(v) for v in c.pixel_mean)
    self.pixel_scale = float(c.pixel_scale)
    for m, path in (("visual", c.visual_weights), ("audio", c.audio_weights)):
      if path and m in encoders and not self.imagenet:
        load_pretrained(encoders[m], path, f"config.model.{m}_weights")

  def stream(self, m: str) -> str:
    return self.visual_stream if m == "visual" else self.audio_stream

  def encode(self, batch: dict, m: str, rngs: nnx.Rngs | None) -> jax.Array:
    """(B, L, fc_width) CNN features of every segment of modality `m`."""
    x = batch["x"][self.stream(m)]
    if m == "audio":
      x = x[..., None]
    b, l = x.shape[:2]
    x_NxHxWxC = x.reshape(b * l, *x.shape[2:])
    key = None if rngs is None else rngs.dropout()
    x_NxHxWxC = crop_images(x_NxHxWxC, self.crop, key).astype(jnp.float32)
    if self.imagenet:  # torchvision's: x / 255, then ImageNet mean / std (grey as RGB)
      x_NxHxWxC = jnp.broadcast_to(x_NxHxWxC, (*x_NxHxWxC.shape[:3], 3))
      h = self.encoders[m](backbone_common.normalize(x_NxHxWxC), rngs)
      return h.reshape(b, l, -1)
    mean = jnp.asarray(self.pixel_mean if m == "visual" else np.mean(self.pixel_mean), jnp.float32)
    h = self.encoders[m]((x_NxHxWxC - mean) * self.pixel_scale, rngs)
    return h.reshape(b, l, -1)

  def branch(self, name: str, batch: dict, rngs: nnx.Rngs | None) -> jax.Array:
    """One fusion branch over the clip's segments."""
    br = self.branches[name]
    feats = {m: self.encode(batch, m, rngs) for m in br.modalities}
    return br(feats, _segment_mask(batch, [self.stream(m) for m in br.modalities]), rngs)

  def branch_steps(self, name: str, batch: dict, rngs: nnx.Rngs | None
                   ) -> tuple[jax.Array, jax.Array]:
    """Per-step logits (B, L, 3) of a branch and its valid steps (B, L)."""
    br = self.branches[name]
    feats = {m: self.encode(batch, m, rngs) for m in br.modalities}
    mask = _segment_mask(batch, [self.stream(m) for m in br.modalities])
    logits = br.step_logits(feats, mask, rngs)
    valid = jnp.ones(logits.shape[:2], bool) if mask is None else jnp.asarray(mask, bool)
    return logits, valid

  def late(self, batch: dict) -> jax.Array:
    """log(a p_a + (1 - a) p_v): logits whose softmax is the late-fusion mixture."""
    p_a = jax.nn.softmax(self.branch("audio", batch, None), axis=-1)
    p_v = jax.nn.softmax(self.branch("visual", batch, None), axis=-1)
    return jnp.log(self.late_alpha * p_a + (1.0 - self.late_alpha) * p_v + 1e-12)


# ----------------------------------------------------------------------------------------------
# The method contract.


def _target(config: ml_collections.ConfigDict) -> str:
  targets = tuple(config.targets)
  if len(targets) != 1 or targets[0] not in ("valence", "arousal"):
    raise errors.ConfigError(f"fusion_lstm predicts one dimension per run; config.targets="
                             f"{targets}: use ('valence',) or ('arousal',) (config arg valence / "
                             "arousal)")
  return targets[0]


def stream_roles(config: ml_collections.ConfigDict) -> dict[str, str]:
  """{"visual": stream, "audio": stream} of config.inputs.streams = (visual, audio)."""
  streams = tuple(config.inputs.streams)
  if len(streams) != 2:
    raise errors.ConfigError(f"config.inputs.streams={streams}: give (visual stream, audio "
                             "stream), e.g. ('keyframe', 'spectrogram_image')")
  return {"visual": str(streams[0]), "audio": str(streams[1])}


def _check(config: ml_collections.ConfigDict) -> None:
  c = config.model
  if c.fusion not in FUSIONS:
    raise errors.ConfigError(f"config.model.fusion={c.fusion!r}; use one of {FUSIONS}")
  if len(tuple(c.alpha)) != 2:
    raise errors.ConfigError(f"config.model.alpha={tuple(c.alpha)} must be (a_audio, a_visual)")
  if not 0.0 <= c.late_alpha <= 1.0:
    raise errors.ConfigError(f"config.model.late_alpha={c.late_alpha} must lie in [0, 1]")
  for key in ("width", "fc_width", "fusion_dim", "lstm_hidden", "mlp_hidden", "crop"):
    if not c[key] > 0:
      raise errors.ConfigError(f"config.model.{key}={c[key]} must be > 0")
  for spec in c.conv:
    if len(tuple(spec)) != 6:
      raise errors.ConfigError(f"config.model.conv entry {spec} must be (features, kernel, "
                               "stride, padding, pool, lrn)")
  if c.get("alexnet_weights", "") and (c.visual_weights or c.audio_weights):
    raise errors.ConfigError("config.model.alexnet_weights and config.model.visual_weights / "
                             "audio_weights both set: give the converted torchvision AlexNet "
                             "(alexnet_weights) or your own .npz per stream, not both")
  if not c.get("alexnet_weights", ""):
    conv_output_side(int(c.crop), c.conv)
  loss_on = config.train.get("loss_on", "last")
  if loss_on not in LOSS_ON:
    raise errors.ConfigError(f"config.train.loss_on={loss_on!r}; use one of {LOSS_ON}")
  _target(config)


def task(config: ml_collections.ConfigDict) -> contract.Task:
  return layout.task(config, (_target(config),), kind="classification", num_classes=NUM_CLASSES,
                     unit="clip", loss="softmax_ce")


def modalities(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  streams = stream_roles(config)
  used = {m for ms in branch_modalities(config.model.fusion).values() for m in ms}
  return tuple(streams[m] for m in MODALITY_ORDER if m in used)


def create(config: ml_collections.ConfigDict, feature_dims: dict, rngs: nnx.Rngs) -> FusionLSTM:
  _check(config)
  return FusionLSTM(config, feature_dims, rngs=rngs)


def _branch_forward(name: str):
  def forward(model: FusionLSTM, batch: dict, rngs: nnx.Rngs | None) -> jax.Array:
    return model.branch(name, batch, rngs)
  return forward


def every_step_ce(step_logits_BxLxC: jax.Array, valid_BxL: jax.Array, y_B: jax.Array) -> jax.Array:
  """(B,) the clip label's cross-entropy at every valid step, averaged over the clip's steps."""
  ce_BxL = optax.softmax_cross_entropy_with_integer_labels(
      step_logits_BxLxC, jnp.broadcast_to(jnp.asarray(y_B, jnp.int32)[:, None], valid_BxL.shape))
  w_BxL = valid_BxL.astype(ce_BxL.dtype)
  return jnp.sum(w_BxL * ce_BxL, axis=1) / jnp.maximum(jnp.sum(w_BxL, axis=1), 1.0)


def logits_with_ce(ce_B: jax.Array, y_B: jax.Array, num_classes: int) -> jax.Array:
  """Logits (B, C) whose softmax cross-entropy with label y is exactly ce (>= 0), differentiably:
  0 for the label, k = log((e^ce - 1) / (C - 1)) for the others (log(1 + (C - 1) e^k) = ce),
  written ce + log(1 - e^-ce) - log(C - 1) so that a large ce does not overflow."""
  ce_B = jnp.maximum(ce_B, 1e-30)
  k_B = ce_B + jnp.log(-jnp.expm1(-ce_B)) - np.log(num_classes - 1)
  label_BxC = jax.nn.one_hot(jnp.asarray(y_B, jnp.int32), num_classes, dtype=bool)
  return jnp.where(label_BxC, 0.0, k_B[:, None])


def _every_step_forward(name: str, label_key: str):
  """train.loss_on = "every_step": the paper's "trained end-to-end to predict the videos emotion
  class at each time step" (002 Experiment Settings).

  The contract's loss for per-clip examples takes one logit vector per clip, so in training (rngs
  given) this forward returns the logits `logits_with_ce` makes from the per-step loss
  (`every_step_ce`, which reads the clip's label from the batch): the harness's softmax CE of them
  is that loss, with its gradients. At evaluation (rngs None) it is the last valid step's logits,
  as with "last" (what the harness validates and predicts). A store with per-step clip outputs
  ((B, L, C) logits and labels, a (B, L) step `loss_mask`) would need neither trick.
  """
  def forward(model: FusionLSTM, batch: dict, rngs: nnx.Rngs | None) -> jax.Array:
    if rngs is None:
      return model.branch(name, batch, rngs)
    logits_BxLxC, valid_BxL = model.branch_steps(name, batch, rngs)
    y_B = batch["y"][label_key]
    return logits_with_ce(every_step_ce(logits_BxLxC, valid_BxL, y_B), y_B, NUM_CLASSES)
  return forward


def _train_forward(config: ml_collections.ConfigDict, name: str):
  if config.train.get("loss_on", "last") == "every_step":
    return _every_step_forward(name, task(config).label_key(_target(config)))
  return _branch_forward(name)


def _late_forward(model: FusionLSTM, batch: dict, rngs: nnx.Rngs | None) -> jax.Array:
  del rngs  # evaluation only
  return model.late(batch)


def phases(config: ml_collections.ConfigDict) -> list[contract.Phase]:
  _check(config)
  target, t = _target(config), config.train
  common = dict(task=task(config), epochs=float(t.epochs),
                optimizer=contract.optimizer_spec(config.optim),
                eval_every_epochs=float(t.eval_every_epochs), patience=int(t.patience))
  fusion = config.model.fusion
  if fusion != "late":
    name = next(iter(branch_modalities(fusion)))
    return [contract.Phase(f"{target}/{fusion}", forward=_train_forward(config, name), **common)]
  return [contract.Phase(f"{target}/late_{m}", forward=_train_forward(config, m),
                         trainable=layers.params_under(("encoders", m), ("branches", m)), **common)
          for m in ("audio", "visual")]


def plan(config: ml_collections.ConfigDict, done: list[dict]) -> contract.Phase | None:
  todo = phases(config)
  return todo[len(done)] if len(done) < len(todo) else None


def outputs(config: ml_collections.ConfigDict) -> dict[str, contract.Output]:
  fusion = config.model.fusion
  forward = _late_forward if fusion == "late" else _branch_forward(
      next(iter(branch_modalities(fusion))))
  return {_target(config): contract.Output(forward=forward, task=task(config))}


def variants(config: ml_collections.ConfigDict) -> dict[str, dict[str, contract.Output]]:
  """Late fusion: each trained single-modality branch on its own (ablation rows)."""
  if config.model.fusion != "late":
    return {}
  return {f"late_{m}_branch": {_target(config): contract.Output(forward=_branch_forward(m),
                                                                task=task(config))}
          for m in ("audio", "visual")}


def _segment_mask(batch: dict, streams) -> jax.Array | None:
  """(B, L) valid segments: the harness pads ragged per-clip streams and marks them in x_mask."""
  if "segment_mask" in batch["x"]:
    return batch["x"]["segment_mask"]
  masks = [batch["x_mask"][s] for s in streams if s in batch.get("x_mask", {})]
  if not masks:
    return None
  out = masks[0]
  for m in masks[1:]:
    out = out & m
  return out
