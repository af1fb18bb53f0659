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
    for label in ("c_{k-2}", "c_{k-1}", "c_{k}", "0", "1", "2", "3"):
        assert label in texts


def test_one_edge_per_pair_and_concat_edges_to_output() -> None:
    genotype = genotypes.get("darts_v2")
    source = cells.cell_graph(genotype).source
    assert source.count("->") == 8 + 4
    assert source.count("-> out") == 4


@needs_dot
def test_edge_all_cell_hides_none_and_marks_removed_nodes() -> None:
    genotype = genotypes.get("SNAS_aggressive_edge_all")
    assert cells.removed_nodes(genotype, "reduce") == {2, 3}
    graph = cells.cell_graph(genotype, "reduce")
    texts = _texts(_svg(graph))
    assert "none" not in texts
    assert texts.count("(removed)") == 2
    assert "-> out" in graph.source
    assert "node2 -> out" not in graph.source and "node3 -> out" not in graph.source
    assert graph.source.count("-> out") == 2
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
    links = re.findall(r"(\w+) -> out", graph.source)
    assert sorted(links) == ["node2", "node3", "node4"]
    texts = _texts(_svg(graph))
    for node in ("0", "1", "2", "3", "4"):  # unused nodes 0 and 1 are still drawn
        assert node in texts
    assert "sep_conv_7x7" in texts


@needs_dot
def test_genotype_graph_has_both_cells() -> None:
    graph = cells.genotype_graph(genotypes.get("darts_v2"), title="DARTS V2")
    texts = _texts(_svg(graph))
    assert {"normal cell", "reduce cell", "DARTS V2"} <= set(texts)
    assert texts.count("c_{k-2}") == 2


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
