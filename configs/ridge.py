r"""Per-second linear (ridge) baseline on the same features as seed 000's valence/arousal models.

  python main.py --config=configs/ridge.py --workdir=runs/ridge
"""

import ml_collections

from configs import common
from configs import two_timescale


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"valence", "arousal", "runlocal"})
  tts = two_timescale.get_config(arg)
  c = common.base_config("ridge")
  c.targets = tts.targets
  c.dataset = tts.dataset
  c.valence = ml_collections.ConfigDict(dict(modalities=tts.valence.modalities))
  c.arousal = ml_collections.ConfigDict(dict(modalities=tts.arousal.modalities))
  c.ridge = ml_collections.ConfigDict()
  c.ridge.alphas = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)   # chosen on validation MSE
  if "runlocal" in words:
    common.shrink_for_local_run(c)
  c.sweep.metric = "validation/valence/pcc"
  c.lock()
  return c
