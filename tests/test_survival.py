"""Collapse times, the Kaplan-Meier curve, the log-rank wrapper, and the calibration script under smoke."""

import json
import math

import pytest

from dscd.paper.calibration import calibration_jobs, main, summarise
from dscd.survival import CollapseTime, collapse_time, kaplan_meier, logrank, median_time, permutation_logrank

VALID = {"normal": [["skip_connect", 0, 2]], "reduce": [["skip_connect", 0, 2]]}
EMPTY = {"normal": [], "reduce": [["skip_connect", 0, 2]]}
UNREACHABLE = {"normal": [["skip_connect", 3, 4]], "reduce": [["skip_connect", 0, 2]]}
REDUCE_EMPTY = {"normal": [["skip_connect", 0, 2]], "reduce": []}


def records(*genotypes):
    return [{"epoch": e, "genotype": g} for e, g in enumerate(genotypes, start=1)]


def test_a_run_valid_at_its_end_is_censored_at_its_budget():
    assert collapse_time(records(VALID, EMPTY, VALID)) == CollapseTime(3, False)


def test_the_collapse_epoch_is_the_start_of_the_last_invalid_spell():
    # empty at 2, recovered at 3, empty for good from 4: the collapse is epoch 4, not 2
    assert collapse_time(records(VALID, EMPTY, VALID, EMPTY, UNREACHABLE)) == CollapseTime(4, True)
    assert collapse_time(records(EMPTY, EMPTY)) == CollapseTime(1, True)


def test_only_the_normal_cell_decides_a_collapse():
    assert collapse_time(records(VALID, REDUCE_EMPTY)) == CollapseTime(2, False)


def test_no_records_is_an_error():
    with pytest.raises(ValueError, match="no per-epoch records"):
        collapse_time([])


def test_kaplan_meier_drops_only_at_collapses_and_keeps_censored_runs_at_risk_until_they_leave():
    epochs, surviving = kaplan_meier([CollapseTime(5, True), CollapseTime(8, False), CollapseTime(10, True),
                                      CollapseTime(10, True)])
    assert epochs.tolist() == [0, 5, 10]
    assert surviving.tolist() == pytest.approx([1.0, 0.75, 0.0])


def test_logrank_matches_a_hand_computed_case():
    # a: collapses at 1 and 2; b: collapses at 3, censored at 4.
    # t=1: 4 at risk (2 of a), E_a = 1/2, V = 1/2 * 3/4 * 2/3 = 1/4
    # t=2: 3 at risk (1 of a), E_a = 1/3, V = 1/3 * 2/3 * 2/2 = 2/9
    # t=3: 2 at risk (none of a): E_a = 0, V = 0
    # Z = (O_a - E_a) / sqrt(V) = (2 - 5/6) / sqrt(17/36) = 7 / sqrt(17); p = 2 (1 - Phi(Z))
    result = logrank([CollapseTime(1, True), CollapseTime(2, True)], [CollapseTime(3, True), CollapseTime(4, False)])
    assert result.statistic == pytest.approx(7 / math.sqrt(17))
    assert result.pvalue == pytest.approx(math.erfc(7 / math.sqrt(17) / math.sqrt(2)))
    assert result.collapsed == (2, 1) and result.runs == (2, 2)
    assert result.medians == (1.0, 3.0)


def test_the_permutation_logrank_matches_a_hand_computed_case():
    # The case above, pooled: r1 (1), r2 (2), r3 (3) collapse, r4 censored at 4; C(4, 2) = 6 relabellings.
    # Z by the same sums: {r1,r2} 7/sqrt(17), {r1,r3} 0.78, {r1,r4} -0.39, {r2,r3} 0.39, {r2,r4} -0.78,
    # {r3,r4} -7/sqrt(17): two of six reach |Z| >= 7/sqrt(17), so p = 1/3.
    a, b = [CollapseTime(1, True), CollapseTime(2, True)], [CollapseTime(3, True), CollapseTime(4, False)]
    assert permutation_logrank(a, b) == (pytest.approx(1 / 3), True)
    result = logrank(a, b)
    assert result.permutation_pvalue == pytest.approx(1 / 3)
    assert result.to_dict()["p_permutation"] == pytest.approx(1 / 3)
    # 5 collapsed at 150 against 5 censored at 300: only the observed split and its mirror are as extreme
    assert permutation_logrank([CollapseTime(150, True)] * 5, [CollapseTime(300, False)] * 5)[0] == \
        pytest.approx(2 / 252)


