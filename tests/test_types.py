"""Types as users' tools see them: ``dscd`` ships ``py.typed`` (PEP 561), and mypy, configured in
``pyproject.toml`` as ``make lint`` runs it, finds no error in ``dscd/``."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_ships_its_types():
    assert (ROOT / "dscd" / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["dscd"]  # so wheels carry it


def test_mypy_finds_no_error_in_the_package():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
