"""The NAS-Bench-201 study (notebook 06): does DSCD on the architecture weights find better cells, and does it
escape the collapse into parameter-free cells?

Four arms search NAS-Bench-201's cell (:data:`ARMS`): DARTS (softmax) and FairDARTS (sigmoid, zero-one
loss), each with Adam or with DSCD on alpha, at the profile's budget ``B``; the DSCD arms also at a longer
one. Every found cell is looked up in the shipped table (:mod:`dscd.nas_bench_201`: accuracies after
NAS-Bench-201's **12-epoch** training), so the arms are compared with numbers the field uses, through ranks
where the published figures are 200-epoch ones (:data:`PUBLISHED`). The protocol (scale, budgets, seeds,
DSCD's time constants) was registered in ``results/quick/nas-bench-201-protocol.json`` before any DSCD run
in this space; :func:`study_claims` judges its claims, Holm-adjusted as one family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dscd.paper.claims import HELD, INCONCLUSIVE, NOT_HELD, adjust_family, claim_record, compare_counts
from dscd.runfolder import JsonLines, finished_summary

__all__ = ["ALL_SKIP", "ARMS", "PUBLISHED", "Arm", "arm_rows", "random_cell_reference", "study_claims",
           "study_run", "table_distribution"]


@dataclass(frozen=True)
class Arm:
    """One arm of the study: its method id (:data:`dscd.profiles.METHODS`), relaxation and optimiser."""

    method: str
    relaxation: str  # "darts" (softmax) or "fairdarts" (sigmoid + zero-one loss): the pairs compared
    dscd: bool


#: The study's arms, in the order tables and figures show them.
ARMS: tuple[Arm, ...] = (Arm("nb201-darts", "darts", False), Arm("nb201-darts-dscd", "darts", True),
                         Arm("nb201-fairdarts", "fairdarts", False), Arm("nb201-fairdarts-dscd", "fairdarts", True))

#: The all-``skip_connect`` cell: where DARTS' collapse ends in NAS-Bench-201 (its paper's section 5).
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"

#: Published NAS-Bench-201 results (test accuracy %, mean over the papers' runs, after NAS-Bench-201's
#: 200-epoch training, searched on CIFAR-10): method, CIFAR-10, CIFAR-100, ImageNet16-120, source. The
#: numbers here are 12-epoch lookups, so only cells (DARTS' all-skip cell) and ranks compare with these.
PUBLISHED: tuple[tuple[str, float, float, float, str], ...] = (
    ("DARTS-V1", 54.30, 15.61, 16.32, "Dong & Yang, NAS-Bench-201 (ICLR 2020), Table 5; the all-skip cell"),
    ("DARTS-V2", 54.30, 15.61, 16.32, "Dong & Yang, NAS-Bench-201 (ICLR 2020), Table 5; the all-skip cell"),
    ("GDAS", 93.61, 70.70, 41.71, "Dong & Yang, NAS-Bench-201 (ICLR 2020), Table 5"),
    ("SETN", 87.64, 59.05, 32.52, "Dong & Yang, NAS-Bench-201 (ICLR 2020), Table 5"),
    ("DrNAS", 94.36, 73.51, 46.34, "Chen et al., DrNAS (ICLR 2021), Table 3"),
    ("beta-DARTS", 94.36, 73.51, 46.34, "Ye et al., beta-DARTS (CVPR 2022), Table 1"),
    ("optimum", 94.37, 73.51, 47.31, "Dong & Yang, NAS-Bench-201 (ICLR 2020), Table 5: the best cell"),
)

_DATASETS = (("cifar10", "cifar10-test"), ("cifar100", "cifar100-test"), ("imagenet16-120", "imagenet-test"))


def _measures(lookup: Mapping[str, Any]) -> dict[str, Any]:
    """A looked-up cell's measures: its string, test accuracies (%), CIFAR-10 rank percentile, edges."""
    out: dict[str, Any] = {"cell": lookup["cell"]}
    out.update({f"{name} test": lookup["accuracy"][column] for name, column in _DATASETS})
    out["cifar10 percentile"] = lookup["percentile"]["cifar10"]
    out["parameterised edges"] = lookup["parameterised_edges"]
    return out


