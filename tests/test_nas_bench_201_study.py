"""The NAS-Bench-201 study (notebook 06): its registered protocol against the code, its claims, its measures."""

import json
from pathlib import Path

import numpy as np
import pytest

from dscd.nas_bench_201 import Cell, lookup
from dscd.paper.experiments import planned_searches
from dscd.paper.nas_bench_201_study import (
    ALL_SKIP,
    ARMS,
    arm_rows,
    random_cell_reference,
    study_claims,
    study_run,
    table_distribution,
)
from dscd.profiles import METHODS, get_profile
from dscd.search import run_search, search_profile
from dscd.survival import CollapseTime

PROTOCOL = Path(__file__).resolve().parents[1] / "results" / "quick" / "nas-bench-201-protocol.json"


def test_the_registered_protocol_is_what_the_quick_profile_runs(tmp_path):
    protocol = json.loads(PROTOCOL.read_text())
    assert set(protocol["arms"]) == {arm.method for arm in ARMS}
    for method, spec in protocol["arms"].items():
        assert METHODS[method].items() <= {**spec["changes"], "space": "nas-bench-201"}.items()
        jobs = planned_searches("quick", method, tmp_path)
        planned = {(j.config["epochs"], j.config["seed"]) for j in jobs}
        assert planned == {(int(e), s) for e, seeds in spec["budgets"].items() for s in seeds}
        for job in jobs:  # the scale and DSCD's time constants the protocol fixed
            config = job.config
            assert all(config[k] == v for k, v in spec["changes"].items())
            assert (config["image_size"], config["channels"], config["layers"]) == (
                protocol["scale"]["image_size"], protocol["scale"]["channels"], protocol["scale"]["layers"])
            assert (config["dscd_K"], config["dscd_T"]) == (protocol["dscd"]["K"], protocol["dscd"]["T"])
    assert protocol["budget"] == min(get_profile("quick").budgets("nb201-darts"))
    assert protocol["long_budget"] >= 2 * protocol["budget"]


def _runs(accuracies, collapses, budget=300):
    return [{"cifar10 test": a, "cifar10 percentile": a / 2, "collapsed": c is not None,
             "_collapse": CollapseTime(c, True) if c is not None else CollapseTime(budget, False)}
            for a, c in zip(accuracies, collapses, strict=True)]


LABELS = {"nb201-darts": "DARTS (300)", "nb201-darts-dscd": "DARTS + DSCD (300)"}


def test_clear_differences_are_held_after_holm_and_the_table_counts_them():
    runs = {"nb201-darts": _runs([60, 61, 62, 63, 64], [100, 120, 140, 160, 180]),
            "nb201-darts-dscd": _runs([80, 81, 82, 83, 84], [None] * 5)}
    claims = {c["id"]: c for c in study_claims(runs, LABELS, 300)}
    assert set(claims) == {"darts_dscd_more_accurate", "darts_dscd_avoids_collapse", "darts_dscd_collapses_later"}
    accurate = claims["darts_dscd_more_accurate"]
    assert accurate["test"]["p_value"] == pytest.approx(2 / 252)  # exact MWU: 2 of C(10, 5) orderings as extreme
    assert accurate["test"]["common_language_effect"] == 1.0
    assert claims["darts_dscd_avoids_collapse"]["test"]["p_value"] == pytest.approx(2 / 252)  # Fisher, 5/5 vs 0/5
    for c in claims.values():
        assert c["verdict"] == "held" and c["test"]["p_holm"] < 0.05
        assert c["test"]["family"] == "Holm over the 3 test-decided claims of notebook 06"
    rows = arm_rows(runs, LABELS)
    assert [(r["arm"], r["seeds"], r["collapsed"]) for r in rows] == [("DARTS (300)", 5, "5/5"),
                                                                     ("DARTS + DSCD (300)", 5, "0/5")]
    assert rows[1]["CIFAR-10 test (12-epoch)"] == "82.00 ± 1.58 (n=5)"


