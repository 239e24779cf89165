"""Regenerate the paper: run the numbered notebooks with papermill, skip what is up to date, index it all.

Each notebook in ``notebooks/`` named ``NN_name.ipynb`` has one ``parameters``
cell of plain literals. A profile (:data:`dscd.profiles.PROFILES`) gives the
values injected into it; every notebook also receives ``profile``,
``figures_dir``, ``tables_dir`` and ``runs_dir`` (the run folders notebook 04
reads from notebooks 01 and 02). Under ``outputs/<profile>/``:

* ``notebooks/`` the executed copies, ``html/`` the same as HTML (nbconvert);
* ``figures/`` the figures and their metrics JSON, ``tables/`` the tables (CSV, Markdown);
* ``runs/`` the searches and trainings;
* ``reproduce.json`` what ran, when, how long, with which fingerprint;
* ``index.html`` every figure and table, the executed notebooks linked, the profile,
  the package version and commit, the machine and each notebook's wall time.

A notebook is skipped when its last run succeeded with the same fingerprint: the
notebook's contents, its parameters, the package's source code, and the
fingerprints of the notebooks it depends on (:data:`DEPENDS`). So an interrupted
regeneration resumes where it stopped; ``force=True`` reruns everything. When a
notebook fails, the ones that depend on it are not run, the others still are, and
:class:`NotebookFailed` names every failed notebook and cell at the end.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dscd.profiles import get_profile

__all__ = ["ABLATIONS", "DEPENDS", "EXECUTION_PARAMETERS", "EXPECTED_OUTPUTS",
           "NotebookFailed", "NotebookRun", "default_notebooks_dir", "find_notebooks", "reproduce", "write_index"]

#: Notebook parameters that say where runs execute, not what they compute (left out of the fingerprint).
EXECUTION_PARAMETERS = ("executor", "address", "jobs", "devices", "batch_seeds")
#: Notebook parameters that name folders under ``outputs/<profile>/`` (recorded relative to it).
_FOLDER_PARAMETERS = ("figures_dir", "tables_dir", "runs_dir")

#: Which notebooks read what others wrote (by number): a change upstream reruns them, a failure blocks them.
DEPENDS: dict[str, tuple[str, ...]] = {"02": ("01",), "04": ("01", "02"), "07": ("01", "02")}
#: Ablation notebooks: run by ``--all`` or ``--only NN``, left out of a plain regeneration (their searches cost
#: hours more than the paper's figures): 07, the record-window experiment.
ABLATIONS = ("07",)

#: Files each of the repository's notebooks must leave under ``outputs/<profile>/`` (non-empty), by file name.
EXPECTED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "01_diagnosis.ipynb": ("figures/01_figure1.png", "figures/01_figure1.pdf", "figures/01_diagnosis.json",
                           "tables/01_table1_search.csv", "tables/01_table1_search.md",
                           "tables/01_table1_search_runs.md"),
    "02_dscd_search.ipynb": ("figures/02_figure2.png", "figures/02_figure2.pdf", "figures/02_dscd_steps.png",
                             "figures/02_survival.png", "figures/02_survival.pdf",
                             "figures/02_dscd_search.json", "tables/02_table1_search.csv",
                             "tables/02_table1_search.md", "tables/02_table1_search_runs.md"),
    "03_beta_annealing.ipynb": ("figures/03_beta_annealing.png", "figures/03_beta_annealing.pdf",
                                "figures/03_beta_annealing.gif", "figures/03_phi_schedule.png",
                                "figures/03_beta_annealing.json"),
    "04_final_training.ipynb": ("figures/04_learning_curves.png", "figures/04_learning_curves.pdf",
                                "figures/04_final_training.json", "tables/table1.csv", "tables/table1.md",
                                "tables/table1_runs.md",
                                "tables/table2.csv", "tables/table2.md"),
    "06_nas_bench_201.ipynb": ("figures/06_found_cells.png", "figures/06_found_cells.pdf",
                               "figures/06_accuracy_over_search.png", "figures/06_survival.png",
                               "figures/06_nas_bench_201.json", "tables/06_nas_bench_201.csv",
                               "tables/06_nas_bench_201.md", "tables/06_nas_bench_201_runs.md",
                               "tables/06_published_anchors.md"),
    "07_record_window.ipynb": ("figures/07_record_window.png", "figures/07_record_window.pdf",
                               "figures/07_record_window.json", "tables/07_record_window_runs.csv",
                               "tables/07_record_window_runs.md"),
    "05_benchmarks.ipynb": ("figures/05_figure3.png", "figures/05_figure3.pdf", "figures/05_figure3_rotated.png",
                            "figures/05_figure3_d2.png", "figures/05_long_budget.png", "figures/05_benchmarks.json",
                            "tables/05_benchmarks.csv", "tables/05_benchmarks.md"),
}

_NAME = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")
STATE = "reproduce.json"


class NotebookFailed(RuntimeError):
    """One or more notebooks raised (or left an expected output missing); the message names each one,
    its cell and error, and the notebooks not run because they depend on it."""


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of a ``reproduce`` call: ``status`` is ``ran``, ``skipped`` (up to date),
    ``failed`` or ``blocked`` (an upstream notebook failed); ``seconds`` is the wall time of
    the run that produced its current outputs."""

    number: str
    notebook: str
    output: str
    seconds: float
    parameters: dict[str, Any]
    status: str = "ran"
    error: str | None = None


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source tree this package was imported from, else ``./notebooks``."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return here if here.is_dir() else Path("notebooks").resolve()


