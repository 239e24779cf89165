"""Where runs execute: jobs (one run folder each) on local worker processes or on a Ray cluster.

A :class:`Job` is one search or final training into its own folder. :func:`run_job` runs it to its end:
a finished run of the same configuration and data is reused, an interrupted one resumed, anything
else started fresh. An :class:`Executor` runs many jobs (:class:`LocalExecutor`: spawned worker
processes, one torch thread each, or one GPU each; :class:`RayExecutor`: Ray tasks that resume from
their folder when a worker dies), and :func:`execute` raises :class:`RunsFailed` naming every failed
folder after the others finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dscd.config import MATCHED_BY_CONTENT
from dscd.data import source_fingerprint
from dscd.genotype import Genotype
from dscd.runfolder import RunFolder, read_summary, recorded_config
from dscd.search import SEARCH_LOGS, SearchConfig, run_search
from dscd.train import TrainConfig, train_genotype

__all__ = ["EXECUTORS", "Executor", "Job", "JobResult", "LocalExecutor", "RayExecutor", "RunsFailed", "check_devices",
           "execute", "make_executor", "run_job", "run_jobs_batched", "seed_batches"]


def _finished(folder: Path, **expected: Any) -> bool:
    """Whether ``folder`` holds a finished run (``summary.json``) whose fields equal ``expected``; the data is
    compared by content (``data_fingerprint``), not by name (:data:`dscd.config.MATCHED_BY_CONTENT`), as a
    resume compares it, so records that named a machine's path are reused too."""
    summary = read_summary(folder)
    if summary is None:
        return False

    def computed(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k not in MATCHED_BY_CONTENT}

    if isinstance(summary.get("config"), dict) and isinstance(expected.get("config"), dict):
        summary["config"] = computed(recorded_config(summary["config"], expected["config"]))
        expected = {**expected, "config": computed(expected["config"])}
    return all(summary.get(k) == v for k, v in expected.items())


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


def _expected(config: SearchConfig | TrainConfig, job: Job) -> dict[str, Any]:
    """What a finished run of ``job`` (its ``config`` with the data resolved) records: the configuration, the
    genotype of a training, and the data's fingerprint (what :func:`_finished` compares)."""
    expected: dict[str, Any] = {"config": config.recorded(),
                                "data_fingerprint": source_fingerprint(config.resolved_data)}
    if job.genotype is not None:
        expected["genotype"] = job.genotype
    return expected


def run_job(job: Job, progress: bool = False) -> dict[str, Any]:
    """Run ``job`` to its end: reuse a finished run of the same configuration (and data), resume an
    interrupted one, start a new one otherwise. Returns its summary."""
    config: SearchConfig | TrainConfig
    if job.genotype is None:
        config = SearchConfig.from_dict(job.config).with_data_resolved()
    else:
        config = TrainConfig.from_dict(job.config).with_data_resolved()
    if _finished(job.folder, **_expected(config, job)):
        return read_summary(job.folder) or {}
    if isinstance(config, SearchConfig):
        resume = RunFolder.holds_run_to_resume(job.folder, "search", SEARCH_LOGS)
        summary = run_search(config, job.folder, resume=resume, progress=progress)
    else:
        assert job.genotype is not None  # a training job
        summary = train_genotype(config, Genotype.from_dict(job.genotype), job.folder, name=job.name,
                                 resume=RunFolder.holds_run_to_resume(job.folder, "train"), progress=progress)
    if summary is None:  # only the non-zero ranks of torchrun get none, and a job runs in one process
        raise RuntimeError(f"{job.folder}: the run returned no summary")
    return summary


def _attempt(job: Job, progress: bool = False) -> JobResult:
    try:
        return JobResult(job, summary=run_job(job, progress))
    except Exception as err:  # noqa: BLE001 - a failed run is reported with its folder; the others go on
        return JobResult(job, error=f"{job.folder}: {type(err).__name__}: {err}")


