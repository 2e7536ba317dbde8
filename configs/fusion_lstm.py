r"""Seed 002: audio-visual modal fusion + LSTM, 3-class arousal or valence per clip.

Every number the paper gives is a default here (methods.md section 002), marked "paper"; every
number it does not give is marked "emojax's choice".

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

FUSIONS = ("visual", "audio", "early", "late")
# runlocal's CNN for 32-pixel crops: (features, kernel, stride, padding, pool 3x3/2, LRN).
SMALL_CONV = ((32, 5, 1, 2, True, False), (64, 3, 1, 1, True, False), (96, 3, 1, 1, False, False),
              (96, 3, 1, 1, False, False), (64, 3, 1, 1, True, False))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"valence", "arousal", "runlocal", "mediaeval2015", *FUSIONS})
  dims = [w for w in ("valence", "arousal") if w in words]
  fusions = [w for w in FUSIONS if w in words]
  if len(dims) > 1 or len(fusions) > 1:
    raise ValueError(f"give at most one of valence/arousal and one of {FUSIONS}, got {arg!r}")
  c = common.base_config("fusion_lstm")
  c.targets = (dims[0] if dims else "arousal",)   # paper: reports arousal accuracy

  c.dataset.name = "synthetic_clips"    # the embedded per-clip benchmark (docs/synthetic_clips.md)
  c.dataset.config = "default"
  c.data.batch_size = 32                # emojax's choice
  c.data.eval_batch_size = 32
  c.data.standardize = False            # images: the model scales pixels itself

  c.model = ml_collections.ConfigDict()
  c.model.fusion = fusions[0] if fusions else "modal"   # paper: modal fusion
  c.model.visual_stream = "keyframe"
  c.model.audio_stream = "spectrogram_image"
  c.model.crop = 227                    # paper: AlexNet on 256 x 256 images (227 crops)
  c.model.conv = tuple(tuple(x) for x in (
      (96, 11, 4, 0, True, True), (256, 5, 1, 2, True, True), (384, 3, 1, 1, False, False),
      (384, 3, 1, 1, False, False), (256, 3, 1, 1, True, False)))   # paper: AlexNet
  c.model.width = 1.0                   # multiplier of the conv widths
  c.model.fc_width = 4096               # paper: fc7, 4,096-d
  c.model.fc_dropout = 0.5              # AlexNet's dropout on fc6/fc7
  c.model.fusion_dim = 512              # paper: 512-d fused feature
  c.model.alpha = (0.5, 0.5)            # emojax's choice: initial (a_audio, a_visual)
  c.model.learn_alpha = True            # emojax's choice: the paper does not say
  c.model.late_alpha = 0.56             # paper: late fusion p = 0.56 p_a + 0.44 p_v
  c.model.lstm_hidden = 256             # paper: best of 64/128/256/512
  c.model.mlp_hidden = 64               # paper: one hidden layer of 64 ReLU units
  c.model.dropout = 0.5                 # paper
  c.model.pixel_mean = (127.5, 127.5, 127.5)   # emojax's choice: pixels to [-1, 1]
  c.model.pixel_scale = 1.0 / 127.5
  c.model.visual_weights = ""           # .npz of pretrained AlexNet weights you own ("" = scratch)
  c.model.audio_weights = ""

  c.optim = ml_collections.ConfigDict(dict(
      name="sgd",                       # paper: SGD with minibatches
      learning_rate=0.01,               # emojax's choice
      momentum=0.9,                     # emojax's choice
      nesterov=False, weight_decay=5e-4,   # emojax's choice (AlexNet's)
      l2=0.0, grad_clip=5.0,            # emojax's choice
      schedule="constant", decay_every=0, decay_every_epochs=0.0, decay_factor=0.1))

  c.train = ml_collections.ConfigDict()
  c.train.epochs = 30.0                 # emojax's choice
  c.train.eval_every_epochs = 2.0       # emojax's choice
  c.train.patience = 0                  # emojax's choice: no early stopping

  c.checkpoint.best_metric = "accuracy"   # paper's metric: global accuracy
  c.checkpoint.best_mode = "max"

  if "mediaeval2015" in words:
    c.dataset.name = "liris_accede"
    c.dataset.config = "mediaeval2015_clips"   # 256-px key frames / spectrograms, 3 classes
    # MediaEval 2015 has no validation set: emojax's choice, 10% of the development clips (by
    # TFDS key order, so films are shared with training: for step selection only); test = the
    # official test set.
    c.dataset.splits = ml_collections.ConfigDict(
        dict(train="train[:90%]", validation="train[90%:]", test="test"))

  if "runlocal" in words:
    c.data.batch_size = 16
    c.data.eval_batch_size = 48
    c.checkpoint.every_steps = 50
    c.log.every_steps = 10
    c.model.crop = 32
    c.model.conv = SMALL_CONV
    c.model.width = 0.5
    c.model.fc_width = 128
    c.model.fc_dropout = 0.0            # emojax's choice: 128-wide fc6/fc7 trained unstably with 0.5
    c.model.fusion_dim = 64
    c.model.lstm_hidden = 32
    c.model.mlp_hidden = 32
    c.train.epochs = 15.0
    c.train.eval_every_epochs = 1.0

  c.sweep.metric = f"validation/{c.targets[0]}/accuracy"
  c.lock()
  return c
