"""nasviz.viz.snas: the resource ablation's table, plot and reading, computed from its rows."""

import matplotlib

matplotlib.use("Agg")

import pytest

from nasviz.viz import snas as V


def _row(constraint, seed, change, params, none_edges, gradient="paper", lam=0.1):
    return dict(
        constraint=constraint, resource_gradient=gradient, seed=seed, resource_lambda=lam,
        params=params, none_edges=none_edges, expected_penalty_change=change, val_acc=0.5,
        search_seconds=3.0, flops=float("nan"), genotype={},
    )  # fmt: skip


ROWS = [
    _row("none", 0, 0.0, 3_000_000, 2, lam=0.0),
    _row("none", 1, 0.002, 2_000_000, 4, lam=0.0),
    _row("aggressive", 0, -0.01, 1_000_000, 9, lam=1.0),
    _row("aggressive", 1, -0.03, 1_400_000, 11, lam=1.0),
    _row("aggressive", 0, -0.05, 1_200_000, 10, gradient="relaxed", lam=1.0),
]


def test_table_has_short_headers_params_in_millions_and_one_row_per_search():
    t = V.ablation_table(ROWS)
    assert list(t.columns) == list(V.TABLE_COLUMNS.values())
    assert len(t) == 5 and t["params (M)"].tolist()[:2] == [3.0, 2.0]


def test_means_are_per_constraint_and_estimator():
    m = V.constraint_means(ROWS)
    assert list(m) == ["none", "aggressive"]
    assert m["none"]["params"] == 2_500_000 and m["aggressive"]["none_edges"] == 10.0
    assert m["aggressive"]["expected_penalty_change"] == pytest.approx(-0.02)
    assert V.constraint_means(ROWS, "relaxed")["aggressive"]["seeds"] == 1


def test_reading_is_computed_from_the_rows():
    lines = V.ablation_reading(ROWS)
    assert (
        lines[0]
        == "      none: mean 2.50M params, 3.0 none edges, E[penalty] change +0.00100 over 2 seed(s)"
    )
    assert (
        "E[penalty] fell more under 'aggressive' (-0.02000) than under 'none' (+0.00100)"
        in lines[2]
    )
    assert (
        lines[3]
        == "aggressive, seed 0: E[penalty] change -0.01000 (paper gradient) vs -0.05000 (relaxed)"
    )
    flipped = [{**r, "expected_penalty_change": -r["expected_penalty_change"]} for r in ROWS]
    assert "did not fall more" in V.ablation_reading(flipped)[2]


def test_plot_has_one_series_per_estimator_and_lambda_zero_on_the_axis():
    fig = V.penalty_change_plot(ROWS)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.collections] == ["paper gradient", "relaxed gradient"]
    xs = ax.collections[0].get_offsets()[:, 0]
    assert min(xs) == pytest.approx(1e-3) and ax.get_xscale() == "log"
    assert len(ax.texts) == 5