def study_run(folder: str | Path) -> dict[str, Any]:
    """One finished search of the study: its method and seed, its final cell's measures (:func:`_measures`),
    its collapse (:func:`dscd.survival.collapse_time`: the first epoch from which the cell stays collapsed,
    censored at the budget), the looked-up CIFAR-10 accuracy per epoch, and for DSCD, ``x_best``'s cell
    with its measures where it differs from the final one."""
    from dscd.profiles import config_method
    from dscd.survival import collapse_time

    folder = Path(folder)
    summary = finished_summary(folder)
    records = JsonLines(folder / "metrics.jsonl").read()
    collapse = collapse_time(records)
    run = {"run": folder.name, "method": config_method(summary["config"]), "seed": summary["config"]["seed"],
           "epochs": summary["epochs"], **_measures(summary["lookup"]), "collapsed": collapse.collapsed,
           "collapse epoch": collapse.epoch if collapse.collapsed else None,
           "cifar10 test per epoch": [r["lookup"]["accuracy"]["cifar10-test"] for r in records],
           "_collapse": collapse}
    best = summary.get("lookup_best")
    if best is not None and best["cell"] != summary["lookup"]["cell"]:
        run["x_best"] = _measures(best)
    return run


def table_distribution(dataset: str = "cifar10") -> np.ndarray:
    """Every cell's test accuracy (%, 12-epoch) on ``dataset`` (cifar10, cifar100 or imagenet16-120)."""
    from dscd.nas_bench_201 import COLUMNS, DATASETS, table

    return table().accuracy[:, COLUMNS.index(DATASETS[dataset])]


def random_cell_reference() -> dict[str, Any]:
    """Random search with no search cost: a cell drawn uniformly from the table. Its expected rank
    percentile is 50 by construction; the accuracies' quantiles say what that is worth."""
    scores = table_distribution("cifar10")
    q = np.percentile(scores, [5, 25, 50, 75, 95])
    return {"cells": len(scores), "cifar10 test mean": float(scores.mean()), "cifar10 test sd": float(scores.std()),
            "cifar10 test quantiles (5, 25, 50, 75, 95 %)": [round(float(v), 2) for v in q]}


