"""The paper's experiments: one search per budget, final training of what they found, Tables 1 and 2.

Notebooks 01 (FairDARTS with Adam), 02 (FairDARTS + DSCD) and 04 (final training)
call these; every search and every training is an ordinary run folder, reused
when it is complete and resumed when it was interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscd.executors import Executor, Job, LocalExecutor, execute
from dscd.genotype import Genotype, check_validity, load_genotype, load_genotypes, published_genotypes
from dscd.paper.claims import config_label, format_mean_sd, group_by_method, search_outcome
from dscd.profiles import config_method, get_profile, method_changes, run_prefix
from dscd.runfolder import finished_summary
from dscd.search import SearchConfig, search_profile
from dscd.train import train_profile

__all__ = ["PAPER_EVAL_TEST", "PAPER_TABLE2", "Evaluation", "planned_searches", "run_budgets", "run_name",
           "search_jobs", "table1_by_budget", "table1_rows", "table2_rows", "train_genotypes"]


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


def run_name(method: str, epochs: int, seed: int) -> str:
    """A search's folder name: ``adam-150-s0`` (FairDARTS), ``dscd-150-s2``, ``dscd-refresh-150-s1``,
    ``dscd-k15-300-s0``: :func:`dscd.profiles.run_prefix` of its method, its budget and its seed."""
    return f"{run_prefix(method)}-{epochs}-s{seed}"


def search_jobs(profile_name: str, optimizer: str, budgets: Sequence[int], runs_dir: str | Path,
                overrides: dict[str, Any] | None = None, seeds: Sequence[int] = (0,)) -> list[Job]:
    """One search :class:`Job` per budget and seed into ``runs_dir/<method>-<epochs>-s<seed>`` (see
    :func:`run_name`; the method is the configuration's, :func:`dscd.profiles.config_method`), budget by
    budget, seeds in the order given. Run them with :func:`execute`."""
    jobs = []
    for epochs in budgets:
        for seed in seeds:
            config: SearchConfig = search_profile(profile_name, **{**(overrides or {}), "optimizer": optimizer,
                                                                   "epochs": int(epochs), "seed": int(seed)})
            config_dict = config.to_dict()
            jobs.append(Job(Path(runs_dir) / run_name(config_method(config_dict), epochs, seed), config_dict))
    return jobs


def planned_searches(profile_name: str, method: str, runs_dir: str | Path, overrides: dict[str, Any] | None = None,
                     budgets: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> list[Job]:
    """The search :class:`Job` s of ``method`` (an id of :data:`dscd.profiles.METHODS`) that profile
    ``profile_name`` plans (:meth:`dscd.profiles.Profile.plan`): its budgets with their seeds, or
    ``budgets`` and one list of ``seeds`` for every budget where given (a notebook's parameters).
    Folders as :func:`search_jobs`."""
    changes = {**(overrides or {}), **method_changes(method)}
    optimizer = changes.pop("optimizer")
    return [job for epochs, run_seeds in get_profile(profile_name).plan(method, budgets, seeds)
            for job in search_jobs(profile_name, optimizer, [epochs], runs_dir, changes, run_seeds)]


def run_budgets(profile_name: str, optimizer: str, budgets: Sequence[int], runs_dir: str | Path,
                overrides: dict[str, Any] | None = None, progress: bool = False, seeds: Sequence[int] = (0,),
                executor: Executor | None = None) -> list[Path]:
    """Run :func:`search_jobs` and return their folders.

    The searches run on ``executor`` (default :class:`LocalExecutor`: worker processes over all
    cores, one torch thread each). A folder whose ``summary.json`` was written by the same
    configuration and data is reused; one with a checkpoint, or killed before its first, is
    resumed; anything else starts fresh (a folder holding another configuration is an error,
    never overwritten). If a search fails, the others still finish, then :class:`RunsFailed` names the failed folders.
    """
    jobs = search_jobs(profile_name, optimizer, budgets, runs_dir, overrides, seeds)
    execute(jobs, executor or LocalExecutor(progress=progress))
    return [job.folder for job in jobs]


@dataclass(frozen=True)
class Evaluation:
    """One genotype's final training: ``summary`` when trained, ``invalid_reason`` when refused."""

    label: str
    genotype: Genotype
    folder: Path
    source: str
    summary: dict[str, Any] | None = None
    invalid_reason: str | None = None
    #: The method that found the genotype (:func:`dscd.profiles.method_id`), or ``published:<name>``.
    method: str = field(kw_only=True)

    @property
    def eval_test(self) -> float | str:
        """Table 1's Eval. Test: accuracy in %, or "Invalid arch." as the paper writes it."""
        if self.invalid_reason is not None:
            return "Invalid arch."
        if self.summary is None:
            raise ValueError(f"{self.label} was neither trained nor refused")
        return round(100 * self.summary["test_acc"], 2)


def train_genotypes(profile_name: str, searches: Sequence[str | Path], runs_dir: str | Path,
                    published: str | Path | None = None, published_names: Sequence[str] = (),
                    overrides: dict[str, Any] | None = None, progress: bool = False,
                    dscd_genotype: str = "final", executor: Executor | None = None) -> list[Evaluation]:
    """Train the final genotype of every search folder, then the named published genotypes (from the
    file ``published``, or with ``published=None`` those shipped with the package).

    ``dscd_genotype="best"`` trains a DSCD search's ``genotype_best.json`` (Algorithm 2's
    ``x_best``, discretised) instead of its final genotype; the paper's Table 1 uses the final one.

    Each training goes to ``runs_dir/train/<search folder name>`` or
    ``runs_dir/train/published-<name>``, on ``executor`` (default: worker processes over all
    cores); a finished one with the same configuration, genotype and data is reused, an
    interrupted one resumed. An invalid genotype is not trained: its :class:`Evaluation`
    carries the validity message instead.
    """
    if dscd_genotype not in ("final", "best"):
        raise ValueError(f"dscd_genotype must be 'final' or 'best', got {dscd_genotype!r}")
    config = train_profile(profile_name, **(overrides or {}))
    jobs: list[tuple[str, Genotype, Path, str, str]] = []
    for folder in map(Path, searches):
        summary = finished_summary(folder)
        optimizer = summary["config"]["optimizer"]
        best = dscd_genotype == "best" and optimizer == "dscd"
        seed = summary["config"].get("seed")
        label = config_label(summary["config"]) + (f" seed {seed}" if seed is not None else "") + (
            " x_best" if best else "")
        genotype = load_genotype(folder / ("genotype_best.json" if best else "genotype.json"))
        jobs.append((label, genotype, Path(runs_dir) / "train" / (folder.name + ("-best" if best else "")),
                     str(folder), config_method(summary["config"])))
    if published_names:
        available = published_genotypes() if published is None else load_genotypes(published)
        where = published or "the genotypes shipped with dscd"
        unknown = [n for n in published_names if n not in available]
        if unknown:
            raise ValueError(f"no genotype named {', '.join(unknown)} in {where} (have: {', '.join(available)})")
        for name in published_names:
            jobs.append((f"{name} (published genotype)", available[name],
                         Path(runs_dir) / "train" / f"published-{name}", f"{where} [{name}]", f"published:{name}"))
    trainable = [(label, genotype, folder) for label, genotype, folder, _, _ in jobs
                 if check_validity(genotype).valid]
    summaries = execute([Job(folder, config.to_dict(), genotype.to_dict(), label)
                         for label, genotype, folder in trainable], executor or LocalExecutor(progress=progress))
    by_folder = {folder: summary for (_, _, folder), summary in zip(trainable, summaries, strict=True)}
    results = []
    for label, genotype, folder, source, method in jobs:
        if folder in by_folder:
            results.append(Evaluation(label, genotype, folder, source, summary=by_folder[folder], method=method))
        else:
            results.append(Evaluation(label, genotype, folder, source,
                                      invalid_reason=check_validity(genotype).message(), method=method))
    return results


def table1_rows(folders: Sequence[str | Path], evaluations: Sequence[Evaluation] | None = None,
                ) -> list[dict[str, Any]]:
    """Table 1's search-phase columns (accuracy in %) and the validity of the discretised architecture;
    with ``evaluations`` (from :func:`train_genotypes`), also the Eval. Test column and the paper's
    published Eval. Test where the paper has the same row."""
    by_source = {e.source: e for e in evaluations or []}
    rows = []
    for folder in folders:
        summary = finished_summary(folder)
        final = summary["final"]
        cfg = summary["config"]
        pct = lambda v: None if v is None else round(100 * v, 2)  # noqa: E731
        rows.append({
            "Method": config_label(cfg),
            "seed": cfg.get("seed", 0),
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


def table1_by_budget(folders: Sequence[str | Path], evaluations: Sequence[Evaluation] | None = None,
                     ) -> list[dict[str, Any]]:
    """Table 1 with the seeds of each method and budget folded into one row: valid architectures as
    k/n seeds, search-test accuracy as mean ± sd (%), kept normal-cell edges per seed; with
    ``evaluations``, Eval. Test as mean ± sd over the valid (trained) architectures and the
    paper's Eval. Test where the paper has the same row."""
    by_source = {e.source: e for e in evaluations or []}
    rows = []
    for label, runs in group_by_method([search_outcome(f) for f in folders]).items():
        row: dict[str, Any] = {
            "Method": label, "seeds": len(runs),
            "Final Arch. valid": f"{sum(o.valid for o in runs)}/{len(runs)}",
            "Search Test": format_mean_sd([100 * o.search_test for o in runs if o.search_test is not None]),
            "kept edges normal (per seed)": " ".join(str(o.kept_edges_normal) for o in runs),
            "kept edges reduce (per seed)": " ".join(str(o.kept_edges_reduce) for o in runs),
        }
        if evaluations is not None:
            trained = [by_source[str(o.folder)] for o in runs if str(o.folder) in by_source]
            row["Eval. Test"] = format_mean_sd([100 * e.summary["test_acc"] for e in trained if e.summary])
            row["Eval. Test (paper)"] = PAPER_EVAL_TEST.get(label)
        row["runs"] = " ".join(o.folder.name for o in runs)
        rows.append(row)
    if evaluations is not None and all(r["Eval. Test (paper)"] is None for r in rows):
        for r in rows:
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
