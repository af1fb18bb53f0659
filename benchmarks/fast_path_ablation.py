"""What each part of the fast search step buys, measured in one process (CPU time, 1 thread).

    python benchmarks/fast_path_ablation.py            # C=8, 5 cells, 16x16, batch 8 and 32

Times a forward + backward of the supernet (DARTS and PC-DARTS K=4 mixing) for
  reference   every edge a MixedOp call (SearchNetwork(reference=True))
  shared      + per-state ReLU, pooling/BN and identity, one reduction per node (no grouping)
  per-op      + op k of the edges reading one state runs as grouped convolutions (one group per
              (state, op): the default before the merged groups)
  torch-dw    + merged groups (s0 and s1 together; sep_conv_3x3/5x5 and dil_conv_3x3 as one 5x5
              depthwise conv), with torch's own depthwise backward (CPU_FAST_BACKWARD off)
  grouped     the same with the cheaper CPU depthwise backward of nasviz.spaces.depthwise (default)
and one weight update (SGD momentum + weight decay, gradient clipping) with torch's default
per-tensor loop against nasviz.search.fast. Variants are interleaved and the minimum over
repeats is kept, so load from other processes hits all variants alike.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nasviz.search import fast
from nasviz.spaces import depthwise
from nasviz.spaces.darts import Mixing, PartialChannelMixing, SearchNetwork, SpaceConfig


def _net(mixing: str, variant: str) -> SearchNetwork:
    torch.manual_seed(0)
    mix = PartialChannelMixing(k=4) if mixing == "pc-darts" else Mixing()
    net = SearchNetwork(SpaceConfig(C=8, layers=5), mix, reference=variant == "reference")
    for cell in net.cells if variant in ("shared", "per-op") else []:
        cell._group_conv_ops(merge=False, grouped=variant == "per-op")
    return net


def _cpu_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = ("reference", "shared", "per-op", "torch-dw", "grouped")
    print(f"{'mixing':<9} {'batch':>5} " + " ".join(f"{v + ' ms':>13}" for v in variants))
    for mixing in ("darts", "pc-darts"):
        nets = {v: _net(mixing, v) for v in variants}
        for batch in args.batch:
            x, y = torch.randn(batch, 3, 16, 16), torch.randint(0, 10, (batch,))
            best = {v: float("inf") for v in variants}
            for _ in range(args.repeats):  # interleaved
                for v, net in nets.items():
                    depthwise.CPU_FAST_BACKWARD = v != "torch-dw"
                    t = _cpu_time(lambda n=net, x=x, y=y: F.cross_entropy(n(x), y).backward(), 1)
                    best[v] = min(best[v], t)
                depthwise.CPU_FAST_BACKWARD = True
            row = " ".join(f"{1e3 * best[v]:>13.0f}" for v in variants)
            gain = best["reference"] / best["grouped"]
            dw = best["torch-dw"] / best["grouped"]
            merged = best["per-op"] / best["grouped"]
            print(
                f"{mixing:<9} {batch:>5} {row}   reference/grouped = {gain:.2f}x, "
                f"per-op/grouped = {merged:.2f}x, torch-dw/grouped = {dw:.2f}x",
                flush=True,
            )

    net = nets["grouped"]
    params = net.weight_parameters()
    for p in params:
        p.grad = torch.randn_like(p)
    loop = torch.optim.SGD(params, 0.1, momentum=0.9, weight_decay=3e-4, foreach=False)
    fused = fast.weight_optimizer(params, 0.1, 0.9, 3e-4)
    loop.step(), fused.step()  # create the momentum buffers

    def default_update() -> None:
        torch.nn.utils.clip_grad_norm_(params, 5.0, foreach=False)
        loop.step()

    def fast_update() -> None:
        fast.clip_grad_norm(params, 5.0)
        fused.step()

    t_loop = min(_cpu_time(default_update, 1) for _ in range(5 * args.repeats))
    t_fast = min(_cpu_time(fast_update, 1) for _ in range(5 * args.repeats))
    print(
        f"weight update over {len(params)} tensors (clip + SGD): default loop {1e3 * t_loop:.1f} ms, "
        f"nasviz.search.fast {1e3 * t_fast:.1f} ms ({t_loop / t_fast:.1f}x)"
    )


if __name__ == "__main__":
    main()
