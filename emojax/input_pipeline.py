"""The data units: a split read into a `Store` that owns its batches, predictions and scores.

A `Store` (the protocol below) is one data unit of one split; the harness (train, inference,
evaluate) only calls it and never asks which unit it holds. Two units exist:
  - `FilmStore` (unit "second"): a per-second dataset (docs/design.md) read once through
    `tfds.data_source`, films in memory, validated, cut into windows. A window is L consecutive
    clips of S seconds of one film; the ragged end of a film is masked, never dropped, so every
    second of every film gets a prediction at evaluation.
  - `ClipStore` (unit "clip"): one example per clip, labels in memory, features streamed from the
    data source per batch through grain.
A new data unit (per frame, per shot) is a new class with the protocol's methods, registered in
`STORES` under the unit name a method's `Task.unit` gives.

How a store cuts the data around a method's forward is the method's `Phase.window` /
`Output.window`: a mapping of keys the store reads and checks (`FilmStore`: `FilmWindow`'s fields;
`ClipStore`: none, one example a clip). The harness passes it through without reading it.

The mask convention of every batch (the one way models read padding):
  - `clip_mask`: the valid label entries, the shape of `y[...]` ((B, L) windows, (B,) clips);
  - `x_mask[stream]`: the valid positions of the stream's time axes ((B, L, S) seconds of a window,
    (B, N) segments of a padded per-clip stream); a stream without an entry has no padding;
  - `loss_mask` (training batches, only where the window asks for it): the label entries the loss
    is on (`FilmWindow.loss_on="last"`: each window's last valid clip); without it the loss is on
    every entry of `clip_mask` (`contract.loss_value`). Models do not read it.

`config.dataset.concat` builds a modality out of several streams of the dataset, concatenated along
the feature axis in the order given, e.g. `(("colour", ("acc", "cl", "sc")),)`: the model then names
`colour` among its modalities like any stream (MediaEval 2018's official descriptors are one file
each; a method wants one stream per modality).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import math
import pathlib
from typing import Any, ClassVar, Iterator, Mapping, Protocol, Sequence

import grain
import jax
import ml_collections
import numpy as np
import PIL.Image
from jax.sharding import NamedSharding, PartitionSpec as P

from emojax import datasets, distributed, errors, fileio, metrics, postprocess, reporting
from emojax.features import manifest


class Store(Protocol):
  """One data unit of one split: everything the harness does with data goes through it.

  The harness never asks which unit a store holds: it trains on `train_batches`, predicts a
  method's `Output` by feeding `prediction_batches` to the model and the results to a `collector`,
  turns the collected raw predictions into the unit's predictions with `finish`, and scores or
  reports them with `score` / `evaluation` / `write_report`. `clip_seconds` is config.data's clip
  length (units without clips ignore it).
  """
  unit: ClassVar[str]                 # the name a method's Task.unit gives (STORES key)
  name: str                           # "<dataset>/<split>", for messages
  film_ids: list[str]                 # per film (FilmStore) or per clip (ClipStore)
  metadata: dict                      # the dataset's recorded metadata

  @classmethod
  def load(cls, config: ml_collections.ConfigDict, split: str, streams: Sequence[str],
           task) -> "Store":
    """One split of the configured dataset as this unit's store."""

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict, task) -> None:
    """ConfigError for config keys or a task this unit cannot serve (before anything is read)."""

  @property
  def feature_manifest(self) -> dict | None: ...
  def feature_dims(self) -> dict: ...
  def feature_stats(self) -> dict[str, dict[str, np.ndarray]]: ...
  def standardize(self, stats: dict[str, dict[str, np.ndarray]]) -> None: ...
  def subset(self, rows: Sequence[int], name: str) -> "Store": ...

  @classmethod
  def concat(cls, stores: Sequence["Store"], name: str) -> "Store":
    """One store of the units of several stores of this class, in order (a phase training on
    several splits, `Phase.train_splits`); they share one standardisation."""

  def check_window(self, window: Mapping, clip_seconds: int, what: str) -> None:
    """ConfigError when a phase / output's `window` has keys this unit does not read, bad values,
    or cannot be read from this store."""

  def examples_per_epoch(self, *, window: Mapping, clip_seconds: int, stride: int) -> int: ...

  def train_batches(self, *, window: Mapping, clip_seconds: int, batch_size: int, seed: int,
                    start_step: int = 0, stride: int = 1) -> Iterator[dict]:
    """Infinite shuffled training batches (each process reads its slice); batch k is the same
    whatever `start_step`."""

  def prediction_batches(self, output, *, clip_seconds: int, batch_size: int) -> Iterator[dict]:
    """Batches covering every unit of the split once, for `output`, padded to `batch_size`."""

  def collector(self, output, *, clip_seconds: int) -> "Collector":
    """Where the predictions of `prediction_batches` are put back per film / clip."""

  def finish(self, output, raw, *, clip_seconds: int):
    """Collected raw predictions -> the unit's predictions, after the output's post-processing."""

  def score(self, task, preds: Mapping) -> dict[str, dict]:
    """{target: flat metrics} (pooled and `film_<m>` means) of the split's predictions."""

  def label_constants(self, task) -> dict[str, dict[str, float]]:
    """On the training store: {target: {baseline: constant}}, the trivial predictions every
    evaluation is compared with (`baseline_constants`)."""

  def constant_prediction(self, task, target: str, value):
    """`value` predicted for every unit of the split, in the form `finish` returns (what
    `score_baselines` scores with `score`)."""

  def evaluation(self, task, preds: Mapping, constants: Mapping | None = None) -> dict:
    """The content of the split's metrics.json (without writing anything); with `constants`
    (the training store's `label_constants`), each target also holds `baselines`: the metrics of
    each constant prediction on this split (`score_baselines`)."""

  def write_report(self, out_dir: pathlib.Path, task, preds: Mapping, plot: bool = True,
                   constants: Mapping | None = None) -> dict:
    """Writes metrics.json, the prediction CSV(s) and plots of a split; returns `evaluation`."""


class Collector(Protocol):
  def add(self, batch: dict, pred: np.ndarray) -> None: ...
  def result(self): ...


