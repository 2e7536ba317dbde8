r"""Seed 000 (two-time-scale bi-LSTMs, progressive training) on MediaEval 2018, official features.

The paper computes its own features (VGGish audio, VGG16-Places365 scene, face expression, pose
action); this config trains the same method on the organisers' per-second features (dataset
`mediaeval2018`, config `official_features`, docs/datasets/mediaeval2018.md). Modality mapping
(ours: the closest official streams, one stream per modality):

  paper modality      official stream(s)                                   dims
  audio (VGGish)      emobase2010 (openSMILE, 5 s window centred on the s)  1582
  scene (Places365)   fc6 (VGG16 fc6, ImageNet)                             4096
  expression (valence) colour = acc + cl + sc + cedd + fcth + jcd            857
  action (arousal)    texture = eh + gabor + tamura + lbp                    414

The two LIRE groups follow what each descriptor measures: `colour` the pure colour descriptors
(auto colour correlogram, MPEG-7 colour layout and scalable colour) and the colour-led composites
(CEDD, FCTH and their joint JCD); `texture` the edge and texture ones (MPEG-7 edge histogram,
Gabor, Tamura, local binary patterns). Colour goes with valence and texture with arousal (no
official stream holds faces or motion). The groups are built by `config.dataset.concat`
(emojax/input_pipeline.py). `observed` (which seconds the builder filled) is a mask, not a
feature: it is never a modality. Splits are the builder's: `train` (41 development films),
`validation` (the 13-film holdout 02, 06, ..., 50), `test` (54-65). The official numbers
(MSE and PCC over all test seconds) of a finished run: `emojax.protocols.official_numbers(
"mediaeval2018", "official_features", "<workdir>/eval/test")`.

  python main.py --config=configs/two_timescale_mediaeval2018.py --workdir=runs/tts_me18 \
      --config.dataset.manual_dir=<folder holding the unzipped MEDIAEVAL18 archives>
  python main.py --config=configs/two_timescale_mediaeval2018.py:valence,runlocal \
      --workdir=/tmp/tts_me18 --config.dataset.manual_dir=<manual_dir>

Arguments (comma separated): `valence` / `arousal` (one target only; default both), `runlocal`
(small model and a few steps; the data stay MediaEval 2018).
"""

import ml_collections

from configs import common
from configs import two_timescale
from configs.common import ours

COLOUR = ("acc", "cl", "sc", "cedd", "fcth", "jcd")
TEXTURE = ("eh", "gabor", "tamura", "lbp")
# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("two_timescale_mediaeval2018", two_timescale.TARGETS, ("runlocal",))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  c = two_timescale.get_config(arg)
  with c.unlocked():
    d = common.block(c, "dataset")
    d.name = "mediaeval2018", ours("MediaEval 2018, the paper's benchmark (000 Dataset and "
                                   "Metrics), read from the organisers' files")
    d.config = "official_features", ours("the organisers' per-second features stand in for the "
                                         "paper's VGGish / Places365 / face / pose features")
    d.concat = (("colour", COLOUR), ("texture", TEXTURE)), ours(
        "LIRE colour descriptors for expression, edge/texture ones for action (see above)")
    d.splits = ml_collections.ConfigDict(
        dict(train="train", validation="validation", test="test")), ours(
            "41 development films, 13 held out for validation, the 12 test films")
    v = common.block(c, "per_target.valence.inputs")
    v.streams = ("emobase2010", "fc6", "colour"), ours(
        "the official streams closest to audio, scene and expression (table above)")
    a = common.block(c, "per_target.arousal.inputs")
    a.streams = ("emobase2010", "fc6", "texture"), ours(
        "the official streams closest to audio, scene and action (table above)")
    # The development set is 26 h 49 min (paper); its 41 training films give about 7,300 clips of
    # 10 s, 115 batches of 64: 1,200 steps is about 10 epochs per phase.
    epochs = ours("about 10 epochs per phase: 41 films of ~7,300 10 s clips, 115 batches of 64")
    t = common.block(c, "train")
    t.steps = 1200, epochs
    t.inter_clip_steps = 1200, epochs
    t.eval_every_steps = 200, ours("6 validations per phase")
    common.block(c, "checkpoint").every_steps = 200, ours("at every validation")
    common.block(c, "log").every_steps = 50, ours("4 logs per validation")
    if "runlocal" in words:
      small = ours("runlocal: a few steps on the real benchmark (the model shrinks, the data "
                   "stay MediaEval 2018)")
      d.config = "official_features", small
      t.steps = 20, small
      t.inter_clip_steps = 20, small
      t.eval_every_steps = 10, small
      common.block(c, "checkpoint").every_steps = 10, small
      common.block(c, "log").every_steps = 10, small
  return c
