"""A method of one's own, as docs/own_method.md tells it: the file from the doc written anywhere,
trained with main.py from the command line with its own keys; the errors of a wrong name or key."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx

from conftest import REPO, toy_config
from emojax import checkpoint, contract, errors, own_method


def _doc_method() -> str:
  text = (REPO / "docs" / "own_method.md").read_text()
  return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def _toy_args(tmp_path) -> list[str]:
  c = toy_config()
  return [f"--config={REPO}/configs/ridge.py:arousal,runlocal",
          f"--config.dataset.name={c.dataset.name}", "--config.dataset.config=",
          f"--config.dataset.import_module={c.dataset.import_module}",
          f"--config.dataset.data_dir={c.dataset.data_dir}", "--config.data.clip_seconds=5",
          "--config.per_target.arousal.inputs.streams=('audio', 'action')", "--config.log.every_steps=2",
          "--config.eval.plots=False"]   # no test reads the evaluation plots


def _main(argv: list[str]) -> int:
  """main.py as the shell runs it (flags parsed from argv by main's own parser), in-process."""
  import main  # pylint: disable=import-outside-toplevel
  main.FLAGS.unparse_flags()
  saved = sys.argv[:]
  sys.argv[:] = ["main.py", *argv]
  try:
    return main.main(main.parse_flags(["main.py", *argv]))
  finally:
    sys.argv[:] = saved
    main.FLAGS.unparse_flags()
    for name in [n for n in main.FLAGS if n.startswith("config.")]:   # the overrides' flags
      delattr(main.FLAGS, name)


def test_a_method_file_with_its_own_keys_trains_from_the_command_line(tmp_path, monkeypatch, capsys):
  home = tmp_path / "elsewhere"
  home.mkdir()
  (home / "my_method.py").write_text(_doc_method())
  monkeypatch.chdir(home)   # the file given relative to where the user runs from
  run = tmp_path / "run"
  rc = _main([*_toy_args(tmp_path), "--config.method=my_method.py",
              "--config.method_args.hidden=7", "--config.method_args.steps=4",
              f"--workdir={run}"])
  assert rc in (0, None), capsys.readouterr().err
  saved = json.loads((run / "config.json").read_text())
  assert saved["method"] == str(home / "my_method.py")
  assert saved["method_args"] == {"hidden": 7, "steps": 4, "learning_rate": 1e-3}
  assert [r["name"] for r in json.loads((run / "phases.json").read_text())] == ["arousal/mlp"]
  assert json.loads((run / "phases.json").read_text())[0]["best_step"] <= 4
  # The trained model has the width the command line gave (audio 3 + action 2 inputs).
  method = contract.get_method(type("C", (), {"method": saved["method"]})())
  model_state = checkpoint.read_model_meta(run / "final_model")[0]
  assert model_state["method"] == str(home / "my_method.py")
  import ml_collections  # pylint: disable=import-outside-toplevel
  cfg = ml_collections.ConfigDict(saved)
  model = method.create(cfg, {"audio": 3, "action": 2}, nnx.Rngs(0))
  checkpoint.restore_model(run / "final_model", model)
  assert model["arousal"].fc1.kernel[...].shape == (5, 7)
  assert np.isfinite(json.loads((run / "eval" / "test" / "metrics.json").read_text())
                     ["arousal"]["mse"])

  # Evaluate from another folder: the recorded absolute path finds the file.
  monkeypatch.chdir(tmp_path)
  assert _main(["--mode=evaluate", f"--workdir={run}"]) in (0, None)


def test_unknown_method_keys_and_bad_values_are_one_line_errors(tmp_path):
  (tmp_path / "m.py").write_text(_doc_method())
  from configs import ridge  # pylint: disable=import-outside-toplevel
  config = ridge.get_config("arousal,runlocal")
  with config.unlocked():
    config.method = str(tmp_path / "m.py")
  with pytest.raises(errors.ConfigError, match=r"method_args.hiden: .* has no such key \(its keys: "
                     r"hidden, learning_rate, steps\)"):
    own_method.apply(config, {"hiden": "3"})
  with pytest.raises(errors.ConfigError, match=r"--config.method_args.hidden=wide: expected a int"):
    own_method.apply(config, {"hidden": "wide"})
  applied = own_method.apply(config, {"learning_rate": "1", "hidden": "3"})
  assert applied.method_args.learning_rate == 1.0 and isinstance(applied.method_args.learning_rate,
                                                                 float)
  assert applied.method_args.to_dict() == {"hidden": 3, "steps": 40, "learning_rate": 1.0}
  with pytest.raises(AttributeError):   # locked again: a new key is refused
    applied.method_args.other = 1
  rest, raw = own_method.split_args(["main.py", "--config.method_args.a=1", "--workdir=x"])
  assert (rest, raw) == (["main.py", "--workdir=x"], {"a": "1"})
  # A built-in method declares no keys: none may be given.
  ridge_cfg = ridge.get_config("arousal,runlocal")
  assert own_method.apply(ridge_cfg, {}) is ridge_cfg and "method_args" not in ridge_cfg
  with pytest.raises(errors.ConfigError, match="its keys: none"):
    own_method.apply(ridge_cfg, {"x": "1"})


def test_method_names_that_cannot_be_imported_say_what_to_do(tmp_path):
  cfg = lambda name: type("C", (), {"method": name})()
  with pytest.raises(errors.ConfigError, match=r"no file .*nothere.py"):
    contract.get_method(cfg(str(tmp_path / "nothere.py")))
  with pytest.raises(errors.ConfigError, match="unknown method 'no_such_method'"):
    contract.get_method(cfg("no_such_method"))
  (tmp_path / "bare_method.py").write_text(_doc_method())
  sys.path.insert(0, str(tmp_path))
  try:  # a bare name on the Python path, outside emojax.models
    assert contract.get_method(cfg("bare_method")).default_config()["hidden"] == 16
  finally:
    sys.path.remove(str(tmp_path))
  assert contract.get_method(cfg("ridge")).__name__ == "emojax.models.ridge"
  # A missing import inside the user's module is the user's error, raised as it is.
  (tmp_path / "broken.py").write_text("import not_a_real_package_xyz\n")
  with pytest.raises(ModuleNotFoundError, match="not_a_real_package_xyz"):
    contract.get_method(cfg(str(tmp_path / "broken.py")))


def test_a_dotted_method_outside_the_python_path_names_pythonpath(tmp_path):
  """The real command line: a package of the user's not on PYTHONPATH, then on it."""
  pkg = tmp_path / "mypackage"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  (pkg / "my_method.py").write_text(_doc_method())
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  args = [sys.executable, str(REPO / "main.py"), "--config=configs/ridge.py:arousal,runlocal",
          "--config.method=mypackage.my_method", "--mode=evaluate", f"--workdir={tmp_path / 'w'}"]
  r = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2, r.stderr[-2000:]
  assert r.stderr.strip().splitlines() == [
      "error: config.method='mypackage.my_method': no module mypackage.my_method on the Python "
      "path; put the folder holding mypackage on PYTHONPATH (PYTHONPATH=/that/folder python "
      "main.py ...) or pass the method's file: --config.method=/path/to/my_method.py"]
  assert "Traceback" not in r.stderr
