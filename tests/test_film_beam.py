"""The Beam path (DirectRunner) writes the same dataset and report as the process-pool path."""

import functools
import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from emojax.datasets import synthetic_films
import test_film_builder as fakes
from emojax.datasets import film_builder

REPO = pathlib.Path(__file__).resolve().parents[1]


def _beam():
  """apache_beam, imported by the tests that run it (not at collection: ~2-4 s of CPU in every
  pytest worker); a test is skipped where it is not installed."""
  return pytest.importorskip("apache_beam")


@pytest.fixture(autouse=True)
def _needs_beam():
  _beam()


def _direct_runner():
  options = _beam().options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  return tfds.download.DownloadConfig(beam_options=options)


def _read(builder):
  source = builder.as_data_source()
  return {split: {ex["film_id"].decode(): ex for ex in source[split]} for split in source}


def test_beam_matches_process_pool(tmp_path):
  records = fakes._records(tmp_path)  # pylint: disable=protected-access
  log = str(tmp_path / "calls.txt")
  pool = fakes.FakeFilms(records=records, data_dir=str(tmp_path / "pool"), num_workers=0)
  pool.download_and_prepare()
  beamed = fakes.FakeFilms(records=records, data_dir=str(tmp_path / "beam"), use_beam=True)
  beamed._extract_fn = functools.partial(fakes.fake_extract, log=log)  # pylint: disable=protected-access
  beamed.download_and_prepare(download_config=_direct_runner())
  assert sorted(fakes.calls(log)) == sorted(f"{r.film_id}.mp4" for r in records)
  a, b = _read(pool), _read(beamed)
  assert a.keys() == b.keys() and all(a[s].keys() == b[s].keys() for s in a)
  for split in a:
    for fid in a[split]:
      for k, v in a[split][fid].items():
        np.testing.assert_array_equal(v, b[split][fid][k])
  assert beamed.info.metadata["build_report"] == pool.info.metadata["build_report"]
  # Rebuild after deleting the dataset (not the cache): nothing is extracted again.
  shutil.rmtree(beamed.data_path.parent)  # <data_dir>/fake_films/<config>; keeps .../extracted
  rebuilt = fakes.FakeFilms(records=records, data_dir=str(tmp_path / "beam"), use_beam=True)
  rebuilt._extract_fn = functools.partial(fakes.fake_extract, log=log)  # pylint: disable=protected-access
  rebuilt.download_and_prepare(download_config=_direct_runner())
  assert len(fakes.calls(log)) == len(records)  # the cache was reused
  assert rebuilt.info.metadata["build_report"] == pool.info.metadata["build_report"]

def test_beam_synthetic_films_with_real_extractors(tmp_path):
  builder = synthetic_films.SyntheticFilms(
      data_dir=str(tmp_path), num_films=3, duration_s=4, fps=8, width=64, height=48,
      sample_rate=16000, num_validation=1, num_test=1, extractors=("visual_stats",),
      num_workers=0, use_beam=True)
  builder.download_and_prepare(download_config=_direct_runner())
  got = _read(builder)
  assert {s: sorted(v) for s, v in got.items()} == {
      "train": ["film_0000"], "validation": ["film_0001"], "test": ["film_0002"]}
  assert got["test"]["film_0002"]["visual_stats"].shape == (4, 25)
  assert builder.info.metadata["build_report"]["written"] == {"train": 1, "validation": 1,
                                                              "test": 1}


def _bits(builder) -> dict[str, dict[str, dict[str, tuple]]]:
  """{split: {film: {feature: (dtype, shape, raw bytes)}}} of a built dataset, every value read."""
  out = {}
  for split, source in builder.as_data_source().items():
    films = {}
    for ex in source:
      films[ex["film_id"].decode()] = {
          k: (np.asarray(v).dtype.str, np.shape(v), np.asarray(v).tobytes()) for k, v in ex.items()}
    out[split] = films
  return out


def _pid_logging_extract(*args, log: str, **kwargs):
  """The real extraction, noting which process ran it."""
  with open(log, "a", encoding="utf-8") as f:
    f.write(f"{os.getpid()}\n")
  return film_builder.default_extract_fn()(*args, **kwargs)


def test_beam_multi_processing_equals_the_in_process_build(tmp_path, monkeypatch):
  """DirectRunner with 2 worker processes (what a cluster runner does with many machines) writes
  the same dataset, bit for bit, as the in-process build of the synthetic films."""
  # The Beam worker processes import emojax and this module (the extraction function).
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "tests")]))
  kwargs = dict(num_films=4, duration_s=3, fps=8, width=64, height=48, sample_rate=16000,
                num_validation=1, num_test=1, extractors=("visual_stats",))
  local = synthetic_films.SyntheticFilms(data_dir=str(tmp_path / "local"), num_workers=0,
                                         **kwargs)
  local.download_and_prepare()
  beamed = synthetic_films.SyntheticFilms(data_dir=str(tmp_path / "beam"), use_beam=True,
                                          **kwargs)
  log = tmp_path / "pids.txt"
  beamed._extract_fn = functools.partial(_pid_logging_extract, log=str(log))  # pylint: disable=protected-access
  options = _beam().options.pipeline_options.PipelineOptions([
      "--runner=DirectRunner", "--direct_running_mode=multi_processing",
      "--direct_num_workers=2"])
  beamed.download_and_prepare(
      download_config=tfds.download.DownloadConfig(beam_options=options))
  # Bit for bit in every value (the serialized tf.Example bytes are not compared: protobuf writes
  # the entries of its feature map in an order that differs between processes).
  a, b = _bits(local), _bits(beamed)
  assert {s: len(v) for s, v in a.items()} == {"train": 2, "validation": 1, "test": 1}
  assert a == b
  pids = log.read_text().split()
  assert len(pids) == 4 and str(os.getpid()) not in pids  # extracted in Beam's worker processes
  assert beamed.info.metadata["build_report"] == local.info.metadata["build_report"]
  assert local.info.metadata["feature_manifest"] == beamed.info.metadata["feature_manifest"]
