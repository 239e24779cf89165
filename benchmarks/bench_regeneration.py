"""What a profile's regeneration (``make figures``) costs on this machine, notebook by notebook.

    DSCD_DATA=... python benchmarks/bench_regeneration.py [--profile quick] [--search-epochs 21]
                                                           [--train-epochs 6] [--jobs 2] [--out FILE]

A whole ``quick`` regeneration takes hours, more than one sitting, so it is never timed in one
piece. This script measures its parts instead, in the regime ``dscd reproduce`` runs them: real
searches of each method of the profile (its configuration and data, ``--search-epochs`` epochs,
calibration-range seeds), and one final training (DARTS_V2, the profile's training configuration,
``--train-epochs`` epochs), ``--jobs`` at a time in worker processes of one thread each, as notebooks
01, 02 and 04 run theirs. Seconds per epoch come from the runs' own records (the first epoch,
which decodes the data, left out). Then:

- notebook 01: the profile's FairDARTS plan (budgets x seeds x epochs);
- notebook 02: the DSCD and ``dscd-refresh`` plans (FairDARTS at ``B`` is 01's, reused);
- notebook 04: one training per planned search plus the published yardsticks (an upper bound:
  invalid genotypes are not trained);
- notebook 06: the NAS-Bench-201 arms' plans (DARTS and FairDARTS, Adam and DSCD);

each as CPU time and as wall time over ``--jobs`` workers: the plan's units of work (a search, or the
seeds of one search batched in one process: the profile's ``batch_seeds``, :mod:`dscd.batched`) handed
out as :class:`dscd.executors.LocalExecutor` hands them out, longest first, to the worker that frees
first. The batched units are timed too: for every method and number of seeds a unit of the plan holds,
one unit of that many calibration seeds, ``--jobs`` units at a time. So each notebook's wall time is given
twice, as ``make figures`` runs it (batched where the profile says so) and with every seed in its own
process, from runs of the same invocation. Notebooks 03 and 05 are run and timed whole (``dscd reproduce
--only 03 --only 05`` into a temporary folder). Run it with nothing else on the machine; it prints a table
and writes JSON (``results/benchmarks/regeneration-<profile>-<machine>.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from dscd.executors import Job, LocalExecutor, execute, run_jobs_batched, seed_batches
from dscd.genotype import load_genotype
from dscd.paper.experiments import planned_searches
from dscd.paper.report import benchmark_record, write_benchmark
from dscd.profiles import config_method, get_profile, method_changes
from dscd.search import search_profile
from dscd.train import train_profile

#: seeds for timing runs: the calibration range, never a result seed
TIMING_SEED = 100
#: the methods whose searches a plain regeneration runs: notebooks 01 and 02 (DARTS space) and 06 (NAS-Bench-201)
REGENERATED = ("fairdarts", "dscd", "dscd-refresh")
NAS_BENCH_201_METHODS = ("nb201-darts", "nb201-darts-dscd", "nb201-fairdarts", "nb201-fairdarts-dscd")


def seconds_per_epoch(folder: Path) -> float:
    """Mean seconds per epoch of a finished run, from its cumulative ``seconds``, first epoch left out."""
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if len(records) < 2:
        raise ValueError(f"{folder}: needs at least two epochs to time")
    return (records[-1]["seconds"] - records[0]["seconds"]) / (len(records) - 1)


def measure(profile_name: str, search_epochs: int, train_epochs: int, jobs: int, work: Path) -> dict[str, float]:
    """Seconds per epoch of each method's search and of one training, ``jobs`` runs at a time."""
    profile = get_profile(profile_name)
    runs: list[Job] = []
    for method in (m for m in (*REGENERATED, *NAS_BENCH_201_METHODS) if profile.budgets(m)):
        config = search_profile(profile.name, **method_changes(method), epochs=search_epochs, seed=TIMING_SEED)
        runs.append(Job(work / method, config.to_dict()))
    train = train_profile(profile.name, epochs=train_epochs, seed=TIMING_SEED)
    runs.append(Job(work / "train", train.to_dict(), load_genotype("DARTS_V2").to_dict(), "DARTS_V2"))
    execute(runs, LocalExecutor(jobs=jobs))
    return {job.folder.name: seconds_per_epoch(job.folder) for job in runs}


def _unit_sizes(profile_name: str, methods: Sequence[str], batch: int) -> dict[str, set[int]]:
    """Per method, the numbers of seeds that the plan's batched units hold (at ``batch`` seeds a process)."""
    sizes: dict[str, set[int]] = {}
    for method in methods:
        jobs = planned_searches(profile_name, method, "runs")
        for unit in seed_batches(jobs, batch):
            if len(unit) > 1:
                sizes.setdefault(method, set()).add(len(unit))
    return sizes


