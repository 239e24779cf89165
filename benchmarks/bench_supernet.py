"""Time and peak memory of the FairDARTS supernet, per computation mode.

    python benchmarks/bench_supernet.py [--device cpu|cuda|auto] [--configs quick,paper] [--repeats 3]
                                        [--modes plain,shared] [--layouts channels_last]
                                        [--out FILE]

Modes: ``plain`` computes every operation of every edge (``SearchNetwork(share_ops=False)``),
``shared`` computes the parameter-free operations once per source state (the default).
Configurations: ``quick`` (the quick search profile: C=4, 5 cells, batch 50, 16x16),
``paper`` (C=16, 8 cells, batch 64, 32x32, as in the reference's CPU measurement),
``paper128`` (the same at batch 128, the reference's GPU measurement). For each
configuration, layout (NCHW, channels_last) and mode, in a fresh subprocess so that
peak memory is its own:

- forward (training mode, with autograd), forward + backward, forward without autograd;
- one search iteration: an Adam step on alpha (backward into alpha only) and an SGD step
  on the weights (backward into the weights only, with clipping). The reference's recorded
  12.8 s (2-core CPU, batch 64) and 0.85 s (one H200, batch 128) are printed beside it for
  orientation; only ratios between modes of the same run are computed.

Prints a table and writes JSON (by default ``results/benchmarks/supernet-<configs>-<machine>.json``,
which the docs' benchmarks page renders). Times are the best of ``--repeats`` after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

#: Each configuration: a profile's search and the batch it runs at (None: the profile's own).
PROFILE_OF = {"quick": ("quick", None), "paper": ("paper", 64), "paper128": ("paper", 128)}


def sizes(config: str) -> dict[str, int]:
    """The supernet and batch sizes of ``config``, read from its profile (the one place they are written)."""
    from dscd.search import search_profile

    profile, batch = PROFILE_OF[config]
    c = search_profile(profile, **({"batch_size": batch} if batch else {}))
    return {"channels": c.channels, "layers": c.layers, "batch": c.batch_size, "size": c.image_size}
MODES = {"plain": {"share_ops": False}, "shared": {"share_ops": True}}
#: The FairDARTS reference's iteration (s) as recorded elsewhere (2-core CPU at batch 64, one H200 at
#: batch 128): shown for orientation, never divided by, since it was not measured in this run.
REFERENCE = {("paper", "cpu"): 12.8, ("paper128", "cuda"): 0.85}


def measure(config: str, layout: str, mode: str, device: str, repeats: int) -> dict:
    import torch

    from dscd.search_network import SearchNetwork, fairdarts_objective

    cfg = sizes(config)
    torch.manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = SearchNetwork(cfg["channels"], 10, cfg["layers"], **MODES[mode]).to(device=device, memory_format=fmt)
    x = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"], device=device).to(memory_format=fmt)
    y = torch.randint(0, 10, (cfg["batch"],), device=device)
    weights, alphas = net.weights(), net.alphas()
    sgd = torch.optim.SGD(weights, lr=0.005, momentum=0.9, weight_decay=3e-4)
    adam = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        fn()
        sync()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - t0)
        return best

    def forward():
        net(x)

    def forward_backward():
        net(x).sum().backward()
        net.zero_grad(set_to_none=True)

    def forward_no_grad():
        with torch.no_grad():
            net(x)

    def iteration():
        loss = fairdarts_objective(net(x), y, alphas)
        loss.backward(inputs=alphas)
        adam.step()
        loss = fairdarts_objective(net(x), y, alphas)
        loss.backward(inputs=weights)
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        sgd.step()
        sgd.zero_grad(set_to_none=True)
        for a in alphas:
            a.grad = None

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = {name: timed(fn) for name, fn in (("forward_s", forward), ("forward_backward_s", forward_backward),
                                            ("forward_no_grad_s", forward_no_grad), ("iteration_s", iteration))}
    if device == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    out["threads"] = torch.get_num_threads()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--configs", default="quick,paper")
    parser.add_argument("--layouts", default="channels_last", help="contiguous, channels_last or both")
    parser.add_argument("--modes", default="plain,shared")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    parser.add_argument("--child", nargs=4, metavar=("CONFIG", "LAYOUT", "MODE", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.repeats)))
        return
    import torch

    from dscd.paper.report import benchmark_record, write_benchmark

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    modes = args.modes.split(",")
    rows = []
    print(f"{'config':8} {'layout':14} {'mode':7} {'fwd s':>7} {'fwd+bwd s':>9} {'iteration s':>11} "
          f"{'vs ' + modes[0]:>9} {'reference s':>12} {'peak GiB':>8}", flush=True)
    for config in args.configs.split(","):
        for layout in args.layouts.split(","):
            baseline = None
            for mode in modes:
                proc = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--child", config,
                                       layout, mode, device], capture_output=True, text=True, check=True)
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                baseline = baseline or result
                ref = REFERENCE.get((config, device))
                row = {"config": config, **sizes(config), "layout": layout, "mode": mode, "device": device,
                       **result, "ratio_to_" + modes[0]: result["iteration_s"] / baseline["iteration_s"],
                       "memory_ratio_to_" + modes[0]: result["peak_memory_gib"] / baseline["peak_memory_gib"],
                       "reference_iteration_s": ref}
                rows.append(row)
                reference = f"{ref:.2f}" if ref else "-"
                print(f"{config:8} {layout:14} {mode:7} {row['forward_s']:7.3f} {row['forward_backward_s']:9.3f} "
                      f"{row['iteration_s']:11.3f} {row['ratio_to_' + modes[0]]:8.2f}x "
                      f"{reference:>12} "
                      f"{row['peak_memory_gib']:8.2f}", flush=True)
    base = "ratio_to_" + modes[0]
    table = [[r["config"], r["layout"], r["mode"], r["forward_s"], r["forward_backward_s"], r["iteration_s"],
              r[base], r["peak_memory_gib"], r["threads"]] for r in rows]
    record = benchmark_record("Supernet: time and peak memory per computation mode",
                              ["config", "layout", "mode", "forward (s)", "forward + backward (s)", "iteration (s)",
                               f"iteration / {modes[0]}", "peak memory (GiB)", "threads"], table, device=device,
                              measurements=rows)
    path = write_benchmark(record, "supernet", args.configs.replace(",", "+"), device, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
