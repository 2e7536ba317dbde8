"""The method contract: stateful layers, losses by name, optimizers, per-clip data, no circles."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from conftest import REPO, toy_data_dir
from emojax import checkpoint, contract, errors, train

import clip_method  # pylint: disable=g-bad-import-order
import refusals
import stateful_method


def _stateful_config(data_dir, **train_overrides):
  c = stateful_method.get_config()
  with c.unlocked():
    c.dataset.data_dir = str(data_dir)
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
    for k, v in train_overrides.items():
      c.train[k] = v
  return c


def _run_main(args, env=None, check=True):
  env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(env or {})}
  return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env,
                        capture_output=True, text=True, check=check, timeout=600)


# Each module imported first, in a process where no part of emojax is loaded yet (an import cycle
# shows only then). One interpreter imports the heavy third-party packages once, then forks a
# child per module (7 interpreters importing JAX and TFDS each cost ~23 s of CPU; this ~4.5 s).
_IMPORT_ALONE = """
import importlib, json, os, sys, traceback
import jax, flax.nnx, numpy, optax, orbax.checkpoint, scipy.signal, scipy.stats  # third-party only
import ml_collections, tensorflow_datasets
assert not [m for m in sys.modules if m == "emojax" or m.startswith("emojax.")], "emojax loaded"
result = {}
for module in sys.argv[1:]:
  r, w = os.pipe()
  pid = os.fork()
  if pid == 0:  # the child: emojax.<module> is the first part of emojax imported
    os.close(r)
    try:
      importlib.import_module(f"emojax.{module}")
      msg = {"loaded": sorted(m for m in sys.modules if m in ("emojax.train", "emojax.evaluate"))}
    except BaseException:  # pylint: disable=broad-except
      msg = {"error": traceback.format_exc()}
    os.write(w, json.dumps(msg).encode())
    os._exit(0)
  os.close(w)
  with os.fdopen(r) as f:
    result[module] = json.loads(f.read())
  os.waitpid(pid, 0)
