"""Cell diagrams in the papers' style, drawn with graphviz.

``cell_graph(genotype, "normal")`` returns a ``graphviz.Digraph`` that shows inline in Jupyter:
inputs c_{k-2} and c_{k-1} (real subscripts) on the left, the intermediate nodes 0..n-1 in reading
order (column by column, each top to bottom), the output c_{k} on the
right, one edge per ``(op, input)`` pair labelled with the op and colored by its family (pool,
skip, sep, dil, other). ``none`` edges are not drawn; a node left with no live input (SNAS
edge-all cells) is drawn grey and dashed as "removed" and is not linked to the output.

graphviz (the Python package) is imported lazily, and rendering needs the ``dot`` program; when
either is missing a `DotNotFoundError` says how to install it. ``check_dot()`` checks up front.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasviz.genotypes import Genotype, removed_nodes  # noqa: F401 (removed_nodes: re-exported)

if TYPE_CHECKING:
    import graphviz

INSTALL_HELP = (
    "Drawing cells needs Graphviz: the `dot` program and the `graphviz` Python package.\n"
    "  Debian/Ubuntu:  sudo apt-get install graphviz\n"
    "  conda:          conda install -c conda-forge graphviz   (installs the `dot` binary)\n"
    "  macOS:          brew install graphviz\n"
    "  Python package: pip install graphviz\n"
    "Then restart the kernel so `dot` is on the PATH."
)

# Op families and their colors; shared with the matplotlib plots so an op looks the same everywhere.
FAMILY_COLORS: dict[str, str] = {
    "pool": "#1f77b4",  # blue
    "skip": "#2ca02c",  # green
    "sep": "#d62728",  # red
    "dil": "#9467bd",  # purple
    "none": "#7f7f7f",  # grey
    "other": "#8c564b",  # brown
}

# One distinct color per DARTS op, shaded within its family (for line plots with one line per op).
_OP_COLORS: dict[str, str] = {
    "none": "#7f7f7f",
    "max_pool_3x3": "#1f77b4",
    "avg_pool_3x3": "#17becf",
    "skip_connect": "#2ca02c",
    "sep_conv_3x3": "#d62728",
    "sep_conv_5x5": "#ff7f0e",
    "sep_conv_7x7": "#e377c2",
    "dil_conv_3x3": "#9467bd",
    "dil_conv_5x5": "#bcbd22",
    "conv_7x1_1x7": "#8c564b",
}
_FALLBACK = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354")

_INPUT_FILL = "#d6eaf8"  # light blue, as in the DARTS paper figures
_NODE_FILL = "#fcf3cf"  # light yellow
_OUTPUT_FILL = "#d5f5e3"  # light green
_REMOVED = "#b3b3b3"
_SUB_SIZE = 9  # points, subscripts of c_{k-2}, c_{k-1}, c_{k} (labels are 12 pt)
# The widest drawing, in inches (72 pt): graphviz scales larger ones down to fit. 8.5 in is
# 816 px in a browser, inside a JupyterLab notebook column with the file browser open (~850 px).
MAX_WIDTH_IN = 8.5


class DotNotFoundError(RuntimeError):
    """Graphviz (the `dot` program or the `graphviz` Python package) is not installed."""


def state_label(state: int) -> str:
    """Paper name of a cell state: 0 -> 'c_{k-2}', 1 -> 'c_{k-1}', j >= 2 -> node 'j-2'."""
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(state, str(state - 2))


def op_family(op: str) -> str:
    """Family of an op name: 'pool', 'skip', 'sep', 'dil', 'none' or 'other'."""
    if op == "none":
        return "none"
    if "pool" in op:
        return "pool"
    if op.startswith("skip") or op == "identity":
        return "skip"
    if op.startswith("sep"):
        return "sep"
    if op.startswith("dil"):
        return "dil"
    return "other"


def op_color(op: str) -> str:
    """A stable hex color for one op (distinct per DARTS op, shaded by family)."""
    if op in _OP_COLORS:
        return _OP_COLORS[op]
    return _FALLBACK[zlib.crc32(op.encode()) % len(_FALLBACK)]


# ------------------------------------------------------------------------------ graphviz access


def _graphviz() -> Any:
    """The graphviz module, or DotNotFoundError if the Python package is missing."""
    try:
        import graphviz
    except ImportError as exc:
        raise DotNotFoundError(
            f"the `graphviz` Python package is not installed.\n{INSTALL_HELP}"
        ) from exc
    return graphviz


@functools.cache
def _digraph_class() -> type:
    """A graphviz.Digraph whose rendering turns a missing `dot` into DotNotFoundError."""
    graphviz = _graphviz()

    class CellDigraph(graphviz.Digraph):
        """graphviz.Digraph that explains how to install Graphviz when `dot` is missing."""

        def pipe(self, *args: Any, **kwargs: Any) -> Any:
            """Render to bytes/str (see graphviz.Digraph.pipe)."""
            with _friendly_errors():
                return super().pipe(*args, **kwargs)

        def render(self, *args: Any, **kwargs: Any) -> Any:
            """Render to a file (see graphviz.Digraph.render)."""
            with _friendly_errors():
                return super().render(*args, **kwargs)

    return CellDigraph


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Re-raise graphviz.ExecutableNotFound as DotNotFoundError with install instructions."""
    graphviz = _graphviz()
    try:
        yield
    except graphviz.ExecutableNotFound as exc:
        msg = f"the Graphviz `dot` program was not found ({exc}).\n{INSTALL_HELP}"
        raise DotNotFoundError(msg) from exc


