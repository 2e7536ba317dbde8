"""Extraction throughput and peak memory of the default feature set (issue 3, section 5).

  python benchmarks/extraction.py [--minutes 10 60] [--repeats 2] [--cache ~/.cache/emojax/bench]

Builds, once, the real fixture film (720p H.264 + AAC 5.1, 5.3 s) looped to each length by
re-muxing its packets with shifted timestamps (no re-encoding: the decoder does exactly the work
of a real 720p film), into the cache folder. Then, each in its own subprocess (so ru_maxrss is the
peak RSS of that run alone), interleaved `repeats` times on the first length:
  decode        decode every video frame + decode/down-mix/resample the audio to 16 kHz: the
                floor any extraction pays (FFmpeg threads as in extraction, nothing converted)
  extract       extract_film(default set)
  decode_fast / extract_fast   the same with fast=True (in-loop deblocking skipped)
and `extract` once on every further length for peak memory. Throughput is seconds of film per
second of wall time. Finally the effect of fast mode on the features of the first length.
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
sys.path.insert(0, str(REPO))
FIXTURE = REPO / "tests" / "fixtures" / "media" / "bigbuckbunny.mp4"


def build_looped(src: pathlib.Path, dst: pathlib.Path, minutes: float) -> pathlib.Path:
  """Re-muxes `src` looped to at least `minutes` (stream copy, timestamps shifted per loop)."""
  import av  # pylint: disable=g-import-not-at-top
  if dst.exists():
    return dst
  dst.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(src)) as c:
    loop_s = max(float(s.duration * s.time_base) for s in c.streams)
  loops = int(np.ceil(minutes * 60 / loop_s))
  tmp = dst.with_suffix(".partial.mp4")
  with av.open(str(tmp), "w") as out:
    ins = av.open(str(src))
    streams = {s.index: out.add_stream_from_template(s) for s in ins.streams}
    ins.close()
    for k in range(loops):
      with av.open(str(src)) as c:
        for packet in c.demux():
          if packet.dts is None:
            continue
          shift = int(round(k * loop_s / packet.time_base))
          packet.pts += shift
          packet.dts += shift
          packet.stream = streams[packet.stream.index]
          out.mux(packet)
  os.replace(tmp, dst)
  return dst


def _run_child(mode: str, path: str, out_npz: str | None) -> dict:
  """One measurement in this (fresh) process."""
  from emojax.features import decode, extract  # pylint: disable=g-import-not-at-top
  info = decode.probe(path)
  if mode.startswith("extract"):  # imports, numba caches: one-off costs, not throughput
    extract.extract_film(FIXTURE, fast=mode.endswith("_fast"))
  t0 = time.perf_counter()
  c0 = time.process_time()
  fast = mode.endswith("_fast")
  if mode.startswith("decode"):
    import threadpoolctl  # pylint: disable=g-import-not-at-top
    import concurrent.futures  # pylint: disable=g-import-not-at-top
    with threadpoolctl.threadpool_limits(1, "blas"), \
        concurrent.futures.ThreadPoolExecutor(1) as pool:  # as extract_film: audio in a thread
      audio = pool.submit(lambda: sum(1 for _ in decode.iter_audio_seconds(
          path, info.num_seconds, origin_s=info.origin_s)))
      frames = sum(1 for _ in decode.iter_video_frames(path, fast=fast, origin_s=info.origin_s,
                                                       until_s=float(info.num_seconds)))
      n = audio.result()
    result = {"frames": frames, "audio_seconds": n}
  else:
    ff = extract.extract_film(path, fast=fast)
    result = {"streams": {k: list(v.shape) for k, v in ff.streams.items()},
              "output_mb": sum(v.nbytes for v in ff.streams.values()) / 2**20}
    if out_npz:
      np.savez(out_npz, **ff.streams)
  wall = time.perf_counter() - t0
  result.update(mode=mode, wall_s=wall, cpu_s=time.process_time() - c0, film_s=info.num_seconds,
                speed=info.num_seconds / wall,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
  return result


def run(mode: str, path: pathlib.Path, out_npz: pathlib.Path | None = None) -> dict:
  cmd = [sys.executable, __file__, "--child", mode, str(path)]
  if out_npz:
    cmd.append(str(out_npz))
  env = dict(os.environ, PYTHONPATH=str(REPO))
  env.setdefault("NUMBA_CACHE_DIR", os.path.expanduser("~/.cache/emojax/numba"))
  out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
  res = json.loads(out.stdout.strip().splitlines()[-1])
  print(f"  {mode:13s} {path.name}: {res['wall_s']:7.1f} s wall, {res['speed']:6.1f}x real time, "
        f"CPU {res['cpu_s']:7.1f} s, peak RSS {res['peak_rss_mb']:.0f} MiB", flush=True)
  return res


def fast_effect(exact: dict, fast: dict) -> list[str]:
  """Per stream (and per visual_stats column): fast mode's error, absolute and relative."""
  from emojax.features import visual_stats  # pylint: disable=g-import-not-at-top

  def row(label, x, y, corr=True):
    d = np.abs(x - y)
    sd, scale = x.std(), np.abs(x).mean()
    r = (f"{np.corrcoef(x.ravel(), y.ravel())[0, 1]:.4f}"
         if corr and sd > 0 and y.std() > 0 else "-")
    return (f"| {label} | {d.max():.3g} | {d.mean() / scale if scale > 0 else 0:.3g} | "
            f"{d.mean() / sd if sd > 0 else 0:.3g} | {r} |")

  rows = []
  for name in sorted(exact):
    a, b = exact[name].astype(np.float64), fast[name].astype(np.float64)
    if name == "visual_stats":
      n = len(visual_stats.SCALARS)
      rows += [row(f"visual_stats.{lab}", a[:, j], b[:, j])
               for j, lab in enumerate(visual_stats.SCALARS)]
      rows.append(row("visual_stats.hue_hist", a[:, n:], b[:, n:], corr=False))
    else:
      rows.append(row(name, a, b, corr=False))
  return rows


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] == "--child":
    mode, path = sys.argv[2], sys.argv[3]
    out_npz = sys.argv[4] if len(sys.argv) > 4 else None
    print(json.dumps(_run_child(mode, path, out_npz)))
    return
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--cache", default=os.path.expanduser("~/.cache/emojax/bench"))
  ap.add_argument("--report", action="store_true",
                  help="only re-render the tables from the cache's extraction_results.json")
  args = ap.parse_args()
  cache = pathlib.Path(args.cache)
  raw = cache / "extraction_results.json"
  if not args.report:
    films = [build_looped(FIXTURE, cache / f"bbb_loop_{m:g}min.mp4", m) for m in args.minutes]
    first = films[0]
    results: dict[str, list[dict]] = {}
    print(f"throughput on {first.name} (interleaved, {args.repeats} repeats):")
    for rep in range(args.repeats):
      for mode in ("decode", "extract", "decode_fast", "extract_fast"):
        npz = cache / f"{mode}.npz" if mode.startswith("extract") and rep == 0 else None
        results.setdefault(mode, []).append(run(mode, first, npz))
    mem = [results["extract"][0]]
    for film in films[1:]:
      print(f"peak memory on {film.name}:")
      mem.append(run("extract", film))
    raw.write_text(json.dumps({"throughput": results, "memory": mem, "minutes": args.minutes,
                               "cores": os.cpu_count()}, indent=1))
  text = report(json.loads(raw.read_text()), cache)
  print()
  print(text)
  (cache / "extraction_table.md").write_text(text + "\n")


