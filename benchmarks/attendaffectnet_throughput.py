r"""AttendAffectNet speed: Feature AAN train step and Temporal AAN film inference, JAX vs PyTorch.

Feature AAN (the released architecture, docs/methods.md, attendaffectnet): streams ResNet-50 2048, FlowNetS 1024,
I3D 1024, VGGish 128, emobase2010 1582 -> Linear(8) each, 6 pre-norm encoder layers of width 8 with
2 heads, the authors' LayerNorm, mean over tokens, Linear(8 -> 1); dropout 0.1 on; loss
MSE + (1 - PCC); Adam; batch 30 clip-level vectors (the paper's COGNIMUSE batch).

Variants (each in its own subprocess, started once and timed alternately with the others):
  jax                 the harness's own step: `emojax.train.make_train_step` built from the
                      attendaffectnet config through the Trainer's path (benchmarks/common.py),
                      in the form `train.step_form` picks for it
  jax:ensemble4       K = 4 independent AANs (own params, Adam states, dropout) in the harness's
                      one jit(vmap) ensemble step (`emojax.ensemble.make_train_step`, as
                      `config.train.ensemble=4` trains them; target: < 2x the step time of one)
  torch:eager:T[:passive]    PyTorch 2.13 eager with T threads (OMP_WAIT_POLICY=PASSIVE or default)
  torch:compile:T[:passive]  the same loss under torch.compile (backward through AOTAutograd)
Temporal AAN inference over one film of 1,440 segments (2 h of 5 s segments), windows of L = 5,
5 streams -> d = 40, 6 decoder layers: every segment's prediction = the last output of the
step-by-step decode of the window that ends with it.
  jax:film / jax:film:eigen_off   one compiled program: vmap over the 1,440 windows of a
                      `lax.fori_loop` over the 5 steps
  torch:film:T[:passive]          PyTorch eager, all windows batched, a Python loop over the 5
                      steps (the fastest eager form; a loop over segments would be 1,440x more calls)

  PYTHONPATH=. python -m benchmarks.attendaffectnet_throughput \
      --repeats 5 --steps 50

Ratios are against PyTorch's fastest setting (of threads and wait policy) for the same work;
medians with [min, max] over repeats; the load average is printed (the machine may be shared).
Not a test: prints markdown tables (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from benchmarks import common

DIMS = {"resnet50": 2048, "flownet": 1024, "i3d": 1024, "vggish": 128, "emobase": 1582}
D_MODEL, HEADS, LAYERS, BATCH, FILM_SEGMENTS, WINDOW = 8, 2, 6, 30, 1440, 5


# ---- FLOPs -------------------------------------------------------------------------------------


def train_flops(batch: int = BATCH) -> float:
  """Matmul FLOPs of one Feature AAN train step (2 per multiply-add; fwd + backward)."""
  n, d, h = len(DIMS), D_MODEL, HEADS
  proj = 2 * batch * sum(DIMS.values()) * d           # forward; backward: dW only (2x fwd total)
  per_layer = (5 * 2 * batch * n * d * d             # q, k, v, out, ff
               + 2 * 2 * batch * h * n * n * (d // h))  # scores and weighted sum
  head = 2 * batch * d
  return 2 * proj + 3 * (LAYERS * per_layer + head)


# ---- inputs ------------------------------------------------------------------------------------


def train_batch(seed: int = 0):
  rng = np.random.default_rng(seed)
  x = {s: rng.normal(size=(BATCH, d)).astype(np.float32) for s, d in DIMS.items()}
  return x, rng.uniform(-1, 1, BATCH).astype(np.float32)


def film_features(seed: int = 1):
  rng = np.random.default_rng(seed)
  return {s: rng.normal(size=(FILM_SEGMENTS, d)).astype(np.float32) for s, d in DIMS.items()}


# ---- JAX ---------------------------------------------------------------------------------------


def _aan_config(variant: str):
  from configs import attendaffectnet as aan_config  # pylint: disable=g-import-not-at-top
  c = aan_config.get_config(f"{variant},arousal")
  with c.unlocked():
    c.inputs.streams = tuple(DIMS)
    c.inputs.unit = "clip"
    c.model.num_clips = WINDOW
  return c


def _train_config():
  c = _aan_config("feature")
  with c.unlocked():
    c.data.batch_size = BATCH
  return c


def _harness_batch():
  x, y = train_batch()
  return {"x": x, "y": {"arousal": y}, "clip_mask": np.ones((BATCH,), bool)}


def harness_step(step_options=None):
  """The harness's own Feature AAN step (`train.make_train_step`, benchmarks/common.py)."""
  return common.HarnessStep(_train_config(), DIMS, _harness_batch(), step_options=step_options)


