"""`dscd reproduce`: the default notebooks under smoke, skipping of up-to-date notebooks, failures, index.html."""

import dataclasses
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from dscd import cli
from dscd.paper import reproduce as reproduce_module
from dscd.paper.reproduce import ABLATIONS, EXPECTED_OUTPUTS, find_notebooks, reproduce
from dscd.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *cells: str, parameters: str = "profile = 'x'\nfigures_dir = '.'") -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


@pytest.mark.slow
def test_smoke_runs_every_default_notebook_writes_every_output_and_the_index(tmp_path):
    """What CI checks: every notebook runs under smoke and leaves every expected figure and table."""
    assert cli.main(["reproduce", "--profile", "smoke", "--outputs", str(tmp_path), "--quiet"]) == 0
    root = tmp_path / "smoke"
    names = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert names == sorted(EXPECTED_OUTPUTS)  # every notebook has its list of outputs
    names = [n for n in names if n[:2] not in ABLATIONS]  # run by --all (07 is tested in test_window)
    for name in names:
        for rel in EXPECTED_OUTPUTS[name]:
            assert (root / rel).stat().st_size > 0, rel
        executed = nbformat.read(root / "notebooks" / name, as_version=4)
        assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code"), name
        assert (root / "html" / name.replace(".ipynb", ".html")).stat().st_size > 0
    figures, tables = root / "figures", root / "tables"

    m03 = json.loads((figures / "03_beta_annealing.json").read_text())
    assert m03["profile"] == "smoke" and m03["frames"] == 8 and all(r["inside_domain"] for r in m03["checks"])
    m05 = json.loads((figures / "05_benchmarks.json").read_text())
    first = m05["checks"]["figure3"][0]
    assert [c["id"] for c in m05["claims"]] == ["adam_alone_stuck", "dscd_improves_every_adam_setting"]
    assert all(c["verdict"] in ("held", "not held") and c["evidence"] for c in m05["claims"])
    assert m05["dim"] == 3 and first["function"] == "styblinski_tang"
    assert set(first["dscd_improves"]) == {"0.001", "0.01", "0.1", "schedule"}
    m01, m02 = (json.loads((figures / f"{n}.json").read_text()) for n in ("01_diagnosis", "02_dscd_search"))
    for metrics in (m01, m02):  # every claim carries a verdict and its evidence; the smoke profile: two seeds a budget
        assert metrics["profile"] == "smoke" and set(map(tuple, metrics["seeds"].values())) == {(0, 1)}
        assert all(c["verdict"] in ("held", "not held", "inconclusive") and c["evidence"] for c in metrics["claims"])
    assert [r["Method"] for r in m01["table1"]] == ["FairDARTS (2)", "FairDARTS (3)"]
    assert [r["Final Arch. valid"].split("/")[1] for r in m01["table1"]] == ["2", "2"]
    assert [r["run"] for r in m01["table1_runs"]] == ["adam-2-s0", "adam-2-s1", "adam-3-s0", "adam-3-s1"]
    for run in ("adam-2-s1", "dscd-4-s0"):  # the profile's batch_seeds: a DARTS search's seeds ran in one process
        assert json.loads((root / "runs" / run / "meta.json").read_text())["batched"]["seeds"] == [0, 1]
    assert [r["Method"] for r in m02["table1"]] == ["FairDARTS + DSCD (3)", "FairDARTS + DSCD (4)",  # compared at B=3
                                                   "FairDARTS + DSCD, y_best refreshed (3)", "FairDARTS (3)"]
    assert all("x_best_age_steps" in r["dscd"] for r in m02["runs"] + m02["ablation_refresh_best"]["runs"])
    delays = next(c for c in m02["claims"] if c["id"] == "dscd_delays_collapse")  # time to collapse at B = 3
    assert delays["test"]["runs"] == [2, 2] and delays["test"]["horizon"] == 3
    assert delays["test"]["name"].startswith("log-rank test") and "p_value" in delays["test"]
    assert any(c["id"] == "dscd_prevents_collapse" for c in m02["claims"])
    m04 = json.loads((figures / "04_final_training.json").read_text())
    assert [r["Method"] for r in m04["table1"]] == ["FairDARTS (2)", "FairDARTS (3)", "FairDARTS + DSCD (3)",
                                                   "FairDARTS + DSCD (4)", "FairDARTS + DSCD, y_best refreshed (3)"]
    for row in m04["table1_runs"]:  # smoke searches are too short to keep edges: refused, reported as the paper does
        assert (row["Eval. Test"] == "Invalid arch.") == (row["Final Arch."] == "Invalid arch.")
    assert m04["claims"][0]["verdict"] in ("held", "not held", "inconclusive")
    table2 = (tables / "table2.csv").read_text()
    assert "DARTS_V2 (published genotype)" in table2 and "published (paper Table 2" in table2
    trained = [r for r in m04["runs"] if r["summary"]]
    assert trained and all(0 <= r["summary"]["test_acc"] <= 1 for r in trained)

    index = (root / "index.html").read_text()
    for png in figures.glob("*.png"):
        assert f"figures/{png.name}" in index
    for csv in tables.glob("*.csv"):
        assert f"tables/{csv.name}" in index
    assert "html/04_final_training.html" in index and "smoke" in index
    record = json.loads((root / "reproduce.json").read_text())
    assert {n: v["status"] for n, v in record["notebooks"].items()} == dict.fromkeys(
        ("01", "02", "03", "04", "05", "06"), "ok")  # the ablation notebook, 07, runs with --all only
    assert record["version"] and record["machine"] and all(v["seconds"] > 0 for v in record["notebooks"].values())

    # a second call finds everything up to date: nothing runs, nothing is redone
    before = (root / "runs" / "adam-2-s0" / "summary.json").stat().st_mtime_ns
    runs = reproduce("smoke", outputs=tmp_path, progress=False)
    assert [r.status for r in runs] == ["skipped"] * 6
    assert (root / "runs" / "adam-2-s0" / "summary.json").stat().st_mtime_ns == before

    # --publish (everything skipped) copies the result files, and the README's headline renders from them
    results = tmp_path / "repo" / "results"
    assert cli.main(["reproduce", "--profile", "smoke", "--outputs", str(tmp_path), "--quiet", "--publish",
                     "--results", str(results)]) == 0
    assert (results / "smoke" / "tables" / "table1.md").read_text() == (tables / "table1.md").read_text()
    assert not list((results / "smoke").glob("runs"))
    assert list((results / "smoke").glob("figures/*.pdf"))  # PDFs are published
    page = tmp_path / "repo" / "README.md"
    page.write_text("<!-- dscd report: headline -->\n<!-- dscd report end -->\n")
    assert cli.main(["report", "--root", str(tmp_path / "repo"), str(page)]) == 0
    text = page.read_text()
    assert "FairDARTS (2)" in text and "results/smoke/figures/02_survival.png" in text
    assert all(f"**{c['verdict']}**" in text for c in m01["claims"])