def _run_unit(jobs: list[Job]) -> list[str]:
    torch.set_num_threads(1)
    return [r.error for r in run_jobs_batched(jobs) if r.error]


def measure_batched(profile_name: str, sizes: dict[str, set[int]], search_epochs: int, jobs: int,
                    work: Path) -> dict[str, dict[int, float]]:
    """Seconds per epoch of batched units (``n`` seeds of a method's search in one process), ``jobs`` units
    at a time in worker processes of one thread each, as the notebooks run them."""
    units = []
    for method, counts in sizes.items():
        for n in sorted(counts):
            config = search_profile(profile_name, **method_changes(method), epochs=search_epochs)
            units.append([Job(work / f"{method}-x{n}" / f"seed-{seed}", config.replace(seed=seed).to_dict())
                          for seed in range(TIMING_SEED, TIMING_SEED + n)])
    with mp.get_context("spawn").Pool(jobs) as pool:
        errors = [e for found in pool.imap(_run_unit, units) for e in found]
    if errors:
        raise RuntimeError("a timing unit failed: " + "; ".join(errors))
    return {method: {n: seconds_per_epoch(work / f"{method}-x{n}" / f"seed-{TIMING_SEED}") for n in sorted(counts)}
            for method, counts in sizes.items()}


def packed_minutes(durations: Sequence[float], workers: int) -> float:
    """Wall minutes of units of ``durations`` seconds (in the executor's order) handed to ``workers``
    workers, each unit to the one that frees first."""
    free = [0.0] * workers
    for seconds in durations:
        free[free.index(min(free))] += seconds
    return max(free) / 60


def notebook_wall(profile_name: str, methods: Sequence[str], batch: int, workers: int,
                  single: dict[str, float], batched: dict[str, dict[int, float]]) -> float:
    """Wall minutes of the planned searches of ``methods`` at ``batch`` seeds a process (0: each alone)."""
    jobs = [job for method in methods for job in planned_searches(profile_name, method, "runs")]
    units = seed_batches(jobs, batch)
    units.sort(key=lambda unit: -max(jobs[i].config["epochs"] for i in unit))  # longest first, as the executor
    durations = []
    for unit in units:
        job = jobs[unit[0]]
        method = config_method(job.config)
        per_epoch = single[method] if len(unit) == 1 else batched[method][len(unit)]
        durations.append(job.config["epochs"] * per_epoch)
    return packed_minutes(durations, workers)


