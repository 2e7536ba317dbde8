"""Times the data doctor on a generated MediaEval 2018 download of the full size.

    python tests/me18_full_size.py --root /tmp/me18_full [--hours 36.3] [--workers N] [--keep]

Writes 66 films whose lengths add up to `--hours` (film 06 is 5,600 s long, as the real one
reaches second 5,588), one file per second per official stream (11 visual descriptors + the
emobase2010 ARFF), in the archives' folder layout, then runs `doctor('mediaeval2018', root)` and
prints the files read, the seconds taken and the problems found. To keep the disk use small, the
per-second files of a stream are hard links to 8 files of random numbers in the real formats and
sizes, so every file is read and parsed as in a real download, from the page cache (a cold disk
adds its read time: about 20 GB for the real download).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import sys
import time

import numpy as np

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1])]

import dataset_fixtures as fx  # pylint: disable=g-import-not-at-top,wrong-import-position
from emojax import doctor  # pylint: disable=g-import-not-at-top,wrong-import-position
from emojax.datasets import mediaeval2018 as me18  # pylint: disable=g-import-not-at-top,wrong-import-position

TEMPLATES = 8


def film_lengths(total_s: int, seed: int = 0) -> dict[int, int]:
  """66 film lengths in seconds adding up to total_s, film 06 5,600 s."""
  rng = np.random.default_rng(seed)
  rest = rng.uniform(600, 4000, me18.NUM_FILMS - 1)
  rest = np.maximum(np.round(rest / rest.sum() * (total_s - 5600)), 60).astype(int)
  lengths = dict(zip([i for i in range(me18.NUM_FILMS) if i != 6], rest.tolist()))
  lengths[6] = 5600
  return dict(sorted(lengths.items()))


def write(root: pathlib.Path, lengths: dict[int, int]) -> int:
  """Writes the download (labels, hard-linked feature files); returns the number of files."""
  rng = np.random.default_rng(1)
  templates = root / "_templates"
  templates.mkdir(parents=True)
  sources = {}
  for name, dim in me18.OFFICIAL_DIMS.items():
    sources[name] = []
    for k in range(TEMPLATES):
      path = templates / f"{name}_{k}"
      if name == me18.AUDIO_STREAM:
        fx.write_arff(path, rng.normal(size=dim).astype(np.float32))
      else:
        path.write_text(",".join(f"{v:.6g}" for v in rng.random(dim)) + "\n")
      sources[name].append(path)
  files = 0
  for number, seconds in lengths.items():
    fid = me18.film_id(number)
    part = me18.download_part(number)
    ann = root / f"MEDIAEVAL18-{part}-Valence_Arousal-annotations" / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    v, a = np.round(rng.uniform(-1, 1, (2, seconds)), 4)
    rows = [f"{t}\t{x:.4f}\t{y:.4f}" for t, x, y in zip(range(seconds), v, a)]
    (ann / f"{fid}_Valence-Arousal.txt").write_text("Time\tValence\tArousal\n" +
                                                    "\n".join(rows) + "\n")
    visual = root / f"MEDIAEVAL18-{part}-Visual_features" / "visual_features" / fid
    audio = root / f"MEDIAEVAL18-{part}-Audio_features" / "audio_features" / fid
    audio.mkdir(parents=True, exist_ok=True)
    for name in me18.OFFICIAL_STREAMS:
      folder = audio if name == me18.AUDIO_STREAM else visual / name
      folder.mkdir(parents=True, exist_ok=True)
      for s in range(1, seconds + 1):
        os.link(sources[name][s % TEMPLATES], folder / me18.stream_file_name(fid, name, s))
      files += seconds
  return files


def _cpu_s() -> float:
  """User + system seconds of this process and of its finished children (the workers)."""
  own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True, type=pathlib.Path)
  parser.add_argument("--hours", type=float, default=36.3)
  parser.add_argument("--workers", type=int, default=None)
  parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
  args = parser.parse_args()
  if args.root.exists():
    sys.exit(f"{args.root} exists; pass a new folder")
  lengths = film_lengths(int(args.hours * 3600))
  t0 = time.perf_counter()
  files = write(args.root, lengths)
  print(f"wrote {len(lengths)} films, {sum(lengths.values())} s, {files} feature files in "
        f"{time.perf_counter() - t0:.0f} s", flush=True)
  try:
    if args.workers is not None:
      me18.DOCTOR_WORKERS = args.workers
    t0, cpu0 = time.perf_counter(), _cpu_s()
    problems = doctor.run_doctor("mediaeval2018", args.root)
    took, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    counts = {s: sum(p.severity == s for p in problems) for s in ("error", "warning", "info")}
    print(f"doctor: {took:.1f} s wall, {cpu:.1f} s CPU (this process and its workers) for "
          f"{files} feature files ({files / took:.0f} files/s, {files / cpu:.0f} files per CPU "
          f"second, workers={me18.DOCTOR_WORKERS or os.cpu_count()}); problems {counts}",
          flush=True)
  finally:
    if not args.keep:
      shutil.rmtree(args.root)


if __name__ == "__main__":
  main()
