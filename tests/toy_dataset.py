"""A tiny per-second film dataset for harness tests (registered with TFDS on import)."""

import numpy as np
import tensorflow_datasets as tfds

MODALITY_DIMS = {"audio": 3, "scene": 4, "expression": 5, "action": 2}


def make_film(rng: np.random.Generator, num_seconds: int) -> dict:
  latent = np.cumsum(rng.normal(0, 0.3, size=(num_seconds, 2)), axis=0)
  latent = np.tanh(latent / (1 + np.abs(latent).max()))
  film = {m: (latent @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(num_seconds, d))
              ).astype(np.float32) for m, d in MODALITY_DIMS.items()}
  film["valence"] = latent[:, 0].astype(np.float32)
  film["arousal"] = latent[:, 1].astype(np.float32)
  return film


class EmojaxToyFilms(tfds.core.GeneratorBasedBuilder):
  """Films of 25-47 s with 4 small modalities; labels are linear in the features' latents."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    feats = {m: tfds.features.Tensor(shape=(None, d), dtype=np.float32)
             for m, d in MODALITY_DIMS.items()}
    feats.update(film_id=tfds.features.Text(),
                 valence=tfds.features.Tensor(shape=(None,), dtype=np.float32),
                 arousal=tfds.features.Tensor(shape=(None,), dtype=np.float32))
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(feats))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(0, 6), "validation": self._generate_examples(100, 2),
            "test": self._generate_examples(200, 2)}

  def _generate_examples(self, seed, n):
    for i in range(n):
      rng = np.random.default_rng(seed + i)
      film = make_film(rng, int(rng.integers(25, 48)))
      fid = f"film{seed + i:03d}"
      yield fid, {"film_id": fid, **film}
