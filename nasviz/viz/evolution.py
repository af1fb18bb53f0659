"""How a search evolves: matplotlib figures built from a `SearchHistory`.

Every ``plot_*`` function takes a history and returns a ``matplotlib.figure.Figure`` built with
the object API (no pyplot state), so it works headless, in scripts and inline in Jupyter (a
Figure displays itself as PNG). ``available_plots`` lists what a history supports and
``plot_run`` writes all of it for a run directory (``nasviz plot DIR``).

matplotlib is imported inside the functions; importing this module needs numpy only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasviz.genotypes import Genotype
from nasviz.history import SearchHistory, entropy
from nasviz.viz.cells import op_color, state_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_METRICS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


def _figure(width: float, height: float) -> Figure:
    """A new pyplot-free Figure with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def edge_label(history: SearchHistory, row: int) -> str:
    """Paper-style name of alpha row ``row``, e.g. 'c_{k-2} → 0'."""
    if row < len(history.edges):
        src, dst = history.edges[row]
        return f"{state_label(src)} → {state_label(dst)}"
    return f"edge {row}"


def _op_names(history: SearchHistory, n_ops: int) -> list[str]:
    """The history's op names, or 'op i' when the history does not list them."""
    return list(history.ops) if len(history.ops) == n_ops else [f"op {i}" for i in range(n_ops)]


def _edge_grid(history: SearchHistory, n_edges: int) -> list[tuple[int, int]]:
    """(row, col) panel of each edge: one row per node when edges are known, else 5 columns."""
    if len(history.edges) == n_edges:
        nodes = sorted(history.node_edges().items())
        cells = {e: (r, c) for r, (_, rows) in enumerate(nodes) for c, e in enumerate(rows)}
        return [cells[e] for e in range(n_edges)]
    ncols = min(5, n_edges)
    return [divmod(e, ncols) for e in range(n_edges)]


def _panels(fig: Figure, grid: list[tuple[int, int]]) -> list[Axes]:
    """One shared-axes panel per grid position, in the order of ``grid``."""
    nrows = max(r for r, _ in grid) + 1
    ncols = max(c for _, c in grid) + 1
    spec = fig.add_gridspec(nrows, ncols)
    axes: list[Axes] = []
    for r, c in grid:
        share = axes[0] if axes else None
        axes.append(fig.add_subplot(spec[r, c], sharex=share, sharey=share))
    return axes


def _line_style(n_points: int) -> dict[str, Any]:
    """Show markers when there are too few points for a line to be visible."""
    return {"marker": "o", "markersize": 3} if n_points < 3 else {}


# ------------------------------------------------------------------------------ alphas


