"""Genotypes: the discrete architecture a search produces.

A genotype lists, for the normal and the reduction cell, its edges
``(op, from_node, to_node)``: nodes 0 and 1 are the cell's inputs (outputs of the
cell two back and one back), nodes ``2 .. nodes + 1`` the intermediate nodes.
``style`` says how the evaluation network builds it: ``threshold`` genotypes
(FairDARTS) may give a node any number of edges, several ops on one edge, or none
at all (the node is then skipped); ``darts`` genotypes give every intermediate
node exactly two edges. The JSON format (one genotype, or named ones)::

    {"style": "threshold", "normal": [["sep_conv_3x3", 0, 2], ...], "reduce": [...]}

The DARTS family's own text format, ``Genotype(normal=[('sep_conv_3x3', 0), ...],
normal_concat=range(2, 6), reduce=..., reduce_concat=...)``, is read and written by
:meth:`Genotype.from_darts` and :meth:`Genotype.to_darts`: pairs ``(op, from_node)``,
two per intermediate node in node order (DARTS, PC-DARTS, P-DARTS), or FairDARTS'
triples ``(op, to_node, from_node)``. The published genotypes ship with the package
(:func:`published_genotypes`) and load by name: ``load_genotype("DARTS_V2")``.

This module also turns architecture weights into genotypes (:func:`discretise`),
decides validity (:func:`check_validity`), summarises weights per cell and draws
a genotype.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dscd.ops import FAIRDARTS_OPS, OPS

__all__ = [
    "CELLS", "DISCRETISATION_RULES", "Genotype", "GenotypeError", "Validity", "cell_summary", "check_validity",
    "discretise", "draw_genotype", "load_genotype", "load_genotypes", "published_genotypes", "reachable_nodes",
    "topological_edges",
]

CELLS = ("normal", "reduce")
STYLES = ("threshold", "darts")
#: fairdarts: per node the top-2 edges by their largest weight, then the arg-max op if >= threshold
#: (FairDARTS' default, "threshold_sparse"); threshold: every op >= threshold on every edge;
#: darts: per node the top-2 edges with their arg-max op, no threshold.
DISCRETISATION_RULES = ("fairdarts", "threshold", "darts")

Edge = tuple[str, int, int]


class GenotypeError(ValueError):
    """A malformed genotype (file): the message says what and where."""


@dataclass(frozen=True)
class Genotype:
    """An immutable architecture: edges of the normal and reduction cells, and a build style."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    style: str = "threshold"
    nodes: int = 4

    def __post_init__(self) -> None:
        for cell in CELLS:
            for k, edge in enumerate(getattr(self, cell)):
                if len(edge) != 3 or not all(_is_index(v) for v in edge[1:]):
                    raise GenotypeError(f"{cell} cell, edge {k} {list(edge)}: an edge is (op, from_node, to_node) "
                                        "with integer node indices")
        object.__setattr__(self, "normal", tuple((str(o), int(i), int(j)) for o, i, j in self.normal))
        object.__setattr__(self, "reduce", tuple((str(o), int(i), int(j)) for o, i, j in self.reduce))
        if self.style not in STYLES:
            raise GenotypeError(f"style must be one of {STYLES}, got {self.style!r}")
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise GenotypeError(f"nodes must be an integer >= 1, got {self.nodes!r}")
        for cell in CELLS:
            for k, (op, i, j) in enumerate(getattr(self, cell)):
                where = f"{cell} cell, edge {k} {[op, i, j]}"
                if op not in OPS or op == "none":
                    known = ", ".join(o for o in OPS if o != "none")
                    raise GenotypeError(f"{where}: unknown operation {op!r} (known: {known})")
                if not 2 <= j <= self.nodes + 1:
                    if 0 <= j < 2:
                        raise GenotypeError(f"{where}: an edge into input node {j}; edges end at intermediate "
                                            f"nodes 2..{self.nodes + 1}")
                    raise GenotypeError(f"{where}: node index {j} out of range 2..{self.nodes + 1}")
                if not 0 <= i <= self.nodes + 1:
                    raise GenotypeError(f"{where}: node index {i} out of range 0..{self.nodes + 1}")
            topological_edges(getattr(self, cell), cell)  # raises on a cycle

    def cell(self, name: str) -> tuple[Edge, ...]:
        """The edges ``(op, from, to)`` of cell ``name`` (``normal`` or ``reduce``)."""
        if name not in CELLS:
            raise ValueError(f"cell must be 'normal' or 'reduce', got {name!r}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The genotype as a JSON-ready dict; :meth:`from_dict` reads it back."""
        return {"style": self.style, "nodes": self.nodes,
                "normal": [list(e) for e in self.normal], "reduce": [list(e) for e in self.reduce]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "genotype") -> Genotype:
        """A genotype from :meth:`to_dict`'s dict; every malformed field is a :class:`GenotypeError` naming
        ``where``."""
        if not isinstance(data, dict):
            raise GenotypeError(f"{where}: expected an object with 'normal' and 'reduce', got {type(data).__name__}")
        missing = [k for k in CELLS if k not in data]
        if missing:
            raise GenotypeError(f"{where}: missing {missing} (a genotype has 'normal' and 'reduce' edge lists)")
        for cell in CELLS:
            edges = data[cell]
            if not isinstance(edges, list) or not all(
                    isinstance(e, (list, tuple)) and len(e) == 3 and isinstance(e[0], str)
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in e[1:]) for e in edges):
                raise GenotypeError(f"{where}: '{cell}' must be a list of [op, from_node, to_node] triples")
        try:
            return cls(normal=tuple(map(tuple, data["normal"])), reduce=tuple(map(tuple, data["reduce"])),
                       style=data.get("style", "threshold"), nodes=data.get("nodes", 4))
        except GenotypeError as err:
            raise GenotypeError(f"{where}: {err}") from None

    def to_json(self) -> str:
        """The genotype as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        """A genotype from :meth:`to_json`'s string."""
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write the genotype as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    def to_darts(self) -> str:
        """This genotype in the DARTS repositories' text format (one line).

        A ``darts``-style genotype whose edges come two per node in node order is written as
        DARTS writes it, pairs ``(op, from_node)``; any other as FairDARTS writes its
        genotypes, triples ``(op, to_node, from_node)``. :meth:`from_darts` reads either back
        to an equal genotype.
        """
        pairs = self.style == "darts" and all(_darts_pairs(getattr(self, c), self.nodes) for c in CELLS)

        def cell(edges: tuple[Edge, ...]) -> str:
            if pairs:
                return "[" + ", ".join(f"({op!r}, {i})" for op, i, _ in edges) + "]"
            return "[" + ", ".join(f"({op!r}, {j}, {i})" for op, i, j in edges) + "]"

        concat = f"range(2, {self.nodes + 2})"
        return (f"Genotype(normal={cell(self.normal)}, normal_concat={concat}, reduce={cell(self.reduce)}, "
                f"reduce_concat={concat})")

    @classmethod
    def from_darts(cls, text: str) -> Genotype:
        """Read one ``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)``
        (pairs: DARTS style; FairDARTS' triples ``(op, to, from)``: threshold style).

        A concat other than all intermediate nodes (NASNet's, AmoebaNet's) is refused: the
        cells built here concatenate every intermediate node that receives input.
        """
        genotypes = parse_darts(text, "text")
        if len(genotypes) != 1:
            raise GenotypeError(f"expected one Genotype(...), found {len(genotypes)} ({', '.join(genotypes)})")
        return next(iter(genotypes.values()))

    def is_valid(self) -> bool:
        """Whether both cells propagate their input (:func:`check_validity`)."""
        return check_validity(self).valid


