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
- the default, and for each word its first accepted combination (one word more where that gives
  fewer targets: a network per target), and each `needs` word with each word it is checked with,
  create the model and run each output's forward on that batch, abstractly
  (`nnx.eval_shape`, `jax.eval_shape`: shapes only, nothing initialised or compiled). Tracing a
  model's creation costs seconds (BN-Inception, six-layer Transformers: 10-20 s on 2 loaded
  cores), so building every combination's model (88 distinct video convnets, 36 AttendAffectNets)
  would take many minutes: the models are built per word, the data side per combination.
  Combinations whose model, inputs, outputs and data layout agree (they differ by optimizer,
  durations, batch sizes, numbers inside the network) share one build, and so does one whose
  targets a built one has (`valence` of the default's valence + arousal).
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
  """What a build depends on but its targets: the config without its training schedule and batch
  sizes, and the dataset's declared layout instead of its name."""
  c = config.to_dict()
  c.pop("targets")
  c["model"] = {k: v for k, v in c.get("model", {}).items() if k not in NOT_SHAPES}
  for block in NOT_THE_MODEL:
    c.pop(block, None)
  c["train"] = {k: v for k, v in c.get("train", {}).items()
                if not any(k.startswith(p) for p in DURATIONS)}
  c["data"] = {k: v for k, v in c["data"].items() if "batch_size" not in k}
  _, spec = _features(config)
  c["dataset"] = dict(config.dataset.to_dict(), name=None, config=None, builder_kwargs=None,
                      manual_dir=None, data_dir=None,
                      layout=sorted((k, str(s), str(t)) for k, (s, t) in spec.items()))
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


def _build(config, monkeypatch) -> list[str]:
  """Creates the model and runs every output's forward on the store's first prediction batch,
  abstractly; returns what was checked."""
  config, method, store, batches = _load(config, monkeypatch)
  dims = store.feature_dims()
  model = nnx.eval_shape(lambda: method.create(config, dims, nnx.Rngs(0)))
  model.eval()
  graphdef, state = nnx.split(model)
  checked = []
  for target, (out, batch) in batches.items():
    pred = jax.eval_shape(
        lambda st, b, out=out: contract.predictions(
            out.task, out.forward(nnx.merge(graphdef, st), b, None)), state, batch)
    got = pred[target]
    rows = np.shape(batch["clip_mask"])[0]
    assert got.shape[0] == rows and np.issubdtype(got.dtype, np.floating), (target, got)
    checked.append(f"{target}{tuple(got.shape)}")
  return checked


def _accepted(name: str) -> list[str]:
  options = _module(name).OPTIONS
  return [c for c in options.combinations() if not options.refusal(set(filter(None, c.split(","))))]


def _covering(name: str) -> list[str]:
  """The default and, for each declared word, the first accepted combination holding it, or that
  combination with one more word when that gives the model fewer targets (a network per target:
  the default builds every target, each word's model is built once)."""
  accepted = _accepted(name)
  by_words = {frozenset(filter(None, c.split(","))): c for c in accepted}
  words = _module(name).OPTIONS.words
  picked = [accepted[0]]
  # Each word, and each word that needs another together with the words it is checked with.
  wanted = [{w} for w in words] + [{w, x} for w, _, when, _ in _module(name).OPTIONS.needs
                                   for x in when]
  for want in wanted:
    if any(want <= set(c.split(",")) for c in picked):
      continue
    first = next(c for c in accepted if want <= set(c.split(",")))
    more = [by_words.get(frozenset(first.split(",")) | {w}) for w in words]
    options = [first] + [c for c in more if c and c != first]
    picked.append(min(options, key=lambda c: len(_module(name).get_config(c).targets)))
  return picked


def _each(name: str, args, check) -> None:
  for arg in args:
    try:
      check(arg)
    except Exception as e:  # pylint: disable=broad-except
      raise AssertionError(f"configs/{name}.py:{arg!r} does not build: "
                           f"{type(e).__name__}: {e}") from e


@pytest.mark.parametrize("name", CONFIGS)
def test_every_combination_loads_its_default_data(name, monkeypatch):
  """Every accepted combination: its config, task, first phase and optimizer, its dataset's
  declared layout loaded by its store, and a prediction batch of each output."""
  t0 = time.time()
  accepted = _accepted(name)
  assert accepted and accepted[0] == "", name

  def check(arg):
    config = _module(name).get_config(arg or None)
    if _refused_for_weights(config):
      return
    with monkeypatch.context() as m:
      _load(config, m)
  _each(name, accepted, check)
  print(f"{name}: {len(accepted)} combinations loaded in {time.time() - t0:.1f} s")


@pytest.mark.parametrize("name", CONFIGS)
def test_each_word_builds_its_model_on_its_default_data(name, monkeypatch):
  """The model of the default and of each word's first combination, created and run abstractly
  (one build per distinct model: combinations differing by optimizer, durations, batch sizes or
  numbers inside the network share it, and so does one whose targets a built one has)."""
  t0 = time.time()
  built: dict[str, set] = {}   # model key -> the targets built
  covering = _covering(name)

  def check(arg):
    config = _module(name).get_config(arg or None)
    if _refused_for_weights(config):
      return
    key = _model_key(config, get_method(config))
    if not set(config.targets) <= built.get(key, set()):
      with monkeypatch.context() as m:
        _build(config, m)
      built.setdefault(key, set()).update(config.targets)
  _each(name, covering, check)
  print(f"{name}: {len(covering)} combinations, {len(built)} models built in "
        f"{time.time() - t0:.1f} s")
