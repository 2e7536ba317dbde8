r"""Writes docs/methods.md: every config default with its value and source, then each paper's
headline numbers and the emojax command that reproduces them.

  python -m tools.methods            # rewrites docs/methods.md
  python -m tools.methods --check    # exit 1 when docs/methods.md is not what this writes

Sources come from the configs themselves (`configs.common.block(...).key = value, source`); the
papers' tables from tools/paper_tables.py. tests/test_methods_doc.py fails when the file is stale.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "methods.md"


@dataclasses.dataclass(frozen=True)
class Family:
  config: str                 # module under configs/
  seed: str                   # the paper ("000".."004", or "" for emojax's own baselines)
  title: str
  args: tuple = ()            # config argument words, each shown as its changes
  parent: tuple | None = None  # (config, arg) the defaults are shown as changes from


FAMILIES = (
    Family("two_timescale", "000", "two-time-scale bi-LSTMs, residual-based progressive "
           "training", ("valence", "arousal", "runlocal")),
    Family("two_timescale_m1", "000", "baseline M1 (joint feature-level fusion)", (),
           ("two_timescale", "")),
    Family("two_timescale_m2", "000", "baseline M2 (decision-level fusion)", (),
           ("two_timescale", "")),
    Family("two_timescale_mediaeval2018", "000", "seed 000 on MediaEval 2018's official features",
           ("runlocal",), ("two_timescale", "")),
    Family("two_timescale_films", "000", "seed 000 on features emojax extracts from films",
           ("films", "runlocal", "backbones"), ("two_timescale", "")),
    Family("two_timescale_films_opensmile", "000", "seed 000 with openSMILE functionals",
           ("emobase2010",), ("two_timescale_films", "")),
    Family("ridge", "", "per-second ridge baseline (emojax's)", ("runlocal",)),
    Family("ridge_mediaeval2018", "", "ridge baseline on MediaEval 2018's official features",
           (), ("ridge", "")),
    Family("gru_moe", "001", "per-modality GRU + context gating + mixture of experts + "
           "Butterworth", ("mediaeval2018", "films", "films,own", "films,backbones", "runlocal")),
    Family("fusion_lstm", "002", "audio-visual modal fusion + LSTM, 3 classes per clip",
           ("valence", "visual", "audio", "early", "late", "mediaeval2015", "runlocal")),
    Family("attendaffectnet", "003", "AttendAffectNet (Feature / Temporal / Feature + Temporal)",
           ("temporal", "feature_temporal", "cognimuse", "mediaeval2016",
            "mediaeval2016,arousal", "audio", "video", "valence", "runlocal")),
    Family("video_convnets", "004", "end-to-end video convnets (C3D, R(2+1)D, TSN, ECO)",
           ("r2plus1d", "tsn", "eco_lite", "eco_full", "liris", "adam", "runlocal")),
)

PAPERS = {
    "000": "Two-time-scale bi-LSTMs with residual-based progressive training (arXiv 1909.01763)",
    "001": "GRU + mixture of experts, MediaEval 2018 Emotional Impact of Movies",
    "002": "Audio-visual modal fusion + LSTM for video emotion classification",
    "003": "AttendAffectNet (Thao, Herremans, Roig)",
    "004": "Deep neural networks for video-level emotion analysis",
}


def _config(name: str, arg: str):
  return importlib.import_module(f"configs.{name}").get_config(arg or None)


ORDER = ("method", "targets", "seed", "inputs", "model", "per_target", "train", "eval", "optim",
         "data", "dataset", "checkpoint", "log", "sweep")


def _flat(c) -> dict:
  """{dotted key: value} of the config's leaves, method blocks first (an empty block with a
  source, e.g. dataset.builder_kwargs, is one leaf shown as {}; other empty blocks are left out)."""
  from configs import common  # pylint: disable=import-outside-toplevel
  src = common.sources(c)
  out = {}

  def walk(d, prefix):
    keys = sorted(d, key=lambda k: (ORDER.index(k) if not prefix and k in ORDER else len(ORDER),
                                    k))
    for k in keys:
      v = d[k]
      if isinstance(v, dict) and v:
        walk(v, f"{prefix}{k}.")
      elif not isinstance(v, dict) or f"{prefix}{k}" in src:
        out[f"{prefix}{k}"] = v
  walk(c.to_dict(), "")
  return out


def _source(sources: dict, key: str) -> str:
  while key:
    if key in sources:
      return sources[key]
    key = key.rpartition(".")[0]
  return ""


def _value(v) -> str:
  return repr(v)


def _cell(s: str) -> str:
  return s.replace("|", "\\|").replace("\n", " ")


def _rows(c, keys=None) -> list[str]:
  from configs import common  # pylint: disable=import-outside-toplevel
  flat, src = _flat(c), common.sources(c)
  lines = ["| key | value | source |", "|---|---|---|"]
  for k in (keys if keys is not None else flat):
    lines.append(f"| `{k}` | `{_cell(_value(flat[k]))}` | {_cell(_source(src, k))} |")
  return lines


def _changed(base, other) -> list[str]:
  """Keys whose value or source differs (a value kept for another reason is shown with it)."""
  from configs import common  # pylint: disable=import-outside-toplevel
  a, b = _flat(base), _flat(other)
  sa, sb = common.sources(base), common.sources(other)
  return [k for k in b if k not in a or a[k] != b[k] or _source(sa, k) != _source(sb, k)]


def family_section(f: Family) -> list[str]:
  c = _config(f.config, "")
  seed = f"seed {f.seed}" if f.seed else "emojax's baseline"
  lines = [f"### `configs/{f.config}.py` ({seed}): {f.title}", "",
           f"    python main.py --config=configs/{f.config}.py --workdir=runs/{f.config}", ""]
  lines += [arguments_line(f.config), ""]
  if f.parent is None:
    lines += ["Every default:", ""] + _rows(c)
  else:
    parent = _config(*f.parent)
    keys = _changed(parent, c)
    lines += [f"The defaults of `configs/{f.parent[0]}.py`, with these changes:", ""]
    lines += _rows(c, keys) if keys else ["(none)"]
  for arg in f.args:
    other = _config(f.config, arg)
    keys = _changed(c, other)
    lines += ["", f"Argument `{arg}` (`--config=configs/{f.config}.py:{arg}`) changes:", ""]
    lines += _rows(other, keys) if keys else ["(nothing)"]
  return lines + [""]


def arguments_line(config: str) -> str:
  """The config's declared argument words (its OPTIONS): exclusive groups, switches, needs."""
  options = importlib.import_module(f"configs.{config}").OPTIONS
  groups = [" / ".join(f"`{w}`" for w in g) for g in options.groups]
  needs = [f"`{w}`" + (f" with {' / '.join(f'`{x}`' for x in when)}" if when else "")
           + f" needs {' / '.join(f'`{x}`' for x in any_of)}"
           for w, any_of, when, _ in options.needs]
  return (f"Arguments (`--config=configs/{config}.py:<words>`, comma separated, at most one word "
          f"of each group): {'; '.join(groups)}." + (f" {'; '.join(needs)}." if needs else ""))


