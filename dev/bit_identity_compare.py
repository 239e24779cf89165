"""Bit-identity check, part 2: the per-epoch records, alpha logs, every checkpoint tensor and the summaries of two
folders written by dev/bit_identity_run.py must be equal (timings and counters added since are left out)."""
import json, sys
from pathlib import Path
a, b = Path(sys.argv[1]), Path(sys.argv[2])
IGN = {"seconds", "epoch_seconds", "nan_proposals"}
def clean(x):
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items() if k not in IGN}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x
bad = 0
for name in ("adam", "dscd", "refresh", "train"):
    for log in ("metrics.jsonl", "alphas.jsonl"):
        fa, fb = a / name / log, b / name / log
        if not fa.exists():
            continue
        ra = [clean(json.loads(l)) for l in fa.read_text().splitlines()]
        rb = [clean(json.loads(l)) for l in fb.read_text().splitlines()]
        same = ra == rb
        bad += not same
        print(name, log, len(ra), "identical" if same else "DIFFERENT")
    import torch
    ca = torch.load(a / name / "checkpoint.pt", weights_only=False); cb = torch.load(b / name / "checkpoint.pt", weights_only=False)
    def tensors(d, prefix=""):
        out = {}
        if isinstance(d, dict):
            for k, v in d.items(): out.update(tensors(v, f"{prefix}/{k}"))
        elif isinstance(d, (list, tuple)):
            for i, v in enumerate(d): out.update(tensors(v, f"{prefix}/{i}"))
        elif isinstance(d, torch.Tensor): out[prefix] = d
        return out
    ta, tb = tensors(ca), tensors(cb)
    diff = [k for k in ta if k not in tb or not torch.equal(ta[k], tb[k])] + [k for k in tb if k not in ta]
    bad += bool(diff)
    print(name, "checkpoint tensors", len(ta), "identical" if not diff else f"DIFFERENT {diff[:5]}")
for name in ("adam", "dscd", "refresh", "train"):
    sa = clean(json.loads((a / name / "summary.json").read_text())); sb = clean(json.loads((b / name / "summary.json").read_text()))
    for d in (sa, sb):
        d.pop("folder", None)
    same = sa == sb
    bad += not same
    print(name, "summary.json", "identical" if same else f"DIFFERENT {[k for k in sa if sa.get(k) != sb.get(k)]}")
sys.exit(1 if bad else 0)
