"""The extraction engine every builder that reads videos goes through, and the `films` core.

The engine (`Engine`, `EngineBuilder`): a builder names its examples (`Item`: key, split, the
video its features come from or None, the builder's own data) and a picklable
`make_example(item, streams, meta) -> (example or None, problems)`; the engine then

1. extracts every video's features with `emojax.features.extract_film` (or an injected function of
   the same signature), videos in parallel over a process pool (`num_workers`, default one per
   core), each finished video cached atomically as `<data_dir>/<name>/extracted/<key>.npz`, where
   key = sha256(file bytes, feature manifest, missing-audio policy). A rerun of an interrupted
   build (kill -9 included), or a build of another split, config or version over the same videos,
   extracts only videos without a cache entry. Bad videos (the extractor raises `DataError`:
   corrupt, truncated, zero length, no video) are cached as `<key>.error.json` so reruns skip them
   without decoding again; the build leaves their examples out, reports them and keeps the rest.
2. builds each example from the cached streams with `make_example` and hands TFDS the examples;
   with `use_beam=True` the same two steps run as one Apache Beam transform per split
   (`film_beam`).

Workers are spawned (not forked: the parent may hold JAX threads), so a script that builds with
num_workers > 1 must guard its entry point with `if __name__ == "__main__":` (absl's app.run
scripts do). Each worker watches its parent (the sentinel `multiprocessing` gives a spawned
process) and exits at once when the parent dies, so a killed build leaves no extraction running.
A worker that dies hard (killed, out of memory) stops the build; rerun it to resume.
Each finished film prints one line: `[k/n films] <film>: extracted T s of film; X s of film per s
so far` (or cached / skipped and why).

The `films` core (`FilmBuilder`, used by `films` and `synthetic_films`): a builder names its films
(`FilmRecord`: id, media path, split, per-second labels) and the engine

- writes one example per film in the per-second format of docs/design.md, key = film id: one
  `Tensor((None, *row_shape))` per extractor (named after it), `valence`, `arousal` (and
  `valence_std` / `arousal_std` when the builder has them), all truncated to the shortest length;
- ends with a report (printed, and stored in the DatasetInfo metadata as `build_report`, next to
  `feature_manifest`): films written per split, films skipped and why, films without audio,
  seconds cut by truncation.

Films without an audio track, `missing_audio` policy:
  "skip" (default): the film is skipped and reported ("no audio track");
  "silence": its audio features are computed on silence (`extract_film(allow_missing_audio=True)`)
  and the film is listed under `no_audio` in the report.

`FilmBuilder` stores per-second extractors only (a per-clip extractor raises ConfigError); the
engine itself caches whatever arrays the extractor returns (per-clip rows, uint8 images, bytes).
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from emojax.errors import ConfigError
from emojax.errors import DataError

LABELS = ("valence", "arousal")
MISSING_AUDIO_POLICIES = ("skip", "silence")
_STREAM_PREFIX = "stream."
_BYTES_PREFIX = "bytes."


@dataclasses.dataclass(frozen=True)
class FilmRecord:
  """One film of a build: where it is, which split it goes to, its per-second labels."""
  film_id: str
  path: str
  split: str
  labels: Mapping[str, np.ndarray]  # 'valence', 'arousal' (and optional '*_std'): (T_labels,)


def default_extract_fn():
  from emojax.features import extract  # pylint: disable=g-import-not-at-top
  return extract.extract_film


def default_manifest_fn():
  from emojax.features import manifest  # pylint: disable=g-import-not-at-top
  return manifest.for_spec


def default_extractors() -> tuple[str, ...]:
  from emojax.features import extract  # pylint: disable=g-import-not-at-top
  return tuple(extract.DEFAULT)


def normalize_extractors(extractors: Sequence[str] | Mapping[str, Any] | str
                         ) -> dict[str, dict[str, Any]]:
  """Names or {name: params} (a ConfigDict too) -> {name: params} with plain dicts."""
  if isinstance(extractors, str):
    extractors = [extractors]
  if isinstance(extractors, Mapping) or hasattr(extractors, "to_dict"):
    items = extractors.to_dict() if hasattr(extractors, "to_dict") else extractors
    return {str(k): json.loads(json.dumps(dict(v or {}))) for k, v in items.items()}
  return {str(n): {} for n in extractors}


def _file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def cache_key(path: str, manifest: Mapping[str, Any], missing_audio: str) -> str:
  """sha256 over the film's bytes, the feature manifest and the missing-audio policy."""
  h = hashlib.sha256()
  h.update(_file_sha256(path).encode())
  h.update(json.dumps(manifest, sort_keys=True).encode())
  h.update(missing_audio.encode())
  return h.hexdigest()[:32]