def arm_rows(runs: Mapping[str, Sequence[dict[str, Any]]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The README's NAS-Bench-201 table, one row per arm and budget: seeds, mean ± sd of the looked-up
    CIFAR-10 test accuracy (12-epoch) and of the rank percentile, collapsed k/n."""
    from dscd.paper.claims import format_mean_sd

    rows = []
    for key, group in runs.items():
        if not group:
            continue
        rows.append({"arm": labels[key], "seeds": len(group),
                     "CIFAR-10 test (12-epoch)": format_mean_sd([r["cifar10 test"] for r in group]),
                     "rank percentile": format_mean_sd([r["cifar10 percentile"] for r in group], 1),
                     "collapsed": f"{sum(r['collapsed'] for r in group)}/{len(group)}"})
    return rows


def _accuracy_claim(relaxation: str, adam: tuple[str, Sequence[float]], dscd: tuple[str, Sequence[float]]
                    ) -> dict[str, Any]:
    """DSCD's cells are more accurate than Adam's: a two-sided Mann-Whitney U test of the looked-up
    CIFAR-10 test accuracies. A rank test, not Welch's: the accuracies are bounded, skewed (a collapse
    drops one to 10-40 %) and tied (seeds end on the same cell). In DSCD's favour: the common-language
    effect P(DSCD > Adam) exceeds 0.5; otherwise not held."""
    from scipy import stats

    (label_a, a), (label_d, d) = adam, dscd
    evidence = (f"CIFAR-10 test (12-epoch lookup): {label_d} median {np.median(d):.2f} ({len(d)} seeds) against "
                f"{label_a} median {np.median(a):.2f} ({len(a)})") if a and d else "no runs"
    claim = f"{label_d}'s cells are more accurate than {label_a}'s at the same budget"
    if len(a) < 2 or len(d) < 2:
        return claim_record(f"{relaxation}_dscd_more_accurate", claim, "notebook 06 protocol", INCONCLUSIVE,
                            evidence + "; fewer than two runs on one side, no test")
    if len(set(a) | set(d)) == 1:  # every run on one cell: nothing differs
        return claim_record(f"{relaxation}_dscd_more_accurate", claim, "notebook 06 protocol", NOT_HELD,
                            evidence + "; every run found the same accuracy")
    test = stats.mannwhitneyu(d, a, alternative="two-sided", method="auto")
    p = float(test.pvalue) if math.isfinite(test.pvalue) else 1.0
    # effect size: the common-language effect, P(DSCD's accuracy > Adam's) + half the ties
    effect = float(test.statistic) / (len(a) * len(d))
    better = effect > 0.5
    # the protocol's rule: a claim whose direction goes against it is not held, whatever p; else the test decides
    return claim_record(f"{relaxation}_dscd_more_accurate", claim, "notebook 06 protocol",
                        INCONCLUSIVE if better else NOT_HELD, evidence + f"; P({label_d} > {label_a}) = {effect:.2f}",
                        test={"name": "Mann-Whitney U test (two-sided, scipy.stats.mannwhitneyu)",
                              "statistic": float(test.statistic), "p_value": p, "common_language_effect": effect,
                              "significant_verdict": HELD if better else None})


def _collapse_claims(relaxation: str, adam: tuple[str, Sequence[Any]], dscd: tuple[str, Sequence[Any]],
                     budget: int) -> list[dict[str, Any]]:
    """DSCD avoids the collapse more often (Fisher) and collapses later (log-rank, with the exact
    permutation p beside it: fewer than about 10 runs a side; later: the larger restricted mean time to
    collapse). A claim whose direction goes against it is not held (the protocol's rule)."""
    from dscd.survival import logrank, restricted_mean

    (label_a, times_a), (label_d, times_d) = adam, dscd
    avoided = compare_counts((label_d, sum(not t.collapsed for t in times_d), len(times_d)),
                             (label_a, sum(not t.collapsed for t in times_a), len(times_a)), "not collapsed", "seeds")
    avoids = claim_record(f"{relaxation}_dscd_avoids_collapse",
                          f"{label_d} avoids the collapse more often than {label_a}", "notebook 06 protocol",
                          avoided["verdict"], avoided["evidence"], test=avoided["test"])
    test = logrank(times_a, times_d)
    means = (restricted_mean(times_a, budget), restricted_mean(times_d, budget))
    # later: DSCD's restricted mean time to collapse is the larger. No collapse at all is nothing to delay, and
    # the other direction is against the claim: both not held whatever p (the protocol's rule); else p decides
    later = bool(sum(test.collapsed)) and means[1] > means[0]
    record = {**test.to_dict(), "restricted_mean_epochs": {label_a: means[0], label_d: means[1]},
              "horizon": budget, "significant_verdict": HELD if later else None}
    evidence = (f"collapsed: {label_a} {test.collapsed[0]}/{test.runs[0]}, {label_d} {test.collapsed[1]}/"
                f"{test.runs[1]}; restricted mean {means[0]:.0f} against {means[1]:.0f} epochs of {budget}")
    verdict = INCONCLUSIVE if later else NOT_HELD
    if not sum(test.collapsed):
        evidence += "; no run collapsed, so there is no collapse to delay"
    delays = claim_record(f"{relaxation}_dscd_collapses_later", f"{label_d} collapses later than {label_a}",
                          "notebook 06 protocol", verdict, evidence, test=record)
    return [avoids, delays]


def study_claims(runs: Mapping[str, Sequence[dict[str, Any]]], labels: Mapping[str, str], budget: int
                 ) -> list[dict[str, Any]]:
    """The study's claims at budget ``budget``, per relaxation (DSCD against Adam): more accurate cells
    (Mann-Whitney U), the collapse avoided more often (Fisher), a later collapse (log-rank). ``runs`` maps
    each arm's method id to its :func:`study_run` records at ``budget``. The registered protocol's rule: one
    Holm family over the claims' tests (notebook 06); a claim whose direction already goes against it is not
    held; one in its favour is held where its Holm-adjusted p < 0.05, inconclusive otherwise."""
    claims: list[dict[str, Any]] = []
    for relaxation in ("darts", "fairdarts"):
        adam, dscd = (next(a.method for a in ARMS if a.relaxation == relaxation and a.dscd == d) for d in (False, True))
        if not runs.get(adam) or not runs.get(dscd):
            continue
        claims.append(_accuracy_claim(relaxation, (labels[adam], [r["cifar10 test"] for r in runs[adam]]),
                                      (labels[dscd], [r["cifar10 test"] for r in runs[dscd]])))
        claims += _collapse_claims(relaxation, (labels[adam], [r["_collapse"] for r in runs[adam]]),
                                   (labels[dscd], [r["_collapse"] for r in runs[dscd]]), budget)
    return adjust_family(claims, "notebook 06")
