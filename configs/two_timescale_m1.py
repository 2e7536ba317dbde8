r"""Seed 000 baseline M1: joint feature-level fusion (every encoder and FC trained at once).

  python main.py --config=configs/two_timescale_m1.py --workdir=runs/m1
"""

import ml_collections

from configs import common
from configs import two_timescale
from configs.common import paper

# The config arguments: two_timescale's (tests/test_config_combinations.py).
OPTIONS = common.Options("two_timescale_m1", *two_timescale.OPTIONS.groups)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  common.parse_arg(arg, OPTIONS)
  c = two_timescale.get_config(arg)
  common.block(c, "train").fusion = "joint", paper("000 Performance for Intra-clip Part",
                                                     "M1: feature-level fusion, joint training")
  return c