def _statuses(runs):
    return {r.number: r.status for r in runs}


def test_skipping_follows_contents_parameters_dependencies_and_force(tmp_path, monkeypatch):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    counter = ("from pathlib import Path\np = Path(figures_dir) / '{n}.count'\n"
               "p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))")
    for n in ("01", "02", "04"):
        _notebook(nbs / f"{n}_nb.ipynb", counter.format(n=n))
    smoke = PROFILES["smoke"]
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(smoke, notebooks={"02": {"x": 1}}))
    call = lambda **kw: _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False, **kw))  # noqa: E731
    count = lambda n: int((out / "smoke" / "figures" / f"{n}.count").read_text())  # noqa: E731

    assert call() == {"01": "ran", "02": "ran", "04": "ran"}
    assert call() == {"01": "skipped", "02": "skipped", "04": "skipped"}
    _notebook(nbs / "01_nb.ipynb", counter.format(n="01"), "x = 'changed'")  # 02 and 04 depend on 01: all rerun
    assert call() == {"01": "ran", "02": "ran", "04": "ran"}
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(smoke, notebooks={"02": {"x": 2}}))  # a parameter
    assert call() == {"01": "skipped", "02": "ran", "04": "ran"}
    (out / "smoke" / "notebooks" / "02_nb.ipynb").unlink()  # its executed copy is gone
    assert call(only=["02"]) == {"02": "ran"}
    assert call() == {"01": "skipped", "02": "skipped", "04": "skipped"}
    assert call(force=True) == {"01": "ran", "02": "ran", "04": "ran"}
    assert (count("01"), count("02"), count("04")) == (3, 5, 4)
    record = json.loads((out / "smoke" / "reproduce.json").read_text())
    assert record["notebooks"]["02"]["parameters"]["x"] == 2


