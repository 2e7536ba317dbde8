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
    (lambda m: m["extractors"]["vggish_logmel"].__setitem__("version", 1),
     "'vggish_logmel': version differs: expected 2, offered 1 (v2: audio is down-mixed to the "
     "plain channel mean"),
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


def test_features_of_an_older_extractor_version_are_refused_with_what_changed():
  """Datasets and checkpoints made before the VGGish down-mix fix (extractor version 1) are
  refused, naming the change and the rebuild."""
  current = manifest.for_spec(["vggish_logmel", "audio_functionals", "visual_stats"])
  manifest.check_current(current, what="dataset x")  # up to date: no error
  old = copy.deepcopy(current)
  for name in ("vggish_logmel", "audio_functionals"):
    old["extractors"][name]["version"] = 1
  with pytest.raises(ManifestMismatchError) as e:
    manifest.check_current(old, what="dataset films/default/1.0.0")
  msg = str(e.value)
  assert "dataset films/default/1.0.0" in msg and "channel mean" in msg and "rebuild" in msg
  assert "'vggish_logmel': version 1, this emojax makes version 2" in msg
  assert "'audio_functionals'" in msg and "visual_stats" not in msg
  with pytest.raises(ManifestMismatchError, match="rebuild the dataset"):
    manifest.compare_manifests(old, current, what="features of film.mp4")
