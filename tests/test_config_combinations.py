"""Every config argument combination of every config loads its default data and builds its model.

Each config declares its argument words (`OPTIONS`, configs/common.py `Options`: groups of mutually
exclusive words, and the words that need another); the combinations are read from there, so a word
a config adds is built here without touching this file. For each config:
- every combination the declaration refuses (a word that needs another, two words of one group, an
  unknown word) ends in one line, a ConfigError naming the config file;
- every other combination builds its config, its task, its first phase and that phase's optimizer,
  and loads its default data: the dataset's builder is asked for its declared features
  (`builder.info.features`: shapes and dtypes, nothing downloaded or built), two films / clips of
  that layout are loaded through the harness's own store loading (`input_pipeline.load_stores`,
  the builder's data source replaced by them), and each output's first prediction batch is made;
- and its model is created and each output's forward run on that batch, abstractly (one
  `jax.eval_shape` trace: shapes only, nothing initialised or compiled), each prediction's shape
  and dtype checked against the task and the batch layout (a value per label entry, per second
  where the output's window says so, a probability per class for classification).
  Combinations that build the same model share one build (`_model_key`): they differ only by the
  optimizer, durations, batch sizes, splits, the dataset's name or numbers inside the network
  (dropout rates, the label scale), and read streams of the same layout; so does one whose targets
  a built one has (`valence` of the default's valence + arousal): 1,374 combinations, 153 builds.
  The 88 combinations whose data needs the user's converted weights (`films`) are checked to be
  refused in one line (`_user_weights`; their data and models are built on generated weights in
  tests/test_backbone_configs.py and tests/test_predict_released_aan.py).
  Cost: JAX's tracing of a big network's creation was dominated by an error message built and
  thrown away on every RNG draw (`_fast_tracing`: two BN-Inceptions' abstract creation, under
  cProfile, 33 s -> 5 s).
A failure names the combination.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import pathlib
import time

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from conftest import toy_data_dir
from emojax import contract, datasets, errors, input_pipeline
from emojax.train import get_method

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py")
                 if p.stem not in ("__init__", "common"))
SECONDS = 72       # per film: longer than every default window (gru_moe's 60 s)
# Blocks and keys that set how a model trains, not what it is or reads.
NOT_THE_MODEL = ("optim", "checkpoint", "log", "sweep")
DURATIONS = ("steps", "epochs", "eval_every", "patience", "ensemble")
# Model keys that set numbers inside a network, not its shapes (a key missing here costs a build,
# never hides one): output scale, dropout rates, augmentation, weights files, kernels' lowering.
NOT_SHAPES = ("label_center", "label_half_range", "dropout", "flip", "weights", "backbone_weights",
              "autotune", "conv_lowering", "compute_dtype", "partial_bn")


def _module(name: str):
  return importlib.import_module(f"configs.{name}")


def test_every_config_declares_its_arguments():
  for name in CONFIGS:
    options = getattr(_module(name), "OPTIONS", None)
    assert options is not None, f"configs/{name}.py declares no OPTIONS (configs/common.py Options)"
    assert options.config == name, (name, options.config)


@pytest.mark.parametrize("name", CONFIGS)
def test_refused_combinations_end_in_one_line_naming_the_config(name):
  options = _module(name).OPTIONS
  refused = [c for c in options.combinations() if options.refusal(set(filter(None, c.split(","))))]
  # Two words of one group, and a word the config does not know, are refused too.
  refused += [f"{g[0]},{g[1]}" for g in options.groups if len(g) > 1]
  refused.append("no_such_word")
  for arg in refused:
    with pytest.raises(errors.ConfigError) as e:
      _module(name).get_config(arg)
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"configs/{name}.py:{arg}: "), (arg, text)
  if name == "video_convnets":   # the one declared need of this config, spelt out once
    assert "tsn,crop112" in refused and "tsn,crop112,resnet18" not in refused


def _data_key(config) -> tuple:
  d = config.dataset
  return (d.name, d.config, json.dumps(d.builder_kwargs.to_dict(), sort_keys=True), d.import_module)


_SPECS: dict[tuple, tuple] = {}


def _features(config) -> tuple:
  """(the dataset's builder, {feature: (shape, numpy dtype)} it declares); nothing built."""
  key = _data_key(config)
  if key not in _SPECS:
    d = config.dataset
    if d.import_module:
      importlib.import_module(d.import_module)
    builder = datasets.get_builder(d.name, d.config or None, str(toy_data_dir()),
                                   **d.builder_kwargs.to_dict())
    _SPECS[key] = builder, {k: (getattr(f, "shape", ()), np.dtype(f.np_dtype))
                            for k, f in builder.info.features.items()}
    # Encoded image streams (bytes per frame) with the decoded shapes the builder declares.
    for k, shape in dict(builder.info.metadata or {}).get("decoded_shapes", {}).items():
      _SPECS[key][1][k] = (tuple(shape), "encoded")
  return _SPECS[key]


def _examples(spec: dict, n: int = 2) -> list[dict]:
  """n examples of the declared layout: per-second films of SECONDS seconds, or per-clip examples
  whose variable first axis differs between clips (padded by the store)."""
  rng = np.random.default_rng(0)
  per_clip = "clip_id" in spec
  out = []
  for i in range(n):
    ex = {}
    for k, (shape, dtype) in spec.items():
      if dtype == "encoded":   # JPEG bytes per frame: (*lead, H, W, 3) decoded
        *lead, h, w, _ = shape
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(buf, "JPEG")
        ex[k] = np.full(tuple(lead), buf.getvalue(), dtype=object)
        continue
      if dtype.kind == "O":
        ex[k] = f"{k}_{i}".encode()
        continue
      free = SECONDS if not per_clip else 3 + i
      shape = tuple(free if s is None else s for s in shape)
      if dtype.kind == "u":
        ex[k] = rng.integers(0, 256, shape).astype(dtype)
      elif dtype.kind in "ib":
        ex[k] = rng.integers(0, 2, shape).astype(dtype)
      else:
        ex[k] = rng.uniform(-1, 1, shape).astype(dtype)
    out.append(ex)
  return out


def _model_key(config, method) -> str:
  """What a build depends on but its targets: the config without its training schedule, batch
  sizes and dataset, and instead of the dataset the declared layout of the streams the method reads
  (and, for per-second data, the clip length: the seconds of a window's clip; per-clip data has no
  clip length, `data.clip_seconds` only cuts a film in predict mode). Splits, the dataset's name
  and builder arguments reach the model only through that layout."""
  c = config.to_dict()
  c.pop("targets")
  c["model"] = {k: v for k, v in c.get("model", {}).items() if k not in NOT_SHAPES}
  for block in NOT_THE_MODEL + ("dataset", "data"):
    c.pop(block, None)
  c["train"] = {k: v for k, v in c.get("train", {}).items()
                if not any(k.startswith(p) for p in DURATIONS)}
  unit = method.task(config).unit
  if unit == "second":
    c["clip_seconds"] = config.data.clip_seconds
  _, spec = _features(config)
  streams = set(method.modalities(config))
  # Encoded frames (JPEG bytes) reach the model decoded: uint8 of the declared shape.
  c["layout"] = [unit] + sorted((k, str(s), str(t).replace("encoded", "uint8"))
                                for k, (s, t) in spec.items() if k in streams)
  return json.dumps(c, sort_keys=True, default=str) + method.__name__


def _user_weights(config) -> list[str]:
  """The dataset's extractors whose weights file the user converts (emojax.backbones.convert) and
  that the config leaves empty or points at a file not here. Such a dataset cannot be built
  without the user's weights: the config must be refused in one line naming the converter; its
  datasets and models are built on generated weights of the published layouts in
  tests/test_backbone_configs.py (seed 000 / 001 `backbones`) and
  tests/test_predict_released_aan.py (seed 003 `films`)."""
  extractors = config.dataset.get("builder_kwargs", {}).get("extractors", {}) or {}
  return sorted(e for e, p in extractors.items()
                if "weights_path" in p and not pathlib.Path(p["weights_path"] or "/").is_file())


def _refused_for_weights(config) -> bool:
  """True (after checking the one-line refusal) when the config's data needs the user's weights."""
  missing = _user_weights(config)
  if not missing:
    return False
  d = config.dataset
  with pytest.raises(errors.ConfigError, match="weights") as e:
    datasets.get_builder(d.name, d.config or None, str(toy_data_dir()),
                         **d.builder_kwargs.to_dict())
  assert "emojax.backbones.convert" in str(e.value) or "convert_vggish" in str(e.value), e.value
  assert any(m in str(e.value) for m in missing), (missing, e.value)
  return True


def _load(config, monkeypatch):
  """(method, the training store, {target: (output, its first prediction batch)}) of a config on
  two films / clips of its dataset's declared layout, through the harness's store loading; the
  method's task, first phase and its optimizer are checked on the way."""
  if not config.dataset.splits.train:   # set per fold by `python -m emojax.folds` (cognimuse)
    config = copy.deepcopy(config)
    config.dataset.splits.update(dict(train="train", validation="validation", test="test"))
  method = get_method(config)
  task = method.task(config)
  contract.check_task(task)
  phase = method.plan(config, [])
  assert phase is not None
  contract.check_task(phase.task)
  contract.make_optimizer(dict(phase.optimizer or contract.optimizer_spec(config.optim)),
                          steps=10, steps_per_epoch=5)
  outputs = method.outputs(config)
  assert set(outputs) == set(config.targets), (sorted(outputs), config.targets)
  streams = tuple(method.modalities(config))
  # What the store and its batches depend on: combinations that agree share them.
  key = json.dumps([config.dataset.to_dict(), config.data.to_dict(), streams, task.unit,
                    [task.label_key(t) for t in task.targets], config.seed,
                    [(t, dict(o.window)) for t, o in sorted(outputs.items())]], sort_keys=True, default=str)
  if key not in _STORES:
    builder, spec = _features(config)
    examples = _examples(spec)
    monkeypatch.setattr(input_pipeline, "_prepared_builder", lambda c: builder)
    monkeypatch.setattr(input_pipeline, "_split_source", lambda b, split, name: examples)
    stores, _ = input_pipeline.load_stores(config, task, streams, ("train", "test"))
    store = stores["train"]
    if config.data.standardize:
      store.standardize(store.feature_stats())
    _STORES[key] = store, {t: next(iter(store.prediction_batches(
        out, clip_seconds=config.data.clip_seconds, batch_size=2))) for t, out in outputs.items()}
  store, batches = _STORES[key]
  return config, method, store, {t: (out, batches[t]) for t, out in outputs.items()}


_STORES: dict[str, tuple] = {}


def _fast_tracing(monkeypatch) -> None:
  """Abstract builds without JAX's quadratic error text: flax's `Variable.set_value` probes
  `getattr(value, "sharding", None)` on every traced RNG counter update, and on a tracer JAX
  builds the AttributeError's message first, `_origin_msg()`, which walks every equation traced so
  far (`find_progenitors`). In a BN-Inception's abstract creation that was 26 of 33 s (560 RNG
  draws over a trace of thousands of equations). The message is discarded by `getattr`'s default;
  without it the trace is the same. Where JAX has no such method the builds are only slower."""
  from jax._src.interpreters import partial_eval  # pylint: disable=import-outside-toplevel
  if hasattr(partial_eval.DynamicJaxprTracer, "_origin_msg"):
    monkeypatch.setattr(partial_eval.DynamicJaxprTracer, "_origin_msg", lambda self: "")


def _expected_shape(out, batch, num_seconds: int) -> tuple:
  """A prediction's shape by the batch layout (docs/design.md, Batches): one value per label
  entry (`clip_mask`: the shape of y[...]), per second of a clip where the output's window asks
  for it (`resolution = "second"`), and a probability per class for classification."""
  shape = tuple(np.shape(batch["clip_mask"]))
  if dict(out.window).get("resolution") == "second":
    shape += (num_seconds,)
  if out.task.kind == "classification":
    shape += (out.task.num_classes,)
  return shape


def _build(config, method, store, batches) -> dict:
  """Creates the model and runs every output's forward on its first prediction batch, abstractly
  (one `jax.eval_shape` trace: nothing initialised or compiled); checks each prediction's shape
  and dtype against the task and the batch layout; returns {target: shape}."""
  dims = store.feature_dims()

  def run(b):
    model = method.create(config, dims, nnx.Rngs(0))
    model.eval()
    return {t: contract.predictions(out.task, out.forward(model, b[t], None))[t]
            for t, (out, _) in batches.items()}
  pred = jax.eval_shape(run, {t: b for t, (_, b) in batches.items()})
  for target, (out, batch) in batches.items():
    got = pred[target]
    want = _expected_shape(out, batch, int(config.data.clip_seconds))
    assert tuple(got.shape) == want and got.dtype == np.float32, (target, got, want)
  return {t: tuple(p.shape) for t, p in pred.items()}


def _accepted(name: str) -> list[str]:
  options = _module(name).OPTIONS
  return [c for c in options.combinations() if not options.refusal(set(filter(None, c.split(","))))]


def _each(name: str, args, check) -> None:
  for arg in args:
    try:
      check(arg)
    except Exception as e:  # pylint: disable=broad-except
      raise AssertionError(f"configs/{name}.py:{arg!r} does not build: "
                           f"{type(e).__name__}: {e}") from e


@pytest.mark.parametrize("name", CONFIGS)
def test_every_combination_builds_its_model_on_its_default_data(name, monkeypatch):
  """Every accepted combination: its config, task, first phase and optimizer, its dataset's
  declared layout loaded by its store, a prediction batch of each output, and its model created
  and run on them abstractly (one build per distinct model: combinations differing by optimizer,
  durations, batch sizes or numbers inside the network share it, and so does one whose targets a
  built one has)."""
  t0, c0 = time.time(), time.process_time()
  accepted = _accepted(name)
  assert accepted and accepted[0] == "", name
  built: dict[str, set] = {}   # model key -> the targets built
  refused = []
  _fast_tracing(monkeypatch)

  def check(arg):
    config = _module(name).get_config(arg or None)
    if _refused_for_weights(config):
      refused.append(arg)
      return
    with monkeypatch.context() as m:
      config, method, store, batches = _load(config, m)
    key = _model_key(config, method)
    if not set(config.targets) <= built.get(key, set()):
      _build(config, method, store, batches)
      built.setdefault(key, set()).update(config.targets)
  _each(name, accepted, check)
  assert len(refused) < len(accepted), (name, "every combination needs the user's weights")
  print(f"{name}: {len(accepted)} combinations loaded ({len(refused)} refused for the user's "
        f"weights), {len(built)} models built in {time.time() - t0:.1f} s "
        f"({time.process_time() - c0:.1f} s CPU)")