def _number(path: Path) -> str:
    """The ``NN`` of a notebook named ``NN_name.ipynb``."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a numbered notebook (NN_name.ipynb)")
    return match.group(1)


def find_notebooks(notebooks_dir: Path, only: list[str] | None = None, ablations: bool = False) -> list[Path]:
    """The numbered notebooks in ``notebooks_dir`` in order, optionally only the numbers in ``only``; without
    ``only``, the :data:`ABLATIONS` are left out unless ``ablations`` is set."""
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {notebooks_dir}: pass --notebooks DIR (the repository's notebooks/)")
    found = sorted(p for p in notebooks_dir.iterdir() if _NAME.match(p.name))
    if not found:
        raise FileNotFoundError(f"{notebooks_dir} holds no numbered notebooks (NN_name.ipynb): pass --notebooks DIR "
                                "(the repository's notebooks/)")
    if only:
        wanted = {n.zfill(2) for n in only}
        unknown = wanted - {_number(p) for p in found}
        if unknown:
            have = ", ".join(_number(p) for p in found)
            raise ValueError(f"no notebook numbered {', '.join(sorted(unknown))} in {notebooks_dir} (have: {have})")
        found = [p for p in found if _number(p) in wanted]
    elif not ablations:
        found = [p for p in found if _number(p) not in ABLATIONS]
    return found


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0].strip()[:100] if lines else ""


def _declared_parameters(path: Path) -> set[str] | None:
    """Names assigned in the notebook's ``parameters`` cell (``None`` when it has none)."""
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - JSON, schema and encoding errors alike
        raise ValueError(f"not a valid notebook ({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return set(re.findall(r"^(\w+)\s*=", cell.source, flags=re.MULTILINE))
    return None


def _source_digest() -> str:
    """A hash of the package's Python sources: a code change makes every notebook out of date."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _data_digest() -> str:
    """The content digest of ``DSCD_DATA`` (the notebooks' data source), so changed data reruns them."""
    import os

    from dscd.data import DataError, source_fingerprint

    source = os.environ.get("DSCD_DATA")
    if not source:
        return ""
    try:
        return source_fingerprint(source)
    except DataError:
        return f"unreadable:{source}"


def _fingerprint(path: Path, parameters: dict[str, Any], source: str, upstream: list[str | None]) -> str:
    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update(source.encode())
    digest.update(json.dumps(upstream).encode())
    return digest.hexdigest()


def _read_record(root: Path) -> dict[str, Any]:
    """``reproduce.json`` as written, its ``notebooks`` holding only well-formed entries; anything unreadable or
    of another shape counts as absent (those notebooks are out of date), never as an error."""
    path = root / STATE
    try:
        record = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    notebooks = record.get("notebooks")
    notebooks = notebooks if isinstance(notebooks, dict) else {}
    record["notebooks"] = {str(k): v for k, v in notebooks.items() if isinstance(v, dict)}
    return record


def _read_state(root: Path) -> dict[str, Any]:
    return _read_record(root)["notebooks"]


def _relative(root: Path, path: str | Path | None) -> str | None:
    """``path`` as recorded in ``reproduce.json``: relative to the profile's folder, so that a copied or moved
    outputs folder keeps working."""
    return None if path is None else Path(path).resolve().relative_to(root.resolve()).as_posix()


def _located(root: Path, recorded: Any) -> Path | None:
    """A path recorded in ``reproduce.json`` under ``root``: relative ones as they are; an absolute one from an
    older version, or from the folder this one was copied from, by its last two parts (``html/NN_x.html``)."""
    if not isinstance(recorded, str) or not recorded:
        return None
    path = Path(recorded)
    if not path.is_absolute():
        return root / path
    try:
        path.resolve().relative_to(root.resolve())
        return path
    except ValueError:
        return root / Path(*path.parts[-2:])


def _to_html(notebook: Path, target: Path) -> str | None:
    """nbconvert HTML of an executed notebook; ``None`` (and no file) if the conversion fails."""
    try:
        import nbformat
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    except Exception:  # noqa: BLE001 - a missing HTML page must not fail the regeneration
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body)
    return str(target)


def _missing_outputs(name: str, root: Path) -> list[str]:
    return [rel for rel in EXPECTED_OUTPUTS.get(name, ())
            if not (root / rel).is_file() or (root / rel).stat().st_size == 0]


def reproduce(
    profile: str = "quick",
    only: list[str] | None = None,
    outputs: str | Path = "outputs",
    notebooks_dir: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
    execution: dict[str, Any] | None = None,
    ablations: bool = False,
) -> list[NotebookRun]:
    """Execute the numbered notebooks under ``profile`` in dependency order; returns what happened to each.
    The ablation notebooks (:data:`ABLATIONS`) run only with ``ablations=True`` or when named in ``only``.

    ``execution`` says where the notebooks that launch runs (01, 02, 04) run them:
    ``{"executor": "local" | "ray", "address": ..., "jobs": ..., "devices": [...], "batch_seeds": ...}`` (see
    :func:`dscd.executors.make_executor`); these change where runs execute, not what they
    compute, so they never make a notebook out of date. Up-to-date notebooks are skipped unless
    ``force``. Writes ``reproduce.json`` and
    ``index.html`` under ``outputs/<profile>/`` whatever happens, then raises
    :class:`NotebookFailed` if any notebook failed.
    """
    import papermill  # noqa: F401 - a missing notebooks extra is reported before any folder is made

    get_profile(profile)  # an unknown name is refused before any folder is made
    from dscd.runfolder import RunFolderError, check_output_path

    notebooks_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    paths = find_notebooks(notebooks_dir, only, ablations)  # every option is checked before a folder is made
    try:
        root = check_output_path(outputs, "--outputs").resolve() / profile
        dirs = {name: root / name for name in ("notebooks", "html", "figures", "tables", "runs")}
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
    except RunFolderError as err:
        raise ValueError(str(err)) from None
    except OSError as err:
        raise ValueError(f"--outputs {outputs}: cannot create the output folders ({err.strerror or err})") from None
    from dscd.runfolder import acquire_lock

    lock = acquire_lock(root, "one regeneration writes a profile's outputs at a time; wait for it to finish, "
                              "or give another --outputs")
    try:
        return _reproduce_locked(profile, root, dirs, paths, notebooks_dir, progress, force, execution)
    finally:
        lock.close()


def _reproduce_locked(profile: str, root: Path, dirs: dict[str, Path], paths: list[Path], notebooks_dir: Path,
                      progress: bool, force: bool, execution: dict[str, Any] | None) -> list[NotebookRun]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    state = _read_state(root)
    source = _source_digest() + _data_digest()

    from dscd.run_common import run_metadata, write_json

    metadata = run_metadata()

    def save() -> None:
        """Record the state after every notebook, so that a killed regeneration resumes after the last one."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(root / STATE, {"profile": profile, **metadata, "updated": now,
                                  "notebooks": dict(sorted(state.items()))})
        write_index(root)

    runs: list[NotebookRun] = []
    failed: dict[str, str] = {}
    for path in paths:
        number = _number(path)
        parameters = {"profile": profile, "figures_dir": str(dirs["figures"]), "tables_dir": str(dirs["tables"]),
                      "runs_dir": str(dirs["runs"])}
        try:
            declared = _declared_parameters(path)  # the folders only where the notebook takes them
        except ValueError as err:  # a malformed notebook fails alone, the others still run
            unreadable = f"notebook {path.name} cannot be read: {err}"
            runs.append(NotebookRun(number, path.name, str(dirs["notebooks"] / path.name), 0.0, parameters,
                                    "failed", unreadable))
            failed[number] = unreadable
            state[number] = {**state.get(number, {}), "notebook": path.name, "status": "failed",
                             "fingerprint": None, "error": unreadable}
            save()
            continue
        parameters = {k: v for k, v in parameters.items() if declared is None or k in declared or k == "profile"}
        parameters.update(get_profile(profile).notebook_parameters(number))
        parameters.update({k: v for k, v in (execution or {}).items()
                           if v is not None and (declared is None or k in declared)})
        output = dirs["notebooks"] / path.name
        upstream = [n for n in DEPENDS.get(number, ()) if n in failed]
        if upstream:
            message = f"not run: it depends on notebook {', '.join(upstream)}, which failed"
            runs.append(NotebookRun(number, path.name, str(output), 0.0, parameters, "blocked", message))
            failed[number] = message
            state[number] = {**state.get(number, {}), "notebook": path.name, "status": "blocked", "error": message}
            save()
            continue
        computed = {k: (_relative(root, v) if k in _FOLDER_PARAMETERS else v) for k, v in parameters.items()
                    if k not in EXECUTION_PARAMETERS}  # where the outputs folder lies is not what is computed
        fingerprint = _fingerprint(path, computed, source,
                                   [state.get(n, {}).get("fingerprint") for n in DEPENDS.get(number, ())])
        previous = state.get(number, {})
        if (not force and previous.get("status") == "ok" and previous.get("fingerprint") == fingerprint
                and output.is_file() and not _missing_outputs(path.name, root)):
            runs.append(NotebookRun(number, path.name, str(output), previous.get("seconds", 0.0), parameters,
                                    "skipped"))
            continue
        start = time.perf_counter()
        error: str | None = None
        try:
            papermill.execute_notebook(
                str(path), str(output), parameters=parameters, kernel_name="python3",
                progress_bar=progress, cwd=str(notebooks_dir),
            )
        except PapermillExecutionError as err:
            error = (f"notebook {path.name} failed in cell [{err.exec_count}] (starting "
                     f"{_first_line(err.source)!r}): {err.ename}: {err.evalue}\nexecuted copy: {output}")
        seconds = time.perf_counter() - start
        missing = [] if error else _missing_outputs(path.name, root)
        if missing:
            error = f"notebook {path.name} ran but left these outputs missing or empty: {', '.join(missing)}"
        page = _to_html(output, dirs["html"] / f"{path.stem}.html") if output.is_file() else None
        state[number] = {"notebook": path.name, "status": "failed" if error else "ok",
                         "fingerprint": None if error else fingerprint, "seconds": round(seconds, 1),
                         "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                         "output": _relative(root, output), "html": _relative(root, page), "parameters": computed,
                         "error": error}
        if error:
            failed[number] = error
        runs.append(NotebookRun(number, path.name, str(output), seconds, parameters,
                                "failed" if error else "ran", error))
        save()

    save()  # also when everything was up to date: "updated" and the index reflect this call
    errors = [r.error for r in runs if r.status == "failed" and r.error is not None]
    if errors:
        blocked = [f"{r.notebook} ({r.error})" for r in runs if r.status == "blocked"]
        raise NotebookFailed("\n".join(errors) + ("\nblocked: " + "; ".join(blocked) if blocked else "")
                             + f"\nsee {root / 'index.html'}")
    return runs


# ---------------------------------------------------------------------------------- index.html

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f2f2f2; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 560px; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.failed { color: #b00; } .blocked { color: #b60; } .ok { color: #070; }
"""


def _csv_html(path: Path) -> str:
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def write_index(root: str | Path) -> Path:
    """Write ``root/index.html`` from ``reproduce.json`` and the figures and tables under ``root``."""
    root = Path(root)
    record = _read_record(root)
    esc = html.escape
    rel = lambda p: esc(Path(p).resolve().relative_to(root.resolve()).as_posix())  # noqa: E731
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>dscd: {esc(root.name)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>dscd: the paper regenerated, profile <code>{esc(root.name)}</code></h1>",
             "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(record.get(k)))}</td></tr>" for k in (
                 "version", "commit", "torch", "python", "machine", "updated")) + "</table>",
             "<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>wall time</th><th>finished</th>"
             "<th>executed copy</th><th>error</th></tr>"]
    for number, nb in sorted(record.get("notebooks", {}).items()):
        status = nb.get("status", "?")
        links = []
        for key, label in (("html", "HTML"), ("output", "ipynb")):
            found = _located(root, nb.get(key))
            if found is not None and found.is_file():
                links.append(f"<a href='{rel(found)}'>{label}</a>")
        seconds = nb.get("seconds")
        parts.append(f"<tr><td>{esc(nb.get('notebook', number))}</td><td class='{esc(status)}'>{esc(status)}</td>"
                     f"<td>{'' if seconds is None else f'{seconds / 60:.1f} min'}</td>"
                     f"<td>{esc(str(nb.get('finished', '')))}</td><td>{' '.join(links)}</td>"
                     f"<td><pre>{esc(nb.get('error') or '')}</pre></td></tr>")
    parts.append("</table>")
    tables = sorted((root / "tables").glob("*.csv")) if (root / "tables").is_dir() else []
    parts.append("<h2>Tables</h2>" + ("" if tables else "<p>none yet</p>"))
    for path in tables:
        md = path.with_suffix(".md")
        extra = f" (<a href='{rel(md)}'>Markdown</a>)" if md.is_file() else ""
        parts.append(f"<h3>{esc(path.stem)}</h3><p><a href='{rel(path)}'>CSV</a>{extra}</p>{_csv_html(path)}")
    figures_dir = root / "figures"
    images = sorted(p for p in figures_dir.glob("*") if p.suffix in (".png", ".gif")) if figures_dir.is_dir() else []
    parts.append("<h2>Figures</h2>" + ("" if images else "<p>none yet</p>"))
    for path in images:
        others = [p for p in sorted(figures_dir.glob(path.stem + ".*")) if p.suffix in (".pdf", ".mp4", ".json")]
        formats = " ".join(f"<a href='{rel(p)}'>{esc(p.suffix.lstrip('.'))}</a>" for p in others)
        parts.append(f"<figure><a href='{rel(path)}'><img src='{rel(path)}' alt='{esc(path.stem)}'></a>"
                     f"<figcaption>{esc(path.name)} {formats}</figcaption></figure>")
    metrics = sorted(figures_dir.glob("*.json")) if figures_dir.is_dir() else []
    if metrics:
        parts.append("<h2>Recorded metrics</h2><ul>" + "".join(
            f"<li><a href='{rel(p)}'>{esc(p.name)}</a></li>" for p in metrics) + "</ul>")
    parts.append("</body></html>")
    path = root / "index.html"
    path.write_text("\n".join(parts))
    return path