def jax_train_runner(ensemble: int = 1):
  """The step `main.py` trains with: one AAN (`train.make_train_step` through the config's
  method, phase and optimizer), or K members in the harness's one jit(vmap) ensemble step
  (`emojax.ensemble.make_train_step`, as `config.train.ensemble = K` trains them)."""
  if ensemble == 1:
    h = harness_step()
    return h.run, h.n_params
  h = common.EnsembleStep(_train_config(), DIMS, _harness_batch(), ensemble)
  return h.run, h.n_params


def jax_film_runner():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from emojax.models import attendaffectnet as aan  # pylint: disable=g-import-not-at-top

  config = _aan_config("temporal")
  model = aan.create(config, DIMS, nnx.Rngs(0))
  model.eval()
  graphdef, state = nnx.split(model.nets["arousal"])
  feats = {s: jnp.asarray(v) for s, v in film_features().items()}

  @jax.jit
  def infer(state, feats):
    return aan.predict_film(nnx.merge(graphdef, state), feats, WINDOW)

  def run(n):
    for _ in range(n):
      out = infer(state, feats)
    return float(out.block_until_ready()[-1])
  return run, sum(v.size for v in jax.tree.leaves(nnx.state(model, nnx.Param)))


# ---- PyTorch -----------------------------------------------------------------------------------


