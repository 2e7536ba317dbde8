"""Converts a published PyTorch weights file into the `.npz` a Flax backbone loads (offline).

  python -m emojax.backbones.convert --network=resnet50 --source=resnet50-0676ba61.pth \
      --out=resnet50.npz

The source is read by `emojax.weights.read_state_dict` (a `.pth` / `.pth.tar` needs torch, CPU is
enough; the `{"state_dict": ...}` wrapper and `module.` prefix of the Places365 releases are
handled; an `.npz` of the same state dict works without torch) and must have exactly the published
layout (`check_layout`): a missing, wrong or foreign file is a WeightsError naming the file and
the first parameter that does not fit. The output records the network, its config and the
source's sha256 (see `emojax.backbones.common`). `python -m emojax.backbones.convert --list`
prints the networks and the files each converts.

NETWORKS is the registry: network name -> "module:attribute" of its `common.Network`, imported on
first use, so adding a network is one line here. Every network, image or video, converts through
`common.from_torch` and `common.save` and loads through `common.load` (`load` here).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

from emojax import errors
from emojax import weights
from emojax.backbones import common

NETWORKS: dict[str, str] = {
    "resnet50": "emojax.backbones.resnet:RESNET50",
    "resnet50_places365": "emojax.backbones.resnet:RESNET50_PLACES365",
    "vgg16": "emojax.backbones.vgg:VGG16_IMAGENET",
    "vgg16_places365": "emojax.backbones.vgg:VGG16_PLACES365",
    "alexnet": "emojax.backbones.alexnet:ALEXNET",
    "alexnet_places365": "emojax.backbones.alexnet:ALEXNET_PLACES365",
    "inception_v3": "emojax.backbones.inception_v3:INCEPTION_V3",
    "bn_inception": "emojax.backbones.bn_inception:BN_INCEPTION",
    "i3d": "emojax.backbones.i3d:I3D",
    "flownets": "emojax.backbones.flownet:FLOWNETS",
}


def network(name: str) -> common.Network:
  """The registered `common.Network` `name` (ConfigError listing the known ones)."""
  if name not in NETWORKS:
    raise errors.ConfigError(f"unknown backbone network {name!r}; known: {sorted(NETWORKS)} "
                             "(emojax/backbones/convert.py NETWORKS)")
  module, _, attr = NETWORKS[name].partition(":")
  return getattr(importlib.import_module(module), attr)


def convert(name: str, source: str | os.PathLike, out: str | os.PathLike,
            config: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Reads the published `source`, checks its layout, writes the converted `out` and checks that
  it loads. `config` overrides the published config (narrow widths: tests only)."""
  return common.convert(network(name), source, out, config)


def load(path: str | os.PathLike, name: str | None = None) -> common.Loaded:
  """The model of a converted `.npz` (its network read from the file; must be `name` if given)."""
  return common.load(path, network(name) if name else None, resolve=network)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--network", choices=sorted(NETWORKS), help="which network the file is")
  parser.add_argument("--source", help="the published weights file you downloaded")
  parser.add_argument("--out", help="the .npz to write (an extractor's weights_path)")
  parser.add_argument("--list", action="store_true", help="list networks and their files")
  args = parser.parse_args(argv)
  if args.list:
    for name in sorted(NETWORKS):
      print(f"{name}: {', '.join(network(name).files)}")
    return 0
  if not (args.network and args.source and args.out):
    parser.error("--network, --source and --out are required")
  try:
    path = convert(args.network, args.source, args.out)
  except errors.EmojaxError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {path} ({args.network}, source sha256 {weights.sha256(args.source)})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
