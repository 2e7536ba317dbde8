r"""Every family's harness step against PyTorch, one protocol; rewrites docs/benchmarks.md's tables.

For each benchmark (a family at one size) every variant runs in its own worker process, built and
warmed up once: the JAX variants time the step `main.py` trains with (`train.make_train_step` built
from the family's config through the Trainer's path, benchmarks/common.py; `jax:ens4` = K = 4
members in the harness's one jit(vmap) ensemble step), the PyTorch variants the same network
written in PyTorch 2.13 (the family benchmark's own), with 1 and 2 threads, each with
OMP_WAIT_POLICY=PASSIVE and with OpenMP's default. The variants are timed alternately (the order
reversed every repeat), `--repeats` >= 5 times; the table gives the median step time, the spread
[min, max], the ratio against PyTorch's fastest setting (> 1: JAX faster), and the 1-minute load
average over the runs. Each benchmark's table replaces the block between its markers in
docs/benchmarks.md (`<!-- all:NAME -->` ... `<!-- /all:NAME -->`, section "Quiet check").

  PYTHONPATH=. python -m benchmarks.all --quiet-check --short      # ~15 min: the firm targets
  PYTHONPATH=. python -m benchmarks.all --quiet-check              # every benchmark (longer)
  PYTHONPATH=. python -m benchmarks.all --families=aan,gru --estimate   # the plan and its time

`--quiet-check` refuses to start when the 1-minute load average is >= 2 (PyTorch's spinning
OpenMP threads collapse under load, which makes every ratio meaningless) unless `--force` is given;
the load is printed with every table either way. Preload tcmalloc for every variant alike
(`LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4`, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import pathlib
import platform
import re
import statistics
import sys
import time

from benchmarks import common

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
TORCH = [f"torch:{t}:{p}" for t in (1, 2) for p in ("default", "passive")]


@dataclasses.dataclass
class Bench:
  name: str            # the marker in docs/benchmarks.md and the --families key
  title: str
  variants: list[str]
  steps: int           # steps per timed run
  seconds: float       # estimated wall seconds on a quiet machine (workers' setup included)
  short: bool          # in --short (the firm targets)
  note: str = ""


BENCHES = [
    Bench("aan", "seed 003 Feature AAN train step (batch 30) vs torch eager / torch.compile; "
          "K = 4 ensemble (one jit(vmap) step) vs one member",
          ["jax", "jax:ens4"] + TORCH + [v.replace("torch:", "torch:compile:") for v in TORCH],
          50, 150, True),
    Bench("tts", "seed 000 two-time-scale intra-clip step (production config, batch 64, T 10, "
          "H 128)", ["jax"] + TORCH, 5, 90, True),
    Bench("gru", "seed 001 GRU + CG + MoE step at the paper's shapes (batch 512, W 60, GRU 256)",
          ["jax"] + TORCH, 1, 240, True),
    Bench("gru_ens", "seed 001 K = 4 small members (GRU 32, batch 512, W 60): one jit(vmap) step "
          "vs one member", ["jax", "jax:ens4"], 1, 90, True),
    Bench("fusion", "seed 002 fusion CNN + LSTM step (runlocal sizes, batch 8 x 4 segments)",
          ["jax"] + TORCH, 5, 90, False),
    Bench("c3d", "seed 004 C3D step, 112 px, width 0.25, batch 8 (runlocal-scale width)",
          ["jax", "torch:2:default", "torch:2:passive", "torch:1:default"], 1, 150, True),
    Bench("c3d_full", "seed 004 C3D step, 112 px, full width, batch 8",
          ["jax", "torch:2:default", "torch:2:passive"], 1, 400, False),
    Bench("r21d", "seed 004 R(2+1)D-18 step, 112 px, width 0.25, batch 8",
          ["jax", "torch:2:default", "torch:2:passive", "torch:1:default"], 1, 200, False),
]


# ---- one variant of one benchmark, in a worker process ----------------------------------------


def build(bench: str, variant: str):
  """(run(n) -> loss, n_params, lib) of a variant."""
  parts = variant.split(":")
  torch_threads = int(parts[-2]) if variant.startswith("torch") else 0
  if torch_threads:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(torch_threads)
  if bench == "aan":
    from benchmarks import attendaffectnet_throughput as m  # pylint: disable=import-outside-toplevel
    if variant.startswith("jax"):
      run, n = m.jax_train_runner(4 if variant == "jax:ens4" else 1)
      return run, n, "jax"
    run, n = m.torch_train_runner(parts[1] == "compile")
    return run, n, "torch"
  if bench == "tts":
    from benchmarks import two_timescale_throughput as m  # pylint: disable=import-outside-toplevel
    if variant == "jax":
      h = m.harness_step()
      return h.run, h.n_params, "jax"
    import torch  # pylint: disable=import-outside-toplevel
    step, n = m.make_torch_step(128, 128)
    xs, y, _ = m.make_inputs(64, 10)
    batch = {"x": {k: torch.from_numpy(x) for k, x in xs.items()}, "y": torch.from_numpy(y)}

    def run(k):
      for _ in range(k):
        loss = step(batch)
      return float(loss.detach())
    return run, n, "torch"
  if bench in ("gru", "gru_ens"):
    from benchmarks import gru_moe_throughput as m  # pylint: disable=import-outside-toplevel
    args = argparse.Namespace(batch=512, window=60, hidden=256 if bench == "gru" else 32,
                              layers=1)
    if variant.startswith("jax"):
      run, n, _ = m.jax_runner("ens:vmap:4" if variant == "jax:ens4" else "jax", args)
      return run, n, "jax"
    run, n, _ = m.torch_runner(f"torch:{parts[1]}:{parts[2]}", args)
    return run, n, "torch"
  if bench == "fusion":
    from benchmarks import fusion_lstm_throughput as m  # pylint: disable=import-outside-toplevel
    s = m.sizes(False)
    data = m.make_batch(s, 8, 4)
    if variant == "jax":
      h = m.harness_step(None, s, data)
      return h.run, h.n_params, "jax"
    run, n = m.make_torch_step(s, data, torch_threads)
    return run, n, "torch"
  if bench in ("c3d", "c3d_full", "r21d"):
    from benchmarks import video_conv_throughput as m  # pylint: disable=import-outside-toplevel
    arch = "r2plus1d" if bench == "r21d" else "c3d"
    width = 1.0 if bench == "c3d_full" else 0.25
    if variant == "jax":
      h = m.harness_step(None, arch, width, 112, 8)
      return h.run, h.n_params, "jax"
    step, n = m.torch_step(arch, width, 112, 8, torch_threads)

    def run(k):
      for _ in range(k):
        loss = step()
      return loss
    return run, n, "torch"
  raise ValueError(f"unknown benchmark {bench!r}")


def worker(bench: str, variant: str) -> None:
  t0 = time.perf_counter()
  run, n_params, lib = build(bench, variant)
  common.serve(run, lib, {"setup_s": time.perf_counter() - t0, "params": n_params})


def variant_env(variant: str) -> dict:
  env = dict(os.environ)
  if variant.startswith("torch"):
    return common.torch_env(env, variant.endswith(":passive"))
  return env


# ---- the driver -------------------------------------------------------------------------------


def run_bench(b: Bench, repeats: int) -> str:
  """Times a benchmark's variants alternately; returns its markdown block."""
  load_start = os.getloadavg()[0]
  procs = {}
  for v in b.variants:   # one at a time: building and compiling do not overlap the timed runs
    procs[v] = common.Proc("benchmarks.all", v, variant_env(v), ["--bench", b.name])
    print(f"  {b.name}: started {v} ({procs[v].ready['setup_s']:.1f} s)", file=sys.stderr,
          flush=True)
  loads = [os.getloadavg()[0]]
  times = common.timed_alternately(procs, b.steps, repeats, loads)
  peaks = {"jax": procs["jax"].ask("peak", "peak")}
  tv = [v for v in b.variants if v.startswith("torch")]
  if tv:
    peaks["torch"] = procs[tv[0]].ask("peak", "peak")
  for p in procs.values():
    p.close()
  med = {v: statistics.median(t) for v, t in times.items()}
  ref_v = min(tv, key=med.get) if tv else None
  lines = [f"**{b.title}** ({b.steps} step(s) per timed run, {repeats} alternating repeats; "
           f"1-min load {min([load_start] + loads):.1f}-{max([load_start] + loads):.1f}; "
           "matmul peak " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) + " GFLOP/s)", "",
           "| variant | params | median step (ms) | spread [min, max] | vs fastest torch |",
           "|---|---|---|---|---|"]
  for v in b.variants:
    ratio = f"{med[ref_v] / med[v]:.2f}x" if ref_v else "-"
    name = f"**{v}**" if v == ref_v else v
    lines.append(f"| {name} | {procs[v].ready['params']:,} | {med[v] * 1e3:,.2f} | "
                 f"[{min(times[v]) * 1e3:,.2f}, {max(times[v]) * 1e3:,.2f}] | {ratio} |")
  if "jax:ens4" in med:
    lines.append(f"\nK = 4 ensemble step / one member's step: "
                 f"{med['jax:ens4'] / med['jax']:.2f}x (target < 2x)")
  return "\n".join(lines)


