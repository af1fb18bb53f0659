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


def _box(g: Any, node: str, label: str, fill: str = _FIXED, **attrs: str) -> None:
    g.node(node, label, shape="box", style="rounded,filled", fillcolor=fill, **attrs)


def path_graph(
    path: CreamPath, *, title: str | None = None, space: CreamSpace | None = None
) -> graphviz.Digraph:
    """The block diagram of ``path`` in ``space`` (default: ImageNet at the path's resolution)."""
    from nasviz.viz.cells import _digraph_class

    path.validate()
    space = space or path.space()
    space.validate_path(path)
    stem_chs, stage_chs, last_chs, head_chs = space.channels()
    stem_stride, stage_strides = space.strides
    g = _digraph_class()(name="cream_path")
    g.attr(rankdir="LR", fontname="Helvetica", fontsize="11", nodesep="0.15", ranksep="0.25")
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
            c.attr(label=f"stage {s + 1}: {STAGE_CHANNELS[s]} ch", style="dashed", color="#888888")
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
