"""`vgg16_places365_pool5`: the scene feature of seed 000, VGG16 trained on Places365, pool5
(7 x 7 x 512 at 224) averaged over space: 512-d per second (docs/backbones.md; frames,
preprocessing and params: emojax.features.backbone_frames)."""

from emojax.features import backbone_frames
from emojax.features import registry


@registry.register
class Vgg16Places365Pool5(backbone_frames.BackboneExtractor):
  name = "vgg16_places365_pool5"
  networks = ("vgg16_places365",)
  layer = "pool5_mean"
