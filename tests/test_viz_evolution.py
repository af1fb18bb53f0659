"""Tests for nasviz.viz.evolution: every plot reads groups, for DARTS and controller-style runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nasviz import genotypes
from nasviz.genotypes import PRIMITIVES
from nasviz.history import SearchHistory, darts_group_specs, darts_groups
from nasviz.viz import evolution

pytest.importorskip("matplotlib")

STEPS, EPOCHS = 4, 8
PNG = b"\x89PNG\r\n\x1a\n"
NASNET_OPS = [
    "identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
    "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5",
    "sep_conv_7x7",
]  # fmt: skip
OP_ROWS = [
    "normal block 1 op a",
    "normal block 1 op b",
    "reduce block 1 op a",
    "reduce block 1 op b",
]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _genotype_at(epoch: int) -> genotypes.Genotype:
    """Changes during the first epochs, frozen at DARTS V2 from epoch 4 on."""
    if epoch >= 4:
        return genotypes.get("darts_v2")
    return genotypes.get("darts_v1" if epoch % 2 else "pc_darts")


def make_history(*, betas: bool = True, extra: bool = True, epochs: int = EPOCHS) -> SearchHistory:
    """A DARTS/PC-DARTS history: 14 x 8 softmax random walks, per-node betas, genotypes, metrics."""
    rng = np.random.default_rng(0)
    history = SearchHistory(method="pc_darts" if betas else "darts")
    history.declare_groups(darts_group_specs(PRIMITIVES, STEPS, betas=betas))
    logits = {c: np.zeros((14, 8)) for c in ("normal", "reduce")}
    beta_logits = {c: np.zeros(14) for c in ("normal", "reduce")}
    for epoch in range(epochs):
        for c in logits:
            logits[c] += rng.normal(0, 0.4, logits[c].shape)
            beta_logits[c] += rng.normal(0, 0.3, 14)
        edge_weights = {}
        for c, b in beta_logits.items():
            starts = np.cumsum([0] + [i + 2 for i in range(STEPS)])
            edge_weights[c] = np.concatenate(
                [_softmax(b[s:e]) for s, e in zip(starts[:-1], starts[1:], strict=True)]
            )
        probs = {c: _softmax(v) for c, v in logits.items()}
        _, values = darts_groups(probs, edge_weights if betas else None, PRIMITIVES, STEPS)
        history.log(
            epoch,
            (epoch + 1) * 100,
            metrics={
                "train_loss": 2.0 * 0.8**epoch,
                "val_loss": 2.1 * 0.85**epoch,
                "train_acc": 40 + 5 * epoch,
                "val_acc": 38 + 4 * epoch,
            },
            groups=values,
            architecture=_genotype_at(epoch),
            extra={"temperature": 1.0 * 0.9**epoch, "board": {"a": 1}} if extra else None,
        )
    return history


def make_controller_history(epochs: int = 6) -> SearchHistory:
    """A NASNet-controller-style history: no alphas; per-decision softmax groups, rewards."""
    rng = np.random.default_rng(1)
    history = SearchHistory(method="nasnet")
    history.declare_group("op/block 1", OP_ROWS, NASNET_OPS, title="controller: op of block 1")
    history.declare_group(
        "input/block 1",
        ["normal block 1 input a", "normal block 1 input b"],
        ["h_{i-1}", "h_i"],
        title="controller: inputs of block 1",
    )
    op_logits = np.zeros((4, 13))
    in_logits = np.zeros((2, 2))
    for epoch in range(epochs):
        history.log(
            epoch,
            epoch * 8,
            metrics={"val_acc": 0.3 + 0.05 * epoch},
            groups={"op/block 1": _softmax(op_logits), "input/block 1": _softmax(in_logits)},
            extra={"reward_mean": 0.3 + 0.05 * epoch, "reward_std": 0.1},
        )
        op_logits += rng.normal(0, 0.5, op_logits.shape)
        op_logits[:, 10] += 0.6  # the controller learns to prefer sep_conv_3x3
        in_logits += np.array([[1.0, 0.0], [0.0, 1.0]])
    return history


@pytest.fixture(scope="module")
def history() -> SearchHistory:
    return make_history()


@pytest.fixture(scope="module")
def controller() -> SearchHistory:
    return make_controller_history()


def _choice_lines(ax, cols: list[str]) -> list:
    """The lines of a panel that draw a choice (not the uniform reference)."""
    return [line for line in ax.get_lines() if line.get_label() in cols]


def test_import_needs_no_matplotlib() -> None:
    code = "import sys, nasviz.viz.evolution; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------ DARTS groups


def test_alpha_evolution_has_one_panel_per_edge_and_one_line_per_op(history) -> None:
    fig = evolution.plot_group_evolution(history, "alpha/normal")
    assert len(fig.axes) == 14
    assert all(len(_choice_lines(ax, list(PRIMITIVES))) == 8 for ax in fig.axes)
    titles = [ax.get_title() for ax in fig.axes]
    # real subscripts: matplotlib mathtext, not the literal "c_{k-2}"
    assert titles[:2] == ["$c_{k-2}$ → 0", "$c_{k-1}$ → 0"] and titles[-1] == "2 → 3"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(PRIMITIVES)
    # panels are laid out one row per node: 2, 3, 4, 5 incoming edges
    rows = [ax.get_subplotspec().rowspan.start for ax in fig.axes]
    assert [rows.count(r) for r in range(4)] == [2, 3, 4, 5]
    # the deprecated alias draws the same group
    old = evolution.plot_alpha_evolution(history, "normal")
    assert [ax.get_title() for ax in old.axes] == titles


def test_evolution_y_axis_follows_small_movements() -> None:
    """Probabilities that move 0.125 -> 0.13 fill the panel; 'change' plots p - uniform."""
    h = SearchHistory("darts")
    h.declare_group("g", ["r"], ["a", "b"])
    for epoch in range(4):
        p = 0.5 + 0.005 * epoch
        h.log(epoch, epoch, groups={"g": [[p, 1 - p]]})
    ax = evolution.plot_group_evolution(h, "g").axes[0]
    lo, hi = ax.get_ylim()
    assert 0.45 < lo < 0.485 and 0.515 < hi < 0.55  # not 0..1
    assert all(float(t).is_integer() for t in ax.get_xticks())  # integer epochs, integer ticks
    ax = evolution.plot_group_evolution(h, "g", scale="change").axes[0]
    np.testing.assert_allclose(_choice_lines(ax, ["a"])[0].get_ydata(), [0, 0.005, 0.01, 0.015])
    assert evolution.plot_group_evolution(h, "g", scale="full").axes[0].get_ylim() == (0, 1)
    with pytest.raises(ValueError, match="scale must be one of"):
        evolution.plot_group_evolution(h, "g", scale="log")


def test_op_colors_are_consistent_across_panels(history) -> None:
    fig = evolution.plot_group_evolution(history, "alpha/reduce")
    first = [line.get_color() for line in _choice_lines(fig.axes[0], list(PRIMITIVES))]
    assert len(set(first)) == 8
    for ax in fig.axes:
        assert [line.get_color() for line in _choice_lines(ax, list(PRIMITIVES))] == first


def test_heatmap_is_annotated_and_labelled(history) -> None:
    fig = evolution.plot_group_heatmap(history, "alpha/normal", epoch=3)
    ax = fig.axes[0]
    assert len(ax.texts) == 14 * 8
    assert [t.get_text() for t in ax.get_xticklabels()] == list(PRIMITIVES)
    assert ax.get_yticklabels()[0].get_text() == "$c_{k-2}$ → 0"
    assert ax.texts[0].get_text() == f"{history.group_series('alpha/normal')[1][3, 0, 0]:.2f}"
    assert "epoch 3" in ax.get_title()
    with pytest.raises(ValueError, match="epoch 99"):
        evolution.plot_alpha_heatmap(history, epoch=99)


def test_beta_group_has_one_panel_per_node_and_skips_missing_inputs(history) -> None:
    fig = evolution.plot_beta_evolution(history, "normal")
    assert len(fig.axes) == 4
    states = ["c_{k-2}", "c_{k-1}", "0", "1", "2"]
    assert [len(_choice_lines(ax, states)) for ax in fig.axes] == [2, 3, 4, 5]
    assert fig.axes[0].get_title() == "node 0"
    # the legend draws c_{k-2} with a real subscript (mathtext), not the literal braces
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["$c_{k-2}$", "$c_{k-1}$", "0", "1", "2"]
    heat = evolution.plot_group_heatmap(history, "beta/normal").axes[0]
    assert len(heat.texts) == 2 + 3 + 4 + 5  # NaN cells are blank, not annotated
    with pytest.raises(ValueError, match="no betas.*PC-DARTS"):
        evolution.plot_beta_evolution(make_history(betas=False, epochs=2))


def test_entropy_is_normalized_per_group(history) -> None:
    fig = evolution.plot_entropy(history)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["alpha/normal", "alpha/reduce", "beta/normal", "beta/reduce", "uniform"]
    mean = ax.get_lines()[0].get_ydata()
    _, probs = history.group_series("alpha/normal")
    expected = (-(probs * np.log(probs)).sum(-1) / np.log(8)).mean(axis=1)
    np.testing.assert_allclose(mean, expected)
    assert ax.get_ylim()[1] > 1.0  # a line at 1 does not sit on the frame


def test_entropy_axis_zooms_onto_a_short_search() -> None:
    """Entropies just below 1 are not drawn on the top frame of a 0..1 axis."""
    h = SearchHistory("darts")
    h.declare_group("g", ["r0", "r1"], ["a", "b", "c", "d"])
    for epoch, p in enumerate([0.25, 0.26, 0.27]):  # nearly uniform: entropy 1 .. ~0.999
        rest = (1 - p) / 3
        h.log(epoch, epoch, groups={"g": [[p, rest, rest, rest]] * 2})
    ax = evolution.plot_entropy(h).axes[0]
    _, hn = evolution.group_entropy(h, "g")
    lo, hi = ax.get_ylim()
    assert 0.99 < lo < float(np.nanmin(hn)) and 1.0 < hi < 1.01
    assert evolution._entropy_ylim(0.1) == (0.0, pytest.approx(1.072))  # far from 1: all of it


def test_entropy_legend_lists_only_drawn_groups() -> None:
    h = make_controller_history(epochs=2)
    h.declare_group("fixed", ["only"], ["x"])  # one choice: nothing decided, nothing drawn
    h.log(2, 16, groups={"fixed": [[1.0]]})
    ax = evolution.plot_entropy(h, groups=["op/block 1", "fixed"]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["op/block 1", "uniform"]


def test_stability_marks_argmax_changes() -> None:
    h = SearchHistory("darts")
    h.declare_group("g", ["r0", "r1"], ["a", "b", "c"])
    argmax = [(0, 1), (2, 1), (2, 1), (1, 1), (1, 0)]  # per epoch, (row 0, row 1)
    for epoch, (a0, a1) in enumerate(argmax):
        v = np.full((2, 3), 0.2)
        v[0, a0] = v[1, a1] = 0.6
        h.log(epoch, epoch, groups={"g": v})
    assert evolution.row_changes(h, "g") == {"r0": [1.0, 3.0], "r1": [4.0]}
    fig = evolution.plot_stability(h)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r0", "r1"]
    assert [t.get_text() for t in ax.texts] == ["b (since 3)", "a (since 4)"]
    # ticks only at the epochs there are (the axis extends right for the text column)
    assert list(fig.axes[-1].get_xticks()) == [0, 1, 2, 3, 4]


def test_stability_labels_have_real_subscripts() -> None:
    h = SearchHistory("pc-darts")
    h.declare_group("beta/normal", ["c_{k-2} → 0", "0 → 1"], ["c_{k-1}", "x"])
    for epoch, p in enumerate([0.3, 0.7]):
        h.log(epoch, epoch, groups={"beta/normal": [[p, 1 - p], [p, 1 - p]]})
    ax = evolution.plot_stability(h).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$c_{k-2}$ → 0", "0 → 1"]
    assert ax.texts[0].get_text() == "$c_{k-1}$ (since 1)"


def test_stability_a_tie_is_no_choice_yet() -> None:
    """Rows that start uniform make their first choice without it counting as a change."""
    h = SearchHistory("darts")
    h.declare_group("g", ["r0"], ["a", "b"])
    for epoch, p in enumerate([0.5, 0.4, 0.3]):
        h.log(epoch, epoch, groups={"g": [[p, 1 - p]]})
    assert evolution.row_changes(h, "g") == {"r0": []}
    assert [t.get_text() for t in evolution.plot_stability(h).axes[0].texts] == ["b (since 1)"]


def test_curves_skip_missing_metrics() -> None:
    h = SearchHistory(method="darts")
    for epoch in range(3):
        h.log(epoch, epoch, metrics={"train_loss": 1.0 / (epoch + 1), "val_acc": 50.0 + epoch})
    fig = evolution.plot_curves(h)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train_loss"]
    with pytest.raises(ValueError, match="none of the metrics"):
        evolution.plot_curves(SearchHistory(method="darts"))


def test_extra_plots_numeric_series_only(history) -> None:
    fig = evolution.plot_extra(history)
    assert [ax.get_title() for ax in fig.axes] == ["temperature"]
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), 0.9 ** np.arange(EPOCHS))
    with pytest.raises(ValueError, match="board"):
        evolution.plot_extra(history, ["board"])


def test_available_plots_follow_the_data(history) -> None:
    assert set(evolution.available_plots(history)) == {
        "curves", "alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce",
        "heatmap_alpha_normal", "heatmap_alpha_reduce", "heatmap_beta_normal",
        "heatmap_beta_reduce", "entropy", "stability", "extra",
    }  # fmt: skip
    bare = evolution.available_plots(make_history(betas=False, extra=False, epochs=2))
    assert not any("beta" in name for name in bare) and "extra" not in bare
    declared_only = SearchHistory("darts")
    declared_only.declare_groups(darts_group_specs(PRIMITIVES, STEPS))
    assert evolution.available_plots(declared_only) == {}  # nothing recorded yet


# ------------------------------------------------------------------------------ no alphas at all


def test_controller_history_every_plot(controller) -> None:
    """A history with no alphas: every available plot draws it from its groups."""
    plots = evolution.available_plots(controller)
    assert set(plots) == {
        "curves", "op_block_1", "input_block_1", "heatmap_op_block_1", "heatmap_input_block_1",
        "entropy", "stability", "extra",
    }  # fmt: skip
    figs = {name: build() for name, build in plots.items()}
    evolve = figs["op_block_1"]
    assert [ax.get_title() for ax in evolve.axes] == OP_ROWS
    assert all(len(_choice_lines(ax, NASNET_OPS)) == 13 for ax in evolve.axes)
    assert len({line.get_color() for line in _choice_lines(evolve.axes[0], NASNET_OPS)}) == 13
    assert [t.get_text() for t in evolve.legends[0].get_texts()] == NASNET_OPS
    heat = figs["heatmap_op_block_1"].axes[0]
    assert len(heat.texts) == 4 * 13 and heat.get_yticklabels()[3].get_text() == OP_ROWS[3]
    entropy_lines = figs["entropy"].axes[0].get_lines()
    assert entropy_lines[0].get_ydata()[0] == pytest.approx(1.0)  # uniform controller at start
    assert entropy_lines[0].get_ydata()[-1] < 0.95
    stability = figs["stability"]
    assert len(stability.axes) == 2
    assert [t.get_text() for t in stability.axes[0].get_yticklabels()] == OP_ROWS
    assert [ax.get_title() for ax in figs["extra"].axes] == ["reward_mean", "reward_std"]


def test_plot_run_on_a_controller_history(tmp_path, controller, capsys) -> None:
    controller.save(tmp_path / "history.json")
    paths = evolution.plot_run(tmp_path, dpi=40)
    expected = {f"{name}.png" for name in evolution.available_plots(controller)}
    written = {p.name for p in paths}
    # the shared plots, plus the pages the method registers (NASNet: rewards); no architecture
    # is recorded, so none is drawn
    assert expected <= written and all(n.startswith("nasnet_") for n in written - expected)
    for p in paths:
        assert p.parent == tmp_path / "plots"
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 1000


def _tiny_history(architecture: str = "darts_v2") -> SearchHistory:
    """Two epochs of a 1 x 2 group with an architecture: plot_run in about a second."""
    from nasviz import architectures

    h = SearchHistory("any")
    h.declare_group("g", ["r"], ["a", "b"])
    for epoch in range(2):
        h.log(
            epoch, epoch, groups={"g": [[0.5, 0.5]]}, architecture=architectures.get(architecture)
        )
    return h


@pytest.mark.parametrize(
    "name, kind", [("darts_v2", "darts"), ("nasnet_a", "nasnet"), ("cream_14m", "cream")]
)
def test_plot_run_draws_the_architecture_of_any_kind(tmp_path, name, kind) -> None:
    pytest.importorskip("graphviz")
    history = _tiny_history(name)
    history.save(tmp_path / "history.json")
    assert SearchHistory.load(tmp_path).last_architecture().kind == kind
    if evolution.shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed")
    paths = evolution.plot_run(tmp_path, tmp_path / "out", dpi=30)
    drawing = tmp_path / "out" / "architecture.png"
    assert drawing in paths and drawing.read_bytes()[:8] == PNG


def test_the_run_directory_architecture_file_wins(tmp_path) -> None:
    history = _tiny_history()
    assert evolution.run_architecture(tmp_path, history) == genotypes.get("darts_v2")
    (tmp_path / "genotype.json").write_text(json.dumps(genotypes.get("pc_darts").to_dict()))
    assert evolution.run_architecture(tmp_path, history) == genotypes.get("pc_darts")
    assert evolution.run_architecture(tmp_path / "elsewhere", SearchHistory("x")) is None


def test_plot_run_without_dot_prints_a_note(tmp_path, monkeypatch, capsys) -> None:
    _tiny_history().save(tmp_path / "run" / "history.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    paths = evolution.plot_run(tmp_path / "run", tmp_path / "out", dpi=30)
    assert paths and not any(p.name.startswith("architecture") for p in paths)
    err = capsys.readouterr().err
    assert "architecture drawing skipped" in err and "apt-get install graphviz" in err
