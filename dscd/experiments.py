"""The paper's search experiments: one search per budget, Table 1's search-phase rows, the claims.

Notebooks 01 (FairDARTS with Adam) and 02 (FairDARTS + DSCD) call these; every
search is an ordinary run folder, reused when it is complete and resumed when it
was interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dscd.search import SearchConfig, load_metrics, profile, run

__all__ = ["BUDGETS", "method_label", "run_budgets", "search_claims", "table1_rows"]

#: Search budgets (epochs) per profile and optimiser. ``paper``: the paper's.
BUDGETS: dict[str, dict[str, list[int]]] = {
    "paper": {"adam": [50, 75, 250, 500], "dscd": [1500, 2000, 3000]},
    "quick": {"adam": [15, 30, 60], "dscd": [20, 40, 60]},
    "smoke": {"adam": [2, 3], "dscd": [3, 4]},
}


def method_label(optimizer: str, epochs: int) -> str:
    """Table 1's row label: ``FairDARTS (50)`` or ``FairDARTS + DSCD (1500)``."""
    return f"FairDARTS{' + DSCD' if optimizer == 'dscd' else ''} ({epochs})"


def run_budgets(profile_name: str, optimizer: str, budgets: Sequence[int], runs_dir: str | Path,
                overrides: dict[str, Any] | None = None, progress: bool = True) -> list[Path]:
    """One search per budget into ``runs_dir/<optimizer>-<epochs>``; returns the run folders.

    A folder whose ``summary.json`` was written by the same configuration is reused;
    one with a checkpoint of the same configuration is resumed; anything else starts
    fresh (a folder holding another configuration is an error, never overwritten).
    """
    folders = []
    for epochs in budgets:
        config: SearchConfig = profile(profile_name, optimizer=optimizer, epochs=int(epochs), **(overrides or {}))
        folder = Path(runs_dir) / f"{optimizer}-{epochs}"
        summary = folder / "summary.json"
        if summary.is_file() and json.loads(summary.read_text())["config"] == config.to_dict():
            folders.append(folder)
            continue
        run(config, folder, resume=(folder / "checkpoint.pt").is_file(), progress=progress)
        folders.append(folder)
    return folders


def table1_rows(folders: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Table 1's search-phase columns (accuracy in %) and the validity of the discretised architecture."""
    rows = []
    for folder in folders:
        summary = json.loads((Path(folder) / "summary.json").read_text())
        final = summary["final"]
        cfg = summary["config"]
        pct = lambda v: None if v is None else round(100 * v, 2)  # noqa: E731
        rows.append({
            "Method": method_label(cfg["optimizer"], cfg["epochs"]),
            "Split for L_train": pct(final["train_acc"]),
            "Split for L_val": pct(final["val_acc"]),
            "Search Test": pct(final["test_acc"]),
            "Final Arch.": "valid" if final["valid"] else "Invalid arch.",
            "mean weight normal": round(final["mean_weight_normal"], 3),
            "mean weight reduce": round(final["mean_weight_reduce"], 3),
            "kept edges normal/reduce": f"{final['kept_edges_normal']}/{final['kept_edges_reduce']}",
            "run": str(folder),
        })
    return rows


def search_claims(folders: Sequence[str | Path], optimizer: str) -> dict[str, Any]:
    """Did the paper's claim hold in these runs?

    For Adam (Figure 1): the normal cell's mean weight falls over the search and the
    longest budget's discretised normal cell is empty (invalid). For DSCD (Figure 2):
    every budget ends with a valid architecture.
    """
    per_run = []
    for folder in folders:
        records = load_metrics(folder)
        first, last = records[0], records[-1]
        normal_invalid = last["kept_edges_normal"] == 0 or "normal cell" in (last["invalid_reason"] or "")
        per_run.append({
            "run": str(folder), "epochs": last["epoch"],
            "mean_weight_normal_first": first["mean_weight_normal"],
            "mean_weight_normal_last": last["mean_weight_normal"],
            "mean_weight_reduce_last": last["mean_weight_reduce"],
            "normal_weight_fell": last["mean_weight_normal"] < first["mean_weight_normal"],
            "normal_cell_invalid": normal_invalid,
            "valid": last["valid"],
            "first_valid_epoch": next((r["epoch"] for r in records if r["valid"]), None),
            "last_valid_epoch": next((r["epoch"] for r in reversed(records) if r["valid"]), None),
        })
    if optimizer == "adam":
        longest = max(per_run, key=lambda r: r["epochs"])
        held = all(r["normal_weight_fell"] for r in per_run) and longest["normal_cell_invalid"]
        claim = ("FairDARTS (Adam): the normal cell's weights fall and the longest search ends with an invalid "
                 "(empty) normal cell")
    else:
        held = all(r["valid"] for r in per_run)
        claim = "FairDARTS + DSCD: every budget ends with a valid architecture"
    return {"claim": claim, "held": bool(held), "runs": per_run}
