"""The FairDARTS search space: mixed edges, search cells, the supernet, the zero-one loss.

The architecture weights (``alpha``) are two parameters of shape
``(edges, operations)``, one for the normal and one for the reduction cell. They
are attributes of the network (so they travel in its ``state_dict``) but are never
among :meth:`SearchNetwork.weights`, the parameters the weight optimiser sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from dscd.ops import FAIRDARTS_OPS, OPS, FactorizedReduce, ReLUConvBN, check_ops, make_op
from dscd.relaxations import RELAXATIONS, get_relaxation, zero_one_loss
from dscd.supernet import Supernet

__all__ = ["MixedOp", "SearchCell", "SearchNetwork", "fairdarts_objective", "num_edges", "zero_one_loss"]

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def num_edges(nodes: int) -> int:
    """Edges of a cell with 2 inputs and ``nodes`` intermediate nodes (14 for 4 nodes)."""
    return sum(2 + i for i in range(nodes))


class MixedOp(nn.Module):
    """One edge: ``sum_k w_k op_k(x)`` over the candidate operations.

    Operations that start with a ReLU take the precomputed ``relu(x)``; pools are
    followed by a BatchNorm without affine parameters, as in the reference search
    network.
    """

    def __init__(self, channels: int, stride: int, ops: Sequence[str]) -> None:
        super().__init__()
        specs = [OPS[name] for name in ops]
        modules = []
        for spec in specs:
            op = make_op(spec.name, channels, stride, affine=False, pre_relu=True)
            if spec.pool:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            modules.append(op)
        self.ops = nn.ModuleList(modules)
        self.takes_relu = [spec.starts_with_relu(stride) for spec in specs]
        self.is_none = [spec.zero for spec in specs]
        #: operations whose output is the same for every edge that leaves one state (pool + BN, identity)
        self.shareable = [spec.parameter_free(stride) and not spec.zero for spec in specs]

    def forward(self, x: torch.Tensor, relu_x: torch.Tensor | None, weights: torch.Tensor,
                shared_outputs: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """``shared_outputs`` maps an operation's index to its output computed once for the source state."""
        out = None
        for k, (op, takes_relu) in enumerate(zip(self.ops, self.takes_relu, strict=True)):
            if self.is_none[k]:
                continue  # w * 0: contributes nothing (and no gradient to w)
            h = (shared_outputs[k] if shared_outputs is not None and k in shared_outputs
                 else op(relu_x if takes_relu else x))
            y = weights[k] * h
            out = y if out is None else out + y
        if out is None:
            raise RuntimeError("an edge whose only operation is 'none' has no output")
        return out


