"""`vgg16_fc7`: VGG16's fc7 (4096-d, after its ReLU) per second, from converted torchvision
ImageNet weights (seed 000's ImageNet features; docs/backbones.md; frames, preprocessing and
params: emojax.features.backbone_frames)."""

from emojax.features import backbone_frames
from emojax.features import registry


@registry.register
class Vgg16Fc7(backbone_frames.BackboneExtractor):
  name = "vgg16_fc7"
  networks = ("vgg16", "vgg16_places365")
  layer = "fc7"