@dataclasses.dataclass(frozen=True)
class FilmWindow:
  """The keys of a Phase / Output `window` a FilmStore reads (all optional)."""
  num_clips: int = 1          # windows of L clips of config.data.clip_seconds (1: clip by clip)
  loss_on: str = "all"        # training: the loss on "all" valid clips of a window or on its
                              # "last" valid clip only (sequence-to-one, teacher-forced decoders)
  sliding_seconds: int = 0    # prediction, > 0: sequence-to-one over a window of this many
                              # seconds ending at every second of the film (left-padded and masked
                              # at the film's start; batch x: (B, 1, W, D)); the forward's (B, 1)
                              # output is that second's prediction (training reads num_clips)
  resolution: str = "clip"    # prediction: outputs per "clip" (B, L) or per "second" (B, L, S)

  @classmethod
  def of(cls, window: Mapping, what: str) -> "FilmWindow":
    """The window a method gave, checked (ConfigError naming the key and the fix)."""
    if not isinstance(window, Mapping):
      raise errors.ConfigError(f"{what}: window {window!r} is not a mapping; give e.g. "
                               "window={'num_clips': 4}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(window) - set(known))
    if unknown:
      raise errors.ConfigError(f"{what}: window key(s) {unknown} are not read by per-second data "
                               f"(FilmStore); use its keys {known}")
    w = cls(**window)
    count = lambda v, low: isinstance(v, int) and not isinstance(v, bool) and v >= low  # noqa: E731
    if not count(w.num_clips, 1):
      raise errors.ConfigError(f"{what}: window num_clips={w.num_clips!r}; use an integer >= 1")
    if not count(w.sliding_seconds, 0):
      raise errors.ConfigError(f"{what}: window sliding_seconds={w.sliding_seconds!r}; use an "
                               "integer >= 0 (0: windows of num_clips clips)")
    if w.loss_on not in ("all", "last"):
      raise errors.ConfigError(f"{what}: window loss_on={w.loss_on!r}; use 'all' or 'last'")
    if w.resolution not in ("clip", "second"):
      raise errors.ConfigError(f"{what}: window resolution={w.resolution!r}; use 'clip' or "
                               "'second'")
    return w


@dataclasses.dataclass
class FilmStore:
  """The films of one split, in memory: per-second streams and labels, all of equal length."""
  name: str                                  # "<dataset>/<split>", for messages
  film_ids: list[str]
  streams: dict[str, list[np.ndarray]]       # modality -> per film (T, D) float32
  labels: dict[str, list[np.ndarray]]        # target -> per film (T,) float32
  metadata: dict = dataclasses.field(default_factory=dict)  # the dataset's recorded metadata
  unit: ClassVar[str] = "second"
  description: ClassVar[str] = "per-second (one example per film)"

  @staticmethod
  def reads(features: Sequence[str]) -> bool:
    """Per-second datasets: the layout of every dataset no other store claims (dataset_unit)."""
    return True

  def subset(self, rows: Sequence[int], name: str) -> "FilmStore":
    return FilmStore(name, [self.film_ids[i] for i in rows],
                     {m: [v[i] for i in rows] for m, v in self.streams.items()},
                     {t: [v[i] for i in rows] for t, v in self.labels.items()},
                     dict(self.metadata))

  @classmethod
  def concat(cls, stores: Sequence["FilmStore"], name: str) -> "FilmStore":
    first = stores[0]
    return FilmStore(name, [f for st in stores for f in st.film_ids],
                     {m: [x for st in stores for x in st.streams[m]] for m in first.streams},
                     {t: [y for st in stores for y in st.labels[t]] for t in first.labels},
                     dict(first.metadata))

  @property
  def lengths(self) -> np.ndarray:
    return np.array([len(x) for x in next(iter(self.streams.values()))], np.int64)

  @property
  def feature_manifest(self) -> dict | None:
    """The manifest of the extractors that produced the streams, when the dataset records one."""
    return self.metadata.get("feature_manifest") or None

  def feature_stats(self) -> dict[str, dict[str, np.ndarray]]:
    """Per-stream mean and std over every second of every film (float64 accumulation)."""
    stats = {}
    for m, films in self.streams.items():
      n = sum(len(x) for x in films)
      mean = sum(x.sum(0, dtype=np.float64) for x in films) / n
      var = sum(((x - mean) ** 2).sum(0) for x in films) / n
      stats[m] = {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}
    return stats

  def standardize(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
    """(x - mean) / std per feature with the training split's statistics, in place."""
    for m, films in self.streams.items():
      if m not in stats:
        raise errors.DataError(f"no feature statistics for stream {m!r} in the run")
      mean, std = np.asarray(stats[m]["mean"]), np.maximum(np.asarray(stats[m]["std"]), 1e-6)
      if mean.shape[-1] != films[0].shape[-1]:
        raise errors.DataError(
            f"stream {m!r} of {self.name} has {films[0].shape[-1]} features per second but the "
            f"model was trained on {mean.shape[-1]}; use the features it was trained on")
      self.streams[m] = [((x - mean) / std).astype(np.float32) for x in films]

  def feature_dims(self) -> dict[str, int]:
    return {m: int(v[0].shape[-1]) for m, v in self.streams.items()}

  def film(self, i: int) -> dict[str, np.ndarray]:
    out = {m: v[i] for m, v in self.streams.items()}
    out.update({t: v[i] for t, v in self.labels.items()})
    return out

  # The Store protocol --------------------------------------------------------------------------
  @classmethod
  def load(cls, config: ml_collections.ConfigDict, split: str, streams: Sequence[str],
           task) -> "FilmStore":
    return load_split(config, split, streams, task.targets)

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict, task) -> None:
    v = config.data.clip_seconds
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise errors.ConfigError(f"config.data.clip_seconds={v!r}: must be a positive integer")
    if task.kind == "classification":
      raise errors.ConfigError(
          f"method {config.method!r} classifies, which needs a per-clip dataset (one example per "
          f"clip); config.dataset.name={config.dataset.name!r} is read per second")

  def check_window(self, window: Mapping, clip_seconds: int, what: str) -> None:
    """The window's keys (`FilmWindow`); a window longer than every film would train on padding
    only."""
    num_clips = FilmWindow.of(window, what).num_clips
    need = num_clips * clip_seconds
    longest = int(max(self.lengths))
    if need > longest:
      raise errors.ConfigError(
          f"{what} reads windows of {num_clips} clips x {clip_seconds} s = {need} s, longer than "
          f"every training film (longest {longest} s in {self.name}); lower the method's window "
          "length (num_clips) or config.data.clip_seconds")

  def examples_per_epoch(self, *, window: Mapping, clip_seconds: int, stride: int) -> int:
    return len(window_index(self, clip_seconds, FilmWindow.of(window, "a phase").num_clips,
                            stride))

  def train_batches(self, *, window: Mapping, clip_seconds: int, batch_size: int, seed: int,
                    start_step: int = 0, stride: int = 1) -> Iterator[dict]:
    w = FilmWindow.of(window, "a phase")
    return train_batches(self, clip_seconds=clip_seconds, num_clips_per_window=w.num_clips,
                         batch_size=batch_size, seed=seed, start_step=start_step, stride=stride,
                         loss_on_last=w.loss_on == "last")

  def prediction_batches(self, output, *, clip_seconds: int, batch_size: int) -> Iterator[dict]:
    """Sequence-to-one windows (window `sliding_seconds`), else non-overlapping windows of
    `num_clips` clips."""
    w = FilmWindow.of(output.window, "an output")
    if w.sliding_seconds:
      return sliding_batches(self, window_seconds=w.sliding_seconds, batch_size=batch_size)
    return eval_batches(self, clip_seconds=clip_seconds, num_clips_per_window=w.num_clips,
                        batch_size=batch_size)

  def collector(self, output, *, clip_seconds: int) -> "FilmCollector":
    return FilmCollector(self, output, clip_seconds)

  def finish(self, output, raw: list[np.ndarray], *, clip_seconds: int) -> list[np.ndarray]:
    """Per film, per-second predictions (T,) after the output's post-processing (clip
    predictions are post-processed per clip, then repeated over their seconds)."""
    w = FilmWindow.of(output.window, "an output")
    res = []
    for r, t in zip(raw, self.lengths):
      r = output.postprocess(r) if output.postprocess is not None else r
      res.append(r if w.resolution == "second" or w.sliding_seconds
                 else postprocess.repeat_to_seconds(r, int(t), clip_seconds))
    return res

  def score(self, task, preds: Mapping) -> dict[str, dict]:
    return {t: metrics.film_metrics(self.labels[t], preds[t], self.film_ids) for t in preds}

  def label_constants(self, task) -> dict[str, dict[str, float]]:
    return baseline_constants(task, {t: np.concatenate(self.labels[t]) for t in task.targets})

  def _films_for_report(self, preds: Mapping) -> dict:
    return {fid: {t: (self.labels[t][i], preds[t][i]) for t in preds}
            for i, fid in enumerate(self.film_ids)}

  def constant_prediction(self, task, target: str, value) -> list[np.ndarray]:
    """`value` at every second of every film (a trivial baseline's predictions)."""
    return [np.full(len(y), value, np.float32) for y in self.labels[target]]

  def _baselines(self, task, preds: Mapping, constants: Mapping | None) -> dict | None:
    return score_baselines(task, self, constants, preds) if constants else None

  def evaluation(self, task, preds: Mapping, constants: Mapping | None = None) -> dict:
    return with_baselines(metrics.evaluate_films(self._films_for_report(preds)),
                          self._baselines(task, preds, constants))

  def write_report(self, out_dir: pathlib.Path, task, preds: Mapping, plot: bool = True,
                   constants: Mapping | None = None) -> dict:
    """metrics.json, predictions/<film>.csv and plots/<film>.png (emojax/reporting.py)."""
    return reporting.write_eval_outputs(out_dir, self._films_for_report(preds), plot=plot,
                                        baselines=self._baselines(task, preds, constants))


  @classmethod
  def from_examples(cls, name: str, examples: Sequence[dict], modalities: Sequence[str],
                    targets: Sequence[str]) -> "FilmStore":
    film_ids, streams, labels = [], {m: [] for m in modalities}, {t: [] for t in targets}
    for ex in examples:
      fid = ex["film_id"]
      fid = fid.decode() if isinstance(fid, bytes) else str(fid)
      where = f"film {fid!r} of {name}"
      for key in (*modalities, *targets):
        if key not in ex:
          raise errors.DataError(
              f"{where} has no stream {key!r} (it has {sorted(ex)}); fix config.<task>.modalities "
              "or config.targets to name streams the dataset has")
      t_lens = {key: len(ex[key]) for key in (*modalities, *targets)}
      if len(set(t_lens.values())) > 1:
        raise errors.DataError(
            f"{where}: per-second label and feature lengths differ {t_lens}; the dataset builder "
            "must truncate all streams of a film to the shortest (rebuild the dataset)")
      for key in (*modalities, *targets):
        arr = np.asarray(ex[key], np.float32)
        if not np.all(np.isfinite(arr)):
          bad = np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0, 0]
          raise errors.DataError(
              f"{where}: stream {key!r} has NaN/Inf values (first at second {bad}); repair or "
              "drop that film in the dataset builder")
        (streams[key] if key in streams else labels[key]).append(
            arr.reshape(len(arr), -1) if key in streams else arr)
      film_ids.append(fid)
    if not film_ids:
      raise errors.DataError(f"{name} has no films")
    return cls(name, film_ids, streams, labels)


