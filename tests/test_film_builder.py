"""Film builder core: caching, resume, parallel extraction, bad films, report, TFDS output.

The extractor is a fake with extract_film's signature reading tiny JSON "films", so these tests
check the plumbing exactly and fast; tests/test_film_datasets.py runs the real extractors on
rendered media.
"""

import functools
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from emojax.datasets import film_builder
from emojax.errors import ConfigError
from emojax.errors import DataError

MANIFEST = {"format": 1, "fast": False, "extractors": {
    "fake_audio": {"version": 1, "modality": "audio", "per": "second", "shape": [3],
                   "dtype": "float32", "params": {}},
    "fake_video": {"version": 1, "modality": "video", "per": "second", "shape": [2, 2],
                   "dtype": "float32", "params": {}}}}


def fake_manifest(extractors, fast=False):
  del extractors
  return {**MANIFEST, "fast": fast}


def expected_streams(seed: int, seconds: int, has_audio: bool = True) -> dict[str, np.ndarray]:
  t = np.arange(seconds, dtype=np.float32)
  audio = np.stack([t, t * 2, np.full_like(t, seed)], 1) * (1.0 if has_audio else 0.0)
  video = (t[:, None, None] + seed * np.ones((1, 2, 2), np.float32)) / 10
  return {"fake_audio": audio.astype(np.float32), "fake_video": video.astype(np.float32)}


def fake_extract(path, extractors, *, fast=False, progress=False, allow_missing_audio=False,
                 log=None, crash_on=None):
  """extract_film's signature over JSON 'films': {"seed", "seconds", "audio", "bad"}."""
  del extractors, fast, progress
  if log is not None:
    with open(log, "a") as f:
      f.write(os.path.basename(path) + "\n")
  if crash_on is not None and os.path.basename(path) == crash_on:
    raise RuntimeError("simulated crash (e.g. the machine went down)")
  try:
    spec = json.loads(pathlib.Path(path).read_text())
  except (ValueError, UnicodeDecodeError) as e:
    raise DataError(f"{path}: cannot be read as a media file ({e})") from e
  if spec.get("bad"):
    raise DataError(f"{path}: {spec['bad']}")
  if not spec["audio"] and not allow_missing_audio:
    raise DataError(f"{path}: no audio stream")
  streams = expected_streams(spec["seed"], spec["seconds"], spec["audio"])
  return types.SimpleNamespace(streams=streams, num_seconds=spec["seconds"],
                               duration_s=spec["seconds"] + 0.4, manifest=MANIFEST,
                               has_audio=spec["audio"])


def write_film(directory, name, seed, seconds, audio=True, bad=None):
  path = pathlib.Path(directory) / f"{name}.mp4"
  path.write_text(json.dumps({"seed": seed, "seconds": seconds, "audio": audio, "bad": bad}))
  return str(path)


def calls(log) -> list[str]:
  return pathlib.Path(log).read_text().split() if os.path.exists(log) else []


def _extract(films, cache, **kwargs):
  return film_builder.extract_films(films, cache_dir=cache, extractors={"fake": {}},
                                    manifest=MANIFEST, **kwargs)


