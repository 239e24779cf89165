"""Final-architecture training: a genotype trained from scratch (paper Table 1 "Eval.", Table 2).

One loop serves every genotype (paper section 4, the DARTS/FairDARTS evaluation protocol):
the network of :class:`dscd.eval_network.EvalNetwork`, SGD with momentum and weight decay,
a cosine learning rate (per epoch, to ``lr_min``), gradient clipping, the auxiliary
head's loss weighted by ``aux_weight``, cutout, and drop path ramped linearly from
0 to ``drop_path`` over the epochs.

A run lives in a folder: ``config.json``, ``genotype.json``, ``meta.json``,
``metrics.jsonl`` (one record per epoch), ``checkpoint.pt`` (atomic, written every
epoch, the one before kept as ``checkpoint.prev.pt``) and at the end
``summary.json`` (test accuracy, parameters with and without the auxiliary head,
FLOPs). ``train_genotype(..., resume=True)`` continues from the last checkpoint exactly (bit
for bit on CPU: the weights, the optimiser, the generators of drop path).

An invalid genotype (a cell through which nothing propagates) is refused before
anything is written, with the validity check's message.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dscd.config import MATCHED_BY_CONTENT, NOT_COMPUTED, RunConfig, check_bool, check_integer, check_number
from dscd.data import ImageLoader, source_fingerprint, test_set, train_set
from dscd.distributed import Distributed, ranks_and_folder
from dscd.epochs import EpochLoop
from dscd.eval_network import EvalNetwork, InvalidArchitectureError, network_size
from dscd.genotype import Genotype, check_validity, load_genotype
from dscd.model_files import MODEL_FILE, save_model
from dscd.profiles import get_profile
from dscd.run_common import (
    EpochSums,
    correct_count,
    cosine_anneal,
    evaluate,
    get_rng_state,
    resolve_device,
    run_metadata,
    seed_everything,
    set_rng_state,
)
from dscd.runfolder import RunFolder, RunWriter, read_summary

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "check_trainable", "load_summary",
           "train_genotype", "train_profile"]


class TrainingDiverged(FloatingPointError):
    """A non-finite training loss in an epoch; the checkpoint of the epoch before is kept."""


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Everything a final training depends on; defaults are the reference's (the ``paper`` profile).

    Data: ``data`` (source, see :mod:`dscd.data`; ``None`` reads ``DSCD_DATA``), ``per_class``
    / ``test_per_class`` (subset sizes, ``None`` for all), ``image_size``.
    Network: ``channels`` (initial), ``layers`` (cells), ``auxiliary`` head and its loss weight
    ``aux_weight``. Optimisation: SGD ``lr`` cosine to ``lr_min``, ``momentum``,
    ``weight_decay``, ``grad_clip`` (0: none), ``epochs``, ``batch_size``.
    Regularisation: ``cutout`` (side in pixels, 0: none), ``drop_path`` (final probability).
    Run: ``test_every`` (epochs between test evaluations; the last epoch always), ``seed``,
    ``device``, ``amp`` (bfloat16 autocast, CUDA only), ``channels_last``.
    """

    channels: int = 36
    layers: int = 20
    auxiliary: bool = True
    aux_weight: float = 0.4
    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cutout: int = 16
    drop_path: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer(self, "batch_size", 2)
        check_integer(self, "cutout", 0)
        check_number(self, "lr", 0.0, low_open=True)
        for name in ("lr_min", "weight_decay", "grad_clip", "aux_weight"):
            check_number(self, name, 0.0)
        check_number(self, "momentum", 0.0, 1.0)
        check_number(self, "drop_path", 0.0, 0.9)
        check_bool(self, "auxiliary")
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")
        if self.cutout > self.image_size:
            raise ValueError(f"cutout ({self.cutout}) must not exceed image_size ({self.image_size})")

    @property
    def scale(self) -> str:
        """One line for tables: ``quick: C=8, 8 cells, 16x16, 200 images/class, 20 epochs``."""
        images = "all images" if self.per_class is None else f"{self.per_class} images/class"
        return (f"{self.profile}: C={self.channels}, {self.layers} cells, {self.image_size}x{self.image_size}, "
                f"{images}, {self.epochs} epochs")

    def lr_at(self, epoch: int) -> float:
        """Cosine from ``lr`` (epoch 0) towards ``lr_min`` (as the reference's per-epoch scheduler)."""
        return cosine_anneal(self.lr, self.lr_min, epoch, self.epochs)

    def drop_prob_at(self, epoch: int) -> float:
        """Drop-path probability of ``epoch``: ramped linearly from 0 (the reference's schedule)."""
        return self.drop_path * epoch / self.epochs


#: Fields that change the computation: a checkpoint must agree on them (and on the genotype) to be resumed.
_MUST_MATCH = tuple(f.name for f in dataclasses.fields(TrainConfig)
                    if f.name not in (*NOT_COMPUTED, *MATCHED_BY_CONTENT)) + ("genotype", "data_fingerprint")

