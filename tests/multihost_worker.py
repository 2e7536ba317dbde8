"""Runs main.py as one process of a multi-process test run, logging every file emojax writes.

`python tests/multihost_worker.py WRITE_LOG main.py-args...`: each path passed to
emojax.fileio.atomic_write_bytes (the one writer of JSON, CSV, Markdown and PNG files) and each
TensorBoard log folder opened is appended to WRITE_LOG, so a test can tell which process wrote what
in a shared workdir.
"""

import pathlib
import runpy
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emojax import fileio  # pylint: disable=g-import-not-at-top,wrong-import-position

fileio.summary_writer_class()   # tensorboardX loaded as the harness loads it (without PyTorch)
import tensorboardX  # pylint: disable=g-import-not-at-top,wrong-import-position,wrong-import-order

_write = fileio.atomic_write_bytes
_log = pathlib.Path(sys.argv.pop(1))


def _logged_write(path, data):
  with _log.open("a") as f:
    f.write(f"{path}\n")
  return _write(path, data)


class _LoggedSummaryWriter(tensorboardX.SummaryWriter):

  def __init__(self, logdir=None, *args, **kwargs):
    with _log.open("a") as f:
      f.write(f"{logdir}\n")
    super().__init__(logdir, *args, **kwargs)


fileio.atomic_write_bytes = _logged_write
tensorboardX.SummaryWriter = _LoggedSummaryWriter
sys.argv[0] = str(REPO / "main.py")
runpy.run_path(str(REPO / "main.py"), run_name="__main__")
