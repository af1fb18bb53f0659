"""How a search evolves: matplotlib figures built from a `SearchHistory`, for every method.

The plots read the history's **groups** (named R x C probability rows over named choices, see
`nasviz.history`), so DARTS alphas, PC-DARTS betas, a NASNet controller's softmax and Cream's
choice frequencies are drawn by the same code:

* `plot_group_evolution`: one panel per row, one line per choice over time;
* `plot_group_heatmap`: rows x choices at one epoch, annotated;
* `plot_entropy`: mean normalized row entropy per group over time (1 = undecided, 0 = decided);
* `plot_stability`: per group, when each row's most likely choice changed;
* `plot_curves` (losses, accuracies) and `plot_extra` (temperature, rewards, ...);
* `available_plots` lists what a history supports, `plot_run` writes all of it for a run
  directory (``nasviz plot DIR``), with the architecture drawn by its own ``graph()``.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` built with the object API (no
pyplot state), so it works headless, in scripts and inline in Jupyter. matplotlib is imported
inside the functions; importing this module needs numpy only.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasviz.history import GroupSpec, SearchHistory, entropy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_METRICS = {
    "loss": ("train_loss", "val_loss", "test_loss"),
    "accuracy": ("train_acc", "val_acc", "test_acc"),
}
FIXED_PLOTS = ("curves", "entropy", "stability", "extra")
SCALES = ("data", "change", "full")
ARCHITECTURE_FILES = ("architecture.json", "genotype.json")  # looked up in a run directory


# ------------------------------------------------------------------------------ helpers


def _figure(width: float, height: float) -> Figure:
    """A new pyplot-free Figure with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _line_style(n_points: int) -> dict[str, Any]:
    """Show markers when there are too few points for a line to be visible."""
    return {"marker": "o", "markersize": 3} if n_points < 3 else {}


def _epoch_axis(ax: Axes, x: np.ndarray, label: str = "epoch") -> None:
    """Label the x axis; integer ticks when every x is a whole epoch."""
    from matplotlib.ticker import MaxNLocator

    if len(x) and np.all(np.mod(x, 1) == 0):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label, fontsize=8)


def _ticks_within(ax: Axes, first: float, last: float) -> None:
    """Keep only the x ticks in [first, last] (the axis may extend past the data, e.g. for text)."""
    ticks = [t for t in ax.get_xticks() if first - 1e-9 <= t <= last + 1e-9]
    ax.set_xticks(ticks)


