"""The four benchmark builders on their fixture trees with videos, for the engine's tests.

`make(kind, data_dir, extract_fn, **kwargs)` gives the builder of a fixture tree written by
`write(kind, root)`; `counting_extract` wraps the real `extract_film`, logs every call and can
kill its own process (kill -9) at a given call, as a user's kill midway through a build would.
Imported by tests/test_builders_engine.py and by the build scripts it runs in subprocesses.
"""

from __future__ import annotations

import os
import pathlib
import signal

import tensorflow_datasets as tfds

import dataset_fixtures as fx
import liris_fixture as lf
from emojax.datasets import cognimuse
from emojax.datasets import liris_accede
from emojax.datasets import liris_accede_continuous
from emojax.datasets import mediaeval2018

KINDS = ("liris_accede", "liris_accede_continuous", "mediaeval2018", "cognimuse")
EXTRACTORS = ("visual_stats",)  # cheap; the builders' own tests run the others
KEY = {"liris_accede": "clip_id"}  # the example field holding the key (else film_id)


def write(kind: str, root: pathlib.Path) -> pathlib.Path:
  """Writes the fixture download of `kind` (with videos) under root; returns the manual dir."""
  if kind == "liris_accede":
    lf.write_tree(root, lf.Layout(videos=True, video_seconds=3.0))
  elif kind == "liris_accede_continuous":
    lf.write_continuous_tree(root, lf.Layout(videos=True))
  elif kind == "mediaeval2018":
    fx.write_mediaeval2018(root, films={0: (5, 0, 0), 1: (4, 0, 0), 27: (7, 0, 0), 54: (6, 0, 0)},
                           features=False, media_seconds={0: 6, 1: 4, 27: 5, 54: 4})
  else:
    fx.write_cognimuse(root, media_seconds={"BMI": 12, "CHI": 11, "GLA": 11, "SIL": 10.5})
  return root


def make(kind: str, data_dir: pathlib.Path, **kwargs) -> tfds.core.DatasetBuilder:
  """The builder of `kind`'s fixture tree, extracting EXTRACTORS (kwargs: the engine's)."""
  kwargs = {"data_dir": str(data_dir), "num_workers": 0, **kwargs}
  if kind == "liris_accede":
    return liris_accede.LirisAccede(config="discrete", extractors=EXTRACTORS, **kwargs)
  if kind == "liris_accede_continuous":
    return liris_accede_continuous.LirisAccedeContinuous(config="default",
                                                         extractors=EXTRACTORS, **kwargs)
  if kind == "mediaeval2018":
    config = mediaeval2018.Mediaeval2018Config(name="extracted_test", features="extracted",
                                               extractors=EXTRACTORS)
    return mediaeval2018.Mediaeval2018(config=config, **kwargs)
  config = cognimuse.CognimuseConfig(name="intended_5s_test", stream="intended",
                                     segment_seconds=5, extractors=EXTRACTORS)
  return cognimuse.Cognimuse(config=config, **kwargs)


def build(kind: str, manual: pathlib.Path, data_dir: pathlib.Path, download_config=None,
          **kwargs) -> tfds.core.DatasetBuilder:
  builder = make(kind, data_dir, **kwargs)
  config = download_config or tfds.download.DownloadConfig()
  config.manual_dir = str(manual)
  builder.download_and_prepare(download_config=config)
  return builder


def videos(kind: str, manual: pathlib.Path) -> list[str]:
  """The file names of the videos a build of `kind` extracts."""
  names = sorted(p.name for p in manual.rglob("*.mp4"))
  if kind == "liris_accede":  # discrete: the ACCEDE clips only
    names = [n for n in names if n.startswith("ACCEDE")]
  return names


def counting_extract(path, extractors, *, log: str, kill_at: int | None = None, **kwargs):
  """`extract_film` that appends the file name to `log`; kill -9 of this process at call
  number `kill_at` (1-based), before extracting it."""
  with open(log, "a") as f:
    f.write(os.path.basename(path) + "\n")
  if kill_at is not None and len(calls(log)) == kill_at:
    os.kill(os.getpid(), signal.SIGKILL)
  from emojax.features import extract  # pylint: disable=g-import-not-at-top
  return extract.extract_film(path, extractors, **kwargs)


def calls(log) -> list[str]:
  return pathlib.Path(log).read_text().split() if os.path.exists(log) else []


def examples(builder) -> dict[str, dict[str, dict]]:
  """{split: {key: example}} of a built dataset."""
  field = KEY.get(builder.name, "film_id")
  out = {}
  for split, source in builder.as_data_source().items():
    out[split] = {source[i][field].decode(): source[i] for i in range(len(source))}
  return out
