"""The training harness end to end on the toy dataset: files, resume, freezing, sharding."""

import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import REPO, toy_config
from emojax import checkpoint, errors, train

import refusals  # pylint: disable=g-bad-import-order


def _final_params(workdir: pathlib.Path, config) -> dict:
  method = train.get_method(config)
  dims = {"audio": 3, "scene": 4, "expression": 5, "action": 2}
  model = method.create(config, {m: dims[m] for m in method.modalities(config)}, nnx.Rngs(0))
  checkpoint.restore_model(workdir / "final_model", model)
  return jax.tree.map(np.asarray, checkpoint.model_pure_state(model))


def test_train_and_evaluate_writes_the_contract(tmp_path, capsys):
  config = toy_config(targets=("valence", "arousal"), steps=4)
  with config.unlocked():   # 11 phases: one validation and one checkpoint each, at its end
    config.train.eval_every_steps = config.checkpoint.every_steps = 4   # (mid-phase ones:
    # reference_run, every 2 / 3 steps, read by the resume tests)
    config.eval.plots = True   # read below (toy_config turns them off)
  flat = train.train_and_evaluate(config, tmp_path / "run")
  run = tmp_path / "run"
  # Printed: per phase its validation scores only; test scores once, at the end of the run.
  lines = capsys.readouterr().out.splitlines()
  done = [i for i, line in enumerate(lines) if line.startswith("   done ")]
  assert done and all("validation (before post-processing): " in lines[i] for i in done)
  tests = [i for i, line in enumerate(lines) if re.search(r"\btest\b", line)]
  assert tests and min(tests) > max(done), [lines[i] for i in tests]
  assert [line.split(":")[0] for line in lines if line.startswith("   eval ")] == [
      "   eval validation", "   eval test"]
  for split in ("validation", "test"):
    m = json.loads((run / "eval" / split / "metrics.json").read_text())
    for dim in ("valence", "arousal"):
      assert set(m[dim]) >= {"mse", "rmse", "mae", "pcc", "ccc", "per_film"}
      assert np.isclose(m[dim]["rmse"] ** 2, m[dim]["mse"])
      assert flat[f"{split}/{dim}/mse"] == pytest.approx(m[dim]["mse"])
    films = sorted(m["valence"]["per_film"])
    assert len(films) == 2
    for fid in films:
      rows = (run / "eval" / split / "predictions" / f"{fid}.csv").read_text().splitlines()
      assert rows[0] == "second,valence_true,valence_pred,arousal_true,arousal_pred"
      assert m["valence"]["per_film"][fid]["num_seconds"] == len(rows) - 1
      assert (run / "eval" / split / "plots" / f"{fid}.png").stat().st_size > 1000
  records = json.loads((run / "phases.json").read_text())
  names = [r["name"] for r in records]
  # Stage 1 for both modalities, 2 progressive steps in the ranked order, fine-tuning, inter-clip.
  assert names[:2] == ["valence/stage1_audio", "valence/stage1_expression"]
  assert {names[2].split("_", 1)[1], names[3].split("_", 1)[1]} == {"audio", "expression"}
  assert names[4:6] == ["valence/finetune", "valence/inter_clip"]
  assert names[-1] == "arousal/finetune"
  for f in ("config.json", "run_info.json", "eval/ablation.md"):
    assert (run / f).exists(), f
  assert json.loads((run / "run_info.json").read_text())["packages"]["jax"] == jax.__version__
  assert list((run / "tensorboard").glob("events.out.tfevents.*"))
  assert "M2_decision" in (run / "eval" / "ablation.md").read_text()


def _run_main(args, env=None, check=True):
  # Multi-device runs read and write the persistent compilation cache like the others (a cached
  # 8-device run: 17.6 -> ~10 s of CPU; 10 cached runs in a row finished, same metrics.json).
  env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(env or {})}
  return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env,
                        capture_output=True, text=True, check=check, timeout=600)


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path, reference_run, capsys):
  """SIGKILL in the middle of a phase (main.py in a subprocess) and rerunning the same command
  (main.py's entry, in-process) gives the same parameters as the uninterrupted run (the session's
  reference run, trained in-process)."""
  config, full, _ = reference_run
  overrides = _overrides(config)
  killed = tmp_path / "killed"
  # The harness kills itself with SIGKILL right after step 4 of the progressive phase, before
  # that step's checkpoint: the last checkpoint is at step 2, and the best one at step 3.
  r = _run_main([f"--workdir={killed}", *overrides],
                env={"EMOJAX_FAULT_KILL_AT": "arousal/progressive1_*:4"}, check=False)
  assert r.returncode == -9, r.stderr[-2000:]
  assert not (killed / "final_model").exists()
  phase = killed / "checkpoints" / "arousal__progressive1_audio"
  assert sorted(p.name for p in (phase / "latest").iterdir()) == ["2"]
  assert sorted(p.name for p in (phase / "best").iterdir()) == ["3"]
  capsys.readouterr()
  code, err = refusals.run_main(f"--workdir={killed}", *overrides)  # the same command, in-process
  assert code == 0, err[-2000:]
  assert "resumed arousal/progressive1_audio at step 2" in capsys.readouterr().out
  a, b = _final_params(full, config), _final_params(killed, config)
  jax.tree.map(np.testing.assert_array_equal, a, b)


