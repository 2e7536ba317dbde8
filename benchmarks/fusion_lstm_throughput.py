r"""Seed 002's fusion train step, JAX (emojax) vs PyTorch eager; and the per-clip input path.

Part 1, train step. JAX: the harness's own step (`emojax.train.make_train_step` built from the
fusion_lstm config through the Trainer's path, benchmarks/common.py); PyTorch: the same model
written for this benchmark (`emojax/models/fusion_lstm.py`, modal fusion): per modality an AlexNet-style CNN (conv + ReLU [+ LRN] [+ 3x3/2 max pool], fc6, fc7
with ReLU + dropout 0.5) on crops of uint8 images (random offset per image), the fusion
a_a ReLU(W_a x_a + b_a) + a_v ReLU(W_v x_v + b_v) with learned a, an LSTM over the L segments, the
last step -> Linear + ReLU + dropout 0.5 -> 3 logits, softmax cross-entropy, SGD (momentum 0.9,
weight decay 5e-4). Sizes: `configs/fusion_lstm.py:runlocal` (default) or `--paper` (AlexNet at
227 px, 4,096-d fc7, 512 / 256 / 64; use a small --batch).

Protocol (the DEVELOPERS speed protocol): every variant is a separate worker process, started
once; the parent asks them in turn (order reversed every repeat) to time `--steps` steps, so only
one runs at a time. PyTorch runs with 1 and with all threads, each with OMP_WAIT_POLICY=PASSIVE
and with OpenMP's default; the speed-up is against PyTorch's fastest setting (median of the
repeats); the spread is [min, max]; GFLOP/s counts the analytic FLOPs of convolutions and matmuls
(2 per multiply-add, forward + 2x for the backward; the first conv's input gradient is skipped in
both libraries), against each library's measured float32 matmul peak.

Part 2 (`--input`), the input path: reads batches of the built `synthetic_clips` dataset through
its TFDS data source (the zlib-compressed uint8 images are decompressed on read) and reports the
read + decode time of one training batch against the train step, and the peak resident memory of
a pass over the `small` and the `default` configs (12x the clips: flat if nothing keeps the
dataset in memory).

  PYTHONPATH=. python -m benchmarks.fusion_lstm_throughput --repeats 5
  PYTHONPATH=. EMOJAX_DATA_DIR=/tmp/emodata python -m benchmarks.fusion_lstm_throughput --input

Not a test: prints markdown tables (docs/benchmarks.md, "Seed 002").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

SMALL_CONV = ((32, 5, 1, 2, True, False), (64, 3, 1, 1, True, False), (96, 3, 1, 1, False, False),
              (96, 3, 1, 1, False, False), (64, 3, 1, 1, True, False))
ALEXNET_CONV = ((96, 11, 4, 0, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
                (384, 3, 1, 1, False, False), (256, 3, 1, 1, True, False))


def sizes(paper: bool) -> dict:
  if paper:
    return dict(conv=ALEXNET_CONV, width=1.0, crop=227, image=256, fc=4096, fusion=512, lstm=256,
                mlp=64)
  return dict(conv=SMALL_CONV, width=0.5, crop=32, image=40, fc=128, fusion=64, lstm=32, mlp=32)


def conv_widths(s: dict) -> list[int]:
  return [max(1, int(round(f * s["width"]))) for f, *_ in s["conv"]]


def analytic_flops(s: dict, batch: int, segments: int) -> float:
  """FLOPs of one train step (fwd + bwd) of convolutions and matmuls, both modalities."""
  n = batch * segments
  total = 0.0
  for c_in in (3, 1):  # key frames, spectrograms
    side, c = s["crop"], c_in
    for i, ((_, k, stride, pad, pool, _), c_out) in enumerate(zip(s["conv"], conv_widths(s))):
      side = (side + 2 * pad - k) // stride + 1
      fwd = 2 * n * side * side * k * k * c * c_out
      total += fwd * (2 if i == 0 else 3)  # no input gradient for the first conv
      if pool:
        side = (side - 3) // 2 + 1
      c = c_out
    total += 3 * 2 * n * (side * side * c * s["fc"] + s["fc"] * s["fc"])  # fc6, fc7
    total += 3 * 2 * n * s["fc"] * s["fusion"]  # W_a / W_v
  total += 3 * 2 * n * 4 * s["lstm"] * (s["fusion"] + s["lstm"])  # LSTM input + recurrence
  total += 3 * 2 * batch * (s["lstm"] * s["mlp"] + s["mlp"] * 3)
  return total


def make_batch(s: dict, batch: int, segments: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  side = s["image"]
  return {"keyframe": rng.integers(0, 256, (batch, segments, side, side, 3), np.uint8),
          "spectrogram_image": rng.integers(0, 256, (batch, segments, side, side), np.uint8),
          "label": rng.integers(0, 3, batch)}


# ----------------------------------------------------------------------------------------------
# JAX.


def _config(s: dict, batch: int):
  from configs import fusion_lstm as cfg  # pylint: disable=import-outside-toplevel
  config = cfg.get_config("arousal,runlocal")
  with config.unlocked():
    config.model.conv, config.model.width, config.model.crop = s["conv"], s["width"], s["crop"]
    config.model.fc_width, config.model.fusion_dim = s["fc"], s["fusion"]
    config.model.lstm_hidden, config.model.mlp_hidden = s["lstm"], s["mlp"]
    config.data.batch_size = batch
  return config


def harness_step(step_options=None, s: dict | None = None, data: dict | None = None):
  """The harness's own step (`train.make_train_step` through benchmarks/common.py) on seed 002's
  fusion network at the given sizes (default: runlocal, batch 8, 4 segments)."""
  from benchmarks import common  # pylint: disable=import-outside-toplevel
  s = s or sizes(False)
  data = data if data is not None else make_batch(s, 8, 4)
  batch = {"x": {k: v for k, v in data.items() if k != "label"},
           "clip_mask": np.ones(len(data["label"]), bool),
           "y": {"arousal_class": data["label"]}}
  dims = {k: v.shape[1:] for k, v in data.items() if k != "label"}
  return common.HarnessStep(_config(s, len(data["label"])), dims, batch, steps_per_epoch=10,
                            step_options=step_options)


def make_jax_step(s: dict, data: dict):
  h = harness_step(None, s, data)
  return h.run, h.n_params


# ----------------------------------------------------------------------------------------------
# PyTorch.


def make_torch_step(s: dict, data: dict, threads: int):
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  crop = s["crop"]

  class AlexNet(torch.nn.Module):
    def __init__(self, c_in):
      super().__init__()
      mods, c, side = [], c_in, crop
      for (_, k, stride, pad, pool, lrn), c_out in zip(s["conv"], conv_widths(s)):
        mods += [torch.nn.Conv2d(c, c_out, k, stride, pad), torch.nn.ReLU()]
        side = (side + 2 * pad - k) // stride + 1
        if lrn:  # torch divides alpha by size; emojax's alpha 1e-4 multiplies the plain sum
          mods.append(torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        if pool:
          mods.append(torch.nn.MaxPool2d(3, 2))
          side = (side - 3) // 2 + 1
        c = c_out
      self.conv = torch.nn.Sequential(*mods)
      self.fc = torch.nn.Sequential(
          torch.nn.Linear(side * side * c, s["fc"]), torch.nn.ReLU(), torch.nn.Dropout(0.5),
          torch.nn.Linear(s["fc"], s["fc"]), torch.nn.ReLU(), torch.nn.Dropout(0.5))

    def forward(self, x):
      return self.fc(torch.flatten(self.conv(x), 1))

  class Fusion(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.visual, self.audio = AlexNet(3), AlexNet(1)
      self.w_v = torch.nn.Linear(s["fc"], s["fusion"])
      self.w_a = torch.nn.Linear(s["fc"], s["fusion"])
      self.alpha = torch.nn.Parameter(torch.full((2,), 0.5))
      self.lstm = torch.nn.LSTM(s["fusion"], s["lstm"], batch_first=True)
      self.mlp = torch.nn.Linear(s["lstm"], s["mlp"])
      self.drop = torch.nn.Dropout(0.5)
      self.out = torch.nn.Linear(s["mlp"], 3)

    @staticmethod
    def crops(x_NxHxWxC):
      n, h, w, _ = x_NxHxWxC.shape
      top = torch.randint(0, h - crop + 1, (n,))
      left = torch.randint(0, w - crop + 1, (n,))
      rows = (top[:, None] + torch.arange(crop))[:, :, None]
      cols = (left[:, None] + torch.arange(crop))[:, None, :]
      x = x_NxHxWxC[torch.arange(n)[:, None, None], rows, cols]
      return ((x.float() - 127.5) / 127.5).permute(0, 3, 1, 2)

    def forward(self, kf, sp):
      b, l = kf.shape[:2]
      x_v = self.visual(self.crops(kf.reshape(b * l, *kf.shape[2:]))).reshape(b, l, -1)
      x_a = self.audio(self.crops(sp.reshape(b * l, *sp.shape[2:], 1))).reshape(b, l, -1)
      x_f = self.alpha[0] * torch.relu(self.w_a(x_a)) + self.alpha[1] * torch.relu(self.w_v(x_v))
      _, (h_n, _) = self.lstm(x_f)
      return self.out(self.drop(torch.relu(self.mlp(h_n[-1]))))

  model = Fusion()
  model.train()
  opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
  kf, sp = torch.from_numpy(data["keyframe"]), torch.from_numpy(data["spectrogram_image"])
  y = torch.from_numpy(data["label"])
  loss_fn = torch.nn.CrossEntropyLoss()

  def run(n: int) -> float:
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(model(kf, sp), y)
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
      opt.step()
    return float(loss.detach())

  return run, sum(p.numel() for p in model.parameters())


def matmul_peak(lib: str) -> float:
  from benchmarks import common  # pylint: disable=import-outside-toplevel
  return common.matmul_peak(lib)


def worker(variant: str, args) -> None:
  """Builds the step, then answers `run N` lines on stdin with JSON timings on stdout."""
  s = sizes(args.paper)
  data = make_batch(s, args.batch, args.segments)
  t0 = time.perf_counter()
  if variant == "jax":
    run, n_params = make_jax_step(s, data)
    lib = "jax"
  else:
    run, n_params = make_torch_step(s, data, int(variant.split(":")[1]))
    lib = "torch"
  run(1)
  first = time.perf_counter() - t0
  run(1)
  print(json.dumps({"ready": True, "params": n_params, "first_s": first}), flush=True)
  for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "run":
      t0 = time.perf_counter()
      run(int(cmd[1]))
      print(json.dumps({"step_s": (time.perf_counter() - t0) / int(cmd[1])}), flush=True)
    elif cmd[0] == "peak":
      print(json.dumps({"peak": matmul_peak(lib)}), flush=True)
    else:
      return


def step_benchmark(args) -> None:
  threads = os.cpu_count() or 1
  variants = ["jax"] + [f"torch:{t}:{p}" for t in sorted({1, threads}) for p in ("passive",
                                                                                   "default")]
  procs, info = {}, {}
  for v in variants:
    env = dict(os.environ)
    if v.endswith(":passive"):
      env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
      env.pop("OMP_WAIT_POLICY", None)
    cmd = [sys.executable, "-m", "benchmarks.fusion_lstm_throughput", "--worker", v, "--batch", str(args.batch),
           "--segments", str(args.segments)] + (["--paper"] if args.paper else [])
    procs[v] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env)
    info[v] = json.loads(procs[v].stdout.readline())  # one at a time: set-up is not timed

  def ask(v, line):
    procs[v].stdin.write(line + "\n")
    procs[v].stdin.flush()
    return json.loads(procs[v].stdout.readline())

  load = " ".join(f"{x:.1f}" for x in os.getloadavg())
  times = {v: [] for v in variants}
  for r in range(args.repeats):
    for v in (variants if r % 2 == 0 else variants[::-1]):
      times[v].append(ask(v, f"run {args.steps}")["step_s"])
  peaks = {"jax": ask("jax", "peak")["peak"], "torch": ask(variants[-1], "peak")["peak"]}
  load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
  for v in variants:
    procs[v].stdin.write("quit\n")
    procs[v].stdin.close()
    procs[v].wait()

  s = sizes(args.paper)
  flops = analytic_flops(s, args.batch, args.segments)
  import jax  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  print(f"# fusion_lstm train step ({'paper' if args.paper else 'runlocal'} sizes): batch "
        f"{args.batch} clips x {args.segments} segments, crops {s['crop']} of {s['image']} px\n")
  print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; jax "
        f"{jax.__version__}, torch {torch.__version__}; load average {load} before, {load_after} "
        "after the timed runs")
  print(f"analytic FLOPs per step: {flops / 1e9:.2f} GFLOP; float32 matmul peak (2048^2, best of "
        f"5, after the runs): XLA {peaks['jax']:.1f} GFLOP/s, torch {peaks['torch']:.1f} GFLOP/s\n")
  ref = min(statistics.median(times[v]) for v in variants if v.startswith("torch"))
  print("| variant | params | median step (ms) | spread [min, max] | clips/s | GFLOP/s | "
        "% of own peak | speed-up vs fastest torch | set-up + first steps (s) |")
  print("|---|---|---|---|---|---|---|---|---|")
  for v in variants:
    med = statistics.median(times[v])
    peak = peaks["jax" if v == "jax" else "torch"]
    print(f"| {v} | {info[v]['params']:,} | {med * 1e3:.0f} | [{min(times[v]) * 1e3:.0f}, "
          f"{max(times[v]) * 1e3:.0f}] | {args.batch / med:.0f} | {flops / med / 1e9:.1f} | "
          f"{100 * flops / med / 1e9 / peak:.0f}% | {ref / med:.2f}x | {info[v]['first_s']:.1f} |")
  print(f"\n{args.repeats} repeats (order reversed every repeat) x {args.steps} steps per variant, "
        "one worker process per variant.")


# ----------------------------------------------------------------------------------------------
# Part 2: the input path.


def _pass_over(config: str, batch: int) -> dict:
  """In a fresh process: read every training example in batches; time and peak memory."""
  code = f"""
