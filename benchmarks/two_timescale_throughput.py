r"""Train-step throughput of the seed-000 intra-clip model: JAX (emojax layers) vs PyTorch eager.

Model (docs/methods.md, two_timescale; paper shapes): per modality a 2-layer bidirectional LSTM (hidden 128) over
the 10 seconds of a clip; the four final states (2H = 256) are summed, FC(256->128)+ReLU,
FC(128->1)+tanh, MSE loss, Adam. Inputs: audio 128, scene 512, expression 3072, action 128.

Variants, each in its own worker process, timed alternately (benchmarks/common.py):
  jax       the step training really runs: `emojax.train.make_train_step` built from the
            two_timescale config (seed 000's `TargetNet`, per-modality `BiLSTM`s with the
            ragged-end mask, the joint / fine-tuning phase, the config's optimizer: Adam +
            global-norm clipping), through the Trainer's path (`common.HarnessStep`), in the form
            `train.step_form` picks.
  torch:T[:passive]  torch.nn.LSTM(bidirectional=True, num_layers=2, batch_first=True) per
            modality, eager, T threads, OMP_WAIT_POLICY=PASSIVE or the library's default.
The table gives the median step time over repeats and the spread [min, max].

  PYTHONPATH=. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    python -m benchmarks.two_timescale_throughput --steps 5 --repeats 7

Not a test: prints a markdown table (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from benchmarks import common

DIMS = {'audio': 128, 'scene': 512, 'expression': 3072, 'action': 128}


def make_inputs(batch: int, seconds: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  xs = {m: rng.normal(size=(batch, seconds, d)).astype(np.float32) for m, d in DIMS.items()}
  y = rng.uniform(-1, 1, size=(batch,)).astype(np.float32)
  lengths = np.where(np.arange(batch) % 4 == 0, rng.integers(1, seconds + 1, size=batch),
                     seconds)  # ragged film ends
  mask = np.arange(seconds)[None, :] < lengths[:, None]
  return xs, y, mask


def harness_step(step_options=None, batch: int = 64, seconds: int = 10, hidden: int = 128,
                 fc: int = 128):
  """The harness's own train step on seed 000's network (all four modalities, joint phase)."""
  from configs import two_timescale as tts_config  # pylint: disable=g-import-not-at-top
  c = tts_config.get_config('valence')
  with c.unlocked():
    c.per_target.valence.inputs.streams = tuple(DIMS)
    c.per_target.valence.model.context = 'none'
    c.train.fusion = 'joint'
    c.model.hidden = hidden
    c.model.clip_features = fc
    c.data.batch_size = batch
  xs, y, mask = make_inputs(batch, seconds)
  data = {'x': {m: x[:, None] for m, x in xs.items()},
          'x_mask': {m: mask[:, None] for m in xs},
          'clip_mask': np.ones((batch, 1), bool),
          'y': {'valence': y[:, None]}}
  return common.HarnessStep(c, DIMS, data, phase_name='valence/joint', step_options=step_options)


def make_torch_step(hidden: int, fc: int):
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)

  class TorchIntraClip(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.lstms = torch.nn.ModuleDict({
          m: torch.nn.LSTM(d, hidden, num_layers=2, bidirectional=True, batch_first=True)
          for m, d in DIMS.items()})
      self.fc1 = torch.nn.Linear(2 * hidden, fc)
      self.fc2 = torch.nn.Linear(fc, 1)

    def forward(self, xs):
      total = 0
      for m, x in xs.items():
        _, (h_n, _) = self.lstms[m](x)
        total = total + torch.cat([h_n[-2], h_n[-1]], dim=-1)
      return torch.tanh(self.fc2(torch.relu(self.fc1(total))))[:, 0]

  model = TorchIntraClip()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)

  def step(batch):
    opt.zero_grad(set_to_none=True)
    loss = torch.mean((model(batch['x']) - batch['y']) ** 2)
    loss.backward()
    opt.step()
    return loss

  return step, sum(p.numel() for p in model.parameters())


def analytic_flops(batch: int, t: int, hidden: int, fc: int) -> dict[str, float]:
  """Matmul FLOPs of one train step (2 per multiply-add; elementwise work not counted)."""
  bt, g = batch * t, 8 * hidden  # 8H = 4 gates x 2 directions
  out = {'layer-1 input projection (fwd, dW)': 0.0, 'layer-2 input projection (fwd, dW, dX)': 0.0,
         'recurrent h W_hh (fwd, dW, dh)': 0.0, 'FC head': 0.0}
  for d in DIMS.values():
    out['layer-1 input projection (fwd, dW)'] += 2 * (2 * bt * d * g)  # inputs need no grad
    out['layer-2 input projection (fwd, dW, dX)'] += 3 * (2 * bt * 2 * hidden * g)
    out['recurrent h W_hh (fwd, dW, dh)'] += 2 * 3 * (2 * bt * hidden * g)  # 2 layers
  out['FC head'] = 3 * 2 * batch * (2 * hidden * fc + fc)
  return out



def worker(v: str, args) -> None:
  t0 = time.perf_counter()
  if v.startswith('torch'):
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(int(v.split(':')[1]))
    step, n_params = make_torch_step(args.hidden, args.fc)
    xs, y, _ = make_inputs(args.batch, args.seconds)
    batch = {'x': {m: torch.from_numpy(x) for m, x in xs.items()}, 'y': torch.from_numpy(y)}

    def run(n):
      for _ in range(n):
        loss = step(batch)
      return float(loss.detach())
    lib = 'torch'
  else:
    h = harness_step(None, args.batch, args.seconds, args.hidden, args.fc)
    run, n_params, lib = h.run, h.n_params, 'jax'
  common.serve(run, lib, {'setup_s': time.perf_counter() - t0, 'params': n_params})


def variant_env(v: str) -> dict:
  env = dict(os.environ)
  return common.torch_env(env, v.endswith(':passive')) if v.startswith('torch') else env


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--worker', default='')
  parser.add_argument('--steps', type=int, default=5, help='train steps per timed run')
  parser.add_argument('--repeats', type=int, default=5, help='alternating timed runs per variant')
  parser.add_argument('--batch', type=int, default=64, help='clips per batch')
  parser.add_argument('--seconds', type=int, default=10, help='clip length T in seconds')
  parser.add_argument('--hidden', type=int, default=128, help='LSTM hidden size H')
  parser.add_argument('--fc', type=int, default=128, help='width of the first FC layer')
  parser.add_argument('--variants', default='jax,torch:1,torch:2,torch:1:passive,torch:2:passive',
                      help='comma list of jax, torch:THREADS[:passive]')
  args = parser.parse_args()
  sizes = ['--batch', str(args.batch), '--seconds', str(args.seconds), '--hidden',
           str(args.hidden), '--fc', str(args.fc)]
  if args.worker:
    worker(args.worker, args)
    return
  variants = args.variants.split(',')
  load_before = common.load_line()
  procs = {v: common.Proc('benchmarks.two_timescale_throughput', v, variant_env(v), sizes)
           for v in variants}
  peaks = {'jax': procs['jax'].ask('peak', 'peak') if 'jax' in procs else float('nan')}
  tv = [v for v in variants if v.startswith('torch')]
  peaks['torch'] = procs[tv[0]].ask('peak', 'peak') if tv else float('nan')
  loads = [os.getloadavg()[0]]
  times = common.timed_alternately(procs, args.steps, args.repeats, loads)
  for p in procs.values():
    p.close()
  b = args.batch
  flops = analytic_flops(b, args.seconds, args.hidden, args.fc)
  total = sum(flops.values())
  print(f'# two_timescale intra-clip train step: batch {b}, T {args.seconds}, H {args.hidden}, '
        f'dims {DIMS}\n')
  print(f'machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; '
        f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}; {load_before} before the timed runs\n")
  print('analytic matmul FLOPs per step:')
  for k, v in flops.items():
    print(f'  {k}: {v / 1e9:.3f} GFLOP')
  print(f'  total: {total / 1e9:.2f} GFLOP')
  print(f"float32 matmul peak (common.matmul_peak): jax {peaks['jax']:.1f}, torch "
        f"{peaks['torch']:.1f} GFLOP/s\n")
  ref = min((statistics.median(times[v]) for v in tv), default=None)
  print('| variant | params | median step (ms) | spread [min, max] | clips/s | GFLOP/s | '
        '% of own peak | speed-up vs fastest torch | setup (s) |')
  print('|---|---|---|---|---|---|---|---|---|')
  for v in variants:
    med = statistics.median(times[v])
    speedup = f'{ref / med:.2f}x' if ref else '-'
    peak = peaks['torch' if v.startswith('torch') else 'jax']
    print(f'| {v} | {procs[v].ready["params"]:,} | {med * 1e3:.1f} | [{min(times[v]) * 1e3:.1f}, '
          f'{max(times[v]) * 1e3:.1f}] | {b / med:.0f} | {total / med / 1e9:.1f} | '
          f'{100 * total / med / 1e9 / peak:.0f}% | {speedup} | {procs[v].ready["setup_s"]:.1f} |')
  print(f'\n{args.repeats} alternating repeats x {args.steps} steps per variant, each variant in '
        f'its own process; 1-min load during the runs {min(loads):.1f}-{max(loads):.1f}')


if __name__ == '__main__':
  main()