class SearchCell(nn.Module):
    """A search cell: 2 preprocessed inputs, ``nodes`` intermediate nodes, output = their concatenation.

    With ``share_ops=True`` (the default) each parameter-free operation (pool + non-affine
    BatchNorm, identity) runs once per source state instead of once per edge: every edge
    that leaves a state has the same stride, so these outputs are equal, in training mode
    too (the batch statistics are the same). The running statistics of the first edge's
    BatchNorm are copied to its siblings after each training forward, so every edge's
    buffers hold what the per-edge computation (``share_ops=False``) would give and the
    ``state_dict`` is the same in both modes.
    """

    def __init__(self, nodes: int, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool, ops: Sequence[str], share_ops: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.share_ops = share_ops
        self.pre0 = (FactorizedReduce(c_prev_prev, channels, affine=False) if reduction_prev
                     else ReLUConvBN(c_prev_prev, channels, kernel=1, affine=False))
        self.pre1 = ReLUConvBN(c_prev, channels, kernel=1, affine=False)
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(MixedOp(channels, stride, ops))
        #: per source state (0 .. nodes): the indices of the edges that leave it
        self.out_edges: list[list[int]] = [[] for _ in range(2 + nodes - 1)]
        offset = 0
        for i in range(nodes):
            for j in range(2 + i):
                self.out_edges[j].append(offset + j)
            offset += 2 + i
        self.relu_needed = [any(any(self._edge(e).takes_relu) for e in edges) for edges in self.out_edges]
        #: (computing BatchNorm, sibling BatchNorm) of every shared pool: the first edge leaving a state
        #: computes, its siblings receive its running statistics (the modules, not their buffers, which
        #: ``.to()`` replaces)
        self._bn_siblings: list[tuple[nn.BatchNorm2d, nn.BatchNorm2d]] = []
        for edges in self.out_edges:
            first = self._edge(edges[0])
            for k, share in enumerate(first.shareable):
                if share and isinstance(bn := _last_module(first.ops[k]), nn.BatchNorm2d) and bn.track_running_stats:
                    self._bn_siblings += [(bn, other) for e in edges[1:]  # the siblings are built alike
                                          if isinstance(other := _last_module(self._edge(e).ops[k]), nn.BatchNorm2d)]

    def _edge(self, e: int) -> MixedOp:
        """Edge ``e`` (``self.edges`` holds only :class:`MixedOp`)."""
        return cast(MixedOp, self.edges[e])

    def _shared_outputs(self, source: int, x: torch.Tensor) -> dict[int, torch.Tensor]:
        first = self._edge(self.out_edges[source][0])
        return {k: first.ops[k](x) for k, share in enumerate(first.shareable) if share}

    def _sync_shared_statistics(self) -> None:
        """Copy the running statistics of each state's first-edge pool BatchNorms to its other edges."""
        with torch.no_grad():  # one copy per buffer, not torch._foreach_copy_: vmap (dscd.batched) has no rule for it
            for first, other in self._bn_siblings:
                for name in _BN_BUFFERS:
                    getattr(other, name).copy_(getattr(first, name))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        relus = [F.relu(s) if self.relu_needed[j] else None for j, s in enumerate(states)]
        shared = [self._shared_outputs(j, s) for j, s in enumerate(states)] if self.share_ops else None
        offset = 0
        for i in range(self.nodes):
            outputs = (self.edges[offset + j](states[j], relus[j], weights[offset + j],
                                              shared[j] if shared is not None else None) for j in range(2 + i))
            node = next(outputs)
            for y in outputs:  # summed in edge order
                node = node + y
            offset += 2 + i
            states.append(node)
            if i < self.nodes - 1:
                relus.append(F.relu(node) if self.relu_needed[2 + i] else None)
                if shared is not None:
                    shared.append(self._shared_outputs(2 + i, node))
        if shared is not None and self.training:
            self._sync_shared_statistics()
        return torch.cat(states[2:], dim=1)


def _last_module(module: nn.Module) -> nn.Module | None:
    """The last module of an ``nn.Sequential`` (a pool's BatchNorm), else ``None``."""
    return module[-1] if isinstance(module, nn.Sequential) else None


class SearchNetwork(Supernet):
    """The supernet: stem, ``layers`` cells (reduction at 1/3 and 2/3 depth), global pooling, linear.

    Args:
        channels: initial channels C (reference: 16).
        num_classes: output classes.
        layers: number of cells (reference: 8).
        nodes: intermediate nodes per cell (reference: 4, so 14 edges).
        ops: candidate operation names (default: the 7 FairDARTS operations).
        relaxation: a name of :data:`dscd.relaxations.RELAXATIONS`: ``sigmoid`` (FairDARTS: every op
            weighted by sigmoid(alpha)) or ``softmax`` (DARTS: softmax over an edge's ops).
        in_channels: image channels.
        stem_multiplier: the stem outputs ``stem_multiplier * C`` channels (3).
        alpha_init_std: 0 gives alpha = 0 (FairDARTS); DARTS uses 1e-3 * randn.
        generator: random generator for a non-zero alpha initialisation.
        share_ops: compute each parameter-free operation once per source state rather than once per
            edge (see :class:`SearchCell`); ``False`` is the plain per-edge computation. Both give the
            same outputs and gradients up to floating-point summation order, and the same ``state_dict``.
    """

    def __init__(self, channels: int = 16, num_classes: int = 10, layers: int = 8, nodes: int = 4,
                 ops: Sequence[str] = FAIRDARTS_OPS, relaxation: str = "sigmoid", in_channels: int = 3,
                 stem_multiplier: int = 3, alpha_init_std: float = 0.0,
                 generator: torch.Generator | None = None, share_ops: bool = True) -> None:
        super().__init__()
        for name, value, minimum in (("channels", channels, 2), ("num_classes", num_classes, 2),
                                     ("layers", layers, 1), ("nodes", nodes, 1), ("in_channels", in_channels, 1),
                                     ("stem_multiplier", stem_multiplier, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if channels % 2:
            raise ValueError(f"channels must be even (factorized reductions halve it), got {channels}")
        self.relaxation = get_relaxation(relaxation).name
        self.ops = check_ops(ops)
        if not RELAXATIONS[relaxation].allows_none and "none" in self.ops:
            raise ValueError(f"'none' is not an operation of the {relaxation} relaxation: all weights near 0 are "
                             "the zero operation already (use FAIRDARTS_OPS)")
        self.nodes = nodes
        self.layers = layers
        self.num_classes = num_classes

        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c = c_stem, c_stem, channels
        self.reduction_layers = sorted({layers // 3, 2 * layers // 3}) if layers >= 3 else []
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c *= 2
            self.cells.append(SearchCell(nodes, c_pp, c_p, c, reduction, reduction_prev, self.ops,
                                         share_ops=share_ops))
            reduction_prev = reduction
            c_pp, c_p = c_p, nodes * c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

        shape = (num_edges(nodes), len(self.ops))
        init = [torch.zeros(shape) for _ in range(2)]
        if alpha_init_std:
            init = [alpha_init_std * torch.randn(shape, generator=generator) for _ in range(2)]
        self.alpha_normal = nn.Parameter(init[0])
        self.alpha_reduce = nn.Parameter(init[1])

    def alphas(self) -> list[nn.Parameter]:
        """The architecture weights ``[alpha_normal, alpha_reduce]``, each ``(edges, ops)``."""
        return [self.alpha_normal, self.alpha_reduce]

    def edge_weights(self, alphas: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(normal, reduce)`` mixing weights: sigmoid(alpha) or softmax over each edge's ops, of this
        network's alphas or of ``alphas`` given as ``(normal, reduce)`` (e.g. DSCD's ``x_best``)."""
        normal, reduce = (self.alpha_normal, self.alpha_reduce) if alphas is None else alphas
        weights = RELAXATIONS[self.relaxation].weights
        return weights(normal), weights(reduce)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal, w_reduce = self.edge_weights()
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(self.pool(s1).flatten(1))


def fairdarts_objective(logits: torch.Tensor, targets: torch.Tensor, alphas: Sequence[torch.Tensor],
                        w01: float = 10.0) -> torch.Tensor:
    """Cross-entropy plus ``w01`` times the zero-one loss (FairDARTS' search objective: the sigmoid
    relaxation's :meth:`~dscd.relaxations.Relaxation.objective`)."""
    return RELAXATIONS["sigmoid"].objective(F.cross_entropy(logits, targets), alphas, w01)
