"""The front page, the documentation site and the results rendered from committed files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dscd.cli import main
from dscd.paper.report import (
    MARKER_END,
    KeptRuns,
    benchmarks_page,
    headline,
    keep_runs,
    publish,
    render,
    render_text,
    restore_runs,
    results_page,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_REGION = re.compile(r"<!-- dscd report: [a-z0-9-]+ -->.*?<!-- dscd report end -->", re.S)


def _text_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("**/*.md"))]


def _hand_written(path: Path) -> str:
    """A page's text without its generated regions."""
    return _REGION.sub("", path.read_text())


# ------------------------------------------------------------------------------------ the README


def test_the_readme_is_a_front_page_of_at_most_150_lines():
    assert len(README.read_text().splitlines()) <= 150


def test_the_readme_dscd_example_runs_and_does_what_it_says():
    code = re.search(r"<!-- example: dscd -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert code, "the README's DSCD example lost its marker"
    namespace: dict = {}
    exec(compile(code[1], "README.md", "exec"), namespace)  # its own assert: DSCD ends in the left wells
    x = torch.nn.Parameter(torch.full((2,), 2.5))  # and the comment's claim: Adam alone does not
    adam = torch.optim.Adam([x], lr=0.05)
    for _ in range(400):
        adam.zero_grad()
        ((x**2 - 1) ** 2 + 0.3 * x).sum().backward()
        adam.step()
    assert torch.all(x > 0)


def test_the_readme_and_docs_link_only_to_files_that_exist():
    for page in _text_pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to a missing {target}"


def test_the_text_names_no_machine_date_issue_or_internal_document():
    for page in _text_pages():
        text = _hand_written(page)
        where = page.relative_to(ROOT)
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), f"{where}: a date belongs in a result file's metadata"
        assert not re.search(r"\bissues? \d+", text, re.I), f"{where}: an issue number"
        internal = r"\bSPEC\b|\.\./shared\b|(?<![/\w])shared/|this (2-core )?machine"
        assert not re.search(internal, text), f"{where}: an internal reference"


def test_the_committed_text_is_what_the_committed_result_files_render():
    """No result number is typed by hand: re-rendering changes nothing (else run `dscd report`)."""
    assert main(["report", "--check", "--root", str(ROOT), str(README), str(ROOT / "docs" / "results.md"),
                 str(ROOT / "docs" / "benchmarks.md")]) == 0


# ------------------------------------------------------------------------------------ publish and render


def _fake_outputs(folder: Path, status: str = "ok") -> Path:
    (folder / "figures").mkdir(parents=True)
    (folder / "tables").mkdir()
    (folder / "runs").mkdir()
    (folder / "reproduce.json").write_text(json.dumps({
        "profile": "quick", "version": "9.9", "commit": "abcdef0123456789", "torch": "2.x", "python": "3.11",
        "notebooks": {"01": {"notebook": "01_diagnosis.ipynb", "status": status, "seconds": 90.0},
                      "02": {"notebook": "02_dscd_search.ipynb", "status": "ok", "seconds": 30.0}}}))
    (folder / "figures" / "01_diagnosis.json").write_text(json.dumps({"claims": [
        {"id": "collapse", "claim": "FairDARTS empties its normal cell", "paper": "Section 2",
         "verdict": "held", "evidence": "invalid in 9/10 seeds"},
        {"id": "lost", "claim": "FairDARTS loses validity", "verdict": "held", "evidence": "3/3 against 0/5",
         "test": {"name": "Fisher's exact test (two-sided)", "p_value": 0.017857}}]}))
    (folder / "figures" / "01_figure1.png").write_bytes(b"\x89PNG fake")
    (folder / "figures" / "01_figure1.pdf").write_bytes(b"%PDF fake")  # published: the vector copy for papers
    (folder / "figures" / "01_figure1.svg").write_bytes(b"<svg/>")  # not published
    (folder / "tables" / "table1.md").write_text("| Method | valid |\n|---|---|\n| FairDARTS (300) | 1/10 |\n")
    (folder / "tables" / "table1.csv").write_text("Method,valid\nFairDARTS (300),1/10\n")
    (folder / "runs" / "checkpoint.pt").write_bytes(b"big")  # never published
    return folder


