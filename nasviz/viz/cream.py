"""Cream paths drawn as block diagrams with graphviz: one box per layer.

``path_graph(path)`` returns a ``graphviz.Digraph`` (shown inline in Jupyter) that runs left to
right: input, stem, the fixed depthwise-separable block, one cluster per searchable stage with a
box per layer (kernel, expansion, output channels, stride; colored by kernel, a bold border for
expansion 6), the fixed 1x1 block, the pooled head and the classifier. graphviz is imported
lazily; a missing package or ``dot`` raises `nasviz.viz.cells.DotNotFoundError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasviz.spaces.cream import CHOICES, STAGE_CHANNELS, CreamPath, CreamSpace

if TYPE_CHECKING:
    import graphviz

#: Fill color per kernel size (light to dark as the receptive field grows).
KERNEL_COLORS: dict[int, str] = {3: "#c6dbef", 5: "#6baed6", 7: "#2171b5"}
_FIXED = "#e5e5e5"


def _stage_label(s: int, chs: int) -> str:
    """'stage 2: 40 ch', with the official width beside a scaled one ('16 ch (24 at width 1)')."""
    scaled = "" if chs == STAGE_CHANNELS[s] else f" ({STAGE_CHANNELS[s]} at width 1)"
    return f"stage {s + 1}: {chs} ch{scaled}"


def _box(g: Any, node: str, label: str, fill: str = _FIXED, **attrs: str) -> None:
    g.node(node, label, shape="box", style="rounded,filled", fillcolor=fill, **attrs)


def path_graph(
    path: CreamPath, *, title: str | None = None, space: CreamSpace | None = None
) -> graphviz.Digraph:
    """The block diagram of ``path`` in ``space`` (default: ImageNet at the path's resolution)."""
    from nasviz.viz.cells import MAX_WIDTH_IN, _digraph_class

    path.validate()
    space = space or path.space()
    space.validate_path(path)
    stem_chs, stage_chs, last_chs, head_chs = space.channels()
    stem_stride, stage_strides = space.strides
    g = _digraph_class()(name="cream_path")
    # top to bottom, scaled to a notebook column: a 20-layer path drawn left to right is ~2000 px
    g.attr(rankdir="TB", fontname="Helvetica", fontsize="11", nodesep="0.15", ranksep="0.25")
    g.attr(size=f"{MAX_WIDTH_IN},100")
    g.attr("node", fontname="Helvetica", fontsize="10")
    if title:
        g.attr(label=title, labelloc="t", fontsize="14")
    size = space.image_size
    _box(g, "input", f"input\n{space.in_channels}x{size}x{size}", fill="white")
    _box(g, "stem", f"stem conv 3x3\n{stem_chs} ch, s{stem_stride}")
    _box(g, "first", f"DS conv k3 + SE\n{stem_chs} ch, s1")
    g.edge("input", "stem")
    g.edge("stem", "first")
    prev = "first"
    for s, stage in enumerate(path.stages):
        with g.subgraph(name=f"cluster_stage{s}") as c:
            c.attr(label=_stage_label(s, stage_chs[s]), style="dashed", color="#888888")
            for i, choice in enumerate(stage):
                kernel, expansion = CHOICES[choice]
                stride = stage_strides[s] if i == 0 else 1
                node = f"s{s}l{i}"
                _box(
                    c,
                    node,
                    f"MBConv k{kernel} e{expansion}\n{stage_chs[s]} ch, s{stride}",
                    fill=KERNEL_COLORS[kernel],
                    penwidth="2.5" if expansion == 6 else "1",
                    fontcolor="white" if kernel == 7 else "black",
                )
                g.edge(prev, node)
                prev = node
    _box(g, "last", f"conv 1x1\n{last_chs} ch")
    _box(g, "head", f"avg pool, conv 1x1\n{head_chs} ch")
    _box(g, "fc", f"linear\n{space.num_classes} classes", fill="white")
    g.edge(prev, "last")
    g.edge("last", "head")
    g.edge("head", "fc")
    return g


# ------------------------------------------------------------------ a Cream run's own plots


def _board_records(history: Any) -> list[tuple[float, list[dict], list[float] | None]]:
    """(epoch, board entries, FLOPs range) of every epoch record that carries a board."""
    out = []
    for r in history.epochs():
        extra = r.get("extra") or {}
        if "board" in extra:
            out.append((float(r["epoch"]), list(extra["board"]), extra.get("flops_range")))
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (FLOPs, accuracy) points no other point beats with fewer or equal FLOPs, by FLOPs."""
    front: list[tuple[float, float]] = []
    for madds, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((madds, acc))
    return front


def plot_board(history: Any) -> Any:
    """Board accuracy vs multiply-adds per epoch (color = epoch), the last board's front, the range."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    boards = [b for b in _board_records(history) if b[1]]
    if not boards:
        raise ValueError(f"this {history.method!r} history records no filled path board")
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    last_epoch = max(e for e, _, _ in boards) or 1.0
    for epoch, entries, _ in boards:
        ax.scatter(
            [e["madds"] for e in entries], [e["accuracy"] for e in entries],
            color=cmap(epoch / last_epoch), s=28, alpha=0.85, edgecolor="none",
        )  # fmt: skip
    epoch, entries, flops_range = boards[-1]
    front = pareto_front([(e["madds"], e["accuracy"]) for e in entries])
    ax.step(
        [p[0] for p in front], [p[1] for p in front], where="post", color="crimson", lw=1.8,
        label=f"front of the board at epoch {epoch:g}",
    )  # fmt: skip
    best = entries[0]
    ax.scatter(
        [best["madds"]], [best["accuracy"]], marker="*", s=220, color="crimson", zorder=5,
        label=f"best path: {best['accuracy']:.3f} at {best['madds']:.2f}M",
    )  # fmt: skip
    if flops_range:
        ax.axvspan(*flops_range, color="0.9", zorder=0, label="FLOPs range")
        lo = min(e["madds"] for _, es, _ in boards for e in es)
        hi = max(e["madds"] for _, es, _ in boards for e in es)
        pad = 0.1 * max(hi - lo, 1e-3)
        ax.set_xlim(max(flops_range[0], lo - pad), min(flops_range[1], hi + pad))
    sm = _scalar_mappable(cmap, last_epoch)
    fig.colorbar(sm, ax=ax, label="epoch")
    ax.set_xlabel("multiply-adds (M)")
    ax.set_ylabel("accuracy on its batch")
    ax.set_title(f"{history.method}: the prioritized path board over the epochs")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _scalar_mappable(cmap: Any, vmax: float) -> Any:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    return ScalarMappable(norm=Normalize(0, vmax), cmap=cmap)


def run_space(history: Any) -> CreamSpace | None:
    """The space a Cream run searched (from its stored config), or None if it cannot be read."""
    from nasviz.search import load_config
    from nasviz.search.cream import config_space

    try:
        return config_space(load_config(history.config, history.method))
    except ValueError:
        return None


def save_run_plots(history: Any, out_dir: Any, dpi: int = 110) -> list[Any]:
    """`nasviz plot`'s Cream pages: the board over time and the chosen path in its own space."""
    import shutil
    from pathlib import Path

    out = Path(out_dir)
    written = []
    if any(b[1] for b in _board_records(history)):
        fig = plot_board(history)
        fig.savefig(out / "cream_board.png", dpi=dpi)
        written.append(out / "cream_board.png")
    arch = history.last_architecture()
    space = run_space(history)
    if arch is not None and space is not None and shutil.which("dot") is not None:
        graph = path_graph(arch, title=f"{history.method}: best board path", space=space)
        (out / "cream_path.png").write_bytes(graph.pipe(format="png"))
        written.append(out / "cream_path.png")
    return written
