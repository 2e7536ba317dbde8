"""The one config layout of every method, and the source of every default.

Layout (docs/design.md "Configs"): harness blocks `dataset`, `data`, `optim`, `checkpoint`, `log`,
`sweep`; method blocks with the same key names in every family:
  model       the network's numbers
  inputs      streams (the dataset streams read, in order), unit ("second" / "clip", where the
              method reads either)
  train       steps / epochs (the duration: one of them > 0), eval_every_steps /
              eval_every_epochs, patience (validations without improvement; 0 = off), loss, and
              the method's own training switches
  eval        post-processing of the predictions and the ablation rows evaluated after training
  per_target  per-target differences: per_target.<valence|arousal>.<block>.<key> overrides
              <block>.<key> for that target (emojax.layout.for_target reads the merged view)

Every default is written with its source, through `block(c, "model").hidden = 128, ours("...")`:
`paper("003 Sec. IV-B", "...")` (a place in the paper), `released("003", "...")` (the authors'
released models/code), or `ours("...")` (emojax's choice and why). `sources(c)` returns them;
`python -m tools.methods` writes them to docs/methods.md, and tests/test_config_layout.py fails
on a default without one.
"""

from __future__ import annotations

import ml_collections

from emojax import errors

_SOURCES: dict[int, tuple[ml_collections.ConfigDict, dict[str, str]]] = {}


def paper(place: str, what: str = "") -> str:
  """The source of a value the paper gives: its place ("000 Table 3", "003 Sec. IV-B")."""
  return f"paper {place}" + (f": {what}" if what else "")


def released(place: str, what: str = "") -> str:
  """A value read from the authors' released models or code, not from the paper's text."""
  return f"released models {place}" + (f": {what}" if what else "")


def ours(why: str) -> str:
  """A value the papers do not give: emojax's choice, and why."""
  return f"emojax's choice: {why}"


def sources(c: ml_collections.ConfigDict) -> dict[str, str]:
  """{dotted key: source} of the defaults written through `block`."""
  return dict(_SOURCES.get(id(c), (c, {}))[1])


def _table(c: ml_collections.ConfigDict) -> dict[str, str]:
  if id(c) not in _SOURCES:
    _SOURCES[id(c)] = (c, {})   # the config is kept alive with its table (ids are not reused)
  return _SOURCES[id(c)][1]


def copy_sources(src: ml_collections.ConfigDict, dst: ml_collections.ConfigDict,
                 prefixes: tuple[str, ...], rename: dict[str, str] | None = None) -> None:
  """The sources of `src`'s keys under `prefixes` for the same (or `rename`d) keys of `dst`."""
  table = _table(dst)
  for key, source in sources(src).items():
    if any(key == p or key.startswith(p + ".") for p in prefixes):
      for old, new in (rename or {}).items():
        if key == old or key.startswith(old + "."):
          key = new + key[len(old):]
      table[key] = source


class Block:
  """Writes defaults with their sources: `b.hidden = 128, ours("why")`."""

  def __init__(self, root: ml_collections.ConfigDict, path: str):
    node = root
    for part in path.split(".") if path else ():
      if part not in node:
        with node.unlocked() if node.is_locked else _nothing():
          node[part] = ml_collections.ConfigDict()
      node = node[part]
    object.__setattr__(self, "_root", root)
    object.__setattr__(self, "_path", path)
    object.__setattr__(self, "_node", node)

  def __setattr__(self, key: str, pair) -> None:
    if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)
            and pair[1].startswith(("paper ", "released models ", "emojax's choice: "))):
      raise TypeError(f"{self._path}.{key}: write `= value, paper(...) / released(...) / "
                      f"ours(...)`, got {pair!r}")
    value, source = pair
    self._node[key] = value
    _table(self._root)[f"{self._path}.{key}" if self._path else key] = source

  def __getattr__(self, key: str):
    return self._node[key]


class _nothing:  # pylint: disable=invalid-name
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False


def block(c: ml_collections.ConfigDict, path: str) -> Block:
  """The block at dotted `path` of `c` ("" = the top level; created if missing), for writing
  sourced defaults."""
  return Block(c, path)


