r"""Per-second ridge baseline on MediaEval 2018's official features (the streams and groups of
configs/two_timescale_mediaeval2018.py: valence on emobase2010 + fc6 + colour, arousal on
emobase2010 + fc6 + texture; features standardised with the training statistics).

  python main.py --config=configs/ridge_mediaeval2018.py --workdir=runs/ridge_me18 \
      --config.dataset.manual_dir=<folder holding the unzipped MEDIAEVAL18 archives>

Arguments: as configs/two_timescale_mediaeval2018.py (`valence` / `arousal`, `runlocal`).
"""

import ml_collections

from configs import common
from configs import ridge
from configs import two_timescale_mediaeval2018

# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("ridge_mediaeval2018",
                         *two_timescale_mediaeval2018.OPTIONS.groups)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  return ridge.from_two_timescale(two_timescale_mediaeval2018.get_config(arg), "runlocal" in words)
