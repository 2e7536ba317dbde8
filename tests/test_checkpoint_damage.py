"""Damaged checkpoints (issue 8 section 3): a deleted or truncated data file or removed metadata
in a final model or in the phase being resumed names the damaged checkpoint; resuming falls back to
the newest step that still reads; nothing is deleted."""

import shutil
import warnings

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from emojax import checkpoint, errors


def _model(seed):
  return nnx.Linear(3, 2, rngs=nnx.Rngs(seed))


def _data_files(item_dir):
  """The TensorStore/OCDBT data files of one saved item (a tiny model's arrays may be stored
  twice, so every copy is damaged)."""
  return [f for f in item_dir.rglob("*") if f.is_file() and f.parent.name == "d"]


def _truncate(files):
  for f in files:
    f.write_bytes(f.read_bytes()[:40])


DAMAGES = {
    "deleted data file": lambda d: [f.unlink() for f in _data_files(d / "model")],
    "truncated data file": lambda d: _truncate(_data_files(d / "model")),
    "removed metadata": lambda d: (d / "meta" / "metadata").unlink(),
    "garbage metadata": lambda d: (d / "meta" / "metadata").write_bytes(b'{"method": "tw'),
    "removed array index": lambda d: (d / "model" / "manifest.ocdbt").unlink(),
}


@pytest.fixture(scope="module")
def final_model(tmp_path_factory):
  root = tmp_path_factory.mktemp("final")
  model = _model(0)
  checkpoint.save_model(root / "final_model", model, {"method": "m", "feature_dims": {"a": 3}},
                        {"a": {"mean": np.zeros(3, np.float32), "std": np.ones(3, np.float32)}})
  return root / "final_model", model


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_final_model_names_the_checkpoint_and_the_fix(final_model, tmp_path, damage,
                                                             capfd):
  src, _ = final_model
  d = tmp_path / "final_model"
  shutil.copytree(src, d)
  DAMAGES[damage](d / "1")
  before = sorted(p.relative_to(d) for p in d.rglob("*"))
  with pytest.raises(checkpoint.DamagedCheckpointError) as e:
    checkpoint.read_model_meta(d)
    checkpoint.restore_model(d, _model(1))
  msg = str(e.value)
  assert f"checkpoint {d / '1'} is damaged" in msg and f"Delete {d}" in msg
  assert "Traceback" not in msg and len(msg) < 800
  assert "Traceback" not in capfd.readouterr().err  # no stray tracebacks of Orbax's reads
  assert sorted(p.relative_to(d) for p in d.rglob("*")) == before  # nothing removed


def test_intact_final_model_restores_and_a_misfit_is_not_called_damage(final_model):
  src, model = final_model
  meta, stats = checkpoint.read_model_meta(src)
  assert meta["method"] == "m" and stats["a"]["std"].tolist() == [1, 1, 1]
  other = _model(1)
  checkpoint.restore_model(src, other)
  np.testing.assert_array_equal(other.kernel[...], model.kernel[...])
  with pytest.raises(errors.ConfigError) as e:
    checkpoint.restore_model(src, nnx.Linear(4, 2, rngs=nnx.Rngs(0)))
  assert not isinstance(e.value, checkpoint.DamagedCheckpointError)
  assert "does not fit" in str(e.value)


def test_check_fits_names_other_streams(final_model):
  src, _ = final_model
  meta, _ = checkpoint.read_model_meta(src)
  checkpoint.check_fits(src, meta, method="m", modalities=["a"], targets=[])
  with pytest.raises(errors.ConfigError, match=r"streams \['a'\] \(config: \['a', 'action'\]\)"):
    checkpoint.check_fits(src, meta, method="m", modalities=["a", "action"], targets=[])