def _num(v) -> str:
  return "-" if v is None else f"{v:g}"


def tables_section(seed: str) -> list[str]:
  from tools import paper_tables  # pylint: disable=import-outside-toplevel
  lines = []
  tables = [t for t in paper_tables.TABLES if t.seed == seed]
  if not tables:
    return ["No headline table of this paper is transcribed yet.", ""]
  for t in tables:
    lines += [f"#### {seed} {t.name}", "", f"On: {t.dataset}.", "",
              "| | " + " | ".join(t.columns) + " |", "|---|" + "---|" * len(t.columns)]
    lines += [f"| {_cell(label)} | " + " | ".join(_num(v) for v in values) + " |"
              for label, values in t.rows]
    lines.append("")
    if t.command:
      lines += ["emojax:", "", f"    {t.command}", ""]
    else:
      lines += ["emojax: no command yet.", ""]
    if t.note:
      lines += [f"Note: {t.note}.", ""]
  return lines


def render() -> str:
  lines = [
      "# Methods: every default, its source, and the papers' headline numbers",
      "",
      "Written by `python -m tools.methods` from the configs (configs/*.py, each default with its",
      "source) and tools/paper_tables.py; do not edit by hand (tests/test_methods_doc.py checks it",
      "is current). Sources: `paper <seed> <place>` (a place in the paper's text), `released",
      "models <seed>` (the authors' released models or code), `emojax's choice: <why>` (what the",
      "paper does not give). Config layout: docs/design.md, \"Configs\".",
      "",
      "## Defaults per family",
      "",
  ]
  for f in FAMILIES:
    lines += family_section(f)
  lines += ["## The papers' headline numbers and the commands that reproduce them", "",
            "Downloads, checks and builds of the real datasets: docs/benchmarks_data.md. The",
            "commands train on the real dataset with the config's defaults; `<...>` are yours.", ""]
  for seed, title in PAPERS.items():
    lines += [f"### {seed}: {title}", ""] + tables_section(seed)
  return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--check", action="store_true", help="exit 1 if docs/methods.md is stale")
  args = p.parse_args(argv)
  text = render()
  if args.check:
    ok = OUT.exists() and OUT.read_text() == text
    print(f"{OUT}: {'up to date' if ok else 'stale: run python -m tools.methods'}")
    return 0 if ok else 1
  OUT.write_text(text)
  print(f"wrote {OUT}")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, str(REPO))
  sys.exit(main())
