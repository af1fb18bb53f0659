"""Time the searches and the retraining a notebook's quick mode runs, outside the notebook.

    python benchmarks/quick_workloads.py 01 [02 03]
    PYTHONPATH=/path/to/older/checkout python benchmarks/quick_workloads.py 01   # another version

Each notebook's quick mode, with the notebook's own settings (01: a 4-epoch first-order DARTS
search, 3 second-order steps, a 2-epoch retraining; 02: the four PC-DARTS ablation searches of
3 epochs of 5 steps; 03: the SNAS searches of 4 epochs of 5 steps and the 2-epoch DARTS one),
each search `run_search(config, None, progress=False)`, timed by the wall clock (the first one
includes its imports), one JSON line per notebook. Searches an older version does not offer
(SNAS' relaxed resource gradient) are skipped and named. benchmarks/README.md, "Notebooks".
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import nasviz
from nasviz.search import preset, run_search
from nasviz.train import retrain, retrain_preset


def _search(config: Any) -> Any:
    return run_search(config, None, progress=False)


def _darts(timed: Callable) -> None:
    first = preset("darts", "quick", epochs=4, order=1, seed=0)
    result = timed("darts 1st order, 4 epochs", lambda: _search(first))
    second = first.replace(order=2, epochs=1, max_steps_per_epoch=3)
    timed("darts 2nd order, 3 steps", lambda: _search(second))
    config = retrain_preset("quick", epochs=2, seed=0)
    timed("retraining, 2 epochs", lambda: retrain(result.genotype, config, None, progress=False))


def _pc_darts(timed: Callable) -> None:
    k = preset("pc-darts", "quick").k
    for k_, en in ((k, True), (k, False), (1, True), (1, False)):
        config = preset(
            "pc-darts", "quick", epochs=3, warmup_epochs=1, max_steps_per_epoch=5, seed=0,
            k=k_, edge_normalization=en,
        )  # fmt: skip
        timed(f"pc-darts K={k_} edge norm. {'on' if en else 'off'}", lambda c=config: _search(c))


def _snas(timed: Callable) -> None:
    base = preset("snas", "quick", epochs=4, max_steps_per_epoch=5, seed=0, constraint="mild")
    timed("snas mild", lambda: _search(base))
    for constraint in ("mild", "aggressive"):
        config = base.replace(constraint=constraint)
        timed(f"snas {constraint} (ablation)", lambda c=config: _search(c))
    try:
        relaxed = base.replace(constraint="aggressive", resource_gradient="relaxed")
    except (TypeError, ValueError) as exc:  # an older version without the relaxed gradient
        print(f"skipped: snas aggressive, relaxed gradient ({exc})")
    else:
        timed("snas aggressive, relaxed gradient", lambda: _search(relaxed))
    darts = preset("darts", "quick", epochs=2, max_steps_per_epoch=5, seed=0)
    timed("darts 2 epochs", lambda: _search(darts))


WORKLOADS = {"01": _darts, "02": _pc_darts, "03": _snas}


def run(notebook: str) -> dict[str, Any]:
    parts: list[tuple[str, float]] = []

    def timed(name: str, fn: Callable) -> Any:
        t = time.perf_counter()
        out = fn()
        parts.append((name, round(time.perf_counter() - t, 1)))
        return out

    WORKLOADS[notebook](timed)
    library = nasviz.__file__.rsplit("/nasviz/", 1)[0]
    total = round(sum(t for _, t in parts), 1)
    return {"notebook": notebook, "library": library, "total_s": total, "parts": parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    for notebook in args.notebooks:
        print(json.dumps(run(notebook)), flush=True)


if __name__ == "__main__":
    main()