def check_dot() -> None:
    """Raise DotNotFoundError (with install instructions) unless graphviz and `dot` both work."""
    graphviz = _graphviz()
    with _friendly_errors():
        graphviz.version()


# ------------------------------------------------------------------------------ building graphs


def state_html(state: int) -> str:
    """A cell state as a graphviz HTML label with a real subscript: c<SUB>k-2</SUB>, '0', ..."""
    sub = {0: "k-2", 1: "k-1"}.get(state)
    return f"<c<SUB>{_small(sub)}</SUB>>" if sub else str(state - 2)


def _small(text: str) -> str:
    """``text`` in the subscript font size (graphviz HTML labels)."""
    return f'<FONT POINT-SIZE="{_SUB_SIZE}">{text}</FONT>'


def node_columns(genotype: Genotype, cell: str = "normal") -> list[list[int]]:
    """Intermediate nodes (0-based) grouped into the drawing's columns, left to right.

    A node goes one column right of its rightmost drawn input, and never left of the node
    before it, so reading the columns left to right, each top to bottom, gives 0, 1, 2, ...
    """
    columns: list[int] = []  # per node; the two inputs c_{k-2}, c_{k-1} are column 0
    for i, node in enumerate(genotype.nodes(cell)):
        inputs = [inp for op, inp in node if op != "none"]
        from_inputs = 1 + max((columns[inp - 2] if inp >= 2 else 0) for inp in inputs or [0])
        columns.append(max(from_inputs, columns[i - 1] if i else 1))
    return [[i for i, c in enumerate(columns) if c == col] for col in sorted(set(columns))]


def _same_rank(g: Any, ids: list[str]) -> None:
    """Put ``ids`` in one rank, in this order (top to bottom): invisible edges between them."""
    with g.subgraph() as rank:
        rank.attr(rank="same")
        for node_id in ids:
            rank.node(node_id)
        for a, b in itertools.pairwise(ids):
            rank.edge(a, b, style="invis")


def _add_cell(g: Any, genotype: Genotype, cell: str, prefix: str) -> list[list[str]]:
    """Draw the nodes and edges of one cell into graph ``g``; node ids start with ``prefix``.

    Returns the node ids to put in one rank each, in reading order: the two inputs, then each
    column of intermediate nodes (see `node_columns`); the caller makes them ranks.
    """
    nodes = genotype.nodes(cell)
    removed = removed_nodes(genotype, cell)
    ids = [f"{prefix}in0", f"{prefix}in1"] + [f"{prefix}node{i}" for i in range(len(nodes))]
    out_id = f"{prefix}out"

    for s in (0, 1):
        g.node(ids[s], state_html(s), shape="box", style="rounded,filled", fillcolor=_INPUT_FILL)
    for i in range(len(nodes)):
        if i in removed:
            g.node(
                ids[i + 2],
                f"{i}\n(removed)",
                shape="circle",
                fontsize="9",
                style="dashed",
                color=_REMOVED,
                fontcolor=_REMOVED,
            )
        else:
            g.node(ids[i + 2], str(i), shape="circle", style="filled", fillcolor=_NODE_FILL)
    g.node(out_id, f"<c<SUB>{_small('k')}</SUB>>", shape="box", style="rounded,filled",
           fillcolor=_OUTPUT_FILL)  # fmt: skip

    columns = node_columns(genotype, cell)
    for i, node in enumerate(nodes):
        if all(op == "none" for op, _ in node):  # nothing drawn into it: anchor it to its column
            g.edge(ids[1], ids[i + 2], style="invis")

    for i, node in enumerate(nodes):
        for op, inp in node:
            if op == "none":
                continue
            dead = i in removed or (inp >= 2 and inp - 2 in removed)
            color = _REMOVED if dead else FAMILY_COLORS[op_family(op)]
            style = "dashed" if dead else "solid"
            g.edge(ids[inp], ids[i + 2], label=op, color=color, fontcolor=color, style=style)

    linked = [s for s in genotype.concat(cell) if not (s >= 2 and s - 2 in removed)]
    for s in linked:
        g.edge(ids[s], out_id, color="#555555", arrowsize="0.6")
    for i in columns[-1]:  # the output stays right of the last column, even if it is not linked
        if i + 2 not in linked:
            g.edge(ids[i + 2], out_id, style="invis")
    return [ids[:2]] + [[ids[i + 2] for i in column] for column in columns]


