"""A comparison as data: one pandas row per (method, seed), per random architecture, per method.

Accuracies: ``supernet_acc`` and ``child_acc`` are on the search's held-out validation split,
before any retraining (`Search.subnet_gap`: the supernet as the method evaluates it, the derived
child with the supernet's weights; NASNet has no supernet, its ``child_acc`` is the derived
child's reward); ``retrained_acc`` is the test accuracy after retraining from scratch.

The random baseline of a row is the random cloud of its search space: ``random_mean`` and
``random_std`` (sample standard deviation, n - 1) of the random architectures' retrained test
accuracy; ``z_vs_random`` = (retrained_acc - random_mean) / random_std, how many standard
deviations of the random cloud the searched architecture lies above (negative: below) its mean;
``beats_random`` = retrained_acc > random_mean. Nothing here is tuned: the table reports what came out.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from nasviz.compare.protocol import Comparison

#: The columns of `comparison_frame`, in order.
COLUMNS: tuple[str, ...] = (
    "method", "seed", "space", "epochs", "budget_images", "search_seconds", "images_per_second",
    "peak_memory_mb", "params", "flops", "supernet_acc", "child_acc", "retrained_acc",
    "random_mean", "random_std", "random_n", "beats_random", "z_vs_random", "architecture",
    "search_dir", "retrain_dir",
)  # fmt: skip

RANDOM_COLUMNS: tuple[str, ...] = (
    "space", "index", "seed", "params", "flops", "retrained_acc", "architecture", "retrain_dir",
)  # fmt: skip

SUMMARY_COLUMNS: tuple[str, ...] = (
    "method", "seeds", "retrained_mean", "retrained_std", "best", "search_seconds",
    "child_acc", "supernet_acc", "random_mean", "random_std", "beats_random", "z_vs_random",
)  # fmt: skip


def random_stats(accs: list[float]) -> tuple[float, float, int]:
    """(mean, sample std, n) of random architectures' accuracies (NaN where undefined)."""
    a = np.asarray([x for x in accs if math.isfinite(x)], dtype=float)
    mean = float(a.mean()) if len(a) else math.nan
    std = float(a.std(ddof=1)) if len(a) > 1 else math.nan
    return mean, std, len(a)


def z_score(value: float, mean: float, std: float) -> float:
    """(value - mean) / std; NaN when the spread is unknown or zero."""
    if not (math.isfinite(value) and math.isfinite(mean) and math.isfinite(std)) or std == 0:
        return math.nan
    return (value - mean) / std


