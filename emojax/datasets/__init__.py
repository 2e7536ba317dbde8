"""TFDS builders. A dataset named `x` is the module `emojax.datasets.x` (no registry to edit)."""

from __future__ import annotations

import importlib

import tensorflow_datasets as tfds

from emojax import errors, paths


def get_builder(name: str, config: str | None = None, data_dir: str | None = None,
                **builder_kwargs) -> tfds.core.DatasetBuilder:
  """Imports `emojax.datasets.<name>` and returns its TFDS builder writing array_record files."""
  try:
    importlib.import_module(f"emojax.datasets.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"emojax.datasets.{name}":
      raise
    if name in tfds.list_builders(with_community_datasets=False):
      pass  # a builder the user registered with TFDS in their own code
    else:
      raise errors.ConfigError(
        f"unknown dataset {name!r}: there is no module emojax/datasets/{name}.py; set "
        "config.dataset.name to one of the modules in emojax/datasets/ (or import your own "
        "TFDS builder before training)") from e
  kwargs = dict(data_dir=str(paths.data_dir(data_dir)), file_format="array_record")
  if config:
    kwargs["config"] = config
  kwargs.update(builder_kwargs)
  return tfds.builder(name, **kwargs)


def prepare(builder: tfds.core.DatasetBuilder, manual_dir: str | None = None) -> None:
  """Builds the dataset if it is not in the data dir yet (deterministic, cached)."""
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
  try:
    builder.download_and_prepare(download_config=download_config)
  except AssertionError as e:  # TFDS's multi-line "Manual directory ... does not exist or is empty"
    if "Manual directory" not in str(e):
      raise
    raise errors.DataError(missing_download_message(builder, manual_dir)) from None


def missing_download_message(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> str:
  """One line: the dataset, the folder where its manual download was looked for, the commands."""
  name = builder.name
  config = builder.builder_config.name if builder.builder_config else ""
  folder = manual_dir or f"{builder.data_dir_root}/downloads/manual"
  flag = f" --dataset_config={config}" if config else ""
  return (f"dataset {name}{'/' + config if config else ''} is not built in {builder.data_dir_root} "
          f"and its manual download folder {folder} does not exist or is empty; put the download "
          f"there (emojax/datasets/{name}.py says what it holds), check it with `python main.py "
          f"--mode=doctor --dataset={name}{flag} --manual_dir=DIR` and build it with `python "
          f"main.py --mode=build --dataset={name}{flag} --manual_dir=DIR` (or set "
          "config.dataset.manual_dir=DIR)")