def notebook_seconds(profile_name: str, work: Path, numbers: list[str]) -> dict[str, float]:
    """Notebooks run whole by ``dscd reproduce`` into ``work``, and the seconds ``reproduce.json`` records."""
    command = [sys.executable, "-m", "dscd.cli", "reproduce", "--profile", profile_name, "--quiet",
               "--outputs", str(work)]
    for number in numbers:
        command += ["--only", number]
    subprocess.run(command, check=True)
    record = json.loads((work / profile_name / "reproduce.json").read_text())
    return {number: record["notebooks"][number]["seconds"] for number in numbers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--search-epochs", type=int, default=21, help="epochs of each timing search (default 21)")
    parser.add_argument("--train-epochs", type=int, default=6, help="epochs of the timing training (default 6)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once (default: one per core)")
    parser.add_argument("--batch-seeds", default=None, metavar="SPACE=N,...",
                        help="seeds of one search per process, per space, e.g. darts=5,nas-bench-201=5 (default: "
                             "the profile's batch_seeds)")
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    batch = {space: profile.seeds_per_process(space) for space in ("darts", "nas-bench-201")}
    for item in (args.batch_seeds.split(",") if args.batch_seeds else []):
        space, _, n = item.partition("=")
        if space not in batch or not n.isdigit():
            parser.error(f"--batch-seeds takes SPACE=N pairs for darts and nas-bench-201, got {item!r}")
        batch[space] = int(n)
    if search_profile(profile.name).data is None and not os.environ.get("DSCD_DATA"):
        parser.error(f"set DSCD_DATA to the {args.profile} profile's data source (make figures sets it)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-regeneration-") as tmp:
        per_epoch = measure(args.profile, args.search_epochs, args.train_epochs, args.jobs, Path(tmp) / "runs")
        sizes = {**_unit_sizes(profile.name, [m for m in REGENERATED if profile.budgets(m)], batch["darts"]),
                 **_unit_sizes(profile.name, [m for m in NAS_BENCH_201_METHODS if profile.budgets(m)],
                               batch["nas-bench-201"])}
        batched = measure_batched(profile.name, sizes, args.search_epochs, args.jobs, Path(tmp) / "batched")
        whole = notebook_seconds(args.profile, Path(tmp) / "outputs", ["03", "05"])

    def plan_epochs(method: str) -> int:
        return sum(epochs * len(seeds) for epochs, seeds in profile.plan(method))

    # notebook 04 trains what 01 and 02 found (DARTS space); 07's record-window arms run only with --all
    searches = sum(len(seeds) for m in ("fairdarts", "dscd", "dscd-refresh") for _, seeds in profile.plan(m))
    trainings = searches + len(profile.notebook_parameters("04").get("published_names", []))
    train_epochs = train_profile(profile.name).epochs
    nb201 = [m for m in NAS_BENCH_201_METHODS if m in per_epoch]
    training = trainings * train_epochs * per_epoch["train"]

    def wall(methods: Sequence[str], seeds_a_process: int) -> float:
        return notebook_wall(profile.name, methods, seeds_a_process, args.jobs, per_epoch, batched)

    darts = {"01": ["fairdarts"], "02": [m for m in ("dscd", "dscd-refresh") if m in per_epoch]}
    rows = [["01", "FairDARTS searches", plan_epochs("fairdarts") * per_epoch["fairdarts"] / 3600,
             wall(darts["01"], 0), wall(darts["01"], batch["darts"]), "estimate"],
            ["02", "DSCD and dscd-refresh searches", sum(plan_epochs(m) * per_epoch[m] for m in darts["02"]) / 3600,
             wall(darts["02"], 0), wall(darts["02"], batch["darts"]), "estimate"],
            ["04", f"{trainings} final trainings of {train_epochs} epochs (at most)", training / 3600,
             training / args.jobs / 60, training / args.jobs / 60, "estimate (perfect packing)"],
            ["06", "NAS-Bench-201 searches (four arms, DSCD at 2B too)",
             sum(plan_epochs(m) * per_epoch[m] for m in nb201) / 3600, wall(nb201, 0),
             wall(nb201, batch["nas-bench-201"]), "estimate"]]
    rows += [[n, "run whole", None, s / 60, s / 60, "measured"] for n, s in whole.items()]
    rows.sort(key=lambda r: r[0])
    rows.append(["all", f"{args.jobs} workers", sum(r[2] or 0.0 for r in rows), sum(r[3] for r in rows),
                 sum(r[4] for r in rows), "sum"])
    columns = ["notebook", "what", "CPU (h)", "wall, one seed a process (min)", "wall (min)", "how"]
    print(" | ".join(columns))
    for r in rows:
        print(" | ".join("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v) for v in r))
    print("seconds per epoch:", ", ".join(f"{k} {v:.2f}" for k, v in per_epoch.items()),
          "| batched units:", ", ".join(f"{m} x{n} {v:.2f}" for m, by in batched.items() for n, v in by.items()))
    notes = (f"Seconds per epoch measured with {args.jobs} runs at a time (one thread each), as the notebooks run "
             f"them: {', '.join(f'{k} {v:.2f} s' for k, v in per_epoch.items())}; batched units of n seeds in one "
             f"process, {args.jobs} at a time: "
             f"{', '.join(f'{m} x{n} {v:.2f} s' for m, by in batched.items() for n, v in by.items())}. "
             "'wall (min)' is make figures' way (seeds of a search per process: "
             f"DARTS {batch['darts'] or 'each alone'}, NAS-Bench-201 {batch['nas-bench-201'] or 'each alone'}), "
             "the column before it every seed in "
             f"its own process: the plan's units handed to {args.jobs} workers longest first (04: perfect "
             "packing, a lower bound). Notebooks 03 and 05 ran whole. "
             f"The benchmark itself took {(time.perf_counter() - start) / 60:.1f} min.")
    record = benchmark_record(f"What a {args.profile} regeneration costs, notebook by notebook", columns, rows,
                              notes=notes, profile=args.profile, jobs=args.jobs, seconds_per_epoch=per_epoch,
                              batched_seconds_per_epoch={m: {str(n): v for n, v in by.items()}
                                                         for m, by in batched.items()},
                              batch_seeds=batch, notebook_seconds=whole, search_epochs=args.search_epochs,
                              train_epochs=args.train_epochs)
    print("wrote", write_benchmark(record, "regeneration", args.profile, "cpu", args.out))


if __name__ == "__main__":
    main()
