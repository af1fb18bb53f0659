"""Conv ops of all the edges that read the same states, run as grouped convolutions.

In a search cell, state j feeds E edges (4, 4, 3, 2, 1 for s0, s1, nodes 0-2), and each edge
has its own sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5. All of them start with
ReLU(x), a depthwise conv, a 1x1 conv and a BN, and differ only in weights and kernel, so the
copies can run side by side as one wider op ("members", one per (op, edge)). The members' inputs
(ReLU of the state each one reads) are laid side by side, [B, n*c, H, W], then

* depthwise:      one conv with groups=n*c over the n weights concatenated [n*c, 1, K, K]
                  (`depthwise_conv2d`: on CPU with a cheaper backward, see nasviz.spaces.depthwise);
* pointwise 1x1:  one conv with groups=n (member m sees only its own c channels) [n*c, c, 1, 1];
* BN:             one batch norm over n*c channels; BN is per channel, so this is n BNs.

Different kernels share one depthwise conv by embedding: a kxk kernel with dilation d is a
K x K kernel (K = d*(k-1)+1 and larger, centred) with zeros in the taps it skips, and with
"same" padding (K-1)/2 it reads the same pixels, on stride-2 edges too. So sep_conv_3x3,
sep_conv_5x5 and dil_conv_3x3 (receptive field 5) are one 5x5 depthwise conv; dil_conv_5x5
(receptive field 9: embedding it would make the others 81-tap) runs as its own group. The zero
taps add exact zeros to the sums. The sep_conv members come first, and only they run the second
block (ReLU, depthwise, 1x1, BN; stride 1).

On a small supernet every kernel is tiny and its fixed cost dominates (a depthwise conv of
[8, 8, 4, 4] costs about as much as one of [8, 128, 4, 4]: measured in benchmarks/README.md), so
fewer, wider kernels are what makes a step fast. The weights stay the edges' own parameters
(same names, counts, initialization and optimizer); each block's BN running statistics become
views into one flat buffer, so the wide BN updates every member's statistics in place
(`tie_buffers`).

The stride-2 skip_connects (FactorizedReduce) of the edges reading one state run side by side
the same way (`GroupedReduce`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.spaces.batchnorm import batch_norm
from nasviz.spaces.depthwise import depthwise_conv2d
from nasviz.spaces.functions import grouped_matmul
from nasviz.spaces.operations import DilConv, FactorizedReduce, SepConv, factorized_convs

EMBED_UP_TO = 5
"""Members whose receptive field is at most this share one EMBED_UP_TO x EMBED_UP_TO depthwise
conv (sep_conv_3x3, sep_conv_5x5, dil_conv_3x3); larger ones (dil_conv_5x5: 9) group alone."""


def groupable(op: nn.Module) -> bool:
    """True for the ops `GroupedOps` can run: DARTS sep_conv / dil_conv blocks, "same" padding."""
    if type(op) not in (SepConv, DilConv):
        return False
    conv = (op[0] if isinstance(op, SepConv) else op)[1]
    k, d, p = conv.kernel_size[0], conv.dilation[0], conv.padding[0]
    return (
        conv.kernel_size[0] == conv.kernel_size[1] and isinstance(p, int) and 2 * p == d * (k - 1)
    )


def receptive_field(op: nn.Module) -> int:
    """d*(k-1)+1 of the op's depthwise kernel."""
    conv = (op[0] if isinstance(op, SepConv) else op)[1]
    return conv.dilation[0] * (conv.kernel_size[0] - 1) + 1


def family(op: nn.Module) -> tuple:
    """Ops of one family can be members of one group (same depthwise geometry after embedding)."""
    conv = (op[0] if isinstance(op, SepConv) else op)[1]
    if receptive_field(op) <= EMBED_UP_TO:
        return ("embedded", EMBED_UP_TO)
    return ("own", conv.kernel_size[0], conv.dilation[0])


def _embed(w: torch.Tensor, kernel: int, dilation: int, size: int) -> torch.Tensor:
    """[n, 1, k, k] kernels with dilation d as [n, 1, size, size] dilation-1 kernels (centred)."""
    field = dilation * (kernel - 1) + 1
    if dilation == 1 and kernel == size:
        return w
    off = (size - field) // 2
    if dilation == 1:
        return F.pad(w, (off, off, off, off))
    out = w.new_zeros(w.shape[0], 1, size, size)
    out[:, :, off : off + field : dilation, off : off + field : dilation] = w
    return out


