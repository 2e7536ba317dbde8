"""`resnet50_pool`: ResNet-50's 2048-d global-pool output per second (seed 003), from converted
torchvision ImageNet or CSAIL Places365 weights (docs/backbones.md; frames, preprocessing and
params: emojax.features.backbone_frames)."""

from emojax.features import backbone_frames
from emojax.features import registry


@registry.register
class Resnet50Pool(backbone_frames.BackboneExtractor):
  name = "resnet50_pool"
  networks = ("resnet50", "resnet50_places365")
  layer = "pool"
