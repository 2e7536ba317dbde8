r"""Per-second linear (ridge) baseline on the same features as seed 000's valence/arousal models.

  python main.py --config=configs/ridge.py --workdir=runs/ridge
"""

import ml_collections

from configs import common
from configs import two_timescale


def from_two_timescale(tts: ml_collections.ConfigDict, runlocal: bool) -> ml_collections.ConfigDict:
  """The ridge baseline on the data, targets and modalities of a seed-000 config."""
  c = common.base_config("ridge")
  if runlocal:
    common.shrink_for_local_run(c)
  c.targets = tts.targets
  c.dataset = ml_collections.ConfigDict(tts.dataset.to_dict())
  c.valence = ml_collections.ConfigDict(dict(modalities=tts.valence.modalities))
  c.arousal = ml_collections.ConfigDict(dict(modalities=tts.arousal.modalities))
  c.ridge = ml_collections.ConfigDict()
  c.ridge.alphas = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)   # chosen on validation MSE
  c.sweep.metric = "validation/valence/pcc"
  c.lock()
  return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, {"valence", "arousal", "runlocal"})
  return from_two_timescale(two_timescale.get_config(arg), "runlocal" in words)
