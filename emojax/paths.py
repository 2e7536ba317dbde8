"""Where datasets live: one resolution rule for every mode."""

import os
import pathlib

ENV_VAR = "EMOJAX_DATA_DIR"


def data_dir(configured: str | None = None) -> pathlib.Path:
  """Returns the TFDS data dir: the config's value, else $EMOJAX_DATA_DIR, else ~/emojax_data."""
  path = configured or os.environ.get(ENV_VAR) or os.path.join("~", "emojax_data")
  return pathlib.Path(path).expanduser()
