"""Bad inputs found by trying (issue 8 section 3): each gets a clear error naming the file or key,
and nothing written before is lost."""

import contextlib
import fractions
import os
import pathlib
import stat
import tempfile

import av
import numpy as np
import pytest
from absl import app

from emojax import errors, fileio, predict
from emojax.errors import DataError
from emojax.features import decode
from emojax.features import extract_film


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
  old = os.umask(umask)
  try:
    fileio.write_json(tmp_path / "new.json", {"a": 1})
    fileio.atomic_write_text(tmp_path / "sub" / "new.txt", "x")
    expected = 0o666 & ~umask
    # The same mode open() gives a new file under this umask.
    with open(tmp_path / "plain.txt", "w") as f:
      f.write("x")
  finally:
    os.umask(old)
  assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == expected
  assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == expected
  assert stat.S_IMODE((tmp_path / "sub" / "new.txt").stat().st_mode) == expected


def test_rewritten_file_keeps_its_mode(tmp_path):
  path = tmp_path / "m.json"
  fileio.write_json(path, {"a": 1})
  os.chmod(path, 0o640)
  fileio.write_json(path, {"a": 2})
  assert stat.S_IMODE(path.stat().st_mode) == 0o640
  assert fileio.read_json(path) == {"a": 2}


@pytest.mark.parametrize("content", [b'{"method": "two_tim', b"", b"\x00\xff\xfegarbage",
                                     b"[1, 2,"])
@pytest.mark.parametrize("name", ["config.json", "phases.json"])
def test_damaged_json_names_the_file(tmp_path, name, content):
  path = tmp_path / name
  path.write_bytes(content)
  with pytest.raises(DataError) as e:
    fileio.read_json(path)
  msg = str(e.value)
  assert str(path) in msg and "delete it" in msg
  assert path.read_bytes() == content  # left as it was


def _write_ac3_film(path, damaged=(), seconds=3, rate=48000, container="matroska"):
  """A small mkv (MJPEG pictures, stereo AC3 sound) whose audio packets with index in `damaged`
  get every 7th payload byte flipped (the sync word included), so the decoder refuses them.
  Returns the (start, end) seconds of each damaged packet."""
  t = np.arange(seconds * rate) / rate
  x_CxS = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1250 * t)])
  spans = []
  with av.open(str(path), "w", format=container) as out:
    v = out.add_stream("mjpeg", rate=25)
    v.width, v.height, v.pix_fmt = 64, 48, "yuvj420p"
    a = out.add_stream("ac3", rate=rate, layout="stereo")
    for i in range(seconds * 25):
      f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i % 255, np.uint8), format="rgb24")
      f.pts, f.time_base = i, fractions.Fraction(1, 25)
      for p in v.encode(f):
        out.mux(p)
    for p in v.encode():
      out.mux(p)
    k = 0

    def mux(p):
      nonlocal k
      if k in damaged:
        b = bytearray(bytes(p))
        for j in range(0, len(b), 7):
          b[j] ^= 0x5A
        q = av.Packet(bytes(b))
        q.pts, q.dts, q.duration, q.time_base = p.pts, p.dts, p.duration, p.time_base
        q.stream = p.stream
        spans.append((float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base)))
        p = q
      k += 1
      out.mux(p)

    for i in range(0, x_CxS.shape[1], 1536):
      f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x_CxS[:, i:i + 1536], np.float32),
                                     format="fltp", layout="stereo")
      f.sample_rate, f.pts, f.time_base = rate, i, fractions.Fraction(1, rate)
      for p in a.encode(f):
        mux(p)
    for p in a.encode(None):
      mux(p)
  return spans, k


