"""Tests for nasviz.viz.nasnet: block diagrams and the ScheduledDropPath plot."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nasviz.spaces.nasnet import NasnetGenotype

graphviz = pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def test_import_needs_no_graphviz_or_matplotlib():
    code = "import sys, nasviz.viz.nasnet; print('graphviz' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_graph_has_blocks_ops_and_combines():
    g = NasnetGenotype.builtin("nasnet_a")
    source = g.graph(title="NASNet-A").source
    # per cell: 5 blocks x (2 input->op + 2 op->combine) edges, plus one edge per concat state
    assert source.count("->") == 2 * 20 + len(g.concat("normal")) + len(g.concat("reduce"))
    assert source.count("block 4") == 2 and "sep_conv_7x7" in source and "NASNet-A" in source


@needs_dot
def test_graph_renders_svg():
    svg = (
        NasnetGenotype.builtin("nasnet_a").graph().pipe(format="svg").decode().replace("&#45;", "-")
    )
    assert "h_{i-1}" in svg and "max_pool_3x3" in svg


def test_drop_path_schedule_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from nasviz.viz.nasnet import plot_drop_path_schedule

    ax = plot_drop_path_schedule(num_cells=20, drop_path_keep_prob=0.6)
    lines = ax.get_lines()
    assert len(lines) == 5
    last = lines[-1].get_ydata()  # the deepest cell ends at 1 - keep0
    assert last[0] == 0 and last[-1] == pytest.approx(0.4)
