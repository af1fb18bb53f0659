"""NASNet pictures: cells as block diagrams (graphviz) and the ScheduledDropPath schedule (matplotlib).

``nasnet_graph(genotype)`` draws both cells in the paper's Figure 4 style: the inputs h_{i-1} and
h_i, per block its two op boxes (colored by op family, as the DARTS cell diagrams) feeding one
combine node (+ or concat), and the output concat of the states no block reads. graphviz and
matplotlib are imported lazily.
"""

from __future__ import annotations

from typing import Any

from nasviz.spaces.nasnet import CELL_TYPES, NasnetGenotype, scheduled_drop_path_prob, state_name
from nasviz.viz.cells import FAMILY_COLORS, MAX_WIDTH_IN, _digraph_class, op_family

_INPUT_FILL = "#d6eaf8"
_OP_FILL = "#ffffff"
_COMBINE_FILL = "#fcf3cf"
_OUTPUT_FILL = "#d5f5e3"


def _add_cell(g: Any, genotype: NasnetGenotype, cell: str, prefix: str) -> None:
    """Draw one cell into graph ``g``; node ids start with ``prefix``."""
    blocks = genotype.blocks(cell)
    ids = [f"{prefix}s{j}" for j in range(len(blocks) + 2)]
    for j in (0, 1):
        g.node(ids[j], state_name(j), shape="box", style="rounded,filled", fillcolor=_INPUT_FILL)
    for b, block in enumerate(blocks):
        symbol = "+" if block.combine == "add" else "concat"
        g.node(ids[b + 2], f"{symbol}\nblock {b}", shape="circle", style="filled",
               fillcolor=_COMBINE_FILL)  # fmt: skip
        for slot, (j, op) in enumerate(zip(block.inputs, block.ops, strict=True)):
            op_id = f"{prefix}b{b}op{slot}"
            color = FAMILY_COLORS[op_family(op)]
            g.node(op_id, op, shape="box", color=color, fontcolor=color, style="filled",
                   fillcolor=_OP_FILL)  # fmt: skip
            g.edge(ids[j], op_id, color="#555555", arrowsize="0.6")
            g.edge(op_id, ids[b + 2], color=color, arrowsize="0.6")
    out_id = f"{prefix}out"
    g.node(out_id, "concat\nh_{i+1}", shape="box", style="rounded,filled", fillcolor=_OUTPUT_FILL)
    for j in genotype.concat(cell):
        g.edge(ids[j], out_id, color="#555555", style="dashed", arrowsize="0.6")


def nasnet_cell_graph(
    genotype: NasnetGenotype, cell: str = "normal", title: str | None = None
) -> Any:
    """One NASNet cell as a graphviz.Digraph (shows inline in Jupyter)."""
    g = _digraph_class()(name=f"nasnet_{cell}")
    g.attr(rankdir="TB", label=title or f"{cell} cell", labelloc="t", fontsize="14")
    g.attr(size=f"{MAX_WIDTH_IN},100")  # scaled down to a notebook column, never cut off
    _add_cell(g, genotype, cell, f"{cell}_")
    return g


def nasnet_graph(genotype: NasnetGenotype, title: str | None = None) -> Any:
    """Both NASNet cells side by side as one graphviz.Digraph."""
    g = _digraph_class()(name="nasnet")
    g.attr(rankdir="TB", fontsize="14", size=f"{MAX_WIDTH_IN},100")  # fits a notebook column
    if title:
        g.attr(label=title, labelloc="t")
    for cell in CELL_TYPES:
        with g.subgraph(name=f"cluster_{cell}") as sub:
            sub.attr(label=f"{cell} cell", color="#999999")
            _add_cell(sub, genotype, cell, f"{cell}_")
    return g


