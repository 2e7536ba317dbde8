"""Shared test fixtures and paths."""

import atexit
import json
import os
import pathlib
import shutil
import tempfile

import pytest

# Compiled XLA programs and numba functions are cached across test runs (CI keeps ~/.cache).
_CACHE = pathlib.Path(os.environ.get("EMOJAX_CACHE_DIR", pathlib.Path.home() / ".cache" / "emojax"))
os.environ.setdefault("NUMBA_CACHE_DIR", str(_CACHE / "numba"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE / "jax"))
# Every program that takes 0.02 s or more to compile is kept (JAX's default keeps those of 1 s or
# more): the tests' many small programs (each model's eager initialisers, the harness's pack /
# unpack and prediction programs) cost more to compile than to read back. A warm cache at 0.02 s
# instead of 0.5 s: test_gru_moe_e2e.py + test_checkpoint_prune.py 24.3 / 22.9 -> 20.4 / 19.1 s
# of user CPU (2 alternated runs each, load ~11); the cache holds ~150 entries for them, not ~25.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.02")
# The tests' networks are tiny: XLA's compile time (LLVM's optimisation of every fused kernel, and
# of each random initialiser's threefry program) dominates their run time, 3-5x their execution.
# Tests compile without LLVM's backend optimisation (processes started by tests inherit it; a test
# that sets XLA_FLAGS for a subprocess replaces it there). Numerics are unchanged: XLA's HLO passes
# still run and fast-math is off either way. Set EMOJAX_TEST_XLA_OPT=1 to test the optimised build.
if os.environ.get("EMOJAX_TEST_XLA_OPT", "0") != "1" and (
    "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", "")):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_backend_optimization_level=0").strip()

REPO = pathlib.Path(__file__).resolve().parents[1]
# Small real fixtures (a film excerpt, the released AttendAffectNet models, the face model's
# reference outputs) ship in the repository with their licences: tests/fixtures/*/README.md.
FIXTURES = REPO / "tests" / "fixtures"
MEDIA_FIXTURE = FIXTURES / "media" / "bigbuckbunny.mp4"


@pytest.fixture
def fixtures_dir() -> pathlib.Path:
  return FIXTURES


_TOY_DATA: list[pathlib.Path] = []


