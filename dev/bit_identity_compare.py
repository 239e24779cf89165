"""Bit-identity check, part 2: the per-epoch records, alpha logs, every checkpoint tensor and the summaries of two
folders written by dev/bit_identity_run.py must be equal (timings are left out, and so are record fields that the
old code did not write: a field added since, like an epoch's ``best`` cell, is new, not different).

    python dev/bit_identity_compare.py OLD NEW     # prints one line per comparison; exit 1 on any difference
"""

import json
import sys
from pathlib import Path
from typing import Any

import torch

RUNS = ("adam", "dscd", "refresh", "train")
IGNORED = {"seconds", "epoch_seconds", "nan_proposals", "folder"}


def clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items() if k not in IGNORED}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def common(old: Any, new: Any) -> Any:
    """``new`` without the dict keys that ``old`` lacks, at every depth (fields added since are left out)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: common(old[k], v) for k, v in new.items() if k in old}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [common(o, n) for o, n in zip(old, new, strict=True)]
    return new


def tensors(x: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(x, dict):
        for k, v in x.items():
            out.update(tensors(v, f"{prefix}/{k}"))
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            out.update(tensors(v, f"{prefix}/{i}"))
    elif isinstance(x, torch.Tensor):
        out[prefix] = x
    return out


def compare(old: Path, new: Path) -> int:
    differences = 0
    for name in RUNS:
        for log in ("metrics.jsonl", "alphas.jsonl"):
            if not (old / name / log).exists():
                continue
            a, b = ([clean(json.loads(line)) for line in (root / name / log).read_text().splitlines()]
                    for root in (old, new))
            b = common(a, b)
            differences += a != b
            print(name, log, len(a), "identical" if a == b else "DIFFERENT")
        a, b = (tensors(torch.load(root / name / "checkpoint.pt", weights_only=False)) for root in (old, new))
        differ = sorted(k for k in a.keys() | b.keys() if k not in a or k not in b or not torch.equal(a[k], b[k]))
        differences += bool(differ)
        print(name, "checkpoint tensors", len(a), "identical" if not differ else f"DIFFERENT {differ[:5]}")
        a, b = (clean(json.loads((root / name / "summary.json").read_text())) for root in (old, new))
        b = common(a, b)
        differences += a != b
        print(name, "summary.json", "identical" if a == b else f"DIFFERENT {[k for k in a if a.get(k) != b.get(k)]}")
    return differences


if __name__ == "__main__":
    sys.exit(1 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 0)
