"""NAS-Bench-201's network: its cell's operations and macro skeleton, to train a cell or count its size.

As NAS-Bench-201 (Dong and Yang, ICLR 2020, section 2) defines them:

- the operations: ``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` and ``nor_conv_3x3``
  (ReLU, convolution without bias, BatchNorm), ``avg_pool_3x3`` (3x3 average pooling, stride 1,
  padding 1, padding not counted);
- the cell: node 0 is its input, each later node sums one operation on every earlier node, and
  node 3 is its output;
- the skeleton: a 3x3 convolution stem with BatchNorm; three stages of ``N`` cells with ``C``,
  ``2C`` and ``4C`` channels, joined by a residual basic block of stride 2 (two ReLU-conv-BN 3x3,
  the shortcut a 2x2 average pooling then a 1x1 convolution); BatchNorm and ReLU; global average
  pooling; a linear classifier. The benchmark's networks have ``C = 16``, ``N = 5``.

So the all-``nor_conv_3x3`` cell has 1,531,546 parameters with 10 classes and the
all-``skip_connect`` cell 73,306, NAS-Bench-201's own counts::

    >>> from dscd.nas_bench_201 import Cell
    >>> cell = Cell(("nor_conv_3x3",) * 6)
    >>> sum(p.numel() for p in NasBench201Network(cell).parameters())
    1531546
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dscd.nas_bench_201 import EDGES, OPS, Cell
from dscd.relaxations import get_relaxation
from dscd.supernet import Supernet

__all__ = ["BenchmarkSize", "NasBench201Network", "NasBench201SearchNetwork", "ResidualBlock", "cell_size",
           "make_op"]


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """NAS-Bench-201's operation ``name`` on ``channels`` channels, stride 1 (the cells never reduce).
    ``affine=False`` gives the BatchNorm without weights that differentiable searches use in their supernet."""
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1, 1, affine)
    if name == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3, 1, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}; its operations are {', '.join(OPS)}")


class _Cell(nn.Module):
    """One discrete cell: node j = sum of the edges' operations on the earlier nodes; node 3 out."""

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        self.edges = list(EDGES)
        self.ops = nn.ModuleList(make_op(op, channels) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(op(nodes[i]) for op, (i, to) in zip(self.ops, self.edges, strict=True) if to == j))
        return nodes[3]


class ResidualBlock(nn.Module):
    """NAS-Bench-201's stage transition: a residual basic block of stride 2."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2, affine)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1, affine)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NasBench201Network(nn.Module):
    """The network of one NAS-Bench-201 cell: ``channels`` (C) and ``cells`` per stage (N) as the benchmark's
    16 and 5 by default. ``forward`` returns the logits."""

    def __init__(self, cell: Cell, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.cell, self.channels, self.cells = cell, channels, cells
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResidualBlock(c, 2 * c))
                c *= 2
            layers += [_Cell(cell, c) for _ in range(cells)]
        self.layers = nn.Sequential(*layers)
        self.last = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.last(self.layers(self.stem(x)))).flatten(1))


@dataclass(frozen=True)
class BenchmarkSize:
    """A NAS-Bench-201 network's parameters and multiply-adds (one image)."""

    params: int
    flops_m: float


def cell_size(cell: Cell, channels: int = 16, cells: int = 5, image_size: int = 32, num_classes: int = 10
              ) -> BenchmarkSize:
    """Parameters and FLOPs (multiply-adds, millions) of ``cell``'s network, counted on PyTorch's ``meta``
    device (nothing allocated); by default at the benchmark's size: C = 16, N = 5, 32x32, 10 classes."""
    from dscd.eval_network import count_flops

    with torch.device("meta"):
        net = NasBench201Network(cell, channels, cells, num_classes)
        example = torch.zeros(1, 3, image_size, image_size)
    return BenchmarkSize(sum(p.numel() for p in net.parameters()), count_flops(net, example) / 1e6)


# ------------------------------------------------------------------------------------ the supernet


class _SearchCell(nn.Module):
    """A NAS-Bench-201 cell with every candidate operation on every edge: node j sums, over the earlier
    nodes i, ``sum_k w[e, k] op_k(node_i)`` for edge ``e = (i, j)``. ``none`` adds nothing (w * 0)."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.op_names = tuple(ops)
        self.edges = nn.ModuleList(nn.ModuleList(make_op(op, channels, affine=False) for op in ops) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            total: torch.Tensor | None = None
            for e, (i, to) in enumerate(EDGES):
                if to != j:
                    continue
                for k, (name, op) in enumerate(zip(self.op_names, cast(nn.ModuleList, self.edges[e]), strict=True)):
                    if name == "none":
                        continue
                    y = weights[e, k] * op(nodes[i])
                    total = y if total is None else total + y
            if total is None:  # only 'none' candidates: the node is zero
                total = nodes[0].mul(0.0)
            nodes.append(total)
        return nodes[3]


class NasBench201SearchNetwork(Supernet):
    """The supernet of NAS-Bench-201's space: the benchmark's skeleton (see the module docstring) with one
    shared search cell (one ``alpha_cell`` of shape ``(6, operations)``) in all ``3N`` places.

    As in the differentiable searches that NAS-Bench-201 reports (its section 5), the search cells'
    BatchNorms have no affine parameters; the stem, residual blocks and classifier are as in the benchmark.

    Args:
        channels: C, the first stage's channels (benchmark: 16).
        cells: N, cells per stage (benchmark: 5).
        ops: candidate operations, from :data:`dscd.nas_bench_201.OPS`.
        relaxation: a name of :data:`dscd.relaxations.RELAXATIONS`.
        alpha_init_std: 0 gives alpha = 0; softmax searches start at ``1e-3 * randn``.
    """

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10, ops: Sequence[str] = OPS,
                 relaxation: str = "softmax", in_channels: int = 3, alpha_init_std: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.relaxation = get_relaxation(relaxation)
        unknown = [op for op in ops if op not in OPS]
        if unknown or len(set(ops)) != len(ops) or not ops:
            raise ValueError(f"ops must be distinct NAS-Bench-201 operations ({', '.join(OPS)}), got {list(ops)}")
        if "none" in ops and not self.relaxation.allows_none:
            raise ValueError(f"'none' is not an operation of the {relaxation} relaxation")
        self.ops = tuple(ops)
        self.channels, self.cells = channels, cells
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.layers = nn.ModuleList()
        c = channels
        for stage in range(3):
            if stage:
                self.layers.append(ResidualBlock(c, 2 * c))
                c *= 2
            self.layers.extend(_SearchCell(self.ops, c) for _ in range(cells))
        self.last = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        shape = (len(EDGES), len(self.ops))
        init = (alpha_init_std * torch.randn(shape, generator=generator) if alpha_init_std else torch.zeros(shape))
        self.alpha_cell = nn.Parameter(init)

    def alphas(self) -> list[nn.Parameter]:
        """The architecture weights ``[alpha_cell]``, ``(6, ops)``."""
        return [self.alpha_cell]

    def edge_weights(self, alphas: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor]:
        """``(cell,)``: the mixing weights of this network's alpha, or of ``alphas`` given as ``(cell,)``."""
        (alpha,) = (self.alpha_cell,) if alphas is None else alphas
        return (self.relaxation.weights(alpha),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (w,) = self.edge_weights()
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h, w) if isinstance(layer, _SearchCell) else layer(h)
        return self.classifier(self.pool(self.last(h)).flatten(1))
