"""Search spaces as plug-ins: what a search needs of a space, and the registry the ``space`` field picks from.

A search space (:class:`SearchSpace`) builds the supernet of a search configuration, names its
architecture weights (``cells``: ``normal`` and ``reduce`` for DARTS, one ``cell`` for NAS-Bench-201),
turns their edge weights into a genotype with the space's validity rules, and builds the final network
of a genotype. The search loop (:mod:`dscd.search`) and the survival analysis (:mod:`dscd.survival`) ask
the space and never name a cell themselves. Two spaces are registered in :data:`SPACES`:

- ``darts``: the DARTS/FairDARTS cell space of the paper (section 4): two cell types, 14 edges each,
  a ``layers``-cell skeleton with reductions at 1/3 and 2/3 depth (:class:`dscd.search_network.SearchNetwork`);
- ``nas-bench-201``: NAS-Bench-201's space (Dong and Yang, ICLR 2020): one cell of 6 edges in the
  benchmark's skeleton of 3 stages (:class:`dscd.nas_bench_201_network.NasBench201SearchNetwork`),
  where every discretised cell's trained accuracy is a lookup (:mod:`dscd.nas_bench_201`).

A genotype travels as a JSON dict: a DARTS genotype is :meth:`dscd.genotype.Genotype.to_dict` (no
``space`` key, as every run folder before the registry wrote it); another space's dict names its
space, ``{"space": "nas-bench-201", "cell": "|nor_conv_3x3~0|+|...|"}``. :func:`space_of` reads it.
Registering a space is adding one object with the attributes and methods of :class:`SearchSpace`
to :data:`SPACES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from dscd import nas_bench_201
from dscd.eval_network import EvalNetwork
from dscd.genotype import DISCRETISATION_RULES, Genotype, cell_summary, check_validity, discretise
from dscd.nas_bench_201 import EDGES, Cell, lookup
from dscd.nas_bench_201_network import NasBench201Network, NasBench201SearchNetwork
from dscd.ops import DARTS_OPS, FAIRDARTS_OPS, check_ops
from dscd.relaxations import RELAXATIONS
from dscd.search_network import SearchNetwork
from dscd.supernet import Supernet

__all__ = ["SPACES", "DartsSpace", "NasBench201Space", "SearchSpace", "get_space", "space_of"]


class SearchSpace(Protocol):
    """What a search needs of a space. ``config`` is a :class:`dscd.search.SearchConfig`."""

    #: the name the ``space`` field of a search configuration gives
    name: str
    #: the architecture weights' names, in the order of the supernet's ``alphas()`` and ``edge_weights()``
    cells: tuple[str, ...]
    #: what the collapse is, in a few words (calibration and survival records name it)
    collapse: str
    #: the discretisation rules this space knows
    rules: tuple[str, ...]
    #: what a summary copies from the final record, beside the genotype (NAS-Bench-201: its lookup)
    summary_fields: tuple[str, ...]

    def default_ops(self, relaxation: str) -> tuple[str, ...]:
        """The candidate operations of a search of this space under ``relaxation``."""

    def default_rule(self, relaxation: str) -> str:
        """The discretisation rule of a search of this space under ``relaxation``."""

    def check(self, config: Any) -> None:
        """Raise ValueError, in one line, for a configuration this space cannot search."""

    def supernet(self, config: Any, num_classes: int, in_channels: int, generator: torch.Generator) -> Supernet:
        """The supernet, with ``alphas()``, ``weights()`` and ``edge_weights(alphas=None)`` (one per cell)."""

    def cell_record(self, weights: Sequence[np.ndarray], config: Any) -> dict[str, Any]:
        """A per-epoch record's cell fields of edge weights (one array per cell): ``genotype`` (a JSON
        dict), ``valid``, ``invalid_reason`` and per cell ``mean_weight_<cell>``, ``kept_edges_<cell>``..."""

    def cell_valid(self, genotype: Mapping[str, Any], cell: str) -> bool:
        """Whether ``cell`` of a genotype dict is valid (a network built from it propagates its input)."""

    def collapsed(self, genotype: Mapping[str, Any]) -> bool:
        """Whether a genotype dict is collapsed: the state whose onset :mod:`dscd.survival` times."""

    def final_network(self, genotype: Mapping[str, Any], num_classes: int = 10, **size: Any) -> nn.Module:
        """The network of a genotype dict, to train from scratch."""


# ------------------------------------------------------------------------------------ DARTS


class DartsSpace(SearchSpace):
    """The DARTS cell space of the paper, searched by FairDARTS (sigmoid) or DARTS (softmax).

    Rules (:data:`dscd.genotype.DISCRETISATION_RULES`): ``fairdarts`` (the paper's: per node the two
    strongest edges, each with its arg-max op if its weight clears ``threshold``), ``threshold`` and
    ``darts``. A genotype is invalid when a cell propagates nothing (:func:`dscd.genotype.check_validity`).
    """

    name: str = "darts"
    cells: tuple[str, ...] = ("normal", "reduce")
    collapse: str = "the normal cell is invalid (no intermediate node reachable: the paper's Invalid arch.)"
    rules: tuple[str, ...] = DISCRETISATION_RULES
    summary_fields: tuple[str, ...] = ()

    def default_ops(self, relaxation: str) -> tuple[str, ...]:
        return DARTS_OPS if RELAXATIONS[relaxation].allows_none else FAIRDARTS_OPS

    def default_rule(self, relaxation: str) -> str:
        return RELAXATIONS[relaxation].default_rule

    def check(self, config: Any) -> None:
        check_ops(config.ops)
        if config.channels % 2:
            raise ValueError(f"channels must be even (factorized reductions halve it), got {config.channels}")
        if not RELAXATIONS[config.relaxation].allows_none and "none" in config.ops:
            raise ValueError(f"ops: 'none' is not an operation of the {config.relaxation} relaxation")
        if not [op for op in config.ops if op != "none"]:
            raise ValueError(f"ops must hold at least one operation besides 'none', got {list(config.ops)}")

    def supernet(self, config: Any, num_classes: int, in_channels: int, generator: torch.Generator) -> Supernet:
        return SearchNetwork(config.channels, num_classes, config.layers, config.nodes, config.ops,
                             config.relaxation, in_channels,
                             alpha_init_std=RELAXATIONS[config.relaxation].alpha_init_std, generator=generator)

    def cell_record(self, weights: Sequence[np.ndarray], config: Any) -> dict[str, Any]:
        normal, reduce = weights
        genotype = discretise(normal, reduce, rule=config.rule, threshold=config.threshold, ops=config.ops,
                              nodes=config.nodes)
        validity = check_validity(genotype)
        out: dict[str, Any] = {}
        for cell, w in zip(self.cells, weights, strict=True):
            for key, value in cell_summary(w, genotype.cell(cell), config.threshold).items():
                out[f"{key}_{cell}"] = value
        out.update(genotype=genotype.to_dict(), valid=validity.valid,
                   invalid_reason=None if validity.valid else validity.message())
        return out

    def cell_valid(self, genotype: Mapping[str, Any], cell: str) -> bool:
        return cell not in check_validity(Genotype.from_dict(dict(genotype))).reasons

    def collapsed(self, genotype: Mapping[str, Any]) -> bool:
        """The paper's failure (section 3, Figure 1): the normal cell empties, so the architecture is invalid."""
        return not self.cell_valid(genotype, "normal")

    def final_network(self, genotype: Mapping[str, Any], num_classes: int = 10, **size: Any) -> nn.Module:
        return EvalNetwork(Genotype.from_dict(dict(genotype)), num_classes=num_classes, **size)