def run_jobs_batched(jobs: Sequence[Job], progress: bool = False) -> list[JobResult]:
    """Run searches that differ only in their seed in one process (:func:`dscd.batched.run_search_batched`),
    each job as :func:`run_job` would: a finished run reused, an interrupted one resumed, the others started.
    Returns one result per job, in order; a failure is reported per job, never raised."""
    from dscd.batched import run_search_batched

    results: dict[int, JobResult] = {}
    todo: dict[int, tuple[SearchConfig, dict[str, Any]]] = {}
    for i, job in enumerate(jobs):
        try:
            config = SearchConfig.from_dict(job.config).with_data_resolved()
            expected = _expected(config, job)
        except Exception as err:  # noqa: BLE001 - reported with its folder
            results[i] = JobResult(job, error=f"{job.folder}: {type(err).__name__}: {err}")
            continue
        if _finished(job.folder, **expected):
            results[i] = JobResult(job, summary=read_summary(job.folder))
        else:
            todo[i] = (config, expected)
    error = "the run did not finish"
    if todo:
        folders = [jobs[i].folder for i in todo]
        try:
            run_search_batched([config for config, _ in todo.values()], folders, progress=progress,
                               resume=[RunFolder.holds_run_to_resume(f, "search", SEARCH_LOGS) for f in folders])
        except Exception as err:  # noqa: BLE001 - the seeds that finished are kept; the others report it
            error = f"{type(err).__name__}: {err}"
    for i, (_, expected) in todo.items():  # finished here is what counts, as a later call would reuse it
        results[i] = (JobResult(jobs[i], summary=read_summary(jobs[i].folder)) if _finished(jobs[i].folder, **expected)
                      else JobResult(jobs[i], error=f"{jobs[i].folder}: {error}"))
    return [results[i] for i in range(len(jobs))]


def seed_batches(jobs: Sequence[Job], size: int) -> list[list[int]]:
    """The jobs (by index) in units of work: searches whose configurations differ only in their seed in
    batches of at most ``size`` (the seeds split evenly: 5 seeds at size 3 are 3 and 2), every other job
    alone; ``size`` 0 or 1 leaves every job alone."""
    if size <= 1:
        return [[i] for i in range(len(jobs))]
    groups: dict[str, list[int]] = {}
    units: list[list[int]] = []
    for i, job in enumerate(jobs):
        if job.genotype is None:
            key = json.dumps({k: v for k, v in job.config.items() if k != "seed"}, sort_keys=True, default=str)
            groups.setdefault(key, []).append(i)
        else:
            units.append([i])
    for members in groups.values():
        count = -(-len(members) // size)
        units += [members[k::count] for k in range(count)]
    return sorted(units)


def _attempt_unit(jobs: Sequence[Job], progress: bool = False) -> list[JobResult]:
    """One unit of :func:`seed_batches`: one job as :func:`run_job`, several batched."""
    return [_attempt(jobs[0], progress)] if len(jobs) == 1 else run_jobs_batched(jobs, progress)


class Executor:
    """Where an experiment's independent runs execute. :meth:`map` runs every job and returns one
    :class:`JobResult` per job, in order, whatever failed; it never raises for a failed run."""

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:  # pragma: no cover - interface
        """Run every job and return one :class:`JobResult` per job, in order; a failed job is a result with
        its error, never an exception that loses the others."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """Runs on this machine: in this process when ``jobs == 1``, else in ``jobs`` worker processes
    (spawned, one torch thread each unless ``threads`` says otherwise), the longest runs (most
    epochs) started first so that the workers finish together.

    ``devices=[0, 1, ...]`` gives each worker process one GPU of its own (it sees only that one,
    through ``CUDA_VISIBLE_DEVICES``); ``jobs`` is then the number of devices.

    ``batch_seeds=N`` runs searches that differ only in their seed together, at most N to a process
    (:func:`seed_batches`, :mod:`dscd.batched`); 0 (the default) runs every job alone.

    Each run is an ordinary run folder, so a killed call picks every run up again: finished
    ones are reused, interrupted ones resumed.
    """

    def __init__(self, jobs: int | None = None, threads: int | None = None, progress: bool = False,
                 devices: Sequence[int] | None = None, batch_seeds: int = 0) -> None:
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
        self.batch_seeds = _check_batch_seeds(batch_seeds)

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Run the jobs here: in this process for one job or ``jobs=1``, else in worker processes (one
        torch thread each unless ``threads`` says otherwise, each on its GPU when ``devices`` is given)."""
        jobs = list(jobs)
        units = seed_batches(jobs, self.batch_seeds)
        done: dict[int, JobResult] = {}
        if self.devices is None and (self.jobs == 1 or len(units) <= 1):
            before = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                for unit in units:
                    done.update(zip(unit, _attempt_unit([jobs[i] for i in unit], self.progress), strict=True))
            finally:
                torch.set_num_threads(before)
            return [done[i] for i in range(len(jobs))]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no forked torch state: each worker starts clean
        free_devices = None
        if self.devices is not None:
            free_devices = context.Queue()
            for device in self.devices:
                free_devices.put(device)
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(units)), mp_context=context,
                                 initializer=_start_worker, initargs=(self.threads or 1, free_devices)) as pool:
            submitted = [(units[u], pool.submit(_attempt_unit, [jobs[i] for i in units[u]]))
                         for u in _longest_first(jobs, units)]
            for unit, future in submitted:
                try:
                    done.update(zip(unit, future.result(), strict=True))
                except Exception as err:  # noqa: BLE001 - a worker that died (killed, out of memory)
                    done.update({i: JobResult(jobs[i], error=f"{jobs[i].folder}: the worker died "
                                                             f"({type(err).__name__}: {err}); run again to resume it")
                                 for i in unit})
        return [done[i] for i in range(len(jobs))]