def _phase_with_steps(directory, steps=(2, 4, 6)):
  """A phase's checkpoints with latest steps `steps`; returns (saved kernels, opt state like)."""
  tx = optax.adam(1e-3)
  kernels = {}
  ckpt = checkpoint.PhaseCheckpoints(directory, keep=3, best_metric="pcc", best_mode="max")
  for step in steps:
    model = _model(step)
    pure = checkpoint.model_pure_state(model)
    opt_state = tx.init(pure)
    ckpt.save_latest(step, pure, opt_state, {"phase": "p", "step": step})
    kernels[step] = np.asarray(model.kernel[...])
  ckpt.wait()
  ckpt.close()
  return kernels, tx.init(checkpoint.model_pure_state(_model(0)))


@pytest.mark.parametrize("damage", ["deleted data file", "truncated data file", "removed metadata"])
def test_resume_falls_back_to_the_previous_good_step(tmp_path, damage):
  directory = tmp_path / "checkpoints" / "arousal__finetune"
  kernels, opt_like = _phase_with_steps(directory)
  DAMAGES[damage](directory / "latest" / "6")
  ckpt = checkpoint.PhaseCheckpoints(directory, keep=3, best_metric="pcc", best_mode="max")
  assert ckpt.latest_step() == 6
  with pytest.warns(checkpoint.DamagedCheckpointWarning) as w:
    step, pure, _, meta = ckpt.restore_latest(checkpoint.model_pure_state(_model(0)), opt_like)
  assert step == 4 and meta == {"phase": "p", "step": 4}
  np.testing.assert_array_equal(np.asarray(pure["kernel"]), kernels[4])
  msg = str(w[0].message)
  assert str(directory) in msg and "step(s) 6 are damaged" in msg and "resuming from step 4" in msg
  # The damaged step is kept aside (not deleted), out of the way of the resumed run's saves.
  moved = list((directory / "damaged").glob("*/latest_6"))
  assert len(moved) == 1 and any(moved[0].rglob("*"))
  assert ckpt.latest_step() == 4
  model = _model(9)
  ckpt.save_latest(6, checkpoint.model_pure_state(model), opt_like, {"phase": "p", "step": 6})
  ckpt.wait()
  step, pure, _, _ = ckpt.restore_latest(checkpoint.model_pure_state(_model(0)), opt_like)
  assert step == 6
  np.testing.assert_array_equal(np.asarray(pure["kernel"]), np.asarray(model.kernel[...]))
  ckpt.close()


def test_every_latest_step_damaged_says_what_to_delete(tmp_path):
  directory = tmp_path / "checkpoints" / "valence__stage1_audio"
  _, opt_like = _phase_with_steps(directory, steps=(2, 4))
  for step in (2, 4):
    DAMAGES["deleted data file"](directory / "latest" / str(step))
  ckpt = checkpoint.PhaseCheckpoints(directory, keep=3, best_metric="pcc", best_mode="max")
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no fallback warning: there is nothing to fall back to
    with pytest.raises(checkpoint.DamagedCheckpointError) as e:
      ckpt.restore_latest(checkpoint.model_pure_state(_model(0)), opt_like)
  msg = str(e.value)
  assert f"Delete {directory}" in msg and "steps 4, 2" in msg
  assert sorted(p.name for p in (directory / "latest").iterdir()) == ["2", "4"]  # left in place
  ckpt.close()


def test_damaged_best_checkpoint_is_named(tmp_path):
  directory = tmp_path / "checkpoints" / "arousal__finetune"
  ckpt = checkpoint.PhaseCheckpoints(directory, keep=3, best_metric="pcc", best_mode="max")
  ckpt.save_best(3, checkpoint.model_pure_state(_model(3)), {"pcc": 0.5})
  ckpt.wait()
  DAMAGES["truncated data file"](directory / "best" / "3")
  with pytest.raises(checkpoint.DamagedCheckpointError) as e:
    ckpt.restore_best_into(_model(0))
  assert f"checkpoint {directory / 'best' / '3'} is damaged" in str(e.value)
  assert "phases.json" in str(e.value)
  ckpt.close()
