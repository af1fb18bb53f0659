"""Tests for nasviz.viz.cells: what the rendered SVGs show, saving, and the missing-dot message."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from nasviz import genotypes
from nasviz.viz import cells

graphviz = pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def _svg(graph) -> str:
    return graph.pipe(format="svg").decode()


def _texts(svg: str) -> list[str]:
    """The text elements of an SVG (node and edge labels), unescaped enough for op names."""
    return [t.replace("&#45;", "-") for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def _subscripts(svg: str) -> list[str]:
    """The SVG text elements drawn as subscripts (graphviz writes baseline-shift="sub")."""
    found = re.findall(r'<text[^>]*baseline-shift="sub"[^>]*>([^<]*)</text>', svg)
    return [t.replace("&#45;", "-") for t in found]


def _visible_edges(source: str) -> list[str]:
    """The drawn edges of a DOT source (invisible layout edges left out)."""
    return [line for line in source.splitlines() if "->" in line and "style=invis" not in line]


def _positions(graph) -> dict[str, tuple[float, float]]:
    """Node id -> (x, y) of the laid-out graph, in inches, y pointing up (dot's plain format)."""
    rows = [line.split() for line in graph.pipe(format="plain").decode().splitlines()]
    return {r[1]: (float(r[2]), float(r[3])) for r in rows if r[0] == "node"}


def _reading_order(pos: dict[str, tuple[float, float]], prefix: str, n: int) -> list[int]:
    """Intermediate nodes sorted as a reader sees them: column by column, each top to bottom."""
    return sorted(range(n), key=lambda i: (round(pos[f"{prefix}node{i}"][0], 2),
                                           -pos[f"{prefix}node{i}"][1]))  # fmt: skip


def test_import_needs_no_graphviz() -> None:
    code = "import sys, nasviz.viz.cells; print('graphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_dot
@pytest.mark.parametrize("name", ["darts_v2", "pc_darts"])
@pytest.mark.parametrize("cell", ["normal", "reduce"])
def test_svg_shows_every_op_and_node(name: str, cell: str) -> None:
    genotype = genotypes.get(name)
    texts = _texts(_svg(cells.cell_graph(genotype, cell)))
    for op, _ in genotype.edges(cell):
        assert op in texts
    assert texts.count("sep_conv_3x3") == [op for op, _ in genotype.edges(cell)].count(
        "sep_conv_3x3"
    )
    for label in ("0", "1", "2", "3"):
        assert label in texts
    assert texts.count("c") == 3  # c_{k-2}, c_{k-1}, c_{k}: a "c" and a real subscript each
    assert _subscripts(_svg(cells.cell_graph(genotype, cell))) == ["k-2", "k-1", "k"]
    assert "c_{k" not in " ".join(texts)  # no TeX written out literally


def test_inputs_and_output_are_html_labels_with_subscripts() -> None:
    source = cells.cell_graph(genotypes.get("darts_v2")).source
    for sub in ("k-2", "k-1", "k"):
        assert re.search(rf"label=<c<SUB><FONT POINT-SIZE=\"\d+\">{sub}</FONT></SUB>>", source)
    assert cells.state_html(0) == '<c<SUB><FONT POINT-SIZE="9">k-2</FONT></SUB>>'
    assert cells.state_html(3) == "1"
    assert cells.state_label(0) == "c_{k-2}"  # plain text names (plot titles) are unchanged


def test_node_columns_follow_inputs_and_keep_the_order() -> None:
    # DARTS V2 normal: nodes 0-2 read only c_{k-2}/c_{k-1}; node 3 reads node 0
    assert cells.node_columns(genotypes.get("darts_v2"), "normal") == [[0, 1, 2], [3]]
    # reduce: node 1 reads node 0, so 1, 2, 3 go right of 0 (2 and 3 stay with 1, in order)
    assert cells.node_columns(genotypes.get("darts_v2"), "reduce") == [[0], [1, 2, 3]]
    # a node never goes left of the one before it, even with inputs further left
    genotype = genotypes.Genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
        normal_concat=[2, 3, 4, 5],
        reduce=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4,
        reduce_concat=[2, 3, 4, 5],
    )  # fmt: skip
    assert cells.node_columns(genotype, "normal") == [[0], [1, 2, 3]]
    assert cells.node_columns(genotype, "reduce") == [[0, 1, 2, 3]]


