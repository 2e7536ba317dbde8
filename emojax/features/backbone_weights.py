"""What the backbone extractors share, image (`emojax.features.backbone_frames`: resnet50_pool,
vgg16_fc7, ...) and video (`emojax.features.backbone_video`: i3d_rgb, flownets,
bn_inception_pool): the converted weights file (checked before any decoding, loaded once per
process), the sha256 params the manifest records, and fixed-size batching (docs/backbones.md).

Params every backbone extractor records: `weights_path` (the `.npz` written by
`python -m emojax.backbones.convert`), `weights_sha256` (that file's sha256) and `source_sha256`
(the published file it was converted from, read from the converted file's `meta.source_sha256`).
Both are filled in; when given (e.g. from a manifest) the file must match.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emojax import errors
from emojax import weights
from emojax.backbones import common
from emojax.backbones import convert

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@functools.lru_cache(maxsize=8)
def _describe(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
  del mtime_ns, size  # cache key only: a rewritten file is read again
  try:
    with np.load(path, allow_pickle=False) as z:
      meta = {k: np.asarray(z[k]) for k in z.files if k.startswith(common.META_PREFIX)}
  except (OSError, ValueError, EOFError) as e:
    raise errors.WeightsError(f"{path}: cannot read the converted backbone weights ({e}); "
                              f"{common.CONVERT_HINT}") from e
  return {**common.read_meta(path, meta), "sha256": weights.sha256(path)}


def describe(path: str | pathlib.Path) -> dict[str, Any]:
  """The recorded facts of a converted file (network, config, source_sha256, ...: its meta arrays
  only, no weights read) and its own sha256."""
  path = pathlib.Path(path)
  stat = path.stat()
  return _describe(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def pin(what: str, path: pathlib.Path, params: dict[str, Any], key: str, actual: Any) -> None:
  """params[key] = actual; a different value already given is a ConfigError (the features were
  made with another file)."""
  if params[key] and params[key] != actual:
    raise errors.ConfigError(
        f"{what}: {path} gives {key} {actual}, but these features were made with {params[key]}; "
        "pass the original weights file as weights_path")
  params[key] = actual


def open_converted(name: str, params: dict[str, Any], networks: tuple[str, ...]
                   ) -> tuple[pathlib.Path, dict[str, Any]]:
  """(path, describe(path)) of params['weights_path'], checked: it exists, is a converted file of
  one of `networks`, and matches the given weights_sha256 / source_sha256 (which are filled in)."""
  hint = (f"convert the published weights with `python -m emojax.backbones.convert "
          f"--network={networks[0]} --source=... --out=...` (docs/backbones.md)")
  if not params["weights_path"]:
    raise errors.ConfigError(f"extractor {name!r} needs a weights_path (params={{'weights_path': "
                             f"'/path/to/{networks[0]}.npz'}}); {hint}")
  path = pathlib.Path(params["weights_path"])
  if not path.is_file():
    raise errors.ConfigError(f"extractor {name!r}: weights file {path} does not exist (param "
                             f"weights_path); {hint}")
  info = describe(path)
  if info["network"] not in networks:
    raise errors.WeightsError(f"{path}: holds converted '{info['network']}' weights, but {name} "
                              f"takes {' or '.join(networks)}; give one of those files")
  pin(f"extractor {name!r}", path, params, "weights_sha256", info["sha256"])
  pin(f"extractor {name!r}", path, params, "source_sha256", info["source_sha256"])
  return path, info


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int, dtype: str):
  del mtime_ns, size
  model = convert.load(path).model
  graphdef, state = nnx.split(model)
  if dtype != "float32":
    state = jax.tree.map(lambda a: a.astype(DTYPES[dtype]), state)
  return graphdef, state


def load(path: str | pathlib.Path, dtype: str = "float32"):
  """(graphdef, state) of a converted file's model in `dtype`, read once per process."""
  path = pathlib.Path(path)
  stat = path.stat()
  return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size, dtype)


def batched(run: Callable[[np.ndarray], Any], x_NxD: np.ndarray, batch: int,
            row_shape: tuple[int, ...] | None = None) -> np.ndarray:
  """run(fixed-size batch) over x in batches of `batch` (the last zero-padded: one compilation);
  (0, *row_shape) float32 for an empty x."""
  out = []
  for start in range(0, len(x_NxD), batch):
    chunk = x_NxD[start:start + batch]
    padded = np.zeros((batch,) + chunk.shape[1:], chunk.dtype)
    padded[:len(chunk)] = chunk
    out.append(np.asarray(run(padded))[:len(chunk)])
  if not out:
    return np.zeros((0, *(row_shape or ())), np.float32)
  return np.concatenate(out)


def check_params(name: str, params: Mapping[str, Any], keys: tuple[str, ...], minimum: int
                 ) -> None:
  """Each params[key] an integer >= minimum (ConfigError naming the extractor and the key)."""
  for key in keys:
    v = params[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
      what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
      raise errors.ConfigError(f"{name}: {key} must be {what}, got {v!r}")