def _column_colors(cols: Sequence[str]) -> list[str]:
    """The shared op colors when they tell the columns apart, else a qualitative colormap."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from nasviz.viz.cells import op_color

    colors = [op_color(c) for c in cols]
    if len(set(colors)) == len(colors):
        return colors
    cmap = colormaps["tab20" if len(cols) <= 20 else "turbo"]
    n = max(len(cols) - 1, 1)
    return [to_hex(cmap(i if len(cols) <= 20 else i / n)) for i in range(len(cols))]


def _group_data(
    history: SearchHistory, group: str, kind: str = "epoch"
) -> tuple[GroupSpec, np.ndarray, np.ndarray]:
    """(spec, x [T], values [T, R, C]); ValueError if the group has no records yet."""
    spec = history.group_spec(group)
    x, values = history.group_series(group, kind)
    if not len(x):
        raise ValueError(f"group {group!r} of this {history.method!r} history has no records yet")
    return spec, x, values


def _groups_with_data(history: SearchHistory, kind: str = "epoch") -> list[str]:
    """Declared groups that have at least one record of ``kind``."""
    return [g for g in history.group_names() if len(history.group_series(g, kind)[0])]


def math_label(label: str) -> str:
    """A row label with its TeX-style subscripts drawn as subscripts ('c_{k-2}' -> c with k-2 below)."""
    return re.sub(r"([A-Za-z])_\{([^}]*)\}", r"$\1_{\2}$", label)


def _row_grid(rows: Sequence[str]) -> list[tuple[int, int]]:
    """(panel row, panel column) of each row: 'src → dst' rows get one panel row per dst."""
    if all(" → " in r for r in rows):
        targets: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            targets.setdefault(r.rsplit(" → ", 1)[1], []).append(i)
        cells = {i: (p, c) for p, idx in enumerate(targets.values()) for c, i in enumerate(idx)}
        return [cells[i] for i in range(len(rows))]
    ncols = min(5, len(rows))
    return [divmod(i, ncols) for i in range(len(rows))]


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


def _record_index(x: np.ndarray, epoch: float | None) -> int:
    """Index of the record for ``epoch`` (last if None); ValueError naming the range if absent."""
    if epoch is None:
        return len(x) - 1
    hits = np.flatnonzero(x == epoch)
    if not len(hits):
        raise ValueError(f"no record for epoch {epoch}; epochs {x[0]:g}..{x[-1]:g} exist")
    return int(hits[-1])


def uniform_level(values: np.ndarray) -> np.ndarray:
    """1 / (#available choices) of each row of [..., C] values (NaN = unavailable)."""
    n = np.isfinite(values).sum(axis=-1)
    with np.errstate(divide="ignore"):
        return np.where(n > 0, 1.0 / np.maximum(n, 1), np.nan)


# ------------------------------------------------------------------------------ groups


def plot_group_evolution(
    history: SearchHistory, group: str, kind: str = "epoch", scale: str = "data"
) -> Figure:
    """Small multiples: one panel per row of ``group``, one line per available choice over time.

    ``scale``: 'data' (y limits fit the data, dashed line = uniform), 'change' (probability
    minus uniform, so small early movements are visible) or 'full' (0..1).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    spec, x, values = _group_data(history, group, kind)  # [T], [T, R, C]
    rows, cols = spec["rows"], spec["cols"]
    uniform = uniform_level(values[0])  # [R]
    y = values - uniform[None, :, None] if scale == "change" else values
    grid = _row_grid(rows)
    nrows, ncols = max(r for r, _ in grid) + 1, max(c for _, c in grid) + 1
    fig = _figure(2.6 * ncols + 0.4, 1.9 * nrows + 0.9)
    axes = _panels(fig, grid)
    colors = _column_colors(cols)
    handles: dict[str, Any] = {}
    for r, ax in enumerate(axes):
        for c, col in enumerate(cols):
            if not np.isfinite(y[:, r, c]).any():
                continue  # a choice this row does not have
            style = _line_style(len(x))
            (line,) = ax.plot(x, y[:, r, c], color=colors[c], lw=1.4, label=col, **style)
            handles.setdefault(col, line)
        ref = 0.0 if scale == "change" else uniform[r]
        if scale != "full" and np.isfinite(ref):
            ax.axhline(ref, color="grey", ls=":", lw=0.9, label="_uniform")
        ax.set_title(math_label(rows[r]), fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    _set_group_ylim(axes[0], y, scale)
    ylabel = {"data": "probability", "change": "prob. − uniform", "full": "probability"}[scale]
    for ax, (r, c) in zip(axes, grid, strict=True):
        if c == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        if r == nrows - 1 or (r + 1, c) not in grid:
            _epoch_axis(ax, x)
    ordered = [col for col in cols if col in handles]
    fig.legend(
        [handles[c] for c in ordered], [math_label(c) for c in ordered], loc="outside lower center",
        ncol=len(ordered) if len(ordered) <= 8 else -(-len(ordered) // 2), fontsize=8,
    )  # fmt: skip
    note = " (dotted: uniform)" if scale == "data" else ""
    fig.suptitle(f"{history.method}: {spec['title']}{note}")
    return fig


def _set_group_ylim(ax: Axes, y: np.ndarray, scale: str) -> None:
    """Shared y limits: 0..1, or the data range with a margin (never a flat zero range)."""
    if scale == "full":
        ax.set_ylim(0.0, 1.0)
        return
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    if scale == "change":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = max(0.08 * (hi - lo), 1e-3)
    ax.set_ylim(lo - pad, hi + pad)


def plot_group_heatmap(
    history: SearchHistory, group: str, epoch: float | None = None, kind: str = "epoch"
) -> Figure:
    """Rows x choices heatmap of ``group`` at ``epoch`` (default: the last), annotated."""
    spec, x, values = _group_data(history, group, kind)
    t = _record_index(x, epoch)
    data = np.ma.masked_invalid(values[t])  # [R, C]; unavailable choices left blank
    rows, cols = spec["rows"], spec["cols"]
    fig = _figure(0.75 * len(cols) + 3.2, 0.36 * len(rows) + 1.8)
    ax = fig.add_subplot()
    vmax = max(float(data.max()), 1e-6) if data.count() else 1.0
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#eeeeee")
    image = ax.imshow(data, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    for r in range(len(rows)):
        for c in range(len(cols)):
            if data.mask is np.ma.nomask or not data.mask[r, c]:
                value = float(data[r, c])
                color = "black" if value > 0.6 * vmax else "white"
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [math_label(r) for r in rows], fontsize=8)
    fig.colorbar(image, ax=ax, label="probability", shrink=0.8)
    ax.set_title(f"{history.method}: {spec['title']}, epoch {x[t]:g}", fontsize=10)
    return fig


# ------------------------------------------------------------------------------ entropy


def group_entropy(history: SearchHistory, group: str, kind: str = "epoch") -> tuple[Any, Any]:
    """(x [T], normalized entropy [T, R]) of a group's rows: 1 = uniform, 0 = one-hot."""
    x, values = history.group_series(group, kind)
    return x, entropy(values, normalized=True)


def _entropy_ylim(low: float) -> tuple[float, float]:
    """y limits from the lowest entropy drawn up to the uniform line at 1, with a margin.

    A short search stays just below 1 (e.g. 0.98..1): a fixed 0..1 axis would draw its lines on
    the top frame, so the axis zooms onto the data; the line at 1 always stays inside.
    """
    low = min(max(low, 0.0), 1.0)
    pad = max(0.08 * (1.0 - low), 1e-3)
    bottom = max(low - pad, 0.0) if low > 0.2 else 0.0  # far from 1: show the whole range
    return bottom, 1.0 + pad


def plot_entropy(
    history: SearchHistory, kind: str = "epoch", groups: Sequence[str] | None = None
) -> Figure:
    """Mean (band: min-max) row entropy per group, normalized by log(#available choices)."""
    names = list(groups) if groups is not None else _groups_with_data(history, kind)
    if not names:
        raise ValueError(f"this {history.method!r} history has no groups to take the entropy of")
    fig = _figure(6.8, 3.9)
    ax = fig.add_subplot()
    x_all: list[np.ndarray] = []
    y_low: list[float] = []
    for name in names:
        x, h = group_entropy(history, name, kind)  # [T], [T, R]
        decided = np.isfinite(h).any(axis=1)  # rows with >= 2 choices exist at this time
        if not decided.any():
            continue  # nothing to draw: no legend entry either
        x, h = x[decided], h[decided]
        with np.errstate(all="ignore"):
            mean, lo, hi = np.nanmean(h, axis=1), np.nanmin(h, axis=1), np.nanmax(h, axis=1)
        (line,) = ax.plot(x, mean, lw=2, label=name, **_line_style(len(x)))
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        x_all.append(x)
        y_low.append(float(np.nanmin(lo)))
    if not x_all:
        raise ValueError(f"groups {names} have no row with two or more available choices")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="uniform")
    ax.set_ylim(*_entropy_ylim(min(y_low)))
    _epoch_axis(ax, np.concatenate(x_all))
    ax.set_ylabel("entropy / log(#choices)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{history.method}: how decided each group is (mean over rows, band = min-max)")
    return fig


