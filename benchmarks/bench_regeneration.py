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

each as CPU time and as wall time over ``--jobs`` workers (perfect packing: a lower bound on the
wall time). Notebooks 03 and 05 are run and timed whole (``dscd reproduce --only 03 --only 05``
into a temporary folder). Run it with nothing else on the machine; it prints a table and writes
JSON (``results/benchmarks/regeneration-<profile>-<machine>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dscd.executors import Job, LocalExecutor, execute
from dscd.genotype import load_genotype
from dscd.paper.report import benchmark_record, write_benchmark
from dscd.profiles import get_profile, method_changes
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
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    if search_profile(profile.name).data is None and not os.environ.get("DSCD_DATA"):
        parser.error(f"set DSCD_DATA to the {args.profile} profile's data source (make figures sets it)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-regeneration-") as tmp:
        per_epoch = measure(args.profile, args.search_epochs, args.train_epochs, args.jobs, Path(tmp) / "runs")
        whole = notebook_seconds(args.profile, Path(tmp) / "outputs", ["03", "05"])

    def plan_epochs(method: str) -> int:
        return sum(epochs * len(seeds) for epochs, seeds in profile.plan(method))

    # notebook 04 trains what 01 and 02 found (DARTS space); 07's record-window arms run only with --all
    searches = sum(len(seeds) for m in ("fairdarts", "dscd", "dscd-refresh") for _, seeds in profile.plan(m))
    trainings = searches + len(profile.notebook_parameters("04").get("published_names", []))
    train_epochs = train_profile(profile.name).epochs
    parts = [
        ("01", "FairDARTS searches", plan_epochs("fairdarts") * per_epoch["fairdarts"]),
        ("02", "DSCD and dscd-refresh searches",
         sum(plan_epochs(m) * per_epoch[m] for m in ("dscd", "dscd-refresh") if m in per_epoch)),
        ("04", f"{trainings} final trainings of {train_epochs} epochs (at most)",
         trainings * train_epochs * per_epoch["train"]),
        ("06", "NAS-Bench-201 searches (four arms, DSCD at 2B too)",
         sum(plan_epochs(m) * per_epoch[m] for m in NAS_BENCH_201_METHODS if m in per_epoch)),
    ]
    rows = [[n, what, cpu / 3600, cpu / args.jobs / 60, "estimate"] for n, what, cpu in parts]
    rows += [[n, "run whole", None, s / 60, "measured"] for n, s in whole.items()]
    rows.sort(key=lambda r: r[0])
    rows.append(["all", f"{args.jobs} workers", sum(r[2] or 0.0 for r in rows), sum(r[3] for r in rows), "sum"])
    print(f"{'notebook':8} {'what':45} {'CPU (h)':>8} {'wall (min)':>10}  how")
    for r in rows:
        cpu = "-" if r[2] is None else f"{r[2]:.2f}"
        print(f"{r[0]:8} {r[1]:45} {cpu:>8} {r[3]:10.1f}  {r[4]}")
    print("seconds per epoch:", ", ".join(f"{k} {v:.2f}" for k, v in per_epoch.items()))
    notes = (f"Seconds per epoch measured with {args.jobs} runs at a time (one thread each), as the notebooks run "
             f"them: {', '.join(f'{k} {v:.2f} s' for k, v in per_epoch.items())}. Notebooks 01, 02 and 04 are those "
             "times the profile's plan; the wall time assumes perfect packing over the workers. Notebooks 03 and 05 "
             f"ran whole. The benchmark itself took {(time.perf_counter() - start) / 60:.1f} min.")
    record = benchmark_record(f"What a {args.profile} regeneration costs, notebook by notebook",
                              ["notebook", "what", "CPU (h)", "wall (min)", "how"], rows, notes=notes,
                              profile=args.profile, jobs=args.jobs, seconds_per_epoch=per_epoch,
                              notebook_seconds=whole, search_epochs=args.search_epochs,
                              train_epochs=args.train_epochs)
    print("wrote", write_benchmark(record, "regeneration", args.profile, "cpu", args.out))


if __name__ == "__main__":
    main()