def _atomic_write_bytes(path: pathlib.Path, write: Callable[[Any], None]) -> None:
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      write(f)
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


def _cache_arrays(name: str, a: Any) -> dict[str, np.ndarray]:
  """One stream as npz entries without pickles: numeric arrays as they are; object arrays of
  bytes (encoded images of per-clip extractors) as their concatenated bytes, lengths and shape."""
  a = np.asarray(a)
  if a.dtype != object:
    return {_STREAM_PREFIX + name: a}
  flat = a.ravel()
  if not all(isinstance(b, bytes) for b in flat):
    raise TypeError(f"stream {name!r}: an object array holds something other than bytes; "
                    "extractors return numeric arrays or arrays of bytes")
  return {f"{_BYTES_PREFIX}{name}.data": np.frombuffer(b"".join(flat), np.uint8),
          f"{_BYTES_PREFIX}{name}.lengths": np.array([len(b) for b in flat], np.int64),
          f"{_BYTES_PREFIX}{name}.shape": np.array(a.shape, np.int64)}


def _bytes_stream(z: Any, name: str) -> np.ndarray:
  data = z[f"{_BYTES_PREFIX}{name}.data"].tobytes()
  lengths = z[f"{_BYTES_PREFIX}{name}.lengths"].tolist()
  ends = np.cumsum(lengths, dtype=np.int64).tolist()
  out = np.empty(len(lengths), dtype=object)
  out[:] = [data[e - n:e] for e, n in zip(ends, lengths)]
  return out.reshape(tuple(z[f"{_BYTES_PREFIX}{name}.shape"].tolist()))


