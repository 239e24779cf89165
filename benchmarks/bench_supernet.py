"""Time and peak memory of the FairDARTS supernet (issue: search space library).

    python benchmarks/bench_supernet.py [--device cpu|cuda|auto] [--configs full,small] [--repeats 2]
                                        [--out benchmarks/results/supernet.json]

For each configuration (full: C=16, 8 layers, batch 64, 32x32 as in the reference's
measurement; small: C=8, 5 layers, batch 64, 16x16 as the reference's CPU-sized
run) and each memory layout (NCHW, channels_last), in a fresh subprocess so that
peak memory is its own:

- forward (training mode, with autograd), forward + backward, forward without autograd;
- one search iteration: an alpha step (backward into alpha only) and a weight step
  (backward into the weights only, SGD with clipping), the reference's 12.8 s
  (2-core CPU, batch 64) and 0.85 s (one H200, batch 128) being the comparison.

Prints a table and writes JSON. Times are the best of ``--repeats`` after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CONFIGS = {
    "full": {"channels": 16, "layers": 8, "batch": 64, "size": 32},
    "small": {"channels": 8, "layers": 5, "batch": 64, "size": 16},
}
REFERENCE = {("full", "cpu"): 12.8, ("full", "cuda"): 0.85}


def measure(config: str, layout: str, device: str, repeats: int) -> dict:
    import torch

    from dscd.space import SearchNetwork, fairdarts_objective

    cfg = CONFIGS[config]
    torch.manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    net = SearchNetwork(cfg["channels"], 10, cfg["layers"]).to(device=device, memory_format=fmt)
    x = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"], device=device).to(memory_format=fmt)
    y = torch.randint(0, 10, (cfg["batch"],), device=device)
    weights, alphas = net.weights(), net.alphas()
    sgd = torch.optim.SGD(weights, lr=0.005, momentum=0.9, weight_decay=3e-4)

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
    parser.add_argument("--configs", default="full,small")
    parser.add_argument("--layouts", default="contiguous,channels_last")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/supernet.json")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "LAYOUT", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.repeats)))
        return
    import torch

    from dscd.runs import run_metadata, write_json

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    rows = []
    for config in args.configs.split(","):
        for layout in args.layouts.split(","):
            proc = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--child", config,
                                   layout, device], capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"config": config, **CONFIGS[config], "layout": layout, "device": device, **result,
                         "reference_iteration_s": REFERENCE.get((config, device))})
            r = rows[-1]
            ref = r["reference_iteration_s"]
            speedup = f"{ref / r['iteration_s']:.2f}x" if ref else "-"
            print(f"{config:6} {layout:14} {device:5} fwd {r['forward_s']:.3f}  fwd+bwd {r['forward_backward_s']:.3f}  "
                  f"no-grad {r['forward_no_grad_s']:.3f}  iteration {r['iteration_s']:.3f} s "
                  f"(reference {ref or '-'}; speed-up {speedup})  peak {r['peak_memory_gib']:.2f} GiB", flush=True)
    write_json(args.out, {**run_metadata(), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