def test_dot_source_orders_every_column() -> None:
    """Each column is one rank=same group whose invisible edges chain it top to bottom."""
    source = cells.cell_graph(genotypes.get("darts_v2")).source
    groups = re.findall(r"\{\s*rank=same\s*(.*?)\}", source, flags=re.S)
    chains = [re.findall(r"(\w+) -> (\w+) \[style=invis\]", group) for group in groups]
    assert chains == [[("in0", "in1")], [("node0", "node1"), ("node1", "node2")], []]
    assert "node3" in groups[2]


@needs_dot
@pytest.mark.parametrize("name", genotypes.names())
def test_layout_draws_nodes_in_reading_order(name: str) -> None:
    """Laid out by dot: c_{k-2} above c_{k-1}, nodes 0, 1, 2, ... left to right / top to bottom."""
    genotype = genotypes.get(name)
    for cell in ("normal", "reduce"):
        pos = _positions(cells.cell_graph(genotype, cell))
        n = len(genotype.nodes(cell))
        assert _reading_order(pos, "", n) == list(range(n)), cell
        assert pos["in0"][1] > pos["in1"][1], "c_{k-2} above c_{k-1}"
        assert pos["out"][0] == max(x for x, _ in pos.values()), "the output is rightmost"
    pos = _positions(cells.genotype_graph(genotype))
    for cell in ("normal", "reduce"):
        n = len(genotype.nodes(cell))
        assert _reading_order(pos, f"{cell}_", n) == list(range(n)), cell
        assert pos[f"{cell}_in0"][1] > pos[f"{cell}_in1"][1]
    lowest_normal = min(y for k, (_, y) in pos.items() if k.startswith("normal_"))
    assert lowest_normal > max(y for k, (_, y) in pos.items() if k.startswith("reduce_"))


@needs_dot
@pytest.mark.parametrize("name", genotypes.names())
def test_drawings_fit_a_notebook_column(name: str) -> None:
    """No drawing is wider than MAX_WIDTH_IN (816 px in a browser): nothing is cut off."""
    genotype = genotypes.get(name)
    for graph in (cells.genotype_graph(genotype, title=name), cells.cell_graph(genotype, "reduce")):
        width_pt = float(re.search(r'<svg width="([\d.]+)pt"', _svg(graph)).group(1))
        assert width_pt <= cells.MAX_WIDTH_IN * 72 + 1


def test_one_edge_per_pair_and_concat_edges_to_output() -> None:
    genotype = genotypes.get("darts_v2")
    edges = _visible_edges(cells.cell_graph(genotype).source)
    assert len(edges) == 8 + 4
    assert sum("-> out" in e for e in edges) == 4


@needs_dot
def test_edge_all_cell_hides_none_and_marks_removed_nodes() -> None:
    genotype = genotypes.get("SNAS_aggressive_edge_all")
    assert cells.removed_nodes(genotype, "reduce") == {2, 3}
    graph = cells.cell_graph(genotype, "reduce")
    texts = _texts(_svg(graph))
    assert "none" not in texts
    assert texts.count("(removed)") == 2
    edges = "\n".join(_visible_edges(graph.source))
    assert "-> out" in edges
    assert "node2 -> out" not in edges and "node3 -> out" not in edges
    assert edges.count("-> out") == 2
    assert "dashed" in graph.source


def test_removed_propagates_through_dead_inputs() -> None:
    genotype = genotypes.Genotype(
        # node 0: all none; node 1: its only live edge reads the removed node 0
        normal=[("none", 0), ("none", 1), ("skip_connect", 2), ("none", 0), ("none", 1)],
        normal_concat=[2, 3],
        reduce=[("skip_connect", 0), ("skip_connect", 1), ("none", 0), ("none", 1), ("none", 2)],
        reduce_concat=[2, 3],
        edge_all=True,
    )
    assert cells.removed_nodes(genotype, "normal") == {0, 1}
    assert cells.removed_nodes(genotype, "reduce") == {1}


