"""Converts the PyTorch port's VGGish state dict (torchvggish) into `vggish_embedding`'s `.npz`.

Offline: the user brings the files they downloaded; nothing is fetched. The source is the state
dict of harritaylor/torchvggish (`vggish-10086976.pth`), with these names:

  features.{0,3,6,8,11,13}.weight (out, in, 3, 3) OIHW, features.*.bias   (the 6 convs)
  embeddings.{0,2,4}.weight (out, in), embeddings.*.bias                  (fc1_1, fc1_2, fc2)

and optionally its PCA parameters (`vggish_pca_params-970ea276.pth`): pca_eigen_vectors (128, 128),
pca_means (128,) or (128, 1). Either file may be a `.pth` (needs `torch`, only for reading it) or
an `.npz` holding the same names (`np.savez(out, **{k: v.numpy() for k, v in sd.items()})` where
torch is installed), which this converter reads with NumPy alone. Conv kernels are transposed
OIHW -> HWIO and linear weights (out, in) -> (in, out); torchvggish already flattens the last
feature map in NHWC order (it transposes to (B, 6, 4, 512) before `view`), so fc1_1's input order
is kept as it is.

  python -m emojax.features.convert_vggish vggish-10086976.pth vggish.npz \
      [--pca vggish_pca_params-970ea276.pth]

then `extract_film(path, {"vggish_embedding": {"weights_path": "vggish.npz"}})` (torchvggish has a
ReLU after fc2: keep `final_relu=True`).
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys

import numpy as np

from emojax import cli
from emojax import errors
from emojax import fileio
from emojax import weights
from emojax.features import vggish_embedding

# torchvggish module index -> our layer name.
TORCH_CONVS = {f"features.{i}": name
               for i, name in zip((0, 3, 6, 8, 11, 13), vggish_embedding.CONVS)}
TORCH_FCS = {f"embeddings.{i}": name for i, name in zip((0, 2, 4), vggish_embedding.FCS)}


def torch_names() -> list[str]:
  return [f"{prefix}.{p}" for prefix in list(TORCH_CONVS) + list(TORCH_FCS)
          for p in ("weight", "bias")]


def read_state_dict(path: str | pathlib.Path, what: str = "torchvggish state dict"
                    ) -> dict[str, np.ndarray]:
  """A state dict as NumPy arrays, from `.npz` (NumPy only) or `.pth` (needs torch), read by
  `emojax.weights` (a missing, damaged or foreign file: WeightsError naming it)."""
  return weights.read_state_dict(path, what=what)


def convert(state: dict[str, np.ndarray], pca: dict[str, np.ndarray] | None = None, *,
            source: str = "state dict") -> dict[str, np.ndarray]:
  """torchvggish state dict (+ PCA params) -> {our name: array} (see vggish_embedding)."""
  missing = [k for k in torch_names() if k not in state]
  if missing:
    raise errors.DataError(f"{source}: torchvggish weight(s) {missing} missing; expected the "
                           f"names {torch_names()}")
  unexpected = sorted(set(state) - set(torch_names()))
  if unexpected:
    raise errors.DataError(f"{source}: unexpected weight(s) {unexpected}; is this torchvggish's "
                           "vggish state dict? (the PCA parameters go in --pca)")
  out = {}
  for prefix, name in TORCH_CONVS.items():
    w = np.asarray(state[f"{prefix}.weight"], np.float32)
    if w.ndim != 4:
      raise errors.DataError(f"{source}: weight '{prefix}.weight' has shape {w.shape}, expected "
                             "(out, in, 3, 3) OIHW")
    out[f"{name}/kernel"] = w.transpose(2, 3, 1, 0)
    out[f"{name}/bias"] = np.asarray(state[f"{prefix}.bias"], np.float32)
  for prefix, name in TORCH_FCS.items():
    w = np.asarray(state[f"{prefix}.weight"], np.float32)
    if w.ndim != 2:
      raise errors.DataError(f"{source}: weight '{prefix}.weight' has shape {w.shape}, expected "
                             "(out, in)")
    out[f"{name}/kernel"] = w.T
    out[f"{name}/bias"] = np.asarray(state[f"{prefix}.bias"], np.float32)
  if pca is not None:
    for k in vggish_embedding.PCA:
      if k not in pca:
        raise errors.DataError(f"{source}: PCA parameter '{k}' missing (found {sorted(pca)})")
    out["pca_eigen_vectors"] = np.asarray(pca["pca_eigen_vectors"], np.float32)
    out["pca_means"] = np.asarray(pca["pca_means"], np.float32).reshape(-1)
  return {k: np.ascontiguousarray(v) for k, v in out.items()}


def convert_files(state_path: str | pathlib.Path, out_path: str | pathlib.Path,
                  pca_path: str | pathlib.Path | None = None) -> pathlib.Path:
  """Reads, converts, writes `out_path` (atomically) and checks it loads as VGGish weights."""
  out_path = cli.check_output_file(out_path, "the output file")  # first: nothing is lost
  arrays = convert(read_state_dict(state_path),
                   read_state_dict(pca_path, "--pca file") if pca_path else None,
                   source=str(state_path))
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  out_path = fileio.atomic_write_bytes(out_path, buffer.getvalue())
  vggish_embedding.read_weights(out_path)  # the shapes chain, every array is there
  return out_path


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("state_dict", help="torchvggish vggish .pth, or an .npz of its state dict")
  parser.add_argument("out", help="the .npz to write (vggish_embedding's weights_path)")
  parser.add_argument("--pca", default=None, help="torchvggish PCA params .pth / .npz")
  args = parser.parse_args(argv)
  return cli.run(lambda: print(f"wrote {convert_files(args.state_dict, args.out, args.pca)}"))


if __name__ == "__main__":
  sys.exit(main())