import json, resource, time, numpy as np
from emojax import paths
from emojax.datasets import synthetic_clips as sc
b = sc.SyntheticClips(config={config!r}, data_dir=str(paths.data_dir(None)), file_format="array_record")
b.download_and_prepare()
src = b.as_data_source()["train"]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for i in range(0, len(src), {batch}):
  t0 = time.perf_counter()
  ex = [src[j] for j in range(i, min(i + {batch}, len(src)))]
  kf = np.stack([e["keyframe"] for e in ex]); sp = np.stack([e["spectrogram_image"] for e in ex])
  times.append(time.perf_counter() - t0)
print(json.dumps({{"clips": len(src), "batch_ms": 1e3 * float(np.median(times)),
                  "rss_before_mb": base / 1024,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "batch_mb": (kf.nbytes + sp.nbytes) / 2**20}}))
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
  return json.loads(out.stdout.strip().splitlines()[-1])


def input_benchmark(args) -> None:
  rows = {c: _pass_over(c, args.batch) for c in ("small", "default")}
  print(f"# synthetic_clips input path: batches of {args.batch} clips from the TFDS data source "
        f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
  print("| config | training clips | read + decode a batch (median ms; the last may be short) | batch size (MB) | "
        "RSS before (MB) | peak RSS after a full pass (MB) |")
  print("|---|---|---|---|---|---|")
  for c, r in rows.items():
    print(f"| {c} | {r['clips']} | {r['batch_ms']:.1f} | {r['batch_mb']:.1f} | "
          f"{r['rss_before_mb']:.0f} | {r['rss_peak_mb']:.0f} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=3, help="train steps per timed run")
  parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
  parser.add_argument("--batch", type=int, default=16, help="clips per batch")
  parser.add_argument("--segments", type=int, default=6, help="1 s segments per clip")
  parser.add_argument("--paper", action="store_true", help="the paper's sizes (AlexNet at 227)")
  parser.add_argument("--input", action="store_true", help="part 2: the input path")
  parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    worker(args.worker, args)
  elif args.input:
    input_benchmark(args)
  else:
    step_benchmark(args)


if __name__ == "__main__":
  main()