def test_logrank_with_no_collapse_at_all_finds_no_difference():
    result = logrank([CollapseTime(10, False)], [CollapseTime(10, False)])
    assert (result.statistic, result.pvalue, result.medians) == (0.0, 1.0, (None, None))


def test_median_is_none_while_more_than_half_survive():
    assert median_time([CollapseTime(3, True), CollapseTime(9, False), CollapseTime(9, False)]) is None


def test_calibration_jobs_are_seed_major_with_one_folder_per_candidate(tmp_path):
    jobs = calibration_jobs("smoke", ["base", "batch5"], [4], [100, 101], tmp_path)
    assert [j.folder.relative_to(tmp_path).as_posix() for j in jobs] == [
        "base/adam-4-s100", "batch5/adam-4-s100", "base/adam-4-s101", "batch5/adam-4-s101"]
    assert jobs[1].config["batch_size"] == 5 and jobs[0].config["optimizer"] == "adam"
    with pytest.raises(ValueError, match="unknown candidate"):
        calibration_jobs("smoke", ["nope"], [4], [100], tmp_path)
    # NAS-Bench-201's calibration runs DARTS (softmax, Adam), in folders named as the DARTS space's are
    nb201 = calibration_jobs("quick", ["6cells"], [300], [102], tmp_path, space="nas-bench-201")
    assert [j.folder.relative_to(tmp_path).as_posix() for j in nb201] == ["6cells/adam-300-s102"]
    assert (nb201[0].config["space"], nb201[0].config["relaxation"], nb201[0].config["layers"]) == (
        "nas-bench-201", "softmax", 6)


@pytest.mark.slow
def test_the_calibration_script_runs_fairdarts_and_summarises_collapse_times(tmp_path):
    out = tmp_path / "calibration.json"
    assert main(["--profile", "smoke", "--candidates", "base", "--epochs", "3", "--seeds", "100,101",
                 "--runs", str(tmp_path / "runs"), "--json", str(out), "--jobs", "2"]) == 0
    summary = json.loads(out.read_text())
    runs = summary["candidates"]["base"]["budgets"]["3"]["runs"]
    assert [r["seed"] for r in runs] == [100, 101]
    for run in runs:
        assert run["epochs"] == 3 and 1 <= run["epoch"] <= 3 and run["collapsed"] != run["valid_at_end"]
        assert run["seconds"] > 0
    assert summary == summarise("smoke", tmp_path / "runs", ["base"])  # the file is the finished runs' summary


def test_a_calibration_in_parts_keeps_what_earlier_sessions_recorded_and_skips_it(tmp_path, monkeypatch):
    import dscd.executors

    out, runs = tmp_path / "calibration.json", tmp_path / "runs"
    run = {"seed": 100, "epochs": 3, "epoch": 2, "collapsed": True, "valid_at_end": False, "seconds": 1.0,
           "seconds_per_epoch": 0.3, "seconds_to_collapse": 0.6, "normal_valid_per_epoch": "100"}
    earlier = {"candidates": {"base": {"budgets": {"3": {"runs": [run]}}}}}
    out.write_text(json.dumps(earlier))  # a session whose run folders are gone
    ran = []
    monkeypatch.setattr(dscd.executors, "execute", lambda jobs, executor: ran.extend(jobs))
    assert main(["--profile", "smoke", "--candidates", "base", "--epochs", "3", "--seeds", "100,101",
                 "--runs", str(runs), "--json", str(out), "--jobs", "1"]) == 0
    assert [(j.config["seed"], j.config["epochs"]) for j in ran] == [(101, 3)]  # 100 is recorded already
    summary = json.loads(out.read_text())
    assert summary["candidates"]["base"]["budgets"]["3"]["runs"] == [run]
    assert summary["candidates"]["base"]["budgets"]["3"]["invalid_at_end"] == "1/1"
    assert summarise("smoke", runs, ["base"], earlier)["candidates"]["base"]["budgets"]["3"]["collapse_epochs"] == [2]


def test_the_survival_figure_draws_a_step_per_method_and_marks_censored_runs(tmp_path):
    from dscd.paper.plots import plot_survival, save_figure

    fairdarts = [CollapseTime(10, True), CollapseTime(20, True), CollapseTime(30, False)]
    dscd = [CollapseTime(25, True), CollapseTime(30, False), CollapseTime(30, False)]
    fig = plot_survival([("FairDARTS", fairdarts), ("DSCD", dscd)], budget=30)
    ax = fig.axes[0]
    steps = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    marks = [line for line in ax.get_lines() if line.get_marker() == "+"]
    assert len(steps) == 2 and len(marks) == 2
    assert steps[1].get_linewidth() < steps[0].get_linewidth() and steps[1].get_zorder() > steps[0].get_zorder()
    assert list(steps[0].get_ydata()) == pytest.approx([1.0, 2 / 3, 1 / 3, 1 / 3])
    assert list(marks[1].get_xdata()) == [30, 30] and list(marks[1].get_ydata()) == pytest.approx([2 / 3, 2 / 3])
    assert "FairDARTS (2/3 collapsed)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(p.stat().st_size > 0 for p in save_figure(fig, tmp_path / "survival"))


