"""Genotypes: the discrete cells a search derives, the published ones, JSON I/O and validation.

A genotype lists, for the normal and the reduction cell, the incoming edges of every intermediate
node as ``(op, input)`` pairs. Inputs are state indices: 0 = c_{k-2}, 1 = c_{k-1}, j >= 2 = node
j-2 of the same cell. ``*_concat`` lists the states concatenated into the cell output.

Two forms exist:

* the DARTS form (``edge_all=False``): exactly two pairs per node, the flat list is
  ``[node0_a, node0_b, node1_a, node1_b, ...]``;
* the SNAS "edge-all" form (``edge_all=True``): every node keeps all of its 2+i incoming edges,
  each with its argmax op, ``none`` included (such edges vanish, and a node can disappear).

A cell has at most `MAX_NODES` intermediate nodes. A genotype whose cell output no input reaches
through a real op (every path crosses ``none``: `degenerate_cells`) is a valid file but builds a
network whose cell outputs zeros; the evaluation networks refuse it unless
``allow_degenerate=True``.
"""

from __future__ import annotations

import difflib
import json
import random
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from nasviz import architectures
from nasviz.io import read_json

#: The DARTS operation space, in alpha-column order (PAPERS.md).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

#: Extra operations that published non-DARTS cells (NASNet, AmoebaNet) use; evaluation networks build them.
EXTRA_OPS: tuple[str, ...] = ("sep_conv_7x7", "conv_7x1_1x7")

CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

#: The most intermediate nodes a cell may have (DARTS cells have 4, NASNet and AmoebaNet 5); a
#: bound on what a file can ask for: an n-node cell's evaluation network grows with n^2.
MAX_NODES = 8

#: Genotype files are a few hundred bytes; larger ones are refused before parsing.
MAX_FILE_BYTES = 1 << 20

Edge = tuple[str, int]