def _new_graph(name: str, title: str | None) -> Any:
    """An empty left-to-right CellDigraph with the shared style."""
    g = _digraph_class()(name=name, format="svg")
    # size: scale a wide cell down to MAX_WIDTH_IN (height free) so it is never cut off
    g.attr(rankdir="LR", fontname="Helvetica", nodesep="0.3", ranksep="0.3",
           size=f"{MAX_WIDTH_IN},100")  # fmt: skip
    g.attr("node", fontname="Helvetica", fontsize="12", margin="0.05")
    g.attr("edge", fontname="Helvetica", fontsize="10")
    if title:
        g.attr(label=title, labelloc="t", fontsize="14")
    return g


def cell_graph(
    genotype: Genotype, cell: str = "normal", *, title: str | None = None
) -> graphviz.Digraph:
    """One cell of ``genotype`` as a left-to-right Digraph (shows inline in Jupyter)."""
    g = _new_graph(f"{cell}_cell", title)
    # Reading order: c_{k-2} above c_{k-1}; nodes 0, 1, 2, ... column by column, top to bottom.
    for level in _add_cell(g, genotype, cell, prefix=""):
        _same_rank(g, level)
    return g


def genotype_graph(genotype: Genotype, *, title: str | None = None) -> graphviz.Digraph:
    """Both cells of ``genotype`` in one Digraph, normal above reduce, each under its name.

    No clusters: dot does not keep the order of nodes within a rank inside a cluster, so the
    cells share one grid instead (column k of both cells in one rank, normal cell first).
    """
    g = _new_graph("genotype", title)
    per_cell: list[list[list[str]]] = []  # [cell][level] -> node ids, top to bottom
    for cell in ("normal", "reduce"):
        name_id = f"{cell}_name"  # the cell's name, left of (and between) its two inputs
        g.node(name_id, f"<<B>{cell}<BR/>cell</B>>", shape="plaintext", fontsize="13")
        cell_levels = _add_cell(g, genotype, cell, prefix=f"{cell}_")
        for input_id in cell_levels[0]:
            g.edge(name_id, input_id, style="invis")
        per_cell.append([[name_id], *cell_levels])
    normal, reduce = per_cell
    for k in range(max(len(normal), len(reduce))):
        upper, lower = normal[k] if k < len(normal) else [], reduce[k] if k < len(reduce) else []
        gap = []
        if upper and lower:  # an invisible spacer keeps the two cells apart
            gap = [f"gap{k}"]
            g.node(gap[0], "", shape="point", style="invis", height="0.35", width="0")
        _same_rank(g, upper + gap + lower)
    return g


# ------------------------------------------------------------------------------ saving

_FORMATS = ("svg", "png", "pdf")


def _format_for(path: Path, format: str | None) -> str:
    """The output format: ``format`` if given, else the path's suffix (svg, png or pdf)."""
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in _FORMATS:
        raise ValueError(
            f"cannot tell the image format of {str(path)!r} (format={format!r}); "
            f"use a suffix or format from {list(_FORMATS)}"
        )
    return fmt


def save_cell(
    genotype: Genotype, path: str | Path, cell: str = "normal", format: str | None = None
) -> Path:
    """Render one cell to ``path`` (format from the suffix: svg, png or pdf) and return the path."""
    path = Path(path)
    fmt = _format_for(path, format)
    if not path.suffix:
        path = path.with_name(f"{path.name}.{fmt}")
    data = cell_graph(genotype, cell).pipe(format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def save_genotype(
    genotype: Genotype, directory_or_prefix: str | Path, formats: Iterable[str] = ("svg", "png")
) -> list[Path]:
    """Render both cells in every format; returns the written paths.

    An existing directory (or a path ending in '/') gets ``normal.svg``, ``reduce.svg``, ...;
    anything else is a prefix: ``runs/x/genotype`` -> ``runs/x/genotype_normal.svg``, ...
    """
    target = str(directory_or_prefix)
    if target.endswith(("/", "\\")) or Path(target).is_dir():
        stems = {cell: Path(target) / cell for cell in ("normal", "reduce")}
    else:
        stems = {cell: Path(f"{target}_{cell}") for cell in ("normal", "reduce")}
    return [
        save_cell(genotype, stems[cell].with_name(f"{stems[cell].name}.{fmt}"), cell)
        for fmt in formats
        for cell in ("normal", "reduce")
    ]
