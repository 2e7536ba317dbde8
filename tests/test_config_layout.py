"""The one config layout (configs/common.py, emojax/layout.py): every config in it, every default
with a source, the same numbers as before the layout, and old workdirs still loading."""

import importlib
import json
import pathlib

import ml_collections
import pytest

from configs import common
from emojax import errors, evaluate, fileio, layout

# Written by the configs as they were before the layout (one entry per "<config>:<arg>"), so the
# numbers of every config can be compared with what it trained before.
BEFORE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "configs_before_layout"
                     / "configs.json").read_text())
CASES = sorted(BEFORE)
BLOCKS = {"method", "seed", "targets", "dataset", "data", "optim", "checkpoint", "log", "sweep",
          "model", "inputs", "train", "eval", "per_target"}
TRAIN_KEYS = {"steps", "epochs", "eval_every_steps", "eval_every_epochs", "patience"}


def _config(case: str) -> ml_collections.ConfigDict:
  name, arg = case.split(":")
  return importlib.import_module(f"configs.{name}").get_config(arg or None)


def _leaves(d: dict, prefix: str = ""):
  for k, v in d.items():
    path = f"{prefix}{k}"
    if isinstance(v, dict) and v:
      yield from _leaves(v, path + ".")
    elif not isinstance(v, dict):
      yield path


@pytest.mark.parametrize("case", CASES)
def test_every_config_has_the_same_blocks(case):
  c = _config(case)
  assert set(c.keys()) == BLOCKS
  assert TRAIN_KEYS <= set(c.train.keys())
  assert set(c.per_target.keys()) <= {"valence", "arousal"}
  for t in c.targets:
    assert layout.streams(c, t), f"{case}: no input streams for {t}"


@pytest.mark.parametrize("case", CASES)
def test_every_default_has_a_source(case):
  c = _config(case)
  src = common.sources(c)
  missing = [p for p in _leaves(c.to_dict())
             if not any(p == k or p.startswith(k + ".") for k in src)]
  assert not missing, f"{case}: defaults without a source: {missing}"
  for k in src:  # no source for a key the config does not have
    node = c
    for part in k.split("."):
      assert part in node, f"{case}: source for {k}, which the config lacks"
      node = node[part]
  for k, s in src.items():
    assert s.startswith(("paper 0", "released models 0", "emojax's choice: ")) and len(s) > 20, (
        k, s)


@pytest.mark.parametrize("case", CASES)
def test_the_numbers_are_those_before_the_layout(case):
  """The old config mapped onto the layout is the new config: same defaults, same training."""
  now = fileio.to_jsonable(_config(case).to_dict())
  before = layout.upgrade(BEFORE[case])
  # Changed on purpose since: one latest checkpoint of the running phase (issue 21, bounded disk).
  assert before["checkpoint"].pop("keep") == 2 and now["checkpoint"].pop("keep") == 1
  # And `liris` reads the builder config with its frame streams (liris_accede/discrete_frames).
  if before["dataset"]["name"] == "liris_accede" and before["method"] == "video_convnets":
    assert before["dataset"]["config"] == "discrete"
    before["dataset"]["config"] = "discrete_frames"
  # And video_convnets' data.clip_seconds is predict's window: synthetic_clips' 6 s clips (issue 21;
  # per-clip training reads no clip length).
  if before["method"] == "video_convnets" and before["dataset"]["name"] == "synthetic_clips":
    assert before["data"]["clip_seconds"] == 10
    before["data"]["clip_seconds"] = 6
  # And fusion_lstm's default reads 256 x 256 images, its 227 crops did not fit the 40 px ones
  # (issue 19: every config builds its model on its default data).
  if (before["method"] == "fusion_lstm" and before["dataset"]["config"] == "default"
      and before["model"]["crop"] == 227):
    before["dataset"]["config"] = "images256"
  # And gru_moe's head runs on each training window's loss second only (issue 23: the paper's
  # sequence-to-one model); a run saved before keeps its former form, "all", through upgrade.
  if before["method"] == "gru_moe":
    assert "head_seconds" not in BEFORE[case]["model"]
    assert before["model"]["head_seconds"] == "all" and now["model"]["head_seconds"] == "last"
    before["model"]["head_seconds"] = "last"
  assert fileio.to_jsonable(before) == now


def test_evaluate_loads_an_old_workdirs_config(tmp_path):
  fileio.write_json(tmp_path / "config.json", BEFORE["two_timescale:valence,runlocal"])
  got = evaluate.load_run_config(tmp_path)
  assert got.per_target.valence.inputs.streams == ["audio", "scene", "expression"]
  assert got.per_target.valence.model.num_clips == 4
  assert got.train.steps == 20 and got.train.inter_clip_steps == 20
  assert layout.for_target(got, "arousal").eval.ema_beta == 0.98
  # Written before config.eval.plots: its evaluation draws the plots, as it did then.
  assert "plots" not in BEFORE["two_timescale:valence,runlocal"].get("eval", {})
  assert got.eval.plots is True and evaluate.draws_plots(got) is True


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_eval_plots_must_be_a_bool(value):
  c = ml_collections.ConfigDict(dict(eval=dict(plots=value)))
  with pytest.raises(errors.ConfigError, match=r"config\.eval\.plots=.*must be True or False"):
    evaluate.draws_plots(c)
  assert evaluate.draws_plots(ml_collections.ConfigDict(dict(eval=dict(plots=False)))) is False
  assert evaluate.draws_plots(ml_collections.ConfigDict(dict(eval={}))) is True   # no key: drawn


def test_per_target_keys_override_the_shared_ones():
  c = _config("two_timescale:")
  with c.unlocked():
    c.model.context = "none"   # a shared value: the per-target ones win
  assert layout.for_target(c, "valence").model.context == "lstm"
  assert layout.for_target(c, "valence").model.hidden == 128
  assert layout.streams(c) == ("audio", "scene", "expression", "action")


def test_a_per_target_block_outside_the_layout_is_refused():
  c = ml_collections.ConfigDict(dict(model={}, inputs=dict(streams=("a",)), train={}, eval={},
                                     per_target=dict(valence=dict(optim=dict(name="sgd")))))
  with pytest.raises(errors.ConfigError, match="per_target.valence.optim"):
    layout.for_target(c, "valence")


def test_a_default_written_without_a_source_is_refused():
  c = common.base_config("two_timescale")
  with pytest.raises(TypeError, match="model.hidden"):
    common.block(c, "model").hidden = 128
  with pytest.raises(TypeError, match="model.hidden"):
    common.block(c, "model").hidden = 128, "a number"


def test_the_video_networks_of_the_config_are_the_models():
  from configs import video_convnets as cfg  # pylint: disable=import-outside-toplevel
  from emojax.models import video_convnets  # pylint: disable=import-outside-toplevel
  assert cfg.ARCHS == video_convnets.ARCHS