def test_publish_copies_the_small_result_files_and_only_one_regeneration(tmp_path):
    outputs = _fake_outputs(tmp_path / "outputs" / "quick")
    results = tmp_path / "results" / "quick"
    (results / "tables").mkdir(parents=True)
    (results / "tables" / "stale.md").write_text("from an older regeneration")
    written = publish(outputs, results)
    names = sorted(str(p.relative_to(results)) for p in written)
    assert names == ["figures/01_diagnosis.json", "figures/01_figure1.pdf", "figures/01_figure1.png", "reproduce.json",
                     "tables/table1.csv", "tables/table1.md"]
    assert not (results / "tables" / "stale.md").exists()
    assert (results / "tables" / "table1.md").read_text() == (outputs / "tables" / "table1.md").read_text()


def test_publish_refuses_a_regeneration_that_did_not_finish(tmp_path):
    outputs = _fake_outputs(tmp_path / "outputs" / "quick", status="failed")
    with pytest.raises(ValueError, match="01 did not succeed"):
        publish(outputs, tmp_path / "results" / "quick")
    with pytest.raises(FileNotFoundError, match="no reproduce.json"):
        publish(tmp_path, tmp_path / "results" / "quick")
    assert not (tmp_path / "results").exists()


def test_kept_searches_come_back_and_are_reused_not_rerun(tmp_path):
    """A regeneration committed in parts: finished searches kept (records, no checkpoints), put back
    elsewhere, and reused by the executor as finished runs; what would not be reused is not put back."""
    from dscd.executors import execute, run_job
    from dscd.paper.experiments import planned_searches

    outputs, results = tmp_path / "outputs" / "smoke", tmp_path / "results" / "smoke"
    jobs = planned_searches("smoke", "fairdarts", outputs / "runs", budgets=[2], seeds=[0])
    first = execute(jobs)[0]
    (outputs / "runs" / "half-done").mkdir()  # no summary.json: not kept
    assert keep_runs(outputs, results) == ["adam-2-s0"] and keep_runs(outputs, results) == []
    kept = results / "runs" / "adam-2-s0"
    assert sorted(p.name for p in kept.iterdir()) == ["config.json", "genotype.json", "meta.json",
                                                      "metrics.jsonl.gz", "summary.json"]
    elsewhere = tmp_path / "elsewhere" / "smoke"
    assert restore_runs(results, elsewhere) == ["adam-2-s0"] and restore_runs(results, elsewhere) == []
    again = run_job(planned_searches("smoke", "fairdarts", elsewhere / "runs", budgets=[2], seeds=[0])[0])
    assert again == first and not (elsewhere / "runs" / "adam-2-s0" / "checkpoint.pt").exists()  # reused
    summary = json.loads((kept / "summary.json").read_text())
    (kept / "summary.json").write_text(json.dumps({**summary, "data_fingerprint": "other data"}))
    assert restore_runs(results, tmp_path / "third" / "smoke") == []


def test_searches_are_kept_while_the_regeneration_runs_not_only_at_its_end(tmp_path):
    """A call killed outright (the end of a session) runs no cleanup: what finished must already be kept."""
    outputs, results = tmp_path / "outputs" / "quick", tmp_path / "results" / "quick"
    with KeptRuns(outputs, results, every=0.02) as keeping:
        run = outputs / "runs" / "adam-3-s0"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
        (run / "summary.json").write_text("{}")  # written last by a search: the run has finished
        deadline = time.monotonic() + 600  # only a guard against a hang: the keeper looks every 0.02 s
        while not keeping.kept and time.monotonic() < deadline:
            time.sleep(0.01)
        assert keeping.kept == ["adam-3-s0"]  # kept before the call ended
        assert (results / "runs" / "adam-3-s0" / "metrics.jsonl.gz").is_file()
    assert keeping.kept == ["adam-3-s0"]  # and not twice