def _overrides(config) -> list[str]:
  c = config
  return ["--config=configs/two_timescale.py:arousal,runlocal",
          f"--config.dataset.name={c.dataset.name}", "--config.dataset.config=",
          f"--config.dataset.import_module={c.dataset.import_module}",
          f"--config.dataset.data_dir={c.dataset.data_dir}",
          f"--config.data.clip_seconds={c.data.clip_seconds}",
          f"--config.data.batch_size={c.data.batch_size}",
          f"--config.data.eval_batch_size={c.data.eval_batch_size}",
          "--config.per_target.arousal.inputs.streams="
          f"{tuple(c.per_target.arousal.inputs.streams)}",
          f"--config.train.steps={c.train.steps}",
          "--config.train.eval_every_steps=3", "--config.checkpoint.every_steps=2",
          "--config.log.every_steps=3", f"--config.eval.plots={c.eval.plots}"]


def test_eight_devices_give_the_same_result_as_one(tmp_path, reference_run):
  config, one, _ = reference_run     # one device, in-process
  eight = tmp_path / "eight"
  # The device count added to the tests' XLA flags (conftest.py: XLA's backend optimisation off,
  # as in the reference run).
  flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()
  _run_main([f"--workdir={eight}", *_overrides(config)], env={"XLA_FLAGS": flags})
  info = json.loads((eight / "run_info.json").read_text())
  assert len(info["devices"]) == 8
  a, b = _final_params(one, config), _final_params(eight, config)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5), a, b)
  m1 = json.loads((one / "eval" / "test" / "metrics.json").read_text())
  m8 = json.loads((eight / "eval" / "test" / "metrics.json").read_text())
  assert m1["arousal"]["mse"] == pytest.approx(m8["arousal"]["mse"], rel=1e-3)


def test_progressive_phase_freezes_earlier_modalities(tmp_path):
  config = toy_config(steps=3)
  trainer = train.Trainer(config, tmp_path / "run")
  from emojax.models import two_timescale  # pylint: disable=import-outside-toplevel
  records = [{"name": f"arousal/stage1_{m}", "info": {"modality": m},
              "validation": {"pcc": v}} for m, v in (("audio", 0.3), ("action", 0.2))]
  phase = [p for p in two_timescale.phases(config, "arousal", records)][3]
  assert phase.name == "arousal/progressive2_action"
  net = trainer.model.nets["arousal"]
  before = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(net)))
  # The loss' gradient w.r.t. every parameter: the frozen modality's encoder gets no update.
  graphdef, train_state, frozen = nnx.split(trainer.model, phase.trainable, ...)
  flat, _ = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(train_state))
  paths = {tuple(k.key for k in path[:4]) for path, _ in flat}
  assert paths == {("nets", "arousal", "encoders", "action"),
                   ("nets", "arousal", "progressive_heads", "action")}
  trainer.run_phase(phase)
  after = jax.tree.map(np.array, nnx.to_pure_dict(nnx.state(net)))
  jax.tree.map(np.testing.assert_array_equal, before["encoders"]["audio"], after["encoders"]["audio"])
  jax.tree.map(np.testing.assert_array_equal, before["fc1"], after["fc1"])
  changed = jax.tree.leaves(jax.tree.map(lambda x, y: not np.array_equal(x, y),
                                         before["encoders"]["action"], after["encoders"]["action"]))
  assert all(changed)


