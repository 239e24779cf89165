"""What a running search or training shows while it runs: a progress bar or plain lines, and TensorBoard.

* :class:`Progress`: a tqdm bar on a terminal or in a notebook; where stderr is neither (batch
  jobs, Slurm logs, ``nohup``) one plain line per epoch instead, so logs stay readable, sent at
  level INFO to the ``dscd`` logger (:mod:`logging`: the ``dscd`` command shows them on stderr; in
  your own script, ``logging.basicConfig(level=logging.INFO)`` does); nothing with
  ``enabled=False`` (``--quiet``).
* :class:`TensorBoardLog`: per-epoch scalars and, for a search, the architecture weights of
  both cells as heatmap images, under ``<run folder>/tensorboard`` (``--tensorboard``; needs
  the ``tensorboard`` package, ``pip install 'dscd[tensorboard]'``). A resumed run purges
  the events after its checkpoint, so curves never double back.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["Progress", "TensorBoardLog", "log_to_stderr", "open_live_log"]

logger = logging.getLogger("dscd")


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when it writes (tests and notebooks replace it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # the base class sets it; the current stderr is always used
        pass


def log_to_stderr() -> None:
    """Show the ``dscd`` logger's messages (INFO and above) on stderr, as bare lines, and only there (not passed
    on to the root logger's handlers, which Ray, for one, installs); the ``dscd`` command does this, once per
    process however often it is called."""
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class Progress:
    """Steps of a run: a tqdm bar on a terminal, one line per epoch elsewhere, nothing when disabled."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool = True, plain: bool | None = None) -> None:
        self.enabled = enabled
        if plain is None:  # a terminal or a notebook shows a bar; a log file gets lines
            plain = not (sys.stderr.isatty() or "ipykernel" in sys.modules)
        self.plain = enabled and plain
        self.desc = desc
        self.bar = tqdm(total=total, initial=initial, disable=not enabled or self.plain, unit="it", desc=desc,
                        dynamic_ncols=True)

    def update(self, steps: int = 1) -> None:
        """Advance the bar by ``steps`` iterations."""
        self.bar.update(steps)

    def show(self, values: Mapping[str, Any]) -> None:
        """Numbers of the step in progress (on the bar only)."""
        if not self.plain:
            self.bar.set_postfix(values, refresh=False)

    def epoch(self, values: Mapping[str, Any]) -> None:
        """The end of an epoch: on the bar, or as one plain line."""
        if self.plain:
            logger.info("%s: %s", self.desc, ", ".join(f"{k} {v}" for k, v in values.items()))
        elif self.enabled:
            self.bar.set_postfix(values, refresh=True)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


class TensorBoardLog:
    """Per-epoch scalars (and alpha heatmaps) for TensorBoard in ``folder / "tensorboard"``."""

    def __init__(self, folder: str | Path, start_epoch: int = 0) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("--tensorboard needs the tensorboard package: pip install 'dscd[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(Path(folder) / "tensorboard"), purge_step=start_epoch + 1)

    def scalars(self, epoch: int, record: Mapping[str, Any], prefix: str = "") -> None:
        """Every number of ``record`` (nested dicts as ``outer/inner``), at step ``epoch``."""
        for key, value in record.items():
            if key == "epoch":
                continue
            if isinstance(value, Mapping):
                self.scalars(epoch, value, f"{prefix}{key}/")
            elif isinstance(value, (bool, int, float)) and value is not None and np.isfinite(float(value)):
                self.writer.add_scalar(f"{prefix}{key}", float(value), epoch)

    def heatmap(self, epoch: int, tag: str, weights: np.ndarray) -> None:
        """A ``(edges, ops)`` array of weights in [0, 1] as a grey image (white: 1), one pixel block per cell."""
        w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, 1.0)
        image = np.kron(w, np.ones((8, 8), dtype=np.float32))  # 8x8 pixels per weight, so it is visible
        self.writer.add_image(tag, image[None], epoch, dataformats="CHW")

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()


def open_live_log(folder: str | Path, start_epoch: int, config: Any, resumed: Mapping[str, Any] | None,
                  is_main: bool = True) -> TensorBoardLog | None:
    """The run's :class:`TensorBoardLog`, or ``None``: when ``config.tensorboard`` is on, and also when the
    checkpoint being resumed (``resumed``) was written by a run that had it on, so that a resume without
    ``--tensorboard`` continues the logs its run started (and its config.json promises). Rank 0 only."""
    saved = resumed.get("config") if resumed else None
    started_with = isinstance(saved, Mapping) and bool(saved.get("tensorboard"))
    if not is_main or not (config.tensorboard or started_with):
        return None
    return TensorBoardLog(folder, start_epoch)
