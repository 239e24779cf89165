"""One search or one training over several processes, launched by ``torchrun``.

    torchrun --nproc_per_node 2 -m dscd search --profile quick --out runs/search-2
    torchrun --nproc_per_node 8 -m dscd train --genotype runs/search-2 --profile paper

:class:`Distributed` is what the loops need from ``torch.distributed`` (NCCL on GPUs,
gloo on CPU), and a single process is simply ``world_size == 1``, where every
operation is a no-op, so the loops have one code path:

- every rank builds the same global batch (same seeds) and keeps its own contiguous
  shard (:meth:`Distributed.shard`): ``batch_size`` stays the global batch and must
  divide by the number of ranks;
- gradients are averaged over the ranks before every optimiser step, so weights and
  alpha stay identical on every rank; BatchNorm statistics stay per replica, as in
  the DARTS/FairDARTS reference (in the search network BatchNorm has no parameters);
- DSCD: every rank draws the same proposals (same seed), and every loss DSCD reads is
  averaged over the ranks first, so every rank accepts or rejects alike and ``x_best``
  stays identical (paper Algorithm 2);
- rank 0 alone owns the run folder (lock, logs, checkpoints); the others receive the
  checkpoint from it, so ``--resume`` works with the same number of ranks and refuses
  another number;
- collectives time out (``DSCD_DIST_TIMEOUT`` seconds, default 600), so a rank that
  dies takes the job down instead of hanging it (torchrun also stops the others).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from dscd.runfolder import RunWriter

__all__ = ["Distributed", "FollowerFolder", "NoRecords", "RanksLost", "WorldSizeMismatch", "open_run_folder",
           "ranks_and_folder"]


class WorldSizeMismatch(ValueError):
    """A checkpoint written by N ranks is resumed with another number of ranks."""


def _timeout_seconds() -> float:
    """``DSCD_DIST_TIMEOUT`` (seconds, default 600) as a positive number; anything else names the variable."""
    text = os.environ.get("DSCD_DIST_TIMEOUT", "600")
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"DSCD_DIST_TIMEOUT must be a positive number of seconds, got {text!r}: set it so (e.g. "
                         "DSCD_DIST_TIMEOUT=600) or unset it")
    return seconds


class RanksLost(RuntimeError):
    """A collective failed: another rank died, or the collective timed out (``DSCD_DIST_TIMEOUT``)."""


@contextmanager
def _collective():
    """Turn a failed collective (gloo and NCCL raise plain RuntimeErrors) into :class:`RanksLost`."""
    try:
        yield
    except RanksLost:
        raise
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RanksLost(f"lost the other ranks ({first})") from err


class Distributed:
    """The ranks of one run (``torchrun``'s ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or one process."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, owns_group: bool = False) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.owns_group = owns_group  # initialised here, so :meth:`close` destroys it

    @classmethod
    def from_environment(cls, device: str = "auto") -> Distributed:
        """The process group torchrun describes (initialised here if needed), else a single process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        import torch.distributed as dist

        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
        owns_group = not dist.is_initialized()  # a caller's own process group is used, never destroyed
        if owns_group:
            timeout = timedelta(seconds=_timeout_seconds())
            dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timeout)
        return cls(rank, world_size, local_rank, owns_group)

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes the run folder."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether more than one rank takes part."""
        return self.world_size > 1

    def device(self, requested: torch.device) -> torch.device:
        """``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``) under torchrun."""
        if self.active and requested.type == "cuda" and requested.index is None:
            return torch.device("cuda", self.local_rank)
        return requested

    def check_batch(self, batch_size: int) -> None:
        """ValueError in one line unless the global ``batch_size`` divides by the number of ranks."""
        if batch_size % self.world_size:
            raise ValueError(f"batch_size {batch_size} is the global batch and must divide by the {self.world_size} "
                             f"ranks: choose a multiple of {self.world_size}")

    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's contiguous part of each global batch tensor (all of it in one process)."""
        if not self.active:
            return tensors
        n = tensors[0].shape[0] // self.world_size
        return tuple(t[self.rank * n:(self.rank + 1) * n] for t in tensors)

    def average_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average ``tensor`` over the ranks, in place; every rank gets the same bits."""
        if self.active:
            import torch.distributed as dist

            with _collective():
                dist.all_reduce(tensor)
            tensor.div_(self.world_size)
        return tensor

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks in place (all-reduce) and return it; a no-op on one rank."""
        if self.active:
            import torch.distributed as dist

            with _collective():
                dist.all_reduce(tensor)
        return tensor

    def rank0_decision(self, decision: bool) -> bool:
        """Rank 0's decision on every rank (for choices made from clocks, such as when to checkpoint)."""
        if not self.active:
            return decision
        import torch.distributed as dist

        flag = torch.tensor([1.0 if decision else 0.0], device=self._tensor_device())
        with _collective():
            dist.broadcast(flag, src=0)
        return bool(flag.item())

    def on_any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank (on every rank)."""
        if not self.active:
            return flag
        count = torch.tensor([1.0 if flag else 0.0], device=self._tensor_device())
        return bool(self.sum_(count).item() > 0)

    def averaged_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss averaged over the ranks as a value, with this rank's own gradient (which the
        gradient averaging then averages): what DSCD compares is the same on every rank."""
        if not self.active:
            return loss
        mean = self.average_(loss.detach().clone())
        return loss + (mean - loss.detach())

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """Average the gradients of ``params`` over the ranks with one collective."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.active or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.average_(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_gradients_on_backward(self, params: Sequence[nn.Parameter]) -> None:
        """Average each parameter's gradient as soon as backward has accumulated it (for steps whose
        backward runs inside an optimiser, such as DSCD's local step)."""
        if not self.active:
            return

        def average(param: torch.Tensor) -> None:
            if param.grad is not None:  # the hook runs after accumulation, so it is set
                self.average_(param.grad)

        for p in params:
            p.register_post_accumulate_grad_hook(average)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        with _collective():
            dist.broadcast_object_list(box, src=0, device=self._object_device())
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (``None`` elsewhere)."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        boxes: list[Any] = [None] * self.world_size
        with _collective():
            dist.all_gather_object(boxes, obj)
        return boxes if self.is_main else None

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers in every rank's ``module``."""
        if not self.active:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                with _collective():
                    dist.broadcast(tensor, src=0)

    def _object_device(self) -> torch.device | None:
        import torch.distributed as dist

        return torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else None

    def _tensor_device(self) -> torch.device:
        return self._object_device() or torch.device("cpu")

    def close(self) -> None:
        """Destroy the process group this object started, if any."""
        if self.active and self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


class NoRecords:
    """A :class:`dscd.runfolder.RecordLog` that keeps nothing: a follower rank's logs."""

    def append(self, record: dict[str, Any]) -> None:
        """Drop ``record``."""
        pass

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """No records."""
        return []


class FollowerFolder:
    """What a rank other than 0 sees of the run folder (a :class:`dscd.runfolder.RunWriter`): rank 0's
    checkpoint, and writes that do nothing."""

    def __init__(self, path: Path, state: dict[str, Any] | None) -> None:
        self.path, self.state = path, state

    def start(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        """Nothing: rank 0 records the run."""
        pass

    def log(self, name: str) -> NoRecords:
        """A log that keeps nothing (:class:`NoRecords`)."""
        return NoRecords()

    def write_json(self, name: str, data: Any) -> None:
        """Nothing: rank 0 writes the files."""
        pass

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Nothing: rank 0 writes the checkpoint."""
        pass


def check_world_size(state: dict[str, Any] | None, path: Path, world_size: int) -> None:
    """Refuse to resume a checkpoint written by another number of ranks."""
    if state is None:
        return
    saved = int(state.get("world_size", 1))
    if saved != world_size:
        how = "without torchrun" if saved == 1 else f"with torchrun --nproc_per_node {saved}"
        raise WorldSizeMismatch(f"--resume: {path} was checkpointed by {saved} process(es) and this run has "
                                f"{world_size}: resume it {how} (the data shards and the batch per rank depend on it)")


@contextmanager
def open_run_folder(dist: Distributed, opener: Callable[[], Any], path: Path) -> Iterator[RunWriter]:
    """Rank 0 opens the run folder with ``opener`` (a :class:`~dscd.runfolder.RunFolder` context);
    every other rank gets a :class:`FollowerFolder` holding rank 0's checkpoint. An error on rank 0
    (folder in use, bad checkpoint, another world size) is raised on every rank with its message."""
    from dscd.runfolder import RunFolderError

    if not dist.active:
        with opener() as folder:
            check_world_size(folder.state, path, 1)
            yield folder
        return
    folder, error = None, None
    if dist.is_main:
        try:
            context = opener()
            folder = context.__enter__()
            check_world_size(folder.state, path, dist.world_size)
        except (RunFolderError, WorldSizeMismatch, ValueError) as err:
            if folder is not None:
                context.__exit__(type(err), err, None)
            folder, error = None, (type(err).__name__, str(err))
    error, state = dist.broadcast((error, folder.state if folder is not None else None))
    if error is not None:
        kind = WorldSizeMismatch if error[0] == "WorldSizeMismatch" else RunFolderError
        raise kind(error[1])
    if not dist.is_main:
        yield FollowerFolder(path, state)
        return
    try:
        yield folder
    except BaseException as err:
        if not context.__exit__(type(err), err, err.__traceback__):
            raise
    else:
        context.__exit__(None, None, None)


@contextmanager
def ranks_and_folder(device: str, batch_size: int, opener: Callable[[], Any],
                     path: str | Path) -> Iterator[tuple[Distributed, RunWriter]]:
    """What a search or a training loop starts with: the ranks of this run (torchrun's, or one
    process) and the run folder as this rank sees it (:func:`open_run_folder`); the global
    ``batch_size`` must divide by the ranks. A process group created here is destroyed on exit."""
    dist = Distributed.from_environment(device)
    try:
        dist.check_batch(batch_size)
        with open_run_folder(dist, opener, Path(path)) as folder:
            yield dist, folder
    finally:
        dist.close()
