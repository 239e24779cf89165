"""What every run needs besides its folder: device resolution, seeding, RNG state, metadata, epoch sums.

Shared by the search loop and the final-training loop; knows nothing about models. The run folder
itself (lock, checkpoints, logs) is :mod:`dscd.runfolder`.
"""

from __future__ import annotations

import json
import math
import platform
import random
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dscd.runfolder import RunFolderError, check_output_path, write_atomic

__all__ = ["EpochSums", "correct_count", "cosine_anneal", "evaluate", "get_rng_state", "git_commit", "resolve_device",
           "run_metadata", "seed_everything", "set_rng_state", "write_json", "write_text"]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error that says so."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device: use --device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the global generators some torch layers use)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """The global generators' states (Python, NumPy, torch CPU and CUDA) for a checkpoint."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` saved (CUDA states only where CUDA is in use)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_metadata() -> dict[str, Any]:
    """What ``meta.json`` records of the machine: dscd's version and commit, torch, Python, the platform."""
    from dscd.version import __version__

    return {"version": __version__, "commit": git_commit(), "torch": torch.__version__,
            "machine": platform.platform(), "python": platform.python_version()}


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically (temporary file, then rename), creating the folder if needed; a failure
    (no permission, full disk) is a :class:`dscd.runfolder.RunFolderError` and leaves no temporary file."""
    path = check_output_path(Path(path).parent, "folder") / Path(path).name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create {path.parent}: {err.strerror or err}") from None
    write_atomic(path, text)


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, creating the folder if needed (see :func:`write_text`)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


# ------------------------------------------------------------------------------------ epoch bookkeeping


def correct_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How many arg-max predictions are right (a device tensor: no sync)."""
    return (logits.argmax(dim=1) == labels).sum()


@dataclass
class EpochSums:
    """Running sums of one epoch: device tensors (no sync per step) and plain counts; checkpointable."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: torch.Tensor) -> None:
        """Add ``value`` (a tensor, summed on the device: no synchronisation per step) to the sum ``name``."""
        value = value.detach().float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the count ``name``."""
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def nonfinite(self) -> list[str]:
        """The names whose sum is NaN or infinite (one device sync for all of them)."""
        if not self.sums:
            return []
        names = list(self.sums)
        finite = torch.isfinite(torch.stack([self.sums[n].reshape(()) for n in names])).tolist()
        return [n for n, ok in zip(names, finite, strict=True) if not ok]

    def mean(self, name: str, per: str) -> float:
        """``sums[name] / counts[per]`` as a float."""
        return float(self.sums[name]) / self.counts[per]

    def state(self) -> dict[str, Any]:
        """The sums (on the CPU) and counts, for a checkpoint."""
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def reduced(self, dist: Any) -> EpochSums:
        """Sums and counts added over the ranks of ``dist`` (a :class:`dscd.distributed.Distributed`);
        this object itself when there is one process."""
        if not dist.active:
            return self
        names, counted = sorted(self.sums), sorted(self.counts)
        device = next(iter(self.sums.values())).device if self.sums else torch.device("cpu")
        sums = dist.sum_(torch.stack([self.sums[n].reshape(()) for n in names]).to(device))
        counts = dist.sum_(torch.tensor([float(self.counts[n]) for n in counted], dtype=torch.float64,
                                        device=device))
        return EpochSums(dict(zip(names, sums.unbind(), strict=True)),
                         {n: int(c) for n, c in zip(counted, counts.tolist(), strict=True)})

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EpochSums:
        """Sums from :meth:`state`'s dict, on ``device``."""
        return cls({k: v.to(device) for k, v in state["sums"].items()}, dict(state["counts"]))


@torch.no_grad()
def evaluate(forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             ) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``forward`` (images -> logits) over ``batches``."""
    correct: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    n = 0
    for x, y in batches:
        logits = forward(x).float()
        c = correct_count(logits, y)
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        correct, loss = (c, ce) if correct is None or loss is None else (correct + c, loss + ce)
        n += y.numel()
    if n == 0 or correct is None or loss is None:
        raise ValueError("evaluate: no batches")
    return float(correct) / n, float(loss) / n


def cosine_anneal(start: float, end: float, epoch: int, epochs: int) -> float:
    """Cosine annealing from ``start`` (epoch 0) to ``end`` (epoch ``epochs``): the learning rate the search's
    weights and the final training follow, set per epoch as the reference does."""
    return end + (start - end) * (1 + math.cos(math.pi * epoch / epochs)) / 2
