"""`inception_v3_pool`: Inception-v3's 2048-d global-pool output per second (seed 001), 299 x 299
centre crops of frames resized to 342 (torchvision's Inception-v3 transform), from converted
torchvision weights (docs/backbones.md; params: emojax.features.backbone_frames)."""

from emojax.features import backbone_frames
from emojax.features import registry


@registry.register
class InceptionV3Pool(backbone_frames.BackboneExtractor):
  name = "inception_v3_pool"
  networks = ("inception_v3",)
  layer = "pool"
  resize = 342
  crop = 299
