"""Calibrating a CPU-sized protocol: where does FairDARTS collapse, and what does reaching it cost?

The paper's claim (section 3, Figure 1, Table 1) is about a FairDARTS search long enough that its
normal cell empties. A small profile decides that claim only if its budgets sit clearly on either
side of the collapse: a long budget ``B`` after which FairDARTS ends invalid in most seeds, and a
short one (the paper's ratio is 50 : 250) after which it ends valid in most. This module runs
FairDARTS (Adam on alpha) for candidate configurations on *calibration seeds* (100-109 by default:
never the seeds used for results) and records, per run, its collapse time
(:func:`dscd.survival.collapse_time`) and its cost. No DSCD run is part of a calibration.

Run it as a script; it is resumable (every search is an ordinary run folder) and writes its JSON
summary from whatever runs have finished, so it can be read while the rest still run::

    python -m dscd.paper.calibration --profile quick --candidates base,8px --epochs 300 --jobs 2
    python -m dscd.paper.calibration --profile quick --summarise-only     # the JSON from finished runs
    python -m dscd.paper.calibration --space nas-bench-201 --profile quick --epochs 100,400   # DARTS there

The JSON file is also the record between sessions: a run it already records is not run again, and
its entry is kept when the run folder is gone (delete the entry to run it again).

A candidate is a name and a set of configuration changes to the profile (:data:`CANDIDATES`). In
NAS-Bench-201's space (``--space nas-bench-201``) the calibrated method is DARTS (softmax, Adam), whose
collapse there is documented, and the collapse is that space's (``collapsed`` of
:mod:`dscd.search_spaces`: no convolution between the cell's input and output).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dscd.runfolder import read_summary
from dscd.search import load_metrics
from dscd.survival import collapse_time, is_collapsed

__all__ = ["CALIBRATED_METHOD", "CALIBRATION_SEEDS", "CANDIDATES", "REQUIRED_OF_SEEDS", "calibration_jobs",
           "choose_protocol", "default_json", "main", "recorded_runs", "rule_status", "summarise"]

#: Seeds used only to choose a protocol, never for results (results use 0, 1, ...).
CALIBRATION_SEEDS: tuple[int, ...] = tuple(range(100, 110))

#: Candidate configurations per search space and profile: changes to that profile's search configuration
#: of the space. In the DARTS space each makes a search cheaper in another way (smaller images, smaller
#: batches, fewer cells); the zero-one loss and the 0.85 threshold are never changed. In NAS-Bench-201's,
#: the profile's own scale (16x16, C = 8, N = 1, chosen by cost: ``benchmarks/bench_spaces.py``), twice its
#: depth (N = 2: DARTS' skip connections gain on parametric operations as the supernet deepens) and the
#: benchmark's image size.
CANDIDATES: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "darts": {
        "quick": {"base": {}, "8px": {"image_size": 8}, "batch25": {"batch_size": 25}, "3cells": {"layers": 3}},
        "smoke": {"base": {}, "batch5": {"batch_size": 5}},
    },
    "nas-bench-201": {
        "quick": {"base": {}, "6cells": {"layers": 6}, "32px": {"image_size": 32}},
        "smoke": {"base": {}},
    },
}

#: The method each space's calibration runs: the one whose collapse is documented there (FairDARTS'
#: empty normal cell, the paper's section 3; DARTS' parameter-free cell in NAS-Bench-201, its section 5).
CALIBRATED_METHOD: dict[str, tuple[str, dict[str, Any]]] = {
    "darts": ("FairDARTS (sigmoid, zero-one loss, Adam)", {"relaxation": "sigmoid"}),
    "nas-bench-201": ("DARTS (softmax, Adam)", {"relaxation": "softmax"}),
}


def _candidates(space: str, profile: str) -> dict[str, dict[str, Any]]:
    if space not in CANDIDATES:
        raise ValueError(f"no calibration candidates for space {space!r}; choose from {', '.join(CANDIDATES)}")
    return CANDIDATES[space].get(profile, {})


def default_json(profile: str, space: str = "darts") -> Path:
    """Where a calibration's summary is committed: ``results/calibration/<profile>[-<space>].json``."""
    return Path("results/calibration") / (f"{profile}.json" if space == "darts" else f"{profile}-{space}.json")


