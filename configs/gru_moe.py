r"""Seed 001: per-modality GRU + context gating + mixture of experts + Butterworth smoothing.

Every default is written with its source (docs/methods.md, section gru_moe): the paper's place, or
"emojax's choice" and why. Datasets (the first argument word):

  (none)          the embedded synthetic benchmark (runs out of the box); the paper's image / audio /
                  face streams map to scene / audio / expression
  mediaeval2018   MediaEval 2018's official features (the paper's benchmark; the official streams
                  stand in for its Inception / AudioSet / Inception-face features, which need
                  backbones you provide): --config.dataset.manual_dir=<unzipped archives>
  films           features emojax extracts from films (synthetic_films, or your own `films`
                  dataset with `films,own`: --config.dataset.manual_dir=<videos + labels.csv>)
  films,backbones the paper's three streams extracted from the films (`films,own,backbones` for
                  yours): Inception-v3 pool of each second's frame (`inception_v3_pool`, 2048),
                  the same network on the two largest faces (`inception_v3_faces`, 2 x 2048 + 2
                  face shares) and the VGGish (AudioSet) embedding (`vggish_embedding`, 128, PCA +
                  quantised), from the converted weights you give (docs/backbones.md):
                  --config.dataset.builder_kwargs.extractors.inception_v3_pool.weights_path=
                  inception_v3.npz, the same file for inception_v3_faces, and vggish.npz for
                  vggish_embedding

  python main.py --config=configs/gru_moe.py --workdir=runs/gru_moe
  python main.py --config=configs/gru_moe.py:runlocal --workdir=/tmp/gru_moe
  python main.py --config=configs/gru_moe.py:mediaeval2018 --workdir=runs/gru_moe_me18 \
      --config.dataset.manual_dir=<folder holding the unzipped MEDIAEVAL18 archives>
  python main.py --config=configs/gru_moe.py:films,runlocal --workdir=/tmp/gru_moe_films
  python main.py --config=configs/gru_moe.py:films,own,backbones --workdir=runs/gru_moe_films \
      --config.dataset.manual_dir=<videos + labels.csv> \
      --config.dataset.builder_kwargs.extractors.inception_v3_pool.weights_path=inception_v3.npz \
      --config.dataset.builder_kwargs.extractors.inception_v3_faces.weights_path=inception_v3.npz \
      --config.dataset.builder_kwargs.extractors.vggish_embedding.weights_path=vggish.npz

Paper options (config keys): train.retrain_on_dev (after selection, a last phase on train +
validation for the selected steps, through the harness's Phase.train_splits; its final state is
the evaluated model); model.sizes_by_stream (hidden, layers) per stream; model.tcn_output
sequence/last (the encoder-decoder TCN predicting a sequence, or read sequence-to-one).

Ablation switches (config keys; each a separate run unless noted): model.encoder gru/lstm/tcn;
model.window_seconds 10/30/60; model.context_gating and model.mixture_of_experts on/off;
eval.postprocess butterworth/moving_average/none and model.bn_inference population/batch (both
also evaluated from one trained model as `variants` rows of eval/ablation.md); train.ensemble 1/4.
"""

import ml_collections

from configs import common
from configs.common import ours, paper

DATASETS = ("mediaeval2018", "films")
# MediaEval 2018's LIRE groups (as configs/two_timescale_mediaeval2018.py).
COLOUR = ("acc", "cl", "sc", "cedd", "fcth", "jcd")
TEXTURE = ("eh", "gabor", "tamura", "lbp")
# `films,backbones`: the paper's image, audio and face streams (001 Sec. 2.1), as emojax extracts
# them; the weights paths are yours (docs/backbones.md).
BACKBONE_STREAMS = ("inception_v3_pool", "vggish_embedding", "inception_v3_faces")


def set_backbone_extractors(c: ml_collections.ConfigDict) -> None:
  """dataset.builder_kwargs.extractors of `films,backbones`, every parameter with its source."""
  e = "dataset.builder_kwargs.extractors"
  fps = paper("001 Sec. 2.1", "'All our features were extracted at one frame per second'")
  x = common.block(c, f"{e}.inception_v3_pool")
  x.weights_path = "", ours(
      "'' = none: give Inception-v3 converted from torchvision's inception_v3_google (ImageNet, "
      "the paper's 'Inception network pre-trained on ImageNet'; the paper used TensorFlow's, "
      "with a preprocessing it does not give: the extractor's is torchvision's 342 / 299)")
  x.frames_per_second = 1, fps
  f = common.block(c, f"{e}.inception_v3_faces")
  f.weights_path = "", ours(
      "'' = none: give Inception-v3 weights; the paper's 'Inception based architecture trained "
      "on faces' is neither named nor published, so ImageNet's (the inception_v3_pool file) or "
      "a face-trained network converted to its layout; the face detector, the crops and the "
      "row layout are emojax's (emojax/features/inception_v3_faces.py)")
  f.frames_per_second = 1, fps
  f.max_faces = 2, paper("001 Sec. 2.1", "'the two largest faces in each frame'")
  v = common.block(c, f"{e}.vggish_embedding")
  v.weights_path = "", ours("'' = none: give VGGish converted with its PCA parameters "
                            "(python -m emojax.features.convert_vggish ... --pca ...)")
  v.postprocess = "pca_quantize", ours(
      "the paper's 'AudioSet' features are VGGish embeddings (001 Sec. 2.1); AudioSet released "
      "them PCA-whitened and 8-bit quantised, as VGGish's published postprocessor does")


# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("gru_moe", DATASETS, ("own",), ("backbones",), ("runlocal",),
                         needs=(("own", ("films",), (), "your own extracted films"),
                                ("backbones", ("films",), (),
                                 "features extracted from films with the paper's backbones")))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  c = common.base_config("gru_moe")
  common.block(c, "").targets = ("valence", "arousal"), paper(
      "001 Sec. 2", "valence and arousal predicted jointly")
  i = common.block(c, "inputs")
  i.streams = ("scene", "audio", "expression"), paper(
      "001 Sec. 2.1", "image, audio and face features (the synthetic benchmark's scene / audio / "
      "expression)")

  d = common.block(c, "data")
  d.clip_seconds = 1, paper("001 Sec. 2.1", "features at one frame per second: per-second "
                            "predictions")
  d.train_stride = 1, ours("a training window ends at every second")
  d.batch_size = 128, ours("for the CPU (the paper's 512 is the mediaeval2018 default)")
  d.eval_batch_size = 128, ours("as the training batch")

  m = common.block(c, "model")
  m.encoder = "gru", paper("001 Sec. 3", "GRUs ('lstm' and 'tcn' its alternatives, Sec. 2.2)")
  m.window_seconds = 60, paper("001 Sec. 2.2, 3", "sequence-to-one over 10, 30 or 60 s; 60 best")
  m.hidden = 64, ours("within the paper's 32-256 units (001 Sec. 3)")
  m.num_layers = 1, ours("within the paper's 1-2 layers (001 Sec. 3)")
  m.sizes_by_stream = (), ours(
      "() = model.hidden / num_layers for every stream. The paper's sizes were 'optimized for each "
      "of the modalities' within 32-256 units and 1-2 layers (001 Sec. 3) but are not given: "
      "give one (hidden, layers) per stream of inputs.streams")
  m.tcn_output = "sequence", paper(
      "001 Sec. 2.2", "'an encoder-decoder TCN using sequences of extracted features to obtain a "
      "sequence of valence and arousal predictions': non-causal, every second of a window "
      "predicted ('last': emojax's causal TCN read sequence-to-one as the GRU)")
  m.head_seconds = "last", paper(
      "001 Sec. 2.2, 3", "sequence-to-one: in training the head (context gates with their batch "
      "norm, MoE) runs on each window's loss second only, its batch statistics over those final "
      "states, the states evaluation predicts from ('all': on every second of the window, the "
      "statistics over all of them; ignored by the sequence TCN)")
  m.tcn_levels = 2, ours("ED-TCN pooling levels (encoder = decoder depth); not in the paper")
  m.tcn_kernel = 5, ours("ED-TCN temporal kernel (seconds); not in the paper")
  m.context_gating = True, paper("001 Sec. 2.3", "context gating before and after the MoE (its "
                                 "form, YouTube-8M's, from the paper's ref. [15])")
  m.mixture_of_experts = True, paper("001 Sec. 2.3", "logistic regression experts with a "
                                     "softmax gate (off: one logistic regression per target)")
  m.num_experts = 2, ours("YouTube-8M's default plus the dummy expert; the paper gives no number")
  m.dropout = 0.3, ours("the paper regularises with dropout (001 Sec. 2.3) but gives no rate")
  m.batch_norm = True, paper("001 Sec. 2.3", "batch normalization; its place, inside the context "
                            "gates (YouTube-8M's), is emojax's")
  m.bn_inference = "population", ours(
      "running statistics: the paper's runs used the batch's ('batch'), which it names as the cause "
      "of their higher prediction variance (001 Sec. 3), and which makes a second's prediction "
      "depend on the other windows of its evaluation batch; the 'batch' mode is scored as the "
      "bn_inference_batch row of every run (variants)")
  m.bn_momentum = 0.9, ours("running statistics that forget their initial 0 / 1 within a short "
                            "run (at 0.99, 199 steps kept 13% of them)")

  e = common.block(c, "eval")
  e.postprocess = "butterworth", paper("001 Sec. 3", "a low-pass Butterworth filter beat a "
                                       "moving average")
  e.butterworth_order = 4, ours("not given in the paper")
  e.butterworth_cutoff_hz = 0.05, ours("a 20 s period at 1 Hz; not given in the paper")
  e.moving_average_seconds = 15, ours("an unweighted centred mean (the paper tried weighted "
                                      "moving averages, 001 Sec. 2.3, without their weights)")

  o = common.block(c, "optim")
  o.name = "adam", paper("001 Sec. 2", "the Adam optimizer in all experiments")
  o.learning_rate = 1e-3, ours("Adam's usual rate; not given in the paper")
  o.l2 = 1e-8, ours("YouTube-8M MoE's 1e-8, here on every trained weight; the paper names L2 "
                    "regularisation (001 Sec. 2.3) without its strength")
  o.grad_clip = 1.0, ours("global-norm clipping of the GRU gradients")

  t = common.block(c, "train")
  t.epochs = 1.0, ours("epochs over the training windows; the paper gives none")
  t.eval_every_epochs = 0.25, ours("4 validations per epoch")
  t.patience = 0, ours("no early stopping (the best step is kept)")
  t.ensemble = 1, ours("one model; K members of this config trained in one jit(vmap) by main.py "
                       "(emojax/members.py; each member keeps its own best validation step and "
                       "retrains on train + validation from its own initial weights for its own "
                       "selected steps), their mean evaluated (the paper's run 5 averages its 4 "
                       "different runs, 001 Table 1: train.ensemble_members)")
  t.retrain_on_dev = True, paper(
      "001 Sec. 3", "after selection on the 13 validation films, 'trained our models on the entire "
      "development set': a last phase on train + validation for the selected number of steps")
  t.ensemble_sharding = "members", ours("members over the devices (or 'batch')")

  if "mediaeval2018" in words:
    ds = common.block(c, "dataset")
    ds.name = "mediaeval2018", paper("001 Sec. 3", "MediaEval 2018 Emotional Impact of Movies")
    ds.config = "official_features", ours("the organisers' features stand in for the paper's "
                                          "Inception / AudioSet / Inception-face features")
    ds.concat = (("colour", COLOUR), ("texture", TEXTURE)), ours(
        "the LIRE colour / texture groups of configs/two_timescale_mediaeval2018.py")
    # The official streams closest to the paper's image / audio / face features: VGG16 fc6
    # (ImageNet CNN, like Inception), openSMILE emobase2010 (audio), and the LIRE colour group
    # (no official stream holds faces).
    i.streams = ("fc6", "emobase2010", "colour"), ours(
        "the official streams closest to image / audio / face (no official stream holds faces)")
    d.batch_size = 512, paper("001 Sec. 3", "batch size 512")
    d.eval_batch_size = 512, ours("as the training batch")
    m.hidden = 128, ours("within the paper's 32-256 units (001 Sec. 3)")
    t.epochs = 10.0, ours("the paper gives no duration")
    t.eval_every_epochs = 1.0, ours("one validation per epoch")
  elif "films" in words:
    ds = common.block(c, "dataset")
    ds.name = ("films" if "own" in words else "synthetic_films"), ours(
        "your own films (`own`) or the rendered synthetic films")
    ds.config = "", ours("the builder's default config")
    ds.builder_kwargs = ml_collections.ConfigDict(
        {} if "own" in words else dict(num_films=24, duration_s=60, num_validation=4,
                                       num_test=4)), ours("24 synthetic films of 60 s")
    i.streams = ("visual_stats", "vggish_logmel", "audio_functionals"), ours(
        "emojax's extractors stand in for the paper's image / audio / face features")
    m.window_seconds = 30, ours("the synthetic films last 60 s")
    d.batch_size = 32, ours("few films: small batches")
    d.eval_batch_size = 32, ours("as the training batch")
    t.epochs = 20.0, ours("few films: more epochs")
    t.eval_every_epochs = 5.0, ours("4 validations")
    if "backbones" in words:
      set_backbone_extractors(c)
      i.streams = BACKBONE_STREAMS, paper(
          "001 Sec. 2.1", "Inception-Image, AudioSet and Inception-Face, in the order of the "
          "default's image / audio / face streams")

  if "runlocal" in words:
    common.shrink_for_local_run(c)
    small = ours("runlocal: a tiny model and a few steps on a CPU")
    ds = common.block(c, "dataset")
    if "mediaeval2018" in words:
      ds.config = "official_features", ours("runlocal shrinks the model, not the benchmark")
    if "films" in words:
      ds.config = "", ours("runlocal: the films builder's config is derived from its kwargs")
    if "films" in words and "own" not in words:
      ds.builder_kwargs = ml_collections.ConfigDict(
          dict(num_films=6, duration_s=30, num_validation=1, num_test=1)), small
      if "backbones" in words:
        set_backbone_extractors(c)
      ds.config = "", small
    m.hidden = 8, small
    m.window_seconds = 10, paper("001 Sec. 2.2", "the paper's shortest window")
    d.batch_size = 16, small
    d.eval_batch_size = 16, small
    t.epochs = 0.0, small
    t.steps = 10, small
    t.eval_every_steps = 5, small
    t.eval_every_epochs = 0.0, small

  s = common.block(c, "sweep")
  s.grid = (("model.window_seconds", (10, 30, 60)),), paper("001 Sec. 2.2, 3",
                                                            "the windows the paper compares")
  s.metric = "validation/valence/pcc", ours("validation PCC ranks the trials")
  c.lock()
  return c
