r"""Seed 003: AttendAffectNet (Feature AAN, Temporal AAN, Feature + Temporal AAN).

Every default is written with its source (docs/methods.md, section attendaffectnet): the paper's
place, the authors' released models, or "emojax's choice" and why.

  python main.py --config=configs/attendaffectnet.py --workdir=runs/aan             # Feature AAN
  python main.py --config=configs/attendaffectnet.py:temporal --workdir=runs/taan
  python main.py --config=configs/attendaffectnet.py:feature_temporal,runlocal --workdir=/tmp/ftaan
  python main.py --config=configs/attendaffectnet.py:cognimuse,arousal --workdir=runs/aan_cog \
      --config.dataset.splits.train=... (one fold; `python -m emojax.folds` runs all 12)
  python main.py --config=configs/attendaffectnet.py:mediaeval2016,valence --workdir=runs/aan_me16

Arguments (comma separated):
  `feature` (default) / `temporal` / `feature_temporal`: the variant;
  `cognimuse`: extended COGNIMUSE, intended labels in 5 s segments (`cognimuse` builder,
    `intended_5s`), lr 5e-4 / 1e-3, dropout 0.1 / 0.5, batch 30 (paper), one row = one segment;
  `mediaeval2016`: MediaEval 2016 Global (`liris_accede` builder, `mediaeval2016_global`, one
    example per clip), lr 0.01, batch 40 (arousal) / 20 (valence) (paper). The model reads
    (B, T, D) clips (averaged over T, or over 4 sub-segments for the temporal variants); the
    harness pads each clip's per-second streams (8-12 s) to the longest clip. No validation split:
    `data.holdout_fraction` of the training films choose the best step (tests/
    test_attendaffectnet_train.py trains it on a LIRIS-ACCEDE fixture tree through main.py);
  `valence` / `arousal`: one target (default both, each its own network, trained one after the
    other); `audio` / `video`: the audio-only / video-only stream subsets of the dataset;
  `films`: your own films (`films` builder: a folder of videos + labels.csv, set
    --config.dataset.manual_dir) with the paper's five features from emojax's extractors
    (`PAPER_FEATURES`: ResNet-50 pool 2048, FlowNetS 1024, I3D 1024, VGGish 128, emobase2010 1582,
    one row per second, averaged over each 5 s clip by the model), from the converted backbone
    weights in `backbones/` (`python -m emojax.backbones.convert ... --out=backbones/<file>`,
    docs/backbones.md; another folder: --config.dataset.builder_kwargs.extractors.<name>.
    weights_path=...);
  `runlocal`: the small synthetic benchmark and a short run.
Default data: the embedded synthetic benchmark (streams audio, scene, expression, action), clips of
5 s (the paper's segment length; emojax's choice for this benchmark).
"""

import ml_collections

from configs import common
from configs.common import ours, paper, released

VARIANTS = ("feature", "temporal", "feature_temporal")
# Stream subsets per dataset: (all, audio only, video only).
STREAMS = {
    "synthetic": (("audio", "scene", "expression", "action"), ("audio",),
                  ("scene", "expression", "action")),
    # emojax's default extractors (emojax.features.extract.DEFAULT) in the cognimuse /
    # liris_accede builders; the paper's five (the released models' streams) are PAPER_FEATURES
    # below (the `films` argument; the importer's --backbones).
    "extracted": (("vggish_logmel", "audio_functionals", "visual_stats"),
                  ("vggish_logmel", "audio_functionals"), ("visual_stats",)),
}
# The paper's five streams (003 Sec. III-A, III-B) from emojax's extractors, in the released models'
# input order: (released stream name, extractor, converted weights file: the `--out` names of
# docs/backbones.md).
PAPER_FEATURES = (("resnet50", "resnet50_pool", "resnet50.npz"),
                  ("flownet", "flownets", "flownets.npz"),
                  ("i3d", "i3d_rgb", "i3d_rgb.npz"),
                  ("vggish", "vggish_embedding", "vggish.npz"),
                  ("emobase", "opensmile_functionals", ""))
# 003 Sec. IV-B(a): COGNIMUSE's 5 s segments at 25 fps, "all 125 frames in each 5-second excerpt".
FRAMES_PER_SECOND = 25
BACKBONES_DIR = "backbones"
SUBSETS = ("all streams", "audio streams only (`audio`)", "video streams only (`video`)")
# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("attendaffectnet", VARIANTS, ("cognimuse", "mediaeval2016", "films"),
                         ("valence", "arousal"), ("audio", "video"), ("runlocal",))


