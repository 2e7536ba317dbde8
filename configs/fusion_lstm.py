r"""Seed 002: audio-visual modal fusion + LSTM, 3-class arousal or valence per clip.

Every default is written with its source (docs/methods.md, section fusion_lstm): the paper's
place (its headings: the paper has no section numbers), or "emojax's choice" and why.

  python main.py --config=configs/fusion_lstm.py --workdir=runs/fusion_lstm
  python main.py --config=configs/fusion_lstm.py:valence,early,runlocal --workdir=/tmp/fusion

Arguments (comma separated):
  valence / arousal                      the dimension (one per run; default arousal, the paper's)
  visual / audio / early / late          a baseline instead of modal fusion (the paper's Table 1)
  runlocal                               narrow CNNs on 40-pixel images (32-pixel crops): trains on
                                         the per-clip benchmark in minutes on 2 CPU cores
  mediaeval2015                          LIRIS-ACCEDE discrete / MediaEval 2015 (manual download,
                                         docs/datasets/liris_accede.md) instead of the benchmark
"""

import ml_collections

from configs import common
from configs.common import ours, paper

FUSIONS = ("visual", "audio", "early", "late")
# runlocal's CNN for 32-pixel crops: (features, kernel, stride, padding, pool 3x3/2, LRN).
SMALL_CONV = ((32, 5, 1, 2, True, False), (64, 3, 1, 1, True, False), (96, 3, 1, 1, False, False),
              (96, 3, 1, 1, False, False), (64, 3, 1, 1, True, False))
# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("fusion_lstm", ("valence", "arousal"), FUSIONS, ("mediaeval2015",),
                         ("runlocal",))
