"""Seed 004: end-to-end video convnets (C3D, R(2+1)D-18, TSN, ECO Lite / Full) on raw frames.

  python main.py --config=configs/video_convnets.py:c3d,valence,runlocal --workdir=/tmp/c3d

Arguments (comma separated): the network `c3d` (default) / `r2plus1d` / `tsn` / `eco_lite` /
`eco_full`; `valence` / `arousal` (one target; default both, trained separately); `liris`
(LIRIS-ACCEDE discrete on the paper's switched split: labels 1-5 trained as (v - 3) / 2; reads
`liris_accede/discrete_frames`, frame_clips / tsn_frames at 224 x 224; with runlocal
`discrete_frames_small`, 40 x 40); `adam` (Adam instead of SGD); `fc3` (Table II's
three fully-connected layers before the output); `crop112` (emojax's option: 112 crops of 128x171
frames, C3D's own convention; with `liris`, 112 crops of its 224 x 224 frames); `resnet18` (TSN / ECO on ResNet-18 instead of the paper's
BN-Inception); `runlocal` (the small frame benchmark, narrow and shallow networks, 32 px crops:
minutes on 2 CPU cores).
Every default is written with its source (docs/methods.md, section video_convnets): 8 frames of
224 x 224, SGD, lr 1e-4 (C3D, R(2+1)D) / 1e-3 (TSN, ECO) divided by 10 every 4 epochs for 20
epochs (C3D, R(2+1)D) / every 5 epochs for 30 epochs (TSN, ECO), BN-Inception for TSN / ECO, one
FC output layer, MSE are the paper's (004 Sec. III-C/D, V-A, V-B); momentum, batch size, dropout
and the flip augmentation are emojax's. Data: `synthetic_clips/frames224` (frames resized to
224 x 224; regression on its valence and arousal values in [-1, 1]).
"""

import ml_collections

from configs import common
from configs.common import ours, paper

# The networks of emojax/models/video_convnets.py (tests/test_config_layout.py checks they agree).
ARCHS = ("c3d", "r2plus1d", "tsn", "eco_lite", "eco_full")
SEGMENTED = ("tsn", "eco_lite", "eco_full")
# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options(
    "video_convnets", ARCHS, ("valence", "arousal"), ("liris",), ("adam",), ("fc3",), ("crop112",),
    ("resnet18",), ("runlocal",),
    needs=(("crop112", ("resnet18",), SEGMENTED, "BN-Inception (TSN, ECO) needs crops that are "
            "multiples of 32; 112 crops are C3D's / R(2+1)D's convention"),))