@pytest.mark.parametrize("container", ["matroska", "avi"])
def test_sparse_bad_audio_packets_become_silence_with_a_warning(tmp_path, container):
  """3 of 94 AC3 packets refused by the decoder (as in a real AVI FFmpeg plays): the film is
  decoded, the lost spans are silent, the rest equals the undamaged file's audio at the same
  timestamps, and a warning gives the count. In AVI the flipped sync words make the demuxer merge
  a damaged packet with its neighbours (2 refused packets of 91 here, spanning 5 packets' time),
  so their declared durations undercount the lost span: the next frame's timestamp fills it."""
  suffix = {"matroska": "mkv", "avi": "avi"}[container]
  clean, bad = tmp_path / f"clean.{suffix}", tmp_path / f"bad.{suffix}"
  _write_ac3_film(clean, container=container)
  spans, n = _write_ac3_film(bad, damaged={20, 21, 60}, container=container)
  ref = decode.decode_audio(clean)
  with pytest.warns(decode.DamagedAudioWarning) as w:
    got = decode.decode_audio(bad)
  msg = str(w[0].message)
  counted = f"3 of {n} audio packets" if container == "matroska" else "audio packets"
  assert str(bad) in msg and counted in msg and "s of silence" in msg
  assert got.shape == ref.shape == (3 * 16000,)
  lost = np.zeros(got.size, bool)
  for start, end in spans:
    i, j = int(start * 16000), int(end * 16000)
    lost[i:j] = True
    inner = got[i + 16:j - 16]  # a few samples of resampler filter at the edges
    assert inner.size > 400 and np.abs(inner).max() < 1e-3, (start, np.abs(inner).max())
  # Away from the lost spans (AC3 blocks overlap: one packet after each span also differs), the
  # audio is the clean file's, at the same timestamps.
  keep = ~np.convolve(lost, np.ones(2 * 1024 + 1, bool), mode="same")
  assert keep.sum() > 0.6 * got.size
  np.testing.assert_allclose(got[keep], ref[keep], atol=2e-3)


def test_damaged_audio_beyond_the_share_is_refused(tmp_path):
  path = tmp_path / "bad.mkv"
  _, n = _write_ac3_film(path, damaged=set(range(10, 20)))
  assert 10 > decode.MAX_DAMAGED_AUDIO_SHARE * n
  with pytest.raises(DataError) as e:
    extract_film(path, ["vggish_logmel"])
  msg = str(e.value)
  assert str(path) in msg and "10 of" in msg and "MAX_DAMAGED_AUDIO_SHARE" in msg


# --- command line: flags that used to end in a traceback -----------------------------------------

@contextlib.contextmanager
def _main_with(*args):
  """main.py's module with its flags parsed from `args` (in-process: no JAX start-up per case)."""
  import main  # pylint: disable=import-outside-toplevel
  main.FLAGS.unparse_flags()
  main.FLAGS(["main.py", *args])
  try:
    yield main
  finally:
    main.FLAGS.unparse_flags()


def _sentinel(folder):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "earlier.txt").write_text("written before")
  return lambda: sorted(p.name for p in folder.rglob("*")) == ["earlier.txt"] and (
      (folder / "earlier.txt").read_text() == "written before")


def test_doctor_without_manual_dir_names_the_flag():
  with _main_with("--mode=doctor", "--dataset=mediaeval2018") as main:
    with pytest.raises(app.UsageError, match="--manual_dir is required in doctor mode"):
      main.run("doctor")


def test_build_with_an_unknown_dataset_config_lists_the_known_ones(tmp_path):
  untouched = _sentinel(tmp_path / "data")
  with _main_with("--mode=build", "--dataset=mediaeval2018", "--dataset_config=bogus",
                  f"--data_dir={tmp_path / 'data'}", f"--manual_dir={tmp_path}") as main:
    with pytest.raises(errors.ConfigError) as e:
      main.run("build")
  msg = str(e.value)
  assert "--dataset_config=bogus" in msg and "official_features" in msg and "mediaeval2018" in msg
  assert untouched()


