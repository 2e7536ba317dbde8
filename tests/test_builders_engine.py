"""Every benchmark builder that extracts from videos goes through the engine (film_builder):

a build killed (kill -9) midway resumes without extracting the finished videos again and writes
the same dataset as an uninterrupted build; an unreadable video is left out and reported with the
rest of the build kept; Beam writes the same examples as an in-process build.
"""

import functools
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import engine_builds as eb
from emojax import doctor
from emojax.errors import DataError

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


# kind -> (video to damage, its key, the config the doctor checks)
UNREADABLE = {"liris_accede": ("ACCEDE00003.mp4", "ACCEDE00003", "discrete"),
              "liris_accede_continuous": ("Big_Buck_Bunny.mp4", "Big_Buck_Bunny", "default"),
              "mediaeval2018": ("MEDIAEVAL18_27.mp4", "MEDIAEVAL18_27", "extracted_features"),
              "cognimuse": ("GLA.mp4", "GLA", "intended_5s")}


@pytest.mark.parametrize("kind", eb.KINDS)
def test_unreadable_video_is_left_out_and_reported_by_doctor_and_build(tmp_path, kind):
  name, key, config = UNREADABLE[kind]
  manual = eb.write(kind, tmp_path / "manual")
  broken = next(manual.rglob(name))
  broken.write_bytes(broken.read_bytes()[:200])  # cut short: the first 200 bytes only
  problems = doctor.run_doctor(kind, manual, config)
  assert not [p for p in problems if p.severity == "error"], "\n".join(map(str, problems))
  (found,) = [p for p in problems if p.file == str(broken)]
  assert found.severity == "warning"
  assert found.message.startswith(f"{key}: the video cannot be used (")
  assert found.message.endswith("its example is left out.")
  builder = eb.build(kind, manual, tmp_path / "data")  # the doctor passed it: it builds
  (built,) = [p for p in builder.info.metadata["problems"] if p["file"] == str(broken)]
  assert built["severity"] == "warning" and built["fix"] == found.fix
  assert built["message"].startswith(f"{key}: the video cannot be used (")
  got = eb.examples(builder)
  assert all(key not in split for split in got.values())
  kept = {k for split in got.values() for k in split}  # ('dev' repeats mediaeval2018's films)
  assert len(kept) == len(eb.videos(kind, manual)) - 1  # the rest is kept


@pytest.mark.parametrize("kind", ["liris_accede_continuous"])
def test_beam_writes_what_an_in_process_build_writes(tmp_path, kind):
  beam = pytest.importorskip("apache_beam")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  manual = eb.write(kind, tmp_path / "manual")
  pool = eb.build(kind, manual, tmp_path / "pool", num_workers=0)
  options = beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  beamed = eb.build(kind, manual, tmp_path / "beam", use_beam=True,
                    download_config=tfds.download.DownloadConfig(beam_options=options))
  _assert_same(eb.examples(beamed), eb.examples(pool))
  for key in ("problems", "num_seconds"):
    assert beamed.info.metadata.get(key) == pool.info.metadata.get(key)


@pytest.mark.parametrize("kind,name,line,text", [
    ("mediaeval2018", "MEDIAEVAL18_27_Valence-Arousal.txt", 3, "1\t0.5"),
    ("cognimuse", "intended_1.dat", 4, "0.12 0.1 y"),
    ("liris_accede_continuous", "Big_Buck_Bunny_Valence.txt", 3, "1\t0.1"),
])
def test_bad_labels_stop_the_build_before_any_extraction(tmp_path, kind, name, line, text):
  manual = eb.write(kind, tmp_path / "manual")
  path = sorted(manual.rglob(name))[-1]
  lines = path.read_text().splitlines()
  lines[line - 1] = text
  path.write_text("\n".join(lines) + "\n")
  log = tmp_path / "calls.txt"
  with pytest.raises(DataError) as e:
    eb.build(kind, manual, tmp_path / "data",
             extract_fn=functools.partial(eb.counting_extract, log=str(log)))
  assert f"{path}:{line}:" in str(e.value)
  assert eb.calls(log) == []  # no video was decoded
