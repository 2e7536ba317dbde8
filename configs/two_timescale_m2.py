r"""Seed 000 baseline M2: decision-level fusion (average of the stage-1 modality-specific models).

  python main.py --config=configs/two_timescale_m2.py --workdir=runs/m2
"""

import ml_collections

from configs import common
from configs import two_timescale
from configs.common import paper

# The config arguments: two_timescale's (tests/test_config_combinations.py).
OPTIONS = common.Options("two_timescale_m2", *two_timescale.OPTIONS.groups)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  common.parse_arg(arg, OPTIONS)
  c = two_timescale.get_config(arg)
  common.block(c, "train").fusion = "decision", paper(
      "000 Performance for Intra-clip Part", "M2: decision-level fusion, the average of the "
      "stage-1 models")
  return c
