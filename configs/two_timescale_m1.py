r"""Seed 000 baseline M1: joint feature-level fusion (every encoder and FC trained at once).

  python main.py --config=configs/two_timescale_m1.py --workdir=runs/m1
"""

import ml_collections

from configs import two_timescale


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = two_timescale.get_config(arg)
  with c.unlocked():
    c.train.fusion = "joint"
  return c
