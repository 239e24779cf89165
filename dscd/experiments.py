"""The paper's experiments: one search per budget, final training of what they found, Tables 1 and 2.

Notebooks 01 (FairDARTS with Adam), 02 (FairDARTS + DSCD) and 04 (final training)
call these; every search and every training is an ordinary run folder, reused
when it is complete and resumed when it was interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dscd.claims import config_label, format_mean_sd, group_by_method, method_label, search_outcome
from dscd.data import source_fingerprint
from dscd.genotype import Genotype, check_validity, load_genotype, load_genotypes, published_genotypes
from dscd.profiles import config_method, get_profile, method_changes
from dscd.runfolder import RunFolder
from dscd.search import SEARCH_LOGS, SearchConfig, run_search, search_profile
from dscd.train import TrainConfig, train_genotype, train_profile

__all__ = ["EXECUTORS", "PAPER_EVAL_TEST", "PAPER_TABLE2", "Evaluation", "Executor", "Job", "JobResult",
           "LocalExecutor", "RayExecutor", "RunsFailed", "execute", "make_executor", "method_label", "planned_searches",
           "run_budgets", "run_job", "run_name", "search_jobs", "table1_by_budget", "table1_rows", "table2_rows",
           "train_genotypes"]

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


def run_name(optimizer: str, epochs: int, seed: int, refresh_best: bool = False) -> str:
    """A search's folder name: ``adam-150-s0``, ``dscd-150-s2``, ``dscd-refresh-150-s1`` (the ablation)."""
    return f"{optimizer}{'-refresh' if refresh_best and optimizer == 'dscd' else ''}-{epochs}-s{seed}"


def search_jobs(profile_name: str, optimizer: str, budgets: Sequence[int], runs_dir: str | Path,
                overrides: dict[str, Any] | None = None, seeds: Sequence[int] = (0,)) -> list[Job]:
    """One search :class:`Job` per budget and seed into ``runs_dir/<optimizer>-<epochs>-s<seed>`` (see
    :func:`run_name`), budget by budget, seeds in the order given. Run them with :func:`execute`."""
    jobs = []
    for epochs in budgets:
        for seed in seeds:
            config: SearchConfig = search_profile(profile_name, **{**(overrides or {}), "optimizer": optimizer,
                                                                   "epochs": int(epochs), "seed": int(seed)})
            name = run_name(optimizer, epochs, seed, config.dscd_refresh_best)
            jobs.append(Job(Path(runs_dir) / name, config.to_dict()))
    return jobs


