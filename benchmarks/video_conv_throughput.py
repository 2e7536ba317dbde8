r"""Train-step speed of the seed-004 video convnets (C3D, R(2+1)D-18): JAX (emojax) vs PyTorch eager.

One step = forward on a batch of clips, MSE loss, backward, SGD-momentum update.
  JAX      `emojax.train.make_train_step` (the harness's own jitted step, built from the
           video_convnets config through the Trainer's path, benchmarks/common.py, with the
           phase's setup) on `video_convnets.VideoNet` (uint8 clips stored at the config's
           `example_shape`, cropped in the forward; the config's SGD), every
           convolution lowered per layer by `video_conv` (`--lowering auto`: the fastest lowering
           timed once per layer shape and cached; or one fixed lowering for all layers).
  PyTorch  the same networks written with torch.nn (Conv3d NCDHW, BatchNorm3d, same widths and
           mid-channel counts), float input already cropped, eager, 1 and 2 threads, each with
           OMP_WAIT_POLICY=PASSIVE and with torch's default.
Every variant runs in its own subprocess; variants alternate within each repeat (>= 5 repeats).
The table gives the median step time, the spread [min, max], the ratio against PyTorch's fastest
setting (> 1: JAX faster), GFLOP/s of the step (3x the forward's convolution FLOPs) and each
library's measured float32 matmul peak (a 2048^3 GEMM) in the same subprocess, and the load average.
`--layers` prints the per-layer table of the tuning cache: every lowering's forward+backward time
and GFLOP/s for each convolution shape of the models.

  PYTHONPATH=. python -m benchmarks.video_conv_throughput \
      --models c3d,r2plus1d --width 0.5 --size 112 --batch 8 --repeats 5 --layers

Not a test: prints markdown tables (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np


def conv_flops(arch: str, width: float, size: int, batch: int, frames: int = 8) -> float:
  """Forward convolution FLOPs (2 x multiply-adds) of one batch, from the JAX model's layers."""
  import jax  # pylint: disable=import-outside-toplevel
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  net, _ = _jax_net(arch, width, size)
  total = 0.0
  with video_conv.record_shapes() as keys:
    _abstract_forward(net, (batch, frames, size + size // 7, size + size // 7, 3))
  for k in keys:
    in_shape, kernel, stride, padding, _ = video_conv._parse_key(k)  # pylint: disable=protected-access
    total += video_conv.flops(in_shape, kernel, stride, padding)
  del jax
  return total


def _config(arch: str, width: float, size: int, lowering: str = "auto", dtype="float32"):
  from configs import video_convnets as cfg  # pylint: disable=import-outside-toplevel
  c = cfg.get_config(f"{arch},valence")
  c.unlock()
  c.model.width, c.model.crop = width, size
  c.model.conv_lowering, c.model.compute_dtype = lowering, dtype
  c.model.dropout = 0.0
  return c


def _jax_net(arch, width, size, lowering="auto", dtype="float32"):
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets as vcn  # pylint: disable=import-outside-toplevel
  c = _config(arch, width, size, lowering, dtype)
  return vcn.VideoNet(c, vcn.example_shape(c), nnx.Rngs(0)), c


def _abstract_forward(net, shape):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  graphdef, state = nnx.split(net)

  def run(state, clips):
    m = nnx.merge(graphdef, state)
    m.eval()
    return m(clips, None)
  return jax.eval_shape(run, state, jax.ShapeDtypeStruct(shape, jnp.uint8))


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def harness_step(step_options=None, arch="c3d", width=0.25, size=112, batch=8, lowering="auto",
                 dtype="float32"):
  """The harness's own step (`train.make_train_step` through benchmarks/common.py, with the
  phase's setup: the `auto` lowerings tuned for this batch) on a VideoNet of the config."""
  from benchmarks import common  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets as vcn  # pylint: disable=import-outside-toplevel
  c = _config(arch, width, size, lowering, dtype)
  with c.unlocked():
    c.data.batch_size = c.data.eval_batch_size = batch
  stored = vcn.example_shape(c)
  rng = np.random.default_rng(0)
  data = {"x": {vcn.frame_stream(c): rng.integers(0, 256, (batch,) + stored, np.uint8)},
          "y": {"valence": rng.uniform(-1, 1, batch).astype(np.float32)},
          "clip_mask": np.ones((batch,), bool)}
  return common.HarnessStep(c, {vcn.frame_stream(c): stored}, data, step_options=step_options)


def jax_worker(arch, width, size, batch, steps, lowering, dtype) -> dict:
  from benchmarks import common  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  h = harness_step(None, arch, width, size, batch, lowering, dtype)
  h.run(1)
  setup_s = time.perf_counter() - t0
  times = [_timed(lambda: h.run(1)) for _ in range(steps)]
  return {"s": min(times), "peak": common.matmul_peak("jax"), "tune_s": setup_s}


def torch_step(arch, width, size, batch, threads):
  """(step(), n_params): the PyTorch network's SGD-momentum train step on a fixed batch."""
  import torch  # pylint: disable=import-outside-toplevel
  from torch import nn  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets as vcn  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(threads)
  ch = lambda n: max(4, int(round(n * width)))  # noqa: E731  same rule as video_convnets._ch

  def cbr(ci, co, k, s=1, p=0, relu=True):
    layers = [nn.Conv3d(ci, co, k, s, p, bias=False), nn.BatchNorm3d(co)]
    return layers + ([nn.ReLU(inplace=True)] if relu else [])

  if arch == "c3d":
    chans = [ch(c) for c in (64, 128, 256, 256, 512, 512, 512, 512)]
    pools = {0: ((1, 2, 2), 0), 1: ((2, 2, 2), 0), 3: ((2, 2, 2), 0), 5: ((2, 2, 2), 0),
             7: ((1, 2, 2), (0, 1, 1))}
    mods, ci = [], 3
    for i, co in enumerate(chans):
      mods += cbr(ci, co, 3, 1, 1)
      ci = co
      if i in pools:
        mods.append(nn.MaxPool3d(pools[i][0], pools[i][0], pools[i][1]))
    feat = nn.Sequential(*mods)
    with torch.no_grad():
      n = feat(torch.zeros(1, 3, 8, size, size)).numel()
    fc = ch(4096)
    net = nn.Sequential(feat, nn.Flatten(), nn.Linear(n, fc), nn.ReLU(), nn.Linear(fc, fc),
                        nn.ReLU(), nn.Linear(fc, 1))
  else:
    class C21(nn.Module):
      def __init__(self, ci, co, mid, s):
        super().__init__()
        self.seq = nn.Sequential(nn.Conv3d(ci, mid, (1, 3, 3), (1, s, s), (0, 1, 1), bias=False),
                                 nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                                 nn.Conv3d(mid, co, (3, 1, 1), (s, 1, 1), (1, 0, 0), bias=False))

      def forward(self, x):
        return self.seq(x)

    class Block(nn.Module):
      def __init__(self, ci, co, s):
        super().__init__()
        mid = vcn.mid_channels(ci, co)
        self.body = nn.Sequential(C21(ci, co, mid, s), nn.BatchNorm3d(co), nn.ReLU(inplace=True),
                                  C21(co, co, mid, 1), nn.BatchNorm3d(co))
        self.short = (nn.Sequential(nn.Conv3d(ci, co, 1, s, bias=False), nn.BatchNorm3d(co))
                      if s != 1 or ci != co else nn.Identity())

      def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))

    c = [ch(n) for n in (64, 128, 256, 512)]
    mods = cbr(3, ch(45), (1, 7, 7), (1, 2, 2), (0, 3, 3)) + cbr(ch(45), c[0], (3, 1, 1), 1,
                                                                  (1, 0, 0))
    ci = c[0]
    for i, co in enumerate(c):
      for j in range(2):
        mods.append(Block(ci, co, 2 if i > 0 and j == 0 else 1))
        ci = co
    net = nn.Sequential(*mods, nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(ci, 1))
  opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
  x = torch.rand(batch, 3, 8, size, size)
  y = torch.rand(batch) * 2 - 1

  def step():
    opt.zero_grad(set_to_none=True)
    loss = ((net(x)[:, 0] - y) ** 2).mean()
    loss.backward()
    opt.step()
    return float(loss.detach())
  return step, sum(p.numel() for p in net.parameters())


