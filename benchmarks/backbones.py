"""Speed and memory of the backbone extractors beside decode-only (docs/extraction.md).

Full-size generated weights (random, in the published layouts: the speed does not depend on the
values) are converted once into --work. The film is the real excerpt
tests/fixtures/media/bigbuckbunny.mp4 (5 s of 1280x720 H.264, 25 fps; "1x") and the same excerpt
looped --loops times by re-muxing its packets ("4x": 20 s, no re-encoding, so decoding does the
work of a real film of that length; benchmarks/extraction.py's `build_looped`).

Each (extractor, dtype) runs in its own process: the 1x film once (imports, weights, jit
compilation), then timed: the 1x film again, then (float32) the looped film. Peak RSS
(VmHWM) is read after the 1x runs and after the looped run: the same peak for both means the
extractor streams the film (holds a batch of frames, not the film). Decode-only decodes every
video frame of the same films as the extractors' video pass does (FFmpeg threads, no
conversion). The image extractors run with batch_size 5, one frame per second; the video
extractors with their per-clip defaults on 5 s clips (`clip_seconds=5`), in float32 (they have no
dtype option). bfloat16 rows are compared with the float32 rows of the same run: max |bf16 - f32|
over max |f32|.

  nice python -m benchmarks.backbones                 # the table of docs/extraction.md
  nice python -m benchmarks.backbones --only alexnet_fc7 inception_v3_faces --loops 4

The load average (1 min) is printed with every row: the shared machine's figures are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
FILM = REPO / "tests" / "fixtures" / "media" / "bigbuckbunny.mp4"
EXTRACTORS = {"resnet50_pool": "resnet50", "vgg16_places365_pool5": "vgg16_places365",
              "vgg16_fc7": "vgg16", "alexnet_fc7": "alexnet", "inception_v3_pool": "inception_v3",
              "inception_v3_faces": "inception_v3"}
VIDEO_EXTRACTORS = {"bn_inception_pool": "bn_inception", "i3d_rgb": "i3d", "flownets": "flownets"}


def generated_source(name: str, work: pathlib.Path) -> pathlib.Path:
  """A full-size state dict in the published layout, as .npz (read without torch)."""
  from emojax.backbones import common  # pylint: disable=import-outside-toplevel
  from emojax.backbones import convert  # pylint: disable=import-outside-toplevel
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


def converted(name: str, work: pathlib.Path) -> pathlib.Path:
  from emojax.backbones import convert  # pylint: disable=import-outside-toplevel
  npz = work / f"{name}.npz"
  if not npz.exists():
    convert.convert(name, generated_source(name, work), npz)
  return npz


def params_for(extractor: str, work: pathlib.Path, dtype: str) -> dict:
  if extractor in EXTRACTORS:
    return {"weights_path": str(converted(EXTRACTORS[extractor], work)), "batch_size": 5,
            "dtype": dtype}
  return {"weights_path": str(converted(VIDEO_EXTRACTORS[extractor], work)), "clip_seconds": 5}


def _peak_rss_mb() -> float:
  """This process's peak resident set (VmHWM: ru_maxrss would carry the parent's peak over the
  fork and exec)."""
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
      return int(line.split()[1]) / 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(extractor: str, dtype: str, looped: str, work: pathlib.Path) -> dict:
  """One (extractor, dtype) in this fresh process (see the module docstring)."""
  from emojax.features import decode  # pylint: disable=import-outside-toplevel
  from emojax.features import extract_film  # pylint: disable=import-outside-toplevel
  out: dict = {"extractor": extractor, "dtype": dtype}
  films = [("1x", str(FILM))] + ([("looped", looped)] if looped else [])
  if extractor == "decode_only":
    for tag, path in films:
      info = decode.probe(path)
      sum(1 for _ in decode.iter_video_frames(path, origin_s=info.origin_s,
                                              until_s=float(info.num_seconds)))  # warm file cache
      t0, c0 = time.perf_counter(), time.process_time()
      frames = sum(1 for _ in decode.iter_video_frames(path, origin_s=info.origin_s,
                                                       until_s=float(info.num_seconds)))
      out[tag] = {"film_s": info.num_seconds, "wall_s": time.perf_counter() - t0,
                  "cpu_s": time.process_time() - c0, "frames": frames,
                  "peak_rss_mb": _peak_rss_mb(), "load": os.getloadavg()[0]}
    return out
  spec = {extractor: params_for(extractor, work, dtype)}
  extract_film(FILM, spec)  # imports, weights, compilation
  for tag, path in films:
    t0, c0 = time.perf_counter(), time.process_time()
    feats = extract_film(path, spec)
    rows = feats.streams[extractor]
    out[tag] = {"film_s": feats.num_seconds, "wall_s": time.perf_counter() - t0,
                "cpu_s": time.process_time() - c0, "peak_rss_mb": _peak_rss_mb(),
                "output_mb": rows.nbytes / 2**20, "load": os.getloadavg()[0]}
    if tag == "1x":
      np.save(work / f"rows_{extractor}_{dtype}.npy", rows)
      if extractor == "inception_v3_faces":
        out["faces_found"] = float(rows[:, -2:].sum())
  return out


def run_child(extractor: str, dtype: str, looped: pathlib.Path | None,
              work: pathlib.Path) -> dict:
  cmd = [sys.executable, "-m", "benchmarks.backbones", "--child", extractor, "--dtype", dtype,
         "--work", str(work), "--looped", str(looped or "")]
  env = dict(os.environ, PYTHONPATH=str(REPO))
  res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=REPO)
  return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt_row(r: dict, decode: dict) -> str:
  one = r["1x"]
  speed = one["film_s"] / one["wall_s"]
  dec = decode["1x"]["film_s"] / decode["1x"]["wall_s"]
  cells = [r["extractor"], r["dtype"], f"{speed:.2f}", f"{speed / dec:.2f}",
           f"{one['cpu_s'] / one['film_s'] * 1000:.0f}", f"{one['peak_rss_mb']:.0f}"]
  if "looped" in r:
    lp = r["looped"]
    cells += [f"{lp['film_s'] / lp['wall_s']:.2f}", f"{lp['peak_rss_mb']:.0f}"]
  else:
    cells += ["-", "-"]
  cells += [r.get("bf16_rel_diff", "-"), f"{one['load']:.1f}"]
  return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--work", default="/tmp/emojax_backbones_bench")
  parser.add_argument("--only", nargs="*", default=[*EXTRACTORS, *VIDEO_EXTRACTORS])
  parser.add_argument("--loops", type=int, default=4, help="the long film: the excerpt x N")
  parser.add_argument("--no-bfloat16", action="store_true")
  parser.add_argument("--child", default="")
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--looped", default="")
  args = parser.parse_args(argv)
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  if args.child:
    print(json.dumps(child(args.child, args.dtype, args.looped, work)))
    return
  sys.path.insert(0, str(REPO))
  from benchmarks import extraction  # pylint: disable=import-outside-toplevel
  looped = extraction.build_looped(FILM, work / f"bbb_x{args.loops}.mp4",
                                   args.loops * 5.3 / 60 - 1e-3)
  for name in {**EXTRACTORS, **VIDEO_EXTRACTORS}.values():  # weights outside the timed runs
    if any({**EXTRACTORS, **VIDEO_EXTRACTORS}[e] == name for e in args.only):
      converted(name, work)
  print(f"load before: {os.getloadavg()}; {os.cpu_count()} cores; film 1x = {FILM.name}, "
        f"looped = {looped.name}", flush=True)
  decode = run_child("decode_only", "-", looped, work)
  lines = ["| extractor | dtype | film s / wall s (1x) | vs decode-only | CPU ms per film s | "
           "peak RSS MiB (1x) | film s / wall s (looped) | peak RSS MiB (looped) | "
           "bf16: max diff / max f32 | load avg |", "|" + "---|" * 10]
  d1, dl = decode["1x"], decode["looped"]
  lines.append(f"| decode only | - | {d1['film_s'] / d1['wall_s']:.2f} | 1.00 | "
               f"{d1['cpu_s'] / d1['film_s'] * 1000:.0f} | {d1['peak_rss_mb']:.0f} | "
               f"{dl['film_s'] / dl['wall_s']:.2f} | {dl['peak_rss_mb']:.0f} | - | "
               f"{d1['load']:.1f} |")
  print(lines[-1], flush=True)
  for extractor in args.only:
    dtypes = ["float32"]
    if extractor in EXTRACTORS and not args.no_bfloat16:
      dtypes.append("bfloat16")
    for dtype in dtypes:
      r = run_child(extractor, dtype, looped if dtype == "float32" else None, work)
      if dtype == "bfloat16":
        f32 = np.load(work / f"rows_{extractor}_float32.npy")
        b16 = np.load(work / f"rows_{extractor}_bfloat16.npy")
        scale = float(np.abs(f32).max()) or 1.0
        r["bf16_rel_diff"] = f"{float(np.abs(b16 - f32).max()) / scale:.4f}"
      if "faces_found" in r:
        r["extractor"] += f" ({r['faces_found']:.0f} faces)"
      lines.append(_fmt_row(r, decode))
      print(lines[-1], flush=True)
  print("\n" + "\n".join(lines))


if __name__ == "__main__":
  main()