# ------------------------------------------------------------------------------ stability


def row_choices(history: SearchHistory, group: str, kind: str = "epoch") -> tuple[Any, Any]:
    """(x [T], index of each row's most likely choice [T, R]; -1 while tied or unavailable).

    A tie (e.g. the uniform rows a search starts from) is no choice yet, so the first decision
    is not counted as a change.
    """
    x, values = history.group_series(group, kind)
    filled = np.where(np.isfinite(values), values, -np.inf)
    best = filled.argmax(axis=-1)
    top = filled.max(axis=-1, keepdims=True)
    tied = (filled >= top - 1e-9).sum(axis=-1) > 1
    return x, np.where(np.isfinite(top[..., 0]) & ~tied, best, -1)


def row_changes(history: SearchHistory, group: str, kind: str = "epoch") -> dict[str, list[float]]:
    """Row label -> the epochs at which that row's most likely choice changed."""
    spec = history.group_spec(group)
    x, best = row_choices(history, group, kind)
    changed = (best[1:] != best[:-1]) & (best[:-1] >= 0)  # [T-1, R]
    return {row: [float(v) for v in x[1:][changed[:, r]]] for r, row in enumerate(spec["rows"])}


def _draw_stability(ax: Axes, history: SearchHistory, group: str, kind: str) -> None:
    """Timeline for one group: change ticks, a 'stable since' bar, the final choice per row."""
    spec = history.group_spec(group)
    x, best = row_choices(history, group, kind)
    first, last = float(x[0]), float(x[-1])
    span = max(last - first, 1.0)
    for r, epochs in enumerate(row_changes(history, group, kind).values()):
        decided = np.flatnonzero(best[:, r] >= 0)
        stable_from = epochs[-1] if epochs else float(x[decided[0]]) if len(decided) else last
        ax.hlines(r, first, last, color="#dddddd", lw=1, zorder=1)
        width = max(last - stable_from, 0.02 * span)
        ax.barh(r, width, left=stable_from, height=0.32, color="#2ca02c", alpha=0.7, zorder=2)
        ax.plot(epochs, [r] * len(epochs), "|", color="#d62728", ms=11, mew=2, zorder=3)
        final = math_label(spec["cols"][best[-1, r]]) if best[-1, r] >= 0 else "(tied)"
        ax.text(last + 0.04 * span, r, f"{final} (since {stable_from:g})", fontsize=7, va="center")
    ax.set_yticks(range(len(spec["rows"])), [math_label(r) for r in spec["rows"]], fontsize=7)
    ax.set_ylim(len(spec["rows"]) - 0.4, -0.6)
    ax.set_xlim(first - 0.03 * span, last + 0.45 * span)  # room for the final-choice text
    ax.set_title(spec["title"], fontsize=9, loc="left")


