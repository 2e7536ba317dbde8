"""What `python main.py --mode=evaluate` and `--mode=predict` refuse, and how: one line
`error: ...` naming the file / key / flag and the fix, exit code 2, nothing written before lost.

Rows: (input, expected fragments of the one-line message, exit code), run in-process through
main.py's entry with argv; one subprocess row proves the real command line's exit code.
"""

import os
import pathlib
import tempfile

import pytest

import refusals
from conftest import FIXTURES, toy_config
from refusals import USER_ERROR

AAN = FIXTURES / "attendaffectnet" / "mdb_arousal_feature_aan_video_audio.npz"


def _file(tmp, name="run", text="my notes"):
  p = tmp / name
  p.write_text(text)
  return p


def _config_json(tmp, content: bytes):
  tmp.mkdir(parents=True, exist_ok=True)
  (tmp / "config.json").write_bytes(content)
  return tmp


def _imported(tmp):
  """The released AttendAffectNet imported into a workdir (its config: cognimuse/intended_5s)."""
  from emojax.importers import attendaffectnet as attendaffectnet_import  # pylint: disable=import-outside-toplevel
  return attendaffectnet_import.import_released(AAN, "arousal", tmp / "aan")


def _fake_run(tmp, meta):
  """A workdir whose final_model holds `meta` (a tiny stand-in model: predict reads meta first)."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax import checkpoint, fileio  # pylint: disable=import-outside-toplevel
  run = tmp / "run"
  fileio.write_json(run / "config.json", toy_config().to_dict())
  checkpoint.save_model(run / "final_model", nnx.Linear(3, 1, rngs=nnx.Rngs(0)),
                        {"feature_dims": {"audio": 3}, "modalities": ["audio"],
                         "targets": ["arousal"], **meta})
  return run


def _unwritable(tmp):
  if os.geteuid() == 0:  # root writes through permission bits: use a folder no one can write
    out = pathlib.Path("/sys")
    try:
      fd, probe = tempfile.mkstemp(dir=out)
    except OSError:
      return out
    os.close(fd)
    os.unlink(probe)
    pytest.skip("no unwritable folder on this machine")
  out = tmp / "readonly"
  out.mkdir()
  out.chmod(0o500)
  return out


EVALUATE = [
    ("workdir_is_a_file", lambda t: [f"--workdir={_file(t)}"],
     ["--workdir=", "is an existing file, not a folder"]),
    ("workdir_below_a_file", lambda t: [f"--workdir={_file(t) / 'x'}"],
     ["is a file, so no folder can be made below it"]),
    ("config_json_truncated", lambda t: ["--workdir=" + str(
        _config_json(t / "r", b'{"method": "two_timescale", "seed'))],
     ["config.json", "delete it"]),
    ("config_json_binary", lambda t: ["--workdir=" + str(_config_json(t / "r", b"\x89PNG junk"))],
     ["config.json", "delete it"]),
    ("imported_model_dataset_not_built", lambda t: [f"--workdir={_imported(t)}"],
     ["dataset cognimuse/intended_5s is not built", "downloads/manual",
      "--mode=doctor --dataset=cognimuse", "--mode=build --dataset=cognimuse"]),
    ("checkpoint_missing", lambda t: [f"--workdir={_imported(t)}", f"--checkpoint={t / 'nope'}"],
     ["checkpoint directory", "nope", "does not exist"]),
]

PREDICT = [
    ("workdir_is_a_file", lambda t: [f"--workdir={_file(t)}", f"--video={t}"],
     ["--workdir=", "is an existing file"]),
    ("output_is_a_file", lambda t: [f"--workdir={t / 'no_run'}", f"--video={t}",
                                    f"--output={_file(t, 'out.csv', 'earlier predictions')}"],
     ["--output=", "out.csv is an existing file, not a folder"]),
    ("output_cannot_be_written", lambda t: [f"--workdir={t / 'no_run'}", f"--video={t}",
                                            f"--output={_unwritable(t)}"],
     ["--output=", "cannot write there", "a folder you can write to"]),
    ("output_below_unwritable", lambda t: [f"--workdir={t / 'no_run'}", f"--video={t}",
                                           f"--output={_unwritable(t) / 'sub' / 'dir'}"],
     ["--output=", "cannot write there"]),
    ("imported_model", lambda t: [f"--workdir={_imported(t)}", f"--video={t}",
                                  f"--output={t / 'out'}"],
     ["is an imported attendaffectnet model", "name no emojax extractor", "--backbones=DIR",
      "--mode=evaluate"]),
    ("per_clip_model", lambda t: [
        f"--workdir={_fake_run(t, {'method': 'video_convnets', 'task': {'unit': 'clip'}})}",
        f"--video={t}", f"--output={t / 'out'}"],
     ["is a per-clip video_convnets model whose streams ['audio'] have no extractor",
      "--mode=evaluate"]),
    ("no_feature_manifest", lambda t: [
        f"--workdir={_fake_run(t, {'method': 'two_timescale', 'task': {'unit': 'second'}})}",
        f"--video={t}", f"--output={t / 'out'}"],
     ["without a feature manifest", "['audio']", "configs/two_timescale_films.py"]),
]


@pytest.mark.parametrize("name,setup,fragments", EVALUATE, ids=[r[0] for r in EVALUATE])
def test_evaluate_refuses(tmp_path, monkeypatch, name, setup, fragments):
  del name
  monkeypatch.setenv("EMOJAX_DATA_DIR", str(tmp_path / "no_data"))
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_main("--mode=evaluate", *argv)
  refusals.check_refusal(code, err, fragments, USER_ERROR)
  refusals.unchanged(before)


@pytest.mark.parametrize("name,setup,fragments", PREDICT, ids=[r[0] for r in PREDICT])
def test_predict_refuses(tmp_path, name, setup, fragments):
  del name
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_main("--mode=predict", *argv)
  refusals.check_refusal(code, err, fragments, USER_ERROR)
  refusals.unchanged(before)


def test_evaluate_checkpoint_of_a_run_with_other_streams_is_named(tmp_path):
  """--checkpoint of a run trained on other streams: a ConfigError naming both runs' streams and
  the workdir to evaluate it with, instead of a KeyError while building the model."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax import checkpoint, fileio  # pylint: disable=import-outside-toplevel
  config = toy_config()  # arousal on ("audio", "action")
  run_a, run_b = tmp_path / "a", tmp_path / "b"
  fileio.write_json(run_a / "config.json", config.to_dict())
  fileio.write_json(run_b / "config.json", {"note": "run b"})
  checkpoint.save_model(run_b / "final_model", nnx.Linear(3, 1, rngs=nnx.Rngs(0)),
                        {"method": "two_timescale", "feature_dims": {"audio": 3},
                         "modalities": ["audio"], "targets": ["arousal"]})
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_main("--mode=evaluate", f"--workdir={run_a}",
                                f"--checkpoint={run_b / 'final_model'}")
  refusals.check_refusal(code, err, [str(run_b / "final_model"), "streams ['audio']",
                                     "['action', 'audio']", f"--workdir={run_b}"])
  refusals.unchanged(before)
  assert not (run_a / "evaluation").exists() and not (run_a / "eval").exists()


def test_real_command_line_exit_code(tmp_path):
  out = _file(tmp_path, "out.csv", "earlier predictions")
  code, err = refusals.run_cli("main.py", "--mode=predict", f"--workdir={tmp_path / 'no_run'}",
                               f"--video={tmp_path}", f"--output={out}")
  refusals.check_refusal(code, err, [f"--output={out} is an existing file"])
  assert out.read_text() == "earlier predictions"
