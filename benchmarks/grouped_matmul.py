"""Time the grouped 1x1 conv's matmul with and without folding the batch into the columns.

    python benchmarks/grouped_matmul.py [--batch 64 8 32] [--repeats 30]

For each (batch, groups, channels, pixels) it runs `nasviz.spaces.functions.grouped_matmul`
forward, and forward + backward, with `FOLD_MAX_PIXELS` at 0 (the broadcast matmul: B*g
products) and at a large value (the fold: g products with the batch in the columns), one
thread, and prints the median milliseconds (benchmarks/README.md, item 28).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nasviz.spaces import functions  # noqa: E402

SHAPES = [  # (groups, out, in, pixels): the small DARTS supernet's groups on 8x8 digits
    (24, 32, 32, 4), (16, 32, 32, 4), (6, 32, 32, 4), (24, 16, 16, 16), (6, 16, 16, 16),
    (24, 8, 8, 64), (24, 16, 16, 64), (24, 8, 8, 256),
]  # fmt: skip


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def timings(batch: int, shape: tuple[int, int, int, int], fold: bool, repeats: int):
    g, o, c, n = shape
    w = torch.randn(g, o, c, requires_grad=True)
    x = torch.randn(batch, g, c, n, requires_grad=True)
    grad = torch.randn(batch, g, o, n)
    functions.FOLD_MAX_PIXELS = 10**9 if fold else 0

    def forward():
        with torch.no_grad():
            functions.grouped_matmul(w, x)

    def both():
        torch.autograd.grad(functions.grouped_matmul(w, x), (w, x), grad)

    return median_ms(forward, repeats), median_ms(both, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 8, 32])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    default = functions.FOLD_MAX_PIXELS
    print(
        "batch groups [out, in] pixels | forward broadcast / fold ms | fwd+bwd broadcast / fold ms"
    )
    try:
        for batch in args.batch:
            for shape in SHAPES:
                (f0, b0), (f1, b1) = (timings(batch, shape, fold, args.repeats) for fold in (0, 1))
                g, o, c, n = shape
                print(
                    f"{batch:5d} {g:6d} [{o:2d}, {c:2d}] {n:6d} | {f0:7.3f} / {f1:7.3f} | "
                    f"{b0:7.3f} / {b1:7.3f}" + ("   <- folded by default" if n <= default else "")
                )
    finally:
        functions.FOLD_MAX_PIXELS = default


if __name__ == "__main__":
    main()