def base_config(method: str) -> ml_collections.ConfigDict:
  """The harness blocks with their defaults, and empty method blocks (model, inputs, train, eval,
  per_target) that each method's config fills."""
  c = ml_collections.ConfigDict()
  top = block(c, "")
  top.method = method, ours("the family this config trains (module under emojax/models, or a "
                            "dotted module path of your own)")
  top.seed = 0, ours("seed 0; sweeps vary it (config.sweep.seeds)")
  top.targets = ("valence", "arousal"), ours("both dimensions unless a config argument names one")

  d = block(c, "dataset")
  d.name = "synthetic_benchmark", ours("the embedded synthetic benchmark runs out of the box")
  d.config = "default", ours("the builder config of the benchmark ('' = the builder's default)")
  d.data_dir = "", ours("'' = $EMOJAX_DATA_DIR or ~/emojax_data")
  d.manual_dir = "", ours("the folder of a benchmark downloaded by hand ('' = none)")
  d.import_module = "", ours("a module of yours that registers your own TFDS builder")
  d.builder_kwargs = ml_collections.ConfigDict(), ours("none")
  # Modalities made of several dataset streams concatenated along the feature axis:
  # ((name, (stream, ...)), ...), e.g. (("colour", ("acc", "cl", "sc")),). Empty = none.
  d.concat = (), ours("no concatenated streams")
  d.splits = ml_collections.ConfigDict(dict(train="train", validation="validation", test="test")
                                       ), ours("the builder's own split names")

  d = block(c, "data")
  d.clip_seconds = 10, paper("000 Results", "films cut into non-overlapping 10 s clips")
  d.batch_size = 64, ours("the papers give no batch size for seed 000's networks")
  d.eval_batch_size = 64, ours("as the training batch")
  d.train_stride = 1, ours("a training window starts at every clip")
  d.standardize = True, ours("features standardised with the training split's mean/std")
  # Datasets without a validation split (config.dataset.splits.validation = ""): this seeded share
  # of the training films selects the best steps instead (recorded in <workdir>/holdout.json).
  d.holdout_fraction = 0.15, ours("share of training films held out when there is no "
                                  "validation split")
  # A seeded share of the training films trained on (recorded in <workdir>/fraction.json), e.g.
  # an ensemble member on 70% of the data (train.ensemble_members = ("data.fraction=0.7", ...)).
  d.fraction = 1.0, ours("every training film; < 1: a seeded share of them (by film)")

  # The optimizer of every phase (a method may override fields per phase).
  o = block(c, "optim")
  o.name = "adam", ours("Adam; a method's config names the paper's optimizer where it gives one")
  o.learning_rate = 1e-3, ours("Adam's usual rate")
  o.momentum = 0.9, ours("sgd only")
  o.nesterov = False, ours("sgd only")
  o.weight_decay = 0.0, ours("decoupled (adamw; sgd adds it to the update); none")
  o.l2 = 0.0, ours("coupled L2 in the loss; none")
  o.grad_clip = 0.0, ours("global-norm clipping off (0)")
  o.schedule = "constant", ours("constant | step (x decay_factor every decay_every steps / "
                                "decay_every_epochs epochs) | cosine (to 0 over the phase)")
  o.decay_every = 0, ours("no step decay")
  o.decay_every_epochs = 0.0, ours("no step decay")
  o.decay_factor = 0.1, ours("x0.1 per decay when schedule='step'")

  for name in ("model", "inputs", "eval", "per_target"):
    block(c, name)
  block(c, "eval").plots = True, ours(
      "the evaluation draws its plots (plots/*.png beside the CSVs); False: metrics, CSVs and "
      "ablation.md only, e.g. in sweeps whose plots nobody reads")
  i = block(c, "inputs")
  i.streams = (), ours("set by each method's config")
  t = block(c, "train")
  t.steps = 0, ours("the duration is in steps or in epochs: one of them > 0")
  t.epochs = 0.0, ours("the duration is in steps or in epochs: one of them > 0")
  t.eval_every_steps = 0, ours("validation interval in steps or in epochs")
  t.eval_every_epochs = 0.0, ours("validation interval in steps or in epochs")
  t.patience = 0, ours("no early stopping: the best validation step is kept")
  t.ensemble_members = (), ours(
      "one run; a list of member config overrides ('model.dropout=0.0', 'seed=1; optim.l2=0.0') "
      "trains each member in <workdir>/members/<i>/ and evaluates the mean of their predictions")

  k = block(c, "checkpoint")
  k.keep = 1, ours("latest checkpoints kept by the running phase, for resuming (2+ also lets a "
                   "resume fall back past a damaged newest step)")
  k.finished = "last", ours("what finished phases keep: 'last' (the newest one's best, all resume "
                            "needs), 'best' (every phase's best), 'all' (no pruning)")
  k.every_steps = 50, ours("checkpoint interval")
  k.best_metric = "pcc", ours("validation metric selecting each phase's best checkpoint")
  k.best_mode = "max", ours("higher PCC is better")

  block(c, "log").every_steps = 25, ours("log interval")

  # Sweeps (emojax/sweep.py): tuples of (dotted field, values) / random specs; empty = no sweep.
  s = block(c, "sweep")
  s.grid = (), ours("no grid")
  s.random = (), ours("no random axes")
  s.num_random = 0, ours("no random draws")
  s.seeds = (0,), ours("one seed")
  s.metric = "validation/valence/pcc", ours("validation PCC ranks the trials")
  s.mode = "max", ours("higher PCC is better")
  s.columns = (), ours("results.md's columns beside the metric (() = a few of its split)")
  return c