class FilmCollector:
  """Predictions of a FilmStore's prediction batches put back per film: (C,) per clip, (T,) per
  second (window resolution "second", or sequence-to-one)."""

  def __init__(self, store: FilmStore, output, clip_seconds: int):
    w = FilmWindow.of(output.window, "an output")
    self.sliding = bool(w.sliding_seconds)
    self.per_second = w.resolution == "second"
    self.s = clip_seconds
    self.res = [np.zeros(int(t) if self.sliding or self.per_second else num_clips(int(t),
                                                                                  clip_seconds),
                         np.float32) for t in store.lengths]

  def add(self, batch: dict, pred: np.ndarray) -> None:
    clip_mask = np.asarray(batch["clip_mask"])
    if self.sliding:   # one clip per element: the prediction of second `clip_start`
      for b in np.flatnonzero(clip_mask[:, 0]):
        self.res[int(batch["film_index"][b])][int(batch["clip_start"][b])] = pred[b, 0]
      return
    seconds = np.asarray(_window_mask(batch)).sum(-1)                # (B, L) valid seconds
    for b, k in zip(*np.nonzero(clip_mask)):
      f, c = int(batch["film_index"][b]), int(batch["clip_start"][b]) + int(k)
      if self.per_second:
        n = int(seconds[b, k])
        self.res[f][c * self.s:c * self.s + n] = pred[b, k, :n]
      else:
        self.res[f][c] = pred[b, k]

  def result(self) -> list[np.ndarray]:
    return self.res


def _window_mask(batch: dict) -> np.ndarray:
  """The valid seconds (B, L, S) of a per-second window batch: every stream shares them."""
  return next(iter(batch["x_mask"].values()))


def load_split(config: ml_collections.ConfigDict, split: str, modalities: Sequence[str],
               targets: Sequence[str]) -> FilmStore:
  """Builds the dataset if needed and loads one split into memory."""
  d = config.dataset
  builder = _prepared_builder(config)
  source = _split_source(builder, split, d.name)
  groups = concat_groups(config)
  examples = (with_concatenated(source[i], groups, f"{d.name}/{split}")
              for i in range(len(source)))
  store = FilmStore.from_examples(f"{d.name}/{split}", examples, modalities, targets)
  store.metadata = dict(builder.info.metadata or {})
  return store


def _split_source(builder, split: str, name: str):
  """The data source of `split`: a split name, or TFDS split arithmetic over the split names
  (e.g. 'film_ABE+film_BMI', as `emojax.datasets.cognimuse.fold_splits` gives)."""
  names = sorted(builder.info.splits)
  if split in names:
    return builder.as_data_source(split=split)
  parts = [p.split("[")[0].strip() for p in split.split("+")]
  unknown = [p for p in parts if p not in names]
  if unknown:
    raise errors.ConfigError(
        f"dataset {name} has no split {unknown[0]!r} (in {split!r}; it has {names}); fix "
        "config.dataset.splits")
  try:
    return builder.as_data_source(split=split)
  except (ValueError, KeyError, AssertionError) as e:
    raise errors.ConfigError(f"dataset {name}: bad split {split!r} ({e}); fix "
                             "config.dataset.splits") from None