def calibration_jobs(profile: str, candidates: Sequence[str], budgets: Sequence[int], seeds: Sequence[int],
                     runs_dir: str | Path, space: str = "darts") -> list[Any]:
    """One search job of the space's calibrated method (:data:`CALIBRATED_METHOD`, Adam on alpha) per
    candidate, budget and seed into ``runs_dir/<candidate>/adam-<epochs>-s<seed>``, seed by seed (so that a
    partial calibration covers every candidate with the same seeds)."""
    from dscd.paper.experiments import search_jobs

    known = _candidates(space, profile)
    unknown = [c for c in candidates if c not in known]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown} for profile {profile!r}; choose from {sorted(known)}")
    method = {"space": space, **CALIBRATED_METHOD[space][1]} if space != "darts" else {}
    jobs = []
    for seed in seeds:
        for epochs in budgets:
            for name in candidates:
                for job in search_jobs(profile, "adam", [epochs], Path(runs_dir) / name, {**method, **known[name]},
                                       seeds=[seed]):  # named as the calibration's own, whatever the method's id
                    jobs.append(dataclasses.replace(job, folder=Path(runs_dir) / name / f"adam-{epochs}-s{seed}"))
    return jobs


def _run_summary(folder: Path) -> dict[str, Any] | None:
    summary = read_summary(folder)
    if summary is None:
        return None
    records = load_metrics(folder)
    collapse = collapse_time(records)
    seconds = [float(r["seconds"]) for r in records]
    per_epoch = seconds[-1] / len(records)
    intact = "".join("0" if is_collapsed(r) else "1" for r in records)
    last = records[-1]
    run = {"seed": summary["config"]["seed"], "epochs": summary["epochs"], **collapse.to_dict(),
           "valid_at_end": not collapse.collapsed}
    if "lookup" in last:  # NAS-Bench-201: the final cell and its 12-epoch accuracy
        run.update(cell_at_end=last["lookup"]["cell"], cifar10_test_at_end=last["lookup"]["accuracy"]["cifar10-test"])
    else:
        run["kept_normal_edges_at_end"] = last["kept_edges_normal"]
    run.update({"seconds": round(seconds[-1], 1), "seconds_per_epoch": round(per_epoch, 3),
                "seconds_to_collapse": round(seconds[collapse.epoch - 1], 1) if collapse.collapsed else None})
    run["normal_valid_per_epoch" if "lookup" not in last else "not_collapsed_per_epoch"] = intact
    return run


def summarise(profile: str, runs_dir: str | Path, candidates: Sequence[str] | None = None,
              previous: dict[str, Any] | None = None, space: str = "darts") -> dict[str, Any]:
    """The calibration's JSON: per candidate and budget, every finished run's collapse time and cost,
    and how many runs ended invalid. Runs still in progress are left out.

    ``previous`` (an earlier summary, e.g. the committed file) keeps the runs it records whose folders are
    gone: run folders are not kept between sessions, their summaries are, so a calibration can be done in
    parts. A run whose folder is present is summarised from it."""
    from dscd.search_spaces import get_space

    runs_dir = Path(runs_dir)
    known = _candidates(space, profile)
    measure = ("collapse epoch: the first epoch from which the normal cell stays invalid until the end; censored "
               "when it is valid at the end") if space == "darts" else (
               f"collapse epoch: the first epoch from which the discretised cell stays collapsed until the end; "
               f"censored when it is not collapsed at the end. Collapsed: {get_space(space).collapse}")
    out: dict[str, Any] = {"profile": profile, "seeds": "calibration seeds only (never used for results)",
                           "measure": measure,
                           "timing": "seconds are each run's own search time as recorded in its folder; runs "
                                     "shared the machine with other work, so compare them only as ratios "
                                     "within one calibration",
                           "candidates": {}}
    names = list(candidates or sorted(known))
    recorded = (previous or {}).get("candidates", {}) if isinstance(previous, dict) else {}
    names += [n for n in sorted(recorded) if n not in names and n in known]  # never drop what was recorded
    for name in names:
        found: dict[int, dict[int, dict[str, Any]]] = {}
        for key, budget in recorded.get(name, {}).get("budgets", {}).items():
            for run in budget.get("runs", []):
                found.setdefault(int(key), {})[int(run["seed"])] = run
        for folder in sorted((runs_dir / name).glob("adam-*-s*")):
            run = _run_summary(folder)
            if run is not None:
                found.setdefault(int(run["epochs"]), {})[int(run["seed"])] = run
        budgets: dict[str, Any] = {}
        for epochs in sorted(found):
            runs = [found[epochs][seed] for seed in sorted(found[epochs])]
            collapsed = [r for r in runs if r["collapsed"]]
            budgets[str(epochs)] = {"runs": runs, "invalid_at_end": f"{len(collapsed)}/{len(runs)}",
                                    "collapse_epochs": sorted(r["epoch"] for r in collapsed),
                                    "mean_seconds_per_epoch": round(sum(r["seconds_per_epoch"] for r in runs)
                                                                    / len(runs), 3)}
        out["candidates"][name] = {"changes": known.get(name, {}), "budgets": budgets}
    if space != "darts":  # the DARTS space's summaries predate the field, and say FairDARTS in their text
        out = {"space": space, "method": CALIBRATED_METHOD[space][0], **out}
    out["protocol"] = choose_protocol(out)
    return out