def test_collapse_time_claims_on_known_cases():
    from dscd.paper.claims import collapse_time_claims

    fair = [CollapseTime(e, True) for e in (100, 120, 130, 150, 160)]
    later = [CollapseTime(300, False)] * 5
    delays, prevents = collapse_time_claims(("FairDARTS (300)", fair), ("FairDARTS + DSCD (300)", later), 300)
    assert delays["id"] == "dscd_delays_collapse" and delays["verdict"] == "held"
    assert delays["test"]["p_value"] < 0.05 and delays["test"]["restricted_mean_epochs"]["FairDARTS (300)"] == 132.0
    assert prevents["verdict"] == "held" and prevents["test"]["p_value"] == pytest.approx(1 / 126)
    earlier = [CollapseTime(e, True) for e in (10, 12, 13, 15, 16)]
    delays, prevents = collapse_time_claims(("FairDARTS (300)", fair), ("DSCD", earlier), 300)
    assert delays["verdict"] == "not held" and prevents["verdict"] == "not held"
    same = collapse_time_claims(("FairDARTS (300)", fair), ("DSCD", list(fair)), 300)
    assert same[0]["verdict"] == "inconclusive" and same[0]["test"]["p_value"] == pytest.approx(1.0)
    assert "median collapse epoch FairDARTS (300): 130" in same[0]["evidence"]


def test_the_protocol_rule_needs_8_of_10_each_way_and_never_reads_dscd():
    from dscd.paper.calibration import choose_protocol

    def budget(collapsed):  # one run per entry: True collapsed, False valid at the end
        return {"runs": [{"seed": 100 + i, "collapsed": c, "seconds_per_epoch": 1.0} for i, c in enumerate(collapsed)]}

    summary = {"profile": "quick", "candidates": {
        "8px": {"changes": {"image_size": 8}, "budgets": {"300": budget([True] * 8 + [False]),
                                                           "60": budget([False] * 7 + [True])}},
        "3cells": {"changes": {"layers": 3}, "budgets": {"300": budget([False] * 3)}}}}
    protocol = choose_protocol(summary)
    c = protocol["candidates"]
    assert c["8px"]["long_budget_rule"] == {"60": "failed", "300": "met"}
    assert c["8px"]["short_budget_rule"] == {"60": "open", "300": "failed"}  # 7/8 valid: two seeds to go
    assert c["3cells"]["long_budget_rule"] == {"300": "failed"} and protocol["chosen"] is None
    summary["candidates"]["8px"]["budgets"]["60"] = budget([False] * 8 + [True, True])
    chosen = choose_protocol(summary)["chosen"]
    assert chosen == {"candidate": "8px", "changes": {"image_size": 8}, "long_budget": 300, "short_budget": 60}
    assert "finding" not in protocol  # 8px's 60-epoch short rule was still open: nothing is decided


def test_when_every_candidate_fails_the_long_rule_the_protocol_says_so_with_its_counts():
    from dscd.paper.calibration import choose_protocol

    def budget(collapsed):
        return {"runs": [{"seed": 100 + i, "collapsed": c} for i, c in enumerate(collapsed)]}

    summary = {"profile": "quick", "space": "nas-bench-201", "candidates": {
        "base": {"changes": {}, "budgets": {"60": budget([False] * 10), "300": budget([True] + [False] * 9)}},
        "6cells": {"changes": {"layers": 6}, "budgets": {"300": budget([True, False, False, False])}}}}
    protocol = choose_protocol(summary)
    assert protocol["chosen"] is None
    assert protocol["finding"] == ("no candidate meets the rule: DARTS (softmax, Adam) collapsed in base at 60 epochs "
                                   "0/10; base at 300 epochs 1/10; 6cells at 300 epochs 1/4 calibration seeds, so no "
                                   "budget run here collapses it in 8 of 10")
    summary["candidates"]["6cells"]["budgets"]["300"] = budget([True, True])  # still open: no finding yet
    assert "finding" not in choose_protocol(summary)
