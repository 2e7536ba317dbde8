"""How predict cuts a film into a per-clip model's windows (predict_checks.clip_recipe,
predict.window_examples), on hand-made features: no media, no model."""

import numpy as np
import pytest

from emojax import errors, predict, predict_checks
from emojax.features import extract, manifest


def _meta(dims, manifest_=None, **extra):
  return {"method": "m", "task": {"unit": "clip"}, "modalities": list(dims),
          "feature_dims": {s: list(d) for s, d in dims.items()},
          "feature_manifest": manifest_, **extra}


def test_window_is_the_stored_seconds_of_a_stacked_stream():
  r = predict_checks.clip_recipe("ckpt", _meta({"keyframe": (6, 40, 40, 3),
                                                "spectrogram_image": (6, 40, 40)}), 10)
  assert r.window == 6 and "stream 'keyframe' holds 6 per-second rows" in r.window_from
  assert r.streams == {"keyframe": ("keyframe", "stack"),
                       "spectrogram_image": ("spectrogram_image", "stack")}
  assert r.spec == {"keyframe": {"size": 40}, "spectrogram_image": {"size": 40}}


def test_window_of_whole_clip_frames_is_the_runs_clip_seconds_and_set_on_the_extractor():
  r = predict_checks.clip_recipe("ckpt", _meta({"frame_clips": (8, 20, 20, 3),
                                                "tsn_frames": (8, 3, 20, 20, 3)}), 7)
  assert (r.window, r.window_from) == (7, "the run's config.data.clip_seconds")
  assert r.spec["frame_clips"] == {"num_frames": 8, "size": 20, "clip_seconds": 7}
  assert r.spec["tsn_frames"] == {"num_segments": 8, "candidates": 3, "size": 20,
                                  "clip_seconds": 7}
  assert r.expected["extractors"]["frame_clips"]["params"]["clip_seconds"] == 7


def test_manifest_clip_length_wins_and_a_per_second_vector_is_a_mean():
  made = manifest.for_spec({"opensmile_functionals": {"feature_set": "eGeMAPSv02",
                                                      "level": "clip", "clip_seconds": 4},
                            "audio_functionals": {}})
  dim = made["extractors"]["audio_functionals"]["shape"]
  r = predict_checks.clip_recipe("ckpt", _meta({"egemaps": (88,), "audio": tuple(dim)}, made,
                                               stream_extractors={
                                                   "egemaps": "opensmile_functionals",
                                                   "audio": "audio_functionals"}), 10)
  assert r.window == 4 and r.streams == {"egemaps": ("opensmile_functionals", "clip"),
                                         "audio": ("audio_functionals", "mean")}
  assert manifest.differences(r.expected, manifest.for_spec(r.spec)) == []


@pytest.mark.parametrize("dims,fragment", [
    ({"frame_clips": (8, 128, 171, 3)},
     "holds examples of shape (8, 128, 171, 3), but extractor 'frame_clips' gives "
     "(8, 128, 128, 3) per clip"),
    ({"keyframe": (6, 40, 40, 3), "spectrogram_image": (4, 40, 40)},
     "the streams hold clips of different lengths {'keyframe': 6, 'spectrogram_image': 4}"),
])
def test_streams_predict_cannot_make_are_refused(dims, fragment):
  with pytest.raises(errors.ManifestMismatchError) as e:
    predict_checks.clip_recipe("ckpt", _meta(dims), 10)
  assert fragment in str(e.value) and "\n" not in str(e.value)


def test_windows_cover_the_film_the_last_one_shorter():
  """T = 8 s in windows of 3 s: [0, 3), [3, 6), [6, 8); stacked rows as cut, means per window,
  one clip row per window."""
  r = predict_checks.ClipRecipe(
      spec={}, expected={}, window=3, window_from="",
      streams={"a": ("per_second", "stack"), "b": ("per_second", "mean"),
               "c": ("per_clip", "clip")},
      shapes={"a": (3, 2), "b": (2,), "c": (1,)})
  rows = np.arange(16, dtype=np.float32).reshape(8, 2)
  ff = extract.FilmFeatures(streams={"per_second": rows,
                                     "per_clip": np.array([[10.0], [11.0], [12.0]], np.float32)},
                            num_seconds=8, duration_s=8.4, manifest={}, has_audio=True)
  examples, starts, ends = predict.window_examples(ff, r)
  assert (starts, ends) == ([0, 3, 6], [3, 6, 8])
  np.testing.assert_array_equal(examples[2]["a"], [[12, 13], [14, 15]])
  np.testing.assert_array_equal(examples[1]["b"], [8, 9])       # mean of rows 3..5
  assert [float(e["c"][0]) for e in examples] == [10.0, 11.0, 12.0]
  x, y = predict._steps(np.array(starts), np.array(ends), np.array([1.0, 2.0, 3.0]), 8.4)
  assert list(x) == [0, 3, 3, 6, 6, 8, 8.4] and list(y[:-1]) == [1, 1, 2, 2, 3, 3]