def planned_searches(profile_name: str, method: str, runs_dir: str | Path, overrides: dict[str, Any] | None = None,
                     budgets: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> list[Job]:
    """The search :class:`Job` s of ``method`` (``fairdarts``, ``dscd``, ``dscd-refresh``) that profile
    ``profile_name`` plans (:meth:`dscd.profiles.Profile.plan`): its budgets with their seeds, or
    ``budgets`` and one list of ``seeds`` for every budget where given. Folders as :func:`search_jobs`."""
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
    #: The method that found the genotype (:func:`dscd.profiles.method_id`), or ``published:<name>``.
    method: str = field(kw_only=True)

    @property
    def eval_test(self) -> float | str:
        """Table 1's Eval. Test: accuracy in %, or "Invalid arch." as the paper writes it."""
        if self.invalid_reason is not None:
            return "Invalid arch."
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
        summary = json.loads((folder / "summary.json").read_text())
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
        summary = json.loads((Path(folder) / "summary.json").read_text())
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


# ------------------------------------------------------------------------------------ running many runs


@dataclass(frozen=True)
class Job:
    """One run of an experiment: a search (``genotype`` None) or a final training, into ``folder``.

    ``config`` is the configuration as a dict (picklable, so a job can travel to another process).
    """

    folder: Path
    config: dict[str, Any]
    genotype: dict[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True)
class JobResult:
    job: Job
    summary: dict[str, Any] | None = None
    error: str | None = None


class RunsFailed(RuntimeError):
    """Some runs of an experiment failed; the others finished. The message names each failed folder."""


def run_job(job: Job, progress: bool = False) -> dict[str, Any]:
    """Run ``job`` to its end: reuse a finished run of the same configuration (and data), resume an
    interrupted one, start a new one otherwise. Returns its summary."""
    if job.genotype is None:
        config = SearchConfig.from_dict(job.config).with_data_resolved()
        expected: dict[str, Any] = {"config": config.to_dict()}
    else:
        config = TrainConfig.from_dict(job.config).with_data_resolved()
        expected = {"config": config.to_dict(), "genotype": job.genotype}
    expected["data_fingerprint"] = source_fingerprint(config.data)
    if _finished(job.folder, **expected):
        return json.loads((job.folder / "summary.json").read_text())
    if job.genotype is None:
        resume = RunFolder.holds_run_to_resume(job.folder, "search", SEARCH_LOGS)
        return run_search(config, job.folder, resume=resume, progress=progress)
    return train_genotype(config, Genotype.from_dict(job.genotype), job.folder, name=job.name,
                          resume=RunFolder.holds_run_to_resume(job.folder, "train"), progress=progress)


def _attempt(job: Job, progress: bool = False) -> JobResult:
    try:
        return JobResult(job, summary=run_job(job, progress))
    except Exception as err:  # noqa: BLE001 - a failed run is reported with its folder; the others go on
        return JobResult(job, error=f"{job.folder}: {type(err).__name__}: {err}")


class Executor:
    """Where an experiment's independent runs execute. :meth:`map` runs every job and returns one
    :class:`JobResult` per job, in order, whatever failed; it never raises for a failed run."""

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:  # pragma: no cover - interface
        raise NotImplementedError


class LocalExecutor(Executor):
    """Runs on this machine: in this process when ``jobs == 1``, else in ``jobs`` worker processes
    (spawned, one torch thread each unless ``threads`` says otherwise), the longest runs (most
    epochs) started first so that the workers finish together.

    ``devices=[0, 1, ...]`` gives each worker process one GPU of its own (it sees only that one,
    through ``CUDA_VISIBLE_DEVICES``); ``jobs`` is then the number of devices.

    Each run is an ordinary run folder, so a killed call picks every run up again: finished
    ones are reused, interrupted ones resumed.
    """

    def __init__(self, jobs: int | None = None, threads: int | None = None, progress: bool = False,
                 devices: Sequence[int] | None = None) -> None:
        if devices is not None:
            devices = check_devices(devices)
            jobs = len(devices)
        jobs = (os.cpu_count() or 1) if jobs is None else jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
        self.jobs = jobs
        self.devices = devices
        self.threads = threads if threads is not None else (1 if jobs > 1 else None)
        self.progress = progress

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:
        jobs = list(jobs)
        if self.devices is None and (self.jobs == 1 or len(jobs) <= 1):
            before = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                return [_attempt(job, self.progress) for job in jobs]
            finally:
                torch.set_num_threads(before)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no forked torch state: each worker starts clean
        free_devices = None
        if self.devices is not None:
            free_devices = context.Queue()
            for device in self.devices:
                free_devices.put(device)
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(jobs)), mp_context=context,
                                 initializer=_start_worker, initargs=(self.threads or 1, free_devices)) as pool:
            submitted = {i: pool.submit(_attempt, jobs[i]) for i in _longest_first(jobs)}
            futures = [submitted[i] for i in range(len(jobs))]
            results = []
            for job, future in zip(jobs, futures, strict=True):
                try:
                    results.append(future.result())
                except Exception as err:  # noqa: BLE001 - a worker that died (killed, out of memory)
                    results.append(JobResult(job, error=f"{job.folder}: the worker died ({type(err).__name__}: "
                                                        f"{err}); run again to resume it"))
        return results


def _longest_first(jobs: Sequence[Job]) -> list[int]:
    return sorted(range(len(jobs)), key=lambda i: -jobs[i].config.get("epochs", 0))


def check_devices(devices: Sequence[int]) -> list[int]:
    """``devices`` as distinct GPU indices that torch sees here; anything else is a ValueError saying what
    this machine has (a GPU asked for is never silently replaced by the CPU)."""
    devices = [int(d) for d in devices]
    if not devices or len(set(devices)) != len(devices) or min(devices) < 0:
        raise ValueError(f"devices must be distinct GPU indices such as [0, 1], got {devices!r}")
    count = torch.cuda.device_count()  # does not initialise CUDA, so workers can still be started after it
    missing = [d for d in devices if d >= count]
    if missing:
        have = f"GPUs 0..{count - 1}" if count else "no CUDA device"
        raise ValueError(f"devices {missing} asked for, but torch sees {have} here: give indices it sees, or "
                         "leave devices out to run on the CPU")
    return devices


