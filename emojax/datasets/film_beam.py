"""The engine on Apache Beam (optional extra `emojax[beam]`), for big corpora.

`EngineBuilder(use_beam=True)` (every builder that extracts from videos: `films`,
`synthetic_films`, `liris_accede`, `liris_accede_continuous`, `mediaeval2018`, `cognimuse`) hands
TFDS one Beam transform per split, `beam.Create(items) | beam.FlatMap(extract + make_example)`,
and TFDS runs it on the runner of `tfds.download.DownloadConfig(beam_runner=...,
beam_options=...)` (DirectRunner when none):

  builder = tfds.builder("synthetic_films", data_dir=..., use_beam=True)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])))

Each video goes through the same cached extraction as the process-pool path (`film_builder`), so
the cache dir `<data_dir>/<name>/extracted/` must be storage every Beam worker can write (a local
disk for the DirectRunner; a shared file system otherwise), and a rerun after a failed pipeline
extracts only unfinished videos. Bad videos are skipped in the workers; the builder's report is
then assembled on the launching machine from the cache (`EngineBuilder._download_and_prepare`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from emojax.errors import ConfigError

if TYPE_CHECKING:  # film_builder imports this module (lazily, for use_beam): no import back
  from emojax.datasets import film_builder

try:
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
except ImportError:  # pragma: no cover - depends on the optional extra
  beam = None


def _require_beam() -> None:
  if beam is None:
    raise ConfigError("use_beam=True needs Apache Beam (the emojax[beam] extra): "
                      "pip install apache-beam (see the README for the --no-deps recipe that "
                      "keeps the pinned protobuf)")


def _item_to_example(item: film_builder.Item, *, engine: film_builder.Engine,
                     make_example: film_builder.MakeExample
                     ) -> Iterator[tuple[str, dict[str, Any]]]:
  """One item: cached extraction, then its example (nothing for a bad video)."""
  example, _ = engine.example(item, engine.extract_one(item), make_example)
  if example is not None:
    yield item.key, example


def split_transforms(engine: film_builder.Engine, items: Sequence[film_builder.Item],
                     make_example: film_builder.MakeExample) -> dict[str, Any]:
  """{split: beam transform yielding (key, example)}."""
  _require_beam()
  transforms = {}
  for split in dict.fromkeys(item.split for item in items):
    group = [item for item in items if item.split == split]
    transforms[split] = (
        f"Items_{split}" >> beam.Create(group)
        | f"Extract_{split}" >> beam.FlatMap(_item_to_example, engine=engine,
                                              make_example=make_example))
  return transforms
