"""Claims judged from run folders: verdict rules, Fisher's exact test, seed-aggregated Table 1."""

import json
from pathlib import Path

import pytest

from dscd.genotype import Genotype
from dscd.paper.claims import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    adjust_family,
    collapse_claims,
    compare_valid_counts,
    dscd_claims,
    eval_claims,
    fisher_exact,
    format_mean_sd,
    holm,
    search_outcome,
    verdict_every_seed,
)
from dscd.paper.experiments import Evaluation, table1_by_budget

STEPS = 5  # steps per epoch of the fake runs


def fake_search(root: Path, optimizer: str, epochs: int, seed: int, valid: bool, test_acc: float,
                refresh: bool = False, stuck: bool = False) -> Path:
    """A finished search folder with what the claims read: summary.json and metrics.jsonl."""
    folder = root / f"{optimizer}{'-refresh' if refresh else ''}-{epochs}-s{seed}"
    folder.mkdir(parents=True)
    config = {"optimizer": optimizer, "epochs": epochs, "seed": seed, "dscd_refresh_best": refresh}
    records = []
    for epoch in range(1, epochs + 1):
        ends_valid = valid or epoch < epochs // 2  # an invalid run collapses half-way
        record = {"epoch": epoch, "steps": STEPS, "valid": ends_valid, "alpha_loss": 1.0 + epoch / 10,
                  "invalid_reason": None if ends_valid else "the normal cell keeps no edge",
                  "kept_edges_normal": 6 if ends_valid else 0, "kept_edges_reduce": 8,
                  "mean_weight_normal": 0.5 - 0.4 * epoch / epochs, "mean_weight_reduce": 0.5,
                  "test_acc": test_acc if epoch == epochs else None,
                  "genotype": {"normal": [["skip_connect", 0, 2]] if ends_valid else [],
                               "reduce": [["max_pool_3x3", 0, 2]]}}
        if optimizer == "dscd":
            age = epoch * STEPS if stuck else 1
            record["dscd"] = {"best_age": age, "at_best": stuck, "accepted": epoch, "global_steps": 2 * epoch,
                              "global_phases": epoch, "phases_accepting": 1 if stuck else epoch,
                              "local_improvements": 3, "refreshes": epoch if refresh else 0, "best_value": 0.5,
                              "accepted_normal": epoch, "accepted_reduce": 0}
        records.append(record)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps({"config": config, "final": records[-1],
                                                     "valid": records[-1]["valid"]}))
    return folder