def toy_data_dir() -> pathlib.Path:
  """One data dir for the whole session: the toy dataset is built once and read by every test."""
  if not _TOY_DATA:
    d = pathlib.Path(tempfile.mkdtemp(prefix="emojax_toy_data_"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    _TOY_DATA.append(d)
  return _TOY_DATA[0]


def reference_config():
  """The reference run's config: toy_config(steps=4), arousal from the audio stream only (3 phases
  of 4 steps: stage 1, progressive, fine-tuning)."""
  config = toy_config(steps=4)
  with config.unlocked():
    config.per_target.arousal.inputs.streams = ("audio",)
  return config


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
  """`reference_config()` trained and evaluated once per session, in-process, on one device.

  The runs that must end where it ends compare against it: 8 devices (test_train), 2 processes
  killed and resumed (test_multihost), SIGKILL and resume (test_train), a crash after pruning and
  resume (test_checkpoint_prune); test_harness_checks evaluates a copy of it from the command line.
  Returns (config, workdir, stdout of the run). Read-only: copy it before writing into it.
  """
  import contextlib  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  from emojax import train  # pylint: disable=import-outside-toplevel
  config = reference_config()
  workdir = tmp_path_factory.mktemp("reference") / "run"
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    train.train_and_evaluate(config, workdir)
  return config, workdir, out.getvalue()


def films_config(data_dir, extractors=("visual_stats", "audio_functionals")):
  """two_timescale_films (arousal, runlocal) on 7 small synthetic films (12 s, 96x72 at 8 fps),
  its features extracted by `extractors`, trained 4 steps on 4 s clips."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  from configs import two_timescale_films  # pylint: disable=import-outside-toplevel
  c = two_timescale_films.get_config("arousal,runlocal")
  with c.unlocked():
    c.dataset.data_dir = str(data_dir)
    c.dataset.builder_kwargs = ml_collections.ConfigDict(dict(
        num_films=5, duration_s=12, fps=8, width=96, height=72, sample_rate=16000,
        num_validation=1, num_test=1, extractors=extractors, num_workers=0))
    c.per_target.arousal.inputs.streams = tuple(extractors)
    c.data.clip_seconds = 4
    c.train.steps = 4
    c.train.eval_every_steps = 2
    c.checkpoint.every_steps = 2
    c.eval.plots = False   # no test reads the films run's evaluation plots
  return c


@pytest.fixture(scope="session")
def films_run(tmp_path_factory):
  """`films_config()` trained and evaluated once per session: (config, root); the run is
  root/"run", its dataset root/"data". test_predict.py and test_api.py read it. Read-only."""
  from emojax import train  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("films")
  config = films_config(root / "data")
  train.train_and_evaluate(config, root / "run")
  return config, root


def toy_config(workdir_data: pathlib.Path | None = None, *, targets=("arousal",), steps: int = 6):
  """A shrunken seed-000 config on the toy dataset of tests/toy_dataset.py.

  `workdir_data`: where the dataset is built; None = the session's one copy (`toy_data_dir`).
  """
  if workdir_data is None:
    workdir_data = toy_data_dir()
  import toy_dataset  # pylint: disable=import-outside-toplevel,unused-import  (registers the builder)
  from configs import two_timescale  # pylint: disable=import-outside-toplevel
  c = two_timescale.get_config("runlocal")
  with c.unlocked():
    c.targets = tuple(targets)
    c.dataset.name = "emojax_toy_films"
    c.dataset.import_module = "toy_dataset"
    c.dataset.config = ""
    c.dataset.data_dir = str(workdir_data)
    c.data.clip_seconds = 5
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.per_target.valence.inputs.streams = ("audio", "expression")
    c.per_target.valence.model.num_clips = 3
    c.per_target.arousal.inputs.streams = ("audio", "action")
    c.train.steps = steps
    c.train.inter_clip_steps = steps
    c.train.eval_every_steps = 3
    c.checkpoint.every_steps = 2
    c.log.every_steps = 3
    c.eval.plots = False   # read by no test of this config but test_train's contract run, which
    # turns them on (as test_multihost's two-process run and test_harness_checks' old workdir)
  return c


# pytest-xdist (`-n 2 --dist loadgroup`, pyproject.toml): tests are sent to the two workers one by
# one, except the tests that share an expensive fixture, which one worker runs as a group: a
# session fixture's readers (`reference_run`, `films_run`) so it is built once, and a module's
# tests that read a module- or class-scoped fixture so it is built once (pytest tears a module
# fixture down as soon as its worker runs a test from another module). xdist's own loadgroup
# (`xdist_group` marks) renames each item's nodeid, which pytest 9 ignores: each worker writes the
# groups of its collection to a file, and the controller's scheduler reads them.
_SHARED_SESSION_FIXTURES = ("reference_run", "films_run")


def _group(item) -> str | None:
  names = item.fixturenames
  group = next((f for f in _SHARED_SESSION_FIXTURES if f in names), None)
  if group is None:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else ()
    if any(d.scope in ("module", "class", "package") for ds in defs for d in ds):
      group = item.nodeid.split("::")[0]
  return group


def pytest_configure(config):
  if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
    groups = pathlib.Path(tempfile.mkdtemp(prefix="emojax_xdist_groups_"))
    atexit.register(shutil.rmtree, groups, ignore_errors=True)
    config.stash[_GROUPS_DIR] = groups


_GROUPS_DIR = pytest.StashKey[pathlib.Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
  node.workerinput["emojax_groups_dir"] = str(node.config.stash[_GROUPS_DIR])


def pytest_collection_modifyitems(config, items):
  groups_dir = getattr(config, "workerinput", {}).get("emojax_groups_dir")
  if groups_dir:
    groups = {item.nodeid: g for item in items if (g := _group(item))}
    path = pathlib.Path(groups_dir) / f"{config.workerinput['workerid']}.json"
    path.write_text(json.dumps(groups))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  if config.getvalue("dist") != "loadgroup" or _GROUPS_DIR not in config.stash:
    return None
  from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel
  groups_dir = config.stash[_GROUPS_DIR]

  class FixtureGroups(LoadScopeScheduling):
    """xdist's scope scheduling with this conftest's groups as the scopes (a test apart from any
    group is its own scope); the largest groups are sent first."""
    groups: dict[str, str] | None = None

    def schedule(self):
      if self.groups is None:  # every worker collected the same tests: read any one's groups
        files = sorted(groups_dir.glob("*.json"))
        self.groups = json.loads(files[0].read_text()) if files else {}
      super().schedule()

    def _split_scope(self, nodeid):
      return (self.groups or {}).get(nodeid, nodeid)

  return FixtureGroups(config, log)


# Per-test CPU time, for measuring the suite on a loaded machine (where wall time says little):
# EMOJAX_TEST_CPU_TIMES=FOLDER appends, per process (each xdist worker), one line per test phase
# to FOLDER/<pid>.tsv: node id, phase (setup / call / teardown), CPU seconds of the test process
# (user + system, all its threads), CPU seconds of the subprocesses it waited for, wall seconds.
# Per file (CPU seconds, file):
#   awk -F'\t' '{split($1,a,"::"); s[a[1]]+=$3+$4} END {for (f in s) print s[f], f}' \
#     FOLDER/*.tsv | sort -rn
_CPU_TIMES = os.environ.get("EMOJAX_TEST_CPU_TIMES")
if _CPU_TIMES:
  import resource  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top

  def _cpu_now() -> tuple[float, float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime, time.monotonic())

  def _cpu_record(item, phase: str, start: tuple[float, float, float]) -> None:
    end = _cpu_now()
    folder = pathlib.Path(_CPU_TIMES)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{os.getpid()}.tsv").open("a") as f:
      f.write("\t".join([item.nodeid, phase] + [f"{b - a:.3f}" for a, b in zip(start, end)])
              + "\n")

  @pytest.hookimpl(hookwrapper=True)
  def pytest_runtest_setup(item):
    start = _cpu_now()
    yield
    _cpu_record(item, "setup", start)

  @pytest.hookimpl(hookwrapper=True)
  def pytest_runtest_call(item):
    start = _cpu_now()
    yield
    _cpu_record(item, "call", start)

  @pytest.hookimpl(hookwrapper=True)
  def pytest_runtest_teardown(item, nextitem):
    del nextitem
    start = _cpu_now()
    yield
    _cpu_record(item, "teardown", start)


def ridge_toy_config():
  """The ridge config on the toy dataset (both targets, 5 s clips, batches of 8)."""
  from configs import ridge  # pylint: disable=import-outside-toplevel
  base = toy_config(targets=("valence", "arousal"))
  c = ridge.from_two_timescale(base, runlocal=True)
  with c.unlocked():
    c.dataset = base.dataset
    c.data.clip_seconds = 5
    c.data.batch_size = c.data.eval_batch_size = 8
    c.eval.plots = False  # no test reads its evaluation plots (config.eval.plots)
  return c
