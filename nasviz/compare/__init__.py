"""Compare search methods on one dataset, one split and one budget, against a random baseline.

    from nasviz.compare import CompareConfig, run_comparison, save_results
    cmp = run_comparison(CompareConfig(methods="darts,snas", seeds=2, random=4, out="runs/cmp"))
    cmp.frame()      # one row per (method, seed): cost, sizes, supernet/child/retrained accuracy
    cmp.summary()    # one row per method: mean over seeds, beats the random mean?, z
    save_results(cmp)  # comparison.csv, random.csv, summary.csv and the four plots in OUT

Layout: `config` (what to compare), `budget` (the shared split and budget), `protocol` (the
runs, each a normal run directory, resumable), `table` (DataFrames and the computed reading),
`plots` (figures). `nasviz compare` is the command-line face of the same functions.
"""

from __future__ import annotations

from pathlib import Path

from nasviz.compare.config import ALL_METHODS, BUDGETS, CompareConfig
from nasviz.compare.protocol import Comparison, Runner, run_comparison

CSV_FILES = ("comparison.csv", "random.csv", "summary.csv")


def save_results(comparison: Comparison, out: str | Path | None = None) -> list[Path]:
    """Write comparison.csv, random.csv, summary.csv and the plots (PNG) into ``out`` (default OUT)."""
    from nasviz.compare.plots import save_plots

    out = Path(out) if out is not None else comparison.out
    out.mkdir(parents=True, exist_ok=True)
    frames = (comparison.frame(), comparison.random_frame(), comparison.summary())
    paths = []
    for name, frame in zip(CSV_FILES, frames, strict=True):
        frame.to_csv(out / name, index=False)
        paths.append(out / name)
    return paths + save_plots(comparison, out)


__all__ = [
    "ALL_METHODS",
    "BUDGETS",
    "CSV_FILES",
    "CompareConfig",
    "Comparison",
    "Runner",
    "run_comparison",
    "save_results",
]
