"""Config blocks shared by every method's config (dataset, data, checkpoint, log, sweep)."""

import ml_collections


def base_config(method: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = method             # module name under emojax/models
  c.seed = 0
  c.targets = ("valence", "arousal")

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "synthetic_benchmark"   # module name under emojax/datasets (TFDS builder name)
  c.dataset.config = "default"             # TFDS BuilderConfig name ("" = the builder's default)
  c.dataset.data_dir = ""                  # "" = $EMOJAX_DATA_DIR or ~/emojax_data
  c.dataset.manual_dir = ""                # for benchmarks downloaded by hand
  c.dataset.import_module = ""             # a module of yours that registers your own TFDS builder
  c.dataset.builder_kwargs = ml_collections.ConfigDict()
  # Modalities made of several dataset streams concatenated along the feature axis:
  # ((name, (stream, ...)), ...), e.g. (("colour", ("acc", "cl", "sc")),). Empty = none.
  c.dataset.concat = ()
  c.dataset.splits = ml_collections.ConfigDict(
      dict(train="train", validation="validation", test="test"))

  c.data = ml_collections.ConfigDict()
  c.data.clip_seconds = 10      # paper (seed 000): films cut into non-overlapping 10 s clips
  c.data.batch_size = 64        # emojax's choice
  c.data.eval_batch_size = 64
  c.data.train_stride = 1       # training windows start every `train_stride` clips
  c.data.standardize = True     # emojax's choice: features standardised with the training split's mean/std
  # Datasets without a validation split (config.dataset.splits.validation = ""): this seeded share
  # of the training films selects the best steps instead (recorded in <workdir>/holdout.json).
  c.data.holdout_fraction = 0.15

  # The optimizer of every phase (a method may override fields per phase, e.g. its learning rate).
  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adam"         # "adam" | "adamw" | "sgd"
  c.optim.learning_rate = 1e-3
  c.optim.momentum = 0.9        # sgd
  c.optim.nesterov = False      # sgd
  c.optim.weight_decay = 0.0    # decoupled (adamw; sgd adds it to the update)
  c.optim.l2 = 0.0              # coupled L2: l2 * sum of squares of the trained parameters, in the loss
  c.optim.grad_clip = 0.0       # global-norm clipping (0 = none)
  c.optim.schedule = "constant"  # "constant" | "step" (x decay_factor every decay_every steps /
  c.optim.decay_every = 0       #   decay_every_epochs epochs) | "cosine" (to 0 over the phase)
  c.optim.decay_every_epochs = 0.0
  c.optim.decay_factor = 0.1

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.keep = 1         # latest checkpoints kept by the running phase (for resuming; 2+
                                #   also lets resume fall back past a damaged newest step)
  c.checkpoint.finished = "last"  # what finished phases keep: "last" (the newest one's best, all
                                  # resume needs), "best" (every phase's best), "all" (no pruning)
  c.checkpoint.every_steps = 50
  c.checkpoint.best_metric = "pcc"   # emojax's choice: validation metric selecting each phase's best checkpoint
  c.checkpoint.best_mode = "max"

  c.log = ml_collections.ConfigDict()
  c.log.every_steps = 25

  # Sweeps (emojax/sweep.py): tuples of (dotted field, values) / random specs; empty = no sweep.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.grid = ()
  c.sweep.random = ()
  c.sweep.num_random = 0
  c.sweep.seeds = (0,)
  c.sweep.metric = "validation/valence/pcc"
  c.sweep.mode = "max"
  c.sweep.columns = ()   # results.md's columns beside the metric (() = a few of its split)
  return c


def parse_arg(arg: str | None, allowed: set[str]) -> set[str]:
  """`get_config("valence,runlocal")` -> {"valence", "runlocal"}; unknown words fail loudly."""
  words = {w.strip() for w in (arg or "").split(",") if w.strip()}
  unknown = words - allowed
  if unknown:
    raise ValueError(f"unknown config argument(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
  return words


def shrink_for_local_run(c: ml_collections.ConfigDict) -> None:
  """runlocal: the small synthetic benchmark and short phases, for a laptop / CI smoke run."""
  c.dataset.config = "small"
  c.data.batch_size = 16
  c.data.eval_batch_size = 16
  c.checkpoint.every_steps = 10
  c.log.every_steps = 10