def report(raw: dict, cache: pathlib.Path) -> str:
  """Markdown tables from the raw results (best run of each mode)."""
  results, mem, minutes = raw["throughput"], raw["memory"], raw["minutes"]
  best = {m: max(rs, key=lambda r: r["speed"]) for m, rs in results.items()}
  speed = {m: r["speed"] for m, r in best.items()}
  cpu = {m: min(r["cpu_s"] for r in rs) for m, rs in results.items()}
  film_s = results["decode"][0]["film_s"]
  lines = [
      f"Film: the fixture looped to {minutes[0]:g} min ({film_s} s), 720p H.264 + AAC 5.1; "
      f"{raw.get('cores', '?')} cores; best of {len(results['decode'])} interleaved runs "
      "(wall); CPU = least process CPU time (all threads) of the runs.",
      "",
      "| run | film s / wall s | wall speed vs decode-only | CPU s | decode CPU / run CPU |",
      "|---|---|---|---|---|",
  ]
  for mode, label, base in (("decode", "decode only", "decode"),
                            ("extract", "extract default set", "decode"),
                            ("decode_fast", "decode only, fast", "decode_fast"),
                            ("extract_fast", "extract default set, fast", "decode_fast")):
    lines.append(f"| {label} | {speed[mode]:.1f} | {speed[mode] / speed[base]:.2f} | "
                 f"{cpu[mode]:.1f} | {cpu[base] / cpu[mode]:.2f} |")
  lines += ["", f"Fast decoding vs exact: {speed['decode_fast'] / speed['decode']:.2f}x wall, "
            f"{cpu['decode'] / cpu['decode_fast']:.2f}x CPU; fast extraction vs exact extraction: "
            f"{speed['extract_fast'] / speed['extract']:.2f}x wall.", "",
            "| film | extraction wall s | peak RSS (MiB) | output arrays (MiB) | "
            "RSS - output (MiB) |", "|---|---|---|---|---|"]
  for m, r in zip(minutes, mem):
    lines.append(f"| {m:g} min | {r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} | "
                 f"{r['output_mb']:.0f} | {r['peak_rss_mb'] - r['output_mb']:.0f} |")
  exact = dict(np.load(cache / "extract.npz"))
  fast = dict(np.load(cache / "extract_fast.npz"))
  lines += ["", "Fast mode vs exact, per feature over all seconds: max |diff|, mean |diff| "
            "relative to the mean |value| and to the std over seconds, Pearson r over seconds:",
            "", "| feature | max abs diff | mean abs diff / mean abs | mean abs diff / std | r |",
            "|---|---|---|---|---|"]
  lines += fast_effect(exact, fast)
  return "\n".join(lines)

if __name__ == "__main__":
  main()
