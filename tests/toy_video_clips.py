"""A tiny per-clip video dataset for the seed-004 end-to-end test; registered on import.

Each clip: `frame_clips` (8, 20, 20, 3) uint8 dense frames and `tsn_frames` (8, 3, 20, 20, 3) uint8
(8 segments x 3 candidates), a bright square whose size grows with valence on a noisy background,
so a small convnet can regress it; films of 4-6 clips, no validation split.
"""

import numpy as np
import tensorflow_datasets as tfds


def make_clip(rng: np.random.Generator) -> dict:
  valence = np.float32(rng.uniform(-1, 1))
  side = int(round(6 + 5 * valence))            # 1 .. 11 px

  def frames(shape):
    x = rng.integers(0, 60, size=shape + (20, 20, 3)).astype(np.uint8)
    x[..., 10 - side // 2:10 - side // 2 + side, 10 - side // 2:10 - side // 2 + side, :] = 230
    return x
  return {"frame_clips": frames((8,)), "tsn_frames": frames((8, 3)), "valence": valence}


class EmojaxToyVideoClips(tfds.core.GeneratorBasedBuilder):
  """Clips of 10 training and 4 test films."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "clip_id": tfds.features.Text(), "film_id": tfds.features.Text(),
        "frame_clips": tfds.features.Tensor(shape=(8, 20, 20, 3), dtype=np.uint8),
        "tsn_frames": tfds.features.Tensor(shape=(8, 3, 20, 20, 3), dtype=np.uint8),
        "valence": tfds.features.Scalar(dtype=np.float32)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(0, 10), "test": self._generate_examples(100, 4)}

  def _generate_examples(self, seed, num_films):
    for f in range(num_films):
      rng = np.random.default_rng(seed + f)
      for k in range(int(rng.integers(4, 7))):
        cid = f"film{seed + f:03d}_clip{k}"
        yield cid, {"clip_id": cid, "film_id": f"film{seed + f:03d}", **make_clip(rng)}