ALEXNET = ((96, 11, 4, 0, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
           (384, 3, 1, 1, False, False), (256, 3, 1, 1, True, False))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  dims = [w for w in ("valence", "arousal") if w in words]
  fusions = [w for w in FUSIONS if w in words]
  c = common.base_config("fusion_lstm")
  common.block(c, "").targets = (dims[0] if dims else "arousal",), (
      ours("the dimension named by the config argument") if dims else
      paper("002 Evaluation Metrics & Baseline", "the paper reports arousal accuracy only"))

  d = common.block(c, "dataset")
  d.name = "synthetic_clips", ours("the embedded per-clip benchmark (docs/synthetic_clips.md)")
  d.config = "images256", ours("key frames and spectrogram images per one-second segment, "
                               "256 x 256 as the paper's (002 Video segment and low level "
                               "feature extraction) for the 227 crops")
  d = common.block(c, "data")
  d.batch_size = 32, ours("the paper names minibatches, not their size")
  d.eval_batch_size = 32, ours("as the training batch")
  d.standardize = False, ours("images: the model scales pixels itself")

  i = common.block(c, "inputs")
  i.streams = ("keyframe", "spectrogram_image"), paper(
      "002 Video segment and low level feature extraction",
      "(visual, audio): one key frame per 1 s segment and the segment's spectrogram image")

  m = common.block(c, "model")
  m.fusion = (fusions[0] if fusions else "modal"), (
      paper("002 Table 1", "the baseline named by the config argument") if fusions else
      paper("002 Bi-modal visual and audio feature fusion", "modal fusion, eq. (3)"))
  m.crop = 227, ours("AlexNet's 227-pixel crops of the paper's 256 x 256 images (002 Video "
                     "segment and low level feature extraction)")
  m.conv = ALEXNET, paper("002 Video segment and low level feature extraction",
                          "AlexNet's five convolution layers (sizes: Krizhevsky et al. 2012)")
  m.width = 1.0, ours("multiplier of the conv widths: AlexNet's own")
  m.fc_width = 4096, paper("002 Video segment and low level feature extraction", "fc7, 4,096-d")
  m.fc_dropout = 0.5, ours("AlexNet's dropout on fc6/fc7; the paper does not say")
  m.fusion_dim = 512, paper("002 Experiment Settings", "512-d features per pathway, fused")
  m.alpha = (0.5, 0.5), ours("initial (a_audio, a_visual) of eq. (3); not in the paper")
  m.learn_alpha = True, ours("eq. (3)'s weights learned; the paper does not say")
  m.late_alpha = 0.56, paper("002 Evaluation Metrics & Baseline, eq. (14)", "late fusion "
                             "p = 0.56 p_a + 0.44 p_v")
  m.lstm_hidden = 256, paper("002 Experiment Settings", "best of 64/128/256/512 hidden units")
  m.mlp_hidden = 64, paper("002 Experiment Settings", "one hidden layer of 64 ReLU units")
  m.dropout = 0.5, paper("002 Experiment Settings", "dropout 0.5 on the MLP's hidden layer")
  m.pixel_mean = (127.5, 127.5, 127.5), ours("pixels to [-1, 1]")
  m.pixel_scale = 1.0 / 127.5, ours("pixels to [-1, 1]")
  m.alexnet_weights = "", ours(
      "from scratch, as the weights are yours to give. The paper's path (002 Video segment and low "
      "level feature extraction: 'a model pre-trained on a large dataset ... fine-tune the "
      "weights', for both streams): the .npz of `python -m emojax.backbones.convert "
      "--network=alexnet` (torchvision's AlexNet)")
  scratch = ours("from scratch: the paper fine-tunes a pre-trained AlexNet (see alexnet_weights); "
                 "or a .npz of model.conv's network you own")
  m.visual_weights = "", scratch
  m.audio_weights = "", scratch

  o = common.block(c, "optim")
  o.name = "sgd", paper("002 Experiment Settings", "stochastic gradient descent with minibatches")
  o.learning_rate = 0.01, ours("AlexNet's rate; not in the paper")
  o.momentum = 0.9, ours("AlexNet's momentum; not in the paper")
  o.weight_decay = 5e-4, ours("AlexNet's weight decay; not in the paper")
  o.grad_clip = 5.0, ours("clipping against the LSTM's exploding gradients")

  t = common.block(c, "train")
  t.epochs = 30.0, ours("the paper gives no duration")
  t.eval_every_epochs = 2.0, ours("15 validations")
  t.patience = 0, ours("no early stopping (the best validation step is kept)")
  t.loss_on = "last", paper(
      "002 Temporal feature integration and emotion analysis", "'The output of the last time step "
      "of LSTM unit will be the input of the fully connected neural network': the loss on the "
      "last valid step; 'every_step' is the other reading, 002 Experiment Settings: 'trained "
      "end-to-end to predict the videos emotion class at each time step' (the clip's label at "
      "every step). The first is the default as it is the model the paper describes and the one "
      "that predicts")

  k = common.block(c, "checkpoint")
  k.best_metric = "accuracy", paper("002 Table 1", "the paper's metric: global accuracy")
  k.best_mode = "max", ours("higher accuracy is better")

  if "mediaeval2015" in words:
    ds = common.block(c, "dataset")
    ds.name = "liris_accede", paper("002 Dataset", "LIRIS-ACCEDE, MediaEval 2015")
    ds.config = "mediaeval2015_clips", paper("002 Dataset", "256-px key frames / spectrograms, "
                                             "3 classes")
    # MediaEval 2015 has no validation set: the harness holds out data.holdout_fraction of the
    # development films (by film) to select the best step; test = the official test set.
    common.block(c, "dataset.splits").validation = "", ours(
        "MediaEval 2015 has no validation set: held-out development films select the best step")

  if "runlocal" in words:
    small = ours("runlocal: narrow CNNs on 32-pixel crops train in minutes on 2 CPU cores")
    if "mediaeval2015" not in words:
      common.block(c, "dataset").config = "default", ours(
          "runlocal: the benchmark's 40 px images for the 32 crops")
    d.batch_size = 16, small
    d.eval_batch_size = 48, small
    common.block(c, "checkpoint").every_steps = 50, small
    common.block(c, "log").every_steps = 10, small
    m.crop = 32, small
    m.conv = SMALL_CONV, small
    m.width = 0.5, small
    m.fc_width = 128, small
    m.fc_dropout = 0.0, ours("runlocal: 128-wide fc6/fc7 trained unstably with 0.5")
    m.fusion_dim = 64, small
    m.lstm_hidden = 32, small
    m.mlp_hidden = 32, small
    t.epochs = 15.0, small
    t.eval_every_epochs = 1.0, small

  common.block(c, "sweep").metric = f"validation/{c.targets[0]}/accuracy", ours(
      "validation accuracy ranks the trials")
  c.lock()
  return c
