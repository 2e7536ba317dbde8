"""Pretrained image and video networks the papers extract features with (Flax NNX), and the
offline converters from the published weight files a researcher downloads (see docs/backbones.md).

Weights are never downloaded: they load from a file the user already has, read by
`emojax.weights.read_state_dict` and checked by `emojax.weights.check_layout`.
"""
