r"""Seed 000 on films with openSMILE functionals as the third modality (needs emojax[opensmile]).

`configs/two_timescale_films.py` with `opensmile_functionals` in place of `audio_functionals`:
eGeMAPSv02 (88 functionals) over each second, or with `is10` the INTERSPEECH 2010 set (1,582
functionals, the layout of MediaEval 2018's official audio features) over 5 s windows centred on
each second, as the official files are described. The run records the feature manifest, so
predict extracts the same stream from new films:

  python main.py --config=configs/two_timescale_films_opensmile.py --workdir=runs/films_smile
  python main.py --mode=predict --workdir=runs/films_smile \
      --video=../shared/fixtures/media/bigbuckbunny.mp4

Arguments: those of two_timescale_films (`valence`, `arousal`, `runlocal`, `films`) and `is10`.
openSMILE is licensed for research and personal use only (see README).
"""

import ml_collections

from configs import common
from configs import two_timescale_films

OPENSMILE = {"feature_set": "eGeMAPSv02", "level": "second", "window_s": 1.0, "clip_seconds": 0}
OPENSMILE_IS10 = {"feature_set": "IS10", "level": "second", "window_s": 5.0, "clip_seconds": 0}
MODALITIES = ("vggish_logmel", "visual_stats", "opensmile_functionals")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"valence", "arousal", "runlocal", "films", "is10"})
  c = two_timescale_films.get_config(",".join(sorted(words - {"is10"})))
  with c.unlocked():
    c.dataset.builder_kwargs.extractors = ml_collections.ConfigDict({
        "vggish_logmel": {}, "visual_stats": {},
        "opensmile_functionals": dict(OPENSMILE_IS10 if "is10" in words else OPENSMILE)})
    c.valence.modalities = MODALITIES
    c.arousal.modalities = MODALITIES
  return c
