"""`vggish_embedding`: the VGGish embedding of each second, from weights the user gives.

VGGish (Hershey et al. 2017, tensorflow/models research/audioset/vggish) in Flax NNX on the
`vggish_logmel` patch of each second (the first 0.96 s, 96 frames x 64 mel bands, NHWC
(B, 96, 64, 1)):
  conv1 64, pool, conv2 128, pool, conv3_1 256, conv3_2 256, pool, conv4_1 512, conv4_2 512, pool
  (3x3 convolutions, stride 1, 'SAME', each followed by ReLU; 2x2 max pools, stride 2:
  96x64 -> 6x4), flatten in NHWC order (6 x 4 x 512 = 12288), fc1_1 4096 + ReLU, fc1_2 4096 +
  ReLU, fc2 128 (+ ReLU when `final_relu`, as in the PyTorch port torchvggish; TensorFlow's
  current release has a linear fc2: pass `final_relu=False` for weights converted from it).

Weights: no weights ship with emojax and nothing is downloaded. The user converts a published
checkpoint once into one `.npz` (`python -m emojax.features.convert_vggish`, see its docstring)
with these arrays (float32):

  conv1/kernel (3, 3, 1, 64) HWIO, conv1/bias (64,), conv2/*, conv3_1/*, conv3_2/*, conv4_1/*,
  conv4_2/* likewise; fc1_1/kernel (12288, 4096) (in, out), the input index being the NHWC
  flattening of the (6, 4, 512) map; fc1_1/bias (4096,); fc1_2/*; fc2/kernel (4096, 128),
  fc2/bias (128,); optionally pca_eigen_vectors (128, 128) (rows = components) and pca_means
  (128,) of the published postprocessor.

The widths are read from the file (so tests can use a narrow network); the layer list, kernel
sizes and pools are VGGish's. A missing array, an unexpected one, or a shape that does not chain
is a `DataError` naming the array and the file.

Postprocessing (`postprocess`), as published in VGGish's `vggish_postprocess.py` (AudioSet's
released embeddings):
  'none': the network's output;
  'pca': pca_eigen_vectors @ (embedding - pca_means) (PCA with whitening);
  'pca_quantize': that, clipped to [-2, 2] and quantised to 8 bits:
      uint8((clip(x, -2, 2) + 2) * 255 / 4)  (truncation), stored as float32 values 0..255.

Rows are computed 16 seconds at a time in one jitted call (the last batch padded, so one
compilation), i.e. they come out up to 15 seconds late (see `registry.Extractor.audio_rows`).
"""

from __future__ import annotations

import functools
import hashlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax import weights
from emojax.features import registry
from emojax.features import vggish_logmel

