"""Speed of the synthetic benchmark (issue: Figure 3 under 60 s; DSCD per step within 2x of Adam).

    python benchmarks/bench_synthetic.py [--out FILE] [--budget 10000]

Measures, in one process so that the ratios share the machine's state:

1. the full default Figure 3 run (both functions, all eleven methods, 20 runs, d = 10)
   with `dscd bench`'s defaults, wall time per function and in total;
2. time per step of the batched gradient runner, plain Adam against Adam + DSCD, 20 runs
   at d = 10 and d = 100 (the engine the benchmark uses);
3. time per step of the `torch.optim` classes on one problem, `torch.optim.Adam` against
   `dscd.DSCD(Adam)`, at d = 10 and d = 100 (what a user's own code pays).

Prints a table and writes JSON (by default ``results/benchmarks/synthetic-d10-<machine>.json``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dscd import DSCD
from dscd.paper.figure3 import BenchConfig, run_benchmark, run_gradient_methods
from dscd.paper.functions import make_function
from dscd.paper.report import benchmark_record, write_benchmark


def figure3(budget: int) -> dict:
    out = {}
    for name in ("styblinski_tang", "schwefel"):
        t0 = time.perf_counter()
        res = run_benchmark(BenchConfig(function=name, budget=budget), progress=False)
        out[name] = {"seconds": time.perf_counter() - t0, "per_method_seconds": res.seconds}
    out["total_seconds"] = sum(v["seconds"] for v in out.values())
    return out


def batched_per_step(dim: int, steps: int, repeats: int = 3) -> dict:
    fn = make_function("styblinski_tang", dim)
    starts = np.random.default_rng(0).uniform(fn.lo, fn.hi, (20, dim))
    best = {}
    for method in ("adam_0.1", "adam_0.1+dscd"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run_gradient_methods(fn.value_and_grad, fn.lo, fn.hi, starts, [method], steps)
            times.append((time.perf_counter() - t0) / steps)
        best[method] = min(times)
    return {"adam_us": best["adam_0.1"] * 1e6, "dscd_us": best["adam_0.1+dscd"] * 1e6,
            "ratio": best["adam_0.1+dscd"] / best["adam_0.1"]}


def torch_per_step(dim: int, steps: int, repeats: int = 3) -> dict:
    fn = make_function("styblinski_tang", dim)
    start = torch.from_numpy(np.random.default_rng(0).uniform(-5, 5, dim)).float()

    def run(use_dscd: bool) -> float:
        x = torch.nn.Parameter(start.clone())
        adam = torch.optim.Adam([x], lr=0.1)
        opt = DSCD([x], adam, total_steps=steps, domain=(-5, 5), seed=0) if use_dscd else adam
        t0 = time.perf_counter()
        for _ in range(steps):
            if use_dscd:
                opt.step(lambda: fn(x))
            else:
                opt.zero_grad()
                fn(x).backward()
                opt.step()
        return (time.perf_counter() - t0) / steps

    adam = min(run(False) for _ in range(repeats))
    dscd = min(run(True) for _ in range(repeats))
    return {"adam_us": adam * 1e6, "dscd_us": dscd * 1e6, "ratio": dscd / adam}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    parser.add_argument("--budget", type=int, default=10000, help="evaluations per run for the Figure 3 timing")
    parser.add_argument("--steps", type=int, default=3000, help="steps for the per-step timings")
    args = parser.parse_args()
    torch.set_num_threads(1)

    result = {"figure3": figure3(args.budget),
              "batched_20_runs": {d: batched_per_step(d, args.steps) for d in (10, 100)},
              "torch_optim_one_problem": {d: torch_per_step(d, args.steps) for d in (10, 100)}}

    f3 = result["figure3"]
    print(f"Figure 3 default run (d=10, 20 runs, {args.budget} evaluations, 11 methods):")
    print(f"  styblinski_tang {f3['styblinski_tang']['seconds']:.1f} s, schwefel {f3['schwefel']['seconds']:.1f} s, "
          f"total {f3['total_seconds']:.1f} s (target < 60 s)")
    print(f"{'per step':<34} {'d':>4} {'Adam us':>9} {'DSCD us':>9} {'DSCD/Adam':>10}")
    rows = (("batched runner, 20 runs", "batched_20_runs"), ("torch.optim, one problem", "torch_optim_one_problem"))
    for label, key in rows:
        for d, r in result[key].items():
            print(f"{label:<34} {d:>4} {r['adam_us']:>9.1f} {r['dscd_us']:>9.1f} {r['ratio']:>10.2f}")
    table = [["Figure 3 default run, both functions (s)", "", f3["total_seconds"], "", "< 60 s"]]
    table += [[f"{label} (us per step)", d, r["adam_us"], r["dscd_us"], f"DSCD / Adam {r['ratio']:.2f} (< 2x)"]
              for label, key in rows for d, r in result[key].items()]
    record = benchmark_record("Synthetic benchmark (Figure 3): wall time, and DSCD's cost per step",
                              ["what", "d", "Adam / total", "Adam + DSCD", "goal"], table, **result)
    path = write_benchmark(record, "synthetic", "d10", "cpu", args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