def test_searches_are_kept_when_the_working_directory_changes_under_the_keeper(tmp_path, monkeypatch):
    """papermill runs each notebook with the process' working directory changed: relative folders given to
    the keeper (dscd reproduce's defaults) must still name the regeneration's folders."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "quick" / "runs" / "adam-3-s0"
    with KeptRuns("outputs/quick", "results/quick", every=0.02) as keeping:
        elsewhere = tmp_path / "notebooks"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)  # as papermill's cwd= does while a notebook runs
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
        (run / "summary.json").write_text("{}")
        deadline = time.monotonic() + 600  # only a guard against a hang
        while not keeping.kept and time.monotonic() < deadline:
            time.sleep(0.01)
    assert keeping.kept == ["adam-3-s0"]
    assert (tmp_path / "results" / "quick" / "runs" / "adam-3-s0" / "summary.json").is_file()


def test_the_headline_shows_table_1_the_verdicts_and_a_figure_of_the_largest_profile(tmp_path):
    publish(_fake_outputs(tmp_path / "outputs" / "quick"), tmp_path / "results" / "quick")
    text = headline(tmp_path)
    assert "`quick`" in text and "| FairDARTS (300) | 1/10 |" in text
    assert "Scale: searches on CIFAR-10 at 8x8" in text  # what the scale is, from the profile (one place)
    assert "*FairDARTS empties its normal cell* (Section 2): **held**. invalid in 9/10 seeds [notebook 01]" in text
    assert ("*FairDARTS loses validity*: **held**. 3/3 against 0/5; Fisher's exact test (two-sided), p = 0.0179 "
            "[notebook 01]") in text  # the test a verdict rests on, from the claim's own record
    assert "![01_figure1](results/quick/figures/01_figure1.png)" in text
    (tmp_path / "results" / "quick" / "figures" / "02_survival.png").write_bytes(b"\x89PNG fake")
    assert "![02_survival](results/quick/figures/02_survival.png)" in headline(tmp_path)  # the central claim's
    assert "NAS-Bench-201" not in headline(tmp_path)  # no notebook 06 table published: no section
    table = "| arm | seeds | collapsed |\n|---|---|---|\n| DARTS (300) | 5 | 0/5 |\n"
    (tmp_path / "results" / "quick" / "tables" / "06_nas_bench_201.md").write_text(table)
    text = headline(tmp_path)
    assert "NAS-Bench-201 (notebook 06" in text and table in text and "12-epoch" in text
    page = results_page(tmp_path)
    assert "2.0 min in all" in page and "| 01 | 01_diagnosis.ipynb | ok | 1.5 |" in page
    assert "../results/quick/figures/01_figure1.png" in page


def test_the_cost_of_a_regeneration_from_scratch_comes_from_its_benchmark(tmp_path):
    publish(_fake_outputs(tmp_path / "outputs" / "quick"), tmp_path / "results" / "quick")
    assert "From scratch" not in results_page(tmp_path)  # no benchmark: no sentence
    folder = tmp_path / "results" / "benchmarks"
    folder.mkdir(parents=True)
    rows = [["01", "FairDARTS searches", 1.0, 30.0, "estimate"], ["02", "DSCD", 3.0, 90.0, "estimate"],
            ["03", "run whole", None, 0.2, "measured"], ["all", "2 workers", 4.0, 120.2, "sum"]]
    (folder / "regeneration-quick-cpu2.json").write_text(json.dumps({"cores": 2, "table": {
        "columns": ["notebook", "what", "CPU (h)", "wall (min)", "how"], "rows": rows}}))
    sentence = ("From scratch, `make figures` takes about 2.0 h on 2 CPU cores (minutes per notebook: 01 30, 02 90, "
                "03 0.2), estimated from parts measured with nothing else running ([regeneration-quick-cpu2.json]")
    region = render_text(f"<!-- dscd report: cost -->\n{MARKER_END}", tmp_path)
    assert sentence + "(results/benchmarks/regeneration-quick-cpu2.json))." in region
    assert sentence + "(../results/benchmarks/regeneration-quick-cpu2.json))." in results_page(tmp_path)
    # a record of the batched engine: make figures' own wall time, and every seed in its own process beside it
    rows = [["01", "FairDARTS searches", 1.0, 30.0, 12.0, "estimate"], ["03", "run whole", None, 0.2, 0.2, "measured"],
            ["all", "2 workers", 1.0, 30.2, 12.2, "sum"]]
    (folder / "regeneration-quick-cpu2.json").write_text(json.dumps({"cores": 2, "batch_seeds": {
        "darts": 5, "nas-bench-201": 0}, "table": {
        "columns": ["notebook", "what", "CPU (h)", "wall, one seed a process (min)", "wall (min)", "how"],
        "rows": rows}}))
    assert ("about 0.2 h on 2 CPU cores with 5 seeds of a DARTS search in one process (0.5 h with every seed in "
            "its own process; minutes per notebook: 01 12, 03 0.2), estimated") in results_page(tmp_path)


def test_the_calibration_table_says_what_reaching_each_candidates_collapse_cost(tmp_path):
    runs = [{"seed": 100 + i, "epoch": e, "collapsed": c}
            for i, (e, c) in enumerate([(40, True), (60, True), (80, False), (30, True)])]
    data = {"profile": "quick", "timing": "shared machine", "candidates": {
        "fast": {"changes": {"image_size": 8}, "budgets": {"80": {"runs": runs, "mean_seconds_per_epoch": 6.0}}},
        "slow": {"changes": {}, "budgets": {"80": {"runs": [{"seed": 100, "epoch": 80, "collapsed": False}],
                                                   "mean_seconds_per_epoch": 9.0}}}}}
    (tmp_path / "results" / "calibration").mkdir(parents=True)
    (tmp_path / "results" / "calibration" / "quick.json").write_text(json.dumps(data))
    page = results_page(tmp_path)
    # Kaplan-Meier median 40 (the second collapse of four runs) x 6 s; the median never reached: the whole budget
    assert "| fast | image_size=8 | 80 | 3/4 | 40 60 30 | 6.00 | 4 | 100 101 102 103 |" in page
    assert "| slow | the profile | 80 | 0/1 | - | 9.00 | > 12 | 100 |" in page
    assert "Times: shared machine." in page


def test_render_replaces_marked_regions_and_check_reports_drift(tmp_path, capsys):
    publish(_fake_outputs(tmp_path / "outputs" / "quick"), tmp_path / "results" / "quick")
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nhand text\n<!-- dscd report: headline -->\nold numbers\n{MARKER_END}\ntail\n")
    assert main(["report", "--check", "--root", str(tmp_path), str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert render([page], tmp_path) == [page]
    text = page.read_text()
    assert "old numbers" not in text and "| FairDARTS (300) | 1/10 |" in text
    assert text.startswith("# Title\n\nhand text\n") and text.endswith(f"{MARKER_END}\ntail\n")
    assert main(["report", "--check", "--root", str(tmp_path), str(page)]) == 0
    assert render([page], tmp_path) == []  # idempotent


def test_an_unknown_region_or_missing_file_is_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown report region 'tabel1'"):
        render_text(f"<!-- dscd report: tabel1 -->\n{MARKER_END}", tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "nope.md")])
    assert exc.value.code == 2 and "no such file" in capsys.readouterr().err


def test_benchmark_records_render_as_tables(tmp_path):
    folder = tmp_path / "results" / "benchmarks"
    folder.mkdir(parents=True)
    (folder / "supernet-quick-cpu2.json").write_text(json.dumps({
        "title": "Supernet", "command": "python benchmarks/bench_supernet.py", "date": "d", "cores": 2,
        "processor": "x86_64", "torch": "2.x", "others_cpu_percent": 0.5, "notes": "ratios only",
        "table": {"columns": ["mode", "iteration (s)", "ratio"],
                  "rows": [["plain", 0.9751, 1.0], ["shared", 0.75, 0.77]]}}))
    text = benchmarks_page(tmp_path)
    assert "### Supernet" in text and "| shared | 0.75 | 0.77 |" in text
    assert "other processes using 0% of the CPUs" in text
    assert "ratios only" in text and "results/benchmarks/supernet-quick-cpu2.json" in text


# ------------------------------------------------------------------------------------ the site


@pytest.mark.slow
def test_the_documentation_builds_without_a_warning(tmp_path):
    """`make docs`: autodoc of every module, the CLI reference from build_parser, the notebooks from their
    jupytext sources, the results pages; a broken reference or a renamed function fails here."""
    pytest.importorskip("sphinx")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path / "html")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cli = (tmp_path / "html" / "reference" / "cli.html").read_text()
    assert "--publish" in cli and "dscd report" in cli.replace("<span class=\"pre\">", "")
    assert "\u2013only" not in cli and "&#8211;only" not in cli and "--only" in cli  # options as typed, no en dash
    assert (tmp_path / "html" / "notebooks" / "02_dscd_search.html").is_file()
    api = (tmp_path / "html" / "reference" / "api.html").read_text()
    assert "collapse_time_claims" in api and "DSCDEngine" in api
    # intersphinx from the committed inventories, without the network: torch and Python types are links
    assert 'href="https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor"' in api
    assert 'href="https://docs.python.org/3/library/pathlib.html#pathlib.Path"' in api
    assert "furo" in (tmp_path / "html" / "index.html").read_text()
    # a notebook page shows the figures its notebook published, captioned, though the build runs no code
    published = [p.stem for p in (ROOT / "results" / "quick" / "figures").glob("02_*.png")]
    if published:
        page = (tmp_path / "html" / "notebooks" / "02_dscd_search.html").read_text()
        assert page.count("<img") >= len(published) and "figcaption" in page


def test_every_published_figure_has_a_caption():
    from dscd.paper.plots import figure_caption

    figures = sorted(p.name for p in ROOT.glob("results/*/figures/*.png"))
    assert figures, "no published figure to check"
    assert [f for f in figures if figure_caption(f) is None] == []
    assert figure_caption("02_genotype_dscd-300-s0.png").startswith("The discretised cells")
    assert figure_caption("99_unknown.png") is None


def test_notebook_figures_are_captioned_and_smoke_is_marked_plumbing_only(tmp_path):
    from dscd.paper.report import notebook_figures

    (tmp_path / "results" / "smoke" / "figures").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "reproduce.json").write_text("{}")
    assert notebook_figures(tmp_path, "02_dscd_search", "../../") == ""
    (tmp_path / "results" / "smoke" / "figures" / "02_survival.png").write_bytes(b"png")
    text = notebook_figures(tmp_path, "02_dscd_search", "../../")
    assert "```{figure} ../../results/smoke/figures/02_survival.png" in text
    assert "Kaplan-Meier" in text and "Plumbing only" in text


def test_the_headline_states_the_scale_a_bottom_line_and_a_key_to_table_1():
    from dscd.paper.report import TABLE1_KEY, headline, results_page

    text = headline(ROOT)
    assert "Scale: searches on CIFAR-10 at 8x8, 50 images per class, C = 4, 5 cells" in text
    assert "do not compare with the paper's 97 %" in text
    assert "**Bottom line**" in text and "*DSCD delays FairDARTS' collapse*: **" in text
    assert TABLE1_KEY in text and "*Search Test*" in TABLE1_KEY
    if (ROOT / "results" / "smoke" / "reproduce.json").is_file():
        page = results_page(ROOT)
        smoke = page[page.index("## The `smoke` profile"):]
        assert smoke.split("\n\n")[1].startswith("**Plumbing only**")


def test_the_nas_bench_201_bottom_line_gives_each_claim_per_relaxation():
    from dscd.paper.report import _nas_bench_201_bottom_line

    claims = [("06", {"id": "darts_dscd_more_accurate", "verdict": "not held"}),
              ("06", {"id": "fairdarts_dscd_more_accurate", "verdict": "inconclusive"}),
              ("06", {"id": "darts_dscd_avoids_collapse", "verdict": "held"}),
              ("02", {"id": "dscd_delays_collapse", "verdict": "held"})]
    assert _nas_bench_201_bottom_line(claims, "quick") == (
        "**Bottom line** (NAS-Bench-201 at `quick`, DSCD against Adam at the same budget): *more accurate cells*: "
        "DARTS **not held**, FairDARTS **inconclusive**; *the collapse avoided more often*: DARTS **held**.\n")
    assert _nas_bench_201_bottom_line(claims[3:], "quick") == ""


def test_every_public_callable_has_a_docstring():
    """Each name in a module's ``__all__`` that is a function or class, and each public method or property of
    such a class, says what it does (inherited from the protocol it implements counts)."""
    import importlib
    import inspect
    import pkgutil

    import dscd

    missing = []
    for info in pkgutil.walk_packages(dscd.__path__, "dscd."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ != module.__name__:
                continue
            if not inspect.getdoc(obj) or (inspect.isclass(obj) and obj.__doc__ is None):
                missing.append(f"{info.name}.{name}")
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                    if (not attr.startswith("_") and inspect.isfunction(function)
                            and not inspect.getdoc(getattr(obj, attr)) and not getattr(value, "__doc__", None)):
                        missing.append(f"{info.name}.{name}.{attr}")
    assert not missing, f"{len(missing)} public callables without a docstring: {', '.join(missing)}"
