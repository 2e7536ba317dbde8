"""docs/methods.md is what `python -m tools.methods` writes from the configs and the papers'
tables, and it shows every default of every family with its source."""

import importlib

from configs import common
from tools import methods, paper_tables


def test_methods_md_is_up_to_date():
  assert methods.OUT.read_text() == methods.render(), (
      "docs/methods.md is stale: run python -m tools.methods")


def test_every_default_of_every_family_is_listed_with_its_source():
  text = methods.OUT.read_text()
  for f in methods.FAMILIES:
    if f.parent is not None:
      continue
    c = importlib.import_module(f"configs.{f.config}").get_config()
    src = common.sources(c)
    for key in methods._flat(c):  # pylint: disable=protected-access
      source = methods._source(src, key)  # pylint: disable=protected-access
      assert source, (f.config, key)
      assert f"| `{key}` | `{methods._cell(repr(methods._flat(c)[key]))}` | " \
             f"{methods._cell(source)} |" in text, (f.config, key)


def test_every_config_file_has_a_section_and_every_paper_a_table():
  text = methods.OUT.read_text()
  configs = {p.stem for p in methods.REPO.joinpath("configs").glob("*.py")} - {"__init__",
                                                                             "common"}
  assert configs == {f.config for f in methods.FAMILIES}
  for name in configs:
    assert f"### `configs/{name}.py`" in text
  for seed in methods.PAPERS:
    assert f"### {seed}:" in text
  for t in paper_tables.TABLES:
    assert all(len(values) == len(t.columns) for _, values in t.rows), t.name
    if t.command:
      assert t.command.startswith(("python main.py --config=configs/",
                                   "python main.py --mode=sweep --config=configs/",
                                   "python -m emojax.folds --config=configs/")), t.command
      cfg = t.command.split("--config=configs/")[1].split(".py")[0]
      assert cfg in configs, t.command