def concat_groups(config: ml_collections.ConfigDict) -> dict[str, tuple[str, ...]]:
  """`config.dataset.concat` as {modality: (stream, ...)}, checked.

  Raises:
    ConfigError: an entry is not (name, (stream, ...)), a name repeats, or a group is empty.
  """
  groups = {}
  for entry in config.dataset.get("concat", ()) or ():
    if (not isinstance(entry, (tuple, list)) or len(entry) != 2 or not isinstance(entry[0], str)
        or isinstance(entry[1], str) or not isinstance(entry[1], (tuple, list))):
      raise errors.ConfigError(
          f"config.dataset.concat entry {entry!r} is not (name, (stream, ...)); write e.g. "
          "(('colour', ('acc', 'cl', 'sc')),)")
    name, streams = entry[0], tuple(entry[1])
    if name in groups:
      raise errors.ConfigError(f"config.dataset.concat names {name!r} twice; give it one entry")
    if not streams:
      raise errors.ConfigError(f"config.dataset.concat entry {name!r} lists no streams")
    groups[name] = streams
  return groups


def with_concatenated(example: dict, groups: dict[str, tuple[str, ...]], where: str) -> dict:
  """`example` plus one stream per group: its streams concatenated along the feature axis.

  Raises:
    ConfigError: a group's name is already a stream of the dataset, or names a stream it lacks.
  """
  if not groups:
    return example
  out = dict(example)
  fid = example.get("film_id", b"?")
  fid = fid.decode() if isinstance(fid, bytes) else str(fid)
  for name, streams in groups.items():
    if name in example:
      raise errors.ConfigError(
          f"config.dataset.concat: {name!r} is already a stream of {where}; pick another name")
    missing = [s for s in streams if s not in example]
    if missing:
      raise errors.ConfigError(
          f"config.dataset.concat[{name!r}]: film {fid!r} of {where} has no stream(s) {missing} "
          f"(it has {sorted(example)}); fix the stream names")
    parts = [np.asarray(example[s], np.float32) for s in streams]
    parts = [p.reshape(len(p), -1) for p in parts]
    lengths = {s: len(p) for s, p in zip(streams, parts)}
    if len(set(lengths.values())) != 1:
      raise errors.DataError(
          f"film {fid!r} of {where}: streams of config.dataset.concat[{name!r}] differ in length "
          f"{lengths}; the dataset builder must truncate all streams of a film to the shortest "
          "(rebuild the dataset)")
    out[name] = np.concatenate(parts, axis=-1)
  return out


def num_clips(num_seconds: int, clip_seconds: int) -> int:
  return max(1, math.ceil(num_seconds / clip_seconds))


def window_index(store: FilmStore, clip_seconds: int, num_clips_per_window: int,
                 stride: int) -> np.ndarray:
  """(N, 2) int array of (film index, first clip) of every window."""
  rows = []
  for f, t in enumerate(store.lengths):
    c = num_clips(int(t), clip_seconds)
    last_start = max(c - num_clips_per_window, 0) if stride < num_clips_per_window else c - 1
    rows.extend((f, s) for s in range(0, last_start + 1, stride))
  return np.asarray(rows, np.int64).reshape(-1, 2)


class WindowMaker:
  """Turns (film, first clip) into one window element (numpy, masked at the film's end)."""

  def __init__(self, store: FilmStore, clip_seconds: int, num_clips_per_window: int,
               loss_on_last: bool = False):
    self.store, self.s, self.l = store, clip_seconds, num_clips_per_window
    self.loss_on_last = loss_on_last

  def __call__(self, row: np.ndarray) -> dict:
    f, c0 = int(row[0]), int(row[1])
    s, l = self.s, self.l
    t = int(self.store.lengths[f])
    first, last = c0 * s, min((c0 + l) * s, t)
    n = max(last - first, 0)
    second_mask = np.zeros(l * s, bool)
    second_mask[:n] = True
    out = {"x": {}, "y": {}}
    for m, films in self.store.streams.items():
      x = np.zeros((l * s, films[f].shape[-1]), np.float32)
      x[:n] = films[f][first:last]
      out["x"][m] = x.reshape(l, s, -1)
    second_mask = second_mask.reshape(l, s)
    count = second_mask.sum(-1)
    for k, films in self.store.labels.items():
      y = np.zeros(l * s, np.float32)
      y[:n] = films[f][first:last]
      out["y"][k] = (y.reshape(l, s).sum(-1) / np.maximum(count, 1)).astype(np.float32)
    out["x_mask"] = {m: second_mask for m in self.store.streams}
    out["clip_mask"] = count > 0
    if self.loss_on_last:   # the window's last valid clip (the batch's `loss_mask`)
      valid = np.flatnonzero(out["clip_mask"])
      out["loss_mask"] = np.arange(l) == (valid[-1] if valid.size else -1)
    out["film_index"] = np.int32(f)
    out["clip_start"] = np.int32(c0)
    return out


def train_batches(store: FilmStore, *, clip_seconds: int, num_clips_per_window: int,
                  batch_size: int, seed: int, start_step: int = 0,
                  stride: int = 1, loss_on_last: bool = False) -> Iterator[dict]:
  """Infinite, deterministically shuffled batches; batch k is the same whatever `start_step`.
  `loss_on_last`: each window's `loss_mask` marks its last valid clip only.

  Each process reads its own slice of every global batch, so batches are sharded over hosts.
  """
  rows = window_index(store, clip_seconds, num_clips_per_window, stride)
  n_proc, proc = jax.process_count(), jax.process_index()
  if batch_size % n_proc:
    raise errors.ConfigError(f"batch_size {batch_size} is not divisible by {n_proc} processes")
  local = batch_size // n_proc
  ds = (grain.MapDataset.source(rows).shuffle(seed=seed).repeat()
        .batch(batch_size, drop_remainder=True)
        .map(lambda b: b[proc * local:(proc + 1) * local]))
  maker = WindowMaker(store, clip_seconds, num_clips_per_window, loss_on_last)
  ds = ds.slice(slice(start_step, None)).map(lambda rows_b: _stack([maker(r) for r in rows_b]))
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
  return iter(it)


def eval_batches(store: FilmStore, *, clip_seconds: int, num_clips_per_window: int,
                 batch_size: int) -> Iterator[dict]:
  """Non-overlapping windows covering every second of every film, padded to full batches."""
  rows = window_index(store, clip_seconds, num_clips_per_window, num_clips_per_window)
  maker = WindowMaker(store, clip_seconds, num_clips_per_window)
  for i in range(0, len(rows), batch_size):
    elems = [maker(r) for r in rows[i:i + batch_size]]
    pad = batch_size - len(elems)
    if pad:
      blank = jax.tree.map(np.zeros_like, elems[0])
      elems += [blank] * pad
    yield _stack(elems)


