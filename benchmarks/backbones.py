"""Speed of the backbone extractors at full size on the film excerpt (docs/backbones.md).

Full-size generated weights (random, in the published torchvision layout: the speed does not
depend on the values) are converted once into --work, then each extractor runs twice on the 5 s
excerpt (tests/fixtures/media/bigbuckbunny.mp4, 1280x720 H.264): the first run compiles, the
second is timed. batch_size = 5 so the excerpt's 5 frames fill one batch as a long film's frames
fill every batch.

  python -m benchmarks.backbones --work /tmp/emojax_backbones_bench
  python -m benchmarks.backbones --only bn_inception_pool i3d_rgb flownets   # video, defaults
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import time

import numpy as np

from emojax.backbones import common
from emojax.backbones import convert
from emojax.features import extract_film

FILM = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "media" / "bigbuckbunny.mp4"
EXTRACTORS = {"resnet50_pool": "resnet50", "vgg16_places365_pool5": "vgg16_places365",
              "vgg16_fc7": "vgg16", "alexnet_fc7": "alexnet", "inception_v3_pool": "inception_v3"}
VIDEO_EXTRACTORS = {"bn_inception_pool": "bn_inception", "i3d_rgb": "i3d", "flownets": "flownets"}


def generated_source(name: str, work: pathlib.Path) -> pathlib.Path:
  """A full-size state dict in the published layout, as .npz (read without torch)."""
  path = work / f"{name}-generated.npz"
  if path.exists():
    return path
  net = convert.network(name)
  layout = {**common.published_layout(net), **net.extra_layout(net.default_config)}
  rng = np.random.default_rng(0)
  arrays = {}
  for k, shape in layout.items():
    if k.endswith("running_var"):
      arrays[k] = np.ones(shape, np.float32)
    elif len(shape) > 1:
      arrays[k] = (rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / np.prod(shape[1:]))
                   ).astype(np.float32)
    elif k.endswith(".weight"):
      arrays[k] = np.ones(shape, np.float32)
    else:
      arrays[k] = np.zeros(shape, np.float32)
  np.savez(path, **arrays)
  return path


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--work", default="/tmp/emojax_backbones_bench")
  parser.add_argument("--only", nargs="*", default=list(EXTRACTORS))
  parser.add_argument("--dtype", default="float32")
  args = parser.parse_args()
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  print(f"load before: {os.getloadavg()}")
  print("| extractor | network | dtype | film s / wall s | wall s (5 s film) | CPU s | load |")
  print("|---|---|---|---|---|---|---|")
  for extractor in args.only:
    name = {**EXTRACTORS, **VIDEO_EXTRACTORS}[extractor]
    npz = work / f"{name}.npz"
    if not npz.exists():
      convert.convert(name, generated_source(name, work), npz)
    params = {"weights_path": str(npz)}
    if extractor in EXTRACTORS:  # the video extractors batch and run in float32 as published
      params.update(batch_size=5, dtype=args.dtype)
    spec = {extractor: params}
    extract_film(FILM, spec)  # compiles
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    feats = extract_film(FILM, spec)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    n = feats.num_seconds
    print(f"| {extractor} | {name} | {args.dtype} | {n / wall:.2f} | {wall:.2f} | {cpu:.1f} | "
          f"{os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
  main()