def plot_drop_path_schedule(
    num_cells: int = 20,
    drop_path_keep_prob: float = 0.6,
    cells: list[int] | None = None,
    ax: Any = None,
    points: int = 101,
) -> Any:
    """Plot ScheduledDropPath: drop probability over training progress, one line per cell depth."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if cells is None:
        cells = sorted({0, num_cells // 4, num_cells // 2, 3 * num_cells // 4, num_cells - 1})
    progress = [i / (points - 1) for i in range(points)]
    cmap = plt.get_cmap("viridis")
    for n, k in enumerate(cells):
        probs = [scheduled_drop_path_prob(k, num_cells, p, drop_path_keep_prob) for p in progress]
        ax.plot(progress, probs, color=cmap(n / max(1, len(cells) - 1)), label=f"cell {k + 1}")
    ax.set_xlabel("training progress")
    ax.set_ylabel("drop probability")
    ax.set_title(f"ScheduledDropPath (keep0 = {drop_path_keep_prob}, {num_cells} cells)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(1e-3, 1 - drop_path_keep_prob) * 1.05)
    ax.legend(fontsize=8, loc="upper left")
    return ax


# ------------------------------------------------------------------------------ search runs
REWARD_SERIES: tuple[str, ...] = ("reward_mean", "reward_max", "baseline")


def _update_series(history: Any, name: str) -> tuple[list[float], list[float]]:
    """(x, y) of a NASNet extra series per controller update (step records), else per epoch."""
    for kind in ("step", "epoch"):
        rows = [r for r in history.select(kind) if name in r.get("extra", {})]
        if rows:
            x = [r["step"] if kind == "step" else r["epoch"] for r in rows]
            return x, [float(r["extra"][name]) for r in rows]
    return [], []


def plot_rewards(history: Any, ax: Any = None) -> Any:
    """A NASNet search's rewards per controller update (mean, max, baseline) and its entropy."""
    from nasviz.viz.evolution import _figure

    if ax is None:  # a figure outside pyplot: shown once in a notebook, freed with its object
        ax = _figure(7, 3.5).subplots()
    fig = ax.figure
    styles = {"reward_mean": "-o", "reward_max": "-^", "baseline": "--"}
    for name in REWARD_SERIES:
        x, y = _update_series(history, name)
        if x:
            ax.plot(x, y, styles[name], ms=3, label=name.replace("_", " "))
    per_step = bool(history.select("step"))
    ax.set_xlabel("controller update" if per_step else "epoch")
    ax.set_ylabel("child validation accuracy")
    ax.grid(alpha=0.3)
    x, y = _update_series(history, "entropy")
    if x:
        twin = ax.twinx()
        twin.plot(x, y, ":", color="#7f7f7f", label="entropy (right)")
        twin.set_ylabel("controller entropy (nats)")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")
    ax.set_title(f"{history.method}: rewards per controller update")
    return fig


def top_cells(history: Any) -> list[tuple[float, NasnetGenotype]]:
    """(reward, genotype) of the best cells in the newest epoch record that lists them."""
    for r in reversed(history.epochs()):
        cells = r.get("extra", {}).get("top_cells")
        if cells:
            return [
                (float(c["reward"]), NasnetGenotype.from_dict(c["architecture"])) for c in cells
            ]
    return []


def save_run_plots(history: Any, out_dir: Any, dpi: int = 110) -> list[Any]:
    """`nasviz plot`'s NASNet pages: the reward curve and the top cells as block diagrams."""
    import shutil
    from pathlib import Path

    out = Path(out_dir)
    written = []
    if any(_update_series(history, n)[0] for n in REWARD_SERIES):
        fig = plot_rewards(history)
        fig.savefig(out / "nasnet_rewards.png", dpi=dpi)
        fig.clear()
        written.append(out / "nasnet_rewards.png")
    if shutil.which("dot") is None:
        return written
    for rank, (reward, genotype) in enumerate(top_cells(history), start=1):
        title = f"top cell {rank}: validation accuracy {reward:.4f}"
        path = out / f"nasnet_top{rank}.png"
        path.write_bytes(nasnet_graph(genotype, title=title).pipe(format="png"))
        written.append(path)
    return written
