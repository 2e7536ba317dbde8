"""The run-info record saved in every workdir: git commit, Python, package versions, devices."""

from __future__ import annotations

import importlib.metadata
import pathlib
import platform
import subprocess
import sys

RUN_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
                "grain", "numpy", "librosa", "ml-collections", "av")


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