#: The protocol's rule (chosen before any DSCD run): at the long budget ``B`` FairDARTS ends invalid in at
#: least this many of the calibration seeds, and at the short budget it ends valid in at least as many.
REQUIRED_OF_SEEDS: tuple[int, int] = (8, len(CALIBRATION_SEEDS))


def rule_status(hits: int, runs: int, required: int = REQUIRED_OF_SEEDS[0],
                seeds: int = REQUIRED_OF_SEEDS[1]) -> str:
    """Whether ``hits`` of ``runs`` finished runs meet "at least ``required`` of ``seeds``": ``met``,
    ``failed`` (the runs still to come cannot reach it) or ``open``.

    >>> rule_status(8, 9), rule_status(1, 4), rule_status(5, 7)
    ('met', 'failed', 'open')
    """
    if hits >= required:
        return "met"
    return "failed" if hits + (seeds - runs) < required else "open"


def choose_protocol(summary: dict[str, Any]) -> dict[str, Any]:
    """The protocol the rule gives, from a summary's counts: per candidate, the long budget (FairDARTS
    invalid in at least 8 of 10 seeds) and the short budget (valid in at least 8 of 10, shorter than
    the long one), each ``met``, ``failed`` or ``open``. A candidate is chosen when both are met; of
    several, the first in :data:`CANDIDATES` (not by measured cost, which depends on the machine's
    load). Nothing here looks at a DSCD run."""
    per_candidate: dict[str, Any] = {}
    for name, candidate in (summary.get("candidates") or {}).items():
        budgets = {int(k): v for k, v in (candidate.get("budgets") or {}).items()}
        long = {e: rule_status(sum(r["collapsed"] for r in b["runs"]), len(b["runs"])) for e, b in budgets.items()}
        short = {e: rule_status(sum(not r["collapsed"] for r in b["runs"]), len(b["runs"]))
                 for e, b in budgets.items()}
        chosen_long = min((e for e, v in long.items() if v == "met"), default=None)
        chosen_short = max((e for e, v in short.items() if v == "met" and (chosen_long is None or e < chosen_long)),
                           default=None)
        per_candidate[name] = {"long_budget_rule": {str(e): v for e, v in sorted(long.items())},
                               "short_budget_rule": {str(e): v for e, v in sorted(short.items())},
                               "long_budget": chosen_long, "short_budget": chosen_short}
    complete = [n for n, c in per_candidate.items() if c["long_budget"] and c["short_budget"]]
    order = list(CANDIDATES.get(summary.get("space", "darts"), {}).get(summary.get("profile", ""), {}))
    chosen = min(complete, key=lambda n: order.index(n) if n in order else len(order), default=None)
    method = "FairDARTS" if summary.get("space", "darts") == "darts" else CALIBRATED_METHOD[summary["space"]][0]
    protocol = {"rule": f"{method} collapsed at the long budget and not at the short one, each in at least "
                        f"{REQUIRED_OF_SEEDS[0]} of {REQUIRED_OF_SEEDS[1]} calibration seeds",
                "chosen": None if chosen is None else {"candidate": chosen, "changes": summary["candidates"][chosen][
                    "changes"], "long_budget": per_candidate[chosen]["long_budget"],
                    "short_budget": per_candidate[chosen]["short_budget"]},
                "candidates": per_candidate}
    finding = _no_collapse_finding(summary, per_candidate, method) if chosen is None else None
    if finding:
        protocol["finding"] = finding
    return protocol