def sliding_batches(store: FilmStore, *, window_seconds: int,
                    batch_size: int) -> Iterator[dict]:
  """Sequence-to-one windows: for every second t of every film, the `window_seconds` seconds
  ending at t, right-aligned and masked where they would start before the film (L = 1 clip of
  W seconds: x (B, 1, W, D)). `clip_start` holds t. Padded to full batches (mask False)."""
  w = window_seconds
  rows = [(f, t) for f, n in enumerate(store.lengths) for t in range(int(n))]

  def element(f: int, t: int) -> dict:
    first = max(0, t - w + 1)
    n = t + 1 - first
    mask = np.zeros(w, bool)
    mask[w - n:] = True
    out = {"x": {}, "y": {}}
    for m, films in store.streams.items():
      x = np.zeros((w, films[f].shape[-1]), np.float32)
      x[w - n:] = films[f][first:t + 1]
      out["x"][m] = x[None]
    for k, films in store.labels.items():
      out["y"][k] = np.asarray([films[f][t]], np.float32)
    out.update(x_mask={m: mask[None] for m in store.streams}, clip_mask=np.ones(1, bool),
               film_index=np.int32(f), clip_start=np.int32(t))
    return out
  for i in range(0, len(rows), batch_size):
    elems = [element(*r) for r in rows[i:i + batch_size]]
    pad = batch_size - len(elems)
    if pad:
      blank = jax.tree.map(np.zeros_like, elems[0])
      elems += [blank] * pad
    yield _stack(elems)