class Options:
  """A config's argument words (`get_config("valence,runlocal")`), declared once per config as
  `OPTIONS`: groups of mutually exclusive words (a group of one word is a switch), and the words
  that need another (`needs`: (word, any of these words, only when any of these is also given
  (() = always), why)). `parse` refuses the rest with one line (ConfigError);
  tests/test_config_combinations.py builds every combination `combinations()` lists and checks
  the refusals.
  """

  def __init__(self, config: str, *groups: tuple[str, ...],
               needs: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = ()):
    self.config = config
    self.groups = tuple(tuple(g) for g in groups)
    self.needs = tuple((w, tuple(any_of), tuple(when), why) for w, any_of, when, why in needs)
    words = [w for g in self.groups for w in g]
    if len(set(words)) != len(words):
      raise ValueError(f"configs/{config}.py OPTIONS: a word is in two groups: {words}")
    for w, any_of, when, _ in self.needs:
      if not {w, *any_of, *when} <= set(words):
        raise ValueError(f"configs/{config}.py OPTIONS: needs names an undeclared word")

  @property
  def words(self) -> tuple[str, ...]:
    return tuple(w for g in self.groups for w in g)

  def refusal(self, words: set[str]) -> str | None:
    """Why the config refuses these words (None: it accepts them)."""
    unknown = set(words) - set(self.words)
    if unknown:
      return (f"unknown config argument(s) {sorted(unknown)}; allowed: {sorted(self.words)}")
    for g in self.groups:
      taken = [w for w in g if w in words]
      if len(taken) > 1:
        return f"config arguments {taken} exclude each other; give at most one of {list(g)}"
    for w, any_of, when, why in self.needs:
      if w in words and (not when or set(when) & set(words)) and not set(any_of) & set(words):
        with_ = f" with {'/'.join(sorted(set(when) & set(words)))}" if when else ""
        return (f"config argument {w!r}{with_} needs one of {list(any_of)} ({why}); add it or "
                f"drop {w!r}")
    return None

  def parse(self, arg: str | None) -> set[str]:
    """`"valence,runlocal"` -> {"valence", "runlocal"}; ConfigError (one line) when refused."""
    words = {w.strip() for w in (arg or "").split(",") if w.strip()}
    why = self.refusal(words)
    if why:
      raise errors.ConfigError(f"configs/{self.config}.py:{arg}: {why}")
    return words

  def combinations(self) -> list[str]:
    """Every argument string taking at most one word of each group (refused ones included)."""
    combos = [""]
    for g in self.groups:
      combos = [",".join(filter(None, (c, w))) for c in combos for w in ("", *g)]
    return combos


def parse_arg(arg: str | None, options: Options) -> set[str]:
  """`get_config("valence,runlocal")` -> {"valence", "runlocal"}; refused words fail loudly."""
  if not isinstance(options, Options):   # a set of words: tests/test_config_combinations.py
    raise TypeError("declare the config's argument words as OPTIONS = common.Options(...) (so "
                    "that tests/test_config_combinations.py builds them) and pass OPTIONS")
  return options.parse(arg)


def shrink_for_local_run(c: ml_collections.ConfigDict) -> None:
  """runlocal: the small synthetic benchmark and short phases, for a laptop / CI smoke run."""
  why = ours("runlocal: the small synthetic benchmark and short phases on a CPU")
  block(c, "dataset").config = "small", why
  block(c, "data").batch_size = 16, why
  block(c, "data").eval_batch_size = 16, why
  block(c, "checkpoint").every_steps = 10, why
  block(c, "log").every_steps = 10, why