def test_interrupted_build_resumes_without_recomputing(tmp_path):
  films = [(f"f{i}", write_film(tmp_path, f"f{i}", i, 5)) for i in range(6)]
  cache, log = tmp_path / "cache", str(tmp_path / "calls.txt")
  crashing = functools.partial(fake_extract, log=log, crash_on="f3.mp4")
  with pytest.raises(RuntimeError, match="simulated crash") as info:
    _extract(films, cache, extract_fn=crashing, num_workers=0)
  assert any("f3" in note for note in info.value.__notes__)  # names the film
  assert calls(log) == ["f0.mp4", "f1.mp4", "f2.mp4", "f3.mp4"]
  assert len(list(cache.glob("*.npz"))) == 3
  assert not [p for p in cache.iterdir() if "tmp" in p.name]  # nothing half-written
  os.remove(log)
  outcomes = _extract(films, cache, extract_fn=functools.partial(fake_extract, log=log),
                      num_workers=0)
  assert calls(log) == ["f3.mp4", "f4.mp4", "f5.mp4"]  # finished films were not recomputed
  assert [outcomes[f"f{i}"]["cached"] for i in range(6)] == [True] * 3 + [False] * 3
  os.remove(log)
  _extract(films, cache, extract_fn=functools.partial(fake_extract, log=log), num_workers=0)
  assert calls(log) == []
  for i in range(6):
    streams, meta = film_builder.load_cached(outcomes[f"f{i}"]["cache"])
    assert meta["num_seconds"] == 5
    for name, want in expected_streams(i, 5).items():
      np.testing.assert_array_equal(streams[name], want)


def test_each_finished_film_prints_its_progress_line(tmp_path, capsys):
  films = [(f"f{i}", write_film(tmp_path, f"f{i}", i, 4 + i)) for i in range(3)]
  films.append(("bad", write_film(tmp_path, "bad", 9, 3, bad="unreadable")))
  _extract(films[:1], tmp_path / "cache", extract_fn=fake_extract, num_workers=0)
  capsys.readouterr()
  _extract(films, tmp_path / "cache", extract_fn=fake_extract, num_workers=0)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == "   [1/4 films] f0: cached (4 s of film)"
  assert re.fullmatch(r"   \[2/4 films\] f1: extracted 5 s of film; [\d.]+ s of film per s so far",
                      lines[1]), lines[1]
  assert lines[2].startswith("   [3/4 films] f2: extracted 6 s of film; ")
  assert lines[3].startswith("   [4/4 films] bad: skipped (") and "unreadable" in lines[3]
  assert len(lines) == 4


def test_changed_file_or_manifest_is_recomputed(tmp_path):
  path = write_film(tmp_path, "a", 1, 4)
  cache, log = tmp_path / "cache", str(tmp_path / "calls.txt")
  fn = functools.partial(fake_extract, log=log)
  _extract([("a", path)], cache, extract_fn=fn, num_workers=0)
  write_film(tmp_path, "a", 2, 4)  # same name, new content
  _extract([("a", path)], cache, extract_fn=fn, num_workers=0)
  other = {**MANIFEST, "fast": True}
  film_builder.extract_films([("a", path)], cache_dir=cache, extractors={}, manifest=other,
                             extract_fn=fn, num_workers=0)
  assert calls(log) == ["a.mp4"] * 3


def test_process_pool_matches_serial_and_extracts_each_film_once(tmp_path):
  films = [(f"f{i}", write_film(tmp_path, f"f{i}", i, 3 + i)) for i in range(5)]
  log = str(tmp_path / "calls.txt")
  fn = functools.partial(fake_extract, log=log)
  parallel = _extract(films, tmp_path / "c1", extract_fn=fn, num_workers=2)
  assert sorted(calls(log)) == sorted(f"f{i}.mp4" for i in range(5))
  serial = _extract(films, tmp_path / "c2", extract_fn=fake_extract, num_workers=0)
  assert list(parallel) == [f"f{i}" for i in range(5)]  # input order, not completion order
  for fid in parallel:
    a, _ = film_builder.load_cached(parallel[fid]["cache"])
    b, _ = film_builder.load_cached(serial[fid]["cache"])
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_bad_films_are_skipped_and_not_retried(tmp_path):
  films = [("good", write_film(tmp_path, "good", 0, 4)),
           ("corrupt", write_film(tmp_path, "corrupt", 0, 4, bad="moov atom not found")),
           ("silent", write_film(tmp_path, "silent", 0, 4, audio=False)),
           ("gone", str(tmp_path / "gone.mp4"))]
  (tmp_path / "garbage.mp4").write_bytes(b"\x00\xff" * 10)
  films.append(("garbage", str(tmp_path / "garbage.mp4")))
  log = str(tmp_path / "calls.txt")
  fn = functools.partial(fake_extract, log=log)
  out = _extract(films, tmp_path / "cache", extract_fn=fn, num_workers=0)
  assert out["good"]["status"] == "ok"
  assert out["corrupt"]["status"] == "skipped" and "moov atom" in out["corrupt"]["reason"]
  assert out["silent"]["status"] == "skipped" and "no audio" in out["silent"]["reason"]
  assert out["gone"] == {"film_id": "gone", "path": films[3][1], "status": "skipped",
                         "reason": "file not found", "cached": False}
  assert "cannot be read" in out["garbage"]["reason"]
  os.remove(log)
  _extract(films, tmp_path / "cache", extract_fn=fn, num_workers=0)
  assert calls(log) == []  # bad films are remembered, not decoded again
  silence = _extract(films, tmp_path / "cache", extract_fn=fn, num_workers=0,
                     missing_audio="silence")
  assert silence["silent"]["status"] == "ok" and not silence["silent"]["has_audio"]
  with pytest.raises(ConfigError, match="missing_audio"):
    _extract(films, tmp_path / "cache", extract_fn=fn, missing_audio="zeros")