print(json.dumps(result))
"""


def test_each_module_imports_alone_and_no_model_imports_the_trainer():
  modules = ["contract", "inference", "train", "evaluate", "input_pipeline",
             "models.two_timescale", "models.ridge"]
  r = subprocess.run([sys.executable, "-c", _IMPORT_ALONE, *modules], cwd=REPO,
                     capture_output=True, text=True, check=True)
  result = json.loads(r.stdout.splitlines()[-1])
  assert sorted(result) == sorted(modules)
  for module in modules:
    assert "error" not in result[module], f"emojax.{module} alone: {result[module]['error']}"
    if module.startswith("models."):
      assert result[module]["loaded"] == [], f"{module} imports {result[module]['loaded']}"


def test_contract_module_imports_no_other_part_of_emojax():
  src = (REPO / "emojax" / "contract.py").read_text()
  imports = [l for l in src.splitlines() if l.startswith(("from emojax", "import emojax"))]
  assert imports == ["from emojax import errors"]


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
  """tests/clip_method.py (BatchNorm, dropout; per-clip classification) trained and evaluated once,
  in-process; what the tests read of it, as a dict (the stores' facts are taken before training)."""
  from emojax import evaluate  # pylint: disable=import-outside-toplevel
  config = clip_method.get_config()
  with config.unlocked():
    config.dataset.data_dir = str(toy_data_dir())
  run = tmp_path_factory.mktemp("clip") / "run"
  trainer = train.Trainer(config, run)
  held = json.loads(json.dumps(trainer.holdout))
  unit, train_films = trainer.stores["train"].unit, set(trainer.stores["train"].film_ids)
  validation_films = set(trainer.stores["validation"].film_ids)
  trainer.run()
  flat = evaluate.evaluate_trainer(trainer)
  return dict(config=config, unit=unit, held=held, train_films=train_films,
              validation_films=validation_films, trainer=trainer, flat=flat, run=run)


def test_per_clip_batchnorm_and_dropout_resume_after_sigkill_bit_identical(tmp_path, clip_run,
                                                                           capsys):
  """The per-clip path's kill-and-resume: BatchNorm statistics are carried by the step and saved;
  dropout draws a new mask each step (reproducible); a SIGKILL mid-phase (main.py in a subprocess)
  and a rerun of the same command (main.py's entry, in-process) end with the same parameters and
  statistics as the uninterrupted run."""
  config, full = clip_run["config"], clip_run["run"]
  args = ["--config=tests/clip_method.py", f"--config.dataset.data_dir={toy_data_dir()}"]
  killed = tmp_path / "killed"
  # Killed right after step 13, before any save at that step: the last checkpoint is step 10.
  r = _run_main([f"--workdir={killed}", *args],
                env={"EMOJAX_FAULT_KILL_AT": "valence/classifier:13"}, check=False)
  assert r.returncode == -9, r.stderr[-2000:]
  assert sorted(p.name for p in (killed / "checkpoints" / "valence__classifier" / "latest")
                .iterdir()) == ["10"]
  assert not (killed / "final_model").exists()
  capsys.readouterr()
  code, err = refusals.run_main(f"--workdir={killed}", *args)   # the same command, in-process
  assert code == 0, err[-2000:]
  assert "resumed valence/classifier at step 10" in capsys.readouterr().out
  model = clip_method.create(config, {"audio": (6,)}, nnx.Rngs(0))

  def restored(workdir):
    checkpoint.restore_model(workdir / "final_model", model)
    return jax.tree.map(np.asarray, checkpoint.model_pure_state(model))
  a, b = restored(full), restored(killed)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  # The step's form is recorded per phase; the resumed run kept the one it started with.
  forms = [json.loads((w / "step_form.json").read_text()) for w in (full, killed)]
  assert forms[0] == forms[1] and forms[0]["valence/classifier"]["rbg"] is True
  # The running statistics moved away from their initial values (0 mean, 1 variance).
  assert np.abs(a["bn"]["mean"]).max() > 1e-3 and np.abs(a["bn"]["var"] - 1).max() > 1e-3
  # The same evaluation.
  m1, m2 = (json.loads((w / "eval" / "test" / "metrics.json").read_text())["valence"]
            for w in (full, killed))
  assert m1["confusion"] == m2["confusion"] and m1["accuracy"] == m2["accuracy"]


def test_dropout_masks_differ_between_steps_and_repeat_for_the_same_step():
  model = stateful_method.Net(5, 8, 0.5, rngs=nnx.Rngs(0))
  model.train()
  x = jnp.ones((16, 8))
  drop = lambda step: model.drop(x, rngs=nnx.Rngs(dropout=train.step_key(0, "a/b", step)))
  assert not np.array_equal(drop(0), drop(1))
  np.testing.assert_array_equal(drop(3), drop(3))
  model.eval()
  np.testing.assert_array_equal(model.drop(x, rngs=None), x)


def test_the_step_returns_updated_batch_statistics():
  model = stateful_method.Net(5, 4, 0.0, rngs=nnx.Rngs(0))
  model.train()
  tk = contract.Task(("arousal",))
  graphdef, params, mutable, frozen = nnx.split(model, nnx.Param, contract.MUTABLE, ...)
  tx = optax.sgd(0.0)
  step = train.make_train_step(graphdef, stateful_method._forward, tk, tx)
  rng = np.random.default_rng(0)
  batch = {"x": {"audio": jnp.asarray(rng.normal(3.0, 1, (4, 2, 5, 3)), jnp.float32),
                 "action": jnp.asarray(rng.normal(0, 1, (4, 2, 5, 2)), jnp.float32)},
           "x_mask": {m: jnp.ones((4, 2, 5), bool) for m in ("audio", "action")},
           "clip_mask": jnp.ones((4, 2), bool),
           "y": {"arousal": jnp.zeros((4, 2))}}
  # Independent expectation: BatchNorm's running mean after one step = momentum-weighted mean of
  # the first layer's outputs over the batch.
  feats = np.concatenate([np.asarray(batch["x"][m]).mean(2) for m in ("audio", "action")], -1)
  h = feats.reshape(8, 5) @ np.asarray(model.fc1.kernel[...]) + np.asarray(model.fc1.bias[...])
  params, mutable, _, _ = step(params, mutable, frozen, tx.init(params), batch,
                               jax.random.key(0))
  np.testing.assert_allclose(np.asarray(mutable["bn"]["mean"][...]), 0.2 * h.mean(0), rtol=1e-5)


def test_losses_against_hand_computations():
  y = jnp.array([[0.5, -0.5, 0.2]])
  z = jnp.array([[0.1, 0.3, -2.0]])
  mask = jnp.array([[True, True, False]])
  batch = {"y": {"valence": y, "valence_class": jnp.array([[0, 2, 1]])}, "clip_mask": mask}
  mse = contract.loss_value(contract.Task(("valence",)), z, batch)
  assert float(mse) == pytest.approx(((0.4 ** 2) + (0.8 ** 2)) / 2, rel=1e-6)
  mp = contract.loss_value(contract.Task(("valence",), loss="mse_pcc"), z, batch)
  assert float(mp) == pytest.approx(0.4 + 1 - (-1.0), rel=1e-5)   # two points: PCC = -1
  sce = contract.loss_value(contract.Task(("valence",), loss="sigmoid_ce"), z, batch)
  t = np.array([0.75, 0.25])
  p = 1 / (1 + np.exp(-np.array([0.1, 0.3])))
  assert float(sce) == pytest.approx(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))),
                                     rel=1e-5)
  logits = jnp.array([[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [5.0, 0.0, 0.0]]])
  ce = contract.loss_value(contract.Task(("valence",), kind="classification", num_classes=3,
                                         loss="softmax_ce", best_metric="accuracy"), logits, batch)
  lse = lambda v: np.log(np.exp(v).sum())
  assert float(ce) == pytest.approx((lse([2, 0, 0]) - 2 + lse([0, 1, 3]) - 3) / 2, rel=1e-5)
  pred = contract.predictions(contract.Task(("valence",), loss="sigmoid_ce"), z)["valence"]
  np.testing.assert_allclose(pred, np.tanh(np.asarray(z) / 2), rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="regression", loss="softmax_ce"), "softmax_ce"),
    (dict(kind="classification", num_classes=3, loss="mse", best_metric="accuracy"), "'mse'"),
    (dict(loss="huber"), "unknown loss 'huber'"),
    (dict(kind="classification", num_classes=3, loss="softmax_ce"), "best metric 'pcc'"),
])
def test_tasks_that_do_not_fit_are_refused(kwargs, message):
  with pytest.raises(errors.ConfigError, match=message):
    contract.Task(("valence",), **kwargs)