# ------------------------------------------------------------------------------------ NAS-Bench-201


class NasBench201Space(SearchSpace):
    """NAS-Bench-201's space: one cell of 6 edges, each one of its 5 operations.

    ``layers`` is the number of cells, ``3N`` (N per stage: the benchmark's 15 is N = 5), and
    ``channels`` is C. The cell is fixed (4 nodes), so ``nodes`` keeps its default.

    The discretisation keeps one operation per edge, as NAS-Bench-201 does. ``darts`` (softmax's
    default) takes the arg-max over the edge's candidates, ``none`` included, as DARTS' genotype does in
    NAS-Bench-201's own searches. ``fairdarts`` (sigmoid's default) takes the arg-max if its weight
    clears ``threshold``, else ``none``: the paper's rule (section 2, Appendix A) without its top-2 edges
    per node, which a cell where every node takes every earlier node has no use for. DARTS' ``threshold``
    rule (several operations on an edge) has no cell in this space and is refused.

    A genotype is valid when the cell's output is reached from its input through edges that are not
    ``none`` (:attr:`dscd.nas_bench_201.Cell.connected`): otherwise the network's features never see the
    image. The collapse is another state: no convolution on any path from input to output
    (:attr:`dscd.nas_bench_201.Cell.learns`), where DARTS ends in this space. Every record carries the
    discretised cell's NAS-Bench-201 lookup (``lookup``).
    """

    name: str = "nas-bench-201"
    cells: tuple[str, ...] = ("cell",)
    collapse: str = ("no convolution on any path from the cell's input to its output (all-skip_connect and the "
                     "other parameter-free cells DARTS ends on in NAS-Bench-201, and the empty cell)")
    rules: tuple[str, ...] = ("fairdarts", "darts")
    summary_fields: tuple[str, ...] = ("lookup",)

    def default_ops(self, relaxation: str) -> tuple[str, ...]:
        ops = nas_bench_201.OPS
        return ops if RELAXATIONS[relaxation].allows_none else tuple(op for op in ops if op != "none")

    def default_rule(self, relaxation: str) -> str:
        return RELAXATIONS[relaxation].default_rule

    def check(self, config: Any) -> None:
        unknown = [op for op in config.ops if op not in nas_bench_201.OPS]
        if unknown or len(set(config.ops)) != len(config.ops):
            raise ValueError(f"ops of the nas-bench-201 space must be distinct ones of {', '.join(nas_bench_201.OPS)}, "
                             f"got {list(config.ops)}")
        if not RELAXATIONS[config.relaxation].allows_none and "none" in config.ops:
            raise ValueError(f"ops: 'none' is not an operation of the {config.relaxation} relaxation")
        if not [op for op in config.ops if op != "none"]:
            raise ValueError(f"ops must hold at least one operation besides 'none', got {list(config.ops)}")
        if config.layers % 3:
            raise ValueError(f"layers of the nas-bench-201 space is its number of cells, 3 stages of N: a multiple "
                             f"of 3 (the benchmark's 15), got {config.layers}")
        if config.nodes != 4:
            raise ValueError(f"the nas-bench-201 cell has 4 nodes: leave nodes at 4, got {config.nodes}")
        if config.rule not in self.rules:
            raise ValueError(f"rule of the nas-bench-201 space must be one of {', '.join(self.rules)} (one operation "
                             f"per edge), got {config.rule!r}")

    def supernet(self, config: Any, num_classes: int, in_channels: int, generator: torch.Generator) -> Supernet:
        return NasBench201SearchNetwork(config.channels, config.layers // 3, num_classes, config.ops,
                                        config.relaxation, in_channels,
                                        RELAXATIONS[config.relaxation].alpha_init_std, generator)

    def discretise(self, weights: np.ndarray, config: Any) -> Any:
        """The :class:`dscd.nas_bench_201.Cell` of edge weights ``(6, ops)`` under ``config``'s rule."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(EDGES), len(config.ops)):
            raise ValueError(f"cell weights have shape {weights.shape}, expected {(len(EDGES), len(config.ops))}")
        chosen = []
        for row in weights:
            k = int(np.argmax(row))
            keep = config.rule == "darts" or row[k] >= config.threshold
            chosen.append(config.ops[k] if keep else "none")
        return Cell(tuple(chosen))

    def cell_record(self, weights: Sequence[np.ndarray], config: Any) -> dict[str, Any]:
        (w,) = weights
        cell = self.discretise(w, config)
        kept = [edge for edge in cell.edges() if edge[0] != "none"]
        out: dict[str, Any] = {f"{key}_cell": value for key, value in cell_summary(w, kept, config.threshold).items()}
        reason = None
        if not cell.connected:
            reason = ("cell: every edge is 'none'" if cell.empty else
                      "cell: no path of edges that are not 'none' leads from the input to the output")
        out.update(genotype={"space": self.name, "cell": cell.to_string()}, valid=cell.connected,
                   invalid_reason=reason, lookup=lookup(cell).to_dict())
        return out

    def cell_valid(self, genotype: Mapping[str, Any], cell: str) -> bool:
        return Cell.from_string(genotype["cell"]).connected

    def collapsed(self, genotype: Mapping[str, Any]) -> bool:
        """DARTS' collapse in this space: no convolution on any path from input to output
        (:attr:`dscd.nas_bench_201.Cell.learns`), the all-``skip_connect`` cell among them."""
        return not Cell.from_string(genotype["cell"]).learns

    def final_network(self, genotype: Mapping[str, Any], num_classes: int = 10, **size: Any) -> nn.Module:
        return NasBench201Network(Cell.from_string(genotype["cell"]), num_classes=num_classes, **size)


#: Every search space, by the name a search configuration's ``space`` field gives.
SPACES: dict[str, SearchSpace] = {"darts": DartsSpace(), "nas-bench-201": NasBench201Space()}


def get_space(name: str) -> SearchSpace:
    """The search space called ``name``; an unknown name is a ValueError listing the known ones."""
    if not isinstance(name, str) or name not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {name!r}")
    return SPACES[name]


def space_of(genotype: Mapping[str, Any]) -> SearchSpace:
    """The space of a genotype dict: the one its ``space`` key names, ``darts`` when it has none."""
    return get_space(genotype.get("space", "darts"))