def plot_alpha_evolution(
    history: SearchHistory, cell: str = "normal", kind: str = "epoch"
) -> Figure:
    """Small multiples: one panel per edge, one line per op's probability over time."""
    x, probs = history.alpha_series(cell, kind)  # [T], [T, E, O]
    n_edges, n_ops = probs.shape[1], probs.shape[2]
    ops = _op_names(history, n_ops)
    grid = _edge_grid(history, n_edges)
    ncols = max(c for _, c in grid) + 1
    nrows = max(r for r, _ in grid) + 1
    fig = _figure(2.6 * ncols, 1.9 * nrows + 0.8)
    axes = _panels(fig, grid)
    for e, ax in enumerate(axes):
        for o, op in enumerate(ops):
            ax.plot(x, probs[:, e, o], color=op_color(op), lw=1.4, label=op, **_line_style(len(x)))
        ax.set_title(edge_label(history, e), fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax, (r, c) in zip(axes, grid, strict=True):
        if c == 0:
            ax.set_ylabel("probability", fontsize=8)
        if r == nrows - 1 or (r + 1, c) not in grid:
            ax.set_xlabel("epoch", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(n_ops, 8), fontsize=8)
    fig.suptitle(f"{history.method}: {cell} cell, softmax(alpha) per edge")
    return fig


def _record_index(x: np.ndarray, epoch: int | None) -> int:
    """Index of the record for ``epoch`` (last if None); ValueError naming the range if absent."""
    if epoch is None:
        return len(x) - 1
    hits = np.flatnonzero(x == epoch)
    if not len(hits):
        raise ValueError(f"no alpha record for epoch {epoch}; epochs {x[0]:g}..{x[-1]:g} exist")
    return int(hits[-1])


def plot_alpha_heatmap(
    history: SearchHistory, cell: str = "normal", epoch: int | None = None
) -> Figure:
    """Edges x ops heatmap of the op probabilities at ``epoch`` (default: the last), annotated."""
    x, probs = history.alpha_series(cell)
    t = _record_index(x, epoch)
    data = probs[t]  # [E, O]
    n_edges, n_ops = data.shape
    ops = _op_names(history, n_ops)
    fig = _figure(1.0 * n_ops + 2.5, 0.38 * n_edges + 1.6)
    ax = fig.add_subplot()
    vmax = max(float(data.max()), 1e-6)
    image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    for e in range(n_edges):
        for o in range(n_ops):
            value = data[e, o]
            color = "black" if value > 0.6 * vmax else "white"
            ax.text(o, e, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(n_ops), ops, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n_edges), [edge_label(history, e) for e in range(n_edges)], fontsize=8)
    fig.colorbar(image, ax=ax, label="probability", shrink=0.8)
    ax.set_title(f"{history.method}: {cell} cell at epoch {x[t]:g}")
    return fig


# ------------------------------------------------------------------------------ betas


def plot_beta_evolution(
    history: SearchHistory, cell: str = "normal", kind: str = "epoch"
) -> Figure:
    """One panel per node: the normalized beta of each of its incoming edges over time."""
    if not history.has_betas():
        raise ValueError(
            f"this {history.method!r} history has no betas; only PC-DARTS (edge normalization) "
            "records them. Use plot_alpha_evolution instead."
        )
    x, betas = history.beta_series(cell, kind)  # [T], [T, E]
    nodes = sorted(history.node_edges().items())
    if not nodes:
        raise ValueError("history.edges is empty, so betas cannot be grouped by node")
    ncols = min(4, len(nodes))
    nrows = math.ceil(len(nodes) / ncols)
    fig = _figure(3.2 * ncols, 2.6 * nrows)
    axes = _panels(fig, [divmod(i, ncols) for i in range(len(nodes))])
    for ax, (node, rows) in zip(axes, nodes, strict=True):
        for row in rows:
            src = history.edges[row][0]
            ax.plot(
                x, betas[:, row], lw=1.6, label=f"from {state_label(src)}", **_line_style(len(x))
            )
        ax.set_title(f"node {state_label(node)}", fontsize=10)
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("normalized beta")
    fig.suptitle(f"{history.method}: {cell} cell, edge normalization weights")
    return fig


# ------------------------------------------------------------------------------ entropy