class FakeFilms(film_builder.FilmBuilder):
  """A film builder over given records (the films and labels come from the test)."""

  def __init__(self, *, records=(), pre_skipped=(), **kwargs):
    self._records, self._pre_skipped = list(records), list(pre_skipped)
    super().__init__(extract_fn=fake_extract, manifest_fn=fake_manifest, **kwargs)

  def _film_records(self, dl_manager):
    return self._records, self._pre_skipped


def _labels(seed, n):
  rng = np.random.default_rng(seed)
  return {k: rng.uniform(-1, 1, n).astype(np.float32) for k in film_builder.LABELS}


def _records(tmp_path):
  return [
      film_builder.FilmRecord("a", write_film(tmp_path, "a", 1, 6), "train", _labels(1, 6)),
      film_builder.FilmRecord("b", write_film(tmp_path, "b", 2, 8), "train", _labels(2, 5)),
      film_builder.FilmRecord("c", write_film(tmp_path, "c", 3, 4), "test", _labels(3, 7)),
      film_builder.FilmRecord("d", write_film(tmp_path, "d", 4, 4, bad="truncated at 1.2 s"),
                              "test", _labels(4, 4)),
      film_builder.FilmRecord("e", write_film(tmp_path, "e", 5, 5, audio=False), "train",
                              _labels(5, 5)),
  ]


def test_builder_writes_per_second_films_and_reports(tmp_path, capsys):
  records = _records(tmp_path)
  pre = [{"film": "z", "path": "z.mp4", "split": "", "reason": "no labels in labels.csv"}]
  builder = FakeFilms(records=records, pre_skipped=pre, data_dir=str(tmp_path / "data"),
                      num_workers=0)
  builder.download_and_prepare()
  printed = capsys.readouterr().out
  assert "3 of 6 films written" in printed and "truncated at 1.2 s" in printed
  source = builder.as_data_source()
  assert sorted(source) == ["test", "train"]
  got = {ex["film_id"].decode(): ex for split in source for ex in source[split]}
  assert sorted(got) == ["a", "b", "c"]  # d corrupt, e without audio (policy skip)
  by_id = {r.film_id: r for r in records}
  for fid, seed, kept in (("a", 1, 6), ("b", 2, 5), ("c", 3, 4)):
    ex = got[fid]
    for name, want in expected_streams(seed, kept).items():
      np.testing.assert_array_equal(ex[name], want)
    for k in film_builder.LABELS:
      np.testing.assert_array_equal(ex[k], by_id[fid].labels[k][:kept])
  report = builder.info.metadata["build_report"]
  assert report["written"] == {"train": 2, "test": 1}
  assert {s["film"]: s["reason"] for s in report["skipped"]} == {
      "z": "no labels in labels.csv", "d": f"{by_id['d'].path}: truncated at 1.2 s",
      "e": f"{by_id['e'].path}: no audio stream"}
  cuts = {t["film"]: t["cut_seconds"] for t in report["truncated"]}
  assert cuts == {"b": {"fake_audio": 3, "fake_video": 3}, "c": {"labels": 3}}
  assert builder.info.metadata["feature_manifest"] == MANIFEST
  # The metadata is on disk: a fresh builder reads it back.
  again = FakeFilms(data_dir=str(tmp_path / "data"))
  assert again.info.metadata["build_report"] == report