def write_doc(blocks: dict[str, str], header: str) -> None:
  """Replaces each benchmark's block between its markers (appended to the "Quiet check" section
  when absent)."""
  text = DOC.read_text()
  section = "## Quiet check (`python -m benchmarks.all`)"
  if section not in text:
    text = text.rstrip("\n") + f"\n\n{section}\n\n{__doc__.split(chr(10))[0]}\n"
  for name, block in blocks.items():
    start, end = f"<!-- all:{name} -->", f"<!-- /all:{name} -->"
    body = f"{start}\n{header}\n\n{block}\n{end}"
    if start in text:
      text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: body, text,
                    flags=re.S)
    else:
      text = text.rstrip("\n") + f"\n\n{body}\n"
  DOC.write_text(text)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", default="")
  ap.add_argument("--bench", default="")
  ap.add_argument("--families", default="", help="comma list of " + ",".join(
      b.name for b in BENCHES) + " (default: all, or the --short ones)")
  ap.add_argument("--short", action="store_true", help="the firm targets only (~15 min)")
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--quiet-check", action="store_true",
                  help="refuse when the 1-min load average is >= 2 (see --force)")
  ap.add_argument("--force", action="store_true", help="run even under load (tables say so)")
  ap.add_argument("--estimate", action="store_true", help="print the plan and its time only")
  ap.add_argument("--no-doc", action="store_true", help="print the tables, leave the docs")
  args = ap.parse_args()
  if args.worker:
    worker(args.bench, args.worker)
    return
  names = [n for n in args.families.split(",") if n]
  unknown = set(names) - {b.name for b in BENCHES}
  if unknown:
    sys.exit(f"error: --families: unknown {sorted(unknown)}; use some of "
             f"{[b.name for b in BENCHES]}")
  benches = [b for b in BENCHES if (b.name in names if names else (b.short or not args.short))]
  if args.repeats < 5:
    print(f"warning: --repeats {args.repeats} < 5: not a target measurement", file=sys.stderr)
  total = sum(b.seconds * (1 + 0.15 * (args.repeats - 5)) for b in benches)
  print(f"plan: {', '.join(b.name for b in benches)}; estimated {total / 60:.0f} min on a quiet "
        "2-core machine (first C3D runs add the convolution tuning, cached afterwards)",
        flush=True)
  if args.estimate:
    return
  load = os.getloadavg()[0]
  if load >= 2:
    msg = (f"the 1-min load average is {load:.1f} (>= 2): PyTorch's OpenMP threads collapse "
           "under load and the ratios mean nothing")
    if args.quiet_check and not args.force:
      sys.exit(f"error: {msg}; wait for a quiet machine, or add --force to record a loaded run")
    print(f"warning: {msg}", file=sys.stderr)
  import jax  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  header = (f"Run of {when}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}"
            f"; jax {jax.__version__}, torch {torch.__version__}; LD_PRELOAD="
            f"{os.environ.get('LD_PRELOAD', '')!r}; `python -m benchmarks.all "
            f"--families={','.join(b.name for b in benches)} --repeats {args.repeats}`")
  blocks = {}
  for b in benches:
    t0 = time.time()
    blocks[b.name] = run_bench(b, args.repeats)
    print(f"\n{blocks[b.name]}\n({time.time() - t0:.0f} s)\n", flush=True)
    if not args.no_doc:
      write_doc({b.name: blocks[b.name]}, header)


if __name__ == "__main__":
  main()
