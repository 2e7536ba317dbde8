r"""Seed 001: per-modality GRU + context gating + mixture of experts + Butterworth smoothing.

Every number the paper gives (methods.md section 001) is a default here, marked "paper"; every
number it does not give is marked "emojax's choice". Datasets (the first argument word):

  (none)          the embedded synthetic benchmark (runs out of the box); the paper's image / audio /
                  face streams map to scene / audio / expression
  mediaeval2018   MediaEval 2018's official features (the paper's benchmark; the official streams
                  stand in for its Inception / AudioSet / Inception-face features, which need
                  backbones you provide): --config.dataset.manual_dir=<unzipped archives>
  films           features emojax extracts from films (synthetic_films, or your own `films`
                  dataset with `films,own`: --config.dataset.manual_dir=<videos + labels.csv>)

  python main.py --config=configs/gru_moe.py --workdir=runs/gru_moe
  python main.py --config=configs/gru_moe.py:runlocal --workdir=/tmp/gru_moe
  python main.py --config=configs/gru_moe.py:mediaeval2018 --workdir=runs/gru_moe_me18 \
      --config.dataset.manual_dir=<folder holding the unzipped MEDIAEVAL18 archives>
  python main.py --config=configs/gru_moe.py:films,runlocal --workdir=/tmp/gru_moe_films

Ablation switches (config keys; each a separate run unless noted): model.encoder gru/lstm/tcn;
model.window_seconds 10/30/60; model.context_gating and model.mixture_of_experts on/off;
postprocess.kind butterworth/moving_average/none and model.bn_inference population/batch (both
also evaluated from one trained model as `variants` rows of eval/ablation.md); train.ensemble 1/4.
"""

import ml_collections

from configs import common
from configs import two_timescale_mediaeval2018 as me18

DATASETS = ("mediaeval2018", "films")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"runlocal", "own", *DATASETS})
  c = common.base_config("gru_moe")
  c.targets = ("valence", "arousal")  # paper: valence and arousal predicted jointly
  c.modalities = ("scene", "audio", "expression")   # paper: image, audio, face

  c.data.clip_seconds = 1       # per-second predictions (one-second clips, features at 1 fps: paper)
  c.data.train_stride = 1       # paper: a window ends at every second (stride 1)
  c.data.batch_size = 128       # emojax's choice for the CPU (paper: 512, the mediaeval2018 default)
  c.data.eval_batch_size = 128

  c.model = ml_collections.ConfigDict()
  c.model.encoder = "gru"       # paper: GRU ("lstm" and "tcn" its alternatives)
  c.model.window_seconds = 60   # paper: sequence-to-one over 10, 30 or 60 s, 60 best
  c.model.hidden = 64           # emojax's choice within the paper's 32-256 units
  c.model.num_layers = 1        # emojax's choice within the paper's 1-2 layers
  c.model.tcn_levels = 2        # emojax's choice: ED-TCN pooling levels (encoder = decoder depth)
  c.model.tcn_kernel = 5        # emojax's choice: ED-TCN temporal kernel (seconds)
  c.model.context_gating = True       # paper: context gating before and after the MoE
  c.model.mixture_of_experts = True   # paper: MoE (off: one logistic regression per target)
  c.model.num_experts = 2       # paper: M = 2 (YouTube-8M default) plus the dummy expert
  c.model.dropout = 0.3         # emojax's choice (paper: dropout, rate not given)
  c.model.batch_norm = True     # paper: batch norm (inside the context gates)
  c.model.bn_inference = "population"  # emojax's choice; "batch" as the paper's results were made
  c.model.bn_momentum = 0.9     # emojax's choice: running statistics that forget their initial 0 / 1
  #                               within a short run (at 0.99, 199 steps kept 13% of them)

  c.postprocess = ml_collections.ConfigDict()
  c.postprocess.kind = "butterworth"   # paper: low-pass Butterworth beat a moving average
  c.postprocess.butterworth_order = 4  # emojax's choice (not given in the paper)
  c.postprocess.butterworth_cutoff_hz = 0.05  # emojax's choice: 20 s period at 1 Hz
  c.postprocess.moving_average_seconds = 15   # emojax's choice

  c.optim.name = "adam"         # paper: Adam
  c.optim.learning_rate = 1e-3  # emojax's choice
  c.optim.l2 = 1e-8             # paper: L2 1e-8 (YouTube-8M MoE); here on every trained weight
  c.optim.grad_clip = 1.0       # emojax's choice

  c.train = ml_collections.ConfigDict()
  c.train.steps = 0             # duration in steps, or
  c.train.epochs = 1.0          # emojax's choice: epochs over the training windows
  c.train.eval_every = 0
  c.train.eval_every_epochs = 0.25   # emojax's choice
  c.train.patience = 0          # emojax's choice: no early stopping (the best step is kept)
  c.train.ensemble = 1          # paper: its best MSE averages runs; 4 members = its run 5
  c.train.ensemble_sharding = "members"   # emojax's choice: members over the devices (or "batch")

  if "mediaeval2018" in words:
    c.dataset.name = "mediaeval2018"
    c.dataset.config = "official_features"
    c.dataset.concat = (("colour", me18.COLOUR), ("texture", me18.TEXTURE))
    # The official streams closest to the paper's image / audio / face features: VGG16 fc6
    # (ImageNet CNN, like Inception), openSMILE emobase2010 (audio), and the LIRE colour group
    # (no official stream holds faces).
    c.modalities = ("fc6", "emobase2010", "colour")
    c.data.batch_size = 512     # paper
    c.data.eval_batch_size = 512
    c.model.hidden = 128        # emojax's choice within 32-256
    c.train.epochs = 10.0       # emojax's choice
    c.train.eval_every_epochs = 1.0
  elif "films" in words:
    c.dataset.name = "films" if "own" in words else "synthetic_films"
    c.dataset.config = ""
    c.dataset.builder_kwargs = ml_collections.ConfigDict(
        {} if "own" in words else dict(num_films=24, duration_s=60, num_validation=4, num_test=4))
    c.modalities = ("visual_stats", "vggish_logmel", "audio_functionals")
    c.model.window_seconds = 30   # emojax's choice: the synthetic films last 60 s
    c.data.batch_size = 32
    c.data.eval_batch_size = 32
    c.train.epochs = 20.0
    c.train.eval_every_epochs = 5.0
  elif "own" in words:
    raise ValueError("config argument 'own' goes with 'films' (your own extracted films)")

  if "runlocal" in words:
    common.shrink_for_local_run(c)
    if "mediaeval2018" in words:
      c.dataset.config = "official_features"  # runlocal shrinks the model, not the benchmark
    if "films" in words and "own" not in words:
      c.dataset.builder_kwargs = ml_collections.ConfigDict(
          dict(num_films=6, duration_s=30, num_validation=1, num_test=1))
      c.dataset.config = ""
    c.model.hidden = 8
    c.model.window_seconds = 10   # paper's shortest window
    c.data.batch_size = 16
    c.data.eval_batch_size = 16
    c.train.epochs = 0.0
    c.train.steps = 10
    c.train.eval_every = 5
    c.train.eval_every_epochs = 0.0

  c.sweep.grid = (("model.window_seconds", (10, 30, 60)),)
  c.sweep.metric = "validation/valence/pcc"
  c.lock()
  return c
