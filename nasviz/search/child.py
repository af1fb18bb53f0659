"""The derived child network evaluated with the supernet's weights, without retraining.

SNAS claims its child networks keep the search-time validation accuracy while DARTS's lose much
of it. `child_accuracy` measures that on any DARTS-family search: it evaluates the supernet as
the method does (DARTS: softmax mixture; PC-DARTS: with its betas; SNAS: sampled Z), then the
derived genotype in the same network and weights, by fixing the op weights to one-hot masks:

* each genotype edge gets weight 1 on its op; every other (edge, op) weight is 0, so DARTS edges
  outside the top-2 of a node vanish and SNAS edges that chose 'none' vanish;
* PC-DARTS edge weights (softmax of betas) are replaced by 1 on the kept edges.

No copy of the network is made: the override is a context manager on the live model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from nasviz.genotypes import Genotype
from nasviz.spaces.darts import SearchNetwork

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nasviz.search.supernet import SupernetSearch as Search


def one_hot_weights(
    genotype: Genotype, primitives: tuple[str, ...] | list[str], steps: int
) -> dict[str, torch.Tensor]:
    """Per cell type, the [edges, ops] 0/1 mask of a genotype's edges (none, absent edges: 0)."""
    ops = list(primitives)
    out = {}
    for cell in ("normal", "reduce"):
        mask = torch.zeros(sum(2 + i for i in range(steps)), len(ops))
        nodes = genotype.nodes(cell)
        if len(nodes) != steps:
            raise ValueError(f"genotype has {len(nodes)} {cell} nodes, the supernet {steps}")
        offset = 0
        for i, node in enumerate(nodes):
            for op, j in node:
                if op != "none":
                    mask[offset + j, ops.index(op)] = 1.0
            offset += i + 2
        out[cell] = mask
    return out


@contextlib.contextmanager
def fixed_op_weights(
    model: SearchNetwork, weights: dict[str, torch.Tensor]
) -> Iterator[SearchNetwork]:
    """Within the block the supernet mixes its edges with ``weights`` per cell type, edge weights 1.

    Shadows ``model.mixing.op_weights`` and ``model.betas`` with instance attributes and removes
    them on exit; nothing is copied, and no random number is drawn by the mixing.
    """
    alphas = model.alphas()
    device = alphas["normal"].device
    by_param = {id(alphas[c]): w.to(device) for c, w in weights.items()}
    mixing = model.mixing
    mixing.op_weights = lambda alpha: by_param[id(alpha)]  # type: ignore[method-assign]
    model.__dict__["betas"] = lambda: None  # no edge normalization: kept edges weigh 1
    try:
        yield model
    finally:
        del mixing.op_weights
        del model.__dict__["betas"]


def child_accuracy(search: Search, genotype: Genotype | None = None) -> dict[str, float]:
    """{"supernet_acc", "child_acc", "drop", "n"} on the search's validation data.

    drop = supernet_acc - child_acc; n = the number of validation images (for the noise level).
    The child is ``genotype`` (default: ``search.derive()``) in the supernet's weights, eval-mode
    BN. The global RNG is restored afterwards, so calling this never changes a later resumed run.
    """
    model = search.model
    genotype = genotype or search.derive()
    masks = one_hot_weights(genotype, model.primitives, model.config.steps)
    devices = [search.device] if search.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        _, supernet_acc = search.evaluate()
        with fixed_op_weights(model, masks):
            _, child_acc = search.evaluate()
    n = len(search.eval_loader.data)
    return {
        "supernet_acc": supernet_acc,
        "child_acc": child_acc,
        "drop": supernet_acc - child_acc,
        "n": n,
    }


def plot_child_vs_supernet(results: dict[str, dict[str, Any]]) -> Figure:
    """Bars of supernet vs child (no retraining) validation accuracy per method."""
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("no results to plot: pass {method: child_accuracy(search), ...}")
    names = list(results)
    fig = Figure(figsize=(3.0 + 1.6 * len(names), 3.4), layout="constrained")
    ax = fig.subplots()
    x = range(len(names))
    width = 0.38
    for shift, key, label in (
        (-width / 2, "supernet_acc", "supernet"),
        (width / 2, "child_acc", "child"),
    ):
        values = [results[n][key] for n in names]
        bars = ax.bar([i + shift for i in x], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("validation accuracy")
    ax.set_title("derived child without retraining vs supernet")
    fig.legend(loc="outside right upper", fontsize=8)  # beside the axes: it never covers a bar
    ax.grid(axis="y", alpha=0.3)
    return fig


__all__ = ["child_accuracy", "fixed_op_weights", "one_hot_weights", "plot_child_vs_supernet"]
