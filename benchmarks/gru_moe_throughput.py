r"""Train-step throughput of seed 001 (GRU + context gating + MoE): JAX vs PyTorch eager, and
K-member ensembles in one jit(vmap) vs K sequential member steps.

The step (docs/methods.md, gru_moe: the paper's shapes): batch 512 windows of W = 60 s; per modality (image
2048 = Inception pool, audio 128 = AudioSet/VGGish embedding, face 2048 = Inception on faces) a
1-layer GRU of 256 units; the final states concatenated (768) -> context gating (Linear 768x768 +
BatchNorm + sigmoid) -> YouTube-8M MoE (2 experts + dummy, 2 targets) -> context gating (2x2 + BN)
-> sigmoid cross-entropy on (valence, arousal); Adam. JAX: emojax's `layers.MultiRecurrent` (one
scan for the three GRUs, hoisted input projections, hand-written VJP) and gru_moe's
`ContextGating` / `MixtureOfExperts`, `jax.jit` of a pure step over the `nnx.split` state, donated.
PyTorch 2.13 CPU eager: `torch.nn.GRU(batch_first=True)` per modality, the same head,
`torch.optim.Adam`.

Protocol: every variant lives in its own worker subprocess (built and warmed up once); the driver
asks the workers in turn, one at a time, order reversed every repeat, for `--steps` timed steps;
the table gives the median of the per-repeat mean step time, the [min, max] spread, the load
average, and GFLOP/s (analytic matmul FLOPs) against the matmul peak each library measured in its
own worker. The ratio is against PyTorch's fastest setting (1 or N threads, each with
OMP_WAIT_POLICY=PASSIVE and with its default).

  PYTHONPATH=. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    /work/main/.venv/bin/python benchmarks/gru_moe_throughput.py --suite torch --repeats 5
  ... --suite ensemble --hidden 256      # K = 4 vmapped vs 4 sequential, paper shapes
  ... --suite ensemble --hidden 32

Variants: jax, jax+mask (windows left-padded at film starts: 1/4 of the rows start 1-59 s late),
jax:1 (XLA_FLAGS=--xla_cpu_multi_thread_eigen=false: one compute thread, for loaded machines),
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
# JAX.


def make_jax_model(hidden: int, layers_n: int, rngs):
  from flax import nnx  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from emojax.models import gru_moe  # pylint: disable=g-import-not-at-top
  from emojax.nn import layers  # pylint: disable=g-import-not-at-top

  class SeqToOne(nnx.Module):
    """Final GRU states -> CG -> MoE -> CG: logits of the last second of each window."""

    def __init__(self):
      f = hidden * len(DIMS)
      bn = dict(batch_norm=True, bn_inference="population", bn_momentum=0.99)
      self.gru = layers.MultiRecurrent(DIMS, hidden, layers_n, "gru", rngs=rngs)
      self.cg1 = gru_moe.ContextGating(f, **bn, rngs=rngs)
      self.moe = gru_moe.MixtureOfExperts(f, TARGETS, EXPERTS, rngs=rngs)
      self.cg2 = gru_moe.ContextGating(TARGETS, **bn, rngs=rngs)

    def __call__(self, xs, mask):
      out = self.gru(xs, mask)
      h = jnp.concatenate([out[m][1] for m in DIMS], axis=-1)
      valid = jnp.ones(h.shape[0], bool)
      h = self.cg1(h, valid)
      logp = self.moe(h)
      logp = logp + self.cg2.log_gate(jnp.exp(logp), valid)
      return gru_moe.probability_logit(logp)

  del jax
  return SeqToOne()


def make_jax_member_step(hidden: int, layers_n: int):
  """(step(params, rest, opt, batch) -> (params, rest, opt, loss), create(key) -> states)."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  tx = optax.adam(1e-3)
  abstract = nnx.eval_shape(lambda: make_jax_model(hidden, layers_n, nnx.Rngs(0)))
  graphdef = nnx.split(abstract, nnx.Param, ...)[0]

  def create(key):
    params, rest = nnx.split(make_jax_model(hidden, layers_n, nnx.Rngs(key)), nnx.Param, ...)[1:]
    return params, rest, tx.init(params)

  def step(params, rest, opt_state, batch):
    def loss_fn(p):
      model = nnx.merge(graphdef, p, rest, copy=True)
      logits = model(batch["x"], batch["mask"])
      loss = optax.sigmoid_binary_cross_entropy(logits, batch["y"]).mean()
      return loss, nnx.state(model, nnx.Not(nnx.Param))
    (loss, rest_new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), rest_new, opt_state, loss

  return step, create


def jax_runner(variant: str, args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  xs, y, mask = inputs(args.batch, args.window)
  batch = {"x": {m: jnp.asarray(x) for m, x in xs.items()}, "y": jnp.asarray(y),
           "mask": jnp.asarray(mask) if variant.endswith("+mask") else None}
  step, create = make_jax_member_step(args.hidden, args.layers)
  if variant.startswith("ens:"):
    _, how, k = variant.split(":")
    k = int(k)
    if how == "vmap":
      states = jax.jit(jax.vmap(create))(jax.random.split(jax.random.key(0), k))
      fn = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None)), donate_argnums=(0, 1, 2))
      holder = {"s": states}

      def run(n):
        for _ in range(n):
          *s, loss = fn(*holder["s"], batch)
          holder["s"] = tuple(s)
        return float(loss[0])
    else:
      fn = jax.jit(step, donate_argnums=(0, 1, 2))
      holder = {"s": [jax.jit(create)(jax.random.key(i)) for i in range(k)]}

      def run(n):
        for _ in range(n):
          for i in range(k):
            *s, loss = fn(*holder["s"][i], batch)
            holder["s"][i] = tuple(s)
        return float(loss)
    members = k
  else:
    fn = jax.jit(step, donate_argnums=(0, 1, 2))
    holder = {"s": jax.jit(create)(jax.random.key(0))}

    def run(n):
      for _ in range(n):
        *s, loss = fn(*holder["s"], batch)
        holder["s"] = tuple(s)
      return float(loss)
    members = 1
  params = holder["s"][0] if not isinstance(holder["s"], list) else holder["s"][0][0]
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  if variant.startswith("ens:vmap"):
    n_params //= members
  return run, n_params, members


def jax_peak(n: int = 4096, reps: int = 5) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
  mm = jax.jit(jnp.matmul)
  mm(a, a).block_until_ready()
  best = np.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    mm(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


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


def torch_peak(n: int = 4096, reps: int = 5) -> float:
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  b = torch.from_numpy(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
  torch.mm(b, b)
  best = np.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    torch.mm(b, b)
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


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
      peak = torch_peak() if variant.startswith("torch") else jax_peak()
      print(json.dumps({"peak": peak}), flush=True)
    else:
      return


def start_worker(variant: str, args) -> subprocess.Popen:
  env = dict(os.environ)
  if variant.startswith("jax:1"):   # XLA without its intra-op thread pool (one compute thread)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
  if variant.startswith("torch"):
    policy = variant.split(":")[2] if variant.count(":") >= 2 else "default"
    if policy == "passive":
      env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
      env.pop("OMP_WAIT_POLICY", None)
  cmd = [sys.executable, __file__, "--worker", variant, "--batch", str(args.batch), "--window",
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
  print("float32 matmul peak (4096^2, best of 5, in each library's worker): "
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
