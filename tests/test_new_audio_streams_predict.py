"""predict's path for the openSMILE and VGGish-embedding streams: a trained run's manifest ->
`extractor_spec` -> `extract_film` on a new film -> `compare_manifests` -> `film_store`.

(`predict.predict` does exactly these steps after loading the checkpoint; training a model for
this test would only add minutes.)
"""

import numpy as np
import pytest

from conftest import MEDIA_FIXTURE
from emojax import predict
from emojax.errors import ManifestMismatchError
from emojax.features import extract_film, manifest

pytest.importorskip("opensmile")


def _tiny_vggish(path):
  """Narrow VGGish weights in the documented npz layout (widths are read from the file)."""
  rng = np.random.default_rng(0)
  w, cin = {}, 1
  for name, cout in zip(("conv1", "conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2"),
                        (2, 3, 3, 4, 4, 4)):
    w[f"{name}/kernel"] = rng.normal(0, 0.3, (3, 3, cin, cout)).astype(np.float32)
    w[f"{name}/bias"] = rng.normal(0, 0.1, cout).astype(np.float32)
    cin = cout
  for name, (a, b) in zip(("fc1_1", "fc1_2", "fc2"), ((96, 8), (8, 8), (8, 5))):
    w[f"{name}/kernel"] = rng.normal(0, 0.3, (a, b)).astype(np.float32)
    w[f"{name}/bias"] = rng.normal(0, 0.1, b).astype(np.float32)
  np.savez(path, **w)
  return path


def test_manifest_round_trip_extracts_the_new_streams(tmp_path):
  weights = _tiny_vggish(tmp_path / "vggish.npz")
  spec = {"opensmile_functionals": {"feature_set": "eGeMAPSv02", "window_s": 3},
          "vggish_embedding": {"weights_path": str(weights)}}
  trained = manifest.for_spec(spec)  # what a dataset built with this spec records
  again = manifest.extractor_spec(trained)  # what predict extracts from a new film
  assert again["vggish_embedding"]["weights_sha256"] == trained["extractors"][
      "vggish_embedding"]["params"]["weights_sha256"]
  ff = extract_film(MEDIA_FIXTURE, again)
  manifest.compare_manifests(trained, ff.manifest)
  assert ff.streams["opensmile_functionals"].shape == (5, 88)
  assert ff.streams["vggish_embedding"].shape == (5, 5)
  assert all(np.isfinite(v).all() for v in ff.streams.values())
  store = predict.film_store("bbb", ff.streams, ("opensmile_functionals", "vggish_embedding"))
  assert store is not None
  # Features made with another window are refused, naming the param.
  other = manifest.for_spec({**spec, "opensmile_functionals": {"feature_set": "eGeMAPSv02"}})
  with pytest.raises(ManifestMismatchError, match="window_s"):
    manifest.compare_manifests(trained, other)


def test_opensmile_films_config_names_its_streams():
  from configs import two_timescale_films_opensmile as cfg  # pylint: disable=g-import-not-at-top
  for arg, feature_set, window, dim in (("arousal,runlocal", "eGeMAPSv02", 1.0, 88),
                                        ("emobase2010,films", "emobase2010", 5.0, 1582)):
    c = cfg.get_config(arg)
    spec = c.dataset.builder_kwargs.extractors.to_dict()
    m = manifest.for_spec(spec)  # what the films builders record (and predict re-extracts)
    smile = m["extractors"]["opensmile_functionals"]
    assert smile["params"]["feature_set"] == feature_set and smile["shape"] == [dim]
    assert smile["params"]["window_s"] == window
    assert set(c.per_target.arousal.inputs.streams) <= set(m["extractors"])
    assert set(c.per_target.valence.inputs.streams) <= set(m["extractors"])
  assert cfg.get_config("films").dataset.name == "films"