def torch_modules():
  """The same networks in PyTorch (written for this benchmark from the AAN model, emojax/models/attendaffectnet.py)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  class LN(nn.Module):
    def __init__(self, d):
      super().__init__()
      self.a, self.b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
      return self.a * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6) + self.b

  class MHA(nn.Module):
    def __init__(self, d, h, p):
      super().__init__()
      self.h, self.lin = h, nn.ModuleList([nn.Linear(d, d) for _ in range(4)])
      self.drop = nn.Dropout(p)

    def forward(self, q, kv, mask=None):
      n, tq, d = q.shape
      sp = lambda z: z.view(n, -1, self.h, d // self.h).transpose(1, 2)
      qh, kh, vh = sp(self.lin[0](q)), sp(self.lin[1](kv)), sp(self.lin[2](kv))
      s = qh @ kh.transpose(-2, -1) / math.sqrt(d // self.h)
      if mask is not None:
        s = s.masked_fill(~mask[:, None], -1e9)
      o = self.drop(s.softmax(-1)) @ vh
      return self.lin[3](o.transpose(1, 2).reshape(n, tq, d))

  class Layer(nn.Module):
    def __init__(self, d, decoder, p):
      super().__init__()
      self.decoder = decoder
      self.n1, self.a1 = LN(d), MHA(d, HEADS, 0.1)
      if decoder:
        self.n2, self.a2 = LN(d), MHA(d, HEADS, 0.1)
      self.n3, self.ff = LN(d), nn.Linear(d, d)
      self.drop = nn.Dropout(p)

    def forward(self, x, memory=None, self_mask=None, memory_mask=None):
      y = self.n1(x)
      x = x + self.drop(self.a1(y, y, self_mask))
      if self.decoder:
        x = x + self.drop(self.a2(self.n2(x), memory, memory_mask))
      return x + self.drop(self.drop(torch.relu(self.ff(self.n3(x)))))

  class FeatureAAN(nn.Module):
    def __init__(self):
      super().__init__()
      self.proj = nn.ModuleList([nn.Linear(d, D_MODEL) for d in DIMS.values()])
      self.layers = nn.ModuleList([Layer(D_MODEL, False, 0.1) for _ in range(LAYERS)])
      self.norm, self.drop, self.head = LN(D_MODEL), nn.Dropout(0.1), nn.Linear(D_MODEL, 1)

    def forward(self, xs):
      x = torch.stack([p(v) for p, v in zip(self.proj, xs)], 1)
      for layer in self.layers:
        x = layer(x)
      return self.head(self.drop(self.norm(x).mean(1)))[:, 0]

  class TemporalAAN(nn.Module):
    def __init__(self):
      super().__init__()
      d = D_MODEL * len(DIMS)
      self.d = d
      self.proj = nn.ModuleList([nn.Linear(v, D_MODEL) for v in DIMS.values()])
      self.layers = nn.ModuleList([Layer(d, True, 0.5) for _ in range(LAYERS)])
      self.norm, self.drop, self.head = LN(d), nn.Dropout(0.5), nn.Linear(d, 1)
      pos = torch.arange(WINDOW, dtype=torch.float32)[:, None]
      div = torch.exp(torch.arange(0, d, 2).float() * -(math.log(10000.0) / d))
      pe = torch.zeros(WINDOW, d)
      pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
      self.register_buffer("pe", pe)

    def decode(self, memory, prev, valid):
      n, l, d = memory.shape
      shifted = torch.cat([torch.zeros(n, 1), prev[:, :-1]], 1)
      x = shifted[..., None].expand(n, l, d) + self.pe[:l]
      mask = torch.tril(torch.ones(l, l, dtype=torch.bool))[None] & valid[:, None, :]
      for layer in self.layers:
        x = layer(x, memory, mask, mask)
      return self.head(self.drop(self.norm(x)))[..., 0]

    def film(self, feats):
      """Windows ending at each segment (left part of the first ones padded), step by step."""
      t = feats[0].shape[0]
      start = torch.arange(t) - (WINDOW - 1)
      pos = start[:, None] + torch.arange(WINDOW)[None]
      valid = pos >= 0
      shift = (-start).clamp(0, WINDOW - 1)
      roll = (torch.arange(WINDOW)[None] + shift[:, None]) % WINDOW
      idx = torch.gather(pos.clamp(0, t - 1), 1, roll)
      valid = torch.gather(valid, 1, roll)
      memory = torch.cat([p(v[idx]) for p, v in zip(self.proj, feats)], -1) + self.pe
      out = torch.zeros(t, WINDOW)
      for j in range(WINDOW):            # the authors' re-feeding loop, all windows at once
        out[:, j] = self.decode(memory, out, valid)[:, j]
      last = valid.sum(1) - 1
      return out.gather(1, last[:, None])[:, 0]

  return FeatureAAN, TemporalAAN


def torch_train_runner(compiled: bool):
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  feature_aan, _ = torch_modules()
  model = feature_aan().train()
  opt = torch.optim.Adam(model.parameters(), lr=5e-4)
  x, y = train_batch()
  xs, yt = [torch.from_numpy(v) for v in x.values()], torch.from_numpy(y)

  def loss_fn(xs, yt):
    z = model(xs)
    zc, yc = z - z.mean(), yt - yt.mean()
    pcc = (zc * yc).sum() / (torch.sqrt((zc ** 2).sum() * (yc ** 2).sum()) + 1e-8)
    return ((z - yt) ** 2).mean() + 1.0 - pcc

  fn = torch.compile(loss_fn) if compiled else loss_fn

  def run(n):
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss = fn(xs, yt)
      loss.backward()
      opt.step()
    return float(loss.detach())
  return run, sum(p.numel() for p in model.parameters())


def torch_film_runner():
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  _, temporal_aan = torch_modules()
  model = temporal_aan().eval()
  feats = [torch.from_numpy(v) for v in film_features().values()]

  def run(n):
    with torch.inference_mode():
      for _ in range(n):
        out = model.film(feats)
    return float(out[-1])
  return run, sum(p.numel() for p in model.parameters())


# ---- the worker and the orchestration --------------------------------------------------------


def variant_env(v: str) -> dict:
  env = dict(os.environ)
  parts = v.split(":")
  if v.startswith("jax"):
    if "eigen_off" in parts:   # film inference only: the train step picks its own form
      env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    return env
  return common.torch_env(env, "passive" in parts)


def worker(v: str) -> None:
  parts = v.split(":")
  t0 = time.perf_counter()
  if v.startswith("jax"):
    run, n_params = (jax_film_runner() if "film" in parts else
                     jax_train_runner(4 if "ensemble4" in parts else 1))
    lib = "jax"
  else:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(int(parts[2]))
    run, n_params = (torch_film_runner() if parts[1] == "film" else
                     torch_train_runner(parts[1] == "compile"))
    lib = "torch"
  common.serve(run, lib, {"setup_s": time.perf_counter() - t0, "params": n_params})


def Proc(v: str) -> common.Proc:  # pylint: disable=invalid-name
  return common.Proc("benchmarks.attendaffectnet_throughput", v, variant_env(v))


def table(title, variants, times, procs, work, unit, flops=None, peaks=None):
  ref_v = min((v for v in variants if v.startswith("torch")),
              key=lambda v: statistics.median(times[v]), default=None)
  ref = statistics.median(times[ref_v]) if ref_v else None
  one = statistics.median(times["jax"]) if "jax" in times else None
  print(f"\n### {title}\n")
  head = "| variant | params | median (ms) | spread [min, max] | " + unit + " | vs fastest torch |"
  if flops:
    head += " GFLOP/s | % of jax / torch matmul peak |"
  print(head)
  print("|---" * (head.count("|") - 1) + "|")
  for v in variants:
    med = statistics.median(times[v])
    row = (f"| {v} | {procs[v].ready['params']:,} | {med * 1e3:.2f} | [{min(times[v]) * 1e3:.2f}, "
           f"{max(times[v]) * 1e3:.2f}] | {work / med:,.0f} | "
           f"{(ref / med if ref else float('nan')):.2f}x |")
    if flops:
      k = 4 if "ensemble4" in v else 1
      g = k * flops / med / 1e9
      row += f" {g:.2f} | {100 * g / peaks['jax']:.1f}% / {100 * g / peaks['torch']:.1f}% |"
    print(row)
  if ref_v:
    print(f"\nfastest torch setting: {ref_v} ({ref * 1e3:.2f} ms)")
  if one and "jax:ensemble4" in times:
    print(f"K=4 ensemble / one step (jax): "
          f"{statistics.median(times['jax:ensemble4']) / one:.2f}x")


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", default="")
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--steps", type=int, default=50, help="train steps per timed run")
  ap.add_argument("--film_runs", type=int, default=3, help="film inferences per timed run")
  ap.add_argument("--threads", default="1,2")
  ap.add_argument("--skip", default="", help="comma list of variants to leave out")
  args = ap.parse_args()
  if args.worker:
    worker(args.worker)
    return
  threads = [int(t) for t in args.threads.split(",")]
  skip = set(filter(None, args.skip.split(",")))
  torch_v = lambda kind: [f"torch:{kind}:{t}{p}" for t in threads for p in ("", ":passive")]
  groups = {
      "train": ["jax", "jax:ensemble4"] + torch_v("eager") + torch_v("compile"),
      "film": ["jax:film", "jax:film:eigen_off"] + torch_v("film"),
  }
  groups = {g: [v for v in vs if v not in skip] for g, vs in groups.items()}
  import torch  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  print(f"# AttendAffectNet throughput\n\nmachine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}; jax {jax.__version__}, torch "
        f"{torch.__version__}; load average at start {os.getloadavg()[0]:.1f} "
        f"{os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
  for g, variants in groups.items():
    procs = {}
    for v in variants:
      procs[v] = Proc(v)
      print(f"  started {v}: setup + first steps {procs[v].ready['setup_s']:.1f} s",
            file=sys.stderr, flush=True)
    n = args.steps if g == "train" else args.film_runs
    times = {v: [] for v in variants}
    loads = [os.getloadavg()[0]]
    peaks = {}
    if g == "train":
      peaks["jax"] = procs["jax"].ask("peak", "peak") if "jax" in procs else float("nan")
      tv = next(v for v in variants if v.startswith("torch"))
      peaks["torch"] = procs[tv].ask("peak", "peak")
    for r in range(args.repeats):
      for v in (variants if r % 2 == 0 else variants[::-1]):
        times[v].append(procs[v].time(n))
      loads.append(os.getloadavg()[0])
    for p in procs.values():
      p.close()
    if g == "train":
      title = (f"Feature AAN train step (batch {BATCH}, {train_flops() / 1e6:.1f} MFLOP analytic; "
               f"matmul peak jax {peaks['jax']:.1f} / torch {peaks['torch']:.1f} GFLOP/s)")
      table(title, variants, times, procs, BATCH, "clips/s", train_flops(), peaks)
    else:
      table(f"Temporal AAN inference over a film of {FILM_SEGMENTS} segments (L = {WINDOW})",
            variants, times, procs, FILM_SEGMENTS, "segments/s")
    print(f"\n{args.repeats} alternating repeats x {n} per variant, each variant in its own "
          f"process; 1-min load average during the runs: {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
  main()
