"""A method's own config keys: `config.method_args`, filled from the method module's
`default_config()` and overridden on the command line with `--config.method_args.<key>=<value>`.

The configs are locked (a mistyped key stops the run), so keys a config file does not know cannot
be overridden by absl's config flags. main.py takes the `--config.method_args.*` flags out of the
command line before absl parses it (`split_args`) and applies them here once the method is known
(`apply`): each key must be one the method declares, and its value is parsed to the type of the
default. A method file given by a relative path is recorded by its absolute path (evaluate and
predict find it from any folder). docs/own_method.md walks through it.
"""

from __future__ import annotations

import ast
import os

import ml_collections

from emojax import contract, errors

PREFIX = "--config.method_args."


def split_args(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """(argv without the method_args flags, {key: raw value}) from a command line."""
  rest, raw = [], {}
  for a in argv:
    if a.startswith(PREFIX):
      key, eq, value = a[len(PREFIX):].partition("=")
      if not eq or not key:
        raise errors.ConfigError(f"{a}: write it as {PREFIX}<key>=<value>")
      raw[key] = value
    else:
      rest.append(a)
  return rest, raw


def _parse(key: str, raw: str, default):
  """A command-line string as the type of the method's default for that key."""
  where = f"{PREFIX}{key}={raw}"
  if isinstance(default, bool):
    if raw.lower() in ("true", "1", "yes"):
      return True
    if raw.lower() in ("false", "0", "no"):
      return False
    raise errors.ConfigError(f"{where}: expected true or false")
  if isinstance(default, str) or default is None:
    return raw
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    raise errors.ConfigError(f"{where}: expected a {type(default).__name__} like "
                             f"{default!r}") from None
  if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if isinstance(default, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(default)(value)
  if type(value) is not type(default):
    raise errors.ConfigError(f"{where}: expected a {type(default).__name__} like {default!r}")
  return value


def method_defaults(method) -> dict:
  """The method module's `default_config()` as a plain dict ({} when it declares none)."""
  fn = getattr(method, "default_config", None)
  if fn is None:
    return {}
  out = fn()
  if isinstance(out, ml_collections.ConfigDict):
    out = out.to_dict()
  if not isinstance(out, dict):
    raise errors.ConfigError(f"method {method.__name__}: default_config() must return a dict or a "
                             f"ConfigDict, not {type(out).__name__}")
  return out


def apply(config: ml_collections.ConfigDict, raw: dict[str, str] | None = None
          ) -> ml_collections.ConfigDict:
  """The config with `method_args` = the method's defaults, updated by what the config already
  holds and by the command line's `raw` overrides; a method file's path made absolute."""
  raw = dict(raw or {})
  if contract.is_method_file(config.method):
    path = os.path.abspath(os.path.expanduser(config.method))
    if path != config.method:
      with config.unlocked():
        config.method = path
  method = contract.get_method(config)
  defaults = method_defaults(method)
  given = config.get("method_args")
  given = given.to_dict() if isinstance(given, ml_collections.ConfigDict) else dict(given or {})
  if not defaults and not given and not raw:
    return config
  known = ", ".join(sorted(defaults)) or "none: give the method a default_config() returning them"
  for key in list(given) + list(raw):
    if key.split(".")[0] not in defaults:
      raise errors.ConfigError(
          f"config.method_args.{key}: method {config.method} has no such key (its keys: {known})")
  merged = {**defaults, **given}
  for key, value in raw.items():
    head, _, rest = key.partition(".")
    if rest:
      raise errors.ConfigError(f"{PREFIX}{key}: nested keys are not supported; use the flat keys "
                               f"of default_config() ({known})")
    merged[head] = _parse(key, value, defaults[head])
  with config.unlocked():
    config.method_args = ml_collections.ConfigDict(merged)
  config.lock()
  return config
