"""Feature manifest: JSON round trip, and mismatches refused with a message naming them."""

import copy
import json

import pytest

from emojax.errors import ConfigError, ManifestMismatchError
from emojax.features import manifest, registry


def _spec():
  return {"vggish_logmel": {}, "spectrogram_image": {"size": 128}}


def test_manifest_is_json_and_round_trips():
  m = manifest.for_spec(_spec())
  again = manifest.from_json(manifest.to_json(m))
  assert again == m
  assert m["extractors"]["vggish_logmel"]["shape"] == [96, 64]
  assert m["extractors"]["spectrogram_image"]["params"]["size"] == 128
  assert manifest.extractor_spec(m)["spectrogram_image"]["size"] == 128
  manifest.compare_manifests(m, again)  # identical: no error
  # Extra offered extractors are fine.
  bigger = manifest.for_spec({**_spec(), "audio_functionals": {}})
  manifest.compare_manifests(m, bigger)


@pytest.mark.parametrize("mutate, needle", [
    (lambda m: m["extractors"].pop("vggish_logmel"), "'vggish_logmel' is missing"),
    (lambda m: m["extractors"]["vggish_logmel"].__setitem__("version", 2),
     "'vggish_logmel': version differs: expected 1, offered 2"),
    (lambda m: m["extractors"]["spectrogram_image"]["params"].__setitem__("size", 64),
     "'spectrogram_image': param 'size' differs: expected 128, offered 64"),
    (lambda m: m["extractors"]["spectrogram_image"].__setitem__("shape", [64, 64]),
     "'spectrogram_image': shape differs: expected [128, 128], offered [64, 64]"),
    (lambda m: m["extractors"]["vggish_logmel"].__setitem__("dtype", "float16"),
     "dtype differs: expected \"float32\", offered \"float16\""),
])
def test_mismatch_refused_with_difference_named(mutate, needle):
  expected = manifest.for_spec(_spec())
  offered = copy.deepcopy(expected)
  mutate(offered)
  with pytest.raises(ManifestMismatchError) as e:
    manifest.compare_manifests(expected, offered)
  assert needle in str(e.value), str(e.value)
  assert len(manifest.differences(expected, offered)) == 1


def test_different_params_give_different_manifest():
  a = manifest.for_spec({"spectrogram_image": {"size": 128}})
  b = manifest.for_spec({"spectrogram_image": {"size": 256}})
  assert manifest.differences(a, b) and json.dumps(a) != json.dumps(b)


def test_unknown_extractor_and_param_are_config_errors():
  with pytest.raises(ConfigError, match="unknown feature extractor 'nope'"):
    registry.get("nope")
  with pytest.raises(ConfigError, match="unknown parameter"):
    registry.create("vggish_logmel", {"bands": 32})
