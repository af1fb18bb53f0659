"""One conv op of all the edges that read the same state, run as grouped convolutions.

In a search cell, state j feeds E edges (4, 4, 3, 2 for s0, s1, node 0, node 1), and each edge
has its own sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5. The E copies of one op share
the input and the shapes and differ only in weights, so they can run side by side as one wider
op: the input ReLU(x) [B, c, H, W] is repeated to [B, E*c, H, W] (edge-major), then

* depthwise kxk:  one conv with groups=E*c and the E weights concatenated [E*c, 1, k, k]
                  (`depthwise_conv2d`: on CPU with a cheaper backward, see nasviz.spaces.depthwise);
* pointwise 1x1:  one conv with groups=E (edge e sees only its own c channels) [E*c, c, 1, 1];
* BN:             one batch norm over E*c channels; BN is per channel, so this is E BNs.

A sep_conv is two such blocks: 8 kernels instead of 8*E (plus 4 weight concatenations), so a
small supernet, where every kernel is tiny and the per-kernel cost dominates, runs several times
fewer kernels per step. The weights stay the edges' own parameters (same names, counts,
initialization and optimizer); each BN's running statistics become views into one flat buffer
per block, so the wide BN updates every edge's statistics in place (`tie_buffers`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.spaces.depthwise import depthwise_conv2d
from nasviz.spaces.operations import DilConv, SepConv


def groupable(op: nn.Module) -> bool:
    """True for the ops `GroupedOps` can run: DARTS sep_conv / dil_conv blocks."""
    return type(op) in (SepConv, DilConv)


class GroupedOps:
    """The same SepConv or DilConv of E edges reading one state (the modules stay the edges')."""

    def __init__(self, ops: list[nn.Module]):
        self.E = len(ops)
        # blocks[i][e]: the i-th ReLU-depthwise-pointwise-BN block (a DilConv) of edge e's op
        self.blocks: list[list[DilConv]] = [
            [op[i] if isinstance(op, SepConv) else op for op in ops]
            for i in range(2 if isinstance(ops[0], SepConv) else 1)
        ]
        self.flat: list[dict[str, torch.Tensor]] = []
        self.tie_buffers()

    def tie_buffers(self) -> None:
        """Make each block's BN running statistics views into one flat [E*c] buffer."""
        self.flat = []
        for block in self.blocks:
            bns = [b[3] for b in block]
            flat = {}
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                parts = [getattr(bn, name) for bn in bns]
                if any(p is None for p in parts):
                    flat = {}
                    break
                flat[name] = torch.cat([p.reshape(-1) for p in parts])
                views = flat[name].split([p.numel() for p in parts])
                for bn, v, p in zip(bns, views, parts, strict=True):
                    setattr(bn, name, v.view(p.shape))
            self.flat.append(flat)

    def _tied(self, i: int) -> bool:
        flat = self.flat[i]
        if not flat:
            return False
        c = flat["running_mean"].numel() // self.E
        bn = self.blocks[i][0][3]
        m = bn.running_mean
        # still a view of the flat buffer (not replaced by functional_call, load, a transform)
        return (
            m is not None
            and m.untyped_storage().data_ptr() == flat["running_mean"].untyped_storage().data_ptr()
            and m.numel() == c
        )

    def usable(self) -> bool:
        """True if the modules still are plain ReLU-conv-conv-BN blocks with momentum BN."""
        for block in self.blocks:
            for b in block:
                if type(b[0]) is not nn.ReLU or type(b[3]) is not nn.BatchNorm2d:
                    return False
                if b[3].momentum is None:  # cumulative averaging: leave it to the module
                    return False
        return True

    def __call__(self, x_rep: torch.Tensor) -> list[torch.Tensor]:
        """x_rep = ReLU(x) repeated E times [B, E*c, H, W] -> the E edges' outputs."""
        x = x_rep
        for i, block in enumerate(self.blocks):
            if i:
                x = F.relu(x)
            dw = block[0][1]
            w = torch.cat([b[1].weight for b in block])  # [E*c, 1, k, k]
            x = depthwise_conv2d(x, w, dw.stride, dw.padding, dw.dilation)
            x = F.conv2d(x, torch.cat([b[2].weight for b in block]), None, groups=self.E)
            x = self._batch_norm(i, x)
        return list(x.chunk(self.E, dim=1))

    def _batch_norm(self, i: int, x: torch.Tensor) -> torch.Tensor:
        bns = [b[3] for b in self.blocks[i]]
        bn = bns[0]
        weight = torch.cat([b.weight for b in bns]) if bn.affine else None
        bias = torch.cat([b.bias for b in bns]) if bn.affine else None
        if bn.running_mean is None:  # no running statistics (e.g. frozen for torch.func)
            return F.batch_norm(x, None, None, weight, bias, True, 0.0, bn.eps)
        if not self._tied(i):  # buffers were swapped out: run each edge's BN on its channels
            return torch.cat([b(part) for b, part in zip(bns, x.chunk(self.E, 1), strict=True)], 1)
        flat = self.flat[i]
        training = bn.training or not bn.track_running_stats
        if bn.training and bn.track_running_stats:
            flat["num_batches_tracked"].add_(1)
        return F.batch_norm(
            x, flat["running_mean"], flat["running_var"], weight, bias, training,
            bn.momentum, bn.eps,
        )  # fmt: skip


__all__ = ["GroupedOps", "groupable"]
