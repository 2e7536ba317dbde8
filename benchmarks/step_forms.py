r"""The harness step's forms, JAX against JAX: which of `emojax.train.step_form`'s levers helps.

Each form (multi-threaded Eigen or one thread per op, threefry or RngBitGenerator dropout keys,
per-leaf or flat optimizer update) runs the same family's harness step (benchmarks/common.py) in
its own process; the forms are timed alternately. Prints medians (wall and process CPU) with the
load average.

  PYTHONPATH=. python -m benchmarks.step_forms --family aan --repeats 5 --steps 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from benchmarks import common

FORMS = {"auto": None,
         "eigen": dict(eigen=True, rbg=False, flat=False),
         "eigen_off": dict(eigen=False, rbg=False, flat=False),
         "eigen_off+rbg": dict(eigen=False, rbg=True, flat=False),
         "eigen_off+rbg+flat": dict(eigen=False, rbg=True, flat=True),
         "eigen_off+flat": dict(eigen=False, rbg=False, flat=True)}


def family_step(family: str, form: dict | None):
  """The harness step of one family's benchmark config, with a given form."""
  import importlib  # pylint: disable=import-outside-toplevel
  mod = importlib.import_module(f"benchmarks.{FAMILIES[family]}")
  return mod.harness_step(step_options=form)


FAMILIES = {"aan": "attendaffectnet_throughput", "tts": "two_timescale_throughput",
            "gru": "gru_moe_throughput", "fusion": "fusion_lstm_throughput",
            "c3d": "video_conv_throughput"}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", default="")
  ap.add_argument("--family", default="aan", choices=sorted(FAMILIES))
  ap.add_argument("--forms", default="eigen,eigen_off,eigen_off+rbg,eigen_off+rbg+flat")
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--steps", type=int, default=50)
  args = ap.parse_args()
  if args.worker:
    h = family_step(args.family, FORMS[args.worker])
    common.serve(h.run, "jax", {"params": h.n_params})
    return
  forms = args.forms.split(",")
  print(f"start: {common.load_line()}", flush=True)
  procs = {f: common.Proc("benchmarks.step_forms", f, dict(os.environ),
                          ["--family", args.family]) for f in forms}
  loads = [os.getloadavg()[0]]
  times = common.timed_alternately(procs, args.steps, args.repeats, loads)
  for f, p in procs.items():
    p.close()
    print(f"| {args.family} | {f} | {statistics.median(times[f]) * 1e3:.2f} ms "
          f"[{min(times[f]) * 1e3:.2f}, {max(times[f]) * 1e3:.2f}] | cpu "
          f"{statistics.median(p.cpu) * 1e3:.2f} ms |")
  print(f"{args.repeats} alternating repeats x {args.steps} steps; 1-min load "
        f"{min(loads):.1f}-{max(loads):.1f}", file=sys.stdout)
  json.dump({f: times[f] for f in forms}, sys.stderr)


if __name__ == "__main__":
  main()
