r"""Seed 000 baseline M2: decision-level fusion (average of the stage-1 modality-specific models).

  python main.py --config=configs/two_timescale_m2.py --workdir=runs/m2
"""

import ml_collections

from configs import two_timescale


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = two_timescale.get_config(arg)
  with c.unlocked():
    c.train.fusion = "decision"
  return c