def test_optimizer_specs_step_decay_and_sgd_momentum():
  spec = contract.optimizer_spec(dict(name="sgd", learning_rate=0.1, momentum=0.9,
                                      schedule="step", decay_every=2, decay_factor=0.1))
  tx = contract.make_optimizer(spec, steps=10, steps_per_epoch=5)
  p = jnp.zeros(())
  s = tx.init(p)
  updates, v = [], 0.0
  for k in range(4):   # gradient 1: momentum trace v = 0.9 v + 1, update = -lr_k * v
    u, s = tx.update(jnp.ones(()), s, p)
    v = 0.9 * v + 1
    updates.append((float(u), -0.1 * (0.1 ** (k // 2)) * v))
  for got, want in updates:
    assert got == pytest.approx(want, rel=1e-5)
  with pytest.raises(errors.ConfigError, match="unknown key"):
    contract.optimizer_spec(dict(learnin_rate=1.0))
  assert contract.to_steps(epochs=2.5, examples_per_epoch=40, batch_size=16) == 7


def test_per_clip_classification_trains_and_writes_accuracy_f1_confusion(clip_run):
  assert clip_run["unit"] == "clip"
  held = clip_run["held"]
  assert held and not set(held) & clip_run["train_films"]
  assert clip_run["validation_films"] == set(held)
  flat, run = clip_run["flat"], clip_run["run"]
  assert json.loads((run / "holdout.json").read_text())["validation_films"] == held
  m = json.loads((run / "eval" / "test" / "metrics.json").read_text())["valence"]
  cm = np.array(m["confusion"])
  assert cm.shape == (3, 3) and cm.sum() == m["num_clips"]
  assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
  rows = (run / "eval" / "test" / "predictions.csv").read_text().splitlines()
  assert rows[0] == "clip,film,valence_true,valence_pred,valence_p0,valence_p1,valence_p2"
  assert len(rows) - 1 == m["num_clips"]
  assert (run / "eval" / "test" / "plots" / "confusion_valence.png").stat().st_size > 1000
  true = np.array([int(r.split(",")[2]) for r in rows[1:]])
  pred = np.array([int(r.split(",")[3]) for r in rows[1:]])
  assert m["accuracy"] == pytest.approx(np.mean(true == pred))
  # Macro F1 (over the classes that occur in truth or prediction) and the mean per-film accuracy
  # against their definitions, from the written predictions.
  f1 = [2 * np.sum((pred == k) & (true == k)) / (np.sum(pred == k) + np.sum(true == k))
        for k in range(3) if np.sum(pred == k) + np.sum(true == k)]
  assert m["macro_f1"] == pytest.approx(np.mean(f1))
  films = np.array([r.split(",")[1] for r in rows[1:]])
  assert m["film_accuracy"] == pytest.approx(
      np.mean([np.mean(true[films == f] == pred[films == f]) for f in np.unique(films)]))
  # Learnable: well above the majority class.
  majority = np.bincount(true).max() / len(true)
  assert flat["test/valence/accuracy"] > majority + 0.15
  # The trivial baseline: the majority class of the clips trained on (not of the held-out ones).
  train_classes = clip_run["trainer"].stores["train"].labels["valence_class"]
  b = m["baselines"]["majority"]
  assert b["class"] == int(np.argmax(np.bincount(train_classes, minlength=3)))
  assert b["accuracy"] == pytest.approx(np.mean(true == b["class"]))
  assert flat["test/valence/baseline_majority_accuracy"] == b["accuracy"]
  text = (run / "eval" / "ablation.md").read_text()
  assert "| baseline: predicting the training majority class | test | valence |" in text


@pytest.mark.parametrize("change, message", [
    (lambda c: setattr(c.data, "batch_size", 0), "config.data.batch_size=0"),
    (lambda c: setattr(c.optim, "learning_rate", -1.0), "learning rate"),
    (lambda c: setattr(c.checkpoint, "best_metric", "pcc"), "config.checkpoint.best_metric"),
])
def test_bad_clip_configs_fail_before_training(tmp_path, change, message):
  config = clip_method.get_config()
  with config.unlocked():
    config.dataset.data_dir = str(toy_data_dir())
    change(config)
  with pytest.raises(errors.ConfigError, match=message):
    train.Trainer(config, tmp_path / "run").run()
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_per_second_method_on_a_per_clip_dataset_is_refused(tmp_path):
  config = _stateful_config(toy_data_dir())
  with config.unlocked():
    config.dataset.name = "emojax_toy_clips"
    config.dataset.import_module = "toy_clips"
  with pytest.raises(errors.ConfigError, match="per-clip"):
    train.Trainer(config, tmp_path / "run")


def test_window_longer_than_every_film_is_refused(tmp_path):
  from conftest import toy_config  # pylint: disable=import-outside-toplevel
  config = toy_config(targets=("valence",))
  with config.unlocked():
    config.per_target.valence.model.num_clips = 20     # 100 s windows; the toy films last 25-47 s
  with pytest.raises(errors.ConfigError, match="longer than every training film"):
    train.Trainer(config, tmp_path / "run")


def test_phases_of_one_target_get_different_shuffle_seeds():
  names = ["valence/stage1_audio", "valence/stage1_scene", "valence/finetune", "arousal/stage1_audio"]
  seeds = {train._stable_hash(n) for n in names}   # pylint: disable=protected-access
  assert len(seeds) == len(names)
  assert train._stable_hash("valence/x") == train._stable_hash("valence/x")


def test_loss_on_the_last_valid_clip_of_each_window():
  """Window loss_on="last": the per-second store's training windows carry a `loss_mask` of each
  window's last valid clip (the same windows otherwise), and the loss is on those entries only."""
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  lengths = (7, 12, 20)                                    # seconds: 4, 6 and 10 clips of 2 s
  store = input_pipeline.FilmStore("films/train", ["a", "b", "c"],
                                   {"audio": [np.ones((t, 2), np.float32) for t in lengths]},
                                   {"valence": [np.zeros(t, np.float32) for t in lengths]})
  kw = dict(clip_seconds=2, batch_size=6, seed=0, stride=4)  # windows run past the films' ends
  last = next(store.train_batches(window={"num_clips": 4, "loss_on": "last"}, **kw))
  every = next(store.train_batches(window={"num_clips": 4}, **kw))
  assert "loss_mask" not in every
  np.testing.assert_array_equal(last["clip_mask"], every["clip_mask"])
  want = np.zeros((6, 4), bool)
  for b, (f, c0) in enumerate(zip(last["film_index"], last["clip_start"])):
    want[b, min(4, -(-lengths[f] // 2) - c0) - 1] = True   # the window's last clip in its film
  assert not want[:, -1].all()                             # some windows end inside a film
  np.testing.assert_array_equal(last["loss_mask"], want)

  z = jnp.array([[0.0, 1.0, 5.0], [2.0, 0.0, 0.0]])
  batch = {"y": {"valence": jnp.zeros((2, 3))},
           "clip_mask": jnp.array([[True, True, False], [True, False, False]])}
  task = contract.Task(("valence",))
  assert float(contract.loss_value(task, z, batch)) == pytest.approx((0 + 1 + 4) / 3)
  batch["loss_mask"] = jnp.array([[False, True, False], [True, False, False]])
  assert float(contract.loss_value(task, z, batch)) == pytest.approx((1 + 4) / 2)


@pytest.mark.parametrize("window, message", [
    ({"num_clip": 4}, r"window key\(s\) \['num_clip'\] are not read by per-second data"),
    ({"loss_on": "first"}, "loss_on='first'; use 'all' or 'last'"),
    ({"num_clips": 0}, "num_clips=0; use an integer >= 1"),
    ({"resolution": "frame"}, "resolution='frame'"),
    (4, "is not a mapping"),
])
def test_a_bad_per_second_window_is_refused_by_its_store(window, message):
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  with pytest.raises(errors.ConfigError, match=f"^phase p: .*{message}"):
    input_pipeline.FilmWindow.of(window, "phase p")


def test_a_per_clip_store_refuses_a_window():
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  store = input_pipeline.ClipStore("toy/train", [], np.zeros(0, np.int64), [], [], {}, (), {})
  store.check_window({}, 5, "phase p")
  with pytest.raises(errors.ConfigError, match="^phase p: window {'num_clips': 4} is for "
                     "per-second films.*drop the window"):
    store.check_window({"num_clips": 4}, 5, "phase p")


def test_sliding_windows_end_at_every_second(tmp_path):
  """Window sliding_seconds: second t's prediction sees exactly seconds t-W+1..t (fewer at the
  film's start), checked against a NumPy running sum."""
  from conftest import toy_config  # pylint: disable=import-outside-toplevel
  from emojax import inference, input_pipeline  # pylint: disable=import-outside-toplevel
  config = toy_config(targets=("valence",))
  store = input_pipeline.load_split(config, "test", ("audio",), ("valence",))
  w = 4

  def forward(model, batch, rngs):
    del model, rngs
    m = batch["x_mask"]["audio"][..., None].astype(jnp.float32)
    return (batch["x"]["audio"] * m).sum((2, 3))    # (B, 1)
  out = contract.Output(forward, contract.Task(("valence",)), window={"sliding_seconds": w})
  preds = inference.predict_outputs(nnx.Linear(1, 1, rngs=nnx.Rngs(0)), {"valence": out}, store,
                                    input_pipeline.make_mesh(), clip_seconds=5, batch_size=16)
  for f, x in enumerate(store.streams["audio"]):
    s = x.sum(-1).astype(np.float64)
    want = np.array([s[max(0, t - w + 1):t + 1].sum() for t in range(len(s))])
    np.testing.assert_allclose(preds["valence"][f], want, rtol=1e-5, atol=1e-5)


def test_ragged_clip_streams_are_padded_with_a_mask(tmp_path):
  from emojax import input_pipeline  # pylint: disable=import-outside-toplevel
  config = clip_method.get_config()
  with config.unlocked():
    config.dataset.data_dir = str(tmp_path / "data")
  store = input_pipeline.load_clip_split(config, "train", ("segments", "audio"), ("valence",))
  assert store.ragged == ("segments",) and store.shapes["segments"] == (4, 4)
  lengths = [len(store.source[int(r)]["segments"]) for r in store.rows]
  assert set(lengths) == {2, 3, 4}
  for i in range(len(store)):
    e = store.example(i)
    n = lengths[i]
    np.testing.assert_array_equal(e["x_mask"]["segments"], np.arange(4) < n)
    np.testing.assert_array_equal(e["x"]["segments"][:n], store.source[int(store.rows[i])]["segments"])
    assert not e["x"]["segments"][n:].any()