def train_profile(name: str, **changes: Any) -> TrainConfig:
    """The training configuration of profile ``name`` (:data:`dscd.profiles.PROFILES`) with ``changes`` applied."""
    return TrainConfig(profile=name, **get_profile(name).train).replace(**changes)


def check_trainable(genotype: Genotype, name: str = "genotype") -> None:
    """Raise :class:`InvalidArchitectureError` (the paper's "Invalid arch.") with the validity message."""
    validity = check_validity(genotype)
    if not validity.valid:
        raise InvalidArchitectureError(f"{name} is an invalid architecture and cannot be trained: "
                                       f"{validity.message()}")


class Trainer:
    """The network and its optimiser: one training step, test evaluation, state for checkpoints."""

    def __init__(self, config: TrainConfig, genotype: Genotype, num_classes: int, in_channels: int,
                 device: torch.device, dist: Distributed | None = None) -> None:
        self.config = config
        self.device = device
        self.dist = dist or Distributed()
        self.net = EvalNetwork(genotype, channels=config.channels, num_classes=num_classes, layers=config.layers,
                               auxiliary=config.auxiliary, in_channels=in_channels)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.net.to(device)
        self.net.to(memory_format=self.memory_format)
        self.dist.broadcast_module(self.net)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.autocast = config.amp and device.type == "cuda"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits and the auxiliary logits (``None`` in eval mode or without the head) of ``x``, in float32."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.net(x.to(memory_format=self.memory_format))
        logits, aux = out if isinstance(out, tuple) else (out, None)  # eval mode: the logits alone
        return logits.float(), None if aux is None else aux.float()

    def start_epoch(self, epoch: int) -> tuple[float, float]:
        """Set the epoch's learning rate and drop-path probability; returns both."""
        lr, drop = self.config.lr_at(epoch), self.config.drop_prob_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.drop_prob = drop
        return lr, drop

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns (loss, logits), detached, without a device sync."""
        self.optimizer.zero_grad(set_to_none=True)
        logits, aux = self.forward(x)
        loss = F.cross_entropy(logits, y)
        if aux is not None and self.config.aux_weight:
            loss = loss + self.config.aux_weight * F.cross_entropy(aux, y)
        loss.backward()
        self.dist.average_gradients(list(self.net.parameters()))
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def test(self, loader: ImageLoader) -> tuple[float, float]:
        """``(accuracy, cross-entropy)`` on ``loader`` in eval mode (no drop path, no auxiliary head)."""
        self.net.eval()
        try:
            return evaluate(lambda x: self.forward(x)[0], loader.epoch(0))
        finally:
            self.net.train()

    def state_dict(self) -> dict[str, Any]:
        """The network's and the optimiser's states, for a checkpoint."""
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state."""
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


def _as_genotype(genotype: Genotype | str | Path, name: str | None) -> tuple[Genotype, str]:
    if isinstance(genotype, Genotype):
        return genotype, name or "genotype"
    path = Path(genotype)
    return load_genotype(path, name), name or path.stem