def test_inter_clip_phase_gives_zero_gradient_to_the_intra_clip_part(tmp_path):
  config = toy_config(targets=("valence",), steps=2)
  trainer = train.Trainer(config, tmp_path / "run")
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  batch = next(input_pipeline.train_batches(trainer.stores["train"], clip_seconds=5,
                                            num_clips_per_window=3, batch_size=4, seed=0))
  net = trainer.model.nets["valence"]

  def loss(model):
    return jnp.sum(model.inter_clip(batch) ** 2)
  grads = nnx.grad(loss)(net)
  enc = jax.tree.leaves(nnx.to_pure_dict(grads["encoders"]))
  assert enc and all(np.all(np.asarray(g) == 0) for g in enc)
  assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(nnx.to_pure_dict(grads["inter"])))


def test_nan_loss_stops_with_a_clear_error(tmp_path):
  config = toy_config(steps=3)
  trainer = train.Trainer(config, tmp_path / "run")
  from emojax import contract  # pylint: disable=import-outside-toplevel
  phase = train.Phase("arousal/broken", contract.Task(("arousal",)),
                      lambda model, batch, rngs: model.nets["arousal"].intra(batch) * jnp.nan,
                      lambda path, x: isinstance(x, nnx.Param) and "fc2" in path, steps=3)
  with pytest.raises(errors.NonFiniteLossError, match="loss is nan at step 1"):
    trainer.run_phase(phase)


@pytest.mark.parametrize("args, message", [
    (["--config.train.learnin_rate=3"], "learnin_rate"),
    (["--config.per_target.arousal.inputs.streams=('audio','smell')"], "smell"),
    (["--config.method=nope"], "unknown method 'nope'"),
    (["--config.dataset.name=nope"], "unknown dataset 'nope'"),
    (["--config.train.fusion=magic"], "fusion"),
])
def test_bad_configs_fail_with_a_message_naming_the_key(tmp_path, args, message):
  """main.py's entry in-process (tests/refusals.py); the real command line's exit code is
  test_refusals_main_train.py's test_real_command_line_exit_code."""
  config = toy_config(steps=1)
  code, err = refusals.run_main(f"--workdir={tmp_path / 'run'}", *_overrides(config), *args)
  refusals.check_refusal(code, err, [message])
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_sweep_runs_real_trials_and_skips_finished_ones(tmp_path):
  from emojax import sweep  # pylint: disable=import-outside-toplevel
  config = toy_config(steps=2)
  with config.unlocked():
    config.per_target.arousal.inputs.streams = ("audio",)
    config.sweep.grid = (("per_target.arousal.eval.ema_beta", (0.5, 0.9)),)
    config.sweep.metric = "validation/arousal/pcc"
  calls = []

  def run_trial(c, workdir):
    calls.append(workdir.name)
    return train.train_and_evaluate(c, workdir)
  sweep.run_sweep(config, tmp_path / "sweep", run_trial)
  assert len(calls) == 2
  rows = (tmp_path / "sweep" / "sweep" / "results.csv").read_text().splitlines()
  assert len(rows) == 3 and "validation/arousal/pcc" in rows[0]
  for name in calls:
    assert (tmp_path / "sweep" / "sweep" / "trials" / name / "eval" / "test" /
            "metrics.json").exists()
  table = (tmp_path / "sweep" / "sweep" / "results.md").read_text()
  assert "ema_beta=0.5" in table and "ema_beta=0.9" in table
  # The constant baselines of the trials' evaluations sit under the settings (PCC: n/a).
  m = json.loads((tmp_path / "sweep" / "sweep" / "trials" / calls[0] / "eval" / "validation" /
                  "metrics.json").read_text())["arousal"]["baselines"]
  assert f"| – | baseline: zero | – | n/a | n/a | {m['zero']['mse']:.4f} |" in table, table
  assert f"| – | baseline: train_mean | – | n/a | n/a | {m['train_mean']['mse']:.4f} |" in table
  sweep.run_sweep(config, tmp_path / "sweep", run_trial)
  assert len(calls) == 2  # both finished: nothing reruns


def test_a_workdir_refuses_a_different_config(tmp_path):
  config = toy_config(steps=2)
  run = tmp_path / "run"
  run.mkdir()
  saved = config.to_dict()
  saved["optim"]["learning_rate"] = 0.5
  from emojax import fileio  # pylint: disable=import-outside-toplevel
  fileio.write_json(run / "config.json", saved)
  (run / "checkpoints" / "valence" / "latest" / "2").mkdir(parents=True)  # a step was saved
  with pytest.raises(errors.ConfigError, match=r"optim.learning_rate: 0.5 -> 0.001"):
    train.Trainer(config, run).run()
