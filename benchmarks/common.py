"""What every benchmark shares: the harness's own train step for a config, and the matmul peak.

`harness_step(config, feature_dims, batch)` builds the step `main.py` trains with, through the
same code path as `emojax.train.Trainer.run_phase`: the config's method (`contract.get_method`),
its model (`method.create`), the phase it plans first (or the one named), the phase's optimizer
(`contract.make_optimizer` of `phase.optimizer`), and `train.make_train_step` over the
(trainable, mutable, frozen) split with the phase's forward, task and L2 (the loss's positions travel in the batch: `loss_mask`); dropout keys
are `train.step_key(seed, phase, step)`. A benchmark supplies only the config and a batch of the
family's layout (what the input pipeline would give).

`matmul_peak(lib)` is the one matmul-peak routine: the best of `reps` n x n float32 matmuls in
JAX (jit of jnp.matmul) or PyTorch (torch.mm), in GFLOP/s (2 n^3 per product).
"""

from __future__ import annotations

import math
import time

import numpy as np


def matmul_peak(lib: str, n: int = 2048, reps: int = 5) -> float:
  """Best-of-`reps` GFLOP/s of one n x n float32 matmul in `lib` ("jax" or "torch")."""
  a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
  if lib == "jax":
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    x = jnp.asarray(a)
    mm = jax.jit(jnp.matmul)
    mm(x, x).block_until_ready()
    run = lambda: mm(x, x).block_until_ready()  # noqa: E731
  elif lib == "torch":
    import torch  # pylint: disable=import-outside-toplevel
    x = torch.from_numpy(a)
    torch.mm(x, x)
    run = lambda: torch.mm(x, x)  # noqa: E731
  else:
    raise ValueError(f"matmul_peak: lib={lib!r}; use 'jax' or 'torch'")
  best = math.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best / 1e9


def gradient_phase(method, config, phase_name: str | None = None):
  """The phase named `phase_name` (None: the first) of the method's plan, in the Trainer's order of
  phases; ValueError when it is missing or a closed-form fit (no step to time)."""
  records = []
  while (p := method.plan(config, records)) is not None:
    if phase_name is None or p.name == phase_name:
      if p.fit is None:
        return p
      break
    records.append({"name": p.name})
  raise ValueError(f"no gradient phase {phase_name!r} in {config.method}'s plan")


class HarnessStep:
  """The harness's jitted step for one phase of a config, with its state, run on one batch.

  `run(n)` takes n steps (donating the state as the Trainer does) and returns the last loss as a
  float (which waits for the device). `n_params` counts the trainable parameters.
  """

  def __init__(self, config, feature_dims: dict, batch: dict, *, phase_name: str | None = None,
               seed: int = 0, steps: int = 1000, steps_per_epoch: int = 100, model=None,
               step_options: dict | None = None):
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    from flax import nnx  # pylint: disable=import-outside-toplevel
    from emojax import contract, distributed, input_pipeline, train  # pylint: disable=import-outside-toplevel
    method = contract.get_method(config)
    self.model = model if model is not None else method.create(config, feature_dims,
                                                                nnx.Rngs(seed))
    self.phase = phase = gradient_phase(method, config, phase_name)
    spec = dict(phase.optimizer or contract.optimizer_spec())
    tx = contract.make_optimizer(spec, steps=steps, steps_per_epoch=steps_per_epoch)
    if phase.setup is not None:   # as the Trainer does before a phase's first step (tuning ...)
      phase.setup(self.model)
    self.model.train()
    graphdef, params, mutable, frozen = nnx.split(self.model, phase.trainable, contract.MUTABLE,
                                                  ...)
    params, mutable = jax.tree.map(jnp.copy, (params, mutable))
    self.n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))
    # The state replicated and the batch sharded over the mesh's "data" axis, as the Trainer
    # places them (its axis has size 1 on one device, but the arrays' types say sharded, and
    # the layers pick their gradient forms from those types).
    mesh = input_pipeline.make_mesh()
    params, mutable, frozen, opt_state = distributed.replicate(
        (params, mutable, frozen, tx.init(params)), mesh)
    build = train.make_train_step if step_options is None else (
        lambda *a: train.build_train_step(*a, **step_options))
    self.step = build(graphdef, phase.forward, phase.task, tx, float(spec["l2"]))
    self.carry = self.step.start(params, mutable, opt_state)
    self.frozen = frozen
    self.batch = input_pipeline.shard_batch(batch, mesh)
    self.seed, self.i = seed, 0
    self.pkey = train.phase_key(seed, phase.name)

  @property
  def state(self):
    """(params, mutable, opt_state) trees of the current state."""
    return self.step.trees(self.carry)

  def advance(self, n: int):
    """n steps of the harness's step from the current state, as the Trainer's loop takes them
    (`step.advance` on the step's carry, dropout keys `train.step_key(seed, phase, step)`); the
    last step's loss."""
    loss = None
    for _ in range(n):
      self.carry, loss = self.step.advance(self.carry, self.frozen, self.batch, self.pkey, self.i)
      self.i += 1
    return loss

  def run(self, n: int) -> float:
    return float(self.advance(n))


