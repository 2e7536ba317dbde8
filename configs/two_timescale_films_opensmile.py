r"""Seed 000 on films with openSMILE functionals as the third modality (needs emojax[opensmile]).

`configs/two_timescale_films.py` with `opensmile_functionals` in place of `audio_functionals`:
eGeMAPSv02 (88 functionals) over each second, or with `emobase2010` the 1,582 functionals of
MediaEval 2018's official audio features (openSMILE's emobase2010, derived from the package's IS10
config) over 5 s windows centred on each second, as the official files are described. The run
records the feature manifest, so predict extracts the same stream from new films:

  python main.py --config=configs/two_timescale_films_opensmile.py --workdir=runs/films_smile
  python main.py --mode=predict --workdir=runs/films_smile \
      --video=tests/fixtures/media/bigbuckbunny.mp4

Arguments: those of two_timescale_films (`valence`, `arousal`, `runlocal`, `films`) and
`emobase2010`. openSMILE is licensed for research and personal use only (see README).
"""

import ml_collections

from configs import common
from configs import two_timescale_films
from configs.common import ours

OPENSMILE = {"feature_set": "eGeMAPSv02", "level": "second", "window_s": 1.0, "clip_seconds": 0}
OPENSMILE_EMOBASE2010 = {"feature_set": "emobase2010", "level": "second", "window_s": 5.0,
                         "clip_seconds": 0}
MODALITIES = ("vggish_logmel", "visual_stats", "opensmile_functionals")
# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("two_timescale_films_opensmile", *two_timescale_films.OPTIONS.groups,
                         ("emobase2010",))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  c = two_timescale_films.get_config(",".join(sorted(words - {"emobase2010"})))
  with c.unlocked():
    common.block(c, "dataset.builder_kwargs").extractors = ml_collections.ConfigDict({
        "vggish_logmel": {}, "visual_stats": {},
        "opensmile_functionals": dict(OPENSMILE_EMOBASE2010 if "emobase2010" in words
                                      else OPENSMILE)}), ours(
                                          "eGeMAPSv02 per second, or MediaEval 2018's "
                                          "emobase2010 over 5 s windows (`emobase2010`)")
    for t in ("valence", "arousal"):
      common.block(c, f"per_target.{t}.inputs").streams = MODALITIES, ours(
          "openSMILE functionals as the third modality")
  return c
