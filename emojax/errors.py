"""Errors that tell the user which file or key is wrong and how to fix it."""


class EmojaxError(Exception):
  """Base class of emojax's user-facing errors."""


class ConfigError(EmojaxError, ValueError):
  """A config key or value is unknown or invalid."""


class DataError(EmojaxError, ValueError):
  """Input data (a file, a row, a feature stream) is malformed."""


class ManifestMismatchError(EmojaxError, ValueError):
  """The features a checkpoint was trained on differ from the ones offered."""


class NonFiniteLossError(EmojaxError, FloatingPointError):
  """Training produced a NaN or Inf loss."""


class WeightsError(EmojaxError, ValueError):
  """A weights file (state dict, converter input, converted weights) is missing, damaged or foreign."""
