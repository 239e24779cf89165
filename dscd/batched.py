"""Many seeds of one search in one process: N searches that differ only in their seed, stepped together.

A search at laptop scale costs per PyTorch call, not per multiply: its tensors hold a few thousand numbers.
:func:`run_search_batched` runs N seeds of one configuration as N ordinary searches (each its own
:class:`~dscd.search.Searcher`: network, Adam, DSCD, SGD, data order, BatchNorm statistics, run folder and
checkpoint) whose forward and backward passes are one: :class:`SeedBatch` stacks the seeds' parameters and
buffers and evaluates the network once under :func:`torch.func.vmap`, and each seed's optimisers then step
alone. A seed in a DSCD global phase (a forward pass at a proposal) and one in a local phase (a forward and a
backward pass) share a step: each optimiser says what it needs as the stages of :meth:`dscd.optim.DSCD.stages`,
and the batch answers all the seeds' requests of one kind in one pass. In the batch, the layers whose CPU
kernels are slow on small stacked images are matrix products with the same parameters (:func:`_vmap_friendly`).

What is exact and what is not: every seed takes the same decisions from the same streams (data order,
proposals), but a stacked convolution sums in another order than a single one, so losses, alpha and weights
agree with separate runs to float32 rounding (about 1e-6 relative per step; see ``tests/test_batched.py``), not
bit for bit, and rounding can grow over a long search like any change of summation order. A batched run
resumed from its checkpoints continues exactly as the uninterrupted batched run. Each seed's folder is
indistinguishable from a single-seed run's except for ``meta.json``'s ``batched`` field, and a single-seed
``dscd search --resume`` can continue it.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from dscd.distributed import Distributed
from dscd.epochs import EpochLoop
from dscd.optim import Backward, Evaluate, NonFiniteLoss
from dscd.run_common import resolve_device
from dscd.search import (
    SEARCH_CHECKPOINT_KEYS,
    SearchConfig,
    SearchDiverged,
    Searcher,
    _SearchRun,
    open_search_folder,
    search_identity,
)

__all__ = ["SeedBatch", "parse_seeds", "run_search_batched", "seed_folder"]

Stages = Generator[Evaluate | Backward, Any, torch.Tensor]


def seed_folder(out: str | Path, seed: int) -> Path:
    """The run folder of seed ``seed`` in a batched search's ``out``: ``<out>/seed-<seed>``."""
    return Path(out) / f"seed-{seed}"


def parse_seeds(text: str) -> list[int]:
    """Seeds written as ``0-4``, ``0,2,7`` or a mix (``0-2,9``): distinct integers >= 0, in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            chunk = list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise ValueError(f"seeds must be integers or ranges like 0-4, separated by commas, got {text!r}") from None
        if not chunk or min(chunk) < 0:
            raise ValueError(f"seeds must be integers >= 0 and ranges must run upwards (0-4), got {part!r}")
        seeds += chunk
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {text!r}")
    return seeds


class _PointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution as a matrix product: under vmap a batched matrix product, whose backward pass costs a
    fraction of a stacked 1x1 convolution's (about a third of the batched search's time at ``quick``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        pixels = x.transpose(0, 1).reshape(channels, batch * height * width)
        return torch.mm(self.weight[:, :, 0, 0], pixels).view(-1, batch, height, width).transpose(0, 1)


@functools.cache
def _taps(size: tuple[int, int], kernel: int, stride: int, padding: int, dilation: int,
          device: torch.device) -> tuple[torch.Tensor, int, int]:
    """A ``kernel`` x ``kernel`` window sliding over an image of ``size``: which of its taps joins each (input pixel,
    output pixel) pair (``kernel**2`` where none does) as an ``(input pixels, output pixels)`` table, with the
    output's height and width. Computed once per geometry."""
    height, width = size
    out_h = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    table = torch.full((height * width, out_h * out_w), kernel * kernel, dtype=torch.long)
    for i, j, y, x in itertools.product(range(kernel), range(kernel), range(out_h), range(out_w)):
        row, col = y * stride - padding + i * dilation, x * stride - padding + j * dilation
        if 0 <= row < height and 0 <= col < width:
            table[row * width + col, y * out_w + x] = i * kernel + j
    return table.to(device), out_h, out_w