@architectures.register
@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell as lists of ``(op, input)`` edges, plus their output concat."""

    kind: ClassVar[str] = "darts"

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    edge_all: bool = False

    def __post_init__(self) -> None:
        for name in ("normal", "reduce"):
            object.__setattr__(
                self, name, tuple((str(op), int(i)) for op, i in getattr(self, name))
            )
        for name in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))

    def edges(self, cell: str) -> tuple[Edge, ...]:
        """The flat edge list of ``cell`` ('normal' or 'reduce')."""
        _check_cell(cell)
        return getattr(self, cell)

    def concat(self, cell: str) -> tuple[int, ...]:
        """The states concatenated into the output of ``cell``."""
        _check_cell(cell)
        return getattr(self, f"{cell}_concat")

    def nodes(self, cell: str) -> list[list[Edge]]:
        """The incoming edges of each intermediate node of ``cell``."""
        return group_nodes(self.edges(cell), self.edge_all)

    def num_nodes(self, cell: str) -> int:
        """Number of intermediate nodes of ``cell``."""
        return len(self.nodes(cell))

    def removed_nodes(self, cell: str) -> set[int]:
        """Intermediate nodes (0-based) of ``cell`` that no input reaches through a real op."""
        return removed_nodes(self, cell)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the DARTS format (plus ``edge_all`` when set)."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }
        if self.edge_all:
            d["edge_all"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, allowed_ops: Iterable[str] | None = None) -> Genotype:
        """Build and validate a genotype from the JSON format; errors name the bad part."""
        if not isinstance(d, dict):
            raise ValueError(f"a genotype must be a JSON object, got {type(d).__name__}")
        if d.get("kind", cls.kind) != cls.kind:
            raise ValueError(
                f"this is a {d.get('kind')!r} architecture, not a DARTS genotype (kind 'darts')"
            )
        missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in d]
        if missing:
            raise ValueError(f"genotype is missing the key(s) {missing}")
        edges = {}
        for cell in CELL_TYPES:
            raw = d[cell]
            if not isinstance(raw, (list, tuple)) or not raw:
                raise ValueError(f"genotype.{cell} must be a non-empty list of [op, input] pairs")
            if len(raw) > MAX_EDGES:
                raise ValueError(
                    f"genotype.{cell} has {len(raw)} edges, more than a cell of at most "
                    f"MAX_NODES={MAX_NODES} nodes can have ({MAX_EDGES} in the edge-all form)"
                )
            for n, e in enumerate(raw):
                if not isinstance(e, (list, tuple)) or len(e) != 2 or not isinstance(e[0], str):
                    raise ValueError(
                        f"genotype.{cell}[{n}] = {_short(e)} is not an [op, input] pair"
                    )
                if isinstance(e[1], bool) or not isinstance(e[1], int):
                    raise ValueError(f"genotype.{cell}[{n}] input {_short(e[1])} is not an integer")
            edges[cell] = [tuple(e) for e in raw]
        edge_all = d.get("edge_all")
        if edge_all is None:
            edge_all = all(_looks_edge_all(edges[c]) for c in CELL_TYPES)
        g = cls(
            normal=edges["normal"],
            normal_concat=d["normal_concat"],
            reduce=edges["reduce"],
            reduce_concat=d["reduce_concat"],
            edge_all=bool(edge_all),
        )
        validate(g, allowed_ops=allowed_ops)
        return g

    def validate(self) -> None:
        """Raise ValueError naming the bad op, input index or node."""
        validate(self)

    def build_network(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool = True,
        allow_degenerate: bool = False,
    ) -> Any:
        """The DARTS evaluation network: ImageNet stems at >= 128 px, else the CIFAR stem.

        ``C`` = initial channels (default 36 on CIFAR, 48 on ImageNet), ``layers`` = cells (20 / 14).
        A degenerate genotype (`degenerate_cells`) is refused unless ``allow_degenerate``.
        """
        from nasviz.models import NetworkCIFAR, NetworkImageNet

        if layers is not None and layers < 3:
            raise ValueError(
                f"layers must be >= 3 for a DARTS network (reductions at layers//3 and "
                f"2*layers//3), got {layers}"
            )
        kw = dict(in_channels=in_channels, allow_degenerate=allow_degenerate)
        if image_size >= 128:
            return NetworkImageNet(C or 48, num_classes, layers or 14, auxiliary, self, **kw)
        return NetworkCIFAR(C or 36, num_classes, layers or 20, auxiliary, self, **kw)

    def reference_networks(
        self, allow_degenerate: bool = False
    ) -> list[tuple[str, Any, tuple[int, ...]]]:
        """The networks `nasviz info` reports: the CIFAR-10 evaluation config (C=36, 20 cells).

        A degenerate genotype is refused unless ``allow_degenerate`` (e.g. to report the cost of a
        cell a search derived, whatever it is).
        """
        net = self.build_network(num_classes=10, image_size=32, allow_degenerate=allow_degenerate)
        return [("CIFAR-10 eval config (C=36, 20 cells, 10 classes)", net, (1, 3, 32, 32))]

    def graph(self, title: str | None = None) -> Any:
        """Both cells drawn with graphviz."""
        from nasviz.viz.cells import genotype_graph

        return genotype_graph(self, title=title)

    @classmethod
    def builtin_names(cls) -> list[str]:
        """Names of the published DARTS-space genotypes."""
        return names()

    @classmethod
    def builtin(cls, name: str) -> Genotype | None:
        """A published genotype by name, or None if the name is not one."""
        try:
            return get(name)
        except ValueError:
            return None

    def save(self, path: str | Path) -> Path:
        """Write the genotype as JSON (atomically)."""
        return architectures.save(self, path)

    @classmethod
    def load(cls, path: str | Path, *, allowed_ops: Iterable[str] | None = None) -> Genotype:
        """Read and validate a genotype JSON file (errors name the file and the bad part)."""
        path = Path(path)
        data = read_json(path, "genotype file", max_bytes=MAX_FILE_BYTES, max_depth=MAX_JSON_DEPTH)
        try:
            return cls.from_dict(data, allowed_ops=allowed_ops)
        except ValueError as exc:
            raise ValueError(f"genotype file {path}: {exc}") from exc


#: Nesting a genotype or architecture file may have (a genotype needs 3: object, edges, pair).
MAX_JSON_DEPTH = 16

#: Edges of the largest allowed cell (edge-all form: node i has 2+i edges).
MAX_EDGES = MAX_NODES * (MAX_NODES + 3) // 2


def _short(value: Any) -> str:
    """repr cut to a readable length, for error messages about values read from files."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()  # (keyword arguments need Python 3.12)
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxlevel = 60, 60, 6, 3


