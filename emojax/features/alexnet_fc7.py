"""`alexnet_fc7`: AlexNet's fc7 (4096-d, after its ReLU) per second, seed 002's feature, from
converted torchvision ImageNet or CSAIL Places365 weights (docs/backbones.md; frames,
preprocessing and params: emojax.features.backbone_frames)."""

from emojax.features import backbone_frames
from emojax.features import registry


@registry.register
class AlexnetFc7(backbone_frames.BackboneExtractor):
  name = "alexnet_fc7"
  networks = ("alexnet", "alexnet_places365")
  layer = "fc7"
