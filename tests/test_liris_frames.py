"""liris_accede/discrete_frames*: seed 004's frame streams built from the fixture's videos, checked
against frames decoded independently (PyAV + PIL), and read by configs/video_convnets.py:liris."""

import io
import json

import av
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import liris_fixture as lf
from emojax import input_pipeline
from emojax.datasets import common
from emojax.datasets import liris_accede as la
from emojax.errors import ConfigError, DataError

SIZE = 40       # discrete_frames_small
FPS = 7         # no frame-clips / tsn target falls within 6 ms of a frame time at 7 fps, 2 s
SECONDS = 2


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  root = tmp_path_factory.mktemp("liris_frames")
  manual = lf.write_tree(root / "manual")
  # Videos for the discrete clips only (the MediaEval ones are not read by this config).
  for c in lf.ACCEDE:
    lf.write_video(manual / "LIRIS-ACCEDE-data" / "data" / f"{c.name}.mp4", SECONDS, fps=FPS,
                   seed=c.index)
  builder = la.LirisAccede(config="discrete_frames_small", data_dir=str(root / "data"),
                           file_format="array_record", num_workers=0)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  sources = builder.as_data_source()
  splits = {s: {src[i]["clip_id"].decode(): src[i] for i in range(len(src))}
            for s, src in sources.items()}
  return root, manual, builder, splits


def _video_frames(path):
  """(times, uint8 (n, SIZE, SIZE, 3)): every frame, decoded by PyAV, resized by PIL."""
  times, frames = [], []
  with av.open(str(path)) as container:
    for f in container.decode(video=0):
      times.append(float(f.time))
      rgb = f.to_ndarray(format="rgb24")
      frames.append(np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.BILINEAR)))
  return np.asarray(times), np.stack(frames)


def _on_screen(times, targets):
  """Index of the frame on screen at each target time (the last one starting at or before it)."""
  return np.searchsorted(times, np.asarray(targets) + 1e-9, side="right") - 1


def _nearest(frames, got):
  """For each stored frame, the index of the video frame it is closest to (mean |diff|)."""
  d = np.abs(got[:, None].astype(float) - frames[None].astype(float)).mean(axis=(2, 3, 4))
  return d.argmin(axis=1), d.min(axis=1)


def test_frame_streams_are_the_clip_frames_on_screen(built):
  _, manual, builder, splits = built
  assert builder.builder_config.frame_size == SIZE
  assert {s: sorted(v) for s, v in splits.items()} == {
      split: sorted(c.name for c in lf.ACCEDE if c.set == s)
      for split, s in (("train", 1), ("validation", 2), ("test", 0))}
  ex = splits["test"]["ACCEDE00006"]
  assert ex["valence"] == np.float32(lf.ACCEDE[6].valence)
  # Stored encoded (the extractor's JPEG bytes), decoded as the clip store decodes a batch.
  assert ex["frame_clips"].shape == (8,) and ex["tsn_frames"].shape == (8, 3)
  assert all(bytes(b)[:2] == b"\xff\xd8" for b in ex["tsn_frames"].reshape(-1))   # JPEG
  fc = input_pipeline.decode_stream(ex["frame_clips"], "frame_clips")
  tsn = input_pipeline.decode_stream(ex["tsn_frames"], "tsn_frames")
  assert fc.shape == (8, SIZE, SIZE, 3) and fc.dtype == np.uint8
  assert tsn.shape == (8, 3, SIZE, SIZE, 3) and tsn.dtype == np.uint8
  times, frames = _video_frames(manual / "LIRIS-ACCEDE-data" / "data" / "ACCEDE00006.mp4")
  assert len(frames) == FPS * SECONDS
  # frame_clips: 8 frames at 5 fps centred in the 2 s clip: 1 + (k - 3.5) / 5.
  dense = 1.0 + (np.arange(8) - 3.5) / 5
  # tsn_frames: 8 segments of 0.25 s, 3 candidates at (m + 0.5) / 3 of each.
  seg = (np.arange(8)[:, None] + (np.arange(3)[None, :] + 0.5) / 3) * SECONDS / 8
  for got, targets in ((fc, dense), (tsn.reshape(-1, SIZE, SIZE, 3), seg.ravel())):
    want = _on_screen(times, targets)
    nearest, dist = _nearest(frames, got)
    np.testing.assert_array_equal(nearest, want)
    assert dist.max() < 4.0, dist  # JPEG (quality 90) and swscale vs PIL resizing
  # The clips differ (brightness and colour depend on the clip): the rows are each clip's own.
  other = input_pipeline.decode_stream(splits["test"]["ACCEDE00007"]["frame_clips"], "other")
  assert np.abs(other.astype(float) - fc.astype(float)).mean() > 10
  meta = builder.info.metadata
  assert meta["feature_dims"] == {"frame_clips": 8 * SIZE * SIZE * 3,
                                  "tsn_frames": 8 * 3 * SIZE * SIZE * 3}
  assert meta["feature_manifest"]["extractors"]["tsn_frames"]["params"]["size"] == SIZE
  assert meta["decoded_shapes"] == {"frame_clips": [8, SIZE, SIZE, 3],
                                    "tsn_frames": [8, 3, SIZE, SIZE, 3]}


