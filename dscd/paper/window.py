"""The record-window experiment: DSCD's predictions registered before its runs, judged on its runs.

At ``quick`` DSCD's record window K = 1,000 steps spans 200 epochs, longer than FairDARTS' whole time
to collapse, and every valid DSCD cell of the main study is a frozen ``x_best``. So its protection may be
staleness (an old minibatch minimum that nothing beats) rather than exploration. The protocol
``results/quick/window-protocol.json`` registered, before any of these runs started, three arms (K = 15
steps, K = 15 with T = 5, K = 3,000) and what each hypothesis predicts; :func:`window_claims` judges
those predictions on the finished runs, each held or not held with its counts, and says which
hypothesis came true (or that the result is mixed). Nothing here is chosen after the runs: the rules
below restate the protocol's, and a test checks them against its text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dscd.paper.claims import HELD, INCONCLUSIVE, NOT_HELD, claim_record, holm
from dscd.paper.experiments import run_name
from dscd.runfolder import JsonLines, finished_summary

__all__ = ["LATE_EPOCH", "MAJORITY", "S4_WINDOW", "window_claims", "window_run"]

#: "after epoch 60": a normal-cell proposal accepted later than this is exploration, not the start's.
LATE_EPOCH = 60
#: "at least 4 of 5 seeds".
MAJORITY = 4
#: S4: dscd-k3000-600-s0 collapses near epoch 208, dscd-600-s0's collapse: within [158, 258].
S4_WINDOW = (158, 258)
#: Significance level of the log-rank predictions (exact permutation p, unadjusted).
ALPHA = 0.05


def _records(folder: Path) -> list[dict[str, Any]]:
    return JsonLines(folder / "metrics.jsonl").read()


def window_run(folder: str | Path) -> dict[str, Any]:
    """What one finished DSCD search says for the window experiment: its collapse (``dscd.survival``), validity
    at the end of ``x_current`` and of ``x_best``, normal/reduce proposals accepted (in all and after
    :data:`LATE_EPOCH`), how long ``x_best`` had been frozen at the end, and in how many epochs the ``x_best``
    and ``x_current`` cells differed in validity (runs recorded before that field: ``None``)."""
    from dscd.survival import collapse_time

    folder = Path(folder)
    summary = finished_summary(folder)
    records = _records(folder)
    last, steps = records[-1], records[-1]["steps"]
    late = next((r for r in records if r["epoch"] == LATE_EPOCH), None)
    d = last.get("dscd", {})
    accepted_normal = d.get("accepted_normal", 0)
    collapse = collapse_time(records)
    differ = ([r["epoch"] for r in records if "best" in r and r["best"]["valid"] != r["valid"]]
              if all("best" in r for r in records) else None)
    return {
        "run": folder.name, "seed": summary["config"].get("seed"), "epochs": summary["config"]["epochs"],
        "dscd_K": summary["config"].get("dscd_K"), "dscd_T": summary["config"].get("dscd_T"),
        "collapsed": collapse.collapsed, "collapse_epoch": collapse.epoch if collapse.collapsed else None,
        "valid_end_current": bool(last["valid"]), "valid_end_best": summary.get("best_valid"),
        "accepted_normal": accepted_normal, "accepted_reduce": d.get("accepted_reduce", 0),
        "accepted_normal_after_60": (accepted_normal - late["dscd"]["accepted_normal"]) if late else None,
        "frozen_x_best_epochs": round(d.get("best_age", 0) / steps, 1),
        "epochs_best_and_current_differ": None if differ is None else len(differ),
    }


def _times(folders: Sequence[Path]) -> list[Any]:
    from dscd.survival import collapse_time

    return [collapse_time(_records(f)) for f in folders]


def window_claims(runs_dir: str | Path, protocol: Mapping[str, Any]) -> dict[str, Any]:
    """Judge the protocol's predictions on the runs in ``runs_dir`` (folders named by
    :func:`dscd.paper.experiments.run_name`). Returns ``{"claims": [...], "runs": {arm: [window_run...]},
    "missing": [...], "outcome": ...}``; a prediction whose runs are not all finished is inconclusive
    and names what is missing."""
    from dscd.survival import logrank

    runs_dir = Path(runs_dir)
    arms = protocol["arms"]

    def folders(arm: str) -> tuple[list[Path], list[str]]:
        spec = arms[arm]
        names = [run_name(arm, spec["epochs"], seed) for seed in spec["seeds"]]
        done = [runs_dir / n for n in names if (runs_dir / n / "summary.json").is_file()]
        return done, [n for n in names if not (runs_dir / n / "summary.json").is_file()]

    baseline = [runs_dir / n for n in protocol["baselines"]["fairdarts-300"]]
    missing = [f.name for f in baseline if not (f / "summary.json").is_file()]
    found = {arm: folders(arm) for arm in arms}
    missing += [n for _, absent in found.values() for n in absent]
    runs = {arm: [window_run(f) for f in done] for arm, (done, _) in found.items()}
    claims: list[dict[str, Any]] = []
    tests = []

    def pending(id_: str, claim: str, arm: str) -> dict[str, Any]:
        absent = found[arm][1]
        return claim_record(id_, claim, "window protocol", INCONCLUSIVE,
                            f"{len(absent)} of {len(arms[arm]['seeds'])} runs not finished ({', '.join(absent)})")

    for id_, arm in (("S1", "dscd-k15"), ("S2", "dscd-k15-t5")):
        claim = f"{arms[arm]['method']} collapses like FairDARTS (300): log-rank p >= {ALPHA} (staleness)"
        if found[arm][1] or any(f.name in missing for f in baseline):
            claims.append(pending(id_, claim, arm))
            continue
        test = logrank(_times(baseline), _times(found[arm][0]))
        record = {**test.to_dict(), "decides": f"the permutation p at {ALPHA}, unadjusted (protocol)"}
        tests.append(record)
        claims.append(claim_record(id_, claim, "window protocol",
                                   HELD if record["p_permutation"] >= ALPHA else NOT_HELD,
                                   f"collapsed: FairDARTS (300) {test.collapsed[0]}/{test.runs[0]}, "
                                   f"{arms[arm]['method']} (300) {test.collapsed[1]}/{test.runs[1]}", test=record))
    if tests:  # Holm over the window family's log-rank tests, reported beside (the protocol decides unadjusted)
        for record, p in zip(tests, holm([t["p_permutation"] for t in tests]), strict=True):
            record["p_holm"] = p
            record["family"] = f"Holm over the {len(tests)} log-rank tests of the window protocol"

    k3000 = {r["seed"]: r for r in runs["dscd-k3000"]}
    s3 = "With K = 3000, dscd-k3000-600-s2 does not collapse within 600 epochs (staleness)"
    claims.append(claim_record("S3", s3, "window protocol", HELD if not k3000[2]["collapsed"] else NOT_HELD,
                               f"dscd-k3000-600-s2: {_collapse_text(k3000[2])}") if 2 in k3000
                  else pending("S3", s3, "dscd-k3000"))
    lo, hi = S4_WINDOW
    s4 = f"dscd-k3000-600-s0 still collapses, within epochs [{lo}, {hi}] (staleness)"
    if 0 in k3000:
        r = k3000[0]
        ok = bool(r["collapsed"]) and r["collapse_epoch"] is not None and lo <= r["collapse_epoch"] <= hi
        claims.append(claim_record("S4", s4, "window protocol", HELD if ok else NOT_HELD,
                                   f"dscd-k3000-600-s0: {_collapse_text(r)}"))
    else:
        claims.append(pending("S4", s4, "dscd-k3000"))

    for id_, arm in (("E1", "dscd-k15"), ("E2", "dscd-k15-t5")):
        n = len(arms[arm]["seeds"])
        claim = (f"{arms[arm]['method']} ends valid in at least {MAJORITY} of {n} seeds, and at least {MAJORITY} "
                 f"accept a normal-cell proposal after epoch {LATE_EPOCH} (exploration)")
        if found[arm][1]:
            claims.append(pending(id_, claim, arm))
            continue
        valid = sum(r["valid_end_current"] for r in runs[arm])
        late = sum((r["accepted_normal_after_60"] or 0) > 0 for r in runs[arm])
        claims.append(claim_record(id_, claim, "window protocol",
                                   HELD if valid >= MAJORITY and late >= MAJORITY else NOT_HELD,
                                   f"valid at the end (x_current) in {valid}/{n}; a normal-cell proposal accepted "
                                   f"after epoch {LATE_EPOCH} in {late}/{n}"))

    verdicts = {c["id"]: c["verdict"] for c in claims}
    if INCONCLUSIVE in verdicts.values():
        outcome = "pending: not every run has finished"
    elif verdicts["S1"] == verdicts["S2"] == HELD:
        outcome = "staleness came true (S1 and S2 held)"
    elif verdicts["E1"] == verdicts["E2"] == HELD:
        outcome = "exploration came true (E1 and E2 held)"
    else:
        outcome = "mixed: " + ", ".join(f"{k} {v}" for k, v in verdicts.items())
    return {"claims": claims, "runs": runs, "missing": missing, "outcome": outcome}


def _collapse_text(run: Mapping[str, Any]) -> str:
    return f"collapsed at epoch {run['collapse_epoch']}" if run["collapsed"] else f"valid at epoch {run['epochs']}"
