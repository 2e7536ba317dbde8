"""The worked example of docs/features.md (a backbone with user weights) runs as written."""

import importlib.util
import re
import sys

import numpy as np
import pytest

from conftest import MEDIA_FIXTURE, REPO
from emojax.errors import ConfigError, ManifestMismatchError
from emojax.features import extract_film, manifest, registry

# Narrow widths so the random weights stay small; the example reads every shape from the file.
WIDTHS = {"conv1": 4, "conv2": 8, "conv3_1": 8, "conv3_2": 16, "conv4_1": 16, "conv4_2": 16}


def _load_example(tmp_path):
  text = (REPO / "docs" / "features.md").read_text()
  code = re.search(r"Save it as\s+`emojax/features/vggish_example.py`:\s+```python\n(.*?)```",
                   text, re.S).group(1)
  path = tmp_path / "vggish_example.py"
  path.write_text(code)
  spec = importlib.util.spec_from_file_location("emojax.features.vggish_example", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


def _weights(rng):
  w, cin = {}, 1
  for name, cout in WIDTHS.items():
    w[f"{name}/w"] = rng.normal(0, (2 / (9 * cin)) ** 0.5, (3, 3, cin, cout)).astype(np.float32)
    w[f"{name}/b"] = rng.normal(0, 0.1, cout).astype(np.float32)
    cin = cout
  dims = [6 * 4 * cin, 32, 32, 128]
  for name, (a, b) in zip(("fc1_1", "fc1_2", "fc2"), zip(dims[:-1], dims[1:])):
    w[f"{name}/w"] = rng.normal(0, (2 / a) ** 0.5, (a, b)).astype(np.float32)
    w[f"{name}/b"] = rng.normal(0, 0.1, b).astype(np.float32)
  return w


def _numpy_forward(w, patch):
  """Independent forward: 3x3 SAME convolutions as sums of shifted images, 2x2 max pools."""
  x = patch[:, :, None].astype(np.float64)
  for layer in ("conv1", "pool", "conv2", "pool", "conv3_1", "conv3_2", "pool", "conv4_1",
                "conv4_2", "pool"):
    if layer == "pool":
      h, wd, c = x.shape
      x = x.reshape(h // 2, 2, wd // 2, 2, c).max(axis=(1, 3))
      continue
    k, b = w[f"{layer}/w"].astype(np.float64), w[f"{layer}/b"]
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:2] + (k.shape[3],))
    for dy in range(3):
      for dx in range(3):
        out += p[dy:dy + x.shape[0], dx:dx + x.shape[1]] @ k[dy, dx]
    x = np.maximum(out + b, 0)
  x = x.reshape(-1)
  for layer in ("fc1_1", "fc1_2", "fc2"):
    x = x @ w[f"{layer}/w"] + w[f"{layer}/b"]
    if layer != "fc2":
      x = np.maximum(x, 0)
  return x


def test_backbone_example_from_docs(tmp_path):
  module = _load_example(tmp_path)
  try:
    w = _weights(np.random.default_rng(0))
    wpath = tmp_path / "vggish_small.npz"
    np.savez(wpath, **w)
    with pytest.raises(ConfigError, match="needs params"):
      registry.create("vggish_example")
    ff = extract_film(MEDIA_FIXTURE, {"vggish_example": {"weights": str(wpath)},
                                      "vggish_logmel": {}})
    emb = ff.streams["vggish_example"]
    assert emb.shape == (5, 128) and emb.dtype == np.float32 and np.isfinite(emb).all()
    for s in range(5):
      ref = _numpy_forward(w, ff.streams["vggish_logmel"][s])
      np.testing.assert_allclose(emb[s], ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())
    entry = ff.manifest["extractors"]["vggish_example"]
    assert entry["params"] == {"weights": str(wpath)} and entry["shape"] == [128]
    other = manifest.for_spec({"vggish_example": {"weights": "/elsewhere.npz"}})
    with pytest.raises(ManifestMismatchError, match="param 'weights' differs"):
      manifest.compare_manifests(ff.manifest, other)
  finally:
    registry._REGISTRY.pop("vggish_example", None)  # pylint: disable=protected-access
    sys.modules.pop("emojax.features.vggish_example", None)