def _start_worker(threads: int, free_devices: Any = None) -> None:
    """A worker process's set-up: its torch threads and, with devices, the one GPU it may see (taken
    before CUDA is first used, so that ``cuda`` is that GPU)."""
    torch.set_num_threads(threads)
    if free_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(free_devices.get())


def _ray_task(job: Job, threads: int) -> JobResult:
    torch.set_num_threads(threads)
    return _attempt(job)


class RayExecutor(Executor):
    """Runs each job as a Ray task on an existing cluster (``address``, e.g. ``"auto"`` or
    ``"ray://head:10001"``) or on a local one started for the call (``address=None``).

    Each task asks for ``num_cpus`` CPUs (and as many torch threads) and ``num_gpus`` GPUs. A task
    whose worker dies (killed, node lost) is retried up to ``max_retries`` times and resumes from
    its run folder's last checkpoint, so run folders must be on storage that every node sees at
    the same path, with working ``flock`` (a shared POSIX file system: NFSv4, Lustre, GPFS, CephFS).
    A run that fails with an error is not retried: it is reported, as :class:`LocalExecutor` does.
    Needs ``pip install 'dscd[ray]'``.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 max_retries: int = 3, init_kwargs: dict[str, Any] | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError("the ray executor needs Ray: pip install 'dscd[ray]'") from None
        if num_cpus <= 0 or num_gpus < 0 or max_retries < 0:
            raise ValueError(f"num_cpus must be > 0, num_gpus and max_retries >= 0; got {num_cpus}, {num_gpus}, "
                             f"{max_retries}")
        self.address = address
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, max_retries
        self.init_kwargs = init_kwargs or {}

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:
        import ray

        jobs = list(jobs)
        started = not ray.is_initialized()  # a Ray this call starts, it also shuts down
        if started:
            # workers inherit DSCD_DATA and the like from this process's environment
            env = {k: v for k, v in os.environ.items() if k.startswith("DSCD_")}
            ray.init(address=self.address, runtime_env={"env_vars": env} if env else None,
                     **{"log_to_driver": False, **self.init_kwargs})
        try:
            return self._map(ray, jobs)
        finally:
            if started:
                ray.shutdown()

    def _map(self, ray: Any, jobs: list[Job]) -> list[JobResult]:
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries,
                          retry_exceptions=False)(_ray_task)
        threads = max(1, int(self.num_cpus))
        refs = {i: task.remote(jobs[i], threads) for i in _longest_first(jobs)}
        results = []
        for i, job in enumerate(jobs):
            try:
                results.append(ray.get(refs[i]))
            except Exception as err:  # noqa: BLE001 - retries exhausted, node lost for good
                results.append(JobResult(job, error=f"{job.folder}: the Ray task failed after {self.max_retries} "
                                                    f"retries ({type(err).__name__}); run again to resume it"))
        return results


#: Executors by name, as ``dscd reproduce --executor`` and the notebooks' ``executor`` parameter say them.
EXECUTORS = ("local", "ray")


def make_executor(kind: str = "local", jobs: int | None = None, devices: Sequence[int] | None = None,
                  address: str | None = None) -> Executor:
    """The executor a notebook's parameters describe: ``local`` (``jobs`` processes, or one per device
    in ``devices``) or ``ray`` (the cluster at ``address``, or a local one; one GPU per run when
    ``devices`` is given, i.e. when the cluster has GPUs)."""
    if kind == "local":
        return LocalExecutor(jobs, devices=devices)
    if kind == "ray":
        return RayExecutor(address, num_gpus=1 if devices else 0)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")


def execute(jobs: Sequence[Job], executor: Executor | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` on ``executor`` (default: :class:`LocalExecutor` over all cores) and return their
    summaries; if any failed, raise :class:`RunsFailed` naming each failed folder after the others finished."""
    results = (executor or LocalExecutor()).map(jobs)
    errors = [r.error for r in results if r.error]
    if errors:
        done = len(results) - len(errors)
        raise RunsFailed(f"{len(errors)} of {len(results)} runs failed ({done} finished and are kept):\n"
                         + "\n".join(errors))
    return [r.summary for r in results]
