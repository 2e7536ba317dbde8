"""Film datasets generated with Apache Beam (optional extra `emojax[beam]`), for big corpora.

`FilmBuilder(use_beam=True)` hands TFDS one Beam transform per split,
`beam.Create(films) | beam.FlatMap(extract + example)`, and TFDS runs it on the runner of
`tfds.download.DownloadConfig(beam_runner=..., beam_options=...)` (DirectRunner when none):

  builder = tfds.builder("synthetic_films", data_dir=..., use_beam=True)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])))

Each film goes through the same cached extraction as the process-pool path (`film_builder`), so
the cache dir `<data_dir>/<name>/extracted/` must be storage every Beam worker can write (a local
disk for the DirectRunner; a shared file system otherwise), and a rerun after a failed pipeline
extracts only unfinished films. Bad films are skipped in the workers; the build report is then
assembled on the launching machine from the cache (`finish_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from emojax.datasets import film_builder
from emojax.errors import ConfigError

try:
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
except ImportError:  # pragma: no cover - depends on the optional extra
  beam = None


def _require_beam() -> None:
  if beam is None:
    raise ConfigError("use_beam=True needs Apache Beam (the emojax[beam] extra): "
                      "pip install apache-beam (see the README for the --no-deps recipe that "
                      "keeps the pinned protobuf)")


def _film_to_example(record: film_builder.FilmRecord, *, job_args: Mapping[str, Any],
                     extract_fn: Callable[..., Any] | None,
                     label_names: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
  """One film: cached extraction, then its per-second example (nothing for a bad film)."""
  job = film_builder._Job(record.film_id, record.path, **job_args)  # pylint: disable=protected-access
  outcome = film_builder._extract_one(job, extract_fn or film_builder.default_extract_fn())  # pylint: disable=protected-access
  if outcome["status"] != "ok":
    return
  streams, _ = film_builder.load_cached(outcome["cache"])
  example = film_builder.film_example(record, streams, label_names)
  if len(example[label_names[0]]) >= 1:
    yield record.film_id, example


def split_transforms(builder: film_builder.FilmBuilder,
                     records: Sequence[film_builder.FilmRecord],
                     pre_skipped: Sequence[Mapping[str, str]]) -> dict[str, Any]:
  """{split: beam transform yielding (film_id, example)}; remembers the films for the report."""
  _require_beam()
  # pylint: disable=protected-access
  builder._beam_films = (list(records), list(pre_skipped))
  builder.cache_dir.mkdir(parents=True, exist_ok=True)
  job_args = {"cache_dir": str(builder.cache_dir), "extractors": dict(builder._extractors),
              "manifest": dict(builder._manifest), "fast": builder._fast,
              "missing_audio": builder._missing_audio}
  transforms = {}
  for split in sorted({r.split for r in records}):
    films = [r for r in records if r.split == split]
    transforms[split] = (
        f"Films_{split}" >> beam.Create(films)
        | f"Extract_{split}" >> beam.FlatMap(_film_to_example, job_args=job_args,
                                              extract_fn=builder._extract_fn,
                                              label_names=tuple(builder.LABEL_NAMES)))
  return transforms


def finish_report(builder: film_builder.FilmBuilder) -> None:
  """After the pipeline ran: outcomes from the cache (no extraction), report into metadata."""
  # pylint: disable=protected-access
  records, pre_skipped = builder._beam_films
  outcomes = film_builder.extract_films(
      [(r.film_id, r.path) for r in records], cache_dir=builder.cache_dir,
      extractors=builder._extractors, manifest=builder._manifest, fast=builder._fast,
      missing_audio=builder._missing_audio, extract_fn=_not_extracted, num_workers=0)
  builder._finish_report(records, outcomes, pre_skipped)


def _not_extracted(path, *args, **kwargs):
  del args, kwargs
  raise RuntimeError(f"{path} was not extracted by the Beam pipeline (a worker failed?); "
                     "rerun the build")