@needs_dot
def test_nasnet_reduce_links_only_the_concat_states() -> None:
    genotype = genotypes.get("NASNet")
    assert genotype.reduce_concat == (4, 5, 6)
    graph = cells.cell_graph(genotype, "reduce")
    links = re.findall(r"(\w+) -> out", "\n".join(_visible_edges(graph.source)))
    assert sorted(links) == ["node2", "node3", "node4"]
    texts = _texts(_svg(graph))
    for node in ("0", "1", "2", "3", "4"):  # unused nodes 0 and 1 are still drawn
        assert node in texts
    assert "sep_conv_7x7" in texts


@needs_dot
def test_genotype_graph_has_both_cells() -> None:
    graph = cells.genotype_graph(genotypes.get("darts_v2"), title="DARTS V2")
    svg = _svg(graph)
    texts = _texts(svg)
    assert {"normal", "reduce", "DARTS V2"} <= set(texts)  # "normal / cell" on two lines
    assert texts.count("cell") == 2
    assert _subscripts(svg).count("k-2") == 2


@needs_dot
def test_graph_displays_inline_in_jupyter() -> None:
    bundle = cells.cell_graph(genotypes.get("darts_v2"))._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


@needs_dot
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_save_cell_creates_non_empty_files(tmp_path, fmt: str) -> None:
    path = cells.save_cell(genotypes.get("pc_darts"), tmp_path / "sub" / f"cell.{fmt}", "reduce")
    assert path == tmp_path / "sub" / f"cell.{fmt}"
    assert path.stat().st_size > 100
    assert not list((tmp_path / "sub").glob("*.gv")), "no stray DOT sources"


@needs_dot
def test_save_cell_format_argument_and_bad_suffix(tmp_path) -> None:
    assert cells.save_cell(genotypes.get("darts_v2"), tmp_path / "x", format="png").suffix == ".png"
    with pytest.raises(ValueError, match="svg"):
        cells.save_cell(genotypes.get("darts_v2"), tmp_path / "x.gif")


@needs_dot
def test_save_genotype_prefix_and_directory(tmp_path) -> None:
    genotype = genotypes.get("darts_v2")
    paths = cells.save_genotype(genotype, tmp_path / "darts")
    assert sorted(p.name for p in paths) == [
        "darts_normal.png",
        "darts_normal.svg",
        "darts_reduce.png",
        "darts_reduce.svg",
    ]
    paths = cells.save_genotype(genotype, tmp_path, formats=("pdf",))
    assert sorted(p.name for p in paths) == ["normal.pdf", "reduce.pdf"]
    assert all(p.stat().st_size > 0 for p in paths)


def _hide_dot(monkeypatch, tmp_path) -> None:
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_missing_dot_explains_how_to_install(monkeypatch, tmp_path) -> None:
    _hide_dot(monkeypatch, tmp_path)
    with pytest.raises(cells.DotNotFoundError) as info:
        cells.check_dot()
    message = str(info.value)
    assert "apt-get install graphviz" in message
    assert "conda install -c conda-forge graphviz" in message
    assert "brew install graphviz" in message
    assert "pip install graphviz" in message
    assert isinstance(info.value, RuntimeError)


def test_missing_dot_when_rendering(monkeypatch, tmp_path) -> None:
    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    graph = cells.cell_graph(genotypes.get("darts_v2"))  # building needs no `dot`
    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    with pytest.raises(cells.DotNotFoundError, match="apt-get"):
        graph.pipe(format="svg")
    with pytest.raises(cells.DotNotFoundError, match="conda"):
        cells.save_cell(genotypes.get("darts_v2"), tmp_path / "cell.png")


def test_missing_python_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(cells.DotNotFoundError, match="pip install graphviz"):
        cells.check_dot()
