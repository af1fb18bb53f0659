"""The SNAS resource-constraint ablation (`nasviz.search.snas.resource_ablation`) as a table, a
plot of what λ did to the architecture distribution, and a reading computed from its rows.

The rows are what `resource_ablation` returns (one dict per constraint, seed and resource-gradient
estimator); nothing here runs a search. matplotlib and pandas are imported when a function needs
them, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Row = dict[str, Any]

#: column of a row -> short header (so the table fits a notebook column)
TABLE_COLUMNS = {
    "constraint": "constraint",
    "resource_gradient": "gradient",
    "seed": "seed",
    "resource_lambda": "λ",
    "params (M)": "params (M)",
    "none_edges": "none edges",
    "expected_penalty_change": "E[penalty] change",
    "val_acc": "val acc",
    "search_seconds": "s",
}
_ROUNDING = {"params (M)": 2, "E[penalty] change": 5, "val acc": 3, "s": 1}
_LOG_AXIS_ZERO = 1e-3  # where λ = 0 is drawn on the log axis


def ablation_table(rows: Sequence[Row]) -> Any:
    """A DataFrame of the ablation, one row per search, short headers, rounded for reading."""
    from nasviz.analysis import frame

    rows = [{**r, "params (M)": r["params"] / 1e6} for r in rows]
    table = frame(rows, list(TABLE_COLUMNS)).rename(columns=TABLE_COLUMNS)
    return table.round(_ROUNDING)


def penalty_change_plot(rows: Sequence[Row], ax: Any = None) -> Any:
    """The change of the expected penalty over the search against λ, one marker per estimator."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    else:
        fig = ax.figure
    estimators = list(dict.fromkeys(r["resource_gradient"] for r in rows))
    for i, est in enumerate(estimators):
        sel = [r for r in rows if r["resource_gradient"] == est]
        lam = np.array([r["resource_lambda"] for r in sel], dtype=float)
        x = np.where(lam > 0, lam, _LOG_AXIS_ZERO)
        y = [r["expected_penalty_change"] for r in sel]
        ax.scatter(x, y, marker="os^D"[i % 4], label=f"{est} gradient")
        offset = (5, 4) if i % 2 == 0 else (5, -11)  # alternate above/below: labels do not overlap
        for xv, yv, r in zip(x, y, sel, strict=True):
            ax.annotate(
                r["constraint"], (xv, yv), fontsize=8, xytext=offset, textcoords="offset points"
            )
    ax.axhline(0, color="gray", lw=0.8)
    ax.set(
        xscale="log", xlabel=f"λ (none drawn at {_LOG_AXIS_ZERO:g})", ylabel="change of E[penalty]",
        title="what the constraint did to the architecture distribution",
    )  # fmt: skip
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def constraint_means(rows: Sequence[Row], estimator: str = "paper") -> dict[str, dict[str, float]]:
    """Per constraint (in the rows' order), the means over seeds of one estimator's rows."""
    out: dict[str, dict[str, float]] = {}
    for c in dict.fromkeys(r["constraint"] for r in rows):
        sel = [r for r in rows if r["constraint"] == c and r["resource_gradient"] == estimator]
        if sel:
            out[c] = {
                "params": float(np.mean([r["params"] for r in sel])),
                "none_edges": float(np.mean([r["none_edges"] for r in sel])),
                "expected_penalty_change": float(
                    np.mean([r["expected_penalty_change"] for r in sel])
                ),
                "seeds": float(len(sel)),
            }
    return out


def ablation_reading(rows: Sequence[Row], estimator: str = "paper") -> list[str]:
    """Sentences about this ablation, each computed from its rows."""
    means = constraint_means(rows, estimator)
    lines = [
        f"{c:>10}: mean {m['params'] / 1e6:.2f}M params, {m['none_edges']:.1f} none edges, "
        f"E[penalty] change {m['expected_penalty_change']:+.5f} over {m['seeds']:.0f} seed(s)"
        for c, m in means.items()
    ]
    if len(means) >= 2:
        (weak, mw), (strong, ms) = list(means.items())[0], list(means.items())[-1]
        falls = ms["expected_penalty_change"] < mw["expected_penalty_change"]
        lines.append(
            f"this run: E[penalty] {'fell more' if falls else 'did not fall more'} under "
            f"{strong!r} ({ms['expected_penalty_change']:+.5f}) than under {weak!r} "
            f"({mw['expected_penalty_change']:+.5f})"
        )
    for r in rows:
        if r["resource_gradient"] == estimator:
            continue
        same = [
            p for p in rows
            if p["resource_gradient"] == estimator
            and (p["constraint"], p["seed"]) == (r["constraint"], r["seed"])
        ]  # fmt: skip
        if same:
            lines.append(
                f"{r['constraint']}, seed {r['seed']}: E[penalty] change "
                f"{same[0]['expected_penalty_change']:+.5f} ({estimator} gradient) vs "
                f"{r['expected_penalty_change']:+.5f} ({r['resource_gradient']})"
            )
    return lines


__all__ = [
    "TABLE_COLUMNS",
    "ablation_reading",
    "ablation_table",
    "constraint_means",
    "penalty_change_plot",
]
