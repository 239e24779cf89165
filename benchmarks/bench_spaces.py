"""Seconds per search epoch of each search space at a profile's scale, and of candidate NAS-Bench-201 scales.

    python benchmarks/bench_spaces.py [--profile quick] [--threads 1] [--iterations 6]
                                      [--candidates 16:8:3,16:16:3,...] [--out FILE]

Each row times search iterations (an alpha step and a weight step, the search loop's own ``Searcher``)
on random images of the configuration's size, for Adam and DSCD, and multiplies the median iteration
by the iterations per epoch of the configuration (``search_steps_per_epoch``): a search epoch's cost,
without evaluation. ``--candidates`` adds NAS-Bench-201 scales as ``image_size:channels:layers``
(layers = 3N cells). One torch thread by default, as ``dscd reproduce`` runs one seed per core.
Measure alone: prints a table and writes JSON (``results/benchmarks/spaces-<profile>-<machine>.json``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from dscd.paper.report import benchmark_record, write_benchmark
from dscd.search import SearchConfig, Searcher, search_profile, search_steps_per_epoch


def epoch_seconds(config: SearchConfig, iterations: int) -> tuple[float, float]:
    """(median seconds per iteration, seconds per epoch) of ``config`` on random images."""
    steps = search_steps_per_epoch(config)
    searcher = Searcher(config, 10, 3, max(steps, iterations + 2), torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(config.batch_size, 3, config.image_size, config.image_size, generator=gen)
    y = torch.randint(0, 10, (config.batch_size,), generator=gen)
    times = []
    for i in range(iterations + 2):
        start = time.perf_counter()
        searcher.alpha_step(x, y)
        searcher.weight_step(x, y)
        if i >= 2:
            times.append(time.perf_counter() - start)
    iteration = statistics.median(times)
    return iteration, iteration * steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--candidates", default="",
                        help="NAS-Bench-201 scales image_size:channels:layers, comma-separated")
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs: list[tuple[str, dict[str, Any]]] = [("darts", {}), ("nas-bench-201", {"space": "nas-bench-201"})]
    for candidate in filter(None, args.candidates.split(",")):
        size, channels, layers = (int(v) for v in candidate.split(":"))
        configs.append((f"nas-bench-201 {candidate}", {"space": "nas-bench-201", "image_size": size,
                                                       "channels": channels, "layers": layers}))
    rows, measurements = [], []
    print(f"{'configuration':28} {'optimizer':9} {'px':>3} {'C':>3} {'cells':>5} {'steps':>5} {'iteration s':>11} "
          f"{'epoch s':>8}")
    for name, changes in configs:
        for relaxation in ("softmax", "sigmoid") if changes else ("sigmoid",):
            for optimizer in ("adam", "dscd"):
                config = search_profile(args.profile, **changes, relaxation=relaxation, optimizer=optimizer)
                iteration, epoch = epoch_seconds(config, args.iterations)
                label = f"{name} {relaxation}"
                steps = search_steps_per_epoch(config)
                print(f"{label:28} {optimizer:9} {config.image_size:3d} {config.channels:3d} {config.layers:5d} "
                      f"{steps:5d} {iteration:11.3f} {epoch:8.2f}", flush=True)
                rows.append([label, optimizer, config.image_size, config.channels, config.layers, steps, iteration,
                             epoch])
                measurements.append({"configuration": name, "space": config.space, "relaxation": relaxation,
                                     "optimizer": optimizer, "image_size": config.image_size,
                                     "channels": config.channels, "layers": config.layers,
                                     "batch_size": config.batch_size, "steps_per_epoch": steps,
                                     "iteration_s": iteration, "epoch_s": epoch, "threads": args.threads})
    record = benchmark_record(f"Seconds per search epoch at {args.profile}, per search space ({args.threads} thread)",
                              ["configuration", "optimizer", "image size", "C", "cells", "iterations / epoch",
                               "iteration (s)", "epoch (s)"], rows, device="cpu", measurements=measurements)
    path = write_benchmark(record, "spaces", args.profile, "cpu", args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
