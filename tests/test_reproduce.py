"""`dscd reproduce` runs notebooks with papermill and names the failing one."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from dscd import cli
from dscd.reproduce import find_notebooks

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("profile = 'x'\nfigures_dir = '.'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def test_notebook_03_under_smoke_writes_its_figures(tmp_path):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "03", "--outputs", str(tmp_path), "--quiet"]) == 0
    figures = tmp_path / "smoke" / "figures"
    for name in ("03_beta_annealing.png", "03_beta_annealing.pdf", "03_beta_annealing.gif",
                 "03_phi_schedule.png", "03_beta_annealing.json"):
        assert (figures / name).stat().st_size > 0, name
    metrics = json.loads((figures / "03_beta_annealing.json").read_text())
    assert metrics["profile"] == "smoke" and metrics["frames"] == 8
    assert all(r["inside_domain"] for r in metrics["checks"])
    executed = nbformat.read(tmp_path / "smoke" / "notebooks" / "03_beta_annealing.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    record = json.loads((tmp_path / "smoke" / "reproduce.json").read_text())
    assert [n["number"] for n in record["notebooks"]] == ["03"]


def test_a_failing_notebook_is_named_with_its_cell(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_fine.ipynb", "x = 1")
    _notebook(nbs / "02_broken.ipynb", "y = 2", "# the bad cell\nraise RuntimeError('boom at cell two')")
    code = cli.main(["reproduce", "--profile", "smoke", "--notebooks", str(nbs), "--outputs", str(tmp_path / "o"),
                     "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "02_broken.ipynb" in err and "the bad cell" in err and "RuntimeError: boom at cell two" in err


def test_only_selects_and_unknown_numbers_are_usage_errors(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_a.ipynb", "pass")
    _notebook(nbs / "02_b.ipynb", "pass")
    (nbs / "notes.ipynb").write_text("{}")  # unnumbered: ignored
    assert [p.name for p in find_notebooks(nbs, ["2"])] == ["02_b.ipynb"]
    assert [p.name for p in find_notebooks(nbs)] == ["01_a.ipynb", "02_b.ipynb"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--profile", "smoke", "--notebooks", str(nbs), "--only", "07"])
    assert exc.value.code == 2
    assert "no notebook numbered 07" in capsys.readouterr().err


def test_unknown_profile_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--profile", "huge"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_animate_writes_a_gif_and_rejects_bad_values(tmp_path, capsys):
    assert cli.main(["animate", "--out", str(tmp_path / "a.gif"), "--frames", "3", "--fps", "2"]) == 0
    assert (tmp_path / "a.gif").stat().st_size > 0
    if shutil.which("ffmpeg"):
        assert (tmp_path / "a.mp4").stat().st_size > 0
    with pytest.raises(SystemExit) as exc:
        cli.main(["animate", "--out", str(tmp_path / "b.gif"), "--v", "1.5"])
    assert exc.value.code == 2
    assert "v (the unit position)" in capsys.readouterr().err


def test_notebook_05_under_smoke_records_the_claims(tmp_path):
    assert cli.main(["reproduce", "--profile", "smoke", "--only", "05", "--outputs", str(tmp_path), "--quiet"]) == 0
    figures = tmp_path / "smoke" / "figures"
    for name in ("05_figure3.png", "05_figure3.pdf", "05_figure3_rotated.png", "05_figure3_d2.png",
                 "05_long_budget.png", "05_benchmarks_table.md", "05_benchmarks_table.csv",
                 "05_figure3_data/results.json", "05_figure3_data/curves.npz"):
        assert (figures / name).stat().st_size > 0, name
    metrics = json.loads((figures / "05_benchmarks.json").read_text())
    assert metrics["profile"] == "smoke" and metrics["dim"] == 3
    first = metrics["claims"]["figure3"][0]
    assert first["function"] == "styblinski_tang" and set(first["dscd_improves"]) == {"0.001", "0.01", "0.1",
                                                                                      "schedule"}
    assert isinstance(first["plain_adam_never_in_global_basin"], bool)


def test_search_notebooks_under_smoke_write_figures_tables_and_claims(tmp_path):
    args = ["reproduce", "--profile", "smoke", "--only", "01", "--only", "02", "--outputs", str(tmp_path), "--quiet"]
    assert cli.main(args) == 0
    figures = tmp_path / "smoke" / "figures"
    for name in ("01_figure1.png", "01_figure1.pdf", "01_table1.md", "01_table1.csv", "01_genotype_2.png",
                 "02_figure2.png", "02_dscd_steps.png", "02_table1.md", "02_genotype_4.png"):
        assert (figures / name).stat().st_size > 0, name
    for name in ("01_diagnosis.json", "02_dscd_search.json"):
        metrics = json.loads((figures / name).read_text())
        assert metrics["profile"] == "smoke" and isinstance(metrics["claims"]["held"], bool)
        assert [r["Method"].startswith("FairDARTS") for r in metrics["table1"]] == [True, True]
    # the runs are reused, not redone, on a second pass
    before = (tmp_path / "smoke" / "runs" / "adam-2" / "summary.json").stat().st_mtime_ns
    assert cli.main(args) == 0
    assert (tmp_path / "smoke" / "runs" / "adam-2" / "summary.json").stat().st_mtime_ns == before
