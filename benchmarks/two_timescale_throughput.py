r"""Train-step throughput of the seed-000 intra-clip model: JAX (emojax layers) vs PyTorch eager.

Model (docs/methods.md, two_timescale; paper shapes): per modality a 2-layer bidirectional LSTM (hidden 128) over
the 10 seconds of a clip; the four final states (2H = 256) are summed, FC(256->128)+ReLU,
FC(128->1)+tanh, MSE loss, Adam. Inputs: audio 128, scene 512, expression 3072, action 128.

JAX variants (same parameters, same maths):
  fused     `MultiBiLSTM`: each layer's 8 recurrences (4 modalities x 2 directions) in one scan.
  separate  four `BiLSTM`s: four scans per layer (each with both directions stacked).
  fused+mask  `fused` with a ragged-end mask (a look-alike; torch has no counterpart).
  production  the step training really runs: seed 000's `TargetNet` (separate `BiLSTM`s per
            modality with the ragged-end mask) in the joint / fine-tuning phase, through
            `emojax.train.make_train_step` (frozen-state merge, non-Param state carried, dropout
            key, masked MSE) with the config's optimizer (Adam + global-norm clipping).
PyTorch: torch.nn.LSTM(bidirectional=True, num_layers=2, batch_first=True) per modality, eager.
All variants run interleaved in one process; the table gives the median step time over repeats and
the spread [min, max].

  PYTHONPATH=. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    /work/main/.venv/bin/python benchmarks/two_timescale_throughput.py --steps 5 --repeats 7

On a machine shared with other jobs add OMP_WAIT_POLICY=PASSIVE: torch's OpenMP workers otherwise
spin-wait, which makes torch's multi-threaded steps 5-20x slower there and steals the cores from the
JAX runs that follow; on a quiet machine leave it unset (torch's default, and its fastest).

Not a test: prints a markdown table (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from emojax.nn import layers

DIMS = {'audio': 128, 'scene': 512, 'expression': 3072, 'action': 128}


class IntraClip(nnx.Module):
  """Sum of per-modality BiLSTM final states -> FC+ReLU -> FC+tanh (one value per clip)."""

  def __init__(self, dims: dict[str, int], hidden: int, fc: int, fused: bool, *, rngs: nnx.Rngs):
    self.fused = fused
    if fused:
      self.lstm = layers.MultiBiLSTM(dims, hidden, 2, rngs=rngs)
    else:
      self.lstms = nnx.Dict({m: layers.BiLSTM(d, hidden, 2, rngs=rngs) for m, d in dims.items()})
    self.fc1 = nnx.Linear(2 * hidden, fc, rngs=rngs)
    self.fc2 = nnx.Linear(fc, 1, rngs=rngs)

  def __call__(self, xs: dict[str, jax.Array], mask_BxT: jax.Array | None) -> jax.Array:
    if self.fused:
      finals = [h for _, h in self.lstm(xs, mask_BxT).values()]
    else:
      finals = [self.lstms[m](x, mask_BxT)[1] for m, x in xs.items()]
    h_Bx2H = functools.reduce(jnp.add, finals)
    return jnp.tanh(self.fc2(jax.nn.relu(self.fc1(h_Bx2H))))[:, 0]


def make_jax_step(fused: bool, hidden: int, fc: int, seed: int = 0):
  """Returns (step(state, batch) -> (state, loss), state, n_params)."""
  model = IntraClip(DIMS, hidden, fc, fused, rngs=nnx.Rngs(seed))
  graphdef, params = nnx.split(model, nnx.Param)
  tx = optax.adam(1e-3)
  state = (params, tx.init(params))

  def train_step(graphdef, state, batch):
    params, opt_state = state

    def loss_fn(params):
      pred_B = nnx.merge(graphdef, params)(batch['x'], batch['mask'])
      return jnp.mean((pred_B - batch['y']) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  jitted = jax.jit(train_step, static_argnums=0, donate_argnums=1)
  n_params = sum(x.size for x in jax.tree.leaves(params))
  return functools.partial(jitted, graphdef), state, n_params


def make_production_step(hidden: int, fc: int, seed: int = 0):
  """The harness's own train step on seed 000's network (all four modalities, joint phase)."""
  from configs import two_timescale as tts_config  # pylint: disable=g-import-not-at-top
  from emojax import contract, train  # pylint: disable=g-import-not-at-top
  from emojax.models import two_timescale  # pylint: disable=g-import-not-at-top
  c = tts_config.get_config('valence')
  with c.unlocked():
    c.per_target.valence.inputs.streams = tuple(DIMS)
    c.per_target.valence.model.context = 'none'
    c.train.fusion = 'joint'
    c.model.hidden = hidden
    c.model.clip_features = fc
  model = two_timescale.create(c, DIMS, nnx.Rngs(seed))
  phase = next(p for p in two_timescale.phases(c, 'valence', []) if p.name == 'valence/joint')
  model.train()
  graphdef, params, mutable, frozen = nnx.split(model, phase.trainable, contract.MUTABLE, ...)
  tx = contract.make_optimizer(phase.optimizer, steps=1, steps_per_epoch=1)
  step = train.make_train_step(graphdef, phase.forward, phase.task, tx)
  key = jax.random.key(seed)

  def run_step(state, batch):
    p, m, o, loss = step(state[0], state[1], frozen, state[2], batch, key)
    return (p, m, o), loss
  return run_step, (params, mutable, tx.init(params)), sum(x.size for x in jax.tree.leaves(params))


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


def matmul_peak(n: int = 4096, reps: int = 5) -> dict[str, float]:
  """float32 GFLOP/s of one large square matmul (best of reps) in XLA and, if present, torch."""
  peaks = {}
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
  mm = jax.jit(jnp.matmul)
  mm(a, a).block_until_ready()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    mm(a, a).block_until_ready()
    times.append(time.perf_counter() - t0)
  peaks['jnp.matmul'] = 2 * n**3 / min(times) / 1e9
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return peaks
  b = torch.from_numpy(np.array(a))
  torch.set_num_threads(os.cpu_count())
  torch.mm(b, b)
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    torch.mm(b, b)
    times.append(time.perf_counter() - t0)
  peaks['torch.mm'] = 2 * n**3 / min(times) / 1e9
  return peaks


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=5, help='train steps per timed run')
  parser.add_argument('--repeats', type=int, default=5, help='interleaved timed runs per variant')
  parser.add_argument('--batch', type=int, default=64, help='clips per batch')
  parser.add_argument('--seconds', type=int, default=10, help='clip length T in seconds')
  parser.add_argument('--hidden', type=int, default=128, help='LSTM hidden size H')
  parser.add_argument('--fc', type=int, default=128, help='width of the first FC layer')
  parser.add_argument('--variants',
                      default=f'production,fused,separate,fused+mask,torch:1,'
                      f'torch:{os.cpu_count()}',
                      help='comma list of production, fused, separate, fused+mask, separate+mask, '
                      'torch:THREADS')
  args = parser.parse_args()
  variants = args.variants.split(',')

  rng = np.random.default_rng(0)
  b, t = args.batch, args.seconds
  xs = {m: rng.normal(size=(b, t, d)).astype(np.float32) for m, d in DIMS.items()}
  y = rng.uniform(-1, 1, size=(b,)).astype(np.float32)
  lengths = np.where(np.arange(b) % 4 == 0, rng.integers(1, t + 1, size=b), t)  # ragged film ends
  mask = np.arange(t)[None, :] < lengths[:, None]

  runners, n_params, compile_s = {}, {}, {}
  for v in variants:
    if v.startswith('torch'):
      import torch  # pylint: disable=g-import-not-at-top
      threads = int(v.split(':')[1])
      torch.set_num_threads(threads)
      step, n_params[v] = make_torch_step(args.hidden, args.fc)
      batch = {'x': {m: torch.from_numpy(x) for m, x in xs.items()}, 'y': torch.from_numpy(y)}
      t0 = time.perf_counter()
      step(batch)
      compile_s[v] = time.perf_counter() - t0

      def run(n, step=step, batch=batch, threads=threads):
        torch.set_num_threads(threads)
        for _ in range(n):
          loss = step(batch)
        return float(loss.detach())
    else:
      if v == 'production':
        step, state, n_params[v] = make_production_step(args.hidden, args.fc)
        batch = {'x': {m: jnp.asarray(x)[:, None] for m, x in xs.items()},
                 'x_mask': {m: jnp.asarray(mask)[:, None] for m in xs},
                 'clip_mask': jnp.ones((b, 1), bool),
                 'y': {'valence': jnp.asarray(y)[:, None]}}
      else:
        step, state, n_params[v] = make_jax_step(v.startswith('fused'), args.hidden, args.fc)
        batch = {'x': {m: jnp.asarray(x) for m, x in xs.items()}, 'y': jnp.asarray(y),
                 'mask': jnp.asarray(mask) if v.endswith('+mask') else None}
      t0 = time.perf_counter()
      state, loss = step(state, batch)
      loss.block_until_ready()
      compile_s[v] = time.perf_counter() - t0
      holder = {'state': state}

      def run(n, step=step, batch=batch, holder=holder):
        for _ in range(n):
          holder['state'], loss = step(holder['state'], batch)
        return float(loss)  # blocks
    run(1)  # warm-up
    runners[v] = run

  load_before = ' '.join(f'{v:.1f}' for v in os.getloadavg())
  peaks_before = matmul_peak()
  times = {v: [] for v in variants}
  for r in range(args.repeats):
    order = variants if r % 2 == 0 else variants[::-1]
    for v in order:
      t0 = time.perf_counter()
      runners[v](args.steps)
      times[v].append((time.perf_counter() - t0) / args.steps)
  peaks_after = matmul_peak()
  peaks = {k: max(peaks_before[k], peaks_after[k]) for k in peaks_before}
  peak = max(peaks.values())

  flops = analytic_flops(b, t, args.hidden, args.fc)
  total = sum(flops.values())
  print(f'# two_timescale intra-clip train step: batch {b}, T {t}, H {args.hidden}, '
        f'dims {DIMS}\n')
  print(f'machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; '
        f'jax {jax.__version__}, numpy {np.__version__}', end='')
  torch_variants = [v for v in variants if v.startswith('torch')]
  if torch_variants:
    import torch  # pylint: disable=g-import-not-at-top
    print(f', torch {torch.__version__}', end='')
  print(f"\nXLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} "
        f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r} "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')!r}; "
        f"load average before the timed runs {load_before}\n")
  print('analytic matmul FLOPs per step:')
  for k, v in flops.items():
    print(f'  {k}: {v / 1e9:.3f} GFLOP')
  print(f'  total: {total / 1e9:.2f} GFLOP')
  print('float32 matmul peak (4096^2, best of 5 before and 5 after the timed runs): '
        + ', '.join(f'{k} {v:.1f} GFLOP/s' for k, v in peaks.items()) + '\n')
  # The reference is the faster torch thread setting.
  ref = min((statistics.median(times[v]) for v in torch_variants), default=None)
  print('| variant | params | median step (ms) | spread [min, max] | clips/s | GFLOP/s | '
        '% of peak | speed-up vs torch | first step (s) |')
  print('|---|---|---|---|---|---|---|---|---|')
  for v in variants:
    med = statistics.median(times[v])
    speedup = f'{ref / med:.2f}x' if ref else '-'
    print(f'| {v} | {n_params[v]:,} | {med * 1e3:.1f} | [{min(times[v]) * 1e3:.1f}, '
          f'{max(times[v]) * 1e3:.1f}] | {b / med:.0f} | {total / med / 1e9:.1f} | '
          f'{100 * total / med / 1e9 / peak:.0f}% | {speedup} | {compile_s[v]:.1f} |')
  print(f'\n{args.repeats} interleaved repeats x {args.steps} steps per variant; GFLOP/s counts '
        'the analytic matmul FLOPs (the +mask variant does the same matmuls).')


if __name__ == '__main__':
  main()
