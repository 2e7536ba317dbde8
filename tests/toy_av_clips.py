"""A tiny per-clip dataset with seed 002's streams, for predict tests; registered on import.

Each clip: `keyframe` (3, 24, 24, 3) uint8 (one key frame per second of a 3 s clip) and
`spectrogram_image` (3, 24, 24) uint8 (one spectrogram image per second), the shapes the
`keyframe` / `spectrogram_image` extractors give at size 24; `arousal` in [-1, 1] and its class
`arousal_class` (0..2, the brightness level). No feature manifest (as `synthetic_clips`): predict
finds the extractors by the streams' names. Splits train / validation / test, 2 films of 2 clips.
"""

import numpy as np
import tensorflow_datasets as tfds

SECONDS, SIZE = 3, 24


def make_clip(rng: np.random.Generator) -> dict:
  level = int(rng.integers(0, 3))
  key = (rng.integers(0, 60, (SECONDS, SIZE, SIZE, 3)) + 80 * level).astype(np.uint8)
  spec = rng.integers(0, 255, (SECONDS, SIZE, SIZE)).astype(np.uint8)
  return {"keyframe": key, "spectrogram_image": spec, "arousal": np.float32(level - 1),
          "arousal_class": level}


class EmojaxToyAvClips(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "clip_id": tfds.features.Text(), "film_id": tfds.features.Text(),
        "keyframe": tfds.features.Tensor(shape=(SECONDS, SIZE, SIZE, 3), dtype=np.uint8),
        "spectrogram_image": tfds.features.Tensor(shape=(SECONDS, SIZE, SIZE), dtype=np.uint8),
        "arousal": tfds.features.Scalar(dtype=np.float32),
        "arousal_class": tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(0), "validation": self._generate_examples(10),
            "test": self._generate_examples(20)}

  def _generate_examples(self, seed):
    for f in range(2):
      rng = np.random.default_rng(seed + f)
      for k in range(2):
        cid = f"film{seed + f:03d}_clip{k}"
        yield cid, {"clip_id": cid, "film_id": f"film{seed + f:03d}", **make_clip(rng)}