def model_block(c: ml_collections.ConfigDict, arch: str, words=frozenset()) -> None:
  """The network `arch` at the paper's sizes (config.model) and its stream (config.inputs)."""
  segmented = arch in SEGMENTED
  common.block(c, "inputs").streams = (("tsn_frames",) if segmented else ("frame_clips",)), ours(
      "K segments of M frames (TSN, ECO) or one run of consecutive frames (C3D, R(2+1)D)")
  m = common.block(c, "model")
  m.arch = arch, ours("the network named by the config argument (default C3D)")
  if "resnet18" in words:
    m.backbone = "resnet18", ours("resnet18: TSN / ECO on 2-D ResNet-18 (ECO: stem + stages 1-2, "
                                  "3-D stages 3-5), not the paper's BN-Inception")
  else:
    m.backbone = "bn_inception", paper(
        "004 Sec. III-C/D", "TSN's 2-D ConvNets apply BN-Inception; ECO's backbone is the same as "
        "TSN's (ECO's 2-D part: BN-Inception up to the end of inception_3c; C3D / R(2+1)D ignore it)")
  m.backbone_weights = "", ours("'' = BN-Inception from scratch (004 Sec. V-A trains from "
                                "scratch); else the .npz converted with python -m "
                                "emojax.backbones.convert --network=bn_inception (weights and "
                                "BN statistics)")
  m.num_frames = 8, paper("004 Sec. V-A", "every network takes eight RGB frames")
  if "crop112" in words:
    m.crop = 112, ours("crop112: C3D's / R(2+1)D's own 112 crops, of 128x171 frames on "
                       "synthetic_clips; with liris, of the 224 x 224 stored frames (the "
                       "LIRIS-ACCEDE builder stores no 128x171 frames); the paper resizes to "
                       "224 x 224")
  else:
    m.crop = 224, paper("004 Sec. V-A", "the frames are resized to 224 x 224 (frames stored at "
                        "224 x 224: the crop is the whole frame)")
  m.head_layers = (3 if "fc3" in words else 1), (
      ours("fc3: Table II's three FC layers (widths not given: 512, 512, 1 with ReLU)")
      if "fc3" in words else paper("004 Sec. V-A, Table II", "the last layer turned into one "
                                   "regression output"))
  m.width = 1.0, ours("the networks' published widths")
  m.depth = 1.0, ours("the networks' published depths")
  m.dropout = 0.5, ours("the networks' published dropout before the head; not in the paper")
  m.flip = True, ours("random horizontal flips in training (and random crops where the stored "
                      "frames are larger than the crop); the paper names no augmentation")
  m.partial_bn = False, ours("every batch norm trained")
  m.conv_lowering = "auto", ours("the fastest convolution lowering, measured")
  m.compute_dtype = "float32", ours("full precision")
  m.autotune = True, ours("time the lowerings once per run")
  m.weights = "", ours("a .npz of pretrained weights you own ('' = from scratch, 004 Sec. V-A)")
  m.label_center = 0.0, ours("labels already in [-1, 1]")
  m.label_half_range = 1.0, ours("labels already in [-1, 1]")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  arch = next((w for w in ARCHS if w in words), "c3d")
  c = common.base_config("video_convnets")
  dims = [d for d in ("valence", "arousal") if d in words]
  common.block(c, "").targets = (tuple(dims) if dims else ("valence", "arousal")), paper(
      "004 Table IV", "valence and arousal, each its own network")
  ds = common.block(c, "dataset")
  ds.name = "synthetic_clips", ours("the embedded per-clip benchmark")
  ds.config = ("frames" if "crop112" in words else "frames224"), ours(
      "its frame streams stored for the crop: 128x171 for 112 crops, else 224 x 224")
  d = common.block(c, "data")
  d.batch_size = 8, ours("the paper names mini-batches, not their size")
  d.eval_batch_size = 8, ours("as the training batch")
  d.clip_seconds = 6, ours("synthetic_clips' clips last 6 s: `--mode=predict` cuts a film into "
                           "windows of this length (per-clip data itself has no clip length)")
  model_block(c, arch, words)
  t = common.block(c, "train")
  if arch in SEGMENTED:
    t.epochs = 30.0, paper("004 Sec. V-B 3), 4)", "TSN: 30 epochs; ECO: the other settings as TSN")
  else:
    t.epochs = 20.0, paper("004 Sec. V-B 1), 2)", "C3D: in total 20 epochs; R(2+1)D: the other "
                           "parts similar to C3D (its epochs are not given)")
  t.eval_every_epochs = 1.0, ours("one validation per epoch")
  o = common.block(c, "optim")
  o.name = "sgd", paper("004 Sec. V-A", "mini-batch stochastic gradient descent")
  o.momentum = 0.9, ours("not given in the paper")
  o.learning_rate = (1e-4 if arch in ("c3d", "r2plus1d") else 1e-3), paper(
      "004 Sec. V-B", "0.0001 (C3D, R(2+1)D) / 0.001 (TSN, ECO)")
  o.schedule = "step", paper("004 Sec. V-B", "divided by 10 on a step schedule")
  o.decay_every_epochs = (5.0 if arch in SEGMENTED else 4.0), paper(
      "004 Sec. V-B", "every 4 epochs (C3D, R(2+1)D) / every 5 epochs (TSN; ECO as TSN)")
  o.decay_factor = 0.1, paper("004 Sec. V-B", "divided by 10")
  common.block(c, "checkpoint").best_metric = "pcc", ours(
      "validation PCC (the paper reports Pearson's r and MSE)")
  if "adam" in words:
    o.name = "adam", paper("004 Table II", "Adam beat SGD for ECO")
    o.schedule = "constant", ours("Adam at a constant rate")
  if "liris" in words:
    ds.name = "liris_accede", paper("004 Sec. IV-A", "LIRIS-ACCEDE")
    ds.config = "discrete_frames", paper(
        "004 Sec. IV-A, V-A", "the 9,800 excerpts with discrete labels; frames resized to "
        "224 x 224 (frame_clips for C3D / R(2+1)D, tsn_frames for TSN / ECO)")
    ds.splits = ml_collections.ConfigDict(dict(train="test", validation="validation",
                                               test="train")), paper(
        "004 Sec. IV-A", "training set 4,900 clips, validation 2,450 and test switched: trains "
        "on the official test set (4,900), tests on the official learning set (2,450)")
    d.clip_seconds = 10, ours("LIRIS-ACCEDE's excerpts last 8-12 s (003 Sec. IV-B(a)): "
                              "`--mode=predict` cuts a film into 10 s windows")
    m = common.block(c, "model")
    m.label_center = 3.0, ours("LIRIS-ACCEDE's 1-5 labels trained as (v - 3) / 2")
    m.label_half_range = 2.0, ours("LIRIS-ACCEDE's 1-5 labels trained as (v - 3) / 2")
  if "runlocal" in words:
    common.shrink_for_local_run(c)
    small = ours("runlocal: narrow, shallow networks on 32 px crops train in minutes on 2 cores")
    ds.config = ("discrete_frames_small" if "liris" in words else "frames_small"), small
    d.batch_size = 8, small
    d.eval_batch_size = 16, small
    m = common.block(c, "model")
    m.crop = 32, small
    m.width = 0.125, small
    m.depth = 0.5, small
    m.dropout = 0.2, small
    m.backbone = "resnet18", small
    t.epochs = 10.0, small
    o.name = "adam", small
    o.schedule = "constant", small
    o.learning_rate = 5e-4, small
  c.lock()
  return c
