r"""Per-second linear (ridge) baseline on the same features as seed 000's valence/arousal models.

  python main.py --config=configs/ridge.py --workdir=runs/ridge
"""

import ml_collections

from configs import common
from configs import two_timescale
from configs.common import ours

# The config arguments (tests/test_config_combinations.py builds every combination).
OPTIONS = common.Options("ridge", two_timescale.TARGETS, ("runlocal",))


def from_two_timescale(tts: ml_collections.ConfigDict,
                       runlocal: bool) -> ml_collections.ConfigDict:
  """The ridge baseline on the data, targets and streams of a seed-000 config."""
  c = common.base_config("ridge")
  if runlocal:
    common.shrink_for_local_run(c)
  same = ours("the data of the seed-000 config this baseline sits beside")
  common.block(c, "").targets = tts.targets, same
  with c.unlocked():
    c.dataset = ml_collections.ConfigDict(tts.dataset.to_dict())
    common.copy_sources(tts, c, ("dataset",))
    common.block(c, "inputs").streams = (), ours("per target: per_target.<target>.inputs.streams")
    for t in two_timescale.TARGETS:
      common.block(c, f"per_target.{t}.inputs").streams = tts.per_target[t].inputs.streams, same
  common.block(c, "model").alphas = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5), ours(
      "ridge strengths, the best chosen on validation MSE")
  common.block(c, "sweep").metric = "validation/valence/pcc", ours("validation PCC ranks trials")
  c.lock()
  return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  words = common.parse_arg(arg, OPTIONS)
  return from_two_timescale(two_timescale.get_config(arg), "runlocal" in words)