def test_build_without_manual_dir_names_the_flag(tmp_path):
  untouched = _sentinel(tmp_path / "data")
  with _main_with("--mode=build", "--dataset=mediaeval2018", "--dataset_config=official_features",
                  f"--data_dir={tmp_path / 'data'}") as main:
    with pytest.raises(app.UsageError, match="--manual_dir is required to build mediaeval2018"):
      main.run("build")
  assert untouched()


@pytest.mark.parametrize("mode", ["train", "evaluate", "predict"])
def test_workdir_that_is_a_file_is_named(tmp_path, mode):
  path = tmp_path / "run"
  path.write_text("my notes")
  with _main_with(f"--mode={mode}", f"--workdir={path}", f"--video={tmp_path}") as main:
    with pytest.raises(errors.ConfigError, match=f"--workdir={path} is an existing file"):
      main.run(mode)
  assert path.read_text() == "my notes"


@pytest.mark.parametrize("content", [b'{"method": "two_timescale", "seed', b"\x89PNG garbage"])
def test_evaluate_with_a_damaged_config_json_names_it(tmp_path, content):
  (tmp_path / "config.json").write_bytes(content)
  with _main_with("--mode=evaluate", f"--workdir={tmp_path}") as main:
    with pytest.raises(DataError) as e:
      main.run("evaluate")
  assert str(tmp_path / "config.json") in str(e.value)
  assert (tmp_path / "config.json").read_bytes() == content


def test_predict_output_that_is_a_file_is_refused_before_any_work(tmp_path):
  out = tmp_path / "out.csv"
  out.write_text("earlier predictions")
  with pytest.raises(errors.ConfigError, match=f"--output {out} is an existing file"):
    predict.predict(None, tmp_path / "no_run", str(tmp_path), str(out))
  assert out.read_text() == "earlier predictions"


def test_predict_output_that_cannot_be_written_is_refused(tmp_path):
  if os.geteuid() == 0:  # root writes through permission bits: use a folder no one can write
    out = pathlib.Path("/sys")
    try:
      fd, probe = tempfile.mkstemp(dir=out)
    except OSError:
      pass
    else:
      os.close(fd)
      os.unlink(probe)
      pytest.skip("no unwritable folder on this machine")
  else:
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o500)
  with pytest.raises(errors.ConfigError, match=f"--output {out}: cannot write there"):
    predict.predict(None, tmp_path / "no_run", str(tmp_path), str(out))
  with pytest.raises(errors.ConfigError, match="cannot write there"):
    predict.check_output_dir(out / "sub" / "dir")


def test_evaluate_checkpoint_of_a_run_with_other_streams_is_named(tmp_path):
  """--checkpoint of a run trained on other streams: a ConfigError naming both runs' streams and
  the workdir to evaluate it with, instead of a KeyError while building the model."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from conftest import toy_config  # pylint: disable=import-outside-toplevel
  from emojax import checkpoint  # pylint: disable=import-outside-toplevel
  config = toy_config(tmp_path / "data")  # arousal on ("audio", "action")
  run_a, run_b = tmp_path / "a", tmp_path / "b"
  fileio.write_json(run_a / "config.json", config.to_dict())
  fileio.write_json(run_b / "config.json", {"note": "run b"})
  checkpoint.save_model(run_b / "final_model", nnx.Linear(3, 1, rngs=nnx.Rngs(0)),
                        {"method": "two_timescale", "feature_dims": {"audio": 3},
                         "modalities": ["audio"], "targets": ["arousal"]})
  before = (run_a / "config.json").read_bytes()
  with _main_with("--mode=evaluate", f"--workdir={run_a}",
                  f"--checkpoint={run_b / 'final_model'}") as main:
    with pytest.raises(errors.ConfigError) as e:
      main.run("evaluate")
  msg = str(e.value)
  assert str(run_b / "final_model") in msg and "streams ['audio']" in msg
  assert "['action', 'audio']" in msg and f"--workdir={run_b}" in msg
  assert (run_a / "config.json").read_bytes() == before and not (run_a / "evaluation").exists()
