"""Every benchmark builder that extracts from videos goes through the engine (film_builder):

a build killed (kill -9) midway resumes without extracting the finished videos again and writes
the same dataset as an uninterrupted build; an unreadable video is left out and reported with the
rest of the build kept; Beam writes the same examples as the process pool.
"""

import functools
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import engine_builds as eb

TESTS = pathlib.Path(__file__).parent


def _assert_same(a, b):
  assert {s: sorted(v) for s, v in a.items()} == {s: sorted(v) for s, v in b.items()}
  for split in a:
    for key, ex in a[split].items():
      assert ex.keys() == b[split][key].keys()
      for name, value in ex.items():
        np.testing.assert_array_equal(value, b[split][key][name], err_msg=f"{key} {name}")


def _killed_build(kind, manual, data, log, kill_at):
  """Runs the build in a subprocess that kills itself (kill -9) at extraction `kill_at`."""
  script = textwrap.dedent(f"""
      import functools, sys
      sys.path[:0] = {[str(TESTS), str(TESTS.parent)]!r}
      import engine_builds as eb
      fn = functools.partial(eb.counting_extract, log={str(log)!r}, kill_at={kill_at})
      eb.build({kind!r}, __import__("pathlib").Path({str(manual)!r}), {str(data)!r},
               extract_fn=fn)
      """)
  return subprocess.run([sys.executable, "-c", script], cwd=TESTS.parent, capture_output=True,
                        text=True, timeout=600)


@pytest.mark.parametrize("kind", eb.KINDS)
def test_killed_build_resumes_with_only_the_rest(tmp_path, kind):
  manual = eb.write(kind, tmp_path / "manual")
  names = eb.videos(kind, manual)
  kill_at = len(names) // 2 + 1
  log = tmp_path / "killed.txt"
  run = _killed_build(kind, manual, tmp_path / "data", log, kill_at)
  assert run.returncode == -9, run.stderr[-2000:]
  done = eb.calls(log)[:kill_at - 1]  # extracted and cached before the kill
  assert len(done) == kill_at - 1 and not list((tmp_path / "data").rglob("*.array_record*"))
  log2 = str(tmp_path / "resumed.txt")
  resumed = eb.build(kind, manual, tmp_path / "data",
                     extract_fn=functools.partial(eb.counting_extract, log=log2))
  assert sorted(eb.calls(log2)) == sorted(set(names) - set(done))  # only the rest
  clean = eb.build(kind, manual, tmp_path / "clean")
  _assert_same(eb.examples(resumed), eb.examples(clean))
  assert resumed.info.metadata["problems"] == clean.info.metadata["problems"]


def test_unreadable_video_is_left_out_and_reported(tmp_path):
  manual = eb.write("liris_accede", tmp_path / "manual")
  broken = next(manual.rglob("ACCEDE00003.mp4"))
  broken.write_bytes(broken.read_bytes()[:200])  # truncated: the header only
  builder = eb.build("liris_accede", manual, tmp_path / "data")
  got = eb.examples(builder)
  assert "ACCEDE00003" not in got["train"] and len(got["train"]) == 3  # the rest is kept
  assert sum(map(len, got.values())) == 7
  (problem,) = [p for p in builder.info.metadata["problems"] if "ACCEDE00003" in p["message"]]
  assert problem["file"] == str(broken) and problem["severity"] == "warning"
  assert "left out" in problem["message"]


@pytest.mark.parametrize("kind", ["liris_accede"])
def test_beam_writes_what_the_process_pool_writes(tmp_path, kind):
  beam = pytest.importorskip("apache_beam")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  manual = eb.write(kind, tmp_path / "manual")
  pool = eb.build(kind, manual, tmp_path / "pool", num_workers=2)
  options = beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  beamed = eb.build(kind, manual, tmp_path / "beam", use_beam=True,
                    download_config=tfds.download.DownloadConfig(beam_options=options))
  _assert_same(eb.examples(beamed), eb.examples(pool))
  for key in ("problems", "films"):
    assert beamed.info.metadata.get(key) == pool.info.metadata.get(key)