# ---- workers: each variant in its own process, timed alternately -----------------------------


def serve(run, lib: str, ready: dict) -> None:
  """A worker's loop: `run(n)` after a warm-up; answers "run N" (seconds per call, wall and
  process CPU) and "peak" (matmul GFLOP/s of `lib`) on stdin / stdout until "quit"."""
  import json  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  run(2)  # compile + warm-up
  print("ready " + json.dumps(ready), flush=True)
  for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "run":
      n = int(cmd[1])
      t0, c0 = time.perf_counter(), time.process_time()
      run(n)
      print("time " + json.dumps([(time.perf_counter() - t0) / n, (time.process_time() - c0) / n]),
            flush=True)
    elif cmd[0] == "peak":
      print("peak " + json.dumps(matmul_peak(lib)), flush=True)
    else:
      return


class Proc:
  """A worker process `python -m <module> --worker <variant>` with its own environment."""

  def __init__(self, module: str, variant: str, env: dict, extra_args=()):
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    self.v = variant
    self.p = subprocess.Popen([sys.executable, "-m", module, "--worker", variant, *extra_args],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              bufsize=1)
    self.ready = self._read("ready")

  def _read(self, key):
    import json  # pylint: disable=import-outside-toplevel
    while True:
      line = self.p.stdout.readline()
      if not line:
        raise RuntimeError(f"worker {self.v} died (rc {self.p.poll()})")
      if line.startswith(key + " "):
        return json.loads(line[len(key) + 1:])

  def ask(self, cmd: str, key: str):
    self.p.stdin.write(cmd + "\n")
    self.p.stdin.flush()
    return self._read(key)

  def time(self, n: int) -> float:
    """Wall seconds per call of `run(n)` (the process CPU seconds are in `self.cpu`)."""
    wall, cpu = self.ask(f"run {n}", "time")
    self.cpu = getattr(self, "cpu", []) + [cpu]
    return wall

  def close(self):
    try:
      self.p.stdin.write("quit\n")
      self.p.stdin.flush()
    except BrokenPipeError:
      pass
    self.p.wait(timeout=60)


def torch_env(env: dict, passive: bool) -> dict:
  """PyTorch's OpenMP wait policy for a variant: PASSIVE, or the library's default."""
  env = dict(env)
  if passive:
    env["OMP_WAIT_POLICY"] = "PASSIVE"
  else:
    env.pop("OMP_WAIT_POLICY", None)
  return env


def timed_alternately(procs: dict, n: int, repeats: int, loads: list | None = None) -> dict:
  """{variant: [seconds per call]}: `repeats` rounds, every variant once per round, the order
  reversed every other round; the 1-min load average is appended to `loads` after each round."""
  import os  # pylint: disable=import-outside-toplevel
  times = {v: [] for v in procs}
  order = list(procs)
  for r in range(repeats):
    for v in (order if r % 2 == 0 else order[::-1]):
      times[v].append(procs[v].time(n))
    if loads is not None:
      loads.append(os.getloadavg()[0])
  return times


def load_line() -> str:
  import os  # pylint: disable=import-outside-toplevel
  return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


class EnsembleStep(HarnessStep):
  """K members of a config in the harness's one jit(vmap) step (`emojax.ensemble`, what
  `config.train.ensemble = K` trains: members `ensemble.member_key(seed, i)`, dropout keys
  `ensemble.step_keys(train.step_key(...), K)`, the loop of `ensemble.MembersStep`), on one
  shared batch."""

  def __init__(self, config, feature_dims: dict, batch: dict, k: int, *,
               phase_name: str | None = None, seed: int = 0, steps: int = 1000,
               steps_per_epoch: int = 100):
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    from emojax import contract, ensemble, train  # pylint: disable=import-outside-toplevel
    method = contract.get_method(config)
    phase = gradient_phase(method, config, phase_name)
    self.phase, self.k = phase, k
    members = ensemble.create(lambda rngs: method.create(config, feature_dims, rngs), k, seed,
                              phase.trainable)
    params, mutable, self.frozen = members.states()
    spec = dict(phase.optimizer or contract.optimizer_spec())
    tx = contract.make_optimizer(spec, steps=steps, steps_per_epoch=steps_per_epoch)
    self.step = ensemble.make_train_step(members.train_graphdef, phase.forward, phase.task, tx,
                                         float(spec["l2"]))
    self.carry = self.step.start(params, mutable, ensemble.init_optimizer(tx, params))
    self.n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params)) // k
    self.batch = jax.tree.map(jnp.asarray, batch)
    self.seed, self.i = seed, 0
    self.pkey = train.phase_key(seed, phase.name)

  def run(self, n: int) -> float:
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    return float(jnp.sum(self.advance(n)))   # the K members' losses
