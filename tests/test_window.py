"""The window experiment's predictions, judged on fake runs, and the rules checked against the protocol's text."""

import json
import shutil
from pathlib import Path

from dscd.paper.claims import HELD, INCONCLUSIVE, NOT_HELD
from dscd.paper.window import ALPHA, LATE_EPOCH, MAJORITY, S4_WINDOW, window_claims, window_run
from tests.test_claims import fake_search

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = json.loads((ROOT / "results" / "quick" / "window-protocol.json").read_text())


def _run(runs, name, optimizer, epochs, seed, valid, **config):
    folder = fake_search(runs / "tmp", optimizer, epochs, seed, valid=valid, test_acc=0.3)
    summary = json.loads((folder / "summary.json").read_text())
    summary["config"].update(config)
    (folder / "summary.json").write_text(json.dumps(summary))
    shutil.move(folder, runs / name)


def _runs(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for s in range(5):
        _run(runs, f"adam-300-s{s}", "adam", 300, s, valid=False)          # collapse at 150
        _run(runs, f"dscd-k15-300-s{s}", "dscd", 300, s, valid=False, dscd_K=15)
        _run(runs, f"dscd-k15-t5-300-s{s}", "dscd", 300, s, valid=True, dscd_K=15, dscd_T=5)
    for s in range(3):
        _run(runs, f"dscd-k3000-600-s{s}", "dscd", 600, s, valid=s != 0, dscd_K=3000)  # s0 collapses at 300
    return runs


def test_the_rules_restate_the_registered_protocol():
    text = json.dumps(PROTOCOL["predictions"])
    assert f"[{S4_WINDOW[0]}, {S4_WINDOW[1]}]" in text and f"after epoch {LATE_EPOCH}" in text
    assert f"at least {MAJORITY} of 5 seeds" in text and f"exact p >= {ALPHA}" in text
    assert set(PROTOCOL["arms"]) == {"dscd-k15", "dscd-k15-t5", "dscd-k3000"}


def test_each_prediction_is_judged_with_its_counts(tmp_path):
    result = window_claims(_runs(tmp_path), PROTOCOL)
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    # K=15 collapses exactly as FairDARTS: nothing differs (S1); K=15,T=5 never collapses: 5/5 against 0/5,
    # the split and its mirror of C(10, 5) = 252 relabellings, p = 2/252 < 0.05 (S2 not held)
    assert verdicts == {"S1": HELD, "S2": NOT_HELD, "S3": HELD, "S4": NOT_HELD, "E1": NOT_HELD, "E2": HELD}
    s2 = next(c for c in result["claims"] if c["id"] == "S2")
    assert abs(s2["test"]["p_permutation"] - 2 / 252) < 1e-12 and "p_holm" in s2["test"]
    assert "collapsed at epoch 300" in next(c for c in result["claims"] if c["id"] == "S4")["evidence"]
    assert result["outcome"].startswith("mixed") and result["missing"] == []
    run = result["runs"]["dscd-k15-t5"][0]
    assert run["accepted_normal_after_60"] == 300 - 60 and run["valid_end_current"]
    assert run["frozen_x_best_epochs"] == 0.2  # best_age 1 step of 5


def test_a_missing_run_leaves_its_predictions_pending(tmp_path):
    runs = _runs(tmp_path)
    shutil.rmtree(runs / "dscd-k15-300-s3")
    result = window_claims(runs, PROTOCOL)
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    assert verdicts["S1"] == verdicts["E1"] == INCONCLUSIVE and verdicts["S2"] == NOT_HELD
    assert result["missing"] == ["dscd-k15-300-s3"] and result["outcome"].startswith("pending")


def test_a_real_search_reads_back(tmp_path):
    from dscd.search import run_search
    from tests.test_runfolder import tiny

    run_search(tiny(optimizer="dscd", dscd_T=3), tmp_path / "run", progress=False)
    run = window_run(tmp_path / "run")
    assert run["epochs_best_and_current_differ"] is not None and run["accepted_normal_after_60"] is None


def test_notebook_07_judges_finished_runs_and_writes_its_outputs(tmp_path):
    import papermill

    runs = _runs(tmp_path)
    for name in PROTOCOL["baselines"]["dscd-300"]:  # notebook 02's DSCD(300), drawn beside the arms
        shutil.copytree(runs / "dscd-k15-t5-300-s0", runs / name)
    figures, tables = tmp_path / "figures", tmp_path / "tables"
    papermill.execute_notebook(str(ROOT / "notebooks" / "07_record_window.ipynb"), str(tmp_path / "07.ipynb"),
                               parameters={"runs_dir": str(runs), "figures_dir": str(figures),
                                           "tables_dir": str(tables), "run_searches": False},
                               cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
    from dscd.paper.reproduce import EXPECTED_OUTPUTS

    for name in EXPECTED_OUTPUTS["07_record_window.ipynb"]:
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((figures / "07_record_window.json").read_text())
    assert record["outcome"].startswith("mixed") and len(record["claims"]) == 6


def test_the_ablation_is_left_out_of_a_plain_regeneration():
    from dscd.paper.reproduce import find_notebooks

    names = [p.name[:2] for p in find_notebooks(ROOT / "notebooks")]
    assert "07" not in names and "05" in names
    assert [p.name[:2] for p in find_notebooks(ROOT / "notebooks", ablations=True)][-1] == "07"
    assert [p.name for p in find_notebooks(ROOT / "notebooks", ["7"])] == ["07_record_window.ipynb"]
