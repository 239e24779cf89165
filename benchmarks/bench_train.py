"""Time of one final-training step (issue: final training), per precision and memory layout.

    python benchmarks/bench_train.py [--device cpu|cuda|auto] [--configs paper,quick] [--steps 5]
                                     [--out FILE]

One SGD step of :class:`dscd.train.Trainer` (forward with the auxiliary head,
backward, clipping, update) on random images, for the DARTS_V2 genotype:

- ``paper``: C=36, 20 cells, batch 96, 32x32 (the reference's evaluation);
- ``quick``: C=8, 8 cells, batch 64, 16x16 (the ``quick`` profile).

Variants: fp32 NCHW, fp32 channels_last, and on CUDA bfloat16 autocast with
channels_last. Ratios are against fp32 NCHW measured in the same run; the last
column extrapolates the step time to 600 epochs of 50,000 images. Times come from
``torch.utils.benchmark`` (synchronising CUDA), after one warm-up step.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils import benchmark

from dscd.genotype import load_genotype
from dscd.paper.report import benchmark_record, write_benchmark
from dscd.train import Trainer, train_profile


def sizes(config: str) -> dict[str, int]:
    """The network and batch sizes of profile ``config``'s final training (the one place they are written)."""
    c = train_profile(config)
    return {"channels": c.channels, "layers": c.layers, "batch_size": c.batch_size, "image_size": c.image_size}


def step_seconds(config: str, amp: bool, channels_last: bool, device: torch.device, steps: int) -> float:
    cfg = sizes(config)
    genotype = load_genotype("DARTS_V2")  # shipped with the package
    torch.manual_seed(0)
    train_config = train_profile("paper", **cfg, amp=amp, channels_last=channels_last, device=str(device))
    trainer = Trainer(train_config, genotype, 10, 3, device)
    trainer.start_epoch(300)  # mid-training: drop path on
    x = torch.randn(cfg["batch_size"], 3, cfg["image_size"], cfg["image_size"], device=device)
    y = torch.randint(0, 10, (cfg["batch_size"],), device=device)
    trainer.train_step(x, y)  # warm-up
    timer = benchmark.Timer("trainer.train_step(x, y)", globals={"trainer": trainer, "x": x, "y": y},
                            num_threads=torch.get_num_threads())
    return timer.timeit(steps).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--configs", default="paper,quick")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=None, help="JSON file (default: results/benchmarks/...)")
    args = parser.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    variants = [("fp32", False, False), ("fp32", False, True)]
    if device.type == "cuda":
        variants.append(("bf16", True, True))
    rows = []
    print(f"{'config':6} {'precision':9} {'layout':14} {'step (s)':>9} {'vs fp32 NCHW':>13} {'600 x 50k imgs (h)':>18}")
    for config in args.configs.split(","):
        base = None
        for precision, amp, channels_last in variants:
            seconds = step_seconds(config, amp, channels_last, device, args.steps)
            base = base or seconds
            hours = seconds * 600 * (50000 // sizes(config)["batch_size"]) / 3600
            layout = "channels_last" if channels_last else "NCHW"
            rows.append({"config": config, **sizes(config), "device": str(device), "precision": precision,
                         "layout": layout, "step_s": seconds, "speedup_vs_fp32_nchw": base / seconds,
                         "hours_600_epochs": hours, "threads": torch.get_num_threads()})
            print(f"{config:6} {precision:9} {layout:14} {seconds:9.4f} {base / seconds:12.2f}x {hours:18.1f}",
                  flush=True)
    table = [[r["config"], r["precision"], r["layout"], r["step_s"], r["speedup_vs_fp32_nchw"], r["hours_600_epochs"],
              r["threads"]] for r in rows]
    record = benchmark_record("Final training: one SGD step of DARTS_V2 per precision and layout",
                              ["config", "precision", "layout", "step (s)", "speed-up vs fp32 NCHW",
                               "600 epochs of 50k images (h)", "threads"], table, device=str(device), measurements=rows)
    path = write_benchmark(record, "train", args.configs.replace(",", "+"), device.type, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