def beats(value: float, mean: float) -> bool | None:
    """value > mean, or None when either is unknown."""
    if not (math.isfinite(value) and math.isfinite(mean)):
        return None
    return bool(value > mean)


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """One row per (method, seed), `COLUMNS`."""
    import pandas as pd

    stats = {
        space: random_stats([r.test_acc for r in runs]) for space, runs in comparison.random.items()
    }
    rows = []
    for s in comparison.searches:
        r = comparison.retrains[(s.method, s.seed)]
        mean, std, n = stats.get(s.space, (math.nan, math.nan, 0))
        seconds = s.search_seconds()
        rows.append(
            {
                "method": s.method, "seed": s.seed, "space": s.space, "epochs": s.config.epochs,
                "budget_images": s.budget_images(), "search_seconds": seconds,
                "images_per_second": s.budget_images() / seconds if seconds > 0 else math.nan,
                "peak_memory_mb": s.peak_memory_mb(), "params": r.params, "flops": r.flops,
                "supernet_acc": s.gap.get("supernet_acc", math.nan),
                "child_acc": s.gap.get("child_acc", math.nan), "retrained_acc": r.test_acc,
                "random_mean": mean, "random_std": std, "random_n": n,
                "beats_random": beats(r.test_acc, mean),
                "z_vs_random": z_score(r.test_acc, mean, std),
                "architecture": json.dumps(s.architecture.to_dict(), sort_keys=True),
                "search_dir": str(s.out), "retrain_dir": str(r.out),
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def random_frame(comparison: Comparison) -> pd.DataFrame:
    """One row per random architecture, `RANDOM_COLUMNS`."""
    import pandas as pd

    rows = [
        {
            "space": space, "index": i, "seed": r.seed, "params": r.params, "flops": r.flops,
            "retrained_acc": r.test_acc,
            "architecture": json.dumps(r.architecture.to_dict(), sort_keys=True),
            "retrain_dir": str(r.out),
        }
        for space, runs in comparison.random.items()
        for i, r in enumerate(runs)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(RANDOM_COLUMNS))


def method_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method: retrained accuracy over seeds (mean, std, best), and the mean vs random."""
    import pandas as pd

    rows = []
    for method, g in frame.groupby("method", sort=False):
        acc = g["retrained_acc"].astype(float)
        mean = float(acc.mean())
        r_mean, r_std = float(g["random_mean"].iloc[0]), float(g["random_std"].iloc[0])
        rows.append(
            {
                "method": method, "seeds": len(g), "retrained_mean": mean,
                "retrained_std": float(acc.std(ddof=1)) if len(g) > 1 else math.nan,
                "best": float(acc.max()), "search_seconds": float(g["search_seconds"].mean()),
                "child_acc": float(g["child_acc"].astype(float).mean()),
                "supernet_acc": float(g["supernet_acc"].astype(float).mean()),
                "random_mean": r_mean, "random_std": r_std, "beats_random": beats(mean, r_mean),
                "z_vs_random": z_score(mean, r_mean, r_std),
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without the long text columns (architecture JSON, directories), for printing."""
    return frame.drop(
        columns=[c for c in ("architecture", "search_dir", "retrain_dir") if c in frame]
    )


def _fmt(x: float, spec: str = ".3f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def _names(rows: pd.DataFrame) -> str:
    """'darts', or 'darts and nasnet (tied)' when several methods share the value."""
    names = list(rows["method"])
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} (tied)"


def reading(summary: pd.DataFrame, frame: pd.DataFrame, budget: Any = None) -> list[str]:
    """Sentences about the results, every figure computed from the tables.

    With the comparison's `Budget`, a search that spent more than 10% off it is named (a NASNet
    update cannot be cut below M whole children; a wall-clock budget is an estimate).
    """
    lines = []
    if summary.empty:
        return ["no method finished"]
    if budget is not None:
        column, unit = (
            ("budget_images", "training images") if budget.kind == "images"
            else ("search_seconds", "seconds")
        )  # fmt: skip
        for _, row in frame.iterrows():
            spent = float(row[column])
            if abs(spent - budget.value) > 0.1 * budget.value:
                lines.append(
                    f"{row['method']} seed {row['seed']} spent {spent:,.0f} {unit}, "
                    f"{(spent / budget.value - 1):+.0%} off the budget of {budget.value:,.0f}"
                )
    means = summary["retrained_mean"].astype(float)
    top = summary[means == means.max()]  # every method at the extreme: a tie is named as one
    low = summary[means == means.min()]
    seeds = sorted({int(n) for n in top["seeds"]})
    n_seeds = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    lines.append(
        f"highest mean retrained accuracy: {_names(top)} ({_fmt(means.max())} over "
        f"{n_seeds} seed(s)); lowest: {_names(low)} ({_fmt(means.min())})"
    )
    for _, row in summary.iterrows():
        spread = row["retrained_std"]
        z, verdict = row["z_vs_random"], row["beats_random"]
        if verdict is None:
            vs = "no random baseline to compare with"
        else:
            where = "above" if verdict else "not above"
            vs = f"{where} the random mean {_fmt(row['random_mean'])} (z = {_fmt(z, '+.2f')})"
            if math.isfinite(z) and abs(z) < 1:
                vs += ", within one random std: no evidence the search beat random here"
        seed_txt = f"seed std {_fmt(spread)}" if math.isfinite(spread) else "one seed: no spread"
        lines.append(f"{row['method']}: {_fmt(row['retrained_mean'])} ({seed_txt}); {vs}")
    gaps = frame.dropna(subset=["supernet_acc", "child_acc"])
    for method, g in gaps.groupby("method", sort=False):
        drop = float((g["supernet_acc"] - g["child_acc"]).mean())
        lines.append(
            f"{method}: supernet {_fmt(float(g['supernet_acc'].mean()))} -> child with inherited "
            f"weights {_fmt(float(g['child_acc'].mean()))} (drop {_fmt(drop, '+.3f')}) -> "
            f"retrained {_fmt(float(g['retrained_acc'].mean()))}"
        )
    no_super = frame[frame["supernet_acc"].isna() & frame["child_acc"].notna()]
    for method, g in no_super.groupby("method", sort=False):
        lines.append(
            f"{method}: child reward {_fmt(float(g['child_acc'].mean()))} -> retrained "
            f"{_fmt(float(g['retrained_acc'].mean()))}"
        )
    return lines


__all__ = [
    "COLUMNS",
    "RANDOM_COLUMNS",
    "SUMMARY_COLUMNS",
    "beats",
    "comparison_frame",
    "display_frame",
    "method_summary",
    "random_frame",
    "random_stats",
    "reading",
    "z_score",
]
