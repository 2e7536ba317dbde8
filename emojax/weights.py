"""The one reader of user weight files: state dicts, converter inputs and converted weights.

Every place that reads weights the user owns (a converter's input, an importer's `--state_dict`, a
config's `model.weights`) calls `read_state_dict` and, once it knows the layout it expects,
`check_layout`; both raise `errors.WeightsError` with one form: the file, what is wrong, the fix.

Formats: `.npz` (NumPy; no extra package), `.pth` / `.pt` / `.pth.tar` (a PyTorch state dict; needs
the optional torch, and accepts the common `{"state_dict": ...}` checkpoint wrapper and the
`module.` prefix of DataParallel saves), `.h5` / `.hdf5` (Keras / HDF5 weights: every dataset,
named by its path inside the file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import zipfile
from collections.abc import Iterable, Mapping

import numpy as np

from emojax import errors

TORCH_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".bin")
H5_SUFFIXES = (".h5", ".hdf5")


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
  """Hex SHA-256 of a file (recorded in feature manifests and converted files)."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def _fail(path, what: str, fix: str) -> errors.WeightsError:
  return errors.WeightsError(f"{path}: {what}; {fix}")


def _check_file(path, what: str) -> pathlib.Path:
  path = pathlib.Path(path)
  if not path.exists():
    raise _fail(path, f"{what} does not exist", "check the path (it must be a file you downloaded "
                "or converted; emojax never downloads weights)")
  if path.is_dir():
    raise _fail(path, f"{what} is a folder", "give the weights file itself")
  return path


def read_state_dict(path: str | os.PathLike, *, what: str = "weights file",
                    dtype=None) -> dict[str, np.ndarray]:
  """{parameter name: array} from a `.npz`, a PyTorch state dict or an HDF5 file.

  `what` names the file's role in messages (e.g. "--state_dict", "config.model.weights").
  `dtype` casts every floating array (None keeps the stored dtype).
  """
  path = _check_file(path, what)
  suffix = path.suffix.lower()
  if suffix == ".npz":
    state = _read_npz(path, what)
  elif suffix in TORCH_SUFFIXES:
    state = _read_torch(path, what)
  elif suffix in H5_SUFFIXES:
    state = _read_h5(path, what)
  else:
    raise _fail(path, f"unknown {what} format '{suffix or '(no suffix)'}'",
                "use .npz (NumPy), .pth / .pt (PyTorch state dict) or .h5 (HDF5)")
  if not state:
    raise _fail(path, f"{what} holds no arrays", "is it the right file?")
  if dtype is not None:
    state = {k: (v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v)
             for k, v in state.items()}
  return state


def _read_npz(path: pathlib.Path, what: str) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: np.asarray(z[k]) for k in z.files}
  except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
    raise _fail(path, f"cannot read the {what} as .npz ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else 'damaged'})",
                "the file is damaged or truncated: download or convert it again") from e


def _read_torch(path: pathlib.Path, what: str) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _fail(path, f"reading a PyTorch {what} needs the optional torch",
                "pip install torch (CPU is enough), or convert it to .npz where torch is "
                "installed: numpy.savez('weights.npz', **{k: v.numpy() for k, v in "
                "torch.load(path, map_location='cpu').items()})") from e
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).splitlines()[0] if str(e) else ""
    raise _fail(path, f"cannot read the {what} as a PyTorch state dict ({type(e).__name__}: "
                f"{first[:200]})", "the file is damaged, or pickles a whole model: load it with its "
                "authors' code and save model.state_dict()") from e
  for key in ("state_dict", "model_state_dict", "model"):
    if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
      obj = obj[key]
      break
  if not isinstance(obj, Mapping):
    raise _fail(path, f"holds a {type(obj).__name__}, not a state dict",
                "save model.state_dict() instead of the model")
  out = {}
  for k, v in obj.items():
    if not hasattr(v, "detach"):
      continue  # e.g. an epoch counter saved beside the weights
    name = k[len("module."):] if k.startswith("module.") else k
    out[name] = v.detach().cpu().numpy()
  return out


def _read_h5(path: pathlib.Path, what: str) -> dict[str, np.ndarray]:
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _fail(path, f"reading an HDF5 {what} needs h5py", "pip install h5py") from e
  out: dict[str, np.ndarray] = {}
  try:
    with h5py.File(path, "r") as f:
      def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
          out[name] = np.asarray(obj)
      f.visititems(visit)
  except OSError as e:
    raise _fail(path, f"cannot read the {what} as HDF5 ({str(e).splitlines()[0]})",
                "the file is damaged or truncated: download it again") from e
  return out


@contextlib.contextmanager
def open_h5(path: str | os.PathLike, *, what: str = "weights file"):
  """The open `h5py.File` of a user's HDF5 file, for a reader that needs more than its arrays (a
  Keras model's config attributes); a missing, damaged or truncated file: WeightsError."""
  path = _check_file(path, what)
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _fail(path, f"reading an HDF5 {what} needs h5py", "pip install h5py") from e
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise _fail(path, f"cannot read the {what} as HDF5 ({str(e).splitlines()[0]})",
                "the file is damaged or truncated: download it again") from e
  with f:
    try:
      yield f
    except (OSError, KeyError) as e:  # a damaged dataset or group inside a file that opened
      raise _fail(path, f"cannot read the {what} ({type(e).__name__}: "
                  f"{str(e).splitlines()[0] if str(e) else 'damaged'})",
                  "the file is damaged or truncated: download it again") from e


def check_layout(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]],
                 path: str | os.PathLike, *, published: str = "",
                 ignore: Iterable[str] = ()) -> None:
  """Every expected name present with its shape, nothing unexpected (except `ignore`).

  Raises WeightsError naming the file and the first parameter that does not fit; `published` names
  the layout (e.g. "torchvision resnet50") so a foreign file is recognised as such.
  """
  ignore = set(ignore)
  layout = f" ({published})" if published else ""
  for name, shape in expected.items():
    if name not in state:
      near = sorted(state)[:3]
      raise _fail(path, f"parameter '{name}' of the expected layout{layout} is missing (the file "
                  f"has {len(state)} arrays, e.g. {near})",
                  "is this the right network's file? A foreign or renamed state dict does not load")
    got = tuple(state[name].shape)
    if got != tuple(shape):
      raise _fail(path, f"parameter '{name}' has shape {got}, expected {tuple(shape)}{layout}",
                  "the file is of another variant of the network (width, classes or input size)")
  extra = sorted(set(state) - set(expected) - ignore)
  if extra:
    raise _fail(path, f"unexpected parameter '{extra[0]}' ({len(extra)} not in the expected "
                f"layout{layout})", "is this the right network's file?")