def test_worse_dscd_is_not_held_and_no_collapse_is_nothing_to_delay():
    runs = {"nb201-darts": _runs([80, 81, 82, 83, 84], [None] * 5),
            "nb201-darts-dscd": _runs([60, 61, 62, 63, 64], [None] * 5)}
    claims = {c["id"]: c for c in study_claims(runs, LABELS, 300)}
    assert claims["darts_dscd_more_accurate"]["verdict"] == "not held"  # significant, the other way
    assert claims["darts_dscd_avoids_collapse"]["verdict"] == "not held"  # 5/5 against 5/5: not more often
    later = claims["darts_dscd_collapses_later"]
    assert later["verdict"] == "not held" and "no run collapsed" in later["evidence"]
    close = {"nb201-darts": _runs([80, 82, 84], [None] * 3), "nb201-darts-dscd": _runs([81, 83, 85], [None] * 3)}
    assert study_claims(close, LABELS, 300)[0]["verdict"] == "inconclusive"


def test_a_claim_whose_direction_goes_against_it_is_not_held_whatever_p():
    """The registered rule: no test can make a claim held whose sample points the other way, and it is not
    left inconclusive either; one in its favour but not significant after Holm is inconclusive."""
    runs = {"nb201-darts": _runs([70, 72, 74], [None, None, 250]),  # one late collapse
            "nb201-darts-dscd": _runs([69, 71, 73], [None, None, 200])}  # slightly worse, an earlier collapse
    claims = {c["id"]: c for c in study_claims(runs, LABELS, 300)}
    for name in ("darts_dscd_more_accurate", "darts_dscd_collapses_later"):
        assert claims[name]["test"]["p_value"] > 0.05 and claims[name]["verdict"] == "not held", name
        assert claims[name]["test"]["significant_verdict"] is None
    assert claims["darts_dscd_avoids_collapse"]["verdict"] == "not held"  # 2/3 against 2/3
    favour = {"nb201-darts": _runs([69, 71, 73], [None, None, 200]),
              "nb201-darts-dscd": _runs([70, 72, 74], [None, None, 250])}
    claims = {c["id"]: c for c in study_claims(favour, LABELS, 300)}
    assert claims["darts_dscd_more_accurate"]["verdict"] == "inconclusive"
    assert claims["darts_dscd_collapses_later"]["verdict"] == "inconclusive"


def test_the_table_references_are_the_shipped_table_s():
    scores = table_distribution("cifar10")
    assert scores.shape == (15_625,)
    reference = random_cell_reference()
    q = reference["cifar10 test quantiles (5, 25, 50, 75, 95 %)"]
    assert q == sorted(q) and reference["cells"] == 15_625
    assert reference["cifar10 test mean"] == pytest.approx(float(np.mean(scores)))
    assert lookup(ALL_SKIP).accuracy["cifar10-test"] == pytest.approx(36.84, abs=0.01)  # the data's spot check
    assert not Cell.from_string(ALL_SKIP).learns


def test_a_run_s_measures_come_from_its_records(tmp_path):
    config = search_profile("smoke", space="nas-bench-201", relaxation="softmax", optimizer="dscd", epochs=3,
                            dscd_T=2)
    summary = run_search(config, tmp_path / "nb201-darts-dscd-3-s0", progress=False)
    run = study_run(tmp_path / "nb201-darts-dscd-3-s0")
    assert run["method"] == "nb201-darts-dscd" and run["epochs"] == 3 and run["seed"] == 0
    assert run["cell"] == summary["lookup"]["cell"]
    assert run["cifar10 test"] == summary["lookup"]["accuracy"]["cifar10-test"]
    assert run["cifar10 percentile"] == summary["lookup"]["percentile"]["cifar10"]
    assert len(run["cifar10 test per epoch"]) == 3 and run["cifar10 test per epoch"][-1] == run["cifar10 test"]
    assert run["collapsed"] == (not Cell.from_string(run["cell"]).learns)
    assert ("x_best" in run) == (summary["lookup_best"]["cell"] != summary["lookup"]["cell"])
