r"""Per-layer convolution profile of seed 004's C3D / R(2+1)D: JAX (the lowering the harness uses)
vs PyTorch's oneDNN kernels, forward, input gradient and weight gradient timed separately.

Every convolution layer of the model at the given width / crop / batch (the shapes the harness's
step traces, `video_conv.record_shapes`) is timed in isolation:
  JAX    `video_conv.conv3d` with the lowering `auto` picks for it (the tuning cache, tuned first
         if missing; or `--lowering`): the forward, the input gradient alone and the kernel
         gradient alone (each its own jitted VJP: XLA drops the unused half), best of `--repeats`.
  torch  `torch.nn.functional.conv3d` on NCDHW (oneDNN), and `aten.convolution_backward` with the
         output mask of the input gradient alone and of the weight gradient alone.
Each library runs in its own worker process (JAX first, then PyTorch, then both again in the
other order; the best time of all rounds), with its float32 matmul peak (common.matmul_peak) in
the same process. GFLOP/s: 2 x multiply-adds of the forward; each gradient costs the same FLOPs.
The table (with the load average) replaces its block in docs/benchmarks.md with `--doc`.

  PYTHONPATH=. python -m benchmarks.conv_profile --arch c3d --width 1.0 --size 112 --batch 8 --doc
  PYTHONPATH=. python -m benchmarks.conv_profile --arch c3d --width 0.25 --size 112 --batch 8 --doc
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from benchmarks import common

KINDS = ("fwd", "dx", "dw")


def layer_keys(arch: str, width: float, size: int, batch: int, lowering: str) -> list[str]:
  from benchmarks import video_conv_throughput as vct  # pylint: disable=import-outside-toplevel
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets as vcn  # pylint: disable=import-outside-toplevel
  net, c = vct._jax_net(arch, width, size, lowering)  # pylint: disable=protected-access
  with video_conv.record_shapes() as keys:
    vct._abstract_forward(net, (batch,) + vcn.example_shape(c))  # pylint: disable=protected-access
  return list(dict.fromkeys(keys))


def _best(fn, repeats: int) -> float:
  fn()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t0)
  return best


def jax_layer(key: str, lowering: str, repeats: int) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  in_shape, kernel, stride, padding, dtype = video_conv._parse_key(key)  # pylint: disable=protected-access
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(in_shape, np.float32))
  w = jnp.asarray(rng.standard_normal(kernel, np.float32) * 0.05)
  f = lambda x, w: video_conv.conv3d(x.astype(dtype), w.astype(dtype), stride, padding,  # noqa: E731
                                     lowering)
  g = jnp.ones(jax.eval_shape(f, x, w).shape, jnp.float32)
  fwd = jax.jit(f)
  dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: f(x, w), x)[1](g)[0])
  dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: f(x, w), w)[1](g)[0])
  return {"fwd": _best(lambda: fwd(x, w).block_until_ready(), repeats),
          "dx": _best(lambda: dx(x, w, g).block_until_ready(), repeats),
          "dw": _best(lambda: dw(x, w, g).block_until_ready(), repeats)}


def torch_layer(key: str, repeats: int) -> dict:
  import torch  # pylint: disable=import-outside-toplevel
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  (b, t, h, w_, ci), (kt, kh, kw, _, co), stride, padding, _ = video_conv._parse_key(key)  # pylint: disable=protected-access
  x = torch.randn(b, ci, t, h, w_)
  w = torch.randn(co, ci, kt, kh, kw) * 0.05
  out = torch.nn.functional.conv3d(x, w, None, stride, padding)
  g = torch.ones_like(out)

  def bwd(mask):
    return lambda: torch.ops.aten.convolution_backward(
        g, x, w, None, list(stride), list(padding), [1, 1, 1], False, [0, 0, 0], 1, mask)
  with torch.no_grad():
    return {"fwd": _best(lambda: torch.nn.functional.conv3d(x, w, None, stride, padding), repeats),
            "dx": _best(bwd([True, False, False]), repeats),
            "dw": _best(bwd([False, True, False]), repeats)}


def worker(lib: str, args) -> None:
  keys = layer_keys(args.arch, args.width, args.size, args.batch, args.lowering)
  out = {"peak": common.matmul_peak(lib), "layers": {}}
  if lib == "jax":
    from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
    if args.lowering == "auto":
      video_conv.tune(keys)
    for k in keys:
      low = (video_conv.resolve(k, video_conv._parse_key(k)[1])  # pylint: disable=protected-access
             if args.lowering == "auto" else args.lowering)
      out["layers"][k] = dict(jax_layer(k, low, args.repeats), lowering=low)
  else:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(args.threads)
    for k in keys:
      out["layers"][k] = torch_layer(k, args.repeats)
  print("result " + json.dumps(out), flush=True)


def _run(lib: str, args) -> dict:
  env = dict(os.environ)
  if lib == "torch":
    env = common.torch_env(env, args.passive)
  cmd = [sys.executable, "-m", "benchmarks.conv_profile", "--worker", lib, "--arch", args.arch,
         "--width", str(args.width), "--size", str(args.size), "--batch", str(args.batch),
         "--repeats", str(args.repeats), "--lowering", args.lowering, "--threads",
         str(args.threads)] + (["--passive"] if args.passive else [])
  r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
  line = [l for l in r.stdout.splitlines() if l.startswith("result ")]
  if r.returncode or not line:
    raise RuntimeError(f"{lib} worker failed:\n{r.stderr[-3000:]}")
  return json.loads(line[-1][len("result "):])


def table(args, res: dict, loads: list[float]) -> str:
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  j, t = res["jax"], res["torch"]
  pj, pt = j["peak"], t["peak"]
  rows = [f"**{args.arch}, width {args.width}, {args.size} px, batch {args.batch}** (torch "
          f"{args.threads} thread(s){', PASSIVE' if args.passive else ''}; 1-min load "
          f"{min(loads):.1f}-{max(loads):.1f}; matmul peak jax {pj:.0f} / torch {pt:.0f} GFLOP/s; "
          f"best of {args.repeats} x {args.rounds} rounds)", "",
          "| layer input (B,T,H,W,C) | kernel | stride | fwd GFLOP | JAX lowering | "
          "JAX fwd / dx / dw ms | torch fwd / dx / dw ms | JAX GFLOP/s fwd / dx / dw "
          "(% of its peak) | torch GFLOP/s fwd / dx / dw (% of its peak) | torch / JAX time "
          "fwd / dx / dw |", "|---|---|---|---|---|---|---|---|---|---|"]
  tot = {lib: {k: 0.0 for k in KINDS} for lib in ("jax", "torch")}
  total_flops = 0.0
  for key, jl in j["layers"].items():
    tl = t["layers"][key]
    in_shape, kernel, stride, padding, _ = video_conv._parse_key(key)  # pylint: disable=protected-access
    fl = video_conv.flops(in_shape, kernel, stride, padding)
    total_flops += fl
    for k in KINDS:
      tot["jax"][k] += jl[k]
      tot["torch"][k] += tl[k]
    gf = lambda d, peak: " / ".join(f"{fl / d[k] / 1e9:.0f}" for k in KINDS) + (  # noqa: E731
        f" ({100 * fl / d['fwd'] / 1e9 / peak:.0f}%, {100 * fl / d['dx'] / 1e9 / peak:.0f}%, "
        f"{100 * fl / d['dw'] / 1e9 / peak:.0f}%)")
    rows.append(
        f"| {in_shape} | {kernel[:3]} {kernel[3]}->{kernel[4]} | {stride} | {fl / 1e9:.2f} | "
        f"{jl['lowering']} | " + " / ".join(f"{jl[k] * 1e3:.1f}" for k in KINDS) + " | "
        + " / ".join(f"{tl[k] * 1e3:.1f}" for k in KINDS) + f" | {gf(jl, pj)} | {gf(tl, pt)} | "
        + " / ".join(f"{tl[k] / jl[k]:.2f}" for k in KINDS) + " |")
  rows.append(
      f"| **all layers** | | | {total_flops / 1e9:.2f} | | "
      + " / ".join(f"{tot['jax'][k] * 1e3:.0f}" for k in KINDS) + " | "
      + " / ".join(f"{tot['torch'][k] * 1e3:.0f}" for k in KINDS) + " | "
      + " / ".join(f"{total_flops / tot['jax'][k] / 1e9:.0f}" for k in KINDS) + " | "
      + " / ".join(f"{total_flops / tot['torch'][k] / 1e9:.0f}" for k in KINDS) + " | "
      + " / ".join(f"{tot['torch'][k] / tot['jax'][k]:.2f}" for k in KINDS) + " |")
  return "\n".join(rows)


def write_doc(name: str, block: str, command: str) -> None:
  doc = common_doc()
  text = doc.read_text()
  start, end = f"<!-- conv_profile:{name} -->", f"<!-- /conv_profile:{name} -->"
  body = f"{start}\n`{command}`\n\n{block}\n{end}"
  if start in text:
    text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: body, text, flags=re.S)
  else:
    text = text.rstrip("\n") + f"\n\n{body}\n"
  doc.write_text(text)


def common_doc():
  import pathlib  # pylint: disable=import-outside-toplevel
  return pathlib.Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", default="")
  ap.add_argument("--arch", default="c3d", choices=("c3d", "r2plus1d"))
  ap.add_argument("--width", type=float, default=1.0)
  ap.add_argument("--size", type=int, default=112)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--rounds", type=int, default=2, help="JAX-then-torch rounds, alternated")
  ap.add_argument("--lowering", default="auto")
  ap.add_argument("--threads", type=int, default=2, help="torch threads")
  ap.add_argument("--passive", action="store_true", help="torch with OMP_WAIT_POLICY=PASSIVE")
  ap.add_argument("--doc", action="store_true", help="write the table to docs/benchmarks.md")
  args = ap.parse_args()
  if args.worker:
    worker(args.worker, args)
    return
  loads = [os.getloadavg()[0]]
  res: dict = {}
  for r in range(args.rounds):
    for lib in (("jax", "torch") if r % 2 == 0 else ("torch", "jax")):
      out = _run(lib, args)
      loads.append(os.getloadavg()[0])
      if lib not in res:
        res[lib] = out
        continue
      res[lib]["peak"] = max(res[lib]["peak"], out["peak"])
      for k, v in out["layers"].items():
        for kind in KINDS:
          res[lib]["layers"][k][kind] = min(res[lib]["layers"][k][kind], v[kind])
  block = table(args, res, loads)
  print(block)
  if args.doc:
    cmd = (f"python -m benchmarks.conv_profile --arch {args.arch} --width {args.width} --size "
           f"{args.size} --batch {args.batch} --threads {args.threads}"
           + (" --passive" if args.passive else "") + f" --lowering {args.lowering} --doc")
    write_doc(f"{args.arch}_{args.size}_w{args.width}_b{args.batch}", block, cmd)


if __name__ == "__main__":
  main()