def load_cached(cache_path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Returns (streams, meta) of one cached film (bytes streams as object arrays of bytes)."""
  with np.load(cache_path, allow_pickle=False) as z:
    meta = json.loads(str(z["meta"]))
    streams = {k[len(_STREAM_PREFIX):]: z[k] for k in z.files if k.startswith(_STREAM_PREFIX)}
    for k in z.files:
      if k.startswith(_BYTES_PREFIX) and k.endswith(".shape"):
        name = k[len(_BYTES_PREFIX):-len(".shape")]
        streams[name] = _bytes_stream(z, name)
  return streams, meta


@dataclasses.dataclass(frozen=True)
class _Job:
  film_id: str
  path: str
  cache_dir: str
  extractors: dict[str, dict[str, Any]]
  manifest: dict[str, Any]
  fast: bool
  missing_audio: str


def _extract_one(job: _Job, extract_fn: Callable[..., Any]) -> dict[str, Any]:
  """Extracts one film into the cache (or finds it there); returns its outcome (JSON-able)."""
  out = {"film_id": job.film_id, "path": job.path}
  if not os.path.isfile(job.path):
    return {**out, "status": "skipped", "reason": "file not found", "cached": False}
  key = cache_key(job.path, job.manifest, job.missing_audio)
  cache = pathlib.Path(job.cache_dir)
  npz, err = cache / f"{key}.npz", cache / f"{key}.error.json"
  out["key"] = key
  if npz.exists():
    _, meta = load_cached(npz)
    return {**out, **meta, "status": "ok", "cache": str(npz), "cached": True}
  if err.exists():
    return {**out, **json.loads(err.read_text()), "status": "skipped", "cached": True}
  try:
    feats = extract_fn(job.path, job.extractors, fast=job.fast, progress=False,
                       allow_missing_audio=job.missing_audio == "silence")
  except DataError as e:
    reason = {"reason": str(e), "error": type(e).__name__}
    _atomic_write_bytes(err, lambda f: f.write(json.dumps(reason).encode()))
    return {**out, **reason, "status": "skipped", "cached": False}
  except Exception as e:
    e.add_note(f"while extracting film {job.film_id!r} ({job.path})")
    raise
  rows = {name: int(len(a)) for name, a in feats.streams.items()}
  meta = {"has_audio": bool(feats.has_audio), "num_seconds": int(feats.num_seconds),
          "duration_s": float(feats.duration_s), "rows": rows}
  arrays = {}
  for name, a in feats.streams.items():
    arrays.update(_cache_arrays(name, a))
  arrays["meta"] = np.array(json.dumps(meta))
  _atomic_write_bytes(npz, lambda f: np.savez(f, **arrays))
  return {**out, **meta, "status": "ok", "cache": str(npz), "cached": False}


def _remove_stale_temporaries(cache_dir: pathlib.Path) -> None:
  """Deletes the half-written `.<name>.tmp-<pid>` files of processes that no longer run (a
  killed build's); those of a running build sharing the cache are left alone."""
  for tmp in cache_dir.glob(".*.tmp-*"):
    pid = tmp.name.rpartition(".tmp-")[2]
    if not pid.isdigit():
      continue
    try:
      os.kill(int(pid), 0)
    except ProcessLookupError:
      tmp.unlink(missing_ok=True)
    except OSError:  # alive but not ours (PermissionError), or unknown: keep it
      pass


def _exit_with_parent() -> None:
  """Worker initializer: a thread that ends this process as soon as its parent dies.

  `multiprocessing` gives every spawned process a sentinel (a pipe on POSIX, a handle on
  Windows) that becomes ready when the parent exits, however it exits (kill -9 included).
  """
  parent = multiprocessing.parent_process()
  if parent is None or parent.sentinel is None:
    return

  def wait() -> None:
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)  # pylint: disable=protected-access  (no cleanup: the build is gone)

  threading.Thread(target=wait, name="exit-with-parent", daemon=True).start()


def worker_pool(num_workers: int) -> concurrent.futures.ProcessPoolExecutor:
  """A pool of `num_workers` spawned processes that exit when this process dies."""
  return concurrent.futures.ProcessPoolExecutor(
      num_workers, mp_context=multiprocessing.get_context("spawn"),
      initializer=_exit_with_parent)


def extract_films(films: Sequence[tuple[str, str]], *, cache_dir: str | os.PathLike,
                  extractors: Mapping[str, dict[str, Any]], manifest: Mapping[str, Any],
                  fast: bool = False, missing_audio: str = "skip",
                  extract_fn: Callable[..., Any] | None = None,
                  num_workers: int | None = None) -> dict[str, dict[str, Any]]:
  """Extracts (film_id, path) films into `cache_dir`, in parallel; returns outcomes by film id.

  num_workers: processes (spawned, so the parent may hold JAX); None = one per core; 0 = run in
  this process. A `DataError` skips the film (outcome status 'skipped' and a reason); any other
  exception stops the build (finished films stay cached) and names the film.
  """
  if missing_audio not in MISSING_AUDIO_POLICIES:
    raise ConfigError(f"missing_audio must be one of {MISSING_AUDIO_POLICIES}, got "
                      f"{missing_audio!r}")
  extract_fn = extract_fn or default_extract_fn()
  cache_dir = pathlib.Path(cache_dir)
  cache_dir.mkdir(parents=True, exist_ok=True)
  _remove_stale_temporaries(cache_dir)
  jobs = [_Job(fid, os.fspath(path), os.fspath(cache_dir), dict(extractors), dict(manifest), fast,
               missing_audio) for fid, path in films]
  if num_workers is None:
    num_workers = os.cpu_count() or 1
  num_workers = min(num_workers, len(jobs))
  outcomes = {}
  progress = ExtractionProgress(len(jobs))
  if num_workers <= 1:
    for job in jobs:
      outcomes[job.film_id] = _extract_one(job, extract_fn)
      print(progress.line(outcomes[job.film_id]), flush=True)
    return outcomes
  with worker_pool(num_workers) as pool:
    futures = {pool.submit(_extract_one, job, extract_fn): job for job in jobs}
    try:
      for future in concurrent.futures.as_completed(futures):
        outcome = future.result()
        outcomes[outcome["film_id"]] = outcome
        print(progress.line(outcome), flush=True)
    except BaseException:
      pool.shutdown(wait=True, cancel_futures=True)
      raise
  return {job.film_id: outcomes[job.film_id] for job in jobs}


class ExtractionProgress:
  """One line per finished film: `[k/n films]`, what happened to it, and the extraction speed so
  far in seconds of film per second of wall time (films extracted in this build only; cached
  ones cost nothing), so a build of long films shows where it is instead of nothing."""

  def __init__(self, total: int):
    self.total, self.done, self.seconds = total, 0, 0.0
    self.t0 = time.time()

  def line(self, outcome: Mapping[str, Any]) -> str:
    self.done += 1
    head = f"   [{self.done}/{self.total} films] {outcome['film_id']}: "
    if outcome["status"] != "ok":
      return head + f"skipped ({outcome['reason']})"
    if outcome.get("cached"):
      return head + f"cached ({outcome['num_seconds']} s of film)"
    self.seconds += float(outcome["num_seconds"])
    speed = self.seconds / max(time.time() - self.t0, 1e-9)
    return head + (f"extracted {outcome['num_seconds']} s of film; {speed:.1f} s of film per s "
                   "so far")


# ---------------------------------------------------------------------------------------------
# The engine: items -> cached extraction -> examples, in a process pool or in Beam.


@dataclasses.dataclass(frozen=True)
class Item:
  """One example a builder writes.

  Attributes:
    key: the example key (film or clip id); also names the video in outcomes and reports.
    split: the split it goes to.
    path: the video its features are extracted from; None for a labels-only example.
    data: whatever the builder's `make_example` needs (labels, ...); picklable for Beam.
  """
  key: str
  split: str
  path: str | None = None
  data: Any = None


# make_example(item, streams or None, cached meta or None) -> (example or None, problems): the
# example dict to write (None: leave it out) and what to report about it (builder-defined).
MakeExample = Callable[[Item, Mapping[str, np.ndarray] | None, Mapping[str, Any] | None],
                       tuple[dict[str, Any] | None, list[Any]]]


def _not_extracted(path, *args, **kwargs):
  del args, kwargs
  raise RuntimeError(f"{path} was not extracted by the Beam pipeline (a worker failed?); "
                     "rerun the build")


@dataclasses.dataclass(frozen=True)
class Engine:
  """How a build extracts its videos (picklable: Beam workers get a copy)."""
  cache_dir: str
  extractors: dict[str, dict[str, Any]]
  manifest: dict[str, Any]
  fast: bool = False
  missing_audio: str = "skip"
  extract_fn: Callable[..., Any] | None = None
  num_workers: int | None = None

  def _videos(self, items: Sequence[Item]) -> list[tuple[str, str]]:
    """(key, path) of every item with a video, each key once (one key, one video)."""
    seen: dict[str, str] = {}
    for item in items:
      if item.path is None:
        continue
      path = os.fspath(item.path)
      if seen.setdefault(item.key, path) != path:
        raise DataError(f"two videos share the key {item.key!r}: {seen[item.key]} and {path}; "
                        "keys (file names without extension) must be unique: rename one")
    return list(seen.items())

  def extract(self, items: Sequence[Item]) -> dict[str, dict[str, Any]]:
    """Extracts (or finds cached) every item's video; outcomes by key (see `extract_films`)."""
    videos = self._videos(items)
    if not videos:
      return {}
    return extract_films(videos, cache_dir=self.cache_dir, extractors=self.extractors,
                         manifest=self.manifest, fast=self.fast,
                         missing_audio=self.missing_audio, extract_fn=self.extract_fn,
                         num_workers=self.num_workers)

  def cached(self, items: Sequence[Item]) -> dict[str, dict[str, Any]]:
    """The outcomes of videos extracted before (by a Beam pipeline); extracts nothing."""
    return dataclasses.replace(self, extract_fn=_not_extracted, num_workers=0).extract(items)

  def extract_one(self, item: Item) -> dict[str, Any] | None:
    """One item's outcome, extracting in this process (Beam workers)."""
    if item.path is None:
      return None
    job = _Job(item.key, os.fspath(item.path), self.cache_dir, dict(self.extractors),
               dict(self.manifest), self.fast, self.missing_audio)
    pathlib.Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
    return _extract_one(job, self.extract_fn or default_extract_fn())

  @staticmethod
  def example(item: Item, outcome: Mapping[str, Any] | None,
              make_example: MakeExample) -> tuple[dict[str, Any] | None, list[Any]]:
    """The item's example from its cached streams (None for a skipped video)."""
    if item.path is None:
      return make_example(item, None, None)
    if outcome is None or outcome["status"] != "ok":
      return None, []
    streams, meta = load_cached(outcome["cache"])
    return make_example(item, streams, meta)


class EngineBuilder(tfds.core.GeneratorBasedBuilder):
  """A TFDS builder whose examples come through the engine.

  Builder kwargs (also through `config.dataset.builder_kwargs`):
    num_workers: extraction processes; None = one per core, 0 = in this process.
    extract_fn: replaces `emojax.features.extract_film` (tests).
    use_beam: generate with Apache Beam (`emojax[beam]`); pass the runner through
      `tfds.download.DownloadConfig(beam_runner=...)` (default: DirectRunner).

  A subclass calls `_engine_splits(engine, items, make_example)` in `_split_generators` and
  overrides `_on_outcomes` (the videos are extracted: report the skipped ones) and `_on_example`
  (one example made: record its problems). With Beam both run after the pipeline, from the cache.
  """

  def __init__(self, *, num_workers: int | None = None,
               extract_fn: Callable[..., Any] | None = None, use_beam: bool = False, **kwargs):
    self._num_workers = num_workers
    self._extract_fn = extract_fn
    self._use_beam = bool(use_beam)
    self._beam_run = None
    kwargs.setdefault("file_format", "array_record")  # the harness reads array_record (grain)
    super().__init__(**kwargs)

  @property
  def cache_dir(self) -> pathlib.Path:
    """`<data_dir>/<name>/extracted`: per-video features, shared by versions and configs."""
    return pathlib.Path(os.fspath(self.data_dir_root)) / self.name / "extracted"

  def _engine(self, extractors: Mapping[str, Any] | Sequence[str], manifest: Mapping[str, Any],
              *, fast: bool = False, missing_audio: str = "skip") -> Engine:
    if missing_audio not in MISSING_AUDIO_POLICIES:
      raise ConfigError(f"missing_audio must be one of {MISSING_AUDIO_POLICIES}, got "
                        f"{missing_audio!r}")
    return Engine(cache_dir=str(self.cache_dir), extractors=normalize_extractors(extractors),
                  manifest=json.loads(json.dumps(manifest)), fast=bool(fast),
                  missing_audio=missing_audio, extract_fn=self._extract_fn,
                  num_workers=self._num_workers)

  def _engine_splits(self, engine: Engine, items: Sequence[Item],
                     make_example: MakeExample) -> dict[str, Any]:
    """{split: examples} of `items`, through the engine (a Beam transform with use_beam)."""
    items = list(items)
    if self._use_beam:
      from emojax.datasets import film_beam  # pylint: disable=g-import-not-at-top
      self._beam_run = (engine, items, make_example)
      return film_beam.split_transforms(engine, items, make_example)
    outcomes = engine.extract(items)
    self._on_outcomes(items, outcomes)
    splits = {}
    for split in dict.fromkeys(item.split for item in items):
      usable = [i for i in items if i.split == split and
                (i.path is None or outcomes[i.key]["status"] == "ok")]
      if usable:
        splits[split] = self._engine_examples(usable, outcomes, make_example)
    return splits

  def _engine_examples(self, items: Sequence[Item], outcomes: Mapping[str, Any],
                       make_example: MakeExample) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in items:
      example, problems = Engine.example(item, outcomes.get(item.key), make_example)
      self._on_example(item, example, problems)
      if example is not None:
        yield item.key, example

  def _download_and_prepare(self, dl_manager, download_config):  # pylint: disable=arguments-differ
    super()._download_and_prepare(dl_manager, download_config)
    if self._beam_run is not None:  # the pipeline has run: the same hooks, from the cache
      engine, items, make_example = self._beam_run
      outcomes = engine.cached(items)
      self._on_outcomes(items, outcomes)
      for item in items:
        outcome = outcomes.get(item.key)
        if item.path is None or outcome["status"] == "ok":
          self._on_example(item, *Engine.example(item, outcome, make_example))

  def _generate_examples(self, *args, **kwargs):  # pylint: disable=arguments-differ
    raise NotImplementedError("an EngineBuilder generates through _engine_splits")

  def _on_outcomes(self, items: Sequence[Item], outcomes: Mapping[str, Mapping[str, Any]]
                   ) -> None:
    """Every video is extracted or skipped (`outcomes` by key); before any example."""

  def _on_example(self, item: Item, example: Mapping[str, Any] | None,
                  problems: Sequence[Any]) -> None:
    """One item went through `make_example` (example None: left out)."""


def _label_length(record: FilmRecord) -> int:
  return min(len(record.labels[k]) for k in record.labels)


def build_report(records: Sequence[FilmRecord], outcomes: Mapping[str, Mapping[str, Any]],
                 pre_skipped: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
  """What was written, skipped (and why), truncated; JSON-able, for the DatasetInfo metadata."""
  written: dict[str, int] = {}
  skipped = [dict(s) for s in pre_skipped]
  truncated, no_audio = [], []
  for r in records:
    o = outcomes[r.film_id]
    if o["status"] != "ok":
      skipped.append({"film": r.film_id, "path": r.path, "split": r.split, "reason": o["reason"]})
      continue
    rows = o["rows"]
    n_labels = _label_length(r)
    kept = min([n_labels, *rows.values()])
    if kept < 1:
      skipped.append({"film": r.film_id, "path": r.path, "split": r.split,
                      "reason": f"no second left after truncation (features {rows}, labels "
                                f"{n_labels} s)"})
      continue
    written[r.split] = written.get(r.split, 0) + 1
    cut = {name: n - kept for name, n in {**rows, "labels": n_labels}.items() if n > kept}
    if cut:
      truncated.append({"film": r.film_id, "split": r.split, "kept_seconds": kept,
                        "feature_seconds": o["num_seconds"], "label_seconds": n_labels,
                        "cut_seconds": cut})
    if not o.get("has_audio", True):
      no_audio.append({"film": r.film_id, "split": r.split, "path": r.path})
  return {"films": len(records) + len(pre_skipped), "written": written,
          "skipped": skipped, "truncated": truncated, "no_audio": no_audio}


def format_report(name: str, report: Mapping[str, Any]) -> str:
  """The report as text, one line per problem film."""
  total_written = sum(report["written"].values())
  lines = [f"{name}: {total_written} of {report['films']} films written "
           f"({', '.join(f'{k}: {v}' for k, v in sorted(report['written'].items())) or 'none'})"]
  if report["skipped"]:
    lines.append(f"skipped {len(report['skipped'])}:")
    lines += [f"  {s['film']}: {s['reason']}" for s in report["skipped"]]
  if report["no_audio"]:
    lines.append(f"without audio (audio features computed on silence) {len(report['no_audio'])}:")
    lines += [f"  {s['film']} ({s['path']})" for s in report["no_audio"]]
  if report["truncated"]:
    lines.append(f"truncated {len(report['truncated'])}:")
    lines += [f"  {t['film']}: kept {t['kept_seconds']} s; seconds cut: "
              + ", ".join(f"{k} {v} s" for k, v in t["cut_seconds"].items())
              for t in report["truncated"]]
  return "\n".join(lines)


def film_example(record: FilmRecord, streams: Mapping[str, np.ndarray],
                 label_names: Sequence[str]) -> dict[str, Any]:
  """The per-second example of one film, every array truncated to the shortest length."""
  kept = min([_label_length(record), *(len(a) for a in streams.values())])
  example = {"film_id": record.film_id}
  example.update({name: a[:kept] for name, a in streams.items()})
  example.update({k: np.asarray(record.labels[k][:kept], np.float32) for k in label_names})
  return example


def feature_spec(manifest: Mapping[str, Any], label_names: Sequence[str]) -> dict[str, Any]:
  """TFDS features of the per-second film format for the manifest's extractors."""
  features: dict[str, Any] = {"film_id": tfds.features.Text()}
  for name, entry in manifest["extractors"].items():
    if entry.get("per", "second") != "second" or entry["dtype"] == "object":
      raise ConfigError(f"extractor {name!r} is per-{entry.get('per')} with dtype "
                        f"{entry['dtype']}; film datasets store per-second numeric streams only: "
                        "remove it from `extractors`")
    if name in ("film_id", *LABELS, "valence_std", "arousal_std"):
      raise ConfigError(f"extractor name {name!r} collides with a label field; rename it")
    features[name] = tfds.features.Tensor(shape=(None, *entry["shape"]),
                                          dtype=np.dtype(entry["dtype"]))
  for k in label_names:
    features[k] = tfds.features.Tensor(shape=(None,), dtype=np.float32)
  return features


def _film_example(item: Item, streams: Mapping[str, np.ndarray], meta: Mapping[str, Any], *,
                  label_names: Sequence[str]) -> tuple[dict[str, Any] | None, list[Any]]:
  """`make_example` of the films core: the per-second film (None when no second is left)."""
  del meta
  example = film_example(item.data, streams, label_names)
  return (example if len(example[label_names[0]]) >= 1 else None), []


class FilmBuilder(EngineBuilder, abc.ABC):
  """Base of the film builders: subclasses implement `_film_records`.

  Builder kwargs (also through `config.dataset.builder_kwargs`), besides the engine's
  (num_workers, extract_fn, use_beam: see `EngineBuilder`):
    extractors: extractor names, or {name: params}; default `emojax.features.DEFAULT`.
    fast: the extractor's fast decoding mode.
    missing_audio: "skip" (default) or "silence" (see the module docstring).
    manifest_fn: replaces `manifest.for_spec` (tests).
  """

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default", description="default parameters")]
  LABEL_NAMES: tuple[str, ...] = LABELS
  DESCRIPTION = ""

  def __init__(self, *, extractors: Sequence[str] | Mapping[str, Any] | None = None,
               fast: bool = False, missing_audio: str = "skip",
               manifest_fn: Callable[..., dict] | None = None, **kwargs):
    if missing_audio not in MISSING_AUDIO_POLICIES:
      raise ConfigError(f"missing_audio must be one of {MISSING_AUDIO_POLICIES}, got "
                        f"{missing_audio!r}")
    self._extractors = normalize_extractors(extractors if extractors is not None
                                            else default_extractors())
    self._fast = bool(fast)
    self._missing_audio = missing_audio
    self._manifest = (manifest_fn or default_manifest_fn())(self._extractors, fast=self._fast)
    kwargs["config"] = self._derived_config(kwargs.get("config"))
    super().__init__(**kwargs)

  def _content_params(self) -> dict[str, Any]:
    """The builder kwargs that change the dataset's content (subclasses add theirs)."""
    return {"manifest": self._manifest, "missing_audio": self._missing_audio}

  def _default_content_params(self) -> dict[str, Any]:
    from emojax.features import manifest  # pylint: disable=g-import-not-at-top
    return {"manifest": manifest.for_spec(default_extractors()), "missing_audio": "skip"}

  def _derived_config(self, requested) -> tfds.core.BuilderConfig:
    """"default" for the default kwargs, else "custom_<hash of the content kwargs>".

    So two builds with different extractors / params never share a dataset directory.
    """
    params = self._content_params()
    try:
      is_default = params == self._default_content_params()
    except Exception:  # pylint: disable=broad-except
      is_default = False  # defaults not resolvable (e.g. extractors of a missing extra)
    if is_default:
      name = "default"
    else:
      digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
      name = f"custom_{digest}"
    requested = getattr(requested, "name", requested)
    if requested not in (None, "", "default", name):
      raise ConfigError(f"{self.name}: the builder config name is derived from the builder "
                        f"kwargs (here {name!r}); got config={requested!r}: leave it empty")
    if name == "default":
      return self.builder_configs["default"]
    return tfds.core.BuilderConfig(name=name, description=json.dumps(params, sort_keys=True))

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict(feature_spec(self._manifest, self.LABEL_NAMES)),
        metadata=tfds.core.MetadataDict())

  @abc.abstractmethod
  def _film_records(self, dl_manager: tfds.download.DownloadManager
                    ) -> tuple[list[FilmRecord], list[dict[str, str]]]:
    """Returns (films to build, films skipped before extraction as {film, path, split, reason})."""

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    records, pre_skipped = self._film_records(dl_manager)
    _check_unique(records)
    self._films = (list(records), list(pre_skipped))
    engine = self._engine(self._extractors, self._manifest, fast=self._fast,
                          missing_audio=self._missing_audio)
    items = [Item(r.film_id, r.split, r.path, r) for r in records]
    make = functools.partial(_film_example, label_names=tuple(self.LABEL_NAMES))
    return self._engine_splits(engine, items, make)

  def _on_outcomes(self, items, outcomes) -> None:
    records, pre_skipped = self._films
    self._finish_report(records, outcomes, pre_skipped)

  def _finish_report(self, records, outcomes, pre_skipped) -> dict[str, Any]:
    report = build_report(records, outcomes, pre_skipped)
    if not report["written"]:
      raise DataError(f"{self.name}: no film could be used:\n{format_report(self.name, report)}")
    self.info.metadata["feature_manifest"] = self._manifest
    self.info.metadata["build_report"] = report
    self.info.metadata["missing_audio"] = self._missing_audio
    print(format_report(self.name, report), flush=True)
    return report


def _check_unique(records: Sequence[FilmRecord]) -> None:
  seen: dict[str, str] = {}
  for r in records:
    if r.film_id in seen:
      raise DataError(f"two films share the id {r.film_id!r}: {seen[r.film_id]} and {r.path}; "
                      "film ids (file names without extension) must be unique: rename one")
    seen[r.film_id] = r.path
