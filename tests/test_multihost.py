"""Training across processes: 2 CPU processes on localhost (jax.distributed, gloo collectives).

The reference is the session's reference run (conftest.reference_run: one process, one device,
the same global batch): a different data path (one process reads the whole batch) that must give
the same parameters, predictions and metrics, within the tolerance of a different device count
(test_train.py's 8-device test uses the same).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO, toy_config
from emojax import distributed, errors
from test_train import _final_params, _overrides

HEARTBEAT_S = 4  # a dead process is noticed after this many seconds (100 by default)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(extra: dict | None = None) -> dict:
  # The processes read and write the persistent compilation cache (docs/multihost.md: cached
  # CPU collectives no longer deadlock): the kill-and-resume test's 4 processes, 55.5 s of CPU
  # without it, 41.6-54.4 s with it warm (tests/README.md, branch suite5).
  return {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(extra or {})}


def _launch(n: int, args: list[str], logs: pathlib.Path, env_by_process: dict | None = None,
            timeout: float = 600) -> list[tuple[int, str, str]]:
  """Runs main.py as `n` processes of one run; (returncode, stdout, stderr) per process.

  Every file a process writes through emojax.fileio is appended to logs/writes<i>.txt.
  """
  logs.mkdir(parents=True, exist_ok=True)
  port = _free_port()
  procs, files = [], []
  try:
    for i in range(n):
      out, err = open(logs / f"out{i}.txt", "w"), open(logs / f"err{i}.txt", "w")
      files += [out, err]
      procs.append(subprocess.Popen(
          [sys.executable, str(REPO / "tests" / "multihost_worker.py"),
           str(logs / f"writes{i}.txt"), *args, f"--num_processes={n}", f"--process_id={i}",
           f"--coordinator_address=127.0.0.1:{port}", f"--heartbeat_timeout={HEARTBEAT_S}",
           "--distributed_timeout=120"],
          cwd=REPO, env=_env((env_by_process or {}).get(i)), stdout=out, stderr=err))
    deadline = time.monotonic() + timeout
    for p in procs:
      p.wait(timeout=max(deadline - time.monotonic(), 1))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    for f in files:
      f.close()
  return [(p.returncode, (logs / f"out{i}.txt").read_text(), (logs / f"err{i}.txt").read_text())
          for i, p in enumerate(procs)]


def _written(logs: pathlib.Path, i: int) -> list[str]:
  path = logs / f"writes{i}.txt"
  return path.read_text().split() if path.exists() else []


def _csv(path: pathlib.Path) -> np.ndarray:
  return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_two_processes_train_like_one_and_resume_after_a_worker_dies(tmp_path, reference_run):
  config, one, _ = reference_run
  # Every phase's two latest steps kept (not pruned once finished) to check how they were written.
  # Plots on: only process 0 may draw them (checked at the end).
  overrides = [*_overrides(config), "--config.checkpoint.finished=all",
               "--config.checkpoint.keep=2", "--config.eval.plots=True"]
  two, logs = tmp_path / "two", tmp_path / "logs"

  # Process 1 dies (SIGKILL) right after step 3 of the last phase (the earlier two are finished);
  # its last checkpoint is step 2.
  (rc0, out0, err0), (rc1, _, _) = _launch(
      2, [f"--workdir={two}", *overrides], logs / "killed",
      env_by_process={1: {"EMOJAX_FAULT_KILL_AT": "arousal/finetune:3"}})
  assert rc1 == -9
  # Process 0 stops too (not a hang), with its own error line and the coordination service's
  # verdict naming the dead process.
  assert rc0 != 0, out0[-2000:]
  assert "error: process 0 of 2: a collective with the other processes failed" in err0, err0[-3000:]
  assert "Task 1 heartbeat timeout" in err0 or "unhealthy" in err0, err0[-3000:]
  assert not (two / "final_model").exists()
  assert sorted(p.name for p in (two / "checkpoints" / "arousal__finetune" / "latest")
                .iterdir()) == ["2"]

  # Both restarted with the same command: the run resumes from step 2 and finishes.
  results = _launch(2, [f"--workdir={two}", *overrides], logs / "resumed")
  for i, (rc, out, err) in enumerate(results):
    assert rc == 0, f"process {i}: {err[-3000:]}"
  assert "after 2 finished phases" in results[0][1]  # not trained again
  assert "resumed arousal/finetune at step 2" in results[0][1]

  # Same parameters as the single process with the same global device count and batch.
  a, b = _final_params(one, config), _final_params(two, config)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5), a, b)
  # Checkpoints written once: one folder per saved step (both processes' shards inside it), no
  # leftover temporary folders.
  for phase in (two / "checkpoints").iterdir():
    assert sorted(p.name for p in (phase / "latest").iterdir()) == ["2", "4"], phase
    assert sorted(p.name for p in (phase / "latest" / "4" / "model").glob("ocdbt.process_*")) == [
        "ocdbt.process_0", "ocdbt.process_1"]

  # Evaluation covers every film exactly once: the same films, seconds and values as the
  # single-process run (a film predicted twice or missed changes its CSV or the metrics).
  for split in ("validation", "test"):
    csvs_one = sorted(p.name for p in (one / "eval" / split / "predictions").iterdir())
    csvs_two = sorted(p.name for p in (two / "eval" / split / "predictions").iterdir())
    assert csvs_two == csvs_one and csvs_one
    for name in csvs_one:
      x, y = (_csv(w / "eval" / split / "predictions" / name) for w in (one, two))
      assert x.shape == y.shape
      np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)
    m1, m2 = (json.loads((w / "eval" / split / "metrics.json").read_text()) for w in (one, two))
    assert len(m2["arousal"]["per_film"]) == len(csvs_one)
    assert m2["arousal"]["num_seconds"] == m1["arousal"]["num_seconds"] == sum(
        len(_csv(one / "eval" / split / "predictions" / name)) for name in csvs_one)
    assert m2["arousal"]["mse"] == pytest.approx(m1["arousal"]["mse"], rel=1e-3)

  # Only process 0 wrote files (JSON, CSV, Markdown, plots, TensorBoard), in both launches.
  assert _written(logs / "killed", 1) == [] and _written(logs / "resumed", 1) == []
  written = [pathlib.Path(p).relative_to(two).as_posix() for p in _written(logs / "resumed", 0)]
  for expected in ("tensorboard", "phases.json", "eval/test/metrics.json", "eval/summary.json",
                   "eval/ablation.md", "eval/test/predictions/" + csvs_one[0],
                   "eval/test/plots/" + csvs_one[0].replace(".csv", ".png")):
    assert expected in written, written


def test_batch_size_not_divisible_by_the_process_count(tmp_path):
  config = toy_config(steps=2)
  args = [f"--workdir={tmp_path / 'run'}", *_overrides(config), "--config.data.batch_size=7"]
  for rc, _, err in _launch(2, args, tmp_path / "logs", timeout=300):
    assert rc == 2, err[-2000:]
    assert "config.data.batch_size=7 is not divisible by the 2 processes" in err


def test_unreachable_coordinator_is_a_clear_error_not_a_hang(tmp_path):
  port = _free_port()  # nothing listens there
  t0 = time.monotonic()
  r = subprocess.run([sys.executable, str(REPO / "main.py"), f"--workdir={tmp_path}",
                      "--config=configs/two_timescale.py:arousal,runlocal", "--num_processes=2",
                      "--process_id=1", f"--coordinator_address=127.0.0.1:{port}",
                      "--distributed_timeout=2"],
                     cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
  assert r.returncode == 2, r.stderr[-2000:]
  assert f"the coordinator at --coordinator_address=127.0.0.1:{port} cannot be reached" in r.stderr
  assert time.monotonic() - t0 < 100  # interpreter start-up and imports included
  t0 = time.monotonic()
  with pytest.raises(errors.ConfigError, match="cannot be reached"):
    distributed.wait_for_coordinator(f"127.0.0.1:{port}", timeout_s=1)
  assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("kwargs,env,match", [
    (dict(num_processes=2), {}, "needs --coordinator_address"),
    (dict(num_processes=2, coordinator_address="localhost"), {}, "write host:port"),
    (dict(num_processes=2, coordinator_address="h:1"), {}, "needs --process_id"),
    (dict(num_processes=2, coordinator_address="h:1", process_id=2), {}, r"must be in 0\.\.1"),
    (dict(), {"JAX_NUM_PROCESSES": "two"}, r"\$JAX_NUM_PROCESSES='two'"),
    (dict(num_processes=0), {}, "must be a positive integer"),
])
def test_cluster_flags_are_checked(kwargs, env, match):
  with pytest.raises(errors.ConfigError, match=match):
    distributed.resolve(environ=env, **kwargs)


def test_cluster_from_flags_or_environment():
  assert distributed.resolve(environ={}) is None
  assert distributed.resolve(num_processes=1, environ={}) is None
  env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
         "JAX_PROCESS_ID": "3"}
  assert distributed.resolve(environ=env) == distributed.Cluster("10.0.0.1:1234", 4, 3)
  # Flags win over the environment.
  assert distributed.resolve(process_id=0, environ=env) == distributed.Cluster(
      "10.0.0.1:1234", 4, 0)
