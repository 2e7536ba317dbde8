"""Throughput of the openSMILE and VGGish-embedding extractors beside the default set.

  python tools/bench_audio_extractors.py [--minutes 2] [--cache ~/.cache/emojax/bench]

The film is the real fixture looped by re-muxing (benchmarks/extraction.py's `build_looped`).
Each run is its own subprocess: `extract_film(film, spec)` for the default set, each new extractor
alone (audio pass only: decoding the soundtrack + the extractor) and the default set plus each
new extractor; VGGish runs with random weights of the real widths (a 290 MB npz written once into
the cache; the speed does not depend on the values). Prints film seconds per wall second and the
process CPU time (all threads) per film second of each `extract_film` call (imports excluded;
the first call's openSMILE set-up and VGGish jit compilation included), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DEFAULT = {"vggish_logmel": {}, "audio_functionals": {}, "visual_stats": {}}


def runs(vggish_npz: str) -> dict[str, dict]:
  smile = lambda fs, w: {"opensmile_functionals": {"feature_set": fs, "window_s": w}}
  vggish = {"vggish_embedding": {"weights_path": vggish_npz}}
  return {
      "default set": DEFAULT,
      "opensmile eGeMAPSv02, 1 s": smile("eGeMAPSv02", 1.0),
      "opensmile IS10, 1 s": smile("IS10", 1.0),
      "opensmile IS10, 5 s centred": smile("IS10", 5.0),
      "opensmile emobase2010, 5 s centred": smile("emobase2010", 5.0),
      "opensmile ComParE_2016, 1 s": smile("ComParE_2016", 1.0),
      "vggish_embedding": vggish,
      "default set + opensmile IS10, 5 s": {**DEFAULT, **smile("IS10", 5.0)},
      "default set + vggish_embedding": {**DEFAULT, **vggish},
  }


def write_random_vggish(path: pathlib.Path) -> pathlib.Path:
  if path.exists():
    return path
  rng = np.random.default_rng(0)
  arrays, cin = {}, 1
  for name, cout in zip(("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2"),
                        (64, 128, 256, 256, 512, 512)):
    arrays[f"{name}/kernel"] = rng.normal(0, (2 / (9 * cin)) ** 0.5,
                                          (3, 3, cin, cout)).astype(np.float32)
    arrays[f"{name}/bias"] = np.zeros(cout, np.float32)
    cin = cout
  for name, (a, b) in zip(("fc1_1", "fc1_2", "fc2"), ((12288, 4096), (4096, 4096), (4096, 128))):
    arrays[f"{name}/kernel"] = rng.normal(0, (2 / a) ** 0.5, (a, b)).astype(np.float32)
    arrays[f"{name}/bias"] = np.zeros(b, np.float32)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **arrays)
  return path


def child(path: str, spec_json: str) -> None:
  from emojax.features import extract_film  # pylint: disable=g-import-not-at-top
  spec = json.loads(spec_json)
  t0, c0 = time.perf_counter(), time.process_time()  # process CPU: all threads
  ff = extract_film(path, spec)
  wall, cpu = time.perf_counter() - t0, time.process_time() - c0
  print(json.dumps({"wall": wall, "seconds": ff.num_seconds, "cpu": cpu}))


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--minutes", type=float, default=2.0)
  ap.add_argument("--cache", default=os.path.expanduser("~/.cache/emojax/bench"))
  ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    child(*args.child)
    return
  import extraction  # benchmarks/extraction.py pylint: disable=g-import-not-at-top
  cache = pathlib.Path(args.cache)
  film = extraction.build_looped(extraction.FIXTURE, cache / f"bbb_{args.minutes:g}min.mp4",
                                 args.minutes)
  npz = write_random_vggish(cache / "vggish_random.npz")
  print(f"film: {film} ({args.minutes:g} min); load average before: {os.getloadavg()}")
  print("| run | film s / wall s | CPU ms per film second |\n|---|---|---|")
  for label, spec in runs(str(npz)).items():
    out = subprocess.run([sys.executable, __file__, "--child", str(film), json.dumps(spec)],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    print(f"| {label} | {r['seconds'] / r['wall']:.1f} | {r['cpu'] / r['seconds'] * 1e3:.0f} |",
          flush=True)
  print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
  main()
