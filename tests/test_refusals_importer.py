"""What `python -m emojax.importers.attendaffectnet` refuses, and how: one line `error: ...`
naming the file / flag and the fix, exit code 2, nothing written before lost.

Rows: (input, expected fragments of the one-line message, exit code); in-process through the
importer's `main(argv)`, one subprocess row for the real command line's exit code.
"""

import numpy as np
import pytest

import refusals
from conftest import FIXTURES
from emojax.importers import attendaffectnet as imp
from refusals import USER_ERROR

AAN = FIXTURES / "attendaffectnet" / "mdb_arousal_feature_aan_video_audio.npz"


_file, _foreign = refusals.text_file, refusals.foreign_npz


def _imported(tmp):
  imp.import_released(AAN, "arousal", tmp / "w")
  return tmp / "w"


ROWS = [
    # Damaged, missing or foreign state dicts (read by emojax.weights).
    ("state_dict_truncated", lambda t: [f"--state_dict={refusals.truncated_npz(t / 'sd.npz')}",
                                        "--target=arousal", f"--workdir={t / 'w'}"],
     ["sd.npz", "--state_dict", "damaged or truncated", "download or convert it again"],
     USER_ERROR),
    ("state_dict_not_a_zip", lambda t: [f"--state_dict={_file(t, 'sd.npz')}", "--target=arousal",
                                        f"--workdir={t / 'w'}"],
     ["sd.npz", "--state_dict", "damaged or truncated"], USER_ERROR),
    ("state_dict_missing", lambda t: [f"--state_dict={t / 'nope.npz'}", "--target=arousal",
                                      f"--workdir={t / 'w'}"],
     ["nope.npz", "--state_dict does not exist", "check the path"], USER_ERROR),
    ("state_dict_unknown_format", lambda t: [f"--state_dict={_file(t, 'sd.txt')}",
                                             "--target=arousal", f"--workdir={t / 'w'}"],
     ["sd.txt", "unknown --state_dict format '.txt'", "use .npz"], USER_ERROR),
    ("state_dict_foreign", lambda t: [f"--state_dict={_foreign(t)}", "--target=arousal",
                                      f"--workdir={t / 'w'}"],
     ["not a Feature AAN state dict", "'linear1.weight'"], USER_ERROR),
    # Output path: --workdir.
    ("workdir_is_a_file", lambda t: [f"--state_dict={AAN}", "--target=arousal",
                                     f"--workdir={_file(t, 'w')}"],
     ["--workdir=", "is an existing file, not a folder"], USER_ERROR),
    ("workdir_below_a_file", lambda t: [f"--state_dict={AAN}", "--target=arousal",
                                        f"--workdir={_file(t, 'w') / 'x'}"],
     ["--workdir=", "is a file, so no folder can be made below it"], USER_ERROR),
    ("workdir_holds_a_model", lambda t: [f"--state_dict={AAN}", "--target=arousal",
                                         f"--workdir={_imported(t)}"],
     ["already holds a model", "choose a new --workdir (or --overwrite)"], USER_ERROR),
    # Flags.
    ("streams_wrong_count", lambda t: [f"--state_dict={AAN}", "--target=arousal",
                                       f"--workdir={t / 'w'}", "--streams=a,b"],
     ["--streams names 2 streams", "linear1..linear5"], USER_ERROR),
    ("target_unknown", lambda t: [f"--state_dict={AAN}", "--target=joy", f"--workdir={t / 'w'}"],
     ["--target", "invalid choice: 'joy'"], USER_ERROR),
    ("state_dict_flag_missing", lambda t: ["--target=arousal", f"--workdir={t / 'w'}"],
     ["the following arguments are required: --state_dict"], USER_ERROR),
]


@pytest.mark.parametrize("name,setup,fragments,code", ROWS, ids=[r[0] for r in ROWS])
def test_refused(tmp_path, name, setup, fragments, code):
  del name
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  got, err = refusals.run_entry(imp.main, *argv)
  refusals.check_refusal(got, err, fragments, code)
  refusals.unchanged(before)            # nothing written before is lost


def test_real_command_line_exit_code(tmp_path):
  path = _file(tmp_path, "w")
  code, err = refusals.run_cli("-m", "emojax.importers.attendaffectnet",
                               f"--state_dict={refusals.truncated_npz(tmp_path / 'sd.npz')}",
                               "--target=arousal", f"--workdir={path}")
  refusals.check_refusal(code, err, [f"--workdir={path} is an existing file"])
  assert path.read_bytes() == b"my notes"
