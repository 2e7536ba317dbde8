"""Bad inputs found by trying (issue 8 section 3): each gets a clear error naming the file or key,
and nothing written before is lost."""

import os
import stat

import pytest

from emojax import fileio
from emojax.errors import DataError


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
