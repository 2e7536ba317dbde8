"""The module layout of issue 18: emojax/models holds methods only, configs import no model and
models no config, a run does not import PyAV, and film_builder / film_beam import no circle."""

import ast
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
CONTRACT = ("task", "modalities", "create", "plan", "outputs")


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names |= {f"{node.module}.{a.name}" for a in node.names}
  return names


def _modules_after(statement: str) -> set[str]:
  code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       check=True)
  return set(out.stdout.split())


def test_emojax_models_holds_methods_only():
  for path in sorted((REPO / "emojax" / "models").glob("*.py")):
    if path.name == "__init__.py":
      continue
    defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    missing = set(CONTRACT) - defined
    assert not missing, f"{path.name} is not a method (lacks {missing})"


def test_configs_import_no_model_and_models_no_config():
  for path in (REPO / "configs").glob("*.py"):
    assert not any(n.startswith("emojax.models") for n in _imports(path)), path.name
  for path in (REPO / "emojax").rglob("*.py"):
    assert not any(n == "configs" or n.startswith("configs.") for n in _imports(path)
                   if "importers" not in path.parts), path


def test_a_training_run_does_not_import_pyav():
  mods = _modules_after(
      "import emojax.features, emojax.train, emojax.evaluate, emojax.models.gru_moe")
  assert "av" not in mods and "emojax.features.decode" not in mods


def test_film_beam_does_not_import_film_builder():
  mods = _modules_after("import emojax.datasets.film_beam")
  assert "emojax.datasets.film_builder" not in mods