def plot_stability(
    history: SearchHistory, kind: str = "epoch", groups: Sequence[str] | None = None
) -> Figure:
    """Per group, when each row's most likely choice changed (red ticks) and since when it held."""
    names = list(groups) if groups is not None else _groups_with_data(history, kind)
    if not names:
        raise ValueError(f"this {history.method!r} history has no groups to check for stability")
    n_rows = [len(history.group_spec(g)["rows"]) for g in names]
    fig = _figure(9.0, 0.24 * sum(n_rows) + 0.7 * len(names) + 1.0)
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False, height_ratios=n_rows)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        _group_data(history, name, kind)  # clear error for a group without records
        _draw_stability(ax, history, name, kind)
    x = np.concatenate([history.group_series(g, kind)[0] for g in names])
    _epoch_axis(axes[-1], x)
    _ticks_within(axes[-1], float(x.min()), float(x.max()))  # the text column has no epochs
    fig.suptitle(f"{history.method}: most likely choice per row (red = changed)")
    return fig


# ------------------------------------------------------------------------------ curves and extras


def plot_curves(history: SearchHistory, kind: str = "epoch") -> Figure:
    """Loss and accuracy curves (train/val/test) from the metrics that exist."""
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
        xs = []
        for name in metrics:
            x, y = history.metric(name, kind)
            style = "-" if name.startswith("train") else "--"
            ax.plot(x, y, style, lw=1.8, label=name, **_line_style(len(x)))
            xs.append(x)
        ax.set_title(title)
        _epoch_axis(ax, np.concatenate(xs))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{history.method}: training curves")
    return fig


def _extra_values(
    history: SearchHistory, name: str, kind: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, values [T] or [T, k]) of a numeric extra series, or None if it is not plottable."""
    try:
        x, y = history.extra(name, kind)
    except (TypeError, ValueError):  # ragged lists, strings, dicts (e.g. a whole board)
        return None
    return (x, y) if len(x) and y.ndim in (1, 2) else None


def plot_extra(
    history: SearchHistory, names: Sequence[str] | None = None, kind: str = "epoch"
) -> Figure:
    """One panel per scalar extra series (temperature, rewards, ...); non-numeric ones skipped."""
    wanted = list(names) if names is not None else history.extra_names()
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
    nrows = -(-len(series) // ncols)
    fig = _figure(4.2 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, (x, y)) in zip(axes, series.items(), strict=False):
        ax.plot(x, y, lw=1.8, **_line_style(len(x)))
        ax.set_title(name)
        _epoch_axis(ax, x)
        ax.grid(alpha=0.3)
    for ax in axes[len(series) :]:
        fig.delaxes(ax)
    fig.suptitle(f"{history.method}: other recorded series")
    return fig


# ------------------------------------------------------------------------------ all at once


def group_plot_names(group: str) -> tuple[str, str]:
    """(evolution, heatmap) plot names of a group: 'alpha/normal' -> ('alpha_normal', ...)."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", group).strip("_") or "group"
    if slug in FIXED_PLOTS:
        slug = f"group_{slug}"
    return slug, f"heatmap_{slug}"


