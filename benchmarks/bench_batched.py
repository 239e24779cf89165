"""Seeds in one process (``dscd search --seeds``) against one process per seed: seed-epochs per CPU-second.

    python benchmarks/bench_batched.py [--profile quick] [--spaces darts,nas-bench-201] [--seeds 1,2,3,5,8]
                                       [--threads 1,2] [--rounds 3] [--optimizer adam] [--device cpu|cuda]
                                       [--pack-seeds 5] [--out FILE]

For each search space and thread count, N searchers of the profile's search (calibration seeds 100 and up,
random images of the profile's shape) take search iterations (an alpha step and a weight step) two ways,
interleaved round by round: one after the other with ``Searcher.alpha_step``/``weight_step`` (what N
single-seed runs do), and together through :class:`dscd.batched.SeedBatch` (what a batched run does). The
ratio of the two is the speed-up of batching at N. A search epoch is ``steps`` iterations, so seed-epochs per
CPU-second are seed-iterations per CPU-second over the epoch's steps (CPU-seconds: wall time times threads).

The packing rows answer "how should two cores run N seeds": two processes of one thread each, each running
half of the seeds batched (or each one seed at a time), against one process with two threads. They run the
two processes at once and count seed-iterations over the longer one's wall time.

Run it alone: other work on the machine changes every number here.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from typing import Any

import torch

#: The calibration seeds (never used for results).
FIRST_SEED = 100


DEVICE = {"name": "cpu"}  # --device: where the searchers and their batches live


def _sync() -> None:
    if DEVICE["name"].startswith("cuda"):
        torch.cuda.synchronize()


def _steps(profile: str, space: str) -> int:
    """Iterations per search epoch of ``profile`` in ``space``."""
    from dscd.search import search_profile, search_steps_per_epoch

    return search_steps_per_epoch(search_profile(profile, space=space))


def _setup(profile: str, space: str, optimizer: str, n: int) -> tuple[list[Any], Any, int]:
    from dscd.batched import SeedBatch
    from dscd.run_common import seed_everything
    from dscd.search import Searcher, search_profile, search_steps_per_epoch

    searchers = []
    for k in range(n):
        config = search_profile(profile, space=space, optimizer=optimizer, seed=FIRST_SEED + k)
        seed_everything(config.seed)
        searchers.append(Searcher(config, 10, 3, search_steps_per_epoch(config) * config.epochs,
                                  torch.device(DEVICE["name"])))
        searchers[-1].net.train()
    return searchers, SeedBatch(searchers), _steps(profile, space)


def _batches(searchers: list[Any], round_: int) -> dict[int, tuple[tuple[torch.Tensor, torch.Tensor], ...]]:
    out = {}
    for k, s in enumerate(searchers):
        g = torch.Generator().manual_seed(1000 * round_ + k)
        size, batch = s.config.image_size, s.config.batch_size
        out[k] = tuple((torch.randn(batch, 3, size, size, generator=g).to(DEVICE["name"]),
                        torch.randint(0, 10, (batch,), generator=g).to(DEVICE["name"])) for _ in range(2))
    return out


def _separate(searchers: list[Any], data: dict) -> None:
    for k, s in enumerate(searchers):
        s.alpha_step(*data[k][1])
        s.weight_step(*data[k][0])


def _batched(searchers: list[Any], batch: Any, data: dict) -> None:
    batch.step({k: s.alpha_stages() for k, s in enumerate(searchers)}, {k: data[k][1] for k in data})
    batch.step({k: s.weight_stages() for k, s in enumerate(searchers)}, {k: data[k][0] for k in data})


def interleaved(profile: str, space: str, optimizer: str, n: int, threads: int, rounds: int) -> dict[str, float]:
    """Seconds per iteration of N seeds, separate and batched, interleaved over ``rounds`` (after a warm-up)."""
    torch.set_num_threads(threads)
    separate_nets, _, steps = _setup(profile, space, optimizer, n)
    batched_nets, batch, _ = _setup(profile, space, optimizer, n)
    seconds = {"separate": 0.0, "batched": 0.0}
    for round_ in range(rounds + 1):
        data = _batches(separate_nets, round_)
        order = ("separate", "batched") if round_ % 2 else ("batched", "separate")
        for way in order:
            _sync()
            start = time.perf_counter()
            _separate(separate_nets, data) if way == "separate" else _batched(batched_nets, batch, data)
            _sync()
            if round_:  # round 0 warms up
                seconds[way] += time.perf_counter() - start
    return {"steps": steps, **{way: s / rounds for way, s in seconds.items()}}


def _worker(args: tuple[str, str, str, int, bool, int, Any, Any]) -> None:
    profile, space, optimizer, n, batched, rounds, barrier, results = args
    torch.set_num_threads(1)
    nets, batch, _ = _setup(profile, space, optimizer, n)
    data = [_batches(nets, r) for r in range(rounds + 1)]
    (_batched(nets, batch, data[0]) if batched else _separate(nets, data[0]))
    barrier.wait()
    start = time.perf_counter()
    for r in range(1, rounds + 1):
        _batched(nets, batch, data[r]) if batched else _separate(nets, data[r])
    results.put(time.perf_counter() - start)


def two_processes(profile: str, space: str, optimizer: str, n: int, batched: bool, rounds: int) -> float:
    """Wall seconds for two one-thread processes, each taking ``rounds`` iterations of ``n`` seeds at once."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=((profile, space, optimizer, n, batched, rounds, barrier, results),))
             for _ in range(2)]
    for p in procs:
        p.start()
    walls = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return max(walls)