CONVS = ("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2")
POOL_AFTER = ("conv1", "conv2", "conv3_2", "conv4_2")  # a 2x2 max pool follows these
FCS = ("fc1_1", "fc1_2", "fc2")
PCA = ("pca_eigen_vectors", "pca_means")
POSTPROCESS = ("none", "pca", "pca_quantize")
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0  # vggish_params.QUANTIZE_MIN_VAL / QUANTIZE_MAX_VAL
MAP_SHAPE = (vggish_logmel.PATCH_FRAMES // 16, vggish_logmel.NUM_BANDS // 16)  # (6, 4) after pools
BATCH_SECONDS = 16
CONVERT_HINT = ("convert a published VGGish checkpoint with `python -m "
                "emojax.features.convert_vggish` (docs/features.md, 'vggish_embedding')")


def param_names(with_pca: bool = False) -> list[str]:
  names = [f"{layer}/{p}" for layer in CONVS + FCS for p in ("kernel", "bias")]
  return names + (list(PCA) if with_pca else [])


class Vggish(nnx.Module):
  """VGGish; `widths` = output channels of the 6 convs, then output sizes of the 3 fc layers."""

  def __init__(self, widths: tuple[int, ...], final_relu: bool = True, *, rngs: nnx.Rngs):
    conv_w, fc_w = widths[:len(CONVS)], widths[len(CONVS):]
    cins = (1,) + conv_w[:-1]
    self.convs = nnx.List([nnx.Conv(cin, cout, (3, 3), padding="SAME", rngs=rngs)
                           for cin, cout in zip(cins, conv_w)])
    fins = (MAP_SHAPE[0] * MAP_SHAPE[1] * conv_w[-1],) + fc_w[:-1]
    self.fcs = nnx.List([nnx.Linear(fin, fout, rngs=rngs) for fin, fout in zip(fins, fc_w)])
    self.final_relu = final_relu

  def __call__(self, patch_BxTxF: jax.Array) -> jax.Array:
    """(B, 96, 64) log-mel patches -> (B, E) embeddings."""
    x_BxHxWxC = patch_BxTxF[..., None]
    for name, conv in zip(CONVS, self.convs):
      x_BxHxWxC = jax.nn.relu(conv(x_BxHxWxC))
      if name in POOL_AFTER:
        x_BxHxWxC = nnx.max_pool(x_BxHxWxC, (2, 2), strides=(2, 2), padding="VALID")
    x_BxD = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    for i, fc in enumerate(self.fcs):
      x_BxD = fc(x_BxD)
      if i < len(self.fcs) - 1 or self.final_relu:
        x_BxD = jax.nn.relu(x_BxD)
    return x_BxD


def read_weights(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """The arrays of a weights `.npz`, checked: every name present, none unexpected, shapes chain."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.ConfigError(f"vggish_embedding: weights file {path} does not exist (param "
                             f"weights_path); {CONVERT_HINT}")
  arrays = weights.read_state_dict(path, what="VGGish weights (param weights_path)")
  with_pca = any(k in arrays for k in PCA)
  expected = param_names(with_pca)
  missing = [k for k in expected if k not in arrays]
  if missing:
    raise errors.DataError(f"{path}: VGGish weight(s) {missing} missing; the file must hold "
                           f"{expected}; {CONVERT_HINT}")
  unexpected = sorted(set(arrays) - set(expected))
  if unexpected:
    raise errors.DataError(f"{path}: unexpected array(s) {unexpected}; VGGish weights are "
                           f"{expected}; {CONVERT_HINT}")
  cin = 1
  for layer in CONVS:
    k, b = arrays[f"{layer}/kernel"], arrays[f"{layer}/bias"]
    if k.ndim != 4 or k.shape[:3] != (3, 3, cin):
      raise errors.DataError(f"{path}: weight '{layer}/kernel' has shape {k.shape}, expected "
                             f"(3, 3, {cin}, out) (HWIO)")
    cin = k.shape[3]
    if b.shape != (cin,):
      raise errors.DataError(f"{path}: weight '{layer}/bias' has shape {b.shape}, expected "
                             f"({cin},)")
  fin = MAP_SHAPE[0] * MAP_SHAPE[1] * cin
  for layer in FCS:
    k, b = arrays[f"{layer}/kernel"], arrays[f"{layer}/bias"]
    if k.ndim != 2 or k.shape[0] != fin:
      raise errors.DataError(f"{path}: weight '{layer}/kernel' has shape {k.shape}, expected "
                             f"({fin}, out) (in, out)")
    fin = k.shape[1]
    if b.shape != (fin,):
      raise errors.DataError(f"{path}: weight '{layer}/bias' has shape {b.shape}, expected "
                             f"({fin},)")
  if with_pca:
    if arrays["pca_eigen_vectors"].shape != (fin, fin):
      raise errors.DataError(f"{path}: weight 'pca_eigen_vectors' has shape "
                             f"{arrays['pca_eigen_vectors'].shape}, expected ({fin}, {fin})")
    if arrays["pca_means"].size != fin:
      raise errors.DataError(f"{path}: weight 'pca_means' has shape {arrays['pca_means'].shape}"
                             f", expected ({fin},)")
    arrays["pca_means"] = arrays["pca_means"].reshape(fin)
  for name, a in arrays.items():
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
      raise errors.DataError(f"{path}: weight '{name}' is not finite floating point "
                             f"({a.dtype}); {CONVERT_HINT}")
  return {k: a.astype(np.float32) for k, a in arrays.items()}


def widths_of(arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
  return tuple(int(arrays[f"{layer}/kernel"].shape[-1]) for layer in CONVS + FCS)


def load_vggish(path: str | pathlib.Path, final_relu: bool = True
                ) -> tuple[Vggish, dict[str, np.ndarray]]:
  """(model with the file's weights, {pca name: array} (empty without PCA))."""
  arrays = read_weights(path)
  widths = widths_of(arrays)
  model = nnx.eval_shape(lambda: Vggish(widths, final_relu, rngs=nnx.Rngs(0)))
  for layer, module in zip(CONVS + FCS, list(model.convs) + list(model.fcs)):
    module.kernel.set_value(jnp.asarray(arrays[f"{layer}/kernel"]))
    module.bias.set_value(jnp.asarray(arrays[f"{layer}/bias"]))
  return model, {k: arrays[k] for k in PCA if k in arrays}


def postprocess(embedding_BxE: np.ndarray, pca: dict[str, np.ndarray], mode: str) -> np.ndarray:
  """VGGish's published postprocessing (see the module docstring); float32 out."""
  if mode == "none":
    return np.asarray(embedding_BxE, np.float32)
  x_BxE = np.asarray(embedding_BxE, np.float64)
  pca_BxE = (x_BxE - pca["pca_means"]) @ pca["pca_eigen_vectors"].astype(np.float64).T
  if mode == "pca":
    return pca_BxE.astype(np.float32)
  clipped = np.clip(pca_BxE, QUANTIZE_MIN, QUANTIZE_MAX)
  codes = ((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))).astype(np.uint8)
  return codes.astype(np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef: nnx.GraphDef, state: nnx.State, patch_BxTxF: jax.Array) -> jax.Array:
  return nnx.merge(graphdef, state)(patch_BxTxF)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int, final_relu: bool):
  del mtime_ns, size  # part of the cache key only: a rewritten file is read again
  model, pca = load_vggish(path, final_relu)
  graphdef, state = nnx.split(model)
  return graphdef, state, pca


def file_sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _describe(path: str, mtime_ns: int, size: int) -> tuple[tuple[int, ...], bool, str]:
  """(widths, has PCA arrays, sha256) of a checked weights file, once per process and version."""
  del mtime_ns, size  # part of the cache key only
  arrays = read_weights(path)
  return widths_of(arrays), all(k in arrays for k in PCA), file_sha256(pathlib.Path(path))


@registry.register
class VggishEmbedding(registry.Extractor):
  """Per second: the (E,) VGGish embedding (E = 128 for VGGish's weights) of its log-mel patch.

  Params: `weights_path` (the `.npz`, required), `weights_sha256` (filled with the file's hash;
  when given, e.g. from a manifest, the file must match), `postprocess` ('none', 'pca',
  'pca_quantize'; the PCA ones need the PCA arrays in the file), `final_relu` (True: torchvggish;
  False: TensorFlow's current VGGish).
  """

  name = "vggish_embedding"
  version = 1
  modality = "audio"
  defaults = {"weights_path": "", "weights_sha256": "", "postprocess": "none",
              "final_relu": True}

  def __init__(self, **params):
    super().__init__(**params)
    p = self.params
    if not p["weights_path"]:
      raise errors.ConfigError("vggish_embedding needs params={'weights_path': "
                               f"'/path/to/vggish.npz'}}; {CONVERT_HINT}")
    if p["postprocess"] not in POSTPROCESS:
      raise errors.ConfigError(f"vggish_embedding: postprocess must be one of {POSTPROCESS}, "
                               f"got {p['postprocess']!r}")
    if not isinstance(p["final_relu"], bool):
      raise errors.ConfigError(f"vggish_embedding: final_relu must be true or false, got "
                               f"{p['final_relu']!r}")
    path = pathlib.Path(p["weights_path"])
    if not path.is_file():
      raise errors.ConfigError(f"vggish_embedding: weights file {path} does not exist (param "
                               f"weights_path); {CONVERT_HINT}")
    stat = path.stat()
    # Checks the file now (a bad file fails before any decoding); read once per process.
    widths, has_pca, digest = _describe(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if p["postprocess"] != "none" and not has_pca:
      raise errors.DataError(f"{path}: postprocess={p['postprocess']!r} needs the arrays "
                             f"{list(PCA)}, which the file lacks; convert it with the PCA "
                             "parameters (convert_vggish --pca) or use postprocess='none'")
    if p["weights_sha256"] and p["weights_sha256"] != digest:
      raise errors.ConfigError(
          f"vggish_embedding: {path} has sha256 {digest}, but these features were made with "
          f"weights of sha256 {p['weights_sha256']}; pass the original file as weights_path")
    p["weights_sha256"] = digest
    self.weights_path = path
    self.embed_dim = widths[-1]
    self._model = None  # loaded in begin()

  def row_shape(self) -> tuple[int, ...]:
    return (self.embed_dim,)

  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    if self._model is None:
      stat = self.weights_path.stat()
      self._model = _load_cached(str(self.weights_path.resolve()), stat.st_mtime_ns,
                                 stat.st_size, bool(self.params["final_relu"]))
    self._patches: list[np.ndarray] = []

  def embed(self, patches_BxTxF: np.ndarray) -> np.ndarray:
    """(B, 96, 64) log-mel patches -> (B, E) rows (postprocessed), in fixed-size batches."""
    graphdef, state, pca = self._model
    n = len(patches_BxTxF)
    out = []
    for start in range(0, n, BATCH_SECONDS):
      batch = np.zeros((BATCH_SECONDS, vggish_logmel.PATCH_FRAMES, vggish_logmel.NUM_BANDS),
                       np.float32)
      chunk = patches_BxTxF[start:start + BATCH_SECONDS]
      batch[:len(chunk)] = chunk
      out.append(np.asarray(_forward(graphdef, state, jnp.asarray(batch)))[:len(chunk)])
    if not out:
      return np.zeros((0, self.embed_dim), np.float32)
    return postprocess(np.concatenate(out), pca, self.params["postprocess"])

  def _flush(self) -> list[np.ndarray]:
    if not self._patches:
      return []
    rows = list(self.embed(np.stack(self._patches)))
    self._patches = []
    return rows

  def audio_rows(self, s: int, x_S: np.ndarray) -> list[np.ndarray]:
    del s
    self._patches.append(vggish_logmel.log_mel(x_S))
    return self._flush() if len(self._patches) >= BATCH_SECONDS else []

  def finish(self) -> list[np.ndarray]:
    return self._flush()