def torch_worker(arch, width, size, batch, steps, threads) -> dict:
  step, _ = torch_step(arch, width, size, batch, threads)
  step()
  times = []
  for _ in range(steps):
    times.append(_timed(step))
  from benchmarks import common  # pylint: disable=import-outside-toplevel
  return {"s": min(times), "peak": common.matmul_peak("torch")}


def run_variant(args, model, name, env_extra, worker_args):
  env = dict(os.environ, PYTHONPATH=os.getcwd(), **env_extra)
  cmd = [sys.executable, "-m", "benchmarks.video_conv_throughput", "--worker", *worker_args, "--models", model,
         "--width", str(args.width), "--size", str(args.size), "--batch", str(args.batch),
         "--steps", str(args.steps)]
  out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
  if out.returncode:
    raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def layer_table(models, width, size, batch) -> str:
  """The tuning cache's per-layer times as GFLOP/s (forward + backward = 3x forward FLOPs)."""
  from emojax.nn import video_conv  # pylint: disable=import-outside-toplevel
  video_conv.clear_memory_cache()     # the workers tuned after this process read the file
  table = video_conv._table()  # pylint: disable=protected-access
  rows = ["| model | layer input (B,T,H,W,C) | kernel | stride | " + " | ".join(
      video_conv.LOWERINGS) + " | chosen |", "|" + "---|" * (5 + len(video_conv.LOWERINGS))]
  for arch in models:
    net, _ = _jax_net(arch, width, size)
    with video_conv.record_shapes() as keys:
      _abstract_forward(net, (batch, 8, size + size // 7, size + size // 7, 3))
    for k in dict.fromkeys(keys):
      if k not in table:
        continue
      in_shape, kernel, stride, padding, _ = video_conv._parse_key(k)  # pylint: disable=protected-access
      fl = 3 * video_conv.flops(in_shape, kernel, stride, padding)
      ms = table[k]["ms"]
      cells = [f"{fl / ms[n] / 1e6:.1f}" if n in ms else "-" for n in video_conv.LOWERINGS]
      rows.append(f"| {arch} | {in_shape} | {kernel[:3]} {kernel[3]}->{kernel[4]} | {stride} | "
                  + " | ".join(cells) + f" | {table[k]['best']} |")
  return "\n".join(rows)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--models", default="c3d,r2plus1d")
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--size", type=int, default=112)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=2, help="timed steps per subprocess (min taken)")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--lowering", default="auto")
  p.add_argument("--dtype", default="float32")
  p.add_argument("--torch_settings", default="1,2,1p,2p",
                 help="threads, 'p' = OMP_WAIT_POLICY=PASSIVE")
  p.add_argument("--layers", action="store_true")
  p.add_argument("--worker", nargs="*")
  args = p.parse_args()
  if args.worker is not None:
    kind = args.worker[0]
    if kind == "jax":
      r = jax_worker(args.models, args.width, args.size, args.batch, args.steps, args.worker[1],
                     args.worker[2])
    else:
      r = torch_worker(args.models, args.width, args.size, args.batch, args.steps,
                       int(args.worker[1]))
    print(json.dumps(r))
    return
  models = args.models.split(",")
  variants = [(f"jax {args.lowering} {args.dtype}", {}, ["jax", args.lowering, args.dtype])]
  for s in args.torch_settings.split(","):
    passive = s.endswith("p")
    variants.append((f"torch {s.rstrip('p')} thr" + (" PASSIVE" if passive else ""),
                     {"OMP_WAIT_POLICY": "PASSIVE"} if passive else {},
                     ["torch", s.rstrip("p")]))
  load_before = " ".join(f"{v:.1f}" for v in os.getloadavg())
  print(f"# video convnet train step, batch {args.batch}, 8x{args.size}x{args.size}, width "
        f"{args.width}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load before {load_before}", flush=True)
  for model in models:
    flops = 3 * conv_flops(model, args.width, args.size, args.batch)
    res = {name: [] for name, _, _ in variants}
    peaks = {name: [] for name, _, _ in variants}
    for rep in range(args.repeats):
      order = variants if rep % 2 == 0 else variants[::-1]
      for name, env, wargs in order:
        r = run_variant(args, model, name, env, wargs)
        res[name].append(r["s"])
        peaks[name].append(r["peak"])
        print(f"  {model} rep {rep} {name}: {r['s'] * 1e3:.0f} ms (peak {r['peak']:.0f} GFLOP/s)",
              file=sys.stderr, flush=True)
    med = {n: statistics.median(v) for n, v in res.items()}
    best_torch = min((n for n in med if n.startswith("torch")), key=med.get)
    print(f"\n## {model}: conv FLOPs per step (fwd+bwd) {flops / 1e9:.1f} G; load after "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print("| variant | median ms | [min, max] | vs best torch | GFLOP/s | matmul peak GFLOP/s | "
          "% of peak |\n|---|---|---|---|---|---|---|")
    for n, v in res.items():
      gf = flops / med[n] / 1e9
      pk = statistics.median(peaks[n])
      print(f"| {n} | {med[n] * 1e3:.0f} | [{min(v) * 1e3:.0f}, {max(v) * 1e3:.0f}] | "
            f"{med[best_torch] / med[n]:.2f}x | {gf:.1f} | {pk:.0f} | {100 * gf / pk:.0f}% |")
  if args.layers:
    print("\n## per-layer forward+backward GFLOP/s by lowering (tuning cache "
          f"{__import__('emojax.nn.video_conv', fromlist=['x']).cache_path()})")
    print(layer_table(models, args.width, args.size, args.batch))


if __name__ == "__main__":
  main()
