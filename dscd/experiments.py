"""The paper's experiments: one search per budget, final training of what they found, Tables 1 and 2.

Notebooks 01 (FairDARTS with Adam), 02 (FairDARTS + DSCD) and 04 (final training)
call these; every search and every training is an ordinary run folder, reused
when it is complete and resumed when it was interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscd.data import source_fingerprint
from dscd.genotype import Genotype, check_validity, load_genotype, load_genotypes
from dscd.search import SearchConfig, load_metrics, run_search, search_profile
from dscd.train import train_genotype, train_profile

__all__ = ["BUDGETS", "PAPER_EVAL_TEST", "PAPER_TABLE2", "Evaluation", "method_label", "run_budgets", "search_claims",
           "table1_rows", "table2_rows", "train_genotypes"]

#: Search budgets (epochs) per profile and optimiser. ``paper``: the paper's.
BUDGETS: dict[str, dict[str, list[int]]] = {
    "paper": {"adam": [50, 75, 250, 500], "dscd": [1500, 2000, 3000]},
    "quick": {"adam": [15, 30, 60], "dscd": [20, 40, 60]},
    "smoke": {"adam": [2, 3], "dscd": [3, 4]},
}


#: The paper's Table 1, Eval. Test column (%): the final architecture of each search budget.
PAPER_EVAL_TEST: dict[str, float | str] = {
    "FairDARTS (50)": 97.36,
    "FairDARTS (75)": 97.29,
    "FairDARTS (250)": "Invalid arch.",
    "FairDARTS (500)": "Invalid arch.",
    "FairDARTS + DSCD (1500)": 97.50,
    "FairDARTS + DSCD (2000)": 97.25,
    "FairDARTS + DSCD (3000)": 96.92,
}

#: The paper's Table 2 (published figures, CIFAR-10): method, params (M), FLOPs (M), accuracy (%).
PAPER_TABLE2: list[tuple[str, float, float, float]] = [
    ("DARTS", 3.3, 528, 97.00),
    ("DARTS-", 3.5, 583, 97.41),
    ("FairDARTS*", 2.8, 373, 97.46),
    ("FairDARTS", 6.4, 966, 97.36),
    ("FairDARTS + DSCD", 3.6, 532, 97.50),
]


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
        config: SearchConfig = search_profile(profile_name, optimizer=optimizer, epochs=int(epochs),
                                              **(overrides or {})).with_data_resolved()
        folder = Path(runs_dir) / f"{optimizer}-{epochs}"
        if not _finished(folder, config=config.to_dict(), data_fingerprint=source_fingerprint(config.data)):
            run_search(config, folder, resume=_resumable(folder), progress=progress)
        folders.append(folder)
    return folders


def _resumable(folder: Path) -> bool:
    """Whether ``folder`` holds a run to resume (any checkpoint: a corrupt newest one falls back to the one before)."""
    return (folder / "checkpoint.pt").is_file() or (folder / "checkpoint.prev.pt").is_file()


def _finished(folder: Path, **expected: Any) -> bool:
    """Whether ``folder`` holds a finished run (``summary.json``) whose fields equal ``expected``."""
    path = folder / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text())
    return all(summary.get(k) == v for k, v in expected.items())


@dataclass(frozen=True)
class Evaluation:
    """One genotype's final training: ``summary`` when trained, ``invalid_reason`` when refused."""

    label: str
    genotype: Genotype
    folder: Path
    source: str
    summary: dict[str, Any] | None = None
    invalid_reason: str | None = None

    @property
    def eval_test(self) -> float | str:
        """Table 1's Eval. Test: accuracy in %, or "Invalid arch." as the paper writes it."""
        if self.invalid_reason is not None:
            return "Invalid arch."
        return round(100 * self.summary["test_acc"], 2)


