"""Seed 004: end-to-end video convnets (C3D, R(2+1)D-18, TSN, ECO Lite / Full) on raw frames.

  python main.py --config=configs/video_convnets.py:c3d,valence,runlocal --workdir=/tmp/c3d

Arguments (comma separated): the network `c3d` (default) / `r2plus1d` / `tsn` / `eco_lite` /
`eco_full`; `valence` / `arousal` (one target; default both, trained separately); `liris`
(LIRIS-ACCEDE discrete: labels 1-5 trained as (v - 3) / 2; needs a build with `frame_clips` /
`tsn_frames` streams); `adam` (Adam instead of SGD); `runlocal` (the small frame benchmark, narrow
and shallow networks, 32 px crops: minutes on 2 CPU cores).
Defaults are the paper's: 8 frames, crops 112 (C3D, R(2+1)D; frames stored 128x171) and 224 (TSN,
ECO), full widths and depths, SGD momentum 0.9 with lr 1e-4 (C3D, R(2+1)D) or 1e-3 (TSN, ECO)
divided by 10 every 4 epochs, MSE head. Data: `synthetic_clips/frames` (regression on its valence
and arousal values in [-1, 1]).
"""

import ml_collections

from configs import common
from emojax.models import video_convnets

ARCHS = video_convnets.ARCHS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {*ARCHS, "valence", "arousal", "liris", "adam", "runlocal"})
  archs = [w for w in words if w in ARCHS]
  if len(archs) > 1:
    raise ValueError(f"name one network, got {sorted(archs)}")
  arch = archs[0] if archs else "c3d"
  c = common.base_config("video_convnets")
  dims = [d for d in ("valence", "arousal") if d in words]
  c.targets = tuple(dims) if dims else ("valence", "arousal")
  c.dataset.name = "synthetic_clips"
  c.dataset.config = "frames"
  c.data.batch_size = 8
  c.data.eval_batch_size = 8
  c.model = video_convnets.default_model_config(arch)
  c.train = ml_collections.ConfigDict(dict(epochs=12.0, eval_every_epochs=1.0))
  c.optim.name = "sgd"
  c.optim.momentum = 0.9
  c.optim.learning_rate = 1e-4 if arch in ("c3d", "r2plus1d") else 1e-3
  c.optim.schedule = "step"
  c.optim.decay_every_epochs = 4.0
  c.optim.decay_factor = 0.1
  c.checkpoint.best_metric = "pcc"
  if "adam" in words:
    c.optim.name = "adam"
    c.optim.schedule = "constant"
  if "liris" in words:
    c.dataset.name = "liris_accede"
    c.dataset.config = "discrete"
    c.model.label_center = 3.0
    c.model.label_half_range = 2.0
  if "runlocal" in words:
    common.shrink_for_local_run(c)
    c.dataset.config = "frames_small"
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.model.crop = 32
    c.model.width = 0.125
    c.model.depth = 0.5
    c.model.dropout = 0.2
    c.train.epochs = 10.0
    c.optim.name = "adam"
    c.optim.schedule = "constant"
    c.optim.learning_rate = 5e-4
  c.lock()
  return c
