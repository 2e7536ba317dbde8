"""LIRIS-ACCEDE / MediaEval 2015 with seed 002's per-segment images (config mediaeval2015_clips)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import liris_fixture as lf
from emojax.datasets import clip_streams
from emojax.datasets import liris_accede as la
from emojax.errors import DataError


def _build(manual, data):
  builder = la.LirisAccede(config="mediaeval2015_clips", data_dir=str(data),
                           file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  sources = builder.as_data_source()
  return builder, {s: [src[i] for i in range(len(src))] for s, src in sources.items()}


def test_fixture_tree_builds_with_image_streams_and_3_classes(tmp_path):
  from emojax.features import extract  # pylint: disable=import-outside-toplevel
  manual = lf.write_tree(tmp_path / "manual", lf.Layout(videos=True, video_seconds=3.0))
  builder, splits = _build(manual, tmp_path / "data")
  config = builder.builder_config
  assert tuple(config.extractors) == clip_streams.STREAMS and config.protocol == "mediaeval2015"
  clips = {e["clip_id"].decode(): e for s in splits.values() for e in s}
  every = {c.name: c for c in lf.ACCEDE + lf.MEDIAEVAL}
  assert sorted(clips) == sorted(every)
  assert {e["clip_id"].decode() for e in splits["train"]} == {
      c.name for c in every.values() if c.mediaeval_dev}
  for name, e in clips.items():
    # The official -1 / 0 / 1 become classes 0 / 1 / 2.
    assert e["valence_class"] == every[name].valence_class + 1
    assert e["arousal_class"] == every[name].arousal_class + 1
    clip_streams.check_classes([e["valence_class"], e["arousal_class"]], name)
    clip_streams.check_streams(e, 3, 256, name)
  want = extract.extract_film(next(manual.rglob("ACCEDE00004.mp4")), list(clip_streams.STREAMS))
  for stream in clip_streams.STREAMS:
    np.testing.assert_array_equal(clips["ACCEDE00004"][stream], want.streams[stream])
  # The fixture's clips differ in brightness: so do their key frames.
  assert clips["ACCEDE00000"]["keyframe"].mean() != clips["ACCEDE00001"]["keyframe"].mean()
  assert builder.info.metadata["feature_dims"] == {"keyframe": 256 * 256 * 3,
                                                   "spectrogram_image": 256 * 256}


def test_an_excerpt_list_naming_a_missing_video_is_an_error(tmp_path):
  manual = lf.write_tree(tmp_path / "manual", lf.Layout(videos=True, video_seconds=1.0))
  next(manual.rglob("MEDIAEVAL00001.mp4")).unlink()
  with pytest.raises(DataError, match=r"1 clip videos are missing \(e.g. MEDIAEVAL00001.mp4\)"):
    _build(manual, tmp_path / "data")