def test_per_second_builders_still_refuse_frame_extractors():
  with pytest.raises(ConfigError, match="'frame_clips' is per-clip"):
    common.extracted_specs(["frame_clips"])
  _, specs = common.extracted_specs({"frame_clips": {"size": 24}}, frames=True)
  assert specs["frame_clips"] == ((8, 24, 24, 3), np.dtype(np.uint8))


def test_decode_frame_row_names_the_video_when_a_clip_has_several_rows():
  buf = io.BytesIO()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
  rows = np.empty((2, 1), dtype=object)
  rows[:] = buf.getvalue()
  with pytest.raises(DataError, match=r"clip.mp4: stream 'frame_clips' has 2 rows"):
    common.decode_frame_row("clip.mp4", "frame_clips", rows, (1, 4, 4, 3))


@pytest.mark.parametrize("arch", ["c3d", "tsn"])
def test_liris_runlocal_config_trains_a_step_on_the_frames(built, arch, tmp_path, monkeypatch):
  from configs import video_convnets as cfg_lib  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  root, manual, _, _ = built
  monkeypatch.setenv("EMOJAX_VIDEO_CONV_CACHE", str(tmp_path / "lowering.json"))
  c = cfg_lib.get_config(f"{arch},valence,liris,runlocal")
  assert (c.dataset.name, c.dataset.config) == ("liris_accede", "discrete_frames_small")
  with c.unlocked():
    c.dataset.data_dir, c.dataset.manual_dir = str(root / "data"), str(manual)
    c.model.conv_lowering, c.model.autotune = "frames2d", False
    c.data.batch_size = c.data.eval_batch_size = 2
    c.train.epochs = 1.0
  trainer = train.Trainer(c, tmp_path / "run")
  # The paper's switch: trains on the official test set, tests on the learning set.
  assert sorted(trainer.stores["train"].clip_ids) == ["ACCEDE00006", "ACCEDE00007"]
  assert sorted(trainer.stores["test"].clip_ids) == [f"ACCEDE0000{i}" for i in range(4)]
  stream = "tsn_frames" if arch == "tsn" else "frame_clips"
  assert trainer.stores["train"].feature_dims()[stream] == (
      (8, 3, SIZE, SIZE, 3) if arch == "tsn" else (8, SIZE, SIZE, 3))
  trainer.run()
  records = json.loads((tmp_path / "run" / "phases.json").read_text())
  # One epoch of the 2 training clips in batches of 2: one step, validated and kept as the best.
  assert [(r["name"], r["best_step"]) for r in records] == [(f"valence/{arch}", 1)]
  assert np.isfinite(records[0]["validation"]["mse"]), records[0]
