r"""emojax: train, evaluate, sweep, predict and inspect data from a config.

  python main.py --config=configs/two_timescale.py --workdir=runs/tts            # train + evaluate
  python main.py --mode=evaluate --workdir=runs/tts [--checkpoint=DIR]           # evaluate again
  python main.py --mode=sweep --config=configs/two_timescale.py --workdir=runs/sweep
  python main.py --mode=predict --workdir=runs/tts --video=film.mp4 [--output=DIR] \
      [--allow_missing_audio]
  python main.py --mode=doctor --dataset=mediaeval2018 --manual_dir=~/downloads/me18
  python main.py --mode=build --dataset=mediaeval2018 --dataset_config=official_features \
      --manual_dir=~/downloads/me18

Any config field can be overridden: --config.optim.learning_rate=3e-4. Unknown keys fail.
"""

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Config file (path[:arg]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and evaluation outputs go.")
flags.DEFINE_enum("mode", "train", ["train", "evaluate", "sweep", "predict", "doctor", "build"],
                  "What to do.")
flags.DEFINE_string("checkpoint", None, "evaluate/predict: a model checkpoint folder (default: "
                    "<workdir>/final_model).")
flags.DEFINE_string("video", None, "predict: a video file or a folder of videos.")
flags.DEFINE_string("output", None, "predict: output folder (default: <workdir>/predict).")
flags.DEFINE_bool("allow_missing_audio", False, "predict: a film without an audio stream is "
                  "predicted with silence in place of its sound (default: it is skipped).")
flags.DEFINE_string("dataset", None, "doctor/build: dataset name (a module of emojax/datasets).")
flags.DEFINE_string("manual_dir", None, "doctor/build: the folder holding the manual download.")
flags.DEFINE_string("dataset_config", None, "doctor/build: the dataset's builder config, if any.")
flags.DEFINE_string("data_dir", None, "build: where to write the dataset (default: "
                    "$EMOJAX_DATA_DIR or ~/emojax_data).")
flags.DEFINE_string("coordinator_address", None, "Multi-process runs: host:port of process 0 "
                    "(default: $JAX_COORDINATOR_ADDRESS). See docs/multihost.md.")
flags.DEFINE_integer("num_processes", None, "Multi-process runs: how many processes run this "
                     "command (default: $JAX_NUM_PROCESSES, else 1).")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process, 0..num_processes-1 "
                     "(default: $JAX_PROCESS_ID).")
flags.DEFINE_integer("distributed_timeout", 300, "Multi-process runs: seconds to wait for the "
                     "coordinator and for every process to join.")
flags.DEFINE_integer("heartbeat_timeout", 100, "Multi-process runs: seconds without a heartbeat "
                     "after which a process counts as dead and the others stop.")
FLAGS = flags.FLAGS


def main(argv):
  from emojax import cli, errors  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    return cli.report(app.UsageError(f"unexpected arguments {argv[1:]}: flags are --name=value"))
  if not FLAGS["verbosity"].present:  # Orbax/TFDS chatter; emojax prints its own progress
    logging.set_verbosity(logging.ERROR)
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds.disable_progress_bar()
  try:
    from emojax import distributed  # pylint: disable=g-import-not-at-top
    distributed.initialize(
        distributed.resolve(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id),
        timeout_s=FLAGS.distributed_timeout, heartbeat_timeout_s=FLAGS.heartbeat_timeout)
    with distributed.failure_context():
      return run(FLAGS.mode)
  except (errors.EmojaxError, app.UsageError) as e:  # one line, exit 2 (emojax/cli.py)
    return cli.report(e)


