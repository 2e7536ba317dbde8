"""The data doctor: inspects a hand download before a long build.

`run_doctor('mediaeval2018', manual_dir)` imports `emojax.datasets.mediaeval2018` and calls its
`doctor(manual_dir, config) -> list[Problem]`; every dataset module with a builder exposes one.
It reports which files are present or missing, shapes, NaNs, label ranges, seconds missing
between labels and features, films in more than one split, videos that cannot be read, each with
its fix. Each doctor reads the files with its builder's own parsers (every file: MediaEval 2018's
1.6 million feature files in worker processes), so it names every problem the build would meet
with the same file:line, and a download without errors builds (tests/test_doctor_matches_build.py).
`python main.py --mode=doctor --dataset=<name> --manual_dir=<dir>` prints `format_report`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from emojax.datasets.common import Problem
from emojax.errors import ConfigError

_HEADINGS = {"error": "Errors (the build fails until they are fixed)",
             "warning": "Warnings (the builder repairs, truncates or leaves out, and says so)",
             "info": "Notes"}


def run_doctor(dataset: str, manual_dir: str | os.PathLike[str],
               config: str | None = None) -> list[Problem]:
  """Runs `emojax.datasets.<dataset>.doctor(manual_dir, config)`.

  `dataset` may be 'name/config' (as TFDS names builders) when `config` is not given.

  Raises:
    ConfigError: no such dataset module, or it has no doctor.
  """
  if "/" in dataset and config is None:
    dataset, config = dataset.split("/", 1)
  try:
    module = importlib.import_module(f"emojax.datasets.{dataset}")
  except ModuleNotFoundError as e:
    if e.name != f"emojax.datasets.{dataset}":
      raise
    raise ConfigError(f"--dataset={dataset}: no module emojax/datasets/{dataset}.py; use the "
                      "TFDS builder name, e.g. mediaeval2018, cognimuse, liris_accede.") from None
  check = getattr(module, "doctor", None)
  if check is None:
    raise ConfigError(f"--dataset={dataset}: emojax.datasets.{dataset} has no doctor(manual_dir, "
                      "config) function.")
  return list(check(manual_dir, config or None))


def format_report(problems: Sequence[Problem]) -> str:
  """A readable report: a count line, then the problems by severity, each with its fix."""
  counts = {s: sum(p.severity == s for p in problems) for s in _HEADINGS}
  head = (f"Data doctor: {counts['error']} error(s), {counts['warning']} warning(s), "
          f"{counts['info']} note(s).")
  if not problems:
    return head + "\nNo problems found: the download is ready to build."
  lines = [head]
  for severity, heading in _HEADINGS.items():
    group = [p for p in problems if p.severity == severity]
    if not group:
      continue
    lines += ["", f"{heading}:"]
    for i, p in enumerate(group, start=1):
      lines += [f"  {i}. {p.where}", f"     {p.message}", f"     fix: {p.fix}"]
  if counts["error"]:
    lines += ["", "Fix the errors above, then run the doctor again before building."]
  return "\n".join(lines)