def paper_extractors(backbones_dir: str = BACKBONES_DIR, clip_seconds: int = 0,
                     streams=None) -> dict:
  """{extractor: params} of the paper's five features (003 Sec. III-A, III-B), weights read from
  `backbones_dir`; `streams`: released stream names to keep (default all five).

  clip_seconds > 0: one row per clip of that many seconds, the released models' clip-level inputs:
  ResNet-50's pool averaged over the clip's frames (25 per second), I3D on the stack of the clip's
  frames and FlowNetS over its consecutive pairs (25 x clip_seconds frames), emobase2010's
  functionals of the clip's audio; VGGish stays per 0.96 s patch (one per second; predict averages
  a clip's). clip_seconds = 0: one row per second of each (the per-second `films` dataset; the
  model averages each clip's rows), 25 frames per second.
  """
  def path(f):
    return f"{backbones_dir.rstrip('/')}/{f}" if backbones_dir else f
  cs, fps = int(clip_seconds), FRAMES_PER_SECOND
  out = {
      "resnet50_pool": {"weights_path": path("resnet50.npz"), "frames_per_second": fps,
                        **({"per": "clip", "clip_seconds": cs} if cs else {})},
      "flownets": {"weights_path": path("flownets.npz"), "num_frames": fps * max(cs, 1),
                   **({"level": "clip", "clip_seconds": cs} if cs else {"level": "second"})},
      "i3d_rgb": {"weights_path": path("i3d_rgb.npz"), "num_frames": fps * max(cs, 1),
                  **({"level": "clip", "clip_seconds": cs} if cs else {"level": "second"})},
      "vggish_embedding": {"weights_path": path("vggish.npz")},
      "opensmile_functionals": {"feature_set": "emobase2010",
                                **({"level": "clip", "clip_seconds": cs} if cs else
                                   {"level": "second"})},
  }
  keep = {e for r, e, _ in PAPER_FEATURES if streams is None or r in streams}
  return {e: p for e, p in out.items() if e in keep}