def _check_cell(cell: str) -> None:
    if cell not in CELL_TYPES:
        raise ValueError(f"unknown cell type {cell!r}; expected one of {list(CELL_TYPES)}")


def _edge_all_sizes(n_edges: int) -> int | None:
    """Number of nodes n with n*(n+3)/2 == n_edges (the edge-all edge count), else None."""
    n = 1
    while n * (n + 3) // 2 <= n_edges:
        if n * (n + 3) // 2 == n_edges:
            return n
        n += 1
    return None


def _looks_edge_all(edges: Sequence[Edge]) -> bool:
    """True if node i's group of 2+i edges reads every state 0..i+1 exactly once."""
    n = _edge_all_sizes(len(edges))
    if n is None or n < 2:
        return False
    start = 0
    for i in range(n):
        inputs = sorted(int(e[1]) for e in edges[start : start + 2 + i])
        if inputs != list(range(2 + i)):
            return False
        start += 2 + i
    return True


def group_nodes(edges: Sequence[Edge], edge_all: bool) -> list[list[Edge]]:
    """Split a flat edge list into per-node groups (2 per node, or 2+i for edge-all)."""
    edges = list(edges)
    if not edge_all:
        if len(edges) % 2:
            raise ValueError(f"a DARTS-form cell needs 2 edges per node, got {len(edges)} edges")
        return [edges[i : i + 2] for i in range(0, len(edges), 2)]
    n = _edge_all_sizes(len(edges))
    if n is None:
        raise ValueError(
            f"an edge-all cell with n nodes has n*(n+3)/2 edges (5, 9, 14, ...), got {len(edges)}"
        )
    groups, start = [], 0
    for i in range(n):
        groups.append(edges[start : start + 2 + i])
        start += 2 + i
    return groups


def random_genotype(
    rng: random.Random, steps: int = 4, primitives: Sequence[str] = PRIMITIVES
) -> Genotype:
    """A genotype drawn uniformly from the DARTS derivation space (the random-search baseline).

    Per cell and intermediate node: 2 distinct inputs among the node's predecessors, each with an
    op drawn uniformly among ``primitives`` other than none (what the DARTS rule can derive).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ops = [p for p in primitives if p != "none"]
    if not ops:
        raise ValueError(f"no op other than none in {list(primitives)}")
    cells = {}
    for cell in CELL_TYPES:
        edges: list[Edge] = []
        for i in range(steps):
            for j in sorted(rng.sample(range(i + 2), 2)):
                edges.append((rng.choice(ops), j))
        cells[cell] = tuple(edges)
    concat = tuple(range(2, steps + 2))
    return Genotype(cells["normal"], concat, cells["reduce"], concat)


def random_genotypes(n: int, seed: int = 0, steps: int = 4) -> list[Genotype]:
    """``n`` genotypes from `random_genotype` with one seeded stream (the same seed, the same cells)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [random_genotype(rng, steps) for _ in range(n)]