def _check_batch_seeds(batch_seeds: Any) -> int:
    if isinstance(batch_seeds, bool) or not isinstance(batch_seeds, int) or batch_seeds < 0:
        raise ValueError(f"batch_seeds must be an integer >= 0 (0: every run alone), got {batch_seeds!r}")
    return batch_seeds


def _longest_first(jobs: Sequence[Job], units: Sequence[Sequence[int]]) -> list[int]:
    """The units (indices into ``units``) with the most epochs first, so that the workers finish together."""
    return sorted(range(len(units)), key=lambda u: -max(jobs[i].config.get("epochs", 0) for i in units[u]))


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


def _ray_task(jobs: list[Job], threads: int) -> list[JobResult]:
    torch.set_num_threads(threads)
    return _attempt_unit(jobs)


class RayExecutor(Executor):
    """Runs each job as a Ray task on an existing cluster (``address``, e.g. ``"auto"`` or
    ``"ray://head:10001"``) or on a local one started for the call (``address=None``).

    Each task asks for ``num_cpus`` CPUs (and as many torch threads) and ``num_gpus`` GPUs. A task
    whose worker dies (killed, node lost) is retried up to ``max_retries`` times and resumes from
    its run folder's last checkpoint, so run folders must be on storage that every node sees at
    the same path, with working ``flock`` (a shared POSIX file system: NFSv4, Lustre, GPFS, CephFS).
    A run that fails with an error is not retried: it is reported, as :class:`LocalExecutor` does.
    ``batch_seeds``: as :class:`LocalExecutor`'s (one task per batch). Needs ``pip install 'dscd[ray]'``.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 max_retries: int = 3, init_kwargs: dict[str, Any] | None = None, batch_seeds: int = 0) -> None:
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
        self.batch_seeds = _check_batch_seeds(batch_seeds)

    def map(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Run the jobs as Ray tasks (starting a local Ray, and shutting it down after, when none is running)."""
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
        units = seed_batches(jobs, self.batch_seeds)
        refs = {u: task.remote([jobs[i] for i in units[u]], threads) for u in _longest_first(jobs, units)}
        done: dict[int, JobResult] = {}
        for u, unit in enumerate(units):
            try:
                done.update(zip(unit, ray.get(refs[u]), strict=True))
            except Exception as err:  # noqa: BLE001 - retries exhausted, node lost for good
                done.update({i: JobResult(jobs[i], error=f"{jobs[i].folder}: the Ray task failed after "
                                                         f"{self.max_retries} retries ({type(err).__name__}); run "
                                                         "again to resume it") for i in unit})
        return [done[i] for i in range(len(jobs))]


#: Executors by name, as ``dscd reproduce --executor`` and the notebooks' ``executor`` parameter say them.
EXECUTORS = ("local", "ray")


def make_executor(kind: str = "local", jobs: int | None = None, devices: Sequence[int] | None = None,
                  address: str | None = None, batch_seeds: int = 0) -> Executor:
    """The executor a notebook's parameters describe: ``local`` (``jobs`` processes, or one per device
    in ``devices``) or ``ray`` (the cluster at ``address``, or a local one; one GPU per run when
    ``devices`` is given, i.e. when the cluster has GPUs); ``batch_seeds``: seeds of one search per process
    (0: every run alone; see :func:`seed_batches`)."""
    if kind == "local":
        return LocalExecutor(jobs, devices=devices, batch_seeds=batch_seeds)
    if kind == "ray":
        return RayExecutor(address, num_gpus=1 if devices else 0, batch_seeds=batch_seeds)
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
    return [r.summary for r in results if r.summary is not None]  # a job without an error has its summary