def test_fisher_exact_on_hand_computed_tables():
    # 3/3 against 0/3: the observed table is one of the two most extreme of C(6,3) = 20 equally likely ones
    assert fisher_exact(3, 3, 0, 3) == pytest.approx(2 / 20)
    # 2/3 against 0/3: P(a) = C(3,a) C(3,2-a) / C(6,2) = 0.2, 0.6, 0.2 for a = 0, 1, 2; two-sided 0.2 + 0.2
    assert fisher_exact(2, 3, 0, 3) == pytest.approx(0.4)
    assert fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252)
    assert fisher_exact(1, 2, 1, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        fisher_exact(4, 3, 0, 3)


def test_verdicts_and_the_comparison_say_when_nothing_can_be_significant():
    # a claim about every seed: one counterexample refutes it; no seed at all decides nothing
    assert [verdict_every_seed(k, 3) for k in (3, 0, 2)] == [HELD, NOT_HELD, NOT_HELD]
    assert verdict_every_seed(0, 0) == INCONCLUSIVE
    three = compare_valid_counts(("DSCD", 3, 3), ("FairDARTS", 0, 3))
    assert three["verdict"] == INCONCLUSIVE and three["test"]["p_value"] == pytest.approx(0.1)
    assert "no difference can be significant at 5%" in three["test"]["note"]
    assert three["evidence"] == "DSCD: valid in 3/3 seeds; FairDARTS: valid in 0/3"
    five = compare_valid_counts(("DSCD", 5, 5), ("FairDARTS", 0, 5))
    assert five["verdict"] == HELD and five["test"]["p_value"] < 0.05
    assert compare_valid_counts(("DSCD", 1, 3), ("FairDARTS", 2, 3))["verdict"] == NOT_HELD


def test_holm_on_a_hand_computed_family():
    # sorted 0.01, 0.03, 0.04 with m = 3: 0.03, max(0.06, 0.03), max(0.04, 0.06) -> back in the given order
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == pytest.approx([0.2]) and holm([]) == []


def test_the_family_is_holm_adjusted_and_verdicts_follow_the_adjusted_p():
    significant = compare_valid_counts(("DSCD", 5, 5), ("FairDARTS", 0, 5))   # p = 2/252
    reversed_ = compare_valid_counts(("DSCD", 0, 5), ("FairDARTS", 5, 5))     # not held by direction
    borderline = compare_valid_counts(("DSCD", 4, 5), ("FairDARTS", 0, 5))    # p = 0.0476
    counts_only = {"id": "every", "verdict": HELD, "test": {"name": "x", "p_value": 0.9}}
    claims = [{"id": name, **c} for name, c in (("a", significant), ("b", reversed_), ("c", borderline))]
    adjust_family([*claims, counts_only], "a test family")
    # tied at 2/252: 3 x and 2 x that, made non-decreasing, so both 3 x 2/252; then 1 x 1/21
    assert [c["test"]["p_holm"] for c in claims] == pytest.approx([3 * 2 / 252, 3 * 2 / 252, 1 / 21])
    assert [c["verdict"] for c in claims] == [HELD, NOT_HELD, HELD]
    assert "3 test-decided claims of a test family" in claims[0]["test"]["family"]
    assert counts_only["verdict"] == HELD and "p_holm" not in counts_only["test"]
    weak = [{"id": "w", **compare_valid_counts(("DSCD", 4, 5), ("FairDARTS", 0, 5))} for _ in range(2)]
    assert [c["verdict"] for c in adjust_family(weak, "two")] == [INCONCLUSIVE, INCONCLUSIVE]  # 0.0952 each


def test_table1_by_budget_folds_seeds(tmp_path):
    adam = [fake_search(tmp_path, "adam", 20, s, valid=False, test_acc=a) for s, a in enumerate((0.30, 0.32, 0.34))]
    dscd = [fake_search(tmp_path, "dscd", 20, s, valid=s != 1, test_acc=0.4) for s in range(3)]
    genotype = Genotype(normal=(("skip_connect", 0, 2),), reduce=(("max_pool_3x3", 0, 2),))
    evaluations = [Evaluation("x", genotype, tmp_path / "t", str(dscd[0]), summary={"test_acc": 0.41}, method="dscd"),
                   Evaluation("x", genotype, tmp_path / "t", str(dscd[2]), summary={"test_acc": 0.43}, method="dscd"),
                   Evaluation("x", genotype, tmp_path / "t", str(dscd[1]), invalid_reason="empty", method="dscd")]
    rows = table1_by_budget(adam + dscd, evaluations)
    assert [r["Method"] for r in rows] == ["FairDARTS (20)", "FairDARTS + DSCD (20)"]
    fd, ds = rows
    assert fd["Final Arch. valid"] == "0/3" and fd["Search Test"] == "32.00 ± 2.00 (n=3)"
    assert fd["kept edges normal (per seed)"] == "0 0 0" and fd["Eval. Test"] == "-"
    assert ds["Final Arch. valid"] == "2/3" and ds["Eval. Test"] == "42.00 ± 1.41 (n=2)"  # the valid ones only
    assert ds["runs"] == "dscd-20-s0 dscd-20-s1 dscd-20-s2" and "Eval. Test (paper)" not in ds
    assert format_mean_sd([0.5], digits=1) == "0.5 (n=1)"


def test_collapse_and_dscd_claims_carry_their_counts(tmp_path):
    adam = ([fake_search(tmp_path, "adam", 10, s, valid=True, test_acc=0.3) for s in range(3)]
            + [fake_search(tmp_path, "adam", 40, s, valid=False, test_acc=0.3) for s in range(3)])
    claims = {c["id"]: c for c in collapse_claims(adam)}
    assert claims["fairdarts_short_valid"]["verdict"] == HELD
    assert claims["fairdarts_collapses"]["verdict"] == HELD
    assert claims["fairdarts_collapses"]["evidence"] == "FairDARTS (40): normal cell empty in 3/3 seeds"
    assert claims["fairdarts_collapses"]["invalid_from_epoch"] == {f"adam-40-s{s}": 20 for s in range(3)}
    assert claims["fairdarts_validity_lost_with_budget"]["test"]["p_value"] == pytest.approx(0.1)

    dscd = [fake_search(tmp_path, "dscd", 40, s, valid=True, test_acc=0.3, stuck=s == 0) for s in range(3)]
    ablation = [fake_search(tmp_path, "dscd", 40, s, valid=s > 0, test_acc=0.3, refresh=True) for s in range(3)]
    result = dscd_claims(dscd, adam, ablation)
    by_id = {c["id"]: c for c in result["claims"]}
    assert by_id["dscd_valid_every_budget"]["verdict"] == HELD
    compared = by_id["dscd_valid_where_fairdarts_is_not"]
    assert compared["verdict"] == INCONCLUSIVE and compared["test"]["table"] == [[3, 0], [0, 3]]
    # time to collapse at 40 epochs: FairDARTS collapses at epoch 20 in 3/3 seeds, DSCD never (censored at 40);
    # one tied event time: Z = (3 - 1.5) / sqrt(0.45), p = erfc(Z / sqrt 2) = 0.0253; Holm over the family of
    # two test-decided claims (this and the valid counts' p = 0.1) doubles it past 0.05: inconclusive
    delays = by_id["dscd_delays_collapse"]
    assert delays["test"]["p_value"] == pytest.approx(0.02535, abs=1e-4)
    assert delays["test"]["p_holm"] == pytest.approx(2 * delays["test"]["p_value"])
    assert delays["verdict"] == INCONCLUSIVE and compared["test"]["p_holm"] == pytest.approx(0.1)
    assert delays["test"]["p_permutation"] == pytest.approx(2 / 20)  # the split and its mirror of C(6, 3)
    assert delays["test"]["restricted_mean_epochs"] == {"FairDARTS (40)": 20, "FairDARTS + DSCD (40)": 40}
    assert by_id["dscd_prevents_collapse"]["verdict"] == HELD
    stuck = by_id["dscd_valid_not_stuck"]
    assert stuck["verdict"] == NOT_HELD and stuck["evidence"].startswith("x_best still changing in 2/3 valid runs")
    frozen = by_id["dscd_valid_is_frozen"]  # no invalid DSCD run to set beside the valid ones
    assert frozen["verdict"] == INCONCLUSIVE and "1/3 valid runs and 0/0 invalid runs" in frozen["evidence"]
    assert [r["dscd"]["stuck"] for r in result["runs"]] == [True, False, False]
    a = result["ablation_refresh_best"]
    assert a["evidence"] == ("FairDARTS + DSCD, y_best refreshed (40): valid in 2/3 seeds; "
                             "FairDARTS + DSCD (40): valid in 3/3")
    assert a["stuck"] == {"FairDARTS + DSCD, y_best refreshed (40)": "0/3", "FairDARTS + DSCD (40)": "1/3"}


def test_eval_claim_needs_two_trained_architectures_a_side(tmp_path):
    g = Genotype(normal=(("skip_connect", 0, 2),), reduce=(("max_pool_3x3", 0, 2),))
    def e(label, acc, method):
        return Evaluation(label, g, tmp_path, "src", summary={"test_acc": acc}, method=method)

    few = eval_claims([e("FairDARTS + DSCD (40) seed 0", 0.5, "dscd"), e("FairDARTS (10) seed 0", 0.4, "fairdarts")])
    assert few[0]["verdict"] == INCONCLUSIVE and "no test" in few[0]["evidence"]
    clear = eval_claims([e(f"FairDARTS + DSCD (40) seed {s}", 0.60 + s / 1000, "dscd") for s in range(3)]
                        + [e(f"FairDARTS (10) seed {s}", 0.40 + s / 1000, "fairdarts") for s in range(3)]
                        + [e("DARTS_V2 (published genotype)", 0.99, "published:DARTS_V2")]
                        + [e("FairDARTS + DSCD, y_best refreshed (40)", 0.99, "dscd-refresh")])
    assert clear[0]["verdict"] == HELD and clear[0]["test"]["p_value"] < 0.05
    assert clear[0]["evidence"] == (
        "Eval. Test (%) of the valid final architectures, pooled over budgets: FairDARTS + DSCD 60.10 ± 0.10 (n=3) "
        "(FairDARTS + DSCD (40) seed 0, FairDARTS + DSCD (40) seed 1, FairDARTS + DSCD (40) seed 2), FairDARTS "
        "40.10 ± 0.10 (n=3) (FairDARTS (10) seed 0, FairDARTS (10) seed 1, FairDARTS (10) seed 2)")
    assert clear[0]["test"]["pooled_runs"]["fairdarts"] == [f"FairDARTS (10) seed {s}" for s in range(3)]
    # the verdict follows the method, not the display label: a renamed label changes nothing but the names
    renamed = eval_claims([e(f"DSCD run {s}", 0.60 + s / 1000, "dscd") for s in range(3)]
                          + [e(f"baseline {s}", 0.40 + s / 1000, "fairdarts") for s in range(3)])
    assert renamed[0]["verdict"] == HELD and renamed[0]["test"]["p_value"] == clear[0]["test"]["p_value"]


def test_an_outcome_says_which_point_is_valid(tmp_path):
    folder = fake_search(tmp_path, "dscd", 4, 0, valid=False, test_acc=0.3)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "best_valid": True}))  # x_best kept a valid cell
    outcome = search_outcome(folder)
    assert outcome.valid is False and outcome.valid_best is True
    assert outcome.to_dict()["valid_x_best"] is True
    assert search_outcome(fake_search(tmp_path, "adam", 4, 0, valid=True, test_acc=0.3)).valid_best is None
