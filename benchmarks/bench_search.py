"""Seconds per search iteration (alpha step + weight step) at the paper's network size, Adam vs DSCD.

    python benchmarks/bench_search.py [--device auto] [--batch 128] [--iterations 20] [--amp]
                                      [--out FILE]

Uses the search loop's own ``Searcher`` (the same steps as ``dscd search``) on random
images, so no data set is needed. The reference: 0.85 s per iteration on one H200 at
batch 128 (fp32), 12.8 s on a 2-core CPU at batch 64. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import time

import torch

from dscd.paper.report import benchmark_record, write_benchmark
from dscd.run_common import resolve_device
from dscd.search import Searcher, search_profile

REFERENCE = {"cuda": (128, 0.85), "cpu": (64, 12.8)}  # (batch, seconds per iteration)


def seconds_per_iteration(optimizer: str, device: torch.device, batch: int, iterations: int, amp: bool) -> float:
    config = search_profile("paper", optimizer=optimizer, batch_size=batch, amp=amp, epochs=1)
    searcher = Searcher(config, 10, 3, iterations + 2, device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        searcher.alpha_step(x, y)
        searcher.weight_step(x, y)

    step()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on CUDA, 64 on CPU")
    parser.add_argument("--iterations", type=int, default=None, help="default: 20 on CUDA, 2 on CPU")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    batch = args.batch or (128 if device.type == "cuda" else 64)
    iterations = args.iterations or (20 if device.type == "cuda" else 2)
    rows = []
    for optimizer in ("adam", "dscd"):
        s = seconds_per_iteration(optimizer, device, batch, iterations, args.amp)
        ref_batch, ref_s = REFERENCE[device.type]
        ref = ref_s if batch == ref_batch else None  # a speed-up only against the same batch size
        rows.append({"optimizer": optimizer, "device": device.type, "batch": batch, "amp": args.amp,
                     "seconds_per_iteration": s, "reference_s": ref, "speedup": ref / s if ref else None})
        vs = f"reference {ref} s, speed-up {ref / s:.2f}x" if ref else f"no reference at batch {batch}"
        print(f"{optimizer:5} {device.type:5} batch {batch:4} amp={args.amp}: {s:.3f} s per iteration ({vs})",
              flush=True)
    table = [[r["optimizer"], r["batch"], r["amp"], r["seconds_per_iteration"], r["reference_s"], r["speedup"]]
             for r in rows]
    record = benchmark_record("Search iteration at the paper's network size, Adam against DSCD",
                              ["optimizer", "batch", "bf16", "iteration (s)", "reference (s)", "speed-up"], table,
                              device=device.type, measurements=rows,
                              notes="The reference's seconds are its recorded times, not measured in this run.")
    path = write_benchmark(record, "search", f"paper-b{batch}", device.type, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
