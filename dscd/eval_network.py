"""The final-architecture network built from a genotype, and its size (parameters, FLOPs).

The evaluation set-up of the paper (section 4, after DARTS and FairDARTS): 20 cells and C = 36
by default, reductions at 1/3 and 2/3 depth, an auxiliary head after the cell at
2/3 depth, drop path on every non-identity op. For threshold genotypes several
ops on one edge are summed, a node without (reachable) input is skipped, and the
cell output concatenates the nodes that received input, so a cell's width depends
on its genotype. Unlike the reference, the edge order in the genotype does not
matter: edges are sorted topologically (cycles are rejected by :class:`Genotype`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dscd.genotype import Genotype, check_validity, reachable_nodes, topological_edges
from dscd.ops import FactorizedReduce, ReLUConvBN, make_op

__all__ = ["AuxiliaryHead", "EvalCell", "EvalNetwork", "InvalidArchitectureError", "NetworkSize", "count_flops",
           "drop_path", "genotype_size", "network_size"]


class InvalidArchitectureError(ValueError):
    """The genotype leaves a cell with no reachable node: nothing would propagate ("Invalid arch.")."""


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (stochastic depth)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class EvalCell(nn.Module):
    """A discrete cell: the genotype's edges between 2 preprocessed inputs and the intermediate nodes."""

    def __init__(self, edges, nodes: int, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = (FactorizedReduce(c_prev_prev, channels) if reduction_prev
                     else ReLUConvBN(c_prev_prev, channels, kernel=1))
        self.pre1 = ReLUConvBN(c_prev, channels, kernel=1)
        self.concat = reachable_nodes(edges)
        live = {0, 1, *self.concat}
        self.edges = [(op, i, j) for op, i, j in topological_edges(edges) if i in live]
        self.ops = nn.ModuleList(
            make_op(op, channels, 2 if reduction and i < 2 else 1) for op, i, _ in self.edges)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {0: self.pre0(s0), 1: self.pre1(s1)}
        for (_, i, j), op in zip(self.edges, self.ops, strict=True):
            h = op(states[i])
            if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                h = drop_path(h, drop_prob)
            states[j] = h if j not in states else states[j] + h
        return torch.cat([states[n] for n in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier (on an 8x8 map: 5x5 average pool, stride 3; other sizes: pooled to 2x2)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        if x.shape[-1] == 8 and x.shape[-2] == 8:
            x = F.avg_pool2d(x, 5, stride=3, padding=0, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


class EvalNetwork(nn.Module):
    """The network a genotype becomes for final training.

    In training mode ``forward`` returns ``(logits, aux_logits)`` (``aux_logits`` is
    ``None`` without the auxiliary head); in eval mode the logits alone, so a trained
    network is an ordinary classifier (``dscd.load_model``, ONNX export). ``drop_prob``
    (drop path) is an attribute the training loop ramps over epochs.
    """

    def __init__(self, genotype: Genotype, channels: int = 36, num_classes: int = 10, layers: int = 20,
                 auxiliary: bool = True, in_channels: int = 3, stem_multiplier: int = 3) -> None:
        super().__init__()
        validity = check_validity(genotype)
        if not validity.valid:
            raise InvalidArchitectureError(f"invalid architecture: {validity.message()}")
        for name, value, minimum in (("channels", channels, 2), ("layers", layers, 1), ("num_classes", num_classes, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        self.genotype = genotype
        self.drop_prob = 0.0
        self.channels = channels
        self.layers = layers
        self.in_channels = in_channels
        # what dscd.load_model knows of a saved network: its size, the image side it was trained at, the
        # per-channel normalisation of its training images, its name
        self.size: NetworkSize | None = None
        self.image_size: int | None = None
        self.mean: tuple[float, ...] | None = None
        self.std: tuple[float, ...] | None = None
        self.name: str | None = None
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c = c_stem, c_stem, channels
        self.reduction_layers = sorted({layers // 3, 2 * layers // 3}) if layers >= 3 else []
        self.aux_position = 2 * layers // 3
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = None
        for i in range(layers):
            reduction = i in self.reduction_layers
            if reduction:
                c *= 2
            edges = genotype.reduce if reduction else genotype.normal
            cell = EvalCell(edges, genotype.nodes, c_pp, c_p, c, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c
            if i == self.aux_position:
                c_aux = c_p
        self.aux_head = AuxiliaryHead(c_aux, num_classes) if auxiliary and c_aux is not None else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_prob)
            if i == self.aux_position and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        logits = self.classifier(self.pool(s1).flatten(1))
        return (logits, aux) if self.training else logits


@dataclass(frozen=True)
class NetworkSize:
    """Parameters (millions; DARTS' convention excludes the auxiliary head) and FLOPs (millions of
    multiply-adds of one image, conv and linear layers, auxiliary head not run)."""

    params_m: float
    params_with_aux_m: float
    flops_m: float

    def as_dict(self) -> dict[str, float]:
        """The sizes as a JSON-ready dict (millions of parameters, with and without the auxiliary head, and of
        multiply-adds)."""
        return {"params_m": self.params_m, "params_with_aux_m": self.params_with_aux_m, "flops_m": self.flops_m}


def count_flops(model: nn.Module, example: torch.Tensor) -> float:
    """Multiply-adds of one forward pass in eval mode, counted by ``torch.utils.flop_counter``
    (it counts 2 FLOPs per multiply-add of convolutions and matrix products; halved here)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2


def genotype_size(genotype: Genotype, channels: int = 36, layers: int = 20, image_size: int = 32,
                  in_channels: int = 3, num_classes: int = 10) -> NetworkSize:
    """:func:`network_size` of the network ``genotype`` builds, counted on PyTorch's ``meta`` device: no
    memory is allocated and no random number drawn, whatever the size asked for."""
    with torch.device("meta"):
        net = EvalNetwork(genotype, channels=channels, num_classes=num_classes, layers=layers,
                          in_channels=in_channels)
    return network_size(net, image_size, in_channels)


def network_size(model: EvalNetwork, image_size: int = 32, in_channels: int = 3) -> NetworkSize:
    """Parameters and FLOPs of ``model`` for one ``image_size`` x ``image_size`` image."""
    total = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for p in model.aux_head.parameters()) if model.aux_head is not None else 0
    device = next(model.parameters()).device
    flops = count_flops(model, torch.zeros(1, in_channels, image_size, image_size, device=device))
    return NetworkSize(params_m=(total - aux) / 1e6, params_with_aux_m=total / 1e6, flops_m=flops / 1e6)
