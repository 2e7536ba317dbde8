"""Several processes, one run: `jax.distributed` start-up, process 0's writes, global batches.

A run is multi-process when `--num_processes` (or `$JAX_NUM_PROCESSES`) is above 1: every process
runs the same command with its own `--process_id` (`$JAX_PROCESS_ID`) and the address of process 0
(`--coordinator_address` / `$JAX_COORDINATOR_ADDRESS`, host:port). `initialize` then starts
`jax.distributed` (CPU collectives over gloo, so a CPU-only cluster or one machine works too) before
any JAX computation; afterwards `jax.devices()` lists the devices of all processes, the training
mesh spans them, each process reads its own slice of every global batch and only process 0 writes
files (checkpoints are written by Orbax, itself multi-process aware). docs/multihost.md has the
launch commands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from typing import Callable, Iterator, TypeVar

from emojax import errors

T = TypeVar("T")

ENV_ADDRESS, ENV_NUM, ENV_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class Cluster:
  """Where process `process_id` of `num_processes` finds the coordinator (process 0)."""
  coordinator_address: str
  num_processes: int
  process_id: int


def resolve(coordinator_address: str | None = None, num_processes: int | None = None,
            process_id: int | None = None, environ=None) -> Cluster | None:
  """The cluster from flags, else environment variables; None for a single-process run.

  Raises:
    ConfigError: a value is missing or out of range (named with its flag and variable).
  """
  env = os.environ if environ is None else environ

  def pick(value, var: str, flag: str, parse):
    if value is not None:
      return value
    raw = env.get(var)
    if raw in (None, ""):
      return None
    try:
      return parse(raw)
    except ValueError:
      raise errors.ConfigError(f"${var}={raw!r} is not valid for {flag}") from None

  num = pick(num_processes, ENV_NUM, "--num_processes", int)
  if num is None or num == 1:
    return None
  if num < 1:
    raise errors.ConfigError(f"--num_processes={num} (${ENV_NUM}): must be a positive integer")
  address = pick(coordinator_address, ENV_ADDRESS, "--coordinator_address", str)
  pid = pick(process_id, ENV_ID, "--process_id", int)
  if not address:
    raise errors.ConfigError(
        f"--num_processes={num} needs --coordinator_address (or ${ENV_ADDRESS}): host:port of "
        "process 0, e.g. 127.0.0.1:12345 on one machine")
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise errors.ConfigError(f"--coordinator_address={address!r}: write host:port, e.g. "
                             "127.0.0.1:12345")
  if pid is None:
    raise errors.ConfigError(f"--num_processes={num} needs --process_id (or ${ENV_ID}): 0 on the "
                             f"coordinator's machine, 1..{num - 1} on the others")
  if not 0 <= pid < num:
    raise errors.ConfigError(f"--process_id={pid}: must be in 0..{num - 1} for --num_processes="
                             f"{num}")
  return Cluster(address, num, pid)


def wait_for_coordinator(address: str, timeout_s: float) -> None:
  """Returns once the coordinator's port accepts connections.

  Raises:
    ConfigError: nothing listens at `address` within `timeout_s` (instead of jax's abort).
  """
  host, _, port = address.rpartition(":")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
        return
    except OSError as e:
      if time.monotonic() >= deadline:
        raise errors.ConfigError(
            f"the coordinator at --coordinator_address={address} cannot be reached ({e}) after "
            f"{timeout_s:g} s: start process 0 there (same command, --process_id=0), check the "
            "address and port and that the firewall lets it through, or raise "
            "--distributed_timeout") from None
      time.sleep(0.2)


def initialize(cluster: Cluster | None, *, timeout_s: int = 300,
               heartbeat_timeout_s: int = 100) -> None:
  """Starts `jax.distributed` for a multi-process run (nothing for a single process).

  Call before any JAX computation. A non-zero process first waits for the coordinator's port (a
  clear error after `timeout_s`); all processes must then register within `timeout_s`. A process
  that stops sending heartbeats for `heartbeat_timeout_s` ends the others with an error naming it.
  """
  if cluster is None:
    return
  import jax  # pylint: disable=g-import-not-at-top
  if cluster.process_id != 0:
    wait_for_coordinator(cluster.coordinator_address, timeout_s)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices: collectives
  print(f"process {cluster.process_id} of {cluster.num_processes}: joining coordinator "
        f"{cluster.coordinator_address} (waits up to {timeout_s} s for all processes)", flush=True)
  jax.distributed.initialize(cluster.coordinator_address, cluster.num_processes,
                             cluster.process_id, initialization_timeout=int(timeout_s),
                             heartbeat_timeout_seconds=int(heartbeat_timeout_s))


def is_main() -> bool:
  """True on process 0, the one process that writes files (always true for one process)."""
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Every process waits here until all arrive (nothing for a single process)."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def main_first(fn: Callable[[], T], name: str) -> T:
  """`fn()` on process 0 first (e.g. building a dataset into the shared cache), then on the others
  once it is done there (they find its result ready)."""
  if is_main():
    out = fn()
    barrier(name)
    return out
  barrier(name)
  return fn()


def to_host(x) -> "np.ndarray":  # noqa: F821
  """A jax array as numpy on every process, gathered across processes when it is sharded over
  them (a prediction batch sharded over the global mesh)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  if getattr(x, "is_fully_addressable", True) or getattr(x, "is_fully_replicated", False):
    return np.asarray(x)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def replicate(tree, mesh):
  """`jax.device_put(tree, <replicated over mesh>)`; across processes each process's arrays go
  through host memory (jaxlib 0.10.2 builds broken arrays from a device_put of arrays already on a
  device into a sharding that spans processes). Every process must hold the same values."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  sharding = NamedSharding(mesh, P())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if not isinstance(x, jax.Array) or not x.is_fully_addressable:
      return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      data = jax.device_put(np.asarray(jax.random.key_data(x)), sharding)
      return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    return jax.device_put(np.asarray(x), sharding)
  return jax.tree.map(put, tree)


def global_batch(batch: dict, mesh) -> dict:
  """A batch that every process holds whole (evaluation) -> global arrays sharded along the batch
  axis: each process places only the rows of its own devices."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
  sharding = NamedSharding(mesh, P("data"))
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, sharding, lambda idx, x=x: x[idx]), batch)


@contextlib.contextmanager
def failure_context() -> Iterator[None]:
  """Turns a failed cross-process collective into a message that says what to do."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    import jax  # pylint: disable=g-import-not-at-top
    text = str(e)
    if jax.process_count() > 1 and ("Gloo" in text or "heartbeat" in text
                                    or "Connection closed by peer" in text):
      raise errors.EmojaxError(
          f"process {jax.process_index()} of {jax.process_count()}: a collective with the other "
          f"processes failed ({' '.join(text.split())[:300]}): another process died; the "
          "coordination service names it (a line 'Task N heartbeat timeout' / 'unhealthy "
          "tasks'). Restart all processes with the same command to resume from the last "
          "checkpoint") from e
    raise
