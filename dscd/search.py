"""The architecture search: first-order bilevel FairDARTS with Adam or DSCD on alpha.

One loop serves both optimisers (paper section 3 and Appendix E.2). Every iteration takes an alpha
step on a validation minibatch (Adam, or the DSCD hybrid wrapping that same
Adam, whose global steps evaluate the same objective on the same minibatch) and
then a weight step on a training minibatch (SGD with a cosine learning rate and
gradient clipping). Each step back-propagates only into the parameters it
updates.

A run lives in a folder: ``config.json``, ``metrics.jsonl`` (one record per
epoch), ``alphas.jsonl`` (the alpha tensors per epoch), ``checkpoint.pt`` (atomic,
the one before kept as ``checkpoint.prev.pt``), and at the end ``genotype.json``
and ``summary.json``. ``run_search(config, out, resume=True)`` continues exactly where
the last checkpoint left off (bit for bit on CPU). The folder itself (lock, refusals,
checkpoints, logs) is :class:`dscd.runfolder.RunFolder`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dscd.config import (
    MATCHED_BY_CONTENT,
    NOT_COMPUTED,
    RunConfig,
    check_bool,
    check_integer,
    check_number,
    check_sequence,
)
from dscd.data import ImageLoader, search_split, source_fingerprint, test_set
from dscd.distributed import Distributed, ranks_and_folder
from dscd.epochs import EpochLoop
from dscd.livelog import TensorBoardLog
from dscd.optim import DSCD, DSCD_DEFAULTS, Backward, DSCDSettings, Evaluate, NonFiniteLoss, drive_stages
from dscd.profiles import get_profile
from dscd.relaxations import get_relaxation
from dscd.run_common import (
    EpochSums,
    correct_count,
    cosine_anneal,
    evaluate,
    resolve_device,
    run_metadata,
    seed_everything,
)
from dscd.runfolder import CHECKPOINT, JsonLines, RunFolder, RunWriter
from dscd.search_spaces import get_space

__all__ = ["SearchConfig", "SearchDiverged", "Searcher", "load_alphas", "load_metrics", "open_search_folder",
           "run_search", "search_identity", "search_profile", "search_steps_per_epoch"]

OPTIMIZERS = ("adam", "dscd")
#: The largest |bound| of ``dscd_domain``: proposals are drawn across the domain, so it must stay finite.
DSCD_DOMAIN_BOUND = 1000.0
#: The JSON-lines logs of a search folder: one record per epoch in each.
SEARCH_LOGS = ("metrics", "alphas")
#: What a search checkpoint must hold to be resumed.
SEARCH_CHECKPOINT_KEYS = ("epoch", "batch", "accumulator", "searcher", "elapsed")


class SearchDiverged(FloatingPointError):
    """A non-finite loss; the message names the epoch and step. The last good checkpoint is kept."""


@dataclass(frozen=True)
class SearchConfig(RunConfig):
    """Everything a search run depends on; defaults are the FairDARTS reference (the ``paper`` profile).

    Data: ``data`` (source, see :mod:`dscd.data`; ``None`` reads ``DSCD_DATA``),
    ``per_class`` / ``test_per_class`` (subset sizes, ``None`` for all), ``image_size``.
    Network: ``channels``, ``layers``, ``nodes``, ``ops``, ``relaxation``. Objective: ``w01``, FairDARTS'
    w_{0-1}, the weight of the zero-one loss (a loss weight, not a network weight like the ``w_`` fields).
    The name is FairDARTS' symbol and part of every run folder's identity, so it stays.
    Alpha: ``optimizer`` (``adam`` or ``dscd``), Adam's ``alpha_lr``, ``alpha_betas``,
    ``alpha_weight_decay``; DSCD's ``dscd_T``, ``dscd_K``, ``dscd_domain``,
    ``dscd_reset_local_state``, ``dscd_refresh_best`` (off: Algorithm 2 as published; on: y_best
    re-evaluated at each switch to global steps, see :class:`dscd.optim.DSCD`); phi anneals over the
    whole search.
    Weights: SGD ``w_lr`` cosine to ``w_lr_min``, ``w_momentum``, ``w_weight_decay``, ``grad_clip``.
    Discretisation: ``rule``, ``threshold``. Run: ``epochs``, ``batch_size``, ``test_every``
    (epochs between Search Test evaluations; the last epoch always), ``seed``, ``device``,
    ``amp`` (bfloat16 autocast on CUDA), ``channels_last``, ``checkpoint_minutes``.
    """

    space: str = "darts"
    channels: int = 16
    layers: int = 8
    nodes: int = 4
    #: None: the space's candidates under the relaxation (the 7 FairDARTS operations for darts and sigmoid)
    ops: tuple[str, ...] = None  # type: ignore[assignment]
    relaxation: str = "sigmoid"
    #: w_{0-1}: the weight of the relaxation's regulariser (sigmoid: the zero-one loss); None: its default (10)
    w01: float = None  # type: ignore[assignment]
    optimizer: str = "adam"
    epochs: int = 50
    batch_size: int = 128
    alpha_lr: float = 3e-3
    alpha_betas: tuple[float, float] = (0.9, 0.999)
    alpha_weight_decay: float = 1e-3
    dscd_T: int = DSCD_DEFAULTS.T
    dscd_K: int = DSCD_DEFAULTS.K
    dscd_domain: tuple[float, float] = DSCD_DEFAULTS.domain
    dscd_reset_local_state: bool = DSCD_DEFAULTS.reset_local_state
    dscd_refresh_best: bool = DSCD_DEFAULTS.refresh_best
    w_lr: float = 0.005
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    rule: str = None  # type: ignore[assignment]  #: None: the relaxation's default rule (sigmoid: fairdarts)
    threshold: float = 0.85
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        space, relaxation = get_space(self.space), get_relaxation(self.relaxation)
        derived = {"ops": lambda: space.default_ops(relaxation.name),
                   "rule": lambda: space.default_rule(relaxation.name), "w01": lambda: relaxation.default_w01}
        unset = frozenset(name for name in derived if getattr(self, name) is None)
        for name in unset:
            object.__setattr__(self, name, derived[name]())
        object.__setattr__(self, "_derived", unset)
        object.__setattr__(self, "ops", check_sequence(self, "ops", str))
        object.__setattr__(self, "alpha_betas",
                           tuple(float(b) for b in check_sequence(self, "alpha_betas", (int, float), 2)))
        object.__setattr__(self, "dscd_domain",
                           tuple(float(d) for d in check_sequence(self, "dscd_domain", (int, float), 2)))
        for name, minimum, maximum in (("nodes", 1, 64), ("dscd_T", 1, 10**9), ("dscd_K", 1, 10**7)):
            check_integer(self, name, minimum, maximum=maximum)  # K: DSCD keeps a window of K values in memory
        for name in ("alpha_lr", "w_lr", "checkpoint_minutes"):
            check_number(self, name, 0.0, low_open=True)
        for name in ("w01", "alpha_weight_decay", "w_weight_decay", "w_lr_min", "grad_clip"):
            check_number(self, name, 0.0)
        check_number(self, "w_momentum", 0.0, 1.0)
        check_number(self, "threshold", 0.0, 1.0)
        check_bool(self, "dscd_reset_local_state")
        check_bool(self, "dscd_refresh_best")
        if self.w_lr_min > self.w_lr:
            raise ValueError(f"w_lr_min ({self.w_lr_min}) must not exceed w_lr ({self.w_lr})")
        if not all(0.0 <= b < 1.0 for b in self.alpha_betas):
            raise ValueError(f"alpha_betas must be two numbers in [0, 1), got {list(self.alpha_betas)}")
        if not self.dscd_domain[0] < self.dscd_domain[1]:
            raise ValueError(f"dscd_domain must be (lo, hi) with lo < hi, got {list(self.dscd_domain)}")
        if not all(abs(d) <= DSCD_DOMAIN_BOUND for d in self.dscd_domain):
            raise ValueError(f"dscd_domain must lie within [-{DSCD_DOMAIN_BOUND:g}, {DSCD_DOMAIN_BOUND:g}] (alpha "
                             f"beyond that saturates every relaxation), got {list(self.dscd_domain)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if relaxation.regulariser is None and self.w01:
            raise ValueError(f"w01 weights a relaxation's regulariser and {relaxation.name} has none: set w01 to 0, "
                             f"got {self.w01}")
        if not isinstance(self.rule, str) or self.rule not in space.rules:
            raise ValueError(f"rule must be one of {', '.join(space.rules)} in the {space.name} space, "
                             f"got {self.rule!r}")
        space.check(self)

    @property
    def dscd_settings(self) -> DSCDSettings:
        """The ``dscd_*`` fields as :class:`dscd.optim.DSCDSettings` (what the search gives :class:`DSCD`)."""
        return DSCDSettings(T=self.dscd_T, K=self.dscd_K, domain=self.dscd_domain,
                            refresh_best=self.dscd_refresh_best, reset_local_state=self.dscd_reset_local_state)


#: Fields that change the computation: a checkpoint must agree on them to be resumed.
_MUST_MATCH = tuple(f.name for f in dataclasses.fields(SearchConfig)
                    if f.name not in (*NOT_COMPUTED, *MATCHED_BY_CONTENT, "checkpoint_minutes")) + ("data_fingerprint",)

def search_steps_per_epoch(config: SearchConfig, classes: int = 10, available_per_class: int = 5000) -> int:
    """A search's iterations per epoch without loading its data: each half of the training set
    (``per_class`` images per class, or ``available_per_class`` when it is null: CIFAR-10's 5,000)
    of ``classes`` classes, over ``batch_size`` with the last partial batch dropped, as
    :func:`dscd.data.search_split` and the search's loaders make them. DSCD's T and K are in these steps."""
    per_class = config.per_class if config.per_class is not None else available_per_class
    return (per_class // 2 * classes) // config.batch_size


def search_profile(name: str, **changes: Any) -> SearchConfig:
    """The search configuration of profile ``name`` (:data:`dscd.profiles.PROFILES`) with ``changes`` applied;
    with a ``space`` among them, at the profile's scale of that space."""
    space = changes.get("space", "darts")
    scale = get_profile(name).search_changes(space if isinstance(space, str) else "darts")
    return SearchConfig(profile=name, **scale).replace(**changes)


# ------------------------------------------------------------------------------------ the loop


class Searcher:
    """The network, the two optimisers and the two steps of one search iteration."""

    def __init__(self, config: SearchConfig, num_classes: int, in_channels: int, steps_per_epoch: int,
                 device: torch.device, dist: Distributed | None = None) -> None:
        self.config = config
        self.device = device
        self.dist = dist or Distributed()
        gen = torch.Generator().manual_seed(config.seed)
        self.space = get_space(config.space)
        self.relaxation = get_relaxation(config.relaxation)
        self.net = self.space.supernet(config, num_classes, in_channels, gen)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.net.to(device)
        self.net.to(memory_format=self.memory_format)
        self.dist.broadcast_module(self.net)  # the same start on every rank (the seeds agree already)
        self.alphas = self.net.alphas()
        self.weights = self.net.weights()
        self.dist.average_gradients_on_backward(self.alphas)  # Adam's and DSCD's local steps alike
        adam = torch.optim.Adam(self.alphas, lr=config.alpha_lr, betas=config.alpha_betas,
                                weight_decay=config.alpha_weight_decay)
        self.dscd = None
        if config.optimizer == "dscd":
            self.dscd = DSCD(self.alphas, adam, total_steps=config.epochs * steps_per_epoch, seed=config.seed,
                             **config.dscd_settings.kwargs())
        self.alpha_opt: torch.optim.Optimizer = self.dscd or adam
        self.w_opt = torch.optim.SGD(self.weights, lr=config.w_lr, momentum=config.w_momentum,
                                     weight_decay=config.w_weight_decay)
        self.autocast = config.amp and device.type == "cuda"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self.net(x.to(memory_format=self.memory_format)).float()

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The search objective on a batch (cross-entropy plus the relaxation's regulariser) and the logits."""
        logits = self._forward(x)
        return self.loss(logits, y), logits

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The search objective of the network's ``logits`` on labels ``y``: cross-entropy plus the relaxation's
        regulariser of this searcher's alpha."""
        return self.relaxation.objective(F.cross_entropy(logits, y), self.alphas, self.config.w01)

    def alpha_stages(self) -> Generator[Evaluate | Backward, Any, torch.Tensor]:
        """One alpha step (Adam, or DSCD's local or global step) as the stages of :meth:`dscd.optim.DSCD.stages`:
        what it asks of the objective and of autograd, so that one driver can serve many seeds."""
        if self.dscd is not None:
            return (yield from self.dscd.stages())
        self.alpha_opt.zero_grad(set_to_none=True)
        loss = yield Evaluate(grad=True)
        yield Backward(loss, self.alphas)
        self.alpha_opt.step()
        return loss

    def weight_stages(self) -> Generator[Evaluate | Backward, Any, torch.Tensor]:
        """One SGD step on the weights as stages (the zero-one term is in the loss, as in the reference)."""
        self.w_opt.zero_grad(set_to_none=True)
        loss = yield Evaluate(grad=True)
        yield Backward(loss, self.weights)
        self.dist.average_gradients(self.weights)
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_opt.step()
        return loss

    def _drive(self, stages: Generator[Evaluate | Backward, Any, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               averaged: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``stages`` on the batch ``(x, y)``; returns (loss, logits) of its last evaluation. ``averaged``:
        the loss's value averaged over the ranks (DSCD's decisions are then the same on every rank)."""
        seen: dict[str, torch.Tensor] = {}

        def evaluate() -> torch.Tensor:
            loss, seen["logits"] = self.objective(x, y)
            return self.dist.averaged_loss(loss) if averaged else loss

        loss = drive_stages(stages, evaluate)
        return loss.detach(), seen["logits"].detach()

    def alpha_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam or DSCD step on a validation batch; returns (loss, logits) at the pre-step alpha."""
        return self._drive(self.alpha_stages(), x, y, averaged=self.dscd is not None)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on a training batch; returns (loss, logits) at the pre-step weights."""
        return self._drive(self.weight_stages(), x, y, averaged=False)

    def set_lr(self, epoch: int) -> float:
        """Cosine from ``w_lr`` to ``w_lr_min`` over the epochs (the reference steps it per epoch)."""
        c = self.config
        lr = cosine_anneal(c.w_lr, c.w_lr_min, epoch, c.epochs)
        for group in self.w_opt.param_groups:
            group["lr"] = lr
        return lr

    def accuracy(self, loader: ImageLoader) -> float:
        """The supernet's accuracy over ``loader`` (one pass, eval mode; train mode restored)."""
        self.net.eval()
        try:
            return evaluate(self._forward, loader.epoch(0))[0]
        finally:
            self.net.train()

    def state_dict(self) -> dict[str, Any]:
        """The supernet's and both optimisers' states, for a checkpoint."""
        return {"net": self.net.state_dict(), "alpha_opt": self.alpha_opt.state_dict(),
                "w_opt": self.w_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state."""
        self.net.load_state_dict(state["net"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.w_opt.load_state_dict(state["w_opt"])


def _cell_record(weights: Sequence[torch.Tensor], config: SearchConfig) -> dict[str, Any]:
    """The discretised cell of edge weights (one tensor per cell of the space): per-cell summaries, the
    genotype, its validity (and what the space adds, such as NAS-Bench-201's lookup)."""
    return get_space(config.space).cell_record([w.detach().float().cpu().numpy() for w in weights], config)


def _cell_numbers(searcher: Searcher, config: SearchConfig) -> tuple[dict[str, Any], dict[str, list]]:
    """The epoch's cell fields, and the alpha tensors as lists by cell name (``alphas.jsonl``)."""
    with torch.no_grad():
        out = _cell_record(searcher.net.edge_weights(), config)
    alphas = {cell: a.detach().float().cpu().numpy().round(6).tolist()
              for cell, a in zip(searcher.space.cells, searcher.alphas, strict=True)}
    return out, alphas


def _best_cell(searcher: Searcher, config: SearchConfig) -> dict[str, Any]:
    """Algorithm 2's ``x_best`` discretised as the current alpha is: its validity and kept edges per cell
    (what an epoch's record keeps of it, ``record["best"]``, beside the current cell's)."""
    assert searcher.dscd is not None
    with torch.no_grad():
        out = _cell_record(searcher.net.edge_weights(searcher.dscd.best_params()), config)
    fields = ("valid", "invalid_reason", *(f"kept_edges_{cell}" for cell in searcher.space.cells))
    return {key: out[key] for key in fields}


def run_search(config: SearchConfig, out: str | Path, resume: bool = False, progress: bool = True
               ) -> dict[str, Any] | None:
    """Run (or resume) a search into the folder ``out``; returns the summary (also ``summary.json``), or
    ``None`` on the ranks other than 0 of a torchrun run.

    The folder is locked while the search runs, a folder holding any run is never started
    afresh, and ``resume=True`` continues from the last checkpoint (see :mod:`dscd.runfolder`).
    Raises :class:`~dscd.runfolder.RunFolderError` for a folder that cannot be used,
    :class:`~dscd.data.DataError` for bad data, :class:`SearchDiverged` on a non-finite loss.
    """
    config = config.with_data_resolved()
    device = resolve_device(config.device)
    identity = search_identity(config)
    with ranks_and_folder(config.device, config.batch_size, lambda: open_search_folder(out, resume, identity),
                          out) as (dist, folder):
        return _search(config, folder, dist.device(device), identity, progress, dist)


def search_identity(config: SearchConfig) -> dict[str, Any]:
    """What defines a search (``config`` with its data resolved): its recorded configuration and its data's
    fingerprint; every checkpoint stores it and a resume must agree with it."""
    return {**config.recorded(), "data_fingerprint": source_fingerprint(config.resolved_data)}


def open_search_folder(out: str | Path, resume: bool, identity: dict[str, Any]) -> RunFolder:
    """The search folder ``out`` opened (locked; refused, new or resumed) for the search ``identity``."""
    return RunFolder.open(out, "search", resume, identity, _MUST_MATCH, logs=SEARCH_LOGS,
                          required=SEARCH_CHECKPOINT_KEYS)


def _search(config: SearchConfig, folder: RunWriter, device: torch.device, identity: dict[str, Any],
            progress: bool, dist: Distributed) -> dict[str, Any] | None:
    """The search loop; under torchrun every rank runs it and rank 0 alone returns the summary."""
    run = _SearchRun(config, folder, device, identity, dist)
    loop = EpochLoop(folder, dist, config, f"search {config.optimizer}", run.steps, run.epoch, run.start_batch,
                     progress)
    run.searcher.net.train()
    for _ in loop:
        run.epoch_body(loop, progress)
        run.end_epoch(loop)
    return run.finish() if loop.finish() else None


def _shown(record: dict[str, Any], cells: Sequence[str]) -> dict[str, Any]:
    """The progress line of an epoch: kept edges per cell, and a NAS-Bench-201 cell's looked-up accuracy."""
    shown = {"epoch": record["epoch"], "alpha_loss": f"{record['alpha_loss']:.3f}",
             "val": f"{100 * record['val_acc']:.1f}%", "kept": "/".join(str(record[f"kept_edges_{c}"]) for c in cells),
             "valid": record["valid"]}
    if record["test_acc"] is not None:
        shown["test"] = f"{100 * record['test_acc']:.1f}%"
    if "lookup" in record:
        shown["nb201_cifar10"] = f"{record['lookup']['accuracy']['cifar10-test']:.2f}%"
    return shown


class _SearchRun:
    """One search's data, searcher and bookkeeping: the epoch body, the record builder, the checkpoint and
    the finishing step that :func:`_search` runs in an :class:`~dscd.epochs.EpochLoop`."""

    def __init__(self, config: SearchConfig, folder: RunWriter, device: torch.device, identity: dict[str, Any],
                 dist: Distributed, batched: dict[str, Any] | None = None) -> None:
        self.config, self.folder, self.identity, self.dist = config, folder, identity, dist
        state = folder.state
        seed_everything(config.seed)
        train_data, val_data = search_split(config.data_config)
        test_data = test_set(config.data_config)
        bs = config.batch_size
        if min(len(train_data), len(val_data)) < bs:
            raise ValueError(f"batch_size {bs} exceeds the {min(len(train_data), len(val_data))} images of a "
                             "search half: lower batch_size or raise per_class")
        self.train_loader = ImageLoader(train_data, bs, augment=True, drop_last=True, seed=config.seed, device=device)
        self.val_loader = ImageLoader(val_data, bs, augment=True, drop_last=True, seed=config.seed + 1,
                                      device=device)
        self.test_loader = ImageLoader(test_data, max(bs, 256), shuffle=False, device=device)
        self.steps = min(len(self.train_loader), len(self.val_loader))
        self.searcher = Searcher(config, train_data.num_classes, train_data.images.shape[1], self.steps, device, dist)
        self.alpha_log = folder.log("alphas")
        self.epoch, self.start_batch, self.sums, self.elapsed = 0, 0, EpochSums(), 0.0
        if state is not None:
            self.searcher.load_state_dict(state["searcher"])
            self.epoch, self.start_batch, self.elapsed = state["epoch"], state["batch"], state["elapsed"]
            self.sums = EpochSums.from_state(state.get("accumulators", [state["accumulator"]])[dist.rank], device)
        else:
            meta = {**run_metadata(), "data": self.identity["data"], "data_fingerprint": identity["data_fingerprint"],
                    "device": str(device)}
            if batched is not None:  # the one field by which a batched seed's folder differs (dscd.batched)
                meta["batched"] = batched
            folder.start(config.recorded(), meta)

    def checkpoint(self, next_epoch: int, next_batch: int) -> None:
        accumulators = self.dist.gather(self.sums.state())  # each rank's partial sums, so that a resume is exact
        self.folder.save_checkpoint({"config": self.identity, "epoch": next_epoch, "batch": next_batch,
                                     "accumulator": self.sums.state(), "accumulators": accumulators,
                                     "world_size": self.dist.world_size, "searcher": self.searcher.state_dict(),
                                     "elapsed": self.elapsed})

    def next_epoch(self, epoch: int) -> None:
        """The checkpoint at an epoch's end: the next epoch starts at its first batch with empty sums."""
        self.start_batch, self.sums = 0, EpochSums()
        self.checkpoint(epoch, 0)

    def _stop_if_diverged(self, loop: EpochLoop, step: int) -> None:
        """Losses are checked before every checkpoint, not every step (no device sync per step)."""
        bad = self.sums.nonfinite()
        loop.stop_if(bool(bad), lambda: self._diverged(" and ".join(bad) or "a loss on another rank", loop, step))

    def _diverged(self, what: str, loop: EpochLoop, step: int) -> SearchDiverged:
        out = self.folder.path
        kept = (f"the last good checkpoint in {out} is intact" if (out / CHECKPOINT).exists()
                else "no checkpoint had been written yet")
        return SearchDiverged(f"non-finite {what} in epoch {loop.epoch + 1}, by step {step}; {kept}")

    def epoch_body(self, loop: EpochLoop, progress: bool) -> None:
        """One epoch's iterations (an alpha step, then a weight step), from ``start_batch``; checkpoints
        within the epoch when one is due."""
        searcher, dist, bar, steps, epoch = self.searcher, self.dist, loop.bar, self.steps, loop.epoch
        epoch_start = time.perf_counter()
        self.lr = searcher.set_lr(epoch)
        batches = zip(self.train_loader.epoch(epoch, self.start_batch),
                      self.val_loader.epoch(epoch, self.start_batch), strict=False)
        for b, ((xt, yt), (xv, yv)) in enumerate(batches, start=self.start_batch):
            if b >= steps:
                break
            (xt, yt), (xv, yv) = dist.shard(xt, yt), dist.shard(xv, yv)  # this rank's part of the global batch
            try:
                loss_a, logits_v = searcher.alpha_step(xv, yv)
            except NonFiniteLoss:  # DSCD reads every local loss and refuses a non-finite one before any change
                bar.close()
                raise self._diverged("alpha_loss", loop, b + 1) from None
            loss_w, logits_t = searcher.weight_step(xt, yt)
            self.count_step(loop, b, (loss_a, logits_v, yv), (loss_w, logits_t, yt), progress)
            if loop.checkpoint_due(b):
                self._stop_if_diverged(loop, b + 1)
                self.elapsed += time.perf_counter() - epoch_start
                epoch_start = time.perf_counter()
                self.checkpoint(epoch, b + 1)
                loop.saved()
        self._stop_if_diverged(loop, steps)
        self.elapsed += time.perf_counter() - epoch_start

    def count_step(self, loop: EpochLoop, b: int, alpha: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                   weight: tuple[torch.Tensor, torch.Tensor, torch.Tensor], progress: bool) -> None:
        """Add iteration ``b``'s (loss, logits, labels) of the alpha and the weight step to the epoch's sums,
        and show them on the progress bar."""
        (loss_a, logits_v, yv), (loss_w, logits_t, yt) = alpha, weight
        sums, bar, searcher = self.sums, loop.bar, self.searcher
        sums.add("alpha_loss", loss_a)
        sums.add("weight_loss", loss_w)
        sums.add("train_correct", correct_count(logits_t, yt))
        sums.add("val_correct", correct_count(logits_v, yv))
        sums.count("steps")
        sums.count("train", yt.numel())
        sums.count("val", yv.numel())
        bar.update(1)
        if progress and not bar.plain and (b % 10 == 0 or b == self.steps - 1):
            post = {"epoch": loop.epoch + 1, "loss_a": f"{float(loss_a):.3f}", "loss_w": f"{float(loss_w):.3f}"}
            if searcher.dscd is not None:
                s = searcher.dscd.stats
                post.update(step=s["next_step"], accept=f"{s['accepted'] / max(1, s['global_steps']):.2f}")
            bar.show(post)

    def end_epoch(self, loop: EpochLoop) -> None:
        """Close the epoch: its record and alpha tensors appended, its line shown, the checkpoint written."""
        record, alphas = self.record(loop)
        self.alpha_log.append({"epoch": loop.epoch + 1, **alphas})
        loop.end_epoch(record, _shown(record, self.searcher.space.cells), self.next_epoch, self.live_weights)

    def record(self, loop: EpochLoop) -> tuple[dict[str, Any], dict[str, list]]:
        """The epoch's record (``metrics.jsonl``), and the alpha tensors as lists by cell (``alphas.jsonl``)."""
        searcher = self.searcher
        total_sums = self.sums.reduced(self.dist)  # sums and counts over the ranks
        record: dict[str, Any] = {"epoch": loop.epoch + 1, "steps": self.sums.counts["steps"], "lr": self.lr}
        record.update(alpha_loss=total_sums.mean("alpha_loss", "steps"),
                      weight_loss=total_sums.mean("weight_loss", "steps"),
                      train_acc=total_sums.mean("train_correct", "train"),
                      val_acc=total_sums.mean("val_correct", "val"))
        record["test_acc"] = searcher.accuracy(self.test_loader) if loop.test_due() else None
        cells, alphas = _cell_numbers(searcher, self.config)
        record.update(cells)
        if searcher.dscd is not None:
            s = searcher.dscd.stats
            record["dscd"] = {k: v for k, v in s.items() if k not in ("step", "next_step")}  # every counter
            for cell, per in zip(searcher.space.cells, searcher.dscd.stats_per_parameter(), strict=True):
                record["dscd"].update({f"proposed_{cell}": per["proposed"], f"accepted_{cell}": per["accepted"]})
            record["best"] = _best_cell(searcher, self.config)  # x_best's cell beside x_current's
        record["seconds"] = self.elapsed
        return record, alphas

    def live_weights(self, board: TensorBoardLog, epoch: int) -> None:
        """The live log's heatmaps of every cell's edge weights."""
        with torch.no_grad():
            for cell, w in zip(self.searcher.space.cells, self.searcher.net.edge_weights(), strict=True):
                board.heatmap(epoch, f"weights/{cell}", w.detach().float().cpu().numpy())

    def finish(self) -> dict[str, Any]:
        """Rank 0's finishing step: ``genotype.json``, DSCD's ``genotype_best.json`` and ``summary.json``."""
        config, folder, searcher = self.config, self.folder, self.searcher
        space = searcher.space
        final = folder.log("metrics").read()[-1]
        folder.write_json("genotype.json", final["genotype"])
        summary = {"config": config.recorded(), "data_fingerprint": self.identity["data_fingerprint"],
                   "folder": str(folder.path), "epochs": config.epochs, "seconds": self.elapsed, "final": final,
                   "valid": final["valid"], "genotype": final["genotype"]}
        summary.update({field: final[field] for field in space.summary_fields})
        if searcher.dscd is not None:  # Algorithm 2's output: the best point, discretised the same way
            with torch.no_grad():
                best = _cell_record(searcher.net.edge_weights(searcher.dscd.best_params()), config)
            folder.write_json("genotype_best.json", best["genotype"])
            summary["genotype_best"] = best["genotype"]
            summary["best_valid"] = best["valid"]
            summary.update({f"{field}_best": best[field] for field in space.summary_fields})
        folder.write_json("summary.json", summary)
        return summary


# ------------------------------------------------------------------------------------ reading runs


def load_metrics(folder: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run folder."""
    return JsonLines(Path(folder) / "metrics.jsonl").read()


def load_alphas(folder: str | Path) -> tuple[np.ndarray, ...]:
    """``(epochs, one array (E, edges, ops) per cell)`` recorded by a run: ``(epochs, normal, reduce)`` in the
    DARTS space, ``(epochs, cell)`` in NAS-Bench-201's (the cells in their space's order)."""
    rows = JsonLines(Path(folder) / "alphas.jsonl").read()
    cells = [key for key in rows[0] if key != "epoch"] if rows else []
    return (np.array([r["epoch"] for r in rows]), *(np.array([r[c] for r in rows]) for c in cells))