def available_plots(history: SearchHistory, kind: str = "epoch") -> dict[str, Callable[[], Figure]]:
    """Name -> zero-argument figure builder, for every plot this history has the data for."""
    plots: dict[str, Callable[[], Figure]] = {}
    metrics = set(history.metric_names())
    if any(m in metrics for ms in CURVE_METRICS.values() for m in ms):
        plots["curves"] = lambda: plot_curves(history, kind)
    groups = _groups_with_data(history, kind)
    for g in groups:
        plots[group_plot_names(g)[0]] = lambda g=g: plot_group_evolution(history, g, kind)
    for g in groups:
        plots[group_plot_names(g)[1]] = lambda g=g: plot_group_heatmap(history, g, kind=kind)
    decisions = [g for g in groups if np.isfinite(group_entropy(history, g, kind)[1]).any()]
    if decisions:
        plots["entropy"] = lambda: plot_entropy(history, kind, decisions)
    if groups:
        plots["stability"] = lambda: plot_stability(history, kind, groups)
    if any(_extra_values(history, n, kind) is not None for n in history.extra_names()):
        plots["extra"] = lambda: plot_extra(history, kind=kind)
    return plots


def run_architecture(run_dir: str | Path, history: SearchHistory | None = None) -> Any | None:
    """The run's architecture: DIR/architecture.json or DIR/genotype.json, else the history's."""
    from nasviz import architectures

    for name in ARCHITECTURE_FILES:
        if (Path(run_dir) / name).is_file():
            return architectures.load(Path(run_dir) / name)
    return history.last_architecture() if history is not None else None


def _save_architecture(arch: Any, path: Path, title: str) -> Path | None:
    """Render ``arch.graph()`` to PNG; None with a printed note if Graphviz is missing."""
    from nasviz.viz.cells import INSTALL_HELP, DotNotFoundError

    if shutil.which("dot") is None:
        print(
            f"architecture drawing skipped: Graphviz `dot` not found.\n{INSTALL_HELP}",
            file=sys.stderr,
        )
        return None
    try:
        data = arch.graph(title=title).pipe(format="png")
    except (DotNotFoundError, ImportError) as exc:
        print(f"architecture drawing skipped: {exc}", file=sys.stderr)
        return None
    path.write_bytes(data)
    return path


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, dpi: int = 110) -> list[Path]:
    """Write every available plot of DIR/history.json as PNG, and the run's architecture."""
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
    arch = run_architecture(run_dir, history)
    if arch is not None:
        drawn = _save_architecture(
            arch, out / "architecture.png", f"{history.method}: {run_dir.name}"
        )
        written += [drawn] if drawn is not None else []
    return written + _method_plots(history, out, dpi)


def _method_plots(history: SearchHistory, out: Path, dpi: int) -> list[Path]:
    """The method's own pages: its registry entry's ``plots`` ("module:function" names)."""
    import importlib

    from nasviz.search import registry

    try:
        specs = registry.get(history.method).plots
    except ValueError:  # a retraining history, or a method this version does not know
        return []
    written: list[Path] = []
    for spec in specs:
        module, _, name = spec.partition(":")
        written += getattr(importlib.import_module(module), name)(history, out, dpi)
    return written


# ------------------------------------------------------------------------------ old names


def plot_alpha_evolution(
    history: SearchHistory, cell: str = "normal", kind: str = "epoch", scale: str = "data"
) -> Figure:
    """Deprecated alias: `plot_group_evolution` of group 'alpha/<cell>'."""
    history.alpha_series(cell)  # clear error naming the cells when there is no such group
    return plot_group_evolution(history, f"alpha/{cell}", kind, scale)


def plot_alpha_heatmap(
    history: SearchHistory, cell: str = "normal", epoch: float | None = None
) -> Figure:
    """Deprecated alias: `plot_group_heatmap` of group 'alpha/<cell>'."""
    history.alpha_series(cell)
    return plot_group_heatmap(history, f"alpha/{cell}", epoch)


def plot_beta_evolution(
    history: SearchHistory, cell: str = "normal", kind: str = "epoch", scale: str = "data"
) -> Figure:
    """Deprecated alias: `plot_group_evolution` of group 'beta/<cell>' (PC-DARTS)."""
    if f"beta/{cell}" not in history.groups:
        raise ValueError(
            f"this {history.method!r} history has no betas for cell {cell!r}; only PC-DARTS "
            "(edge normalization) records them. Use plot_alpha_evolution instead."
        )
    return plot_group_evolution(history, f"beta/{cell}", kind, scale)
