"""vggish_embedding and convert_vggish against an independent NumPy forward pass of torchvggish.

The weights are generated: a torchvggish-style state dict (PyTorch names and layouts: OIHW convs,
(out, in) linears) with narrow widths, saved as .npz and converted without torch. The reference
runs the PyTorch port's computation on that state dict directly (NCHW convolutions, the NHWC
transpose before flattening), so it checks the converter's transposes and the Flax model at once.
"""

import importlib.util

import numpy as np
import pytest

from conftest import MEDIA_FIXTURE
from emojax.errors import ConfigError, DataError, ManifestMismatchError, WeightsError
from emojax.features import convert_vggish, extract_film, manifest, registry, vggish_embedding
from emojax.features import vggish_logmel

CONV_WIDTHS = (3, 4, 4, 6, 6, 8)  # VGGish: 64, 128, 256, 256, 512, 512
FC_WIDTHS = (16, 12, 10)  # VGGish: 4096, 4096, 128


def _torch_state_dict(rng):
  sd, cin = {}, 1
  for i, cout in zip((0, 3, 6, 8, 11, 13), CONV_WIDTHS):
    sd[f"features.{i}.weight"] = rng.normal(0, (2 / (9 * cin)) ** 0.5,
                                            (cout, cin, 3, 3)).astype(np.float32)
    sd[f"features.{i}.bias"] = rng.normal(0, 0.1, cout).astype(np.float32)
    cin = cout
  fin = 6 * 4 * cin
  for i, fout in zip((0, 2, 4), FC_WIDTHS):
    sd[f"embeddings.{i}.weight"] = rng.normal(0, (2 / fin) ** 0.5, (fout, fin)).astype(np.float32)
    sd[f"embeddings.{i}.bias"] = rng.normal(0, 0.1, fout).astype(np.float32)
    fin = fout
  return sd


def _pca(rng, dim):
  q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  return {"pca_eigen_vectors": (q * 0.8).astype(np.float32),
          "pca_means": rng.normal(0, 0.3, (dim, 1)).astype(np.float32)}  # (128, 1) as published


def _torch_forward(sd, patch_96x64, final_relu=True):
  """torchvggish's VGG.forward in NumPy float64: NCHW, padding 1, ReLU, 2x2 pools, then
  transpose(1, 3), transpose(1, 2) (-> N, H, W, C) and flatten, embeddings with ReLUs."""
  x = patch_96x64[None].astype(np.float64)  # (C=1, H, W)
  for i in (0, "M", 3, "M", 6, 8, "M", 11, 13, "M"):
    if i == "M":
      c, h, w = x.shape
      x = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
      continue
    k, b = sd[f"features.{i}.weight"].astype(np.float64), sd[f"features.{i}.bias"]
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((k.shape[0],) + x.shape[1:])
    for dy in range(3):
      for dx in range(3):
        out += np.einsum("oc,chw->ohw", k[:, :, dy, dx], p[:, dy:dy + x.shape[1],
                                                           dx:dx + x.shape[2]])
    x = np.maximum(out + b[:, None, None], 0)
  x = x.transpose(1, 2, 0).reshape(-1)  # (C, H, W) -> (H, W, C), as torchvggish
  for n, i in enumerate((0, 2, 4)):
    x = sd[f"embeddings.{i}.weight"].astype(np.float64) @ x + sd[f"embeddings.{i}.bias"]
    if n < 2 or final_relu:
      x = np.maximum(x, 0)
  return x


