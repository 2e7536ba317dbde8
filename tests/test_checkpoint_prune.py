"""Bounded checkpoints: what each phase keeps once the next one starts, the disk estimate printed
before training, and resume after pruning."""

import pathlib

import jax
import numpy as np
import pytest

from emojax import checkpoint, errors, train


def _files_bytes(root: pathlib.Path) -> int:
  return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _kept(run: pathlib.Path) -> dict[str, list[str]]:
  return {p.name: sorted(q.name for q in p.iterdir())
          for p in sorted((run / "checkpoints").iterdir())}


def test_prune_phases_keeps_the_newest_finished_best_only(tmp_path):
  names = ["valence/stage1_audio", "valence/finetune", "arousal/finetune"]
  for n in names:
    for kind in ("latest/2", "latest/4", "best/3"):
      (tmp_path / n.replace("/", "__") / kind).mkdir(parents=True)
  deleted = checkpoint.prune_phases(tmp_path, names[:2], "last")
  assert sorted(pathlib.Path(d).relative_to(tmp_path).as_posix() for d in deleted) == [
      "valence__finetune/latest", "valence__stage1_audio/best", "valence__stage1_audio/latest"]
  assert not (tmp_path / "valence__stage1_audio").exists()  # an empty phase folder goes too
  assert sorted(p.name for p in (tmp_path / "valence__finetune").iterdir()) == ["best"]
  assert sorted(p.name for p in (tmp_path / "arousal__finetune").iterdir()) == ["best", "latest"]
  assert checkpoint.prune_phases(tmp_path, names[:2], "last") == []   # nothing twice

  for n in names:
    (tmp_path / "b" / n.replace("/", "__") / "latest" / "2").mkdir(parents=True)
    (tmp_path / "b" / n.replace("/", "__") / "best" / "2").mkdir(parents=True)
  checkpoint.prune_phases(tmp_path / "b", names, "best")
  assert [sorted(p.name for p in d.iterdir()) for d in sorted((tmp_path / "b").iterdir())] == [
      ["best"]] * 3
  assert checkpoint.prune_phases(tmp_path / "b", names, "all") == []
  with pytest.raises(errors.ConfigError, match="config.checkpoint.finished"):
    checkpoint.prune_phases(tmp_path, names, "none")


def test_disk_estimate_counts_latest_best_and_final():
  model = {"w": np.zeros((10, 100), np.float32), "b": np.zeros(100, np.float32),
           "steps": np.zeros((), np.int32)}
  count, size = checkpoint.state_bytes(model)
  assert (count, size) == (1101, 1101 * 4)
  # keep 2 latest (model + 2 moments each = 3 models), the best, the previous best, the final model.
  largest, end, per = checkpoint.disk_estimate(size, 2 * size, keep=2, policy="last")
  assert (largest, end, per) == (2 * 3 * size + 3 * size, 2 * size, 0)
  assert checkpoint.disk_estimate(size, 2 * size, keep=1, policy="best")[2] == size
  assert checkpoint.disk_estimate(size, 2 * size, keep=1, policy="all")[2] == 4 * size
  assert checkpoint.human_bytes(175_300_000) == "175.3 MB"
  assert checkpoint.human_bytes(5_900_000_000) == "5.90 GB"


def test_a_run_keeps_the_last_best_and_resumes_after_pruning(tmp_path, monkeypatch,
                                                             reference_run):
  config, full, out = reference_run      # the session's run, trained in-process (conftest)
  records = [r["name"] for r in train.fileio.read_json(full / "phases.json")]
  assert len(records) == 3
  # Only the last phase's best remains (resume restores it); final_model holds the result.
  assert _kept(full) == {records[-1].replace("/", "__"): ["best"]}
  line = next(l for l in out.splitlines() if l.startswith("checkpoints: model "))
  model_bytes = checkpoint.state_bytes(checkpoint.model_pure_state(
      train.Trainer(config, tmp_path / "other").model))[1]
  assert f"({checkpoint.human_bytes(model_bytes)})" in line
  # The disk left is what the line says at the end (arrays stored uncompressed) within the
  # checkpoint's metadata files.
  left = _files_bytes(full / "checkpoints") + _files_bytes(full / "final_model")
  assert 2 * model_bytes * 0.5 < left < 2 * model_bytes + 200_000, (left, model_bytes)

  # What is on disk as each phase starts: only the previous phase's best. A crash as the last
  # phase starts (after the pruning) leaves a workdir the same command resumes, to the same
  # parameters as the uninterrupted run.
  seen, real = [], train.Trainer.run_phase

  def watch(self, phase):
    seen.append((phase.name, _kept(self.workdir) if (self.workdir / "checkpoints").exists()
                 else {}))
    if len(seen) == 3 and self.workdir.name == "killed":
      raise RuntimeError("crash")
    return real(self, phase)
  monkeypatch.setattr(train.Trainer, "run_phase", watch)
  killed = tmp_path / "killed"
  with pytest.raises(RuntimeError, match="crash"):
    train.Trainer(config, killed).run()
  assert [kept for _, kept in seen] == [{}] + [
      {records[i].replace("/", "__"): ["best"]} for i in range(2)]
  train.Trainer(config, killed).run()
  assert _kept(killed) == _kept(full)
  a = checkpoint.model_pure_state(_restored(config, full))
  b = checkpoint.model_pure_state(_restored(config, killed))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _restored(config, run):
  t = train.Trainer(config, run)
  checkpoint.restore_model(run / "final_model", t.model)
  return t.model
