"""Set-up files agree with each other; notebooks are committed clean and match their sources."""

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    pins = {}
    for req in requirements:
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*([<>=!~].*)?$", req)
        if m:
            pins[m.group(1).lower()] = (m.group(2) or "").replace(" ", "")
    return pins


def test_environment_yml_pins_torch_like_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    project = meta["dependencies"] + [r for extra in meta["optional-dependencies"].values() for r in extra
                                      if not r.startswith("dscd[")]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    py, conda = _pins(project), _pins(pip_section)
    for name in ("torch", "torchvision"):
        assert py[name] == conda[name], f"{name}: pyproject {py[name]!r} vs environment.yml {conda[name]!r}"
    assert py["torch"] == ">=2.2,<2.15" and py["torchvision"] == ">=0.17,<0.30"
    # everything else pyproject needs, extras included (conda users get JupyterLab too), is in the conda file
    conda_all = set(conda) | {
        re.split(r"[<>=!~ ]", d)[0].lower() for d in env["dependencies"] if isinstance(d, str)
    }
    assert set(py) <= conda_all, set(py) - conda_all


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_clean_and_paired_with_their_source(path):
    """Each notebook is committed without outputs and holds exactly the cells of its jupytext pair
    notebooks/src/NN.py (percent format; notebooks/jupytext.toml), parameters cell tagged for papermill."""
    jupytext = pytest.importorskip("jupytext")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    src = ROOT / "notebooks" / "src" / path.with_suffix(".py").name
    expected = jupytext.read(src, fmt="py:percent")
    assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells] == [
        (c.cell_type, c.source, c.metadata.get("tags", [])) for c in expected.cells], (
        f"{path.name} differs from {src.name}: run jupytext --sync {src}")
    assert "ipynb,src//py:percent" in (ROOT / "notebooks" / "jupytext.toml").read_text()


CORE_ONLY = """
import importlib.abc, sys
BLOCKED = {"matplotlib", "seaborn", "scipy", "sklearn", "cma", "papermill", "nbformat", "nbconvert", "ipykernel",
           "IPython", "onnx", "onnxruntime", "onnxscript", "tensorboard", "jupyterlab", "pytest", "ray"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {name} is not a core dependency")
sys.meta_path.insert(0, Block())
import dscd
from dscd import DSCD, load_genotype, load_model
import dscd.search, dscd.train, dscd.model_files, dscd.executors, dscd.search_network, dscd.cli, dscd.profiles
import dscd.survival
assert not [m for m in sys.modules if m.startswith("dscd.paper")], "the library imports the paper's code"
assert load_genotype("DARTS_V2").is_valid()
print("core ok")
"""


def test_the_library_imports_with_only_the_core_dependencies():
    """`pip install dscd` (no extras) must be enough for the optimiser, the search space, search, training
    and models: a subprocess in which every notebook, benchmark, export and logging package is blocked."""
    out = subprocess.run([sys.executable, "-c", CORE_ONLY], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "core ok" in out.stdout, out.stderr[-2000:]


RENAMED = {"space": "search_network", "network": "eval_network", "models": "model_files", "runs": "run_common"}


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_the_deprecated_module_names_are_gone(old):
    """The four modules renamed before 0.1.0 kept their old names for one round with a warning; the names
    are gone now, so there is one import path per module."""
    assert importlib.util.find_spec(f"dscd.{old}") is None
    assert importlib.util.find_spec(f"dscd.{RENAMED[old]}") is not None