def test_a_failure_blocks_its_dependents_runs_the_rest_and_is_reported(tmp_path, capsys):
    nbs, out = tmp_path / "nbs", tmp_path / "o"
    nbs.mkdir()
    _notebook(nbs / "01_broken.ipynb", "y = 2", "# the bad cell\nraise RuntimeError('boom at cell two')")
    _notebook(nbs / "03_fine.ipynb", "x = 1")
    _notebook(nbs / "04_after.ipynb", "z = 3")
    code = cli.main(["reproduce", "--profile", "smoke", "--notebooks", str(nbs), "--outputs", str(out), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "01_broken.ipynb" in err and "the bad cell" in err and "RuntimeError: boom at cell two" in err
    assert "04_after.ipynb (not run: it depends on notebook 01, which failed)" in err
    record = json.loads((out / "smoke" / "reproduce.json").read_text())
    assert {n: v["status"] for n, v in record["notebooks"].items()} == {"01": "failed", "03": "ok", "04": "blocked"}
    index = (out / "smoke" / "index.html").read_text()
    assert "boom at cell two" in index and "class='failed'" in index and "html/01_broken.html" in index

    _notebook(nbs / "01_broken.ipynb", "y = 2")  # mended: it and its dependent run, 03 is up to date
    assert _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False)) == {
        "01": "ran", "03": "skipped", "04": "ran"}


def test_a_killed_regeneration_resumes_after_the_last_finished_notebook(tmp_path, monkeypatch):
    import papermill

    nbs, out = tmp_path / "nbs", tmp_path / "o"
    nbs.mkdir()
    for n in ("01", "02", "03"):
        _notebook(nbs / f"{n}_nb.ipynb", "pass")
    original = papermill.execute_notebook

    def killed_at_02(path, *args, **kwargs):
        if Path(path).name.startswith("02"):
            raise KeyboardInterrupt  # as a kill in the middle of notebook 02
        return original(path, *args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", killed_at_02)
    with pytest.raises(KeyboardInterrupt):
        reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False)
    monkeypatch.setattr(papermill, "execute_notebook", original)
    assert _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False)) == {
        "01": "skipped", "02": "ran", "03": "ran"}


def test_a_notebook_that_leaves_an_expected_output_missing_fails(tmp_path, monkeypatch):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "03_quiet.ipynb", "pass")
    monkeypatch.setitem(reproduce_module.EXPECTED_OUTPUTS, "03_quiet.ipynb", ("figures/03_missing.png",))
    with pytest.raises(reproduce_module.NotebookFailed, match="left these outputs missing or empty: "
                                                            "figures/03_missing.png"):
        reproduce("smoke", outputs=tmp_path / "o", notebooks_dir=nbs, progress=False)


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


def test_execution_parameters_reach_the_notebooks_that_take_them_and_never_make_them_stale(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    record = ("from pathlib import Path\n"
              "(Path(figures_dir) / '{n}.json').write_text(repr((executor, jobs, devices, batch_seeds)))")
    _notebook(nbs / "01_runs.ipynb", record.format(n="01"),
              parameters="profile = 'x'\nfigures_dir = '.'\nexecutor = 'local'\njobs = None\ndevices = None\n"
                         "batch_seeds = None")
    _notebook(nbs / "03_none.ipynb", "pass")  # declares no execution parameters: gets none
    call = lambda **kw: _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False, **kw))  # noqa: E731
    assert call(execution={"executor": "local", "jobs": 1, "devices": [0, 1], "address": None,
                           "batch_seeds": 3}) == {"01": "ran", "03": "ran"}
    assert (out / "smoke" / "figures" / "01.json").read_text() == "('local', 1, [0, 1], 3)"
    saved = json.loads((out / "smoke" / "reproduce.json").read_text())["notebooks"]
    assert "jobs" not in saved["03"]["parameters"] and "address" not in saved["01"]["parameters"]
    assert "batch_seeds" not in saved["01"]["parameters"]
    assert call(execution={"executor": "local", "jobs": 2, "batch_seeds": 0}) == {"01": "skipped", "03": "skipped"}


def test_bad_execution_options_are_usage_errors(tmp_path, capsys, monkeypatch):
    for args, message in ((["--jobs", "0"], "--jobs must be >= 1"), (["--devices", "a,b"], "--devices takes GPU"),
                          (["--address", "auto"], "--address names a Ray cluster"),
                          (["--publish", "--only", "03"], "--publish copies a whole regeneration"),
                          (["--batch-seeds", "-1"], "--batch-seeds must be >= 0")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["reproduce", "--profile", "smoke", "--outputs", str(tmp_path), *args])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
