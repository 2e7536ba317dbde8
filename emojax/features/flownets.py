"""`flownets`: seed 003's FlowNetS motion feature, (1024,) per clip (or per second).

The clip's `num_frames` frames (default 64 per clip as seed 003 samples its excerpts, 8 per
second at `level='second'`), 224 x 224 (short side 256, centre crop), are paired consecutively,
(frame k, frame k + 1) for k < N - 1, each pair stacked on channels ([0, 1] minus the port's
mean) and passed through FlowNetS's contracting part (`emojax.backbones.flownet`, ClementPinard's
port, Flying Chairs weights); a pair's feature is conv6_1 averaged over space, the row is the
mean over the pairs (seed 003: "passing each pair of consecutive frames through the encoder ...
element-wise average ... over all pairs"). See emojax/features/backbone_video.py for the
sampling and params.

  extract_film(path, {"flownets": {"weights_path": "flownets.npz"}})
"""

from __future__ import annotations

import numpy as np

from emojax.backbones import flownet
from emojax.features import backbone_video
from emojax.features import backbone_weights
from emojax.features import registry

BATCH = 8


@registry.register
class FlowNetSFeature(backbone_video.BackboneClips):
  """(1024,) per clip: FlowNetS conv6_1, averaged over space and consecutive frame pairs."""

  name = "flownets"
  version = 1
  backbone = "flownets"
  FIXED = {"network": "flownets (ClementPinard FlowNetPytorch, flownets_EPE1.951.pth.tar)",
           "layer": "conv6_1 (encoder), mean over space; mean over consecutive frame pairs",
           "preprocessing": "RGB / 255 minus [0.411, 0.432, 0.45], pair stacked on channels; "
                            "frames at the centres of num_frames equal segments, short side "
                            "short_side (bilinear), centre crop crop"}
  DEFAULT_FRAMES = {"clip": 64, "second": 8}
  MIN_FRAMES = 2
  defaults = {**backbone_video.BackboneClips.COMMON, **FIXED}

  def clip_row(self, frames_NxHxWx3: np.ndarray) -> np.ndarray:
    pairs = np.asarray(flownet.preprocess(frames_NxHxWx3[:-1], frames_NxHxWx3[1:]))
    batch = min(BATCH, len(pairs))
    return backbone_weights.batched(lambda b: self.run("pool", b), pairs, batch).mean(0)
