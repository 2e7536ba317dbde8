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

COLOUR = ("acc", "cl", "sc", "cedd", "fcth", "jcd")
TEXTURE = ("eh", "gabor", "tamura", "lbp")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"valence", "arousal", "runlocal"})
  c = two_timescale.get_config(arg)
  with c.unlocked():
    c.dataset.name = "mediaeval2018"
    c.dataset.config = "official_features"
    c.dataset.concat = (("colour", COLOUR), ("texture", TEXTURE))
    c.dataset.splits = ml_collections.ConfigDict(
        dict(train="train", validation="validation", test="test"))
    c.valence.modalities = ("emobase2010", "fc6", "colour")
    c.arousal.modalities = ("emobase2010", "fc6", "texture")
    # Ours: the development set is 26 h 49 min (paper); its 41 training films give about 7,300
    # clips of 10 s, 115 batches of 64: 1,200 steps is about 10 epochs per phase.
    c.train.steps_per_phase = 1200
    c.train.inter_steps = 1200
    c.train.eval_every_steps = 200
    c.checkpoint.every_steps = 200
    c.log.every_steps = 50
    if "runlocal" in words:
      c.dataset.config = "official_features"  # runlocal shrinks the model, not the benchmark
      c.train.steps_per_phase = 20
      c.train.inter_steps = 20
      c.train.eval_every_steps = 10
      c.checkpoint.every_steps = 10
      c.log.every_steps = 10
  return c
