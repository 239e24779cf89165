"""The epoch loop that the search and the final training share.

Both run epochs from where their checkpoint left off to the configuration's last one. Each epoch
runs the run's own *epoch body* (its batches), then the run builds one *record* of it;
:class:`EpochLoop` appends that record to ``metrics.jsonl``, shows a line on the progress bar, feeds
the live log (TensorBoard) and writes the checkpoint; at the end, rank 0 alone takes the
*finishing step* (the summary). The loop also owns what both need between those steps: when Search
Test or the test set is evaluated (:meth:`EpochLoop.test_due`), when a mid-epoch checkpoint is due
and every rank agrees on it (:meth:`EpochLoop.checkpoint_due`), and stopping every rank together
on a non-finite loss (:meth:`EpochLoop.stop_if`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dscd.distributed import Distributed
from dscd.livelog import Progress, TensorBoardLog, open_live_log
from dscd.runfolder import RunWriter

__all__ = ["EpochLoop"]


class EpochLoop:
    """One run's epochs: ``for epoch in loop: ...; loop.end_epoch(record, shown, checkpoint)``.

    ``config`` is the run's configuration (``epochs``, ``test_every``, ``checkpoint_minutes`` when it
    checkpoints within an epoch, ``tensorboard``); ``epoch`` and ``step`` are where the run starts
    (a resumed run's checkpoint), ``steps`` the batches of one epoch. The progress bar and the live
    log live from construction to :meth:`finish`.
    """

    def __init__(self, folder: RunWriter, dist: Distributed, config: Any, label: str, steps: int, epoch: int = 0,
                 step: int = 0, progress: bool = True) -> None:
        self.folder, self.dist, self.config, self.steps = folder, dist, config, steps
        self.epoch = epoch
        self.metrics = folder.log("metrics")
        self.bar = Progress(config.epochs * steps, epoch * steps + step, label, progress and dist.is_main)
        self.board: TensorBoardLog | None = open_live_log(folder.path, epoch, config, folder.state, dist.is_main)
        self._last_save = time.monotonic()

    def __iter__(self) -> Iterator[int]:
        """The epochs still to run (0-based); :meth:`end_epoch` moves on to the next."""
        while self.epoch < self.config.epochs:
            yield self.epoch

    @property
    def last(self) -> bool:
        """Whether the current epoch is the run's last."""
        return self.epoch + 1 == self.config.epochs

    def test_due(self) -> bool:
        """Whether this epoch ends with a test evaluation: every ``test_every`` epochs and the last one, on
        rank 0 (the only rank that records it)."""
        every = self.config.test_every
        return self.dist.is_main and (self.last or bool(every and (self.epoch + 1) % every == 0))

    def checkpoint_due(self, batch: int) -> bool:
        """Whether to checkpoint after ``batch`` (0-based) within the epoch: ``checkpoint_minutes`` have passed
        since the last checkpoint and batches remain. Under torchrun rank 0's clock decides, asked every 16
        batches (a broadcast and a device sync), so that every rank checkpoints together."""
        due = time.monotonic() - self._last_save > 60 * self.config.checkpoint_minutes
        if self.dist.active:
            due = batch % 16 == 15 and self.dist.rank0_decision(due)
        return due and batch + 1 < self.steps

    def saved(self) -> None:
        """Note that a checkpoint was just written (the clock of :meth:`checkpoint_due` restarts)."""
        self._last_save = time.monotonic()

    def stop_if(self, failed: bool, error: Callable[[], Exception]) -> None:
        """Raise ``error()`` on every rank when ``failed`` holds on any rank (a non-finite loss), the
        progress bar closed first."""
        if self.dist.on_any_rank(failed):
            self.bar.close()
            raise error()

    def end_epoch(self, record: Mapping[str, Any], shown: Mapping[str, Any], checkpoint: Callable[[int], None],
                  live: Callable[[TensorBoardLog, int], None] | None = None) -> None:
        """Close the current epoch: append ``record``, show ``shown`` as the epoch's line, feed the live log
        (the record's numbers, then ``live(board, epoch number)`` for anything else), then
        ``checkpoint(next_epoch)``."""
        self.metrics.append(dict(record))
        self.bar.epoch(shown)
        if self.board is not None:
            scalars = {k: v for k, v in record.items() if k not in ("genotype", "invalid_reason")}
            self.board.scalars(self.epoch + 1, scalars)
            if live is not None:
                live(self.board, self.epoch + 1)
        self.epoch += 1
        checkpoint(self.epoch)
        self.saved()

    def finish(self) -> bool:
        """Close the progress bar and the live log; whether this rank takes the finishing step (rank 0)."""
        self.bar.close()
        if self.board is not None:
            self.board.close()
        return self.dist.is_main