def main() -> None:
    from dscd.paper.report import benchmark_record, write_benchmark

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--spaces", default="darts,nas-bench-201")
    parser.add_argument("--seeds", default="1,2,3,5,8", help="the N to measure")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="timed iterations per way and N (after one warm-up)")
    parser.add_argument("--optimizer", default="adam", choices=("adam", "dscd"))
    parser.add_argument("--pack-seeds", type=int, default=5, help="N of the two-process packing rows (0: none)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the packing rows are CPU-only: --pack-seeds 0)")
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    DEVICE["name"] = args.device
    if args.device != "cpu" and args.pack_seeds:
        parser.error("--pack-seeds measures CPU processes: give --pack-seeds 0 with --device cuda")
    started = time.perf_counter()
    rows, measurements = [], []
    for space in args.spaces.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for n in (int(s) for s in args.seeds.split(",")):
                m = interleaved(args.profile, space, args.optimizer, n, threads, args.rounds)
                per_cpu = {way: n / (m[way] * threads) / m["steps"] for way in ("separate", "batched")}
                ratio = m["separate"] / m["batched"]
                row = [space, f"1 process, {threads} thread{'s' * (threads > 1)}", n, m["separate"], m["batched"],
                       per_cpu["separate"], per_cpu["batched"], ratio]
                rows.append(row)
                measurements.append({"space": space, "processes": 1, "threads": threads, "seeds": n, **m,
                                     "seed_epochs_per_cpu_second": per_cpu, "speedup": ratio})
                print(" | ".join(str(round(v, 4)) if isinstance(v, float) else str(v) for v in row), flush=True)
        n = args.pack_seeds
        if n:  # two one-thread processes, each with n seeds: batched, or one seed at a time
            m = {"steps": _steps(args.profile, space)}
            for way, batched in (("separate", False), ("batched", True)):
                m[way] = two_processes(args.profile, space, args.optimizer, n, batched, args.rounds) / args.rounds
            per_cpu = {way: 2 * n / (m[way] * 2) / m["steps"] for way in ("separate", "batched")}
            ratio = m["separate"] / m["batched"]
            row = [space, "2 processes, 1 thread each", 2 * n, m["separate"], m["batched"], per_cpu["separate"],
                   per_cpu["batched"], ratio]
            rows.append(row)
            measurements.append({"space": space, "processes": 2, "threads": 1, "seeds": 2 * n, **m,
                                 "seed_epochs_per_cpu_second": per_cpu, "speedup": ratio})
            print(" | ".join(str(round(v, 4)) if isinstance(v, float) else str(v) for v in row), flush=True)
    columns = ["space", "packing", "seeds", "separate (s/iteration)", "batched (s/iteration)",
               "separate seed-epochs/CPU-s", "batched seed-epochs/CPU-s", "speed-up"]
    notes = (f"{args.profile} profile, {args.optimizer} on alpha, random images of the profile's shape; "
             f"{args.rounds} timed iterations per way after a warm-up, separate and batched interleaved. The "
             "seconds are for all the row's seeds (both processes' wall time in the packing rows). "
             f"The benchmark took {(time.perf_counter() - started) / 60:.1f} min.")
    record = benchmark_record("Seeds in one process against one process per seed", columns, rows, device=args.device,
                              measurements=measurements, notes=notes)
    path = write_benchmark(record, "batched", args.profile, torch.device(args.device).type, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
