"""Bad inputs found by trying (issue 8 section 3): each gets a clear error naming the file or key,
and nothing written before is lost."""

import fractions
import os
import stat

import av
import numpy as np
import pytest

from emojax import fileio
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


# The command-line refusals that were here (doctor / build flags, --workdir / --output paths, a
# damaged config.json in evaluate, another run's --checkpoint) are rows of the tables in
# tests/test_refusals_<command>.py now, with their exit code.
