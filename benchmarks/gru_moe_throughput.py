r"""Train-step throughput of seed 001 (GRU + context gating + MoE): JAX vs PyTorch eager, and
K-member ensembles in one jit(vmap) vs K sequential member steps.

The step (docs/methods.md, gru_moe: the paper's shapes): batch 512 windows of W = 60 s; per modality (image
2048 = Inception pool, audio 128 = AudioSet/VGGish embedding, face 2048 = Inception on faces) a
1-layer GRU of 256 units; the final states concatenated (768) -> context gating (Linear 768x768 +
BatchNorm + sigmoid) -> YouTube-8M MoE (2 experts + dummy, 2 targets) -> context gating (2x2 + BN)
-> sigmoid cross-entropy on (valence, arousal); Adam. JAX: the harness's own step,
`emojax.train.make_train_step` built from the gru_moe config (mediaeval2018 shapes, the streams
above) through the Trainer's path (benchmarks/common.py): the batch is what the input pipeline
gives seed 001's training windows (W one-second clips) with the loss on the last second
(`loss_on="last"`: the batch's `loss_mask`); with the config's `model.head_seconds="last"` (the
default) the head (CG + MoE + CG, BatchNorm over the batch) runs on those B final states only, as
in the PyTorch reference ("all": on every second of each window); the config's dropout 0.3, L2 and
global-norm clipping. PyTorch 2.13 CPU eager:
`torch.nn.GRU(batch_first=True)` per modality, the head on the final states only,
`torch.optim.Adam`.

Protocol: every variant lives in its own worker subprocess (built and warmed up once); the driver
asks the workers in turn, one at a time, order reversed every repeat, for `--steps` timed steps;
the table gives the median of the per-repeat mean step time, the [min, max] spread, the load
average, and GFLOP/s (analytic matmul FLOPs) against the matmul peak each library measured in its
own worker. The ratio is against PyTorch's fastest setting (1 or N threads, each with
OMP_WAIT_POLICY=PASSIVE and with its default).

  PYTHONPATH=. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    python -m benchmarks.gru_moe_throughput --suite torch --repeats 5
  ... --suite ensemble --hidden 256      # K = 4 vmapped vs 4 sequential, paper shapes
  ... --suite ensemble --hidden 32

Variants: jax, jax+mask (windows left-padded at film starts: 1/4 of the rows start 1-59 s late),
torch:THREADS:passive|default, ens:vmap:K, ens:seq:K (ensemble suite: member steps per second).
Not a test: prints a markdown table (docs/benchmarks.md).
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

DIMS = {"image": 2048, "audio": 128, "face": 2048}
TARGETS = 2
EXPERTS = 2


def inputs(batch: int, window: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  xs = {m: rng.normal(size=(batch, window, d)).astype(np.float32) for m, d in DIMS.items()}
  y = rng.uniform(0, 1, size=(batch, TARGETS)).astype(np.float32)
  starts = np.where(np.arange(batch) % 4 == 0, rng.integers(1, window, size=batch), 0)
  mask = np.arange(window)[None, :] >= starts[:, None]   # left padding at film starts
  return xs, y, mask


# ----------------------------------------------------------------------------------------------
# JAX: the harness's own step.


def _config(args, k: int = 1):
  from configs import gru_moe as gru_moe_config  # pylint: disable=g-import-not-at-top
  c = gru_moe_config.get_config("mediaeval2018")   # the paper's batch 512, W 60, 2 experts
  with c.unlocked():
    c.inputs.streams = tuple(DIMS)
    c.model.hidden = args.hidden
    c.model.num_layers = args.layers
    c.model.window_seconds = args.window
    c.model.num_experts = EXPERTS
    c.data.batch_size = args.batch
  return c


def harness_batch(batch: int, window: int, masked: bool) -> dict:
  """A batch as the input pipeline gives seed 001's training windows: W one-second clips (L = W,
  S = 1) per window, x (B, W, 1, D), masks (B, W, 1), labels per second in [-1, 1], and the
  store's `loss_mask` of `loss_on="last"` (each window's last valid second)."""
  xs, y, mask = inputs(batch, window)
  if not masked:
    mask = np.ones_like(mask)
  last = window - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
  loss_mask = np.zeros(mask.shape, bool)
  loss_mask[np.arange(batch), last] = 1
  return {"x": {m: x[:, :, None] for m, x in xs.items()},
          "x_mask": {m: mask[:, :, None] for m in xs},
          "clip_mask": mask, "loss_mask": loss_mask,
          "y": {t: np.repeat(2 * y[:, i:i + 1] - 1, window, 1)
                for i, t in enumerate(("valence", "arousal"))}}


def harness_step(step_options=None, args=None):
  """`train.make_train_step` built from the gru_moe config at the benchmark's shapes."""
  args = args or argparse.Namespace(batch=512, window=60, hidden=256, layers=1)
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  return common.HarnessStep(_config(args), DIMS, harness_batch(args.batch, args.window, False),
                            step_options=step_options)


