"""Where the time of one search step goes: torch.profiler over one architecture + weight step.

    python benchmarks/profile_step.py --impl nasviz --case "PC-DARTS K=4"
    python benchmarks/profile_step.py --impl official --official /tmp/pcdarts --case "PC-DARTS K=4"
    python benchmarks/profile_step.py --impl nasviz --nasviz /tmp/nasviz_before ...   # older code

Prints the operator calls per step (every profiled aten/autograd event: what the eager runtime
dispatches), the allocations (``aten::empty*``) and the top ops by self CPU time, averaged over
``--steps`` profiled steps after a warm-up. Same builders, shapes and batches as
compare_official.py (small CPU configuration by default).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_official as co  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=("nasviz", "official"), default="nasviz")
    parser.add_argument("--case", default="PC-DARTS K=4", choices=[c[0] for c in co.CASES])
    parser.add_argument("--official", help="PC-DARTS checkout")
    parser.add_argument("--official-darts", help="DARTS checkout")
    parser.add_argument("--nasviz", help="import nasviz from this checkout (default: this one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fast-optim", action="store_true")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    if args.nasviz:
        sys.path.insert(0, args.nasviz)
        os.chdir(args.nasviz)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name, method, over = next(c for c in co.CASES if c[0] == args.case)
    k, order = over.get("k", 1), over.get("order", 1)
    cuda = device.type == "cuda"
    shape = co.Shape(16 if cuda else 8, 8 if cuda else 5, 32 if cuda else 16, args.batch)
    gen = torch.Generator().manual_seed(0)
    size = (shape.batch, 3, shape.image_size, shape.image_size)
    x, xv = (torch.randn(size, generator=gen).to(device) for _ in range(2))
    y, yv = (torch.randint(0, 10, (shape.batch,), generator=gen).to(device) for _ in range(2))
    if args.impl == "official":
        src = args.official_darts if method == "darts" else args.official
        if not src:
            raise ValueError(f"--official{'-darts' if method == 'darts' else ''} PATH is needed")
        code = co.patched_copy(co.official_root(src, method), args.device)
        step, _, _ = co.official_step(method, code, shape, device, k, order)
    else:
        step, _, _ = co.nasviz_step(method, shape, device, k, order, args.fast_optim)
    for _ in range(2):
        step(x, y, xv, yv)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(args.steps):
            step(x, y, xv, yv)
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    calls = sum(e.count for e in events) / args.steps
    allocs = sum(e.count for e in events if e.key.startswith("aten::empty")) / args.steps
    total = sum(e.self_cpu_time_total for e in events) / args.steps / 1e3
    print(
        f"{args.impl} {name} batch={args.batch} threads={args.threads}: {calls:,.0f} operator "
        f"calls/step, {allocs:,.0f} allocations/step, {total:.0f} ms self CPU/step"
    )
    print(f"{'op':<46} {'self ms/step':>12} {'%':>6} {'calls/step':>11}")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
        ms = e.self_cpu_time_total / args.steps / 1e3
        print(
            f"{e.key[:46]:<46} {ms:>12.1f} {100 * ms / total:>6.1f} {e.count / args.steps:>11.0f}"
        )


if __name__ == "__main__":
    main()