def topological_edges(edges: Iterable[Edge], cell: str = "cell") -> list[Edge]:
    """The edges sorted so that every edge comes after all edges into its source node.

    Raises :class:`GenotypeError` on a cycle (including a self-loop).
    """
    edges = list(edges)
    targets = {j for _, _, j in edges}
    incoming: dict[int, list[int]] = {}
    for _, i, j in edges:
        incoming.setdefault(j, []).append(i)
    order: list[int] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(node: int, path: list[int]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = path[path.index(node):] + [node]
            raise GenotypeError(f"{cell} cell has a cycle through nodes {' -> '.join(map(str, reversed(cycle)))}")
        state[node] = 1
        for source in incoming.get(node, []):
            visit(source, path + [node])
        state[node] = 2
        order.append(node)

    for node in sorted(targets):
        visit(node, [])
    rank = {node: r for r, node in enumerate(order)}
    return sorted(edges, key=lambda e: (rank[e[2]], e[1], e[0]))


def reachable_nodes(edges: Iterable[Edge]) -> list[int]:
    """Intermediate nodes that receive input from the cell's inputs (directly or through other nodes)."""
    reach = {0, 1}
    changed = True
    edges = list(edges)
    while changed:
        changed = False
        for _, i, j in edges:
            if i in reach and j not in reach:
                reach.add(j)
                changed = True
    return sorted(reach - {0, 1})


@dataclass(frozen=True)
class Validity:
    """Whether a genotype can be built, and why not."""

    valid: bool
    reasons: dict[str, str]

    def message(self) -> str:
        """``valid``, or each invalid cell with its reason."""
        if self.valid:
            return "valid"
        return "; ".join(f"{cell} cell: {why}" for cell, why in self.reasons.items())


def check_validity(genotype: Genotype) -> Validity:
    """A cell is invalid when no intermediate node is reachable from its inputs: it propagates nothing,
    so the network built from the genotype has no path from input to output ("Invalid arch.")."""
    reasons = {}
    for cell in CELLS:
        edges = genotype.cell(cell)
        if not edges:
            reasons[cell] = "no edge was kept, so no intermediate node receives input"
        elif not reachable_nodes(edges):
            reasons[cell] = "no intermediate node is reachable from the cell inputs"
    return Validity(valid=not reasons, reasons=reasons)


def _edge_index(nodes: int) -> list[tuple[int, int]]:
    """(from, to) of the supernet's edges in alpha's row order."""
    return [(i, 2 + n) for n in range(nodes) for i in range(2 + n)]


def _as_weights(alpha: Any) -> np.ndarray:
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.detach().cpu().double().numpy()
    return np.asarray(alpha, dtype=np.float64)


def discretise(
    normal: Any,
    reduce: Any,
    rule: str = "fairdarts",
    threshold: float = 0.85,
    ops: Sequence[str] = FAIRDARTS_OPS,
    nodes: int = 4,
) -> Genotype:
    """Turn edge weights (``sigmoid(alpha)`` or ``softmax(alpha)``, shape ``(edges, ops)``) into a genotype.

    Rules (the reference's three): ``fairdarts`` keeps, per intermediate node, the two
    incoming edges with the largest weight and on each the arg-max op only if its
    weight is ``>= threshold`` (a node may end with 0, 1 or 2 edges; at
    initialisation, all 0.5, the genotype is empty); ``threshold`` keeps every
    (edge, op) pair ``>= threshold``; ``darts`` keeps the top-2 edges per node with
    their arg-max op (``none`` excluded) regardless of any threshold. The result
    is never repaired: check it with :func:`check_validity`.
    """
    if rule not in DISCRETISATION_RULES:
        raise ValueError(f"unknown discretisation rule {rule!r}; choose one of {DISCRETISATION_RULES}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    ops = tuple(ops)
    index = _edge_index(nodes)
    cells = {}
    for cell, weights in (("normal", _as_weights(normal)), ("reduce", _as_weights(reduce))):
        if weights.shape != (len(index), len(ops)):
            raise ValueError(f"{cell} weights have shape {weights.shape}, expected {(len(index), len(ops))} "
                             f"(edges of a {nodes}-node cell, operations {ops})")
        usable = np.array([op != "none" for op in ops])
        w = np.where(usable, weights, -np.inf)
        kept: list[Edge] = []
        if rule == "threshold":
            for e, (i, j) in enumerate(index):
                kept += [(ops[k], i, j) for k in range(len(ops)) if usable[k] and weights[e, k] >= threshold]
        else:
            for n in range(nodes):
                rows = [e for e, (_, j) in enumerate(index) if j == 2 + n]
                best = sorted(rows, key=lambda e: -w[e].max())[:2]
                for e in sorted(best):
                    k = int(np.argmax(w[e]))
                    if rule == "darts" or weights[e, k] >= threshold:
                        kept.append((ops[k], index[e][0], index[e][1]))
        cells[cell] = tuple(kept)
    return Genotype(normal=cells["normal"], reduce=cells["reduce"],
                    style="darts" if rule == "darts" else "threshold", nodes=nodes)


def cell_summary(weights: Any, genotype_edges: Sequence[Edge], threshold: float = 0.85) -> dict[str, float]:
    """Numbers per cell type: mean weight, fraction of (edge, op) pairs >= threshold, kept edges,
    and the mean of the discretised (0/1) weights."""
    w = _as_weights(weights)
    kept_pairs = len(genotype_edges)
    return {
        "mean_weight": float(w.mean()),
        "fraction_above_threshold": float((w >= threshold).mean()),
        "kept_edges": len({(i, j) for _, i, j in genotype_edges}),
        "kept_pairs": kept_pairs,
        "mean_discretised": kept_pairs / w.size,
    }


def _darts_pairs(edges: Sequence[Edge], nodes: int) -> bool:
    """Whether ``edges`` are two per intermediate node, in node order (DARTS' pair format)."""
    return len(edges) == 2 * nodes and all(j == 2 + k // 2 for k, (_, _, j) in enumerate(edges))


def _is_index(value: Any) -> bool:
    """A node index: an integer (Python's or NumPy's), never a bool or a float such as 1.7."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


#: The longest ``range(...)`` a genotype text may hold: a concat lists a cell's intermediate nodes.
_MAX_RANGE = 64


def _literal(node: ast.AST, what: str) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = [_literal(a, what) for a in node.args]
        if not 1 <= len(args) <= 3 or node.keywords or not all(_is_index(a) for a in args):
            raise GenotypeError(f"{what}: {ast.unparse(node)!r}: range takes one to three integers")
        span = range(*args)
        if len(span) > _MAX_RANGE:
            raise GenotypeError(f"{what}: {ast.unparse(node)!r} has {len(span)} elements; a cell's concat lists "
                                f"its intermediate nodes (at most {_MAX_RANGE})")
        return list(span)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(f"{what}: {ast.unparse(node)!r} is not a literal list, tuple or range") from None


def _darts_cell(entries: Any, concat: Any, cell: str, where: str) -> tuple[list[Edge], int, str]:
    if not isinstance(entries, (list, tuple)) or not all(
            isinstance(e, (list, tuple)) and len(e) in (2, 3) and isinstance(e[0], str) for e in entries):
        raise GenotypeError(f"{where}: {cell} must be a list of (op, from_node) pairs or (op, to, from) triples")
    sizes = {len(e) for e in entries}
    if len(sizes) > 1:
        raise GenotypeError(f"{where}: {cell} mixes pairs and triples")
    bad = [list(e) for e in entries if not all(_is_index(v) for v in e[1:])]
    if bad:
        raise GenotypeError(f"{where}: {cell} entry {bad[0]}: node indices must be integers")
    if not isinstance(concat, (list, tuple)) or not all(_is_index(v) for v in concat):
        raise GenotypeError(f"{where}: {cell}_concat={concat!r} must be a list or range of node indices, e.g. "
                            "range(2, 6)")
    concat = list(concat)
    if not concat or concat != list(range(2, max(concat) + 1)):
        raise GenotypeError(f"{where}: {cell}_concat={concat} is not supported: cells here concatenate every "
                            "intermediate node 2..n that receives input (concat=range(2, n + 1))")
    nodes = len(concat)
    if sizes == {3}:
        return [(op, int(i), int(j)) for op, j, i in entries], nodes, "threshold"
    if len(entries) != 2 * nodes:
        raise GenotypeError(f"{where}: {cell} has {len(entries)} pairs; DARTS' format gives each of the {nodes} "
                            f"intermediate nodes two ({2 * nodes} pairs)")
    return [(op, int(i), 2 + k // 2) for k, (op, i) in enumerate(entries)], nodes, "darts"


def parse_darts(text: str, where: str = "text") -> dict[str, Genotype]:
    """Every ``Genotype(...)`` in ``text`` (e.g. a DARTS ``genotypes.py``): ``NAME = Genotype(...)``
    lines by name, a bare ``Genotype(...)`` as ``"genotype"``. Names bound to another name
    (``DARTS = DARTS_V2``) and other statements are skipped."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise GenotypeError(f"{where}: not a Genotype(...) expression ({err.msg}, line {err.lineno})") from None
    found: dict[str, Genotype] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                statement.targets[0], ast.Name):
            name, call = statement.targets[0].id, statement.value
        elif isinstance(statement, ast.Expr):
            name, call = "genotype", statement.value
        else:
            continue
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
            continue
        fields = {k.arg: k.value for k in call.keywords}
        for key, value in zip(("normal", "normal_concat", "reduce", "reduce_concat"), call.args, strict=False):
            fields[key] = value
        missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in fields]
        if missing:
            raise GenotypeError(f"{where} [{name}]: Genotype(...) lacks {', '.join(missing)}")
        here = f"{where} [{name}]"
        if name in found:
            raise GenotypeError(f"{here}: defined twice (line {statement.lineno} repeats the name): keep one, or "
                                "give each its own name")
        normal, n_normal, style = _darts_cell(_literal(fields["normal"], here), _literal(fields["normal_concat"], here),
                                              "normal", here)
        reduce, n_reduce, style_r = _darts_cell(_literal(fields["reduce"], here),
                                                _literal(fields["reduce_concat"], here), "reduce", here)
        if n_normal != n_reduce or style != style_r:
            raise GenotypeError(f"{here}: the normal and reduction cells differ in format or node count")
        try:
            found[name] = Genotype(normal=tuple(normal), reduce=tuple(reduce), style=style, nodes=n_normal)
        except GenotypeError as err:
            raise GenotypeError(f"{here}: {err}") from None
    if not found:
        raise GenotypeError(f"{where}: no Genotype(normal=..., reduce=...) found")
    return found


_PUBLISHED = Path(__file__).with_name("genotypes.json")


def published_genotypes() -> dict[str, Genotype]:
    """The published genotypes shipped with the package: DARTS_V1, DARTS_V2, PC_DARTS, PDARTS and
    FairDARTS_a to FairDARTS_g (their sources are in the file's ``_about``)."""
    return load_genotypes(_PUBLISHED)


def load_genotypes(path: str | Path) -> dict[str, Genotype]:
    """All genotypes of a file, or a published genotype by name (:func:`published_genotypes`).

    A file holds JSON (one genotype object, or ``{name: genotype, ...}``; keys starting
    with ``_`` are comments) or DARTS' text format (one or more ``Genotype(...)``, e.g. a
    ``genotypes.py``; see :func:`parse_darts`).
    """
    path = Path(path)
    if not path.is_file():
        if str(path) in (published := published_genotypes()):
            return {str(path): published[str(path)]}
        raise GenotypeError(f"no genotype file at {path}, and no published genotype of that name "
                            f"(published: {', '.join(published_genotypes())})")
    text = path.read_text()
    if "Genotype(" in text and not text.lstrip().startswith("{"):
        found = parse_darts(text, str(path))
        return {path.stem: found["genotype"]} if list(found) == ["genotype"] else found  # a bare one: the file's
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise GenotypeError(f"{path} is not valid JSON ({err}), nor DARTS' Genotype(...) text") from None
    if isinstance(data, dict) and any(k in data for k in CELLS):
        return {path.stem: Genotype.from_dict(data, where=str(path))}
    if not isinstance(data, dict):
        raise GenotypeError(f"{path}: expected a genotype object or an object of named genotypes")
    named = {k: v for k, v in data.items() if not k.startswith("_")}
    if not named:
        raise GenotypeError(f"{path}: no genotype in the file")
    return {name: Genotype.from_dict(value, where=f"{path} [{name}]") for name, value in named.items()}


def load_genotype(path: str | Path, name: str | None = None) -> Genotype:
    """One genotype from a file (JSON or DARTS' text) or a published one by name
    (``load_genotype("DARTS_V2")``); ``name`` picks one from a file of several."""
    genotypes = load_genotypes(path)
    if name is None:
        if len(genotypes) != 1:
            raise GenotypeError(f"{path} holds {len(genotypes)} genotypes ({', '.join(genotypes)}): "
                                "choose one with --name")
        return next(iter(genotypes.values()))
    if name not in genotypes:
        raise GenotypeError(f"no genotype named {name!r} in {path} (have: {', '.join(genotypes)})")
    return genotypes[name]


_OP_COLOURS = {"max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#17becf", "skip_connect": "#7f7f7f",
               "sep_conv_3x3": "#d62728", "sep_conv_5x5": "#ff7f0e", "dil_conv_3x3": "#2ca02c",
               "dil_conv_5x5": "#9467bd"}


def draw_genotype(genotype: Genotype, title: str | None = None):
    """Draw the two cells with matplotlib (no graphviz): inputs left, nodes in order, output right.

    Several ops on one edge are drawn as parallel arcs, coloured by op (the key below the cells);
    unreachable nodes are grey and the edges leaving them faded. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.0))
    n = genotype.nodes
    used: set[str] = set()  # the ops drawn, for the colour key (labels on the arcs overlapped nodes and each other)
    for ax, cell in zip(axes, CELLS, strict=True):
        edges = genotype.cell(cell)
        reach = set(reachable_nodes(edges))
        pos: dict[int | str, tuple[float, float]] = {0: (0.0, 0.75), 1: (0.0, 0.25)}  # nodes, and "out"
        for k in range(n):
            pos[2 + k] = (1.0 + k, 0.5 + (0.3 if k % 2 else -0.3) * (1 if n > 1 else 0))
        pos["out"] = (n + 1.0, 0.5)
        seen: dict[tuple[int, int], int] = {}
        for op, i, j in edges:
            m = seen.get((i, j), 0)
            seen[(i, j)] = m + 1
            rad = 0.15 + 0.18 * m
            live = i in (0, 1) or i in reach
            arrow = FancyArrowPatch(pos[i], pos[j], connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                    mutation_scale=12, lw=1.6, color=_OP_COLOURS.get(op, "k"),
                                    alpha=1.0 if live else 0.3)
            ax.add_patch(arrow)
            used.add(op)
        for node in reach:
            ax.add_patch(FancyArrowPatch(pos[node], pos["out"], arrowstyle="-|>", mutation_scale=10, lw=0.8,
                                         color="0.6", ls="--"))
        for place, (x, y) in pos.items():
            label = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}.get(place, str(place))
            live = place in (0, 1, "out") or place in reach
            ax.scatter([x], [y], s=900, color="#fce5b0" if live else "#e6e6e6", edgecolor="k", zorder=3)
            ax.text(x, y, f"${label}$" if place in (0, 1, "out") else label, ha="center", va="center", zorder=4,
                    fontsize=9)
        ax.set_xlim(-0.6, n + 1.6)
        ax.set_ylim(-0.3, 1.3)
        ax.axis("off")
        validity = "" if reach else "  (invalid: nothing propagates)"
        ax.set_title(f"{cell} cell: {len(edges)} op(s){validity}", fontsize=10)
    key = [Line2D([], [], color=_OP_COLOURS.get(op, "k"), lw=2) for op in sorted(used)]
    labels = sorted(used)
    key.append(Line2D([], [], color="0.6", lw=0.8, ls="--"))
    labels.append("into the output (concatenated)")
    fig.legend(key, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