def train_genotypes(profile_name: str, searches: Sequence[str | Path], runs_dir: str | Path,
                    published: str | Path | None = None, published_names: Sequence[str] = (),
                    overrides: dict[str, Any] | None = None, progress: bool = True,
                    dscd_genotype: str = "final") -> list[Evaluation]:
    """Train the final genotype of every search folder, then the named published genotypes.

    ``dscd_genotype="best"`` trains a DSCD search's ``genotype_best.json`` (Algorithm 2's
    ``x_best``, discretised) instead of its final genotype; the paper's Table 1 uses the final one.

    Each training goes to ``runs_dir/train/<search folder name>`` or
    ``runs_dir/train/published-<name>``; a finished one with the same configuration and
    genotype is reused, an interrupted one resumed. An invalid genotype is not trained:
    its :class:`Evaluation` carries the validity message instead.
    """
    if dscd_genotype not in ("final", "best"):
        raise ValueError(f"dscd_genotype must be 'final' or 'best', got {dscd_genotype!r}")
    config = train_profile(profile_name, **(overrides or {})).with_data_resolved()
    fingerprint = source_fingerprint(config.data)
    jobs: list[tuple[str, Genotype, Path, str]] = []
    for folder in map(Path, searches):
        summary = json.loads((folder / "summary.json").read_text())
        optimizer = summary["config"]["optimizer"]
        best = dscd_genotype == "best" and optimizer == "dscd"
        label = method_label(optimizer, summary["config"]["epochs"]) + (" x_best" if best else "")
        genotype = load_genotype(folder / ("genotype_best.json" if best else "genotype.json"))
        jobs.append((label, genotype, Path(runs_dir) / "train" / (folder.name + ("-best" if best else "")),
                     str(folder)))
    if published_names:
        if published is None:
            raise ValueError("published_names given without a published genotypes file")
        available = load_genotypes(published)
        unknown = [n for n in published_names if n not in available]
        if unknown:
            raise ValueError(f"no genotype named {', '.join(unknown)} in {published} (have: {', '.join(available)})")
        for name in published_names:
            jobs.append((f"{name} (published genotype)", available[name],
                         Path(runs_dir) / "train" / f"published-{name}", f"{published} [{name}]"))
    results = []
    for label, genotype, folder, source in jobs:
        validity = check_validity(genotype)
        if not validity.valid:
            results.append(Evaluation(label, genotype, folder, source, invalid_reason=validity.message()))
            continue
        if not _finished(folder, config=config.to_dict(), genotype=genotype.to_dict(), data_fingerprint=fingerprint):
            train_genotype(config, genotype, folder, name=label, resume=_resumable(folder), progress=progress)
        summary = json.loads((folder / "summary.json").read_text())
        results.append(Evaluation(label, genotype, folder, source, summary=summary))
    return results


def table1_rows(folders: Sequence[str | Path], evaluations: Sequence[Evaluation] | None = None,
                ) -> list[dict[str, Any]]:
    """Table 1's search-phase columns (accuracy in %) and the validity of the discretised architecture;
    with ``evaluations`` (from :func:`train_genotypes`), also the Eval. Test column and the paper's
    published Eval. Test where the paper has the same row."""
    by_source = {e.source: e for e in evaluations or []}
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
            "run": Path(folder).name,
        })
        if evaluations is not None:
            label = rows[-1]["Method"]
            evaluation = by_source.get(str(Path(folder)))
            rows[-1]["Eval. Test"] = evaluation.eval_test if evaluation else "not trained"
            rows[-1]["Eval. Test (paper)"] = PAPER_EVAL_TEST.get(label)
            rows[-1]["run"] = rows[-1].pop("run")  # keep the folder last
    if evaluations is not None and all(r["Eval. Test (paper)"] is None for r in rows):
        for r in rows:  # no row of the paper's budgets (smaller profiles): no column of blanks
            del r["Eval. Test (paper)"]
    return rows


def table2_rows(evaluations: Sequence[Evaluation], scale: str) -> list[dict[str, Any]]:
    """Table 2: the trained final architectures, then the paper's published rows.

    Params (M, auxiliary head excluded) and FLOPs (M) are those of the paper's evaluation
    network (C=36, 20 cells, 32x32), computed here from the genotype, so they compare
    directly with the published ones; the accuracy is measured at ``scale`` (a
    description of the profile's training). Invalid architectures have no row.
    """
    rows = []
    for e in evaluations:
        if e.summary is None:
            continue
        paper, trained = e.summary["paper_size"], e.summary["size"]
        rows.append({"Method": e.label, "Params (M)": round(paper["params_m"], 2),
                     "FLOPS (M)": round(paper["flops_m"]), "Accuracy (%)": round(100 * e.summary["test_acc"], 2),
                     "Params as trained (M)": round(trained["params_m"], 4),
                     "Source": f"measured here ({scale})"})
    for method, params, flops, accuracy in PAPER_TABLE2:
        rows.append({"Method": method, "Params (M)": params, "FLOPS (M)": flops, "Accuracy (%)": accuracy,
                     "Params as trained (M)": None, "Source": "published (paper Table 2, 600 epochs)"})
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
