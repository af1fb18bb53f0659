"""Figures of a comparison, drawn from its DataFrames and histories (matplotlib, imported lazily).

* `plot_accuracy_vs_params`: retrained accuracy against parameters, the random clouds behind;
* `plot_cost_vs_accuracy`: search seconds against retrained accuracy;
* `plot_seed_spread`: every seed's retrained accuracy per method, the random mean ± std band;
* `plot_decision_evolution`: how decided every method is over its search on one x axis, the
  fraction of the budget spent: the mean normalized entropy of all its decision rows (1 = uniform,
  0 = one choice) and the mean probability of each row's most likely choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasviz.history import SearchHistory, entropy

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nasviz.compare.protocol import Comparison

_MARKERS = "osD^vP*X"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _colors(methods: list[str]) -> dict[str, str]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def plot_accuracy_vs_params(frame: pd.DataFrame, random: pd.DataFrame) -> Figure:
    """Retrained test accuracy against parameters: each method's seeds, the random clouds in grey."""
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    for i, (space, g) in enumerate(random.groupby("space", sort=False)):
        ax.scatter(g["params"], g["retrained_acc"], marker=_MARKERS[i % len(_MARKERS)],
                   color="0.6", alpha=0.7, s=28, label=f"random {space}")  # fmt: skip
    _scatter_methods(ax, frame, "params", zorder=3)
    _finish(fig, ax, "parameters of the retrained network", "searched (colour) vs random (grey)")
    return fig


def plot_cost_vs_accuracy(frame: pd.DataFrame) -> Figure:
    """Search seconds against retrained accuracy, one point per (method, seed)."""
    fig = _figure(6.0, 3.8)
    ax = fig.subplots()
    _scatter_methods(ax, frame, "search_seconds")
    _finish(fig, ax, "search wall clock (s, training + evaluation)", "search cost vs result")
    return fig


def _scatter_methods(ax: Any, frame: pd.DataFrame, x: str, **kw: Any) -> None:
    """One coloured point per (method, seed): ``x`` against the retrained accuracy."""
    colors = _colors(list(dict.fromkeys(frame["method"])))
    for method, g in frame.groupby("method", sort=False):
        ax.scatter(g[x], g["retrained_acc"], color=colors[method], s=46,
                   edgecolor="black", lw=0.5, label=method, **kw)  # fmt: skip


def _finish(fig: Figure, ax: Any, xlabel: str, title: str) -> None:
    """Axis labels (y: retrained accuracy), title, grid and the legend outside on the right."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("retrained test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)


def plot_seed_spread(frame: pd.DataFrame) -> Figure:
    """Per method: each seed's retrained accuracy, their mean, and the random mean ± one std."""
    methods = list(dict.fromkeys(frame["method"]))
    fig = _figure(1.6 + 1.3 * len(methods), 3.8)
    ax = fig.subplots()
    colors = _colors(methods)
    for i, method in enumerate(methods):
        g = frame[frame["method"] == method]
        mean, std = float(g["random_mean"].iloc[0]), float(g["random_std"].iloc[0])
        if np.isfinite(mean):
            lo, hi = (mean - std, mean + std) if np.isfinite(std) else (mean, mean)
            ax.fill_between([i - 0.4, i + 0.4], lo, hi, color="0.85", zorder=0)
            ax.plot([i - 0.4, i + 0.4], [mean, mean], color="0.45", ls="--", lw=1)
        acc = g["retrained_acc"].to_numpy(float)
        offsets = np.linspace(-0.15, 0.15, len(acc)) if len(acc) > 1 else np.zeros(1)
        ax.scatter(
            i + offsets, acc, color=colors[method], edgecolor="black", lw=0.5, s=40, zorder=3
        )
        ax.plot([i - 0.25, i + 0.25], [acc.mean()] * 2, color=colors[method], lw=2.5, zorder=2)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("retrained test accuracy")
    ax.set_title("seed spread (points), mean (bar); grey: random mean ± std of the space")
    ax.grid(axis="y", alpha=0.3)
    return fig


def decision_series(history: SearchHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fraction of budget [T], mean normalized entropy [T], mean max probability [T]).

    Over every row of every group the history recorded (alphas, controller decisions, Cream's
    board choice frequencies); NaN where a record has none.
    """
    records = history.epochs()
    last = max((int(r["epoch"]) for r in records), default=0)
    ent_sum: dict[float, list[float]] = {}
    top_sum: dict[float, list[float]] = {}
    for group in history.group_names():
        if not history.has_group_data(group):
            continue
        x, values = history.group_series(group)
        v = np.asarray(values, dtype=float)
        if v.ndim != 3 or len(x) == 0:
            continue
        h = entropy(v, normalized=True)  # [T, rows]
        with np.errstate(invalid="ignore"):
            p = v / np.nansum(v, axis=-1, keepdims=True)
            top = np.nanmax(np.where(np.isfinite(p), p, -np.inf), axis=-1)
        for t, xt in enumerate(x):
            ent_sum.setdefault(float(xt), []).extend(h[t][np.isfinite(h[t])].tolist())
            top_sum.setdefault(float(xt), []).extend(top[t][np.isfinite(top[t])].tolist())
    xs = np.array(sorted(ent_sum))
    ent = np.array([np.mean(ent_sum[x]) if ent_sum[x] else np.nan for x in xs])
    top = np.array([np.mean(top_sum[x]) if top_sum[x] else np.nan for x in xs])
    frac = xs / last if last > 0 else xs
    return frac, ent, top


def plot_decision_evolution(comparison: Comparison) -> Figure:
    """Every search's mean entropy and top probability against the fraction of its budget."""
    fig = _figure(11.0, 3.8)
    ax_h, ax_p = fig.subplots(1, 2)
    methods = list(dict.fromkeys(s.method for s in comparison.searches))
    colors = _colors(methods)
    labelled: set[str] = set()
    for s in comparison.searches:
        frac, ent, top = decision_series(s.history)
        if not len(frac):
            continue
        label = None if s.method in labelled else s.method
        labelled.add(s.method)
        ax_h.plot(frac, ent, color=colors[s.method], marker="o", ms=3, lw=1.5, label=label)
        ax_p.plot(frac, top, color=colors[s.method], marker="o", ms=3, lw=1.5)
    ax_h.set_ylabel("mean normalized entropy (1 = uniform)")
    ax_p.set_ylabel("mean probability of the top choice")
    for ax in (ax_h, ax_p):
        ax.set_xlabel("fraction of the search budget")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    fig.suptitle("how decided each method is during its search (one line per seed)")
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def save_plots(comparison: Comparison, out: str | Path | None = None, dpi: int = 110) -> list[Path]:
    """Write the four figures as PNG into ``out`` (default: the comparison's folder)."""
    out = Path(out) if out is not None else comparison.out
    out.mkdir(parents=True, exist_ok=True)
    frame, random = comparison.frame(), comparison.random_frame()
    figures = {
        "accuracy_vs_params.png": plot_accuracy_vs_params(frame, random),
        "cost_vs_accuracy.png": plot_cost_vs_accuracy(frame),
        "seed_spread.png": plot_seed_spread(frame),
        "decision_evolution.png": plot_decision_evolution(comparison),
    }
    paths = []
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=dpi)
        paths.append(out / name)
    return paths


__all__ = [
    "decision_series",
    "plot_accuracy_vs_params",
    "plot_cost_vs_accuracy",
    "plot_decision_evolution",
    "plot_seed_spread",
    "save_plots",
]