def _published_postprocess(emb, pca):
  """vggish_postprocess.Postprocessor.postprocess, as published (column-vector means)."""
  pca_applied = np.dot(pca["pca_eigen_vectors"].astype(np.float64),
                       (emb.T - pca["pca_means"].astype(np.float64))).T
  clipped = np.clip(pca_applied, -2.0, 2.0)
  return pca_applied, ((clipped - -2.0) * (255.0 / 4.0)).astype(np.uint8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  rng = np.random.default_rng(0)
  d = tmp_path_factory.mktemp("vggish")
  sd = _torch_state_dict(rng)
  pca = _pca(rng, FC_WIDTHS[-1])
  np.savez(d / "sd.npz", **sd)
  np.savez(d / "pca.npz", **pca)
  assert convert_vggish.main([str(d / "sd.npz"), str(d / "vggish.npz"),
                              "--pca", str(d / "pca.npz")]) == 0
  convert_vggish.main([str(d / "sd.npz"), str(d / "vggish_nopca.npz")])
  return sd, pca, d


def test_converter_layout(weights):
  sd, pca, d = weights
  with np.load(d / "vggish.npz") as z:
    arrays = dict(z)
  assert sorted(arrays) == sorted(vggish_embedding.param_names(with_pca=True))
  np.testing.assert_array_equal(arrays["conv2/kernel"][1, 2, 0, 3],
                                sd["features.3.weight"][3, 0, 1, 2])
  np.testing.assert_array_equal(arrays["fc1_1/kernel"], sd["embeddings.0.weight"].T)
  assert arrays["pca_means"].shape == (FC_WIDTHS[-1],)


def test_extract_matches_numpy_forward(weights):
  sd, _, d = weights
  ff = extract_film(MEDIA_FIXTURE, {"vggish_embedding": {"weights_path": str(d / "vggish.npz")},
                                    "vggish_logmel": {}})
  emb = ff.streams["vggish_embedding"]
  assert emb.shape == (5, FC_WIDTHS[-1]) and emb.dtype == np.float32
  for s in range(5):
    ref = _torch_forward(sd, ff.streams["vggish_logmel"][s])
    np.testing.assert_allclose(emb[s], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
  entry = ff.manifest["extractors"]["vggish_embedding"]
  assert entry["shape"] == [FC_WIDTHS[-1]] and entry["per"] == "second"
  assert entry["params"]["weights_path"] == str(d / "vggish.npz")
  assert len(entry["params"]["weights_sha256"]) == 64
  other = manifest.for_spec({"vggish_embedding": {"weights_path": str(d / "vggish_nopca.npz")}})
  with pytest.raises(ManifestMismatchError, match="weights_sha256"):
    manifest.compare_manifests(ff.manifest, other)


def test_postprocess_and_final_relu_match_published(weights):
  sd, pca, d = weights
  rng = np.random.default_rng(1)
  t = np.arange(16000) / 16000
  patches = np.stack([vggish_logmel.log_mel((0.3 * np.sin(2 * np.pi * f * t)
                                             + 0.05 * rng.normal(size=t.size)).astype(np.float32))
                      for f in (220.0, 440.0, 1000.0, 3000.0)] * 5)  # 20: two batches
  for final_relu in (True, False):
    ref = np.stack([_torch_forward(sd, p, final_relu) for p in patches])
    pca_ref, codes_ref = _published_postprocess(ref, pca)
    for mode, expected in (("none", ref), ("pca", pca_ref)):
      e = registry.create("vggish_embedding", {"weights_path": str(d / "vggish.npz"),
                                               "postprocess": mode, "final_relu": final_relu})
      e.begin(len(patches))
      np.testing.assert_allclose(e.embed(patches), expected, rtol=1e-4,
                                 atol=1e-4 * np.abs(expected).max())
    e = registry.create("vggish_embedding", {"weights_path": str(d / "vggish.npz"),
                                             "postprocess": "pca_quantize",
                                             "final_relu": final_relu})
    e.begin(len(patches))
    codes = e.embed(patches)
    assert codes.dtype == np.float32 and np.all(codes == np.round(codes))
    # float32 vs float64 may move a value across a code boundary: at most one code, rarely.
    assert np.abs(codes - codes_ref).max() <= 1 and np.mean(codes == codes_ref) > 0.97
    assert ((codes > 0) & (codes < 255)).mean() > 0.5  # mostly inside the clipping range


def test_bad_weights_name_the_parameter(weights, tmp_path):
  sd, pca, d = weights
  with np.load(d / "vggish.npz") as z:
    arrays = dict(z)
  missing = dict(arrays)
  del missing["conv3_2/bias"]
  np.savez(tmp_path / "missing.npz", **missing)
  with pytest.raises(DataError, match="conv3_2/bias"):
    registry.create("vggish_embedding", {"weights_path": str(tmp_path / "missing.npz")})
  wrong = dict(arrays, **{"fc1_2/kernel": arrays["fc1_2/kernel"][:-1]})
  np.savez(tmp_path / "wrong.npz", **wrong)
  with pytest.raises(DataError, match="fc1_2/kernel"):
    registry.create("vggish_embedding", {"weights_path": str(tmp_path / "wrong.npz")})
  with pytest.raises(ConfigError, match="does not exist"):
    registry.create("vggish_embedding", {"weights_path": str(tmp_path / "nothing.npz")})
  with pytest.raises(ConfigError, match="needs params"):
    registry.create("vggish_embedding")
  with pytest.raises(DataError, match="pca_eigen_vectors"):
    registry.create("vggish_embedding", {"weights_path": str(d / "vggish_nopca.npz"),
                                         "postprocess": "pca"})
  with pytest.raises(ConfigError, match="sha256"):
    registry.create("vggish_embedding", {"weights_path": str(d / "vggish.npz"),
                                         "weights_sha256": "0" * 64})
  bad_sd = dict(sd)
  del bad_sd["embeddings.2.bias"]
  with pytest.raises(DataError, match="embeddings.2.bias"):
    convert_vggish.convert(bad_sd)
  with pytest.raises(DataError, match="pca_means"):
    convert_vggish.convert(sd, {"pca_eigen_vectors": pca["pca_eigen_vectors"]})
  if importlib.util.find_spec("torch") is None:
    (tmp_path / "vggish.pth").write_bytes(b"not read")
    with pytest.raises(WeightsError, match="needs the optional torch"):
      convert_vggish.read_state_dict(tmp_path / "vggish.pth")