def _no_collapse_finding(summary: dict[str, Any], per_candidate: dict[str, Any], method: str) -> str | None:
    """When the long-budget rule has failed at every budget of every candidate that ran (decided, none
    open): the sentence saying so, with each budget's collapse count. ``None`` while any is open."""
    rules = [v for c in per_candidate.values() for v in c["long_budget_rule"].values()]
    if not rules or any(v != "failed" for v in rules):
        return None
    counts = "; ".join(f"{name} at {epochs} epochs {sum(r['collapsed'] for r in budget['runs'])}/{len(budget['runs'])}"
                       for name, candidate in summary["candidates"].items()
                       for epochs, budget in sorted(candidate["budgets"].items(), key=lambda kv: int(kv[0])))
    return (f"no candidate meets the rule: {method} collapsed in {counts} calibration seeds, so no budget run here "
            f"collapses it in {REQUIRED_OF_SEEDS[0]} of {REQUIRED_OF_SEEDS[1]}")


def recorded_runs(summary: dict[str, Any] | None) -> set[tuple[str, int, int]]:
    """``(candidate, epochs, seed)`` of every run a summary records (those need not run again)."""
    done: set[tuple[str, int, int]] = set()
    for name, candidate in ((summary or {}).get("candidates") or {}).items():
        for key, budget in candidate.get("budgets", {}).items():
            done.update((name, int(key), int(run["seed"])) for run in budget.get("runs", []))
    return done


def _read_summary(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        raise SystemExit(f"error: {path} is not JSON: repair it (git checkout {path}) or pass another --json") \
            from None
    return summary if isinstance(summary, dict) else None


def write_summary(summary: dict[str, Any], path: str | Path) -> Path:
    from dscd.runfolder import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(summary, indent=1) + "\n")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dscd.paper.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick", choices=sorted({p for c in CANDIDATES.values() for p in c}))
    parser.add_argument("--space", default="darts", choices=tuple(CANDIDATES),
                        help="search space (default darts: FairDARTS; nas-bench-201: DARTS, softmax + Adam)")
    parser.add_argument("--candidates", default=None, help="comma-separated candidate names (default: all)")
    parser.add_argument("--epochs", default="300", help="comma-separated FairDARTS budgets (default 300)")
    parser.add_argument("--seeds", default=None, help="comma-separated calibration seeds (default 100-109)")
    parser.add_argument("--runs", default=None, help="run folders (default runs/calibration/<profile>)")
    parser.add_argument("--json", default=None,
                        help="summary file (default results/calibration/<profile>.json, or <profile>-<space>.json)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--summarise-only", action="store_true", help="write the summary of finished runs and stop")
    return parser


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: {what} must be comma-separated integers, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dscd.paper.calibration``: run the calibration searches (finished ones reused) and write
    the summary JSON; returns the exit status."""
    args = build_parser().parse_args(argv)
    known = CANDIDATES[args.space].get(args.profile, {})
    if not known:
        raise SystemExit(f"error: no calibration candidates for profile {args.profile!r} in space {args.space!r}")
    candidates = args.candidates.split(",") if args.candidates else sorted(known)
    suffix = "" if args.space == "darts" else f"-{args.space}"
    runs = Path(args.runs or f"runs/calibration/{args.profile}{suffix}")
    path = Path(args.json or default_json(args.profile, args.space))
    previous = _read_summary(path)
    status = 0
    if not args.summarise_only:
        from dscd.executors import LocalExecutor, RunsFailed, execute

        seeds = _ints(args.seeds, "--seeds") if args.seeds else list(CALIBRATION_SEEDS)
        done = recorded_runs(previous)
        try:
            jobs = calibration_jobs(args.profile, candidates, _ints(args.epochs, "--epochs"), seeds, runs, args.space)
            jobs = [j for j in jobs if (j.folder.parent.name, j.config["epochs"], j.config["seed"]) not in done]
            execute(jobs, LocalExecutor(args.jobs))
        except (ValueError, RunsFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
        except KeyboardInterrupt:
            print("interrupted: run the same command again to resume", file=sys.stderr)
            status = 130
    write_summary(summarise(args.profile, runs, candidates, previous, args.space), path)  # what has finished
    print(path)
    return status


if __name__ == "__main__":
    sys.exit(main())
