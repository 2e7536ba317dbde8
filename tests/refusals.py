"""Helpers of the tests/test_refusals_<command>.py tables: run a command in-process with argv, get
(exit code, stderr), and check that files written before are untouched.

Every table row is (id, set-up, argv, expected fragment of the one-line message, exit code); a row's
set-up writes what the row needs under tmp_path and returns the argv's substitutions.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
USER_ERROR = 2


def run_main(*argv: str) -> tuple[int, str]:
  """main.py with `argv`, in-process (no JAX start-up per row): (exit code, stderr)."""
  import main  # pylint: disable=import-outside-toplevel
  err = io.StringIO()
  _drop_config_flags(main)   # overrides another in-process caller left defined
  main.FLAGS.unparse_flags()
  saved_argv, sys.argv = sys.argv, ["main.py", *argv]  # config_flags reads overrides from there
  try:
    with contextlib.redirect_stderr(err):
      try:
        rest = main.parse_flags(sys.argv)
        code = main.main(rest)
      except SystemExit as e:
        code = e.code
  finally:
    sys.argv = saved_argv
    _drop_config_flags(main)   # this run's overrides
    main.FLAGS.unparse_flags()
  return _code(code), err.getvalue()


def _drop_config_flags(main) -> None:
  """Deletes the `--config.x.y` override flags ml_collections defined while parsing (each parse
  defines them anew: a second definition is an error)."""
  for name in [n for n in main.FLAGS if n.startswith("config.")]:
    delattr(main.FLAGS, name)


def run_entry(entry, *argv: str) -> tuple[int, str]:
  """An argparse command's `main(argv)`, in-process: (exit code, stderr)."""
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    try:
      code = entry(list(argv))
    except SystemExit as e:
      code = e.code
  return _code(code), err.getvalue()


def run_cli(*args: str, cwd=REPO, timeout: int = 300) -> tuple[int, str]:
  """The real command line in a subprocess (a couple of rows per command): (exit code, stderr)."""
  p = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                     timeout=timeout, check=False)
  return p.returncode, p.stderr


def _code(code) -> int:
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)  # sys.exit("message") exits 1
  return 1


def error_line(stderr: str) -> str:
  """The `error: ...` line of stderr (asserting there is exactly one, and no traceback)."""
  assert "Traceback" not in stderr, stderr
  lines = [l for l in stderr.splitlines()   # ours, or argparse's "prog: error: ..." (exit 2)
           if l.startswith("error: ") or (": error: " in l and not l.startswith(" "))]
  assert len(lines) == 1, stderr
  return lines[0]


def check_refusal(code: int, stderr: str, fragments, want_code: int = USER_ERROR) -> str:
  line = error_line(stderr)
  assert code == want_code, (code, stderr)
  for fragment in ([fragments] if isinstance(fragments, str) else fragments):
    assert fragment in line, (fragment, line)
  return line


def snapshot(*roots: pathlib.Path) -> dict[str, bytes | None]:
  """{path: bytes (None for a folder)} of every file and folder under `roots`."""
  out = {}
  for root in roots:
    if root.is_file():
      out[str(root)] = root.read_bytes()
    for p in sorted(root.rglob("*")) if root.is_dir() else ():
      out[str(p)] = p.read_bytes() if p.is_file() else None
  return out


def unchanged(before: dict[str, bytes | None]) -> None:
  """Every file and folder of `before` still there, byte-identical."""
  for path, content in before.items():
    p = pathlib.Path(path)
    assert p.exists(), f"{p} was removed"
    if content is not None:
      assert p.read_bytes() == content, f"{p} was changed"


def truncated_npz(path: pathlib.Path, arrays: dict | None = None) -> pathlib.Path:
  """A `.npz` cut in half (a download that stopped): numpy's load ends in BadZipFile."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **(arrays or {"w": np.arange(4096, dtype=np.float32)}))
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  return path


def text_file(tmp: pathlib.Path, name: str, content: bytes = b"my notes") -> pathlib.Path:
  """A file of the given name that is not what its suffix says (e.g. notes saved as .npz)."""
  p = tmp / name
  p.write_bytes(content)
  return p


def foreign_npz(tmp: pathlib.Path) -> pathlib.Path:
  """A readable .npz of another network's names (a ResNet's classifier)."""
  path = tmp / "resnet.npz"
  np.savez(path, **{"fc.weight": np.zeros((1, 8), np.float32)})
  return path
