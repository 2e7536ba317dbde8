"""`bn_inception_pool`: BN-Inception's global-pool feature (1024,) per clip (or per second).

Each of the clip's `num_frames` frames (default 64 per clip, 1 per second at `level='second'`),
224 x 224 (short side 256, centre crop), as BGR 0-255 minus the mean [104, 117, 128], goes through
BN-Inception (`emojax.backbones.bn_inception`, Cadene's port, TSN / ECO's ImageNet backbone); the
row is the global average of inception_5b, averaged over the frames (TSN's average consensus of
per-frame features). See emojax/features/backbone_video.py for the sampling and params.

  extract_film(path, {"bn_inception_pool": {"weights_path": "bn_inception.npz"}})
"""

from __future__ import annotations

import numpy as np

from emojax import errors
from emojax.backbones import bn_inception
from emojax.features import backbone_video
from emojax.features import backbone_weights
from emojax.features import registry

BATCH = 16


@registry.register
class BnInceptionPool(backbone_video.BackboneClips):
  """(1024,) per clip: BN-Inception's global pool, averaged over the frames."""

  name = "bn_inception_pool"
  version = 1
  backbone = "bn_inception"
  FIXED = {"network": "bn_inception (Cadene pretrainedmodels bninception, "
                      "bn_inception-52deb4733.pth)",
           "layer": "inception_5b, global average pool; mean over frames",
           "preprocessing": "BGR 0-255 minus [104, 117, 128]; frames at the centres of "
                            "num_frames equal segments, short side short_side (bilinear), "
                            "centre crop crop"}
  DEFAULT_FRAMES = {"clip": 64, "second": 1}
  defaults = {**backbone_video.BackboneClips.COMMON, **FIXED}

  def __init__(self, **params):
    super().__init__(**params)
    if self.params["crop"] % 32:
      raise errors.ConfigError(f"bn_inception_pool: crop must be a multiple of 32 (BN-Inception's "
                               f"ceil-mode pools need it; 224 as published), got "
                               f"{self.params['crop']}")

  def clip_row(self, frames_NxHxWx3: np.ndarray) -> np.ndarray:
    x = np.asarray(bn_inception.preprocess(frames_NxHxWx3))
    batch = min(BATCH, int(self.params["num_frames"]))
    return backbone_weights.batched(lambda b: self.run("pool", b), x, batch).mean(0)