def run(mode: str):
  from emojax import errors, evaluate, train  # pylint: disable=g-import-not-at-top
  if mode in ("doctor", "build"):
    if not FLAGS.dataset:
      raise app.UsageError(f"--dataset is required in {mode} mode (e.g. --dataset=mediaeval2018)")
  if mode == "doctor":
    from emojax import doctor  # pylint: disable=g-import-not-at-top
    if not FLAGS.manual_dir:
      raise app.UsageError("--manual_dir is required in doctor mode: the folder holding the "
                           f"manual download of {FLAGS.dataset}, the one doctor checks")
    problems = doctor.run_doctor(FLAGS.dataset, FLAGS.manual_dir, FLAGS.dataset_config)
    print(doctor.format_report(problems))
    return 1 if any(p.severity == "error" for p in problems) else 0
  if mode == "build":
    from emojax import datasets  # pylint: disable=g-import-not-at-top
    from emojax import cli, paths  # pylint: disable=g-import-not-at-top
    cli.check_output_dir(paths.data_dir(FLAGS.data_dir), "--data_dir")
    builder = _get_builder(FLAGS.dataset, FLAGS.dataset_config, FLAGS.data_dir)
    if (not FLAGS.manual_dir and getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
        and not _is_prepared(builder)):
      raise app.UsageError(
          f"--manual_dir is required to build {FLAGS.dataset}: the folder holding its manual "
          f"download (check it first with --mode=doctor --dataset={FLAGS.dataset} "
          "--manual_dir=...)")
    datasets.prepare(builder, FLAGS.manual_dir)
    print(f"built {builder.info.full_name} in {builder.data_dir}: " + ", ".join(
        f"{name} {split.num_examples}" for name, split in builder.info.splits.items()))
    return 0
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  from emojax import cli  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(FLAGS.workdir)
  if mode != "predict" or workdir.is_file():  # predict reads it (and writes in --output)
    cli.check_output_dir(workdir, "--workdir")  # an existing file, a place one cannot write
  if mode == "predict" and FLAGS.output:
    cli.check_output_dir(FLAGS.output, "--output")  # before reading the run
  try:
    config = FLAGS.config
    if config is not None:
      _ = config.method  # config_flags reports a broken config file on first attribute access
  except OSError as e:  # config_flags defers a missing/broken config file to first access
    raise errors.ConfigError(" ".join(str(e).split())) from None
  if config is None:
    if mode not in ("evaluate", "predict"):
      raise app.UsageError("--config is required to train or sweep")
    config = evaluate.load_run_config(workdir)
  from emojax import own_method  # pylint: disable=g-import-not-at-top
  config = own_method.apply(config, _METHOD_ARGS)
  if mode == "train":
    train.train_and_evaluate(config, workdir)
  elif mode == "evaluate":
    evaluate.evaluate(config, workdir, FLAGS.checkpoint)
  elif mode == "sweep":
    from emojax import sweep  # pylint: disable=g-import-not-at-top
    sweep.run_sweep(config, workdir, train.train_and_evaluate)
  elif mode == "predict":
    from emojax import predict  # pylint: disable=g-import-not-at-top
    if not FLAGS.video:
      raise app.UsageError("--video is required in predict mode")
    predict.predict(config, workdir, FLAGS.video, FLAGS.output, FLAGS.checkpoint,
                    allow_missing_audio=FLAGS.allow_missing_audio)
  return 0


def _get_builder(dataset: str, config: str | None, data_dir: str | None):
  """datasets.get_builder, with an unknown --dataset_config named instead of TFDS's ValueError."""
  from emojax import datasets, errors  # pylint: disable=g-import-not-at-top
  try:
    return datasets.get_builder(dataset, config, data_dir)
  except errors.EmojaxError:
    raise
  except ValueError as e:
    if not config or "BuilderConfig" not in str(e):
      raise
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    names = [c.name for c in (getattr(tfds.builder_cls(dataset), "BUILDER_CONFIGS", None) or [])]
    raise errors.ConfigError(
        f"--dataset_config={config}: {dataset} has no builder config of that name; "
        + (f"use one of {', '.join(names)}" if names else "it takes none: leave the flag out")
    ) from None


def _is_prepared(builder) -> bool:
  try:
    return bool(builder.is_prepared())
  except Exception:  # pylint: disable=broad-except
    return False


_METHOD_ARGS: dict[str, str] = {}   # --config.method_args.<key>=<value> (emojax/own_method.py)


def parse_flags(argv):
  """absl's parser, but a mistyped config key ends with one clear line instead of a traceback."""
  from emojax import errors, own_method  # pylint: disable=g-import-not-at-top
  try:
    argv, raw = own_method.split_args(argv)
  except errors.ConfigError as e:
    sys.exit(f"error: {e}")
  _METHOD_ARGS.clear()
  _METHOD_ARGS.update(raw)
  sys.argv[:] = own_method.split_args(sys.argv)[0]  # config_flags reads its overrides from sys.argv
  try:
    return FLAGS(argv)
  except flags.Error as e:
    lines = [l for l in str(e).splitlines() if l.strip()]
    if any(l.startswith("Traceback") for l in lines):  # a config file raised: keep its message
      lines = [lines[0], lines[-1].strip()]
    _exit("error: " + " ".join(lines) + " (pass --helpshort to see the flags)")
  except (AttributeError, KeyError, ValueError, TypeError) as e:
    overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    msg = str(e).replace("\\'", "'").replace("\\n", " ").replace("\n", " ").replace("' Did", " (did").strip("'\" ")
    _exit(f"error: bad config override among {overrides}: {msg}; check the key against the config "
          "file (an unknown key is refused)")


def _exit(line: str):
  """A user error found while parsing the flags: one line on stderr, exit 2 (emojax/cli.py)."""
  print(line, file=sys.stderr)
  sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