MATMUL_MIN_GROUPS = 2
"""Grouped 1x1 convs with at least this many groups run as one broadcast matmul on CPU (0: never).
At batch < 16 torch splits a grouped 1x1 conv into one THNN call per group (its rule: one
thread, batch < 16); measured (one thread, forward + backward, batch 8): 24 groups of 8 channels
at 16x16 1.69 -> 0.97 ms, 24 x 32 at 4x4 1.18 -> 0.62 ms, 6 x 32 at 4x4 0.39 -> 0.27 ms, 3 x 32
at 4x4 0.25 -> 0.24 ms. From batch 16 torch runs oneDNN's grouped conv, and the matmul wins
there too on the whole search step (in-process alternation, one thread, median ms/step, oneDNN
-> matmul): DARTS batch 32 711 -> 667 (groups >= 6), 692 -> 670 (>= 2 against >= 6);
PC-DARTS K=4 batch 32 346 -> 329; batch 64 DARTS 1291 -> 1240, PC-DARTS 555 -> 513."""


def _pointwise(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """F.conv2d(x, weight [groups*c_out, c, 1, 1], groups=groups), as a matmul where it pays."""
    b, channels, h, w = x.shape
    if not (x.device.type == "cpu" and groups >= MATMUL_MIN_GROUPS > 0 and x.dim() == 4):
        return F.conv2d(x, weight, None, groups=groups)
    c, c_out = channels // groups, weight.shape[0] // groups
    out = grouped_matmul(weight.reshape(groups, c_out, c), x.reshape(b, groups, c, h * w))
    return out.reshape(b, groups * c_out, h, w)


class GroupedOps:
    """The sep_conv / dil_conv members (one per (op, edge)) of one family, run side by side.

    ``ops`` are the members' modules (they stay the edges'); `order` puts the SepConv members
    first. Inputs to `block_outputs` are the members' ReLU'd inputs concatenated in `order`.
    """

    def __init__(self, ops: list[nn.Module]):
        if not ops or not all(groupable(op) for op in ops):
            raise ValueError("GroupedOps needs sep_conv / dil_conv ops with 'same' padding")
        if len({family(op) for op in ops}) != 1:
            raise ValueError("GroupedOps members must be of one family (see `family`)")
        #: member positions, SepConv members first (they alone run the second block)
        self.order = sorted(range(len(ops)), key=lambda m: not isinstance(ops[m], SepConv))
        members = [ops[m] for m in self.order]
        self.n = len(members)
        self.n_sep = sum(isinstance(op, SepConv) for op in members)
        first = [op[0] if isinstance(op, SepConv) else op for op in members]
        self.blocks: list[list[DilConv]] = [first] + (
            [[op[1] for op in members[: self.n_sep]]] if self.n_sep else []
        )
        conv = first[0][1]
        fam = family(members[0])
        self.size = fam[1] if fam[0] == "embedded" else conv.kernel_size[0]
        self.dilation = 1 if fam[0] == "embedded" else conv.dilation[0]
        self.padding = self.dilation * (self.size - 1) // 2
        self.stride = conv.stride[0]
        self.flat: list[dict[str, torch.Tensor]] = []
        self.tie_buffers()

    def tie_buffers(self) -> None:
        """Make each block's BN running statistics views into one flat [n*c] buffer."""
        self.flat = [tie_batch_norms([_parts(b)[3] for b in block]) for block in self.blocks]

    def parts(self) -> list[list[tuple[nn.Module, ...]]]:
        """Per block, per member: its (ReLU, depthwise conv, 1x1 conv, BN), read now."""
        return [[_parts(b) for b in block] for block in self.blocks]

    def usable(self, parts: list[list[tuple[nn.Module, ...]]] | None = None) -> bool:
        """True if the modules still are plain ReLU-conv-conv-BN blocks whose BNs share one
        momentum (None, a cumulative average, included: `recalibrated_bn` sets it on all)."""
        for block in parts or self.parts():
            momentum = getattr(block[0][3], "momentum", None)
            for relu, _, _, bn in block:
                if type(relu) is not nn.ReLU or type(bn) is not nn.BatchNorm2d:
                    return False
                if bn.momentum != momentum:  # mixed settings: leave them to the modules
                    return False
        return True

    def _depthwise_weight(self, block: list[tuple[nn.Module, ...]]) -> torch.Tensor:
        """The members' depthwise kernels, embedded, concatenated [n*c, 1, K, K] (one cat per kind)."""
        parts, run = [], []
        for member in block + [None]:
            conv = None if member is None else member[1]
            geom = None if conv is None else (conv.kernel_size[0], conv.dilation[0])
            if run and geom != run[0][0]:
                k, d = run[0][0]
                w = torch.cat([x[1] for x in run]) if len(run) > 1 else run[0][1]
                parts.append(_embed(w, k, d, self.size) if self.dilation == 1 else w)
                run = []
            if conv is not None:
                run.append((geom, conv.weight))
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def block_outputs(
        self, x_in: torch.Tensor, parts: list[list[tuple[nn.Module, ...]]] | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Members' ReLU'd inputs side by side [B, n*c, H, W] (in `order`) -> (the sep_conv
        members' outputs [B, n_sep*c, H', W'] (their second block), the dil_conv members'
        outputs [B, (n - n_sep)*c, H', W'] (the first block's last channels)); None where a
        kind has no members. ``parts``: `parts()` if the caller already read it.

        With both kinds, the first block's output is split once (`torch.split`): its backward
        writes one gradient tensor, where two slices would each allocate and zero a gradient
        of the whole block output and add them (benchmarks/README.md, item 21)."""
        parts = parts or self.parts()
        x = self._block(0, x_in, parts[0], self.stride)
        if not self.n_sep:
            return None, x
        dil = None
        if self.n_sep < self.n:
            c = x.shape[1] // self.n
            x, dil = torch.split(x, [self.n_sep * c, (self.n - self.n_sep) * c], dim=1)
        return self._block(1, F.relu(x), parts[1], 1), dil

    def _block(
        self, i: int, x: torch.Tensor, block: list[tuple[nn.Module, ...]], stride: int
    ) -> torch.Tensor:
        """Block i (depthwise, grouped 1x1, BN) of the members in ``block`` on their inputs."""
        x = depthwise_conv2d(
            x, self._depthwise_weight(block), (stride, stride), (self.padding,) * 2,
            (self.dilation,) * 2,
        )  # fmt: skip
        x = _pointwise(x, torch.cat([m[2].weight for m in block]), len(block))
        return self._batch_norm(i, x, [m[3] for m in block])

    def _batch_norm(self, i: int, x: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
        return tied_batch_norm(x, self.flat[i], bns)


class GroupedReduce:
    """The FactorizedReduce ops (skip_connect on stride-2 edges) of the edges reading one state,
    run side by side: one batched matmul and one BN instead of one of each per edge.

    Each op is cat(conv_1(x[::2, ::2]), conv_2(x[1::2, 1::2])) -> BN on ReLU(x); all of them read
    the same two subsampled inputs (`FactorizedReduce.subsample`), so the n ops' conv_1 weights
    stacked are one [n*C/2, C] matrix on the first, their conv_2 weights one on the second
    (`operations.factorized_convs`): the n ops' outputs side by side, [B, n*C, h, w]. The BN
    over n*C channels is n BNs (their running statistics are views of one flat buffer, as in
    `GroupedOps`). The modules stay the edges' own (same parameters, buffers and keys).
    Measured on the whole step (benchmarks/README.md, item 23): 1-2 % for PC-DARTS K=4, up to
    2 % for DARTS at batch 32, no change for DARTS at batch 8.
    """

    def __init__(self, ops: list[FactorizedReduce]):
        if not ops or any(type(op) is not FactorizedReduce for op in ops):
            raise ValueError("GroupedReduce needs FactorizedReduce ops")
        self.ops = ops
        self.flat: dict[str, torch.Tensor] = {}
        self.tie_buffers()

    def tie_buffers(self) -> None:
        """Make the ops' BN running statistics views into one flat [n*C] buffer."""
        self.flat = tie_batch_norms([op.bn for op in self.ops])

    def usable(self) -> bool:
        """True if every op still is a plain ReLU, two 1x1 stride-2 convs and a BN, the BNs
        with one momentum and without hooks (otherwise each op runs as its own module)."""
        momentum = getattr(self.ops[0].bn, "momentum", None)
        for op in self.ops:
            bn = op.bn
            if type(op.relu) is not nn.ReLU or type(bn) is not nn.BatchNorm2d:
                return False
            if bn.momentum != momentum or bn._forward_hooks or bn._forward_pre_hooks:
                return False
            if not op._plain_convs():
                return False
        return True

    def outputs(self, x: torch.Tensor, subsampled: torch.Tensor) -> torch.Tensor:
        """ReLU(state) [B, C, H, W] and its `FactorizedReduce.subsample` -> the ops' outputs
        side by side [B, n*C, h, w] (in ``ops`` order)."""
        out = factorized_convs(self.ops, x, subsampled)
        return tied_batch_norm(out, self.flat, [op.bn for op in self.ops])


def tie_batch_norms(bns: list[nn.BatchNorm2d]) -> dict[str, torch.Tensor]:
    """Make the BNs' running statistics views into one flat buffer per statistic, in order;
    returns the flat buffers ({} if a BN keeps no running statistics)."""
    flat = {}
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        parts = [getattr(bn, name) for bn in bns]
        if any(p is None for p in parts):
            return {}
        flat[name] = torch.cat([p.reshape(-1) for p in parts])
        views = flat[name].split([p.numel() for p in parts])
        for bn, v, p in zip(bns, views, parts, strict=True):
            setattr(bn, name, v.view(p.shape))
    return flat


def _tied(flat: dict[str, torch.Tensor], bns: list[nn.BatchNorm2d]) -> bool:
    """True if the BNs' running statistics still are views of ``flat`` (not replaced by
    functional_call, a state-dict load with assign, a transform).

    Read from each module's buffer dict, where every assignment of a buffer lands: the check
    runs for every member of every group in every forward, and ``bn.running_mean`` goes
    through nn.Module.__getattr__ (Python), which made this check 1-3 % of a small search
    step (benchmarks/README.md, item 25)."""
    if not flat:
        return False
    ptr = flat["running_mean"].untyped_storage().data_ptr()
    for bn in bns:
        mean = bn._buffers.get("running_mean")
        if mean is None or mean.untyped_storage().data_ptr() != ptr:
            return False
    return True


def tied_batch_norm(
    x: torch.Tensor, flat: dict[str, torch.Tensor], bns: list[nn.BatchNorm2d]
) -> torch.Tensor:
    """The BNs (same type and settings) on their channels of ``x``, side by side, as one BN over
    all of them with the flat running statistics of `tie_batch_norms`."""
    bn = bns[0]
    weight = torch.cat([b.weight for b in bns]) if bn.affine else None
    bias = torch.cat([b.bias for b in bns]) if bn.affine else None
    if bn.running_mean is None:  # no running statistics (e.g. frozen for torch.func)
        return batch_norm(x, None, None, weight, bias, True, 0.0, bn.eps)
    if not _tied(flat, bns):  # buffers were swapped out: each BN on its channels
        return _one_by_one(x, bns)
    training = bn.training or not bn.track_running_stats
    momentum = bn.momentum
    if bn.training and bn.track_running_stats:
        counts = flat["num_batches_tracked"]
        if momentum is None:  # cumulative average: factor 1/count, as nn.BatchNorm computes it
            first = int(counts[0])
            if not bool((counts == first).all()):  # counted apart: each BN its own factor
                return _one_by_one(x, bns)
            momentum = 1.0 / (first + 1)
        counts.add_(1)
    return batch_norm(  # vectorized statistics on CPU (nasviz.spaces.batchnorm)
        x, flat["running_mean"], flat["running_var"], weight, bias, training,
        0.0 if momentum is None else momentum, bn.eps,
    )  # fmt: skip


def _one_by_one(x: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
    """Each BN on its channels of ``x`` (as many equal chunks as BNs), as its own module."""
    return torch.cat([b(part) for b, part in zip(bns, x.chunk(len(bns), 1), strict=True)], 1)


def _parts(block: nn.Module) -> tuple[nn.Module, ...]:
    """A DilConv block's (ReLU, depthwise conv, 1x1 conv, BN), read from its module dict: the
    forward reads them for every member of every group, and nn.Sequential's indexing costs
    more Python time than a small kernel (measured: ~40 % of a small supernet's forward)."""
    return tuple(block._modules.values())


__all__ = [
    "EMBED_UP_TO",
    "MATMUL_MIN_GROUPS",
    "GroupedOps",
    "GroupedReduce",
    "family",
    "groupable",
    "tie_batch_norms",
    "tied_batch_norm",
]