def model_block(c: ml_collections.ConfigDict, variant: str, subset: int = 0) -> None:
  """The network of `variant` (config.model) over the stream subset `subset` (index of SUBSETS)."""
  feature = variant == "feature"
  a = common.block(c, "model")
  a.variant = variant, ours("the variant named by the config argument (default Feature AAN)")
  a.d_model = 8, (paper("003 Sec. III-C(b)", "each stream -> a fully connected layer of 8")
                  if feature else paper("003 Sec. III-C(c)", "each stream -> a fully connected layer of 8; "
                             "the segment's vectors concatenated: the decoder's width d = 8 x "
                             "streams, the paper's d = 40 for its five streams; for other stream "
                             "sets the same rule (emojax's reading: the text gives only d = 40)"))
  a.norm = "pre", released("003", "pre-norm residual blocks x + Dropout(sublayer(LN(x))) and a "
                           "final LN; 'post' = the paper's text (003 Sec. III-C(a): 'a residual "
                           "connection followed by a layer normalization', LN(x + sublayer(x)), "
                           "no final LN)")
  if subset == 0:
    a.feed_forward = "relu", released("003", "the five-stream model's FF Dropout(ReLU(w(x))), one "
                                      "8 x 8 linear (003 Sec. IV-B(b): 'from two to only one, "
                                      "which has the dimensionality of eight')" + (
                                          "" if feature else "; in the Temporal AAN one d x d "
                                          "linear (d = 40 for five streams): emojax's reading, "
                                          "the text's 'eight' fits the Feature AAN only"))
    a.head_activation = "none", released("003", "the five-stream model's head Linear(Dropout(mean "
                                         "of the tokens))")
  else:
    which = "audio-only / video-only models" + ("" if feature else " (Feature AAN; no Temporal "
                                                 "AAN released: emojax's choice to follow them)")
    a.feed_forward = "x_plus_tanh", released("003", f"the {which}' FF w(Dropout(x + tanh(x))), "
                                             "one 8 x 8 linear; 'relu' = the five-stream model's")
    a.head_activation = "tanh", released("003", f"the {which}' head Linear(Dropout(tanh(mean of "
                                         "the tokens))); 'none' = the five-stream model's")
  a.heads = 2, paper("003 Sec. IV-B(b)", "two heads beat eight")
  a.encoder_layers = 6, released("003", "6 encoder layers")
  a.decoder_layers = 6, ours("the Transformer's N = 6, as the released encoder")
  a.layer_norm = "authors", released("003", "a (x - mean) / (std + eps) + b, unbiased std; "
                                     "'standard' = (x - mean) / sqrt(var + eps)")
  a.layer_norm_eps = 1e-6, released("003", "eps of the layer norm")
  a.dropout = (0.1 if variant == "feature" else 0.5), (
      ours("the Temporal AAN's 0.5 (003 Sec. IV-B(b)): the text gives no Feature + Temporal AAN "
           "numbers") if variant == "feature_temporal" else
      paper("003 Sec. IV-B(b)", "0.1 (Feature AAN) / 0.5 (Temporal AAN)"))
  a.attention_dropout = 0.1, (
      released("003", "dropout 0.1 on the attention weights") if variant == "feature" else
      ours("the released Feature AAN's 0.1 on the attention weights (no Temporal AAN released)"))
  a.head_dropout = 0.1, released("003", "Dropout(0.1) before the final Linear")
  a.temporal_dropout = 0.5, paper("003 Sec. III-C(c), IV-B(b)",
                                  "dropout 0.5 on the decoder outputs (Temporal AAN)")
  a.num_clips = 5, paper("003 Sec. IV-B(b)", "sequence length 5 (COGNIMUSE), 4 (MediaEval 2016)")
  a.start_value = 0.0, ours("the 'previous output' before the first segment; not in the paper")
  a.causal_memory = True, ours("output j attends to segments <= j")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  variant = next((w for w in VARIANTS if w in words), "feature")
  feature = variant == "feature"

  c = common.base_config("attendaffectnet")
  if "valence" in words or "arousal" in words:
    common.block(c, "").targets = tuple(t for t in ("valence", "arousal") if t in words), ours(
        "the target named by the config argument")
  subset = 1 if "audio" in words else 2 if "video" in words else 0
  model_block(c, variant, subset)
  i = common.block(c, "inputs")
  i.streams = STREAMS["synthetic"][subset], ours(
      f"the synthetic benchmark's {SUBSETS[subset]}; token order = this order")
  i.unit = "second", ours("per-second film windows ('clip': one example per clip)")

  d = common.block(c, "data")
  d.clip_seconds = 5, ours("the paper's 5 s segments (003 Sec. IV-B(a)) on the synthetic "
                           "benchmark")
  d.batch_size = 30, paper("003 Sec. IV-B(b)", "batch 30 (COGNIMUSE)")
  d.eval_batch_size = 64, ours("any size: evaluation only")

  o = common.block(c, "optim")
  o.name = "adam", paper("003 Sec. IV-B(b)", "Adam")
  o.learning_rate = (5e-4 if feature else 1e-3), (
      ours("the Temporal AAN's 1e-3 (003 Sec. IV-B(b)): the text gives no Feature + Temporal AAN "
           "numbers") if variant == "feature_temporal" else
      paper("003 Sec. IV-B(b)", "COGNIMUSE: 5e-4 (Feature AAN) / 1e-3 (Temporal AAN)"))
  # The rest of config.optim (configs/common.py): no clipping, constant rate (the paper names
  # neither).

  t = common.block(c, "train")
  t.loss = "mse_pcc", paper("003 Sec. IV-B(b), eq. (3)", "MSE + (1 - PCC)")
  t.epochs = (500.0 if feature else 1000.0), paper("003 Sec. IV-B(b)",
                                                   "at most 500 / 1000 epochs")
  t.eval_every_epochs = 1.0, paper("003 Sec. IV-B(b)", "early stopping counted in epochs")
  t.patience = 30, paper("003 Sec. IV-B(b)", "patience 30 epochs")
  k = common.block(c, "checkpoint")
  k.best_metric = "mse", ours("the best epoch by validation MSE; the paper does not say")
  k.best_mode = "min", ours("lower MSE is better")

  if "cognimuse" in words:
    ds = common.block(c, "dataset")
    ds.name = "cognimuse", paper("003 Sec. IV-A", "extended COGNIMUSE")
    ds.config = "intended_5s", paper("003 Sec. IV-A, IV-B(a)", "intended labels, 5 s segments")
    ds.splits = ml_collections.ConfigDict(dict(train="", validation="", test="")), paper(
        "003 Sec. IV-C", "leave-one-out cross-validation over the 12 films: set per fold by "
        "emojax.folds")
    d.clip_seconds = 1, ours("one dataset row is already one 5 s segment")
    i.streams = STREAMS["extracted"][subset], ours(
        f"emojax's extractors, {SUBSETS[subset]}, stand in for the paper's features")
    a = common.block(c, "model")
    a.num_clips = 5, paper("003 Sec. IV-B(b)", "sequence length 5 (COGNIMUSE)")
  elif "mediaeval2016" in words:
    ds = common.block(c, "dataset")
    ds.name = "liris_accede", paper("003 Sec. IV-A", "Global EIMT16 (LIRIS-ACCEDE)")
    ds.config = "mediaeval2016_global", paper("003 Sec. IV-A", "MediaEval 2016 Global")
    ds.splits = ml_collections.ConfigDict(dict(train="train", validation="", test="test")), ours(
        "MediaEval 2016's official split: the 9,800 Discrete LIRIS-ACCEDE excerpts train, the "
        "1,200 additional ones test (003 Sec. IV-A(b) gives the counts, not the roles); the paper "
        "names no validation split")
    d.holdout_fraction = 0.15, ours("no validation split in the paper (003 Sec. V: 'trained and "
                                    "validated on ...' only): 15% of the training films choose "
                                    "the best step")
    i.unit = "clip", ours("one example per excerpt")
    i.streams = STREAMS["extracted"][subset], ours(
        f"emojax's extractors, {SUBSETS[subset]}, stand in for the paper's features")
    common.block(c, "model").num_clips = 4, paper("003 Sec. IV-B(a), IV-B(b)",
                                                  "4 sub-segments per excerpt")
    o.learning_rate = 0.01, paper("003 Sec. IV-B(b)", "0.01 for both models (Global EIMT16)")
    d.batch_size = (40 if c.targets == ("arousal",) else 20), paper(
        "003 Sec. IV-B(b)", "batch 40 (arousal) / 20 (valence); with both targets the run uses "
        "valence's 20")

  elif "films" in words:
    released_names = tuple(r for r, _, _ in PAPER_FEATURES)
    subset_names = (released_names, released_names[3:], released_names[:3])[subset]
    ds = common.block(c, "dataset")
    ds.name = "films", ours("your films (emojax/datasets/films.py): a folder of videos and "
                            "labels.csv in config.dataset.manual_dir")
    ds.config = "", ours("the builder's default config")
    ds.builder_kwargs = ml_collections.ConfigDict(dict(
        missing_audio="skip",
        extractors=paper_extractors(BACKBONES_DIR, 0, subset_names))), paper(
            "003 Sec. III-A, III-B", "ResNet-50 pool (2048), FlowNetS (1024), I3D Mixed_5c "
            "(1024), VGGish (128), emobase2010 (1582); per second here, 25 frames a second "
            "(003 Sec. IV-B(a): all 125 frames of a 5 s segment), from the converted weights in "
            "backbones/ (emojax's choice of folder; docs/backbones.md); films without sound "
            "skipped (emojax's choice)")
    i.streams = tuple(e for r, e, _ in PAPER_FEATURES if r in subset_names), paper(
        "003 Sec. III-A, III-B", f"the paper's five features, {SUBSETS[subset]}, in the released "
        "models' input order")
    d.clip_seconds = 5, paper("003 Sec. IV-A, IV-B(a)", "5 s segments, each one element of the "
                              "sequence")

  if "runlocal" in words:
    benchmark = c.dataset.config
    common.shrink_for_local_run(c)
    small = ours("runlocal: a short run on a CPU")
    if "cognimuse" in words or "mediaeval2016" in words:
      common.block(c, "dataset").config = benchmark, ours(
          "runlocal shortens the run, not the benchmark")
    d.batch_size = 16, small
    t.epochs = 0.0, small
    t.steps = 60, small
    t.eval_every_steps = 20, small
    t.eval_every_epochs = 0.0, small
    t.patience = 0, small
    o.learning_rate = 3e-3, ours("runlocal: a faster rate for the short smoke run")
  common.block(c, "sweep").metric = f"validation/{c.targets[0]}/pcc", ours(
      "validation PCC of the config's first target ranks the trials")
  c.lock()
  return c