def _stack(elems: list[dict]) -> dict:
  return jax.tree.map(lambda *xs: np.stack(xs), *elems)


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over all devices (all hosts)."""
  return jax.make_mesh((jax.device_count(),), ("data",))


def shard_batch(batch: dict, mesh: jax.sharding.Mesh) -> dict:
  """Local numpy batch -> global jax arrays sharded along the batch axis over the mesh."""
  sharding = NamedSharding(mesh, P("data"))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


# ----------------------------------------------------------------------------------------------
# A run's splits.


def load_stores(config: ml_collections.ConfigDict, task, streams,
                splits=("train", "validation", "test")) -> tuple[dict, list[str]]:
  """The run's splits as FilmStores (per-second datasets) or ClipStores (per-clip datasets).

  When the dataset has no validation split, a seeded share of the training films
  (`config.data.holdout_fraction`) is held out as "validation" (never the test split).
  Returns (stores, held-out film ids).
  """
  unit = dataset_unit(dataset_features(config))
  if unit != task.unit:
    raise errors.ConfigError(
        f"method {config.method!r} trains on {task.unit} units but dataset "
        f"{config.dataset.name!r} (config.dataset.name) is {STORES[unit].description}; pick a dataset of "
        "its unit")
  cls = store_class(unit)
  names = config.dataset.splits
  need = list(splits)
  holdout = not names.validation and "validation" in need
  if holdout and "train" not in need:
    need.append("train")
  stores = {}
  for k in need:
    split = getattr(names, k)
    if not split:
      continue
    stores[k] = cls.load(config, split, streams, task)
  for store in stores.values():
    if store.feature_manifest:   # features of an older extractor version are refused
      manifest.check_current(store.feature_manifest, what=f"dataset {store.name}")
  held = []
  if holdout:
    held = holdout_films(stores["train"].film_ids,
                                        config.data.holdout_fraction, config.seed)
    stores["train"], stores["validation"] = split_store(stores["train"], held)
    if "train" not in splits:
      del stores["train"]
  return {k: stores[k] for k in ("train", "validation", "test") if k in stores}, held


def training_labels(config: ml_collections.ConfigDict, task):
  """The run's training store read without feature streams (labels only, for the trivial
  baselines of an evaluation): the training split less its held-out validation films (a dataset
  without a validation split) and, with `config.data.fraction` < 1, its trained share: the films
  `Trainer` trained on."""
  store = store_class(task.unit).load(config, config.dataset.splits.train, (), task)
  if not config.dataset.splits.validation:
    store, _ = split_store(store, holdout_films(store.film_ids, config.data.holdout_fraction,
                                                config.seed))
  store, _ = train_fraction(store, float(config.data.get("fraction", 1.0)), config.seed)
  return store


# ----------------------------------------------------------------------------------------------
# Held-out validation films (datasets without a validation split).


def holdout_films(film_ids: Sequence[str], fraction: float, seed: int) -> list[str]:
  """A seeded share of the distinct films of `film_ids` (at least one, never all)."""
  films = sorted(dict.fromkeys(film_ids))
  if len(films) < 2:
    raise errors.DataError(
        f"the training split has {len(films)} film(s): too few to hold some out for validation; "
        "give the dataset a validation split (config.dataset.splits.validation)")
  if not 0 < fraction < 1:
    raise errors.ConfigError(f"config.data.holdout_fraction={fraction}: must be in (0, 1)")
  n = min(max(1, round(fraction * len(films))), len(films) - 1)
  rng = np.random.default_rng(seed)
  return sorted(films[i] for i in rng.permutation(len(films))[:n])


def fraction_films(film_ids: Sequence[str], fraction: float, seed: int) -> list[str]:
  """The films trained on with `config.data.fraction` < 1: of the F distinct films of `film_ids`
  (sorted), the first max(1, floor(fraction * F + 0.5)) of the permutation drawn by
  `np.random.default_rng((seed, 1))` (another draw than `holdout_films`), sorted."""
  films = sorted(dict.fromkeys(film_ids))
  n = max(1, int(np.floor(fraction * len(films) + 0.5)))
  rng = np.random.default_rng((seed, 1))
  return sorted(films[i] for i in rng.permutation(len(films))[:n])


def train_fraction(store, fraction: float, seed: int):
  """(the store's clips / films of a seeded share of its films, those films) for
  `config.data.fraction`; 1.0 = (the store, [])."""
  if not 0 < fraction <= 1:
    raise errors.ConfigError(f"config.data.fraction={fraction}: the share of the training films "
                             "trained on must be in (0, 1]")
  if fraction == 1:
    return store, []
  kept = fraction_films(store.film_ids, fraction, seed)
  keep = set(kept)
  return store.subset([i for i, f in enumerate(store.film_ids) if f in keep], store.name), kept


def split_store(store, held: Sequence[str]):
  """(train part, held-out part) of a FilmStore or ClipStore, by film."""
  held = set(held)
  keep = [i for i, f in enumerate(store.film_ids) if f not in held]
  out = [i for i, f in enumerate(store.film_ids) if f in held]
  return store.subset(keep, store.name), store.subset(out, f"{store.name} (held out)")


# ----------------------------------------------------------------------------------------------
# Per-clip datasets: one example per clip, streamed from the TFDS data source.


def is_clip_dataset(features: Sequence[str]) -> bool:
  """Per-clip datasets name each example's clip (`clip_id`); per-second ones do not."""
  return "clip_id" in features


def dataset_unit(features: Sequence[str]) -> str:
  """The data unit of a dataset from its features: the unit of the one registered store that
  `reads` them, other than the per-second FilmStore, which takes every layout no other claims."""
  claims = [u for u, cls in STORES.items() if u != FALLBACK_UNIT and cls.reads(features)]
  if len(claims) > 1:
    raise errors.DataError(f"dataset features {sorted(features)} are claimed by the stores of "
                           f"units {claims}; make their `reads` exclusive")
  return claims[0] if claims else FALLBACK_UNIT


class _ConcatSource:
  """Random access over several data sources in order (the rows of `ClipStore.concat`)."""

  def __init__(self, sources: Sequence[Any]):
    self.sources = list(sources)
    self.offsets = np.cumsum([0] + [len(s) for s in self.sources])[:-1].tolist()

  def __len__(self) -> int:
    return self.offsets[-1] + len(self.sources[-1])

  def __getitem__(self, i: int):
    k = int(np.searchsorted(self.offsets, i, side="right")) - 1
    return self.sources[k][i - self.offsets[k]]


@dataclasses.dataclass
class ClipStore:
  """The clips of one split: labels and ids in memory, features read from `source` per batch.

  Streams stay in the dataset's dtype (uint8 images stay uint8; encoded images are decoded by the
  data source when a batch reads them), so memory does not grow with the number of clips.
  """
  name: str
  source: Any                                # random access: source[i] -> example dict
  rows: np.ndarray                           # the rows of `source` in this store
  clip_ids: list[str]
  film_ids: list[str]
  labels: dict[str, np.ndarray]              # label key -> (N,) float32 or int32
  streams: tuple[str, ...]
  shapes: dict[str, tuple[int, ...]]         # stream -> shape of one example
  metadata: dict = dataclasses.field(default_factory=dict)
  stats: dict = dataclasses.field(default_factory=dict)   # float streams: mean / std
  ragged: tuple[str, ...] = ()               # streams whose first axis varies between clips:
  #                                            zero-padded to shapes[s][0], x_mask[s] marks rows
  unit: ClassVar[str] = "clip"
  description: ClassVar[str] = "per-clip (one example per clip)"

  @staticmethod
  def reads(features: Sequence[str]) -> bool:
    """Per-clip datasets name each example's clip (`clip_id`)."""
    return is_clip_dataset(features)

  @property
  def feature_manifest(self) -> dict | None:
    return self.metadata.get("feature_manifest") or None

  def __len__(self) -> int:
    return len(self.rows)

  def feature_dims(self) -> dict[str, tuple[int, ...]]:
    return dict(self.shapes)

  def subset(self, rows: Sequence[int], name: str) -> "ClipStore":
    rows = list(rows)
    return ClipStore(name, self.source, self.rows[rows], [self.clip_ids[i] for i in rows],
                     [self.film_ids[i] for i in rows],
                     {k: v[rows] for k, v in self.labels.items()}, self.streams, self.shapes,
                     dict(self.metadata), dict(self.stats), self.ragged)

  @classmethod
  def concat(cls, stores: Sequence["ClipStore"], name: str) -> "ClipStore":
    first = stores[0]
    same = lambda a, b: a.keys() == b.keys() and all(  # noqa: E731
        np.array_equal(a[s][k], b[s][k]) for s in a for k in a[s])
    if any(st.streams != first.streams or not same(st.stats, first.stats) for st in stores):
      raise ValueError(f"{name}: the clip stores joined differ in streams or standardisation")
    source = _ConcatSource([st.source for st in stores])
    rows = np.concatenate([st.rows + off for st, off in zip(stores, source.offsets)])
    shapes = {s: max((st.shapes[s] for st in stores), key=lambda shp: shp[:1])
              for s in first.streams}
    ragged = tuple(s for s in first.streams
                   if any(s in st.ragged or st.shapes[s] != shapes[s] for st in stores))
    return ClipStore(name, source, rows, [c for st in stores for c in st.clip_ids],
                     [f for st in stores for f in st.film_ids],
                     {k: np.concatenate([st.labels[k] for st in stores]) for k in first.labels},
                     first.streams, shapes, dict(first.metadata), dict(first.stats), ragged)

  # The Store protocol --------------------------------------------------------------------------
  @classmethod
  def load(cls, config: ml_collections.ConfigDict, split: str, streams: Sequence[str],
           task) -> "ClipStore":
    return load_clip_split(config, split, streams, [task.label_key(t) for t in task.targets])

  @classmethod
  def check_config(cls, config: ml_collections.ConfigDict, task) -> None:
    """Per-clip examples take any task (regression or classification); no clip length."""

  def check_window(self, window: Mapping, clip_seconds: int, what: str) -> None:
    """One example a clip, no windows: a method's window (if any) lies inside the example, so a
    Phase / Output of a per-clip task gives no `window` keys."""
    if window:
      raise errors.ConfigError(
          f"{what}: window {dict(window) if isinstance(window, Mapping) else window!r} is for "
          "per-second films, but per-clip data (unit 'clip') is read one example a clip; drop "
          "the window of the method's Phase / Output")

  def examples_per_epoch(self, **unused) -> int:
    return len(self)

  def train_batches(self, *, batch_size: int, seed: int, start_step: int = 0,
                    window: Mapping | None = None, **unused) -> Iterator[dict]:
    self.check_window(window or {}, 0, "a phase")
    return clip_train_batches(self, batch_size=batch_size, seed=seed, start_step=start_step)

  def prediction_batches(self, output, *, batch_size: int, **unused) -> Iterator[dict]:
    self.check_window(output.window, 0, "an output")
    return clip_eval_batches(self, batch_size=batch_size)

  def collector(self, output, **unused) -> "ClipCollector":
    return ClipCollector()

  def finish(self, output, raw: np.ndarray, **unused) -> np.ndarray:
    """(N,) values or (N, C) class probabilities, one row per clip, post-processed."""
    return output.postprocess(raw) if output.postprocess is not None else raw

  def _metrics(self, task, target: str, pred) -> dict:
    return metrics.clip_metrics(task.kind, self.labels[task.label_key(target)], np.asarray(pred),
                                self.film_ids)

  def score(self, task, preds: Mapping) -> dict[str, dict]:
    return {t: self._metrics(task, t, p) for t, p in preds.items()}

  def label_constants(self, task) -> dict[str, dict[str, float]]:
    return baseline_constants(task, {t: self.labels[task.label_key(t)] for t in task.targets})

  def constant_prediction(self, task, target: str, value) -> np.ndarray:
    """`value` for every clip: (N,) values, or (N, C) probabilities all on class `value`."""
    n = len(self.labels[task.label_key(target)])
    if task.kind == "classification":
      return np.tile(np.eye(task.num_classes, dtype=np.float32)[int(value)], (n, 1))
    return np.full(n, value, np.float32)

  def evaluation(self, task, preds: Mapping, constants: Mapping | None = None) -> dict:
    result = {t: self._metrics(task, t, preds[t]) for t in metrics.ordered_dims(preds)}
    return with_baselines(result, score_baselines(task, self, constants, preds)
                          if constants else None)

  def write_report(self, out_dir: pathlib.Path, task, preds: Mapping, plot: bool = True,
                   constants: Mapping | None = None) -> dict:
    """metrics.json, predictions.csv (`clip,film,<dim>_true,<dim>_pred[,<dim>_p<c>...]`) and
    plots (reporting.write_clip_plots): plots/confusion_<dim>.png with the classes by name
    (classification), plots/scatter_<dim>.png (regression)."""
    out_dir = pathlib.Path(out_dir)
    result = self.evaluation(task, preds, constants)
    header, cols = ["clip", "film"], [list(self.clip_ids), list(self.film_ids)]
    for t, m in result.items():
      true, pred = self.labels[task.label_key(t)], np.asarray(preds[t])
      if plot:
        reporting.write_clip_plots(out_dir / "plots", task.kind, t, true, pred, m, self.metadata)
      if task.kind == "classification":
        header += [f"{t}_true", f"{t}_pred"] + [f"{t}_p{c}" for c in range(pred.shape[-1])]
        cols += [[str(int(v)) for v in true], [str(int(v)) for v in pred.argmax(-1)]]
        cols += [[f"{v:.6g}" for v in pred[:, c]] for c in range(pred.shape[-1])]
      else:
        header += [f"{t}_true", f"{t}_pred"]
        cols += [[f"{v:.6g}" for v in true], [f"{v:.6g}" for v in pred]]
    lines = [",".join(header)] + [",".join(row) for row in zip(*cols)]
    fileio.atomic_write_text(out_dir / "predictions.csv", "\n".join(lines) + "\n")
    fileio.write_json(out_dir / "metrics.json", result)
    return result

  def _float_streams(self) -> list[str]:
    return [s for s in self.streams if self._dtype(s).kind == "f"]

  def _dtype(self, s: str) -> np.dtype:
    return decode_stream(self.source[int(self.rows[0])][s], s).dtype

  def feature_stats(self) -> dict[str, dict[str, np.ndarray]]:
    """Mean and std of every float stream over the store's clips (one streaming pass)."""
    acc = {}
    for r in self.rows:
      ex = self.source[int(r)]
      for s in self._float_streams():
        x = np.asarray(ex[s], np.float64).reshape(-1, self.shapes[s][-1] if self.shapes[s] else 1)
        a = acc.setdefault(s, [0, 0.0, 0.0])
        a[0] += len(x)
        a[1] = a[1] + x.sum(0)
        a[2] = a[2] + (x ** 2).sum(0)
    out = {}
    for s, (n, s1, s2) in acc.items():
      mean = s1 / n
      out[s] = {"mean": mean.astype(np.float32),
                "std": np.sqrt(np.maximum(s2 / n - mean ** 2, 0)).astype(np.float32)}
    return out

  def standardize(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
    for s in self._float_streams():
      if s not in stats:
        raise errors.DataError(f"no feature statistics for stream {s!r} in the run")
    self.stats = {s: stats[s] for s in self._float_streams()}

  def example(self, i: int) -> dict:
    """Row i as a batch element: streams (standardised float / raw uint8 / decoded images),
    labels, mask."""
    ex = self.source[int(self.rows[i])]
    x, x_mask = {}, {}
    for s in self.streams:
      a = decode_stream(ex[s], f"clip {self.clip_ids[i]!r} of {self.name}, stream {s!r}")
      if s in self.ragged:
        n = min(len(a), self.shapes[s][0])
        x_mask[s] = np.arange(self.shapes[s][0]) < n
        padded = np.zeros(self.shapes[s], a.dtype)
        padded[:n] = a[:n]
        a = padded
      if a.shape != self.shapes[s]:
        raise errors.DataError(
            f"clip {self.clip_ids[i]!r} of {self.name}: stream {s!r} has shape {a.shape}, the "
            f"others {self.shapes[s]}; the builder must store one shape per stream")
      if s in self.stats:
        a = ((a.astype(np.float32) - self.stats[s]["mean"])
             / np.maximum(self.stats[s]["std"], 1e-6)).astype(np.float32)
      if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise errors.DataError(f"clip {self.clip_ids[i]!r} of {self.name}: stream {s!r} has "
                               "NaN/Inf values; repair or drop that clip in the dataset builder")
      x[s] = a
    return {"x": x, "x_mask": x_mask, "y": {k: v[i] for k, v in self.labels.items()},
            "clip_mask": np.bool_(True), "index": np.int32(i)}

  def blank(self) -> dict:
    e = self.example(0)
    e = jax.tree.map(np.zeros_like, e)
    e["index"] = np.int32(-1)
    return e


class ClipCollector:
  """Predictions of a ClipStore's prediction batches, one row per clip in store order (padding
  rows, index -1, dropped)."""

  def __init__(self):
    self.rows = []

  def add(self, batch: dict, pred: np.ndarray) -> None:
    self.rows.append(pred[np.asarray(batch["index"]) >= 0])

  def result(self) -> np.ndarray:
    return np.concatenate(self.rows)


# The data units and their stores. A new unit (per frame, per shot ...) is a new Store class with
# `unit`, `description` and `reads(features)` (which dataset layouts it loads), registered here with
# `register_store`: the harness (train, inference, evaluate) and the contract's unit check read
# this table and nothing else (tests/test_input_pipeline.py registers a toy unit).
STORES: dict[str, type] = {}
FALLBACK_UNIT = "second"


def register_store(cls: type) -> type:
  """Adds a Store class for its `unit` (refused when the unit has one already)."""
  for k in ("unit", "description", "reads"):
    if not hasattr(cls, k):
      raise TypeError(f"{cls.__name__} lacks `{k}`: a store declares its unit, a description of "
                      "it and which dataset layouts it reads")
  if cls.unit in STORES and STORES[cls.unit] is not cls:
    raise ValueError(f"data unit {cls.unit!r} has a store already ({STORES[cls.unit].__name__})")
  STORES[cls.unit] = cls
  return cls


register_store(FilmStore)
register_store(ClipStore)


# ----------------------------------------------------------------------------------------------
# Trivial baselines: constant predictions from the training labels, scored like the model.

BASELINE_TITLES = {"zero": "predicting zero", "train_mean": "predicting the training mean",
                   "majority": "predicting the training majority class"}


def baseline_constants(task, labels: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
  """{target: {baseline: constant}} from the training split's labels (`labels`: target -> every
  label of the split, pooled): regression `zero` (0.0) and `train_mean` (the mean over every
  second / clip, float64); classification `majority` (the most frequent class; the lowest of
  tied ones)."""
  out = {}
  for t in task.targets:
    y = np.asarray(labels[t])
    if task.kind == "classification":
      counts = np.bincount(y.astype(np.int64).reshape(-1), minlength=task.num_classes)
      out[t] = {"majority": int(np.argmax(counts))}
    else:
      out[t] = {"zero": 0.0, "train_mean": float(np.mean(y, dtype=np.float64))}
  return out


def score_baselines(task, store, constants: Mapping, preds: Mapping) -> dict[str, dict]:
  """{target: {baseline: metrics}}: each constant of `constants` (a training store's
  `label_constants`) as the prediction for every unit of `store`, scored by `store.score` (the
  model's metrics; predicted in float32 like the model's values); `value` (regression) /
  `class` (classification) is the constant. PCC of a constant is undefined (NaN, written as
  null)."""
  out = {}
  for t in preds:
    if t not in constants:
      continue
    out[t] = {}
    for name, c in constants[t].items():
      m = store.score(task, {t: store.constant_prediction(task, t, c)})[t]
      row = {("class" if task.kind == "classification" else "value"): c}
      row.update({k: v for k, v in m.items() if isinstance(v, (int, float))
                  and not k.startswith("num_")})
      out[t][name] = row
  return out


def with_baselines(result: dict, baselines: Mapping | None) -> dict:
  """`result` (metrics.json content) with `baselines` added under each target's `baselines`."""
  for t, b in (baselines or {}).items():
    if t in result:
      result[t]["baselines"] = b
  return result


def store_class(unit: str) -> type:
  """The Store class of a data unit (a method's `Task.unit`)."""
  if unit not in STORES:
    raise errors.ConfigError(f"data unit {unit!r} (the method's Task.unit) has no store; known "
                             f"units: {sorted(STORES)} (emojax/input_pipeline.py STORES)")
  return STORES[unit]


def decode_stream(value, where: str) -> np.ndarray:
  """A stream's value as an array: encoded images (PNG / JPEG bytes, or an array of them, one per
  segment) are decoded to uint8 (H, W, C) / (N, H, W, C); anything else is returned as is."""
  a = np.asarray(value)
  if a.dtype.kind not in "OS":
    return a
  flat = [bytes(b) for b in a.reshape(-1)]
  try:
    imgs = [np.asarray(PIL.Image.open(io.BytesIO(b)).convert("RGB")) for b in flat]
  except (OSError, ValueError) as e:
    raise errors.DataError(f"{where}: an encoded image cannot be decoded ({e}); rebuild the "
                           "dataset or drop that clip") from None
  if len({im.shape for im in imgs}) > 1:
    raise errors.DataError(f"{where}: images of different sizes {sorted({im.shape for im in imgs})}")
  return np.stack(imgs).reshape(*a.shape, *imgs[0].shape)


def load_clip_split(config: ml_collections.ConfigDict, split: str, streams: Sequence[str],
                    label_keys: Sequence[str]) -> ClipStore:
  """A per-clip split: ids and labels read once, features left in the data source."""
  d = config.dataset
  builder = _prepared_builder(config)
  source = _split_source(builder, split, d.name)
  name = f"{d.name}/{split}"
  if not len(source):
    raise errors.DataError(f"{name} has no clips")
  first = source[0]
  missing = [k for k in (*streams, *label_keys) if k not in first]
  if missing:
    hint = ""
    if any(k.endswith("_class") for k in missing):
      hint = (" (a classification task reads '<target>_class' labels: use a regression loss, or a "
              "dataset with class labels)")
    raise errors.DataError(f"{name} has no stream/label {missing} (it has {sorted(first)}){hint}; "
                           "fix the method's streams or config.targets")
  clip_ids, film_ids, labels = [], [], {k: [] for k in label_keys}
  lengths = {s: set() for s in streams}
  for i in range(len(source)):
    ex = source[i]
    for s in streams:
      lengths[s].add(int(np.shape(ex[s])[0]) if np.ndim(ex[s]) else 0)
    cid = _text(ex.get("clip_id", i))
    clip_ids.append(cid)
    film_ids.append(_text(ex.get("film_id", cid)))
    for k in label_keys:
      v = np.asarray(ex[k])
      if v.dtype.kind == "f" and not np.isfinite(v):
        raise errors.DataError(f"clip {cid!r} of {name}: label {k!r} is {v}; repair or drop that "
                               "clip in the dataset builder")
      labels[k].append(v)
  labels = {k: np.asarray(v, np.int32 if k.endswith("_class") else np.float32)
            for k, v in labels.items()}
  shapes = {s: tuple(decode_stream(first[s], f"{name}, stream {s!r}").shape) for s in streams}
  # Streams whose first axis (segments, frames) varies between clips are padded to the longest.
  ragged = tuple(s for s in streams if len(lengths[s]) > 1)
  for s in ragged:
    shapes[s] = (max(lengths[s]),) + shapes[s][1:]
  store = ClipStore(name, source, np.arange(len(source)), clip_ids, film_ids, labels,
                    tuple(streams), shapes, dict(builder.info.metadata or {}), ragged=ragged)
  return store


def _text(v) -> str:
  return v.decode() if isinstance(v, (bytes, np.bytes_)) else str(v)


def _prepared_builder(config: ml_collections.ConfigDict):
  d = config.dataset
  if d.import_module:
    importlib.import_module(d.import_module)
  builder = datasets.get_builder(d.name, d.config or None, d.data_dir or None,
                                 **d.builder_kwargs.to_dict())
  distributed.main_first(lambda: datasets.prepare(builder, d.manual_dir or None),
                         f"prepare {d.name}")  # several processes: process 0 builds it
  return builder


def dataset_features(config: ml_collections.ConfigDict) -> list[str]:
  """The feature names of the configured dataset (built first when needed)."""
  return list(_prepared_builder(config).info.features.keys())


def clip_train_batches(store: ClipStore, *, batch_size: int, seed: int, start_step: int = 0,
                       **unused) -> Iterator[dict]:
  """Infinite shuffled batches of clips; batch k is the same whatever `start_step`."""
  del unused
  n_proc, proc = jax.process_count(), jax.process_index()
  if batch_size % n_proc:
    raise errors.ConfigError(f"batch_size {batch_size} is not divisible by {n_proc} processes")
  local = batch_size // n_proc
  ds = (grain.MapDataset.source(np.arange(len(store))).shuffle(seed=seed).repeat()
        .batch(batch_size, drop_remainder=True)
        .map(lambda b: b[proc * local:(proc + 1) * local]))
  ds = ds.slice(slice(start_step, None)).map(lambda rows: _stack([store.example(int(r))
                                                                   for r in rows]))
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)))