def validate(genotype: Genotype, *, allowed_ops: Iterable[str] | None = None) -> None:
    """Raise ValueError naming the bad op, input index or node; return None if valid."""
    allowed = tuple(allowed_ops) if allowed_ops is not None else PRIMITIVES + EXTRA_OPS
    for cell in CELL_TYPES:
        nodes = group_nodes(genotype.edges(cell), genotype.edge_all)
        if len(nodes) > MAX_NODES:
            raise ValueError(
                f"{cell} cell has {len(nodes)} nodes; at most MAX_NODES={MAX_NODES} are supported "
                "(DARTS cells have 4, NASNet and AmoebaNet 5)"
            )
        for i, node in enumerate(nodes):
            for op, inp in node:
                if op not in allowed:
                    close = difflib.get_close_matches(op, allowed, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ValueError(
                        f"{cell} cell, node {i}: unknown op {_short(op)}{hint}; "
                        f"allowed ops: {', '.join(allowed)}"
                    )
                if not 0 <= inp < i + 2:
                    raise ValueError(
                        f"{cell} cell, node {i}: input {inp} out of range; node {i} can read "
                        f"states 0..{i + 1} (0 = c_k-2, 1 = c_k-1, j >= 2 = node j-2)"
                    )
        concat = genotype.concat(cell)
        if not concat:
            raise ValueError(f"{cell}_concat is empty")
        for j in concat:
            if not 0 <= j < len(nodes) + 2:
                raise ValueError(
                    f"{cell}_concat: state {j} does not exist; states are 0..{len(nodes) + 1}"
                )
        if len(set(concat)) != len(concat):
            raise ValueError(f"{cell}_concat repeats a state: {list(concat)}")


def removed_nodes(genotype: Genotype, cell: str) -> set[int]:
    """Intermediate nodes (0-based) that no cell input reaches through a real op.

    A node is reached when one of its edges has an op other than ``none`` and reads a cell input
    (state 0 or 1) or a reached node; the others output zeros whatever the input.
    """
    removed: set[int] = set()
    for i, node in enumerate(genotype.nodes(cell)):
        if not any(op != "none" and not (j >= 2 and j - 2 in removed) for op, j in node):
            removed.add(i)
    return removed


def degenerate_cells(genotype: Genotype) -> list[str]:
    """The cells whose output no input reaches through a real op (their output is all zeros)."""
    bad = []
    for cell in CELL_TYPES:
        removed = removed_nodes(genotype, cell)
        if not any(j >= 2 and j - 2 not in removed for j in genotype.concat(cell)):
            bad.append(cell)
    return bad


def check_not_degenerate(genotype: Genotype) -> None:
    """Raise ValueError naming each cell whose output no input reaches through a real op."""
    bad = degenerate_cells(genotype)
    if bad:
        cells = " and ".join(f"the {c} cell" for c in bad)
        raise ValueError(
            f"degenerate genotype: {cells} outputs zeros whatever the input (no path from "
            "c_k-2 or c_k-1 to a concatenated node through an op other than 'none'); such a "
            "network cannot learn: pass allow_degenerate=True to build it anyway"
        )


# --------------------------------------------------------------------------------------------
# Published genotypes (../shared/reference/published_genotypes.json, shipped with the package)

_ALIASES = {
    "darts": "DARTS_V2",
    "pc_darts": "PC_DARTS_cifar",
    "pcdarts": "PC_DARTS_cifar",
    "pc_darts_imagenet": "PC_DARTS_image",
}


def _published() -> dict[str, dict[str, Any]]:
    text = resources.files("nasviz").joinpath("published_genotypes.json").read_text()
    return json.loads(text)


def names() -> list[str]:
    """Names of the built-in published genotypes."""
    return list(_published())


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get(name: str) -> Genotype:
    """A published genotype by name (case-insensitive, e.g. 'darts_v2', 'pc_darts', 'snas_mild')."""
    table = _published()
    by_key = {_normalize(k): k for k in table}
    key = _normalize(name)
    key = _normalize(_ALIASES.get(key, key))
    if key not in by_key:
        close = difflib.get_close_matches(key, [*by_key, *_ALIASES], n=3)
        hint = f"; did you mean {', '.join(by_key.get(c, c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown genotype {_short(name)}{hint} (built-in genotypes: {', '.join(table)}; "
            f"aliases: {', '.join(_ALIASES)}; or pass a genotype JSON file)"
        )
    real = by_key[key]
    d = dict(table[real])
    d.setdefault("edge_all", real.endswith("_edge_all"))
    return Genotype.from_dict(d)


def resolve(spec: str | Path | Genotype) -> Genotype:
    """A Genotype from a Genotype, a built-in name, or a path to a JSON file."""
    if isinstance(spec, Genotype):
        return spec
    spec_str = str(spec)
    if spec_str.endswith(".json") or Path(spec_str).is_file():
        return Genotype.load(spec_str)
    return get(spec_str)
