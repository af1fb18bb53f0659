"""Verdicts computed from a run: what a notebook may say about its own search, and with what noise.

Every sentence a notebook prints about a run comes from here, so it is computed, never written
in advance: the share of probability mass on chosen ops over time (the skip-connect collapse),
whether a change is larger than the printing precision, and whether an accuracy difference is
larger than the validation set's sampling noise. pandas is imported inside the table helpers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasviz.history import SearchHistory

if TYPE_CHECKING:
    import pandas as pd

#: Ops of the DARTS space without weights (the search ops' BN has no affine parameters either).
PARAMETER_FREE: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect")
#: Smallest change of a probability share reported as a rise or a fall (it prints as 3 decimals).
SHARE_TOLERANCE = 0.005


def choice_share(
    history: SearchHistory, group: str, choices: Iterable[str], kind: str = "epoch"
) -> tuple[np.ndarray, np.ndarray]:
    """(x [T], mean over rows of the probability on ``choices`` [T]) for one history group."""
    spec = history.group_spec(group)
    cols = list(spec["cols"])
    wanted = list(choices)
    missing = [c for c in wanted if c not in cols]
    if missing:
        raise ValueError(f"group {group!r} has no choice {missing[0]!r}; choices: {cols}")
    x, values = history.group_series(group, kind)  # [T], [T, R, C]
    idx = [cols.index(c) for c in wanted]
    share = np.nansum(values[:, :, idx], axis=2)  # [T, R]
    return x, np.nanmean(share, axis=1)


def trend(start: float, end: float, tol: float = SHARE_TOLERANCE) -> str:
    """'rose', 'fell' or 'stayed level' (a change smaller than ``tol`` is no change)."""
    if end - start > tol:
        return "rose"
    if start - end > tol:
        return "fell"
    return "stayed level"


def count_ops(architecture: Any, cell: str, ops: Iterable[str]) -> int:
    """How many kept edges of ``cell`` use one of ``ops``."""
    wanted = set(ops)
    return sum(op in wanted for op, _ in architecture.edges(cell))


def collapse_report(
    history: SearchHistory, architecture: Any, cell: str = "normal", tol: float = SHARE_TOLERANCE
) -> dict[str, Any]:
    """Skip-connect and parameter-free shares of ``cell`` (first and last epoch), derived counts,
    and a verdict that says only what these numbers support."""
    group = f"alpha/{cell}"
    x, skip = choice_share(history, group, ["skip_connect"])
    _, free = choice_share(history, group, PARAMETER_FREE)
    n_ops = len(history.group_spec(group)["cols"])
    uniform_free = len(PARAMETER_FREE) / n_ops
    n_skip = count_ops(architecture, cell, ["skip_connect"])
    n_free = count_ops(architecture, cell, PARAMETER_FREE)
    n_edges = len(list(architecture.edges(cell)))
    skip_trend, free_trend = trend(skip[0], skip[-1], tol), trend(free[0], free[-1], tol)
    span = f"over {x[-1] - x[0]:g} epochs"
    if free_trend == "rose" and free[-1] > uniform_free + tol and n_skip >= 2:
        verdict = (
            f"this run shows the collapse signature: the parameter-free share rose above its "
            f"uniform level {span} and the derived {cell} cell has {n_skip} skip_connect edges"
        )
    elif skip_trend == "rose" or free_trend == "rose":
        verdict = (
            f"a drift towards parameter-free ops {span} (skip_connect {skip_trend}, parameter-free "
            f"{free_trend}), but not the collapse: the derived {cell} cell has {n_skip} "
            f"skip_connect of {n_edges} edges"
        )
    else:
        verdict = (
            f"no sign of the collapse in this run: skip_connect {skip_trend} and parameter-free "
            f"{free_trend} {span} (changes under {tol:g} count as level); the derived {cell} cell "
            f"has {n_skip} skip_connect of {n_edges} edges"
        )
    return {
        "epochs": x,
        "skip_share": skip,
        "free_share": free,
        "skip_trend": skip_trend,
        "free_trend": free_trend,
        "uniform_skip": 1 / n_ops,
        "uniform_free": uniform_free,
        "derived_skip": n_skip,
        "derived_free": n_free,
        "derived_edges": n_edges,
        "verdict": verdict,
    }


def accuracy_noise(acc: float, n: int, z: float = 2.0) -> float:
    """``z`` standard errors of an accuracy measured on ``n`` images: z * sqrt(acc (1 - acc) / n).

    With a floor of one image (1/n), so a perfect or zero accuracy still has a resolution.
    """
    if n <= 0:
        raise ValueError(f"n must be a positive number of images, got {n}")
    acc = min(max(float(acc), 0.0), 1.0)
    return max(z * math.sqrt(acc * (1 - acc) / n), 1.0 / n)


def validation_size(config: Any) -> int:
    """Images in the validation split a DARTS-family search of ``config`` evaluates on."""
    from nasviz.data import load_dataset, search_split

    train = load_dataset(config.dataset, "train", root=config.data_root, download=False)
    return len(search_split(train, config.train_portion)[1])


def child_claim_verdict(
    child: Mapping[str, Mapping[str, float]], n_val: int, chance: float | None = None
) -> str:
    """SNAS's claim (its child keeps the supernet's accuracy, DARTS's loses it), judged on one run.

    ``child`` holds `nasviz.search.child.child_accuracy` results under "SNAS" and "DARTS"; a
    drop counts only if it is larger than the validation set's noise (`accuracy_noise`). With
    ``chance`` (e.g. 1/classes), a supernet no better than chance has no accuracy to keep or lose.
    """
    snas, darts = child["SNAS"], child["DARTS"]
    tol_s = accuracy_noise(snas["supernet_acc"], n_val)
    tol_d = accuracy_noise(darts["supernet_acc"], n_val)
    d_s, d_d = snas["drop"], darts["drop"]
    noise = f"(noise: ±{tol_s:.3f} / ±{tol_d:.3f} on {n_val} validation images)"
    if chance is not None:
        for name, res, tol in (("SNAS", snas, tol_s), ("DARTS", darts, tol_d)):
            if res["supernet_acc"] <= chance + tol:
                return (
                    f"this run does not test the claim: the {name} supernet is at chance level "
                    f"({res['supernet_acc']:.3f}, chance {chance:.3f}), so it has no accuracy to "
                    f"keep or lose {noise}"
                )
    if d_d <= tol_d:
        return (
            f"this run does not test the claim: the DARTS child dropped {d_d:+.3f}, no more than "
            f"noise {noise}, so there is no loss for SNAS to avoid"
        )
    if d_s <= tol_s:
        return (
            f"this run agrees with the claim: the SNAS child kept its accuracy ({d_s:+.3f}) while "
            f"the DARTS child lost {d_d:+.3f} {noise}"
        )
    if d_d - d_s > tol_d:
        return (
            f"this run partly agrees: both children lost accuracy, DARTS more ({d_d:+.3f} vs "
            f"{d_s:+.3f}) {noise}"
        )
    return (
        f"this run does not reproduce the claim: the SNAS child dropped {d_s:+.3f}, the DARTS "
        f"child {d_d:+.3f} {noise}"
    )


def compare_accuracies(a: float, b: float, n: int) -> str:
    """'higher', 'lower' or 'the same within noise' for accuracy ``a`` against ``b`` on n images."""
    tol = accuracy_noise(max(a, b), n)
    if a - b > tol:
        return "higher"
    if b - a > tol:
        return "lower"
    return "the same within noise"


def edges_differing(a: Any, b: Any, cells: Sequence[str] = ("normal", "reduce")) -> int:
    """How many kept (op, input) edges of ``a`` are not in ``b`` (over ``cells``)."""
    diff = 0
    for cell in cells:
        for node_a, node_b in zip(a.nodes(cell), b.nodes(cell), strict=True):
            kept = {tuple(edge) for edge in node_b}
            diff += sum(1 for edge in node_a if tuple(edge) not in kept)
    return diff


def pooling_bn_parameters(
    model: Any, input_shape: Sequence[int] = (1, 3, 32, 32)
) -> tuple[int, int]:
    """(pooling ops in the cells, parameters an affine BN after each would add: 2 per channel).

    SNAS's evaluation network follows each pooling op with an affine BN; DARTS's has none.
    """
    import torch
    from torch import nn

    channels: list[int] = []  # output channels of each pooling op, recorded in one forward

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        channels.append(int(output.shape[1]))

    pools = [m for m in model.cells.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    handles = [m.register_forward_hook(hook) for m in pools]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(tuple(input_shape)))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return len(channels), 2 * sum(channels)


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A pandas DataFrame of result rows (only ``columns``, in that order, when given)."""
    import pandas as pd

    data = pd.DataFrame(list(rows))
    return data[list(columns)] if columns is not None else data


__all__ = [
    "PARAMETER_FREE",
    "SHARE_TOLERANCE",
    "accuracy_noise",
    "child_claim_verdict",
    "choice_share",
    "collapse_report",
    "compare_accuracies",
    "count_ops",
    "edges_differing",
    "frame",
    "pooling_bn_parameters",
    "trend",
    "validation_size",
]