def plot_entropy(history: SearchHistory, kind: str = "epoch") -> Figure:
    """Mean (and min-max band) entropy per edge of softmax(alpha) over time, per cell type."""
    cells = history.cell_types()
    if not cells:
        raise ValueError(f"this {history.method!r} history has no alphas to take the entropy of")
    fig = _figure(6.5, 3.8)
    ax = fig.add_subplot()
    n_ops = 0
    for cell in cells:
        x, probs = history.alpha_series(cell, kind)
        h = entropy(probs)  # [T, E]
        n_ops = probs.shape[2]
        (line,) = ax.plot(x, h.mean(axis=1), lw=2, label=f"{cell} (mean over edges)")
        ax.fill_between(x, h.min(axis=1), h.max(axis=1), color=line.get_color(), alpha=0.15)
    ax.axhline(math.log(n_ops), color="grey", ls="--", lw=1, label=f"uniform: log({n_ops})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("entropy (nats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{history.method}: how decided the architecture is (lower = sharper)")
    return fig


# ------------------------------------------------------------------------------ stability


def _node_choice(genotype: Genotype, cell: str, node: int) -> tuple[tuple[str, int], ...]:
    """A node's (op, input) set, order-free, so swapped edges do not count as a change."""
    return tuple(sorted(genotype.nodes(cell)[node], key=lambda e: (e[1], e[0])))


def node_changes(history: SearchHistory, cell: str) -> dict[int, list[float]]:
    """For each node, the epochs at which its derived (op, input) set changed."""
    found = history.genotypes()
    if not found:
        raise ValueError(f"this {history.method!r} history records no genotypes")
    changes: dict[int, list[float]] = {}
    for node in range(found[-1][1].num_nodes(cell)):
        previous = None
        changes[node] = []
        for epoch, genotype in found:
            choice = _node_choice(genotype, cell, node) if node < genotype.num_nodes(cell) else None
            if previous is not None and choice != previous:
                changes[node].append(float(epoch))
            previous = choice
    return changes


def _choice_text(choice: tuple[tuple[str, int], ...]) -> str:
    """'sep_conv_3x3 ← c_{k-2}, skip_connect ← 0', with 'none' edges left out."""
    parts = [f"{op} ← {state_label(i)}" for op, i in choice if op != "none"]
    return ", ".join(parts) if parts else "(removed: all none)"


def _draw_stability(ax: Axes, history: SearchHistory, cell: str) -> None:
    """Timeline for one cell type: change ticks, a 'stable since' bar, the final choice."""
    found = history.genotypes()
    first, last = float(found[0][0]), float(found[-1][0])
    final = found[-1][1]
    changes = node_changes(history, cell)
    for node, epochs in changes.items():
        stable_from = epochs[-1] if epochs else first
        ax.hlines(node, first, last, color="#dddddd", lw=1, zorder=1)
        width = max(last - stable_from, 0.4)
        ax.barh(node, width, left=stable_from, height=0.32, color="#2ca02c", alpha=0.7, zorder=2)
        ax.plot(epochs, [node] * len(epochs), "|", color="#d62728", ms=14, mew=2, zorder=3)
        text = f"stable from {stable_from:g}: {_choice_text(_node_choice(final, cell, node))}"
        ax.text(first, node + 0.22, text, fontsize=7.5, va="top")
    ax.set_yticks(list(changes), [f"node {n}" for n in changes])
    ax.set_ylim(len(changes) - 0.3, -0.6)
    ax.set_xlim(first - 0.5, last + 0.8)
    ax.set_title(f"{cell} cell", fontsize=10)


def plot_stability(history: SearchHistory) -> Figure:
    """When each node's derived (op, input) choice stopped changing (red ticks = changes)."""
    found = history.genotypes()
    if not found:
        raise ValueError(f"this {history.method!r} history records no genotypes")
    cells = ("normal", "reduce")
    n_nodes = max(found[-1][1].num_nodes(c) for c in cells)
    fig = _figure(9.0, 0.75 * n_nodes * len(cells) + 1.5)
    axes = fig.subplots(len(cells), 1, sharex=True)
    for ax, cell in zip(axes, cells, strict=True):
        _draw_stability(ax, history, cell)
    axes[-1].set_xlabel("epoch")
    fig.suptitle(f"{history.method}: derived genotype stability (red = node changed)")
    return fig


# ------------------------------------------------------------------------------ curves and extras


def plot_curves(history: SearchHistory, kind: str = "epoch") -> Figure:
    """Loss and accuracy curves (train/val) from the metrics that exist."""
    names = set(history.metric_names())
    panels = {title: [m for m in metrics if m in names] for title, metrics in CURVE_METRICS.items()}
    panels = {title: metrics for title, metrics in panels.items() if metrics}
    if not panels:
        raise ValueError(
            f"history has none of the metrics {[m for ms in CURVE_METRICS.values() for m in ms]}; "
            f"it has {sorted(names)}"
        )
    fig = _figure(5.0 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, metrics) in zip(axes, panels.items(), strict=True):
        for name in metrics:
            x, y = history.metric(name, kind)
            style = "-" if name.startswith("train") else "--"
            ax.plot(x, y, style, lw=1.8, label=name, **_line_style(len(x)))
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{history.method}: search curves")
    return fig


def _extra_values(
    history: SearchHistory, name: str, kind: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, values [T] or [T, k]) of a numeric extra series, or None if it is not plottable."""
    try:
        x, y = history.extra(name, kind)
    except (TypeError, ValueError):  # ragged lists, strings, dicts (e.g. Cream's board)
        return None
    return (x, y) if len(x) and y.ndim in (1, 2) else None


def plot_extra(
    history: SearchHistory, names: list[str] | None = None, kind: str = "epoch"
) -> Figure:
    """One panel per extra series (temperature, resource cost, ...); non-numeric ones skipped."""
    wanted = names if names is not None else history.extra_names()
    series = {name: _extra_values(history, name, kind) for name in wanted}
    if names is not None:
        bad = [n for n, s in series.items() if s is None]
        if bad:
            raise ValueError(
                f"extra series {bad} missing or not numeric; have {history.extra_names()}"
            )
    series = {name: s for name, s in series.items() if s is not None}
    if not series:
        raise ValueError(f"this {history.method!r} history has no numeric extra series")
    ncols = min(3, len(series))
    nrows = math.ceil(len(series) / ncols)
    fig = _figure(4.2 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, (x, y)) in zip(axes, series.items(), strict=False):
        ax.plot(x, y, lw=1.8, **_line_style(len(x)))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[len(series) :]:
        fig.delaxes(ax)
    fig.suptitle(f"{history.method}: method-specific series")
    return fig


# ------------------------------------------------------------------------------ all at once


def available_plots(history: SearchHistory, kind: str = "epoch") -> dict[str, Callable[[], Figure]]:
    """Name -> zero-argument figure builder, for every plot this history has the data for."""
    plots: dict[str, Callable[[], Figure]] = {}
    metrics = set(history.metric_names())
    if any(m in metrics for ms in CURVE_METRICS.values() for m in ms):
        plots["curves"] = lambda: plot_curves(history, kind)
    cells = history.cell_types()
    for cell in cells:
        plots[f"alpha_{cell}"] = lambda cell=cell: plot_alpha_evolution(history, cell, kind)
    for cell in cells:
        plots[f"heatmap_{cell}"] = lambda cell=cell: plot_alpha_heatmap(history, cell)
    beta_cells = {c for r in history.records for c in (r.get("betas") or {})}
    for cell in sorted(beta_cells):
        plots[f"beta_{cell}"] = lambda cell=cell: plot_beta_evolution(history, cell, kind)
    if cells:
        plots["entropy"] = lambda: plot_entropy(history, kind)
    if any("genotype" in r for r in history.epochs()):
        plots["stability"] = lambda: plot_stability(history)
    if any(_extra_values(history, n, kind) is not None for n in history.extra_names()):
        plots["extra"] = lambda: plot_extra(history, kind=kind)
    return plots


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, dpi: int = 110) -> list[Path]:
    """Write every available plot of DIR/history.json (and DIR/genotype.json's cells) as PNGs."""
    run_dir = Path(run_dir)
    history = SearchHistory.load(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in available_plots(history).items():
        fig = build()
        fig.savefig(out / f"{name}.png", dpi=dpi)
        fig.clear()  # no pyplot registry to close; drop the artists right away
        written.append(out / f"{name}.png")
    written += _save_cells(run_dir / "genotype.json", out)
    return written


def _save_cells(genotype_path: Path, out: Path) -> list[Path]:
    """PNGs of both cells of a genotype file, or none (with a warning) if Graphviz is missing."""
    if not genotype_path.is_file():
        return []
    from nasviz.viz.cells import DotNotFoundError, save_genotype

    try:
        return save_genotype(Genotype.load(genotype_path), out / "genotype", formats=("png",))
    except DotNotFoundError as exc:
        warnings.warn(f"cell diagrams skipped: {exc}", RuntimeWarning, stacklevel=3)
        return []