def jax_runner(variant: str, args):
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  batch = harness_batch(args.batch, args.window, variant.endswith("+mask"))
  if variant.startswith("ens:"):
    _, how, k = variant.split(":")
    k = int(k)
    if how == "vmap":
      h = common.EnsembleStep(_config(args), DIMS, batch, k)
      return h.run, h.n_params, k
    hs = [common.HarnessStep(_config(args), DIMS, batch, seed=i) for i in range(k)]

    def run(n):
      for _ in range(n):
        loss = [h.run(1) for h in hs]
      return loss[0]
    return run, hs[0].n_params, k
  h = common.HarnessStep(_config(args), DIMS, batch)
  return h.run, h.n_params, 1


# ----------------------------------------------------------------------------------------------
# PyTorch.


def torch_runner(variant: str, args):
  import torch  # pylint: disable=g-import-not-at-top
  threads = int(variant.split(":")[1])
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  hidden, f = args.hidden, args.hidden * len(DIMS)

  class ContextGating(torch.nn.Module):
    def __init__(self, n):
      super().__init__()
      self.w = torch.nn.Linear(n, n, bias=False)
      self.bn = torch.nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)

    def forward(self, x):
      return x * torch.sigmoid(self.bn(self.w(x)))

  class Model(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.grus = torch.nn.ModuleDict({
          m: torch.nn.GRU(d, hidden, num_layers=args.layers, batch_first=True)
          for m, d in DIMS.items()})
      self.cg1 = ContextGating(f)
      self.gate = torch.nn.Linear(f, TARGETS * (EXPERTS + 1), bias=False)
      self.experts = torch.nn.Linear(f, TARGETS * EXPERTS)
      self.cg2 = ContextGating(TARGETS)

    def forward(self, xs):
      h = torch.cat([self.grus[m](x)[1][-1] for m, x in xs.items()], dim=-1)
      h = self.cg1(h)
      g = torch.softmax(self.gate(h).view(-1, TARGETS, EXPERTS + 1), dim=-1)
      e = torch.sigmoid(self.experts(h).view(-1, TARGETS, EXPERTS))
      p = (g[..., :EXPERTS] * e).sum(-1)
      return self.cg2(p)

  model = Model()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  xs, y, _ = inputs(args.batch, args.window)
  xs = {m: torch.from_numpy(x) for m, x in xs.items()}
  y = torch.from_numpy(y)
  bce = torch.nn.BCELoss()

  def run(n):
    torch.set_num_threads(threads)
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      p = model(xs).clamp(1e-7, 1 - 1e-7)
      loss = bce(p, y)
      loss.backward()
      opt.step()
    return float(loss.detach())

  return run, sum(p.numel() for p in model.parameters()), 1


# ----------------------------------------------------------------------------------------------
# Worker and driver.


def worker(variant: str, args) -> None:
  """Builds the variant, warms it up, then answers 'run N' / 'peak' / 'quit' on stdin."""
  t0 = time.perf_counter()
  run, n_params, members = (torch_runner if variant.startswith("torch") else jax_runner)(
      variant, args)
  run(1)
  first = time.perf_counter() - t0
  run(1)
  print(json.dumps({"ready": True, "params": n_params, "members": members, "first_s": first}),
        flush=True)
  for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "run":
      t0 = time.perf_counter()
      loss = run(int(cmd[1]))
      print(json.dumps({"s": (time.perf_counter() - t0) / int(cmd[1]), "loss": loss}), flush=True)
    elif cmd[0] == "peak":
      from benchmarks import common  # pylint: disable=g-import-not-at-top
      peak = common.matmul_peak("torch" if variant.startswith("torch") else "jax")
      print(json.dumps({"peak": peak}), flush=True)
    else:
      return


def start_worker(variant: str, args) -> subprocess.Popen:
  env = dict(os.environ)
  if variant.startswith("torch"):
    policy = variant.split(":")[2] if variant.count(":") >= 2 else "default"
    if policy == "passive":
      env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
      env.pop("OMP_WAIT_POLICY", None)
  cmd = [sys.executable, "-m", "benchmarks.gru_moe_throughput", "--worker", variant, "--batch", str(args.batch), "--window",
         str(args.window), "--hidden", str(args.hidden), "--layers", str(args.layers)]
  return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def ask(proc: subprocess.Popen, cmd: str) -> dict:
  proc.stdin.write(cmd + "\n")
  proc.stdin.flush()
  return read(proc)


def read(proc: subprocess.Popen) -> dict:
  while True:
    line = proc.stdout.readline()
    if not line:
      raise RuntimeError(f"worker {proc.args} died (exit {proc.wait()})")
    if line.startswith("{"):
      return json.loads(line)


def analytic_flops(batch: int, t: int, hidden: int, layers_n: int) -> dict[str, float]:
  """Matmul FLOPs of one train step (2 per multiply-add; elementwise work not counted)."""
  bt, g, f = batch * t, 3 * hidden, hidden * len(DIMS)
  out = {"layer-1 input projection (fwd, dW)": 0.0, "deeper input projections (fwd, dW, dX)": 0.0,
         "recurrent h W_hh (fwd, dW, dh)": 0.0, "CG + MoE head (fwd, dW, dX)": 0.0}
  for d in DIMS.values():
    out["layer-1 input projection (fwd, dW)"] += 2 * (2 * bt * d * g)
    out["deeper input projections (fwd, dW, dX)"] += (layers_n - 1) * 3 * (2 * bt * hidden * g)
    out["recurrent h W_hh (fwd, dW, dh)"] += layers_n * 3 * (2 * bt * hidden * g)
  out["CG + MoE head (fwd, dW, dX)"] = 3 * 2 * batch * (f * f + f * TARGETS * (2 * EXPERTS + 1))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--suite", default="torch", choices=["torch", "ensemble", "custom"])
  parser.add_argument("--variants", default="", help="comma list (suite custom)")
  parser.add_argument("--steps", type=int, default=2, help="train steps per timed run")
  parser.add_argument("--repeats", type=int, default=5, help="alternating timed runs per variant")
  parser.add_argument("--batch", type=int, default=512)
  parser.add_argument("--window", type=int, default=60, help="W seconds")
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--layers", type=int, default=1)
  parser.add_argument("--ensemble", type=int, default=4, help="K (suite ensemble)")
  parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    worker(args.worker, args)
    return

  n = os.cpu_count()
  if args.suite == "torch":
    variants = ["jax", "jax+mask", "torch:1:passive", f"torch:{n}:passive", "torch:1:default",
                f"torch:{n}:default"]
  elif args.suite == "ensemble":
    variants = [f"ens:vmap:{args.ensemble}", f"ens:seq:{args.ensemble}"]
  else:
    variants = args.variants.split(",")
  procs, info = {}, {}
  for v in variants:   # one at a time: building and compiling must not overlap the others
    procs[v] = start_worker(v, args)
    info[v] = read(procs[v])
  load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
  peaks = {}
  for v in (variants[0], next((v for v in variants if v.startswith("torch")), None)):
    if v:
      peaks["torch.mm" if v.startswith("torch") else "jnp.matmul"] = ask(procs[v], "peak")["peak"]
  times = {v: [] for v in variants}
  for r in range(args.repeats):
    for v in (variants if r % 2 == 0 else variants[::-1]):
      times[v].append(ask(procs[v], f"run {args.steps}")["s"])
  load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
  for v in variants:
    procs[v].stdin.write("quit\n")
    procs[v].stdin.flush()
    procs[v].wait()

  flops = analytic_flops(args.batch, args.window, args.hidden, args.layers)
  total = sum(flops.values())
  print(f"# gru_moe train step ({args.suite}): batch {args.batch}, W {args.window}, GRU "
        f"{args.hidden} x {args.layers} layer(s), dims {DIMS}\n")
  import jax  # pylint: disable=g-import-not-at-top
  versions = f"jax {jax.__version__}, numpy {np.__version__}"
  if any(v.startswith("torch") for v in variants):
    import torch  # pylint: disable=g-import-not-at-top
    versions += f", torch {torch.__version__}"
  print(f"machine: {n} cores, {platform.processor() or platform.machine()}; {versions}")
  print(f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r} "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; load average before {load_before}, "
        f"after {load_after}\n")
  print("analytic matmul FLOPs per member step:")
  for k, v in flops.items():
    print(f"  {k}: {v / 1e9:.2f} GFLOP")
  print(f"  total: {total / 1e9:.1f} GFLOP")
  print("float32 matmul peak (common.matmul_peak, in each library's worker): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()) + "\n")
  torch_v = [v for v in variants if v.startswith("torch")]
  ref_v = min(torch_v, key=lambda v: statistics.median(times[v])) if torch_v else variants[-1]
  ref = statistics.median(times[ref_v]) / info[ref_v]["members"]
  peak_cols = list(peaks)
  print("| variant | params/member | median step (ms) | spread [min, max] | member steps/s | "
        "GFLOP/s | " + " | ".join(f"% of {k}" for k in peak_cols)
        + f" | speed-up vs {ref_v} | build+first steps (s) |")
  print("|---" * (7 + len(peak_cols)) + "|")
  for v in variants:
    med, k = statistics.median(times[v]), info[v]["members"]
    gflops = total * k / med / 1e9
    print(f"| {v} | {info[v]['params']:,} | {med * 1e3:.0f} | [{min(times[v]) * 1e3:.0f}, "
          f"{max(times[v]) * 1e3:.0f}] | {k / med:.2f} | {gflops:.1f} | "
          + " | ".join(f"{100 * gflops / peaks[c]:.0f}%" for c in peak_cols)
          + f" | {ref / (med / k):.2f}x | {info[v]['first_s']:.1f} |")
  print(f"\n{args.repeats} alternating repeats x {args.steps} steps per variant, each variant in its "
        "own worker process; speed-up = member steps per second against the reference.")


if __name__ == "__main__":
  main()