@functools.cache
def _spread(size: tuple[int, int], kernel: int, stride: int, padding: int, dilation: int, device: torch.device,
            dtype: torch.dtype) -> torch.Tensor:
    """``(taps, input pixels * output pixels)``: 1 where the tap joins the pair (a kernel times it is the
    kernel spread into its pixels-to-pixels matrix, each weight exactly)."""
    table, _, _ = _taps(size, kernel, stride, padding, dilation, device)
    return (table.flatten() == torch.arange(kernel * kernel, device=device).unsqueeze(1)).to(dtype)


@functools.cache
def _averages(size: tuple[int, int], kernel: int, stride: int, padding: int, count_include_pad: bool,
              device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The ``(input pixels, output pixels)`` weights of an average pooling."""
    table, _, _ = _taps(size, kernel, stride, padding, 1, device)
    inside = (table < kernel * kernel).to(dtype)
    return inside / (kernel * kernel if count_include_pad else inside.sum(0, keepdim=True))


class _SmallDepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution of a small image as a matrix product: each channel's kernel spread into the
    (input pixels x output pixels) matrix it stands for. On CPU, a stacked depthwise convolution's backward pass
    costs several times its forward pass for 5x5 and dilated kernels (oneDNN has no fast kernel for them), while
    at 8x8 and below this matrix is small and the product's backward pass is cheap; the 3x3 undilated kernel
    above 4x4 keeps the convolution, which is faster there (``benchmarks/bench_batched.py`` measures the whole).
    Other devices keep the convolution (not measured there).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        kernel, dilation = self.kernel_size[0], self.dilation[0]
        if x.device.type != "cpu" or height * width > 64 or (kernel == 3 and dilation == 1 and height * width > 16):
            return super().forward(x)
        padding = self.padding[0]
        assert isinstance(padding, int)  # _vmap_friendly swaps in only numeric paddings
        geometry = ((height, width), kernel, self.stride[0], padding, dilation, x.device)
        _, out_h, out_w = _taps(*geometry)
        matrix = torch.mm(self.weight.reshape(channels, kernel * kernel), _spread(*geometry, x.dtype)) \
            .view(channels, height * width, out_h * out_w)
        pixels = x.reshape(batch, channels, height * width).transpose(0, 1)  # (channels, batch, pixels)
        return torch.bmm(pixels, matrix).transpose(0, 1).reshape(batch, channels, out_h, out_w)


class _SmallAvgPool2d(nn.AvgPool2d):
    """Average pooling of an image of up to 16x16 as one product with the (input pixels x output pixels) matrix of
    its weights: several times faster than the pooling's own kernels on CPU at these sizes, forward and back
    (other devices keep the pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        if x.device.type != "cpu" or height * width > 256:
            return super().forward(x)
        kernel, stride, padding = (v if isinstance(v, int) else v[0] for v in (self.kernel_size, self.stride,
                                                                                self.padding))
        _, out_h, out_w = _taps((height, width), kernel, stride, padding, 1, x.device)
        matrix = _averages((height, width), kernel, stride, padding, self.count_include_pad, x.device, x.dtype)
        return torch.mm(x.reshape(batch * channels, height * width), matrix).view(batch, channels, out_h, out_w)


class _GlobalMean(nn.AdaptiveAvgPool2d):
    """Global average pooling as a mean (vmap has no batching rule for adaptive pooling's backward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def _vmap_friendly(skeleton: nn.Module) -> nn.Module:
    """``skeleton`` with its 1x1 convolutions, depthwise convolutions, average poolings and global poolings
    computed as :class:`_PointwiseConv2d`, :class:`_SmallDepthwiseConv2d`, :class:`_SmallAvgPool2d` and
    :class:`_GlobalMean` do: the same functions with the same parameters, summed in another order."""
    for module in skeleton.modules():
        if (type(module) is nn.Conv2d and module.kernel_size == (1, 1) and module.stride == (1, 1)
                and module.padding == (0, 0) and module.groups == 1 and module.bias is None):
            module.__class__ = _PointwiseConv2d
        elif (type(module) is nn.Conv2d and module.groups == module.in_channels == module.out_channels
              and module.bias is None and module.padding_mode == "zeros" and isinstance(module.padding, tuple)
              and len(set(module.kernel_size)) == 1
              and len(set(module.stride)) == len(set(module.padding)) == len(set(module.dilation)) == 1):
            module.__class__ = _SmallDepthwiseConv2d
        elif (type(module) is nn.AvgPool2d and not module.ceil_mode and module.divisor_override is None
              and all(isinstance(v, int) or len(set(v)) == 1 for v in (module.kernel_size, module.stride,
                                                                        module.padding))):
            module.__class__ = _SmallAvgPool2d
        elif type(module) is nn.AdaptiveAvgPool2d and module.output_size in (1, (1, 1)):
            module.__class__ = _GlobalMean
    return skeleton


class SeedBatch:
    """The searchers of N seeds, evaluated in one vmapped pass.

    Each searcher keeps its own parameters (the leaves its optimisers update) and buffers; :meth:`logits`
    stacks those of the seeds it is given, runs the network once, and copies the BatchNorm statistics back.
    :meth:`step` drives one optimiser step per seed (:meth:`~dscd.search.Searcher.alpha_stages` or
    :meth:`~dscd.search.Searcher.weight_stages`) and answers their requests together.
    """

    def __init__(self, searchers: Sequence[Searcher]) -> None:
        self.searchers = list(searchers)
        net = self.searchers[0].net
        self._skeleton = _vmap_friendly(copy.deepcopy(net).to("meta"))  # the structure; vmap gives it the tensors
        self._param_names = [name for name, _ in net.named_parameters()]
        self._buffer_names = [name for name, _ in net.named_buffers()]
        self._params = [[p for _, p in s.net.named_parameters()] for s in self.searchers]
        self._buffers = [[b for _, b in s.net.named_buffers()] for s in self.searchers]

    def logits(self, members: Sequence[int], images: Sequence[torch.Tensor]) -> torch.Tensor:
        """The networks of seeds ``members`` (indices into the searchers) on their own ``images``, as one
        ``(len(members), batch, classes)`` tensor; in training mode each seed's BatchNorm statistics advance
        as its own forward pass would advance them."""
        params = {name: torch.stack([self._params[k][i] for k in members]) for i, name in enumerate(self._param_names)}
        buffers = {name: torch.stack([self._buffers[k][i] for k in members])
                   for i, name in enumerate(self._buffer_names)}
        skeleton = self._skeleton.train(self.searchers[members[0]].net.training)

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(skeleton, (p, b), (x,)).float()

        out = vmap(one, randomness="error")(params, buffers, torch.stack(list(images)))
        if skeleton.training and self._buffer_names:
            with torch.no_grad():
                torch._foreach_copy_([self._buffers[k][i] for i in range(len(self._buffer_names)) for k in members],
                                     [row for name in self._buffer_names for row in buffers[name].unbind(0)])
        return out

    def step(self, stages: Mapping[int, Stages], batches: Mapping[int, tuple[torch.Tensor, torch.Tensor]]
             ) -> dict[int, tuple[torch.Tensor, torch.Tensor] | NonFiniteLoss]:
        """One optimiser step per seed: ``stages[k]`` (a searcher's ``alpha_stages()`` or ``weight_stages()``)
        on the batch ``batches[k] = (images, labels)``. Returns per seed (loss, logits) of its last evaluation,
        or the :class:`~dscd.optim.NonFiniteLoss` by which its step refused, which stops that seed alone. Any other
        failure is thrown into every unfinished step (each undoes itself) and raised."""
        live, replies = dict(stages), dict.fromkeys(stages)
        results: dict[int, tuple[torch.Tensor, torch.Tensor] | NonFiniteLoss] = {}
        seen: dict[int, torch.Tensor] = {}
        while live:
            requests: dict[int, Evaluate | Backward] = {}
            for k, gen in list(live.items()):
                try:
                    requests[k] = gen.send(replies[k])
                except StopIteration as done:
                    results[k] = (done.value.detach(), seen[k].detach())
                    del live[k]
                except NonFiniteLoss as err:  # this seed's own refusal: its step changed nothing
                    results[k] = err
                    del live[k]
            try:
                self._answer(requests, batches, replies, seen)
            except BaseException as err:
                for k in requests:
                    try:
                        live[k].throw(err)
                    except BaseException:  # noqa: BLE001  (each step re-raises after undoing itself)
                        pass
                raise
        return results

    def _answer(self, requests: Mapping[int, Evaluate | Backward], batches: Mapping[int, tuple[torch.Tensor,
                torch.Tensor]], replies: dict[int, Any], seen: dict[int, torch.Tensor]) -> None:
        """Answer one round of requests: the forward passes without autograd, those with it, then one backward
        pass for every seed that asked for one (each seed's loss reaches only its own tensors)."""
        for grad in (False, True):
            members = [k for k, r in requests.items() if isinstance(r, Evaluate) and r.grad == grad]
            if members:
                with torch.set_grad_enabled(grad):
                    logits = self.logits(members, [batches[k][0] for k in members])
                    for k, row in zip(members, logits.unbind(0), strict=True):
                        replies[k], seen[k] = self.searchers[k].loss(row, batches[k][1]), row
        asked = {k: r for k, r in requests.items() if isinstance(r, Backward)}
        if asked:
            total = torch.stack([r.loss for r in asked.values()]).sum()  # d total / d loss_k = 1: each seed's own
            total.backward(inputs=[p for r in asked.values() for p in r.inputs])
            replies.update(dict.fromkeys(asked))


def _check_batch(configs: Sequence[SearchConfig], outs: Sequence[Path]) -> None:
    """Refuse what a batched search cannot be: seeds of different configurations, repeated seeds or folders,
    torchrun, bfloat16 autocast. (``channels_last`` is ignored: the stacked tensors keep the default format.)"""
    if not configs:
        raise ValueError("a batched search needs at least one seed")
    first = configs[0].replace(seed=0).recorded()
    for config in configs[1:]:
        other = config.replace(seed=0).recorded()
        if other != first:
            differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
            raise ValueError(f"a batched search runs seeds of one configuration; these also differ in "
                             f"{', '.join(differ)}: run them separately")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a batched search's seeds must be distinct, got {seeds}")
    if len({Path(o).resolve() for o in outs}) != len(outs):
        raise ValueError("each seed of a batched search needs its own run folder")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("a batched search runs in one process: run it without torchrun (or torchrun one seed)")
    if configs[0].amp and resolve_device(configs[0].device).type == "cuda":
        raise ValueError("a batched search runs in float32: set amp to false, or run the seeds separately")


def run_search_batched(configs: Sequence[SearchConfig], outs: Sequence[str | Path],
                       resume: bool | Sequence[bool] = False, progress: bool = True) -> list[dict[str, Any]]:
    """Run (or resume) the searches ``configs`` (one configuration, different seeds) into the folders ``outs``,
    one per seed, in one process; returns their summaries in order. ``resume``: for every folder, or one
    flag per folder (the executors resume the interrupted seeds of a batch and start the others).

    Each folder is locked, refused or resumed exactly as :func:`dscd.search.run_search` does it (all are opened
    before any runs). A seed whose loss turns non-finite stops alone with its last good checkpoint; the others
    go on, and at the end :class:`~dscd.search.SearchDiverged` names the seeds that stopped.
    """
    configs = [c.with_data_resolved() for c in configs]
    paths = [Path(o) for o in outs]
    if len(paths) != len(configs):
        raise ValueError(f"a batched search needs one folder per seed: {len(configs)} seeds, {len(paths)} "
                         "folders")
    _check_batch(configs, paths)
    device = resolve_device(configs[0].device)
    identities = [search_identity(c) for c in configs]
    with ExitStack() as stack:
        resumes = [resume] * len(paths) if isinstance(resume, bool) else [bool(r) for r in resume]
        if len(resumes) != len(paths):
            raise ValueError(f"resume needs one flag per folder: {len(paths)} folders, {len(resumes)} flags")
        folders = [stack.enter_context(open_search_folder(out, again, identity))
                   for out, again, identity in zip(paths, resumes, identities, strict=True)]
        _align(folders)
        seeds = [c.seed for c in configs]
        dist = Distributed()
        runs = [_SearchRun(config, folder, device, identity, dist, batched={"seeds": seeds, "lane": k})
                for k, (config, folder, identity) in enumerate(zip(configs, folders, identities, strict=True))]
        return _Lockstep(runs, progress).run()


def _align(folders: Sequence[Any]) -> None:
    """Bring resumed seeds to one common iteration: a kill between two seeds' checkpoints leaves some one
    checkpoint ahead, and those go back to their previous one, so that every seed goes on in the same batch
    as the uninterrupted search (a seed stepped alone rounds differently)."""
    def where(folder: Any) -> tuple[int, int]:
        return (folder.state["epoch"], folder.state["batch"]) if folder.state is not None else (0, 0)

    behind = min(where(folder) for folder in folders)
    for folder in folders:
        if where(folder) > behind:
            folder.rewind(SEARCH_CHECKPOINT_KEYS)


def _label(config: SearchConfig) -> str:
    """A seed's progress bar: ``search dscd seed 3``."""
    return f"search {config.optimizer} seed {config.seed}"


class _Lockstep:
    """The iterations of N searches in step: at each global iteration the seeds that stand there step together
    (after an uneven kill a seed ahead waits for the others), and each seed's epoch ends, checkpoints and
    finishes as a single search's would."""

    def __init__(self, runs: Sequence[_SearchRun], progress: bool) -> None:
        self.runs, self.progress = list(runs), progress
        self.batch = SeedBatch([run.searcher for run in runs])
        self.loops = [EpochLoop(run.folder, run.dist, run.config, _label(run.config), run.steps, run.epoch,
                                run.start_batch, progress) for run in runs]
        self.position = [run.epoch * run.steps + run.start_batch for run in runs]
        self.batches: list[Any] = [None] * len(runs)
        self.clock = [0.0] * len(runs)
        self.failed: dict[int, Exception] = {}
        for run in runs:
            run.searcher.net.train()

    def run(self) -> list[dict[str, Any]]:
        steps, total = self.runs[0].steps, self.runs[0].config.epochs * self.runs[0].steps
        try:
            while True:
                live = [k for k in range(len(self.runs)) if k not in self.failed and self.position[k] < total]
                if not live:
                    break
                here = min(self.position[k] for k in live)
                self._iteration([k for k in live if self.position[k] == here], *divmod(here, steps))
        finally:
            for loop in self.loops:
                loop.bar.close()
        summaries = []
        for k, (run, loop) in enumerate(zip(self.runs, self.loops, strict=True)):
            if loop.finish() and k not in self.failed:
                summaries.append(run.finish())
        if self.failed:
            stopped = "; ".join(f"seed {self.runs[k].config.seed}: {err}" for k, err in sorted(self.failed.items()))
            raise SearchDiverged(f"{stopped} (the other seeds finished)")
        return summaries

    def _iteration(self, members: list[int], epoch: int, b: int) -> None:
        """Iteration ``b`` of ``epoch`` for the seeds ``members``: an alpha step on each one's validation batch,
        a weight step on its training batch, the bookkeeping, and an epoch's end or a checkpoint when due."""
        data = {}
        for k in members:
            run = self.runs[k]
            if self.batches[k] is None:  # the epoch's first iteration here (or the resumed one)
                run.lr = run.searcher.set_lr(epoch)
                self.batches[k] = zip(run.train_loader.epoch(epoch, run.start_batch),
                                      run.val_loader.epoch(epoch, run.start_batch), strict=False)
                self.clock[k] = time.perf_counter()
            data[k] = next(self.batches[k])
        alpha = self.batch.step({k: self.runs[k].searcher.alpha_stages() for k in members},
                                {k: data[k][1] for k in members})
        for k, result in alpha.items():
            if isinstance(result, NonFiniteLoss):
                self.failed[k] = self.runs[k]._diverged("alpha_loss", self.loops[k], b + 1)
        members = [k for k in members if k not in self.failed]
        weight = self.batch.step({k: self.runs[k].searcher.weight_stages() for k in members},
                                 {k: data[k][0] for k in members})
        for k in members:
            run, loop = self.runs[k], self.loops[k]
            (loss_a, logits_v), (loss_w, logits_t) = alpha[k], weight[k]  # type: ignore[misc]
            run.count_step(loop, b, (loss_a, logits_v, data[k][1][1]), (loss_w, logits_t, data[k][0][1]),
                           self.progress)
            self.position[k] += 1
            if b == run.steps - 1:
                self._end_epoch(k)
            elif loop.checkpoint_due(b) and self._finite(k, b + 1):
                self._tick(k)
                run.checkpoint(epoch, b + 1)
                loop.saved()

    def _tick(self, k: int) -> None:
        """Add the time since seed ``k``'s clock last read to its ``seconds`` (the batch's wall time)."""
        now = time.perf_counter()
        self.runs[k].elapsed += now - self.clock[k]
        self.clock[k] = now

    def _finite(self, k: int, step: int) -> bool:
        """Whether seed ``k``'s epoch sums are finite (the single search's check); if not, the seed stops here
        with its last good checkpoint, and the others go on."""
        try:
            self.runs[k]._stop_if_diverged(self.loops[k], step)
        except SearchDiverged as err:
            self.failed[k] = err
            return False
        return True

    def _end_epoch(self, k: int) -> None:
        self.batches[k] = None
        if self._finite(k, self.runs[k].steps):
            self._tick(k)
            self.runs[k].end_epoch(self.loops[k])