def test_builder_is_deterministic_and_reuses_the_cache(tmp_path):
  records = _records(tmp_path)
  log = str(tmp_path / "calls.txt")

  class Logged(FakeFilms):
    def __init__(self, **kwargs):
      super().__init__(**kwargs)
      self._extract_fn = functools.partial(fake_extract, log=log)

  shards = []
  for run in range(2):
    data = tmp_path / f"data{run}"
    if run == 1:  # the same corpus in another data dir: copy the finished extractions over
      (data / "logged").mkdir(parents=True)
      os.rename(tmp_path / "data0" / "logged" / "extracted", data / "logged" / "extracted")
    Logged(records=records, data_dir=str(data), num_workers=0,
           missing_audio="silence").download_and_prepare()
    files = sorted(data.glob("logged/*/1.0.0/*.array_record*"))
    shards.append({p.name: p.read_bytes() for p in files})
  assert len(calls(log)) == 5  # second run: everything from the cache
  assert shards[0] == shards[1] and shards[0]


def test_builder_silence_policy_keeps_films_without_audio(tmp_path):
  builder = FakeFilms(records=_records(tmp_path), data_dir=str(tmp_path / "data"),
                      num_workers=0, missing_audio="silence")
  builder.download_and_prepare()
  assert builder.builder_config.name.startswith("custom_")
  report = builder.info.metadata["build_report"]
  assert [s["film"] for s in report["no_audio"]] == ["e"]
  ex = {x["film_id"]: x for x in builder.as_data_source()["train"]}[b"e"]
  np.testing.assert_array_equal(ex["fake_audio"], np.zeros((5, 3), np.float32))


def test_builder_refuses_duplicate_ids_and_empty_builds(tmp_path):
  path = write_film(tmp_path, "a", 1, 3)
  dup = [film_builder.FilmRecord("a", path, "train", _labels(0, 3))] * 2
  with pytest.raises(DataError, match="share the id 'a'"):
    FakeFilms(records=dup, data_dir=str(tmp_path / "d1"), num_workers=0).download_and_prepare()
  bad = [film_builder.FilmRecord("x", write_film(tmp_path, "x", 0, 3, bad="broken"), "train",
                                 _labels(0, 3))]
  with pytest.raises(DataError, match="no film could be used"):
    FakeFilms(records=bad, data_dir=str(tmp_path / "d2"), num_workers=0).download_and_prepare()


def test_per_clip_extractors_are_refused():
  manifest = {"extractors": {"frame_clips": {"per": "clip", "shape": [16, 8, 8, 3],
                                             "dtype": "uint8"}}}
  with pytest.raises(ConfigError, match="per-second numeric streams only"):
    film_builder.feature_spec(manifest, film_builder.LABELS)


def test_format_report_lists_every_problem():
  report = {"films": 4, "written": {"train": 2}, "no_audio": [],
            "skipped": [{"film": "x", "path": "x.mp4", "reason": "zero bytes"}],
            "truncated": [{"film": "y", "kept_seconds": 3, "cut_seconds": {"labels": 2}}]}
  text = film_builder.format_report("films", report)
  assert text.splitlines() == ["films: 2 of 4 films written (train: 2)", "skipped 1:",
                               "  x: zero bytes", "truncated 1:",
                               "  y: kept 3 s; seconds cut: labels 2 s"]


