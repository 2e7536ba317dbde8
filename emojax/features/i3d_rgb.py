"""`i3d_rgb`: seed 003's I3D RGB feature, (1024,) per clip (or per second).

The clip's `num_frames` frames (default 64 per clip, seed 003's "64 frames per excerpt", and 16
per second at `level='second'`) at 224 x 224 (short side 256, centre crop), scaled to [-1, 1], go
through I3D (`emojax.backbones.i3d`, piergiaj's port of the Kinetics RGB model) as one stack; the
row is the Mixed_5c map averaged over time and space (seed 003: "average pooling with the kernel
size of T' x H' x W'"). See emojax/features/backbone_video.py for the sampling and params.

  extract_film(path, {"i3d_rgb": {"weights_path": "i3d_rgb.npz"}})
"""

from __future__ import annotations

import numpy as np

from emojax.backbones import i3d
from emojax.features import backbone_video
from emojax.features import registry


@registry.register
class I3dRgb(backbone_video.BackboneClips):
  """(1024,) per clip: I3D Mixed_5c, averaged over time and space."""

  name = "i3d_rgb"
  version = 1
  backbone = "i3d"
  FIXED = {"network": "i3d rgb (piergiaj pytorch-i3d InceptionI3d, rgb_imagenet.pt)",
           "layer": "Mixed_5c, mean over time and space",
           "preprocessing": "RGB / 255 * 2 - 1; frames at the centres of num_frames equal "
                            "segments, short side short_side (bilinear), centre crop crop"}
  DEFAULT_FRAMES = {"clip": 64, "second": 16}
  defaults = {**backbone_video.BackboneClips.COMMON, **FIXED}

  def clip_row(self, frames_NxHxWx3: np.ndarray) -> np.ndarray:
    x = np.asarray(i3d.preprocess(frames_NxHxWx3))[None]
    return self.run("pool", x)[0]
