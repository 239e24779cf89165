"""Run folders: device resolution, seeding, atomic checkpoints, JSON lines, progress.

Shared by the search loop and the final-training loop; knows nothing about models.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointError", "EpochSums", "JsonLines", "correct_count", "evaluate", "get_rng_state", "git_commit",
           "load_checkpoint", "resolve_device", "run_metadata", "save_checkpoint", "seed_everything",
           "set_rng_state", "write_json"]

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, of another run, or in the way."""


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
    from dscd import __version__

    return {"version": __version__, "commit": git_commit(), "torch": torch.__version__,
            "machine": platform.platform(), "python": platform.python_version()}


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename), creating the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


class JsonLines:
    """An append-only JSON-lines file that can be cut back to the lines a checkpoint knew of."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` records (those written before the checkpoint being resumed)."""
        records = self.read()
        if len(records) < lines:
            raise CheckpointError(f"{self.path} has {len(records)} records but the checkpoint expects {lines}")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records[:lines]))
        os.replace(tmp, self.path)


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Write ``checkpoint.pt`` atomically, keeping the one before as ``checkpoint.prev.pt``."""
    folder = Path(folder)
    path, previous, tmp = folder / CHECKPOINT, folder / PREVIOUS, folder / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    if path.exists():
        os.replace(path, previous)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: str | Path, kind: str, config: dict[str, Any],
                    must_match: Iterable[str]) -> dict[str, Any]:
    """Load ``checkpoint.pt`` of ``folder`` and check that it belongs to this kind of run and configuration.

    ``must_match`` names the configuration fields that must agree (the ones that change
    the computation); a mismatch or a corrupt file is a :class:`CheckpointError` that
    says what to do, and nothing is overwritten.
    """
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"--resume: no checkpoint at {path}; start the run without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {err}). It was left as it is; "
            f"{Path(folder) / PREVIOUS} holds the one before it: rename it to {CHECKPOINT} to resume from there"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a {kind} checkpoint (found {found!r})")
    saved = state.get("config", {})
    differ = [k for k in must_match if saved.get(k) != config.get(k)]
    if differ:
        details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {config.get(k)!r}" for k in differ)
        raise CheckpointError(f"{path} belongs to a different configuration ({details}); resume with the "
                              "configuration it was saved with, or start a new run in another folder")
    return state


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
        value = value.detach().float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def count(self, name: str, n: int = 1) -> None:
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
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EpochSums:
        return cls({k: v.to(device) for k, v in state["sums"].items()}, dict(state["counts"]))


@torch.no_grad()
def evaluate(forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             ) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``forward`` (images -> logits) over ``batches``."""
    correct, loss, n = None, None, 0
    for x, y in batches:
        logits = forward(x).float()
        c = correct_count(logits, y)
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        correct, loss = (c, ce) if correct is None else (correct + c, loss + ce)
        n += y.numel()
    if n == 0:
        raise ValueError("evaluate: no batches")
    return float(correct) / n, float(loss) / n