def slow_extract(path, extractors, *, pid_dir, **kwargs):
  """Records this worker's pid, then extracts for a minute (long enough to be killed)."""
  del path, extractors, kwargs
  pathlib.Path(pid_dir, f"worker-{os.getpid()}").touch()
  time.sleep(60)
  raise AssertionError("a worker outlived its parent's kill")


def _running(pid: int) -> bool:
  """The process exists and is not a zombie waiting for a reaper."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except FileNotFoundError:
    return False
  except OSError:  # no /proc: ask the kernel
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    return True


def test_workers_exit_when_the_build_is_killed(tmp_path):
  tests = pathlib.Path(__file__).parent
  script = tmp_path / "build.py"
  script.write_text(textwrap.dedent(f"""
      import functools, sys
      sys.path[:0] = [{str(tests)!r}, {str(tests.parent)!r}]
      import test_film_builder as t
      from emojax.datasets import film_builder
      if __name__ == "__main__":
        films = [(f"f{{i}}", t.write_film({str(tmp_path)!r}, f"f{{i}}", i, 3)) for i in range(4)]
        fn = functools.partial(t.slow_extract, pid_dir={str(tmp_path)!r})
        film_builder.extract_films(films, cache_dir={str(tmp_path / "cache")!r}, extractors={{}},
                                   manifest=t.MANIFEST, extract_fn=fn, num_workers=2)
      """))
  proc = subprocess.Popen([sys.executable, str(script)], cwd=tests.parent)
  try:
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("worker-*"))) < 2:
      assert proc.poll() is None, "the build ended before its workers started"
      assert time.monotonic() < deadline, "the workers did not start"
      time.sleep(0.1)
    workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the main process
    proc.wait()
    deadline = time.monotonic() + 20
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
      time.sleep(0.1)
    orphans = [pid for pid in workers if _running(pid)]
    for pid in orphans:  # leave nothing running, then fail
      os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers {orphans} kept running after their parent was killed"
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_cache_carries_per_clip_bytes_and_uint8_streams(tmp_path):
  """Per-clip streams of encoded images (object arrays of bytes) and uint8 images round-trip
  through the cache without pickles, for builders that store them."""
  rng = np.random.default_rng(0)
  frames = np.empty((2, 3), dtype=object)  # 2 clips x 3 encoded frames of different lengths
  frames[:] = [[bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (5, 0, 9)],
               [b"\xff\xd8jpeg", b"x", b"\x00" * 4]]
  image = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)

  def extract(path, extractors, **kwargs):
    del path, extractors, kwargs
    return types.SimpleNamespace(streams={"frame_clips": frames, "spectrogram_image": image},
                                 num_seconds=4, duration_s=4.0, has_audio=True)

  path = write_film(tmp_path, "a", 0, 4)
  out = _extract([("a", path)], tmp_path / "cache", extract_fn=extract, num_workers=0)
  streams, meta = film_builder.load_cached(out["a"]["cache"])
  assert meta["rows"] == {"frame_clips": 2, "spectrogram_image": 4}
  assert streams["frame_clips"].dtype == object and streams["frame_clips"].shape == (2, 3)
  assert streams["frame_clips"].tolist() == frames.tolist()
  assert streams["spectrogram_image"].dtype == np.uint8
  np.testing.assert_array_equal(streams["spectrogram_image"], image)


def test_temporaries_of_a_killed_build_are_removed(tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  stale = cache / f".abc.npz.tmp-{dead.stdout.strip()}"  # a build killed while writing
  stale.write_bytes(b"half")
  live = cache / f".def.npz.tmp-{os.getpid()}"  # a build writing now
  live.write_bytes(b"half")
  _extract([("a", write_film(tmp_path, "a", 0, 3))], cache, extract_fn=fake_extract,
           num_workers=0)
  assert not stale.exists() and live.exists()
