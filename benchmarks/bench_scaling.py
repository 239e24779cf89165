"""Throughput of one search over 1 and over N processes (torchrun; gloo on CPU, NCCL on GPUs).

    python benchmarks/bench_scaling.py [--ranks 1,2] [--configs quick,paper] [--steps 8] [--device cpu|cuda|auto]
                                       [--out FILE]

Each rank count runs in its own ``torchrun --standalone --nproc_per_node N`` job: search
iterations (an alpha step and a weight step on one global batch, as in ``dscd search``)
on random images, the global batch split over the ranks and the gradients averaged. On
CPU the cores are shared out (each of N ranks gets cores // N torch threads), so the
ratio says what splitting this machine's cores into ranks buys; on GPUs each rank has
its own GPU. Prints seconds per iteration, images per second and the throughput ratio
to the first rank count; writes JSON. Times are the median of ``--steps`` after 2 warm-up
iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The network and batch fields each configuration takes from its profile (the one place they are written).
SIZE_FIELDS = ("channels", "layers", "batch_size", "image_size")
#: The paper's batch on a CPU (its own, 128, is a GPU's).
PAPER_CPU_BATCH = 64


def sizes(config_name: str) -> dict[str, int]:
    """The network and batch sizes of profile ``config_name``'s search (the paper's at batch 64)."""
    from dscd.search import search_profile

    config = search_profile(config_name, **({"batch_size": PAPER_CPU_BATCH} if config_name == "paper" else {}))
    return {name: getattr(config, name) for name in SIZE_FIELDS}


def child(config_name: str, device: str, steps: int) -> None:
    import torch

    from dscd.distributed import Distributed
    from dscd.run_common import resolve_device
    from dscd.search import Searcher, search_profile

    dist = Distributed.from_environment(device)
    cfg = sizes(config_name)
    config = search_profile("quick", device=device, **cfg)
    dist.check_batch(config.batch_size)
    where = dist.device(resolve_device(device))
    searcher = Searcher(config, 10, 3, 100, where, dist)
    gen = torch.Generator().manual_seed(0)
    size, batch = cfg["image_size"], cfg["batch_size"]
    x = torch.randn(batch, 3, size, size, generator=gen).to(where)
    y = torch.randint(0, 10, (batch,), generator=gen).to(where)
    xs, ys = dist.shard(x, y)

    def sync() -> None:
        if where.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for i in range(steps + 2):
        sync()
        start = time.perf_counter()
        searcher.alpha_step(xs, ys)
        searcher.weight_step(xs, ys)
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    if dist.is_main:
        print(json.dumps({"iteration_s": statistics.median(times), "threads": torch.get_num_threads(),
                          "device": str(where)}))
    dist.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--configs", default="quick")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps)
        return
    import torch

    from dscd.paper.report import benchmark_record, write_benchmark

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    cores = os.cpu_count() or 1
    root = Path(__file__).resolve().parents[1]
    rows = []
    print(f"{'config':7} {'ranks':>5} {'threads/rank':>12} {'iteration s':>11} {'images/s':>9} {'throughput':>10}")
    for config in args.configs.split(","):
        base = None
        for ranks in (int(r) for r in args.ranks.split(",")):
            threads = max(1, cores // ranks) if device == "cpu" else 1
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(root)}
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   __file__, "--steps", str(args.steps), "--child", config, device]
            proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{ranks} ranks failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            images = sizes(config)["batch_size"] / result["iteration_s"]
            base = base or images
            rows.append({"config": config, **sizes(config), "ranks": ranks, "threads_per_rank": threads,
                         "device": device, **result, "images_per_s": images, "throughput_ratio": images / base})
            print(f"{config:7} {ranks:5d} {threads:12d} {result['iteration_s']:11.3f} {images:9.1f} "
                  f"{images / base:9.2f}x", flush=True)
    table = [[r["config"], r["ranks"], r["threads_per_rank"], r["iteration_s"], r["images_per_s"],
              r["throughput_ratio"]] for r in rows]
    record = benchmark_record("One search over several torchrun ranks: throughput",
                              ["config", "ranks", "threads per rank", "iteration (s)", "images / s",
                               "throughput vs first"], table, device=device, measurements=rows)
    path = write_benchmark(record, "scaling", args.configs.replace(",", "+"), device, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
