r"""Which threads run the harness step's XLA thunks, and how much of the time they run at once.

A `jax.profiler` trace of `--steps` steps of one family's harness step (benchmarks/common.py:
`jax` = one member's `HarnessStep`, `jax:ens4` = K = 4 members' `EnsembleStep`), then per thread
of XLA:CPU's intra-op pool (`XLAEigen`: the thread pool XLA:CPU's thunk executor hands ready thunks
to, with or without `xla_cpu_multi_thread_eigen`) the thunk events per step and the busy time,
and the time both of the two busiest threads run a thunk at once. Busy times are profiler-inflated
and, on a loaded machine, include preemption; compare the proportions.

  PYTHONPATH=. python -m benchmarks.thunk_threads --family aan --variant jax:ens4 --steps 20
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import tempfile


def runner(family: str, variant: str):
  """`run(n)` of the family's benchmark step (the runners `benchmarks.all` times)."""
  from benchmarks import all as bench_all  # pylint: disable=import-outside-toplevel
  run, _, _ = bench_all.build(family, variant)
  return run


def _union(intervals):
  out = []
  for a, b in sorted(intervals):
    if out and a <= out[-1][1]:
      out[-1][1] = max(out[-1][1], b)
    else:
      out.append([a, b])
  return out


def _intersection(a, b) -> float:
  i = j = 0
  total = 0.0
  while i < len(a) and j < len(b):
    lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
    total += max(0.0, hi - lo)
    if a[i][1] < b[j][1]:
      i += 1
    else:
      j += 1
  return total


def thread_summary(events: list, steps: int, pool: str = "XLAEigen") -> dict:
  """From a trace's events: {threads: [(name, thunk events per step, busy ms per step)],
  both_ms, either_ms} per step, for the threads whose name contains `pool`."""
  names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
           if e.get("ph") == "M" and e.get("name") == "thread_name"}
  spans = collections.defaultdict(list)
  for e in events:
    if e.get("ph") == "X" and pool in names.get((e["pid"], e["tid"]), ""):
      spans[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e.get("dur", 0)))
  unions = {t: _union(v) for t, v in spans.items()}
  busy = {t: sum(b - a for a, b in u) for t, u in unions.items()}
  top = sorted(unions, key=lambda t: -busy[t])
  both = _intersection(unions[top[0]], unions[top[1]]) if len(top) > 1 else 0.0
  either = sum(b - a for a, b in _union([x for t in top[:2] for x in unions[t]]))
  return {"threads": [(names[t], len(spans[t]) / steps, busy[t] / 1e3 / steps) for t in top],
          "both_ms": both / 1e3 / steps, "either_ms": either / 1e3 / steps}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--family", default="aan", choices=["aan", "gru_ens"])
  ap.add_argument("--variant", default="jax:ens4", choices=["jax", "jax:ens4"])
  ap.add_argument("--steps", type=int, default=20)
  args = ap.parse_args()
  import jax  # pylint: disable=import-outside-toplevel
  run = runner(args.family, args.variant)
  run(3)   # compile and warm up
  with tempfile.TemporaryDirectory() as d:
    jax.profiler.start_trace(d, create_perfetto_trace=True)
    run(args.steps)
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
      events = json.load(f)["traceEvents"]
  s = thread_summary(events, args.steps)
  print(f"{args.family} {args.variant}, {args.steps} steps, 1-min load "
        f"{os.getloadavg()[0]:.1f} (profiled times per step)")
  for name, n, ms in s["threads"]:
    print(f"  {name}: {n:.0f} thunk events, busy {ms:.2f} ms")
  print(f"  two busiest threads: either busy {s['either_ms']:.2f} ms, both at once "
        f"{s['both_ms']:.2f} ms ({100 * s['both_ms'] / max(s['either_ms'], 1e-9):.0f}%)")


if __name__ == "__main__":
  main()