def clip_eval_batches(store: ClipStore, *, batch_size: int, **unused) -> Iterator[dict]:
  """Every clip once, in order, padded to full batches (padding: index -1, mask False)."""
  del unused
  ds = grain.MapDataset.source(np.arange(len(store))).batch(batch_size)
  blank = store.blank()

  def read(rows):
    elems = [store.example(int(r)) for r in rows]
    return _stack(elems + [blank] * (batch_size - len(elems)))
  yield from ds.map(read).to_iter_dataset(grain.ReadOptions(num_threads=2,
                                                            prefetch_buffer_size=2))


def window_store(name: str, film_id: str, windows: Sequence[dict], streams: Sequence[str],
                 shapes: Mapping[str, Sequence[int]], ragged: Sequence[str] = ()) -> ClipStore:
  """A ClipStore over windows cut from one film (predict mode: emojax.predict): `windows[k]` is
  window k's {stream: array}; no labels. Streams in `ragged` may hold fewer rows than `shapes`
  says (a film's shorter last window): zero-padded and marked in x_mask, as ragged clips are."""
  if not windows:
    raise errors.DataError(f"{name}: no windows to predict")
  return ClipStore(name, list(windows), np.arange(len(windows)),
                   [f"{film_id}_w{k:03d}" for k in range(len(windows))], [film_id] * len(windows),
                   {}, tuple(streams), {s: tuple(int(d) for d in shapes[s]) for s in streams},
                   ragged=tuple(ragged))
