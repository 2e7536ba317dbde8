"""Config helpers: loading by path, overrides, the run-info record saved in every workdir."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib
import platform
import subprocess
import sys

import ml_collections

from emojax import errors

RUN_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
                "grain", "numpy", "librosa", "ml-collections", "av")


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` the way `config_flags.DEFINE_config_file` does."""
  path, _, arg = spec.partition(":")
  file = pathlib.Path(path)
  if not file.exists():
    raise errors.ConfigError(f"config file {file} does not exist")
  module_spec = importlib.util.spec_from_file_location(f"_emojax_config_{file.stem}", file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def set_path(config: ml_collections.ConfigDict, dotted: str, value) -> None:
  """config['a.b.c'] = value, failing with the key's name when a field does not exist."""
  *parents, leaf = dotted.split(".")
  node = config
  for i, key in enumerate(parents):
    if key not in node:
      raise errors.ConfigError(
          f"unknown config key {'.'.join(parents[:i + 1])!r} (in {dotted!r}); known keys here: "
          f"{sorted(node.keys())}")
    node = node[key]
  if leaf not in node:
    raise errors.ConfigError(
        f"unknown config key {dotted!r}; known keys at that level: {sorted(node.keys())}")
  with node.unlocked() if isinstance(node, ml_collections.ConfigDict) else _null():
    node[leaf] = value


class _null:
  def __enter__(self):
    return self

  def __exit__(self, *a):
    return False


def git_commit(repo: pathlib.Path | None = None) -> str:
  repo = repo or pathlib.Path(__file__).resolve().parents[1]
  try:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def run_info() -> dict:
  """What produced a run: git commit, Python, package versions, devices."""
  import jax  # pylint: disable=g-import-not-at-top
  versions = {}
  for name in RUN_PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return {
      "git_commit": git_commit(),
      "python": sys.version.split()[0],
      "platform": platform.platform(),
      "packages": versions,
      "devices": [str(d) for d in jax.devices()],
      "process_count": jax.process_count(),
      "argv": sys.argv,
  }
