"""What `python -m emojax.features.convert_vggish` refuses, and what every reader of a user's
weights refuses (all through `emojax.weights`): one line naming the file, its role and the fix
(exit code 2 on the command line), never `zipfile.BadZipFile` or h5py's OSError, nothing written
before lost.
"""

import numpy as np
import pytest

import refusals
from emojax import errors
from emojax.features import convert_vggish
from refusals import USER_ERROR


_file, _foreign = refusals.text_file, refusals.foreign_npz


def _state_dict(tmp):
  """A torchvggish-named state dict of the right names (tiny shapes: the names are checked first)."""
  path = tmp / "sd.npz"
  np.savez(path, **{k: np.zeros((2, 1, 3, 3) if k.startswith("features") and k.endswith("weight")
                                else (2, 2) if k.endswith("weight") else (2,), np.float32)
                    for k in convert_vggish.torch_names()})
  return path


CONVERT = [
    ("state_dict_truncated", lambda t: [str(refusals.truncated_npz(t / "vggish.npz")),
                                        str(t / "out.npz")],
     ["vggish.npz", "torchvggish state dict", "damaged or truncated", "convert it again"]),
    ("state_dict_missing", lambda t: [str(t / "nope.pth"), str(t / "out.npz")],
     ["nope.pth", "does not exist", "check the path"]),
    ("state_dict_unknown_format", lambda t: [str(_file(t, "vggish.onnx")), str(t / "out.npz")],
     ["vggish.onnx", "unknown torchvggish state dict format '.onnx'"]),
    ("state_dict_foreign", lambda t: [str(_foreign(t)), str(t / "out.npz")],
     ["resnet.npz", "torchvggish weight(s)", "missing"]),
    ("pca_truncated", lambda t: [str(_state_dict(t)), str(t / "out.npz"),
                                 f"--pca={refusals.truncated_npz(t / 'pca.npz')}"],
     ["pca.npz", "--pca file", "damaged or truncated"]),
    ("out_is_a_folder", lambda t: [str(_state_dict(t)), str(t)],
     ["the output file", "is an existing folder, not a file"]),
    ("out_below_a_file", lambda t: [str(_state_dict(t)), str(_file(t, "f") / "out.npz")],
     ["the output file", "is a file, so it cannot hold out.npz"]),
    ("arguments_missing", lambda t: [str(_state_dict(t))],
     ["the following arguments are required: out"]),
]


@pytest.mark.parametrize("name,setup,fragments", CONVERT, ids=[r[0] for r in CONVERT])
def test_convert_vggish_refuses(tmp_path, name, setup, fragments):
  del name
  argv = setup(tmp_path)
  before = refusals.snapshot(tmp_path)
  code, err = refusals.run_entry(convert_vggish.main, *argv)
  refusals.check_refusal(code, err, fragments, USER_ERROR)
  refusals.unchanged(before)
  assert not (tmp_path / "out.npz").exists()


def _video_convnets(path):
  from configs import video_convnets as cfg  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets as vcn  # pylint: disable=import-outside-toplevel
  c = cfg.get_config("c3d,valence,runlocal")
  net = nnx.eval_shape(lambda: vcn.VideoNet(c, (8, 40, 40, 3), nnx.Rngs(0)))
  vcn.load_weights(net, path)


def _fusion_lstm(path):
  from configs import fusion_lstm as cfg  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from emojax.models import fusion_lstm as fl  # pylint: disable=import-outside-toplevel
  c = cfg.get_config("arousal,runlocal")
  with c.unlocked():
    c.model.visual_weights = str(path)
  nnx.eval_shape(lambda: fl.create(c, {"keyframe": (2, 40, 40, 3),
                                       "spectrogram_image": (2, 40, 40)}, nnx.Rngs(0)))


def _vggish(path):
  from emojax.features import vggish_embedding  # pylint: disable=import-outside-toplevel
  vggish_embedding.read_weights(path)


def _importer(path):
  from emojax.importers import attendaffectnet as attendaffectnet_import  # pylint: disable=import-outside-toplevel
  attendaffectnet_import.load_state_dict(path)


def _face(path):
  pytest.importorskip("h5py")
  from emojax.features import face_expression  # pylint: disable=import-outside-toplevel
  face_expression.load_mini_xception(path)


def _h5(path):
  pytest.importorskip("h5py")
  from emojax import weights  # pylint: disable=import-outside-toplevel
  weights.read_state_dict(path, what="Keras weights")


READERS = [  # (id, reader, file name, its role in the message)
    ("video_convnets_weights", _video_convnets, "c3d.npz", "config.model.weights"),
    ("fusion_lstm_pretrained", _fusion_lstm, "alexnet.npz", "config.model.visual_weights"),
    ("vggish_embedding_weights", _vggish, "vggish.npz", "VGGish weights (param weights_path)"),
    ("attendaffectnet_state_dict", _importer, "aan.npz", "--state_dict"),
    ("face_expression_h5", _face, "emotion_model.hdf5", "face_expression weights"),
    ("keras_h5_state_dict", _h5, "model.h5", "Keras weights"),
]


@pytest.mark.parametrize("damage", ["truncated", "not_an_archive"])
@pytest.mark.parametrize("name,reader,filename,role", READERS, ids=[r[0] for r in READERS])
def test_every_weights_reader_names_a_damaged_file(tmp_path, name, reader, filename, role, damage):
  del name
  path = tmp_path / filename
  if damage == "not_an_archive":
    path.write_bytes(b"<html>404 Not Found</html>")   # a failed download saved as the file
  elif path.suffix == ".npz":
    refusals.truncated_npz(path)
  else:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
      f.create_dataset("model_weights/w", data=np.arange(4096, dtype=np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
  before = path.read_bytes()
  with pytest.raises(errors.WeightsError) as e:
    reader(path)
  msg = str(e.value)
  assert "\n" not in msg and str(path) in msg and role in msg, msg
  assert "damaged or truncated" in msg and "again" in msg, msg
  assert path.read_bytes() == before


def test_real_command_line_exit_code(tmp_path):
  code, err = refusals.run_cli("-m", "emojax.features.convert_vggish",
                               str(refusals.truncated_npz(tmp_path / "vggish.npz")),
                               str(tmp_path / "out.npz"))
  refusals.check_refusal(code, err, ["vggish.npz", "damaged or truncated"])
  assert not (tmp_path / "out.npz").exists()
