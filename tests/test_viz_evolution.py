"""Tests for nasviz.viz.evolution: figure structure on a synthetic but realistic DARTS history."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nasviz import genotypes
from nasviz.genotypes import PRIMITIVES
from nasviz.history import SearchHistory
from nasviz.viz import evolution

pytest.importorskip("matplotlib")

N_NODES, EPOCHS = 4, 8
EDGES = [(i, j + 2) for j in range(N_NODES) for i in range(j + 2)]  # 14 (input, node) pairs


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _genotype_at(epoch: int) -> genotypes.Genotype:
    """Changes during the first epochs, frozen at DARTS V2 from epoch 4 on."""
    if epoch >= 4:
        return genotypes.get("darts_v2")
    return genotypes.get("darts_v1" if epoch % 2 else "pc_darts")


def make_history(*, betas: bool = True, extra: bool = True, epochs: int = EPOCHS) -> SearchHistory:
    """14 edges x 8 ops softmaxed random walks, per-node normalized betas, genotypes, metrics."""
    rng = np.random.default_rng(0)
    history = SearchHistory(
        method="pc_darts" if betas else "darts", ops=list(PRIMITIVES), edges=EDGES
    )
    logits = {c: np.zeros((len(EDGES), len(PRIMITIVES))) for c in ("normal", "reduce")}
    beta_logits = {c: np.zeros(len(EDGES)) for c in ("normal", "reduce")}
    for epoch in range(epochs):
        for c in logits:
            logits[c] += rng.normal(0, 0.4, logits[c].shape)
            beta_logits[c] += rng.normal(0, 0.3, len(EDGES))
        beta_rows = {}
        for c, b in beta_logits.items():
            weights = np.zeros(len(EDGES))
            for node in range(2, N_NODES + 2):
                rows = [r for r, (_, dst) in enumerate(EDGES) if dst == node]
                weights[rows] = _softmax(b[rows])
            beta_rows[c] = weights
        history.log(
            epoch,
            (epoch + 1) * 100,
            metrics={
                "train_loss": 2.0 * 0.8**epoch,
                "val_loss": 2.1 * 0.85**epoch,
                "train_acc": 40 + 5 * epoch,
                "val_acc": 38 + 4 * epoch,
            },
            alphas={c: _softmax(v) for c, v in logits.items()},
            betas=beta_rows if betas else None,
            genotype=_genotype_at(epoch),
            extra={"temperature": 1.0 * 0.9**epoch, "board": {"a": 1}} if extra else None,
        )
    return history


@pytest.fixture()
def history() -> SearchHistory:
    return make_history()


def test_import_needs_no_matplotlib() -> None:
    code = "import sys, nasviz.viz.evolution; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_alpha_evolution_has_one_panel_per_edge_and_one_line_per_op(history) -> None:
    fig = evolution.plot_alpha_evolution(history, "normal")
    assert len(fig.axes) == 14
    for ax in fig.axes:
        assert len(ax.get_lines()) == 8
        lo, hi = ax.get_ylim()
        assert (lo, hi) == (0.0, 1.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "c_{k-2} → 0"
    assert titles[1] == "c_{k-1} → 0"
    assert titles[-1] == "2 → 3"
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(PRIMITIVES)


def test_alpha_colors_are_consistent_across_panels(history) -> None:
    fig = evolution.plot_alpha_evolution(history, "reduce")
    first = [line.get_color() for line in fig.axes[0].get_lines()]
    assert all([line.get_color() for line in ax.get_lines()] == first for ax in fig.axes)
    assert len(set(first)) == 8


def test_alpha_heatmap_is_annotated_and_labelled(history) -> None:
    fig = evolution.plot_alpha_heatmap(history, "normal", epoch=3)
    ax = fig.axes[0]
    assert len(ax.texts) == 14 * 8
    assert [t.get_text() for t in ax.get_xticklabels()] == list(PRIMITIVES)
    assert ax.get_yticklabels()[0].get_text() == "c_{k-2} → 0"
    expected = f"{history.alpha_series('normal')[1][3, 0, 0]:.2f}"
    assert ax.texts[0].get_text() == expected
    assert "epoch 3" in ax.get_title()


def test_alpha_heatmap_unknown_epoch(history) -> None:
    with pytest.raises(ValueError, match="epoch 99"):
        evolution.plot_alpha_heatmap(history, epoch=99)


def test_beta_evolution_has_one_panel_per_node(history) -> None:
    fig = evolution.plot_beta_evolution(history, "normal")
    assert len(fig.axes) == 4
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3, 4, 5]
    assert fig.axes[0].get_title() == "node 0"
    labels = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert labels == ["from c_{k-2}", "from c_{k-1}", "from 0", "from 1", "from 2"]


def test_beta_evolution_without_betas_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no betas.*PC-DARTS"):
        evolution.plot_beta_evolution(make_history(betas=False))


def test_entropy_has_a_line_per_cell_and_the_uniform_reference(history) -> None:
    fig = evolution.plot_entropy(history)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[:2] == ["normal (mean over edges)", "reduce (mean over edges)"]
    assert "uniform: log(8)" in labels
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.all(y <= np.log(8) + 1e-9)


def test_node_changes_freeze_with_the_genotype(history) -> None:
    changes = evolution.node_changes(history, "normal")
    assert set(changes) == {0, 1, 2, 3}
    assert all(not epochs or max(epochs) <= 4 for epochs in changes.values())
    assert any(changes.values())


def test_stability_plot_annotates_the_final_choice(history) -> None:
    fig = evolution.plot_stability(history)
    assert len(fig.axes) == 2
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 4
    assert "sep_conv_3x3 ← c_{k-2}" in texts[0]
    assert texts[0].startswith("stable from")


def test_curves_skip_missing_metrics() -> None:
    history = SearchHistory(method="darts")
    for epoch in range(3):
        history.log(
            epoch, epoch, metrics={"train_loss": 1.0 / (epoch + 1), "val_acc": 50.0 + epoch}
        )
    fig = evolution.plot_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train_loss"]
    with pytest.raises(ValueError, match="none of the metrics"):
        evolution.plot_curves(SearchHistory(method="darts"))


def test_extra_plots_numeric_series_only(history) -> None:
    fig = evolution.plot_extra(history)
    assert [ax.get_title() for ax in fig.axes] == ["temperature"]
    with pytest.raises(ValueError, match="board"):
        evolution.plot_extra(history, ["board"])


def test_available_plots_follow_the_data(history) -> None:
    plots = evolution.available_plots(history)
    assert set(plots) == {
        "curves",
        "alpha_normal",
        "alpha_reduce",
        "heatmap_normal",
        "heatmap_reduce",
        "beta_normal",
        "beta_reduce",
        "entropy",
        "stability",
        "extra",
    }
    bare = evolution.available_plots(make_history(betas=False, extra=False))
    assert not any(name.startswith("beta") for name in bare)
    assert "extra" not in bare
    assert plots["alpha_reduce"]().axes[0].get_title() == "c_{k-2} → 0"


def test_plot_run_writes_every_plot(tmp_path, history) -> None:
    history.save(tmp_path / "history.json")
    genotypes.get("darts_v2").save(tmp_path / "genotype.json")
    paths = evolution.plot_run(tmp_path, dpi=40)
    names = {p.name for p in paths}
    expected = {f"{n}.png" for n in evolution.available_plots(history)}
    assert expected <= names
    assert all(p.parent == tmp_path / "plots" and p.stat().st_size > 0 for p in paths)
    if "genotype_normal.png" not in names:  # only when Graphviz is installed
        pytest.skip("dot not installed: cell PNGs skipped")
    assert {"genotype_normal.png", "genotype_reduce.png"} <= names


def test_plot_run_warns_without_dot(tmp_path, monkeypatch) -> None:
    pytest.importorskip("graphviz")
    history = make_history(epochs=2, betas=False, extra=False)
    history.save(tmp_path / "run" / "history.json")
    (tmp_path / "run" / "genotype.json").write_text(json.dumps(genotypes.get("darts_v2").to_dict()))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.warns(RuntimeWarning, match="apt-get install graphviz"):
        paths = evolution.plot_run(tmp_path / "run", tmp_path / "out", dpi=30)
    assert paths and not any(p.name.startswith("genotype") for p in paths)
