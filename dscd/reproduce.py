"""Regenerate the paper's figures: run the numbered notebooks with papermill.

Each notebook in ``notebooks/`` named ``NN_name.ipynb`` has one ``parameters``
cell of plain literals. A profile (``smoke``, ``quick``, ``paper``) maps to the
values injected into it; every notebook also receives ``profile`` and
``figures_dir``. Executed copies go to ``outputs/<profile>/notebooks/``, figures
and their JSON metrics to ``outputs/<profile>/figures/``.
"""

from __future__ import annotations

import json
import platform
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["NOTEBOOK_PARAMETERS", "PROFILES", "NotebookFailed", "NotebookRun", "default_notebooks_dir",
           "find_notebooks", "reproduce"]

PROFILES = ("smoke", "quick", "paper")

#: Per-notebook, per-profile parameters (keyed by the notebook's number).
NOTEBOOK_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "03": {
        "smoke": {"frames": 8, "fps": 4},
        "quick": {"frames": 60, "fps": 12},
        "paper": {"frames": 120, "fps": 24},
    },
    "05": {
        "smoke": {"dim": 3, "second_dim": 2, "runs": 6, "budget": 300, "long_budget": 600},
        "quick": {"dim": 10, "second_dim": 2, "runs": 20, "budget": 10000, "long_budget": 50000},
        "paper": {"dim": 10, "second_dim": 2, "runs": 20, "budget": 10000, "long_budget": 50000},
    },
}

_NAME = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook, the cell and the error."""


@dataclass(frozen=True)
class NotebookRun:
    number: str
    notebook: str
    output: str
    seconds: float
    parameters: dict[str, Any]


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source tree this package was imported from, else ``./notebooks``."""
    here = Path(__file__).resolve().parents[1] / "notebooks"
    return here if here.is_dir() else Path("notebooks").resolve()


def find_notebooks(notebooks_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in ``notebooks_dir`` in order, optionally only the numbers in ``only``."""
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {notebooks_dir}: pass --notebooks DIR (the repository's notebooks/)")
    found = sorted(p for p in notebooks_dir.iterdir() if _NAME.match(p.name))
    if only:
        wanted = {n.zfill(2) for n in only}
        unknown = wanted - {_NAME.match(p.name).group(1) for p in found}
        if unknown:
            have = ", ".join(_NAME.match(p.name).group(1) for p in found)
            raise ValueError(f"no notebook numbered {', '.join(sorted(unknown))} in {notebooks_dir} (have: {have})")
        found = [p for p in found if _NAME.match(p.name).group(1) in wanted]
    return found


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0].strip()[:100] if lines else ""


def reproduce(
    profile: str = "quick",
    only: list[str] | None = None,
    outputs: str | Path = "outputs",
    notebooks_dir: str | Path | None = None,
    progress: bool = True,
) -> list[NotebookRun]:
    """Execute the numbered notebooks under ``profile``; returns what ran.

    Raises :class:`NotebookFailed` naming the notebook and the failing cell when a
    notebook raises (its partly executed copy is kept for inspection).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    root = Path(outputs).resolve() / profile
    executed_dir, figures_dir = root / "notebooks", root / "figures"
    executed_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)

    runs: list[NotebookRun] = []
    for path in find_notebooks(notebooks_dir, only):
        number = _NAME.match(path.name).group(1)
        parameters = {"profile": profile, "figures_dir": str(figures_dir), "runs_dir": str(root / "runs")}
        parameters.update(NOTEBOOK_PARAMETERS.get(number, {}).get(profile, {}))
        output = executed_dir / path.name
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path), str(output), parameters=parameters, kernel_name="python3",
                progress_bar=progress, cwd=str(notebooks_dir),
            )
        except PapermillExecutionError as err:
            raise NotebookFailed(
                f"notebook {path.name} failed in cell [{err.exec_count}] (starting {_first_line(err.source)!r}): "
                f"{err.ename}: {err.evalue}\nexecuted copy: {output}"
            ) from None
        runs.append(NotebookRun(number, path.name, str(output), time.perf_counter() - start, parameters))

    from dscd import __version__

    record = {"profile": profile, "version": __version__, "machine": platform.platform(),
              "python": platform.python_version(), "notebooks": [asdict(r) for r in runs]}
    (root / "reproduce.json").write_text(json.dumps(record, indent=2))
    return runs