def train_genotype(config: TrainConfig, genotype: Genotype | str | Path, out: str | Path, name: str | None = None,
                   resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Train ``genotype`` (a :class:`Genotype`, or a JSON file with ``name`` picking one of several)
    into the folder ``out``, or resume it; returns the summary (also ``summary.json``), or ``None`` on the
    ranks other than 0 of a torchrun run.

    Raises :class:`InvalidArchitectureError` before writing anything when the genotype is
    invalid, :class:`~dscd.runfolder.RunFolderError` when ``out`` cannot be used (it holds a
    run and ``resume`` is off, it is in use, its checkpoint belongs to another configuration or
    genotype), :class:`TrainingDiverged` on a non-finite loss (the last good checkpoint stays).
    """
    genotype, name = _as_genotype(genotype, name)
    check_trainable(genotype, name)
    config = config.with_data_resolved()
    device = resolve_device(config.device)
    identity = {**config.recorded(), "genotype": genotype.to_dict(),
                "data_fingerprint": source_fingerprint(config.resolved_data)}

    def opener() -> RunFolder:
        return RunFolder.open(out, "train", resume, identity, _MUST_MATCH,
                              required=("epoch", "elapsed", "trainer", "rng"))

    with ranks_and_folder(config.device, config.batch_size, opener, out) as (dist, folder):
        return _train(config, genotype, name, folder, dist.device(device), identity, progress, dist)


def _train(config: TrainConfig, genotype: Genotype, name: str, folder: RunWriter, device: torch.device,
           identity: dict[str, Any], progress: bool, dist: Distributed) -> dict[str, Any] | None:
    """The training loop; under torchrun every rank runs it and rank 0 alone returns the summary."""
    out, state = folder.path, folder.state
    seed_everything(config.seed)
    train_data, test_data = train_set(config.data_config), test_set(config.data_config)
    if len(train_data) < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(train_data)} training images: lower "
                         "batch_size or raise per_class")
    in_channels = train_data.images.shape[1]
    # drop_last: a last batch of one image would break the auxiliary head's batch norm (1x1 maps)
    train_loader = ImageLoader(train_data, config.batch_size, augment=True, cutout=config.cutout, drop_last=True,
                               seed=config.seed, device=device)
    test_loader = ImageLoader(test_data, max(config.batch_size, 256), shuffle=False, device=device)
    trainer = Trainer(config, genotype, train_data.num_classes, in_channels, device, dist)
    if dist.rank:  # drop path draws its own masks on each rank (rank 0 draws what one process would)
        seed_everything(config.seed + dist.rank)
    size = network_size(trainer.net, config.image_size, in_channels)

    epoch, elapsed = 0, 0.0
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        epoch, elapsed = state["epoch"], state["elapsed"]
        set_rng_state(state.get("rngs", [state["rng"]])[dist.rank])
    else:
        folder.start(config.recorded(), {**run_metadata(), "name": name, "device": str(device),
                                         "data": identity["data"], "data_fingerprint": identity["data_fingerprint"]})
        folder.write_json("genotype.json", genotype.to_dict())

    loop = EpochLoop(folder, dist, config, f"train {name}", len(train_loader), epoch, 0, progress)
    trainer.net.train()
    for epoch in loop:
        start = time.perf_counter()
        lr, drop = trainer.start_epoch(epoch)
        sums = _train_epoch(trainer, train_loader, epoch, dist, loop)
        kept = f"the checkpoint of epoch {epoch} in {out} is intact" if epoch else "no checkpoint had been written yet"
        message = f"{name}: non-finite training loss in epoch {epoch + 1} (lr {lr:.4g}); {kept}"
        loop.stop_if(bool(sums.nonfinite()), partial(TrainingDiverged, message))  # once per epoch: no sync per step
        sums = sums.reduced(dist)  # over the ranks
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "drop_prob": drop,
                                  "train_loss": sums.mean("loss", "samples"),
                                  "train_acc": sums.mean("correct", "samples")}
        if loop.test_due():
            record["test_acc"], record["test_loss"] = trainer.test(test_loader)
        else:
            record["test_acc"] = record["test_loss"] = None
        epoch_seconds = time.perf_counter() - start
        elapsed += epoch_seconds
        record.update(epoch_seconds=epoch_seconds, seconds=elapsed)
        loop.end_epoch(record, _shown(record), partial(_checkpoint, folder, dist, identity, trainer, elapsed=elapsed))
    if not loop.finish():
        return None

    records = loop.metrics.read()
    final = records[-1]
    tested = [r["test_acc"] for r in records if r["test_acc"] is not None]
    paper = network_size(EvalNetwork(genotype, num_classes=train_data.num_classes, in_channels=in_channels))
    save_model(trainer.net, out / MODEL_FILE, num_classes=train_data.num_classes, in_channels=in_channels,
               image_size=config.image_size, name=name, mean=train_data.mean,
               std=train_data.std)  # weights only: dscd.load_model, dscd export
    summary = {
        "name": name, "folder": str(out), "config": config.recorded(), "genotype": genotype.to_dict(),
        "data_fingerprint": identity["data_fingerprint"],
        "epochs": config.epochs, "seconds": elapsed, "test_acc": final["test_acc"], "test_loss": final["test_loss"],
        "best_test_acc": max(tested), "train_acc": final["train_acc"], "size": size.as_dict(),
        "paper_size": paper.as_dict(), "device": str(device), "model": MODEL_FILE,
    }
    folder.write_json("summary.json", summary)
    return summary


def _checkpoint(folder: RunWriter, dist: Distributed, identity: dict[str, Any], trainer: Trainer, next_epoch: int,
                elapsed: float) -> None:
    """A training checkpoint at an epoch's end: one record per epoch, so its epoch is also the number of
    records a resume keeps; with every rank's generators, so that a resume is exact."""
    rngs = dist.gather(get_rng_state())
    folder.save_checkpoint({"config": identity, "epoch": next_epoch, "elapsed": elapsed,
                            "world_size": dist.world_size, "trainer": trainer.state_dict(),
                            "rng": get_rng_state(), "rngs": rngs})


def _train_epoch(trainer: Trainer, loader: ImageLoader, epoch: int, dist: Distributed, loop: EpochLoop) -> EpochSums:
    """One epoch's SGD steps; returns this rank's sums of the loss, the correct predictions and the samples."""
    sums = EpochSums()
    for x, y in loader.epoch(epoch):
        x, y = dist.shard(x, y)  # this rank's part of the global batch
        loss, logits = trainer.train_step(x, y)
        sums.add("loss", loss * y.numel())
        sums.add("correct", correct_count(logits, y))
        sums.count("samples", y.numel())
        loop.bar.update(1)
    return sums


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """The progress line of an epoch."""
    shown = {"epoch": record["epoch"], "loss": f"{record['train_loss']:.3f}",
             "train": f"{100 * record['train_acc']:.1f}%"}
    if record["test_acc"] is not None:
        shown["test"] = f"{100 * record['test_acc']:.1f}%"
    return shown


#: The ``summary.json`` of a finished training run, or ``None`` (:func:`dscd.runfolder.read_summary`).
load_summary = read_summary
