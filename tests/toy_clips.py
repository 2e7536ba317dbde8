"""A tiny per-clip dataset (one example per clip) for harness tests; registered on import.

Each clip has a uint8 image stack (`frames`, stored raw), a PNG-encoded key frame (`keyframe`,
decoded by the data source when a batch reads it), a float vector (`audio`), a valence value and
its 3-class label. The class is a function of the audio vector and the frames' brightness, so a
small classifier can learn it. Films hold 3-6 clips each; no validation split (the harness holds
some training films out).
"""

import io

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds


def make_clip(rng: np.random.Generator, k: int) -> dict:
  level = int(rng.integers(0, 3))
  audio = rng.normal(0, 1, 6).astype(np.float32)
  audio[0] = level - 1 + 0.1 * rng.normal()
  frames = rng.integers(0, 40, size=(2, 12, 12, 3)).astype(np.uint8) + np.uint8(60 * level)
  buf = io.BytesIO()
  PIL.Image.fromarray(frames[0]).save(buf, format="PNG")
  key = buf.getvalue()
  valence = np.float32(np.tanh(audio[0]))
  return {"frames": frames, "keyframe": key, "audio": audio, "valence": valence,
          "valence_class": level}


class EmojaxToyClips(tfds.core.GeneratorBasedBuilder):
  """Clips of 8 training and 5 test films; no validation split."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "clip_id": tfds.features.Text(), "film_id": tfds.features.Text(),
        "frames": tfds.features.Tensor(shape=(2, 12, 12, 3), dtype=np.uint8),
        "keyframe": tfds.features.Tensor(shape=(), dtype=np.object_),   # PNG bytes
        "audio": tfds.features.Tensor(shape=(6,), dtype=np.float32),
        "valence": tfds.features.Scalar(dtype=np.float32),
        "valence_class": tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(0, 8), "test": self._generate_examples(100, 5)}

  def _generate_examples(self, seed, num_films):
    for f in range(num_films):
      rng = np.random.default_rng(seed + f)
      for k in range(int(rng.integers(3, 7))):
        cid = f"film{seed + f:03d}_clip{k}"
        yield cid, {"clip_id": cid, "film_id": f"film{seed + f:03d}", **make_clip(rng, k)}
