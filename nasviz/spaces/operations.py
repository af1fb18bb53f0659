"""The candidate operations of the DARTS cell space (and the extra ops of NASNet/AmoebaNet cells).

Every op maps [B, C, H, W] to [B, C, H/stride, W/stride]. Convolutions are bias-free and followed
by BatchNorm; ``affine=False`` is used during search (as DARTS), ``True`` in evaluation networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasviz.spaces.depthwise import depthwise_conv2d
from nasviz.spaces.functions import grouped_matmul


class ReLUFirst(nn.Sequential):
    """A Sequential whose first module is a ReLU.

    `after_relu` runs the rest on an input that is already rectified: the search cell rectifies
    each state once for all the conv ops of all the edges reading it, instead of once per op.
    """

    def leading(self) -> nn.Module:
        """The module that sees the op's input first (the ReLU)."""
        return self[0]

    def after_relu(self, x: torch.Tensor) -> torch.Tensor:
        """The op on ``x`` = ReLU(input): every module but the leading ReLU."""
        for i, module in enumerate(self._modules.values()):
            if i:
                x = module(x)
        return x


class ReLUConvBN(ReLUFirst):
    """ReLU -> conv -> BN, the preprocessing block of cells."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DepthwiseConv2d(nn.Conv2d):
    """A bias-free depthwise ``nn.Conv2d`` (groups = channels) that runs `depthwise_conv2d`:
    the same function, parameter and state-dict key, with the cheaper CPU backward of
    `nasviz.spaces.depthwise` (torch's backward of the 5x5 and dilated depthwise convs costs
    10-60x their forward). It serves the evaluation networks a retraining trains and the
    search ops outside the grouped path. Measured on a retraining step (the quick preset's
    DARTS network, C=16, 8 cells, batch 64 on 8x8 digits, one thread): 247 -> 144 ms
    (benchmarks/README.md, item 30)."""

    def __init__(self, C: int, kernel: int, stride: int, padding: int, dilation: int = 1):
        super().__init__(C, C, kernel, stride, padding, dilation=dilation, groups=C, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(x, self.weight, self.stride, self.padding, self.dilation)


class DilConv(ReLUFirst):
    """ReLU -> depthwise kxk (dilated) conv -> 1x1 conv -> BN."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ):
        super().__init__(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(C_in, kernel, stride, padding, dilation),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks; only the first one strides (DARTS sep_conv)."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ):
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )

    def leading(self) -> nn.Module:
        """The module that sees the op's input first (the first block's ReLU)."""
        return self[0].leading()

    def after_relu(self, x: torch.Tensor) -> torch.Tensor:
        """The op on an already rectified input (see `ReLUFirst`)."""
        return self[1](self[0].after_relu(x))


class Identity(nn.Module):
    """skip_connect at stride 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The 'none' op: zeros of the output shape (stride 2 subsamples)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """skip_connect at stride 2: two stride-2 1x1 convs, the second on the input shifted by a pixel."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(
                f"FactorizedReduce needs an even number of output channels, got {C_out}"
            )
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after_relu(self.relu(x))

    def leading(self) -> nn.Module:
        """The module that sees the op's input first (the ReLU)."""
        return self.relu

    def after_relu(self, x: torch.Tensor, subsampled: torch.Tensor | None = None) -> torch.Tensor:
        """The op on an already rectified input (see `ReLUFirst`); ``subsampled``:
        `subsample(x)` if the caller has it (the search cell shares it between the edges)."""
        if self._plain_convs() and x.dim() == 4:
            return self.bn(self._both_convs(x, subsampled))
        a = self.conv_1(x)
        # Shift by one pixel so the two halves sample complementary positions; pad odd sizes back.
        b = self.conv_2(nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)))
        return self.bn(torch.cat([a, b[:, :, : a.shape[2], : a.shape[3]]], dim=1))

    @staticmethod
    def subsample(x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, 2, C, h*w]: the pixels (2h, 2w) and (2h+1, 2w+1) that the two
        stride-2 convs read (the zero pad of an odd size gives zeros).

        For even sizes both are the diagonal of x viewed [B, C, h, 2, w, 2]: one view and one
        copy, whose backward writes one gradient tensor (four strided slices and a stack wrote
        five; benchmarks/README.md, item 19).
        """
        b, c, height, width = x.shape
        if height % 2 == 0 and width % 2 == 0:
            pairs = torch.diagonal(x.view(b, c, height // 2, 2, width // 2, 2), 0, 3, 5)
            return pairs.permute(0, 4, 1, 2, 3).reshape(b, 2, c, -1)  # [B, 2, C, h*w]
        even, odd = x[:, :, ::2, ::2], x[:, :, 1::2, 1::2]
        h, w = even.shape[-2:]
        odd = nn.functional.pad(odd, (0, w - odd.shape[-1], 0, h - odd.shape[-2]))
        return torch.stack([even, odd], 1).view(b, 2, c, h * w)

    def _both_convs(self, x: torch.Tensor, subsampled: torch.Tensor | None = None) -> torch.Tensor:
        """cat([conv_1(x), conv_2(x shifted by a pixel)]) as one batched matrix product
        (`factorized_convs` of this op alone)."""
        return factorized_convs([self], x, self.subsample(x) if subsampled is None else subsampled)

    def _plain_convs(self) -> bool:
        """True if conv_1 / conv_2 are still plain 1x1 stride-2 bias-free convs without hooks."""
        from torch.nn.modules import module as m

        if m._global_forward_hooks or m._global_forward_pre_hooks:
            return False
        return all(
            type(conv) is nn.Conv2d
            and conv.kernel_size == (1, 1)
            and conv.stride == (2, 2)
            and conv.padding == (0, 0)
            and conv.bias is None
            and conv.groups == 1
            and not (conv._forward_hooks or conv._forward_pre_hooks)
            for conv in (self.conv_1, self.conv_2)
        )


def factorized_convs(
    ops: list[FactorizedReduce], x: torch.Tensor, subsampled: torch.Tensor
) -> torch.Tensor:
    """The two 1x1 stride-2 convs of each of ``ops`` (FactorizedReduce on the same input x,
    [B, C, H, W]) as one batched matrix product -> their cat(conv_1, conv_2) outputs side by
    side, [B, n*C_out, h, w].

    A 1x1 stride-2 conv reads the pixels (2h, 2w); the shifted one reads (2h+1, 2w+1). Both
    subsampled inputs side by side (``subsampled`` = `FactorizedReduce.subsample(x)`,
    [B, 2, C, h*w]) times the ops' conv_1 weights stacked and their conv_2 weights stacked,
    [2, n*C_out/2, C]: one matmul instead of two convs, a pad and a cat per op (measured, one
    thread, forward + backward, one op on [8, 16, 16, 16]: 0.66 -> 0.21 ms).
    """
    b, c, height, width = x.shape
    h, w = (height + 1) // 2, (width + 1) // 2
    n, half = len(ops), ops[0].conv_1.out_channels
    weights = [op.conv_1.weight for op in ops] + [op.conv_2.weight for op in ops]
    out = grouped_matmul(torch.cat(weights).view(2, n * half, c), subsampled)
    # [B, 2 halves, n ops, C_out/2, h*w] -> op-major: each op's output is cat(its two halves)
    return out.view(b, 2, n, half, h * w).transpose(1, 2).reshape(b, n * 2 * half, h, w)


class Conv7x1_1x7(ReLUFirst):
    """NASNet/AmoebaNet's factorized 7x7: ReLU -> 1x7 -> 7x1 -> BN."""

    def __init__(self, C: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(C, C, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


OpFactory = Callable[[int, int, bool], nn.Module]

#: name -> factory(C, stride, affine). Keys cover PRIMITIVES and EXTRA_OPS of nasviz.genotypes.
OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda C, stride, affine: (
        Identity() if stride == 1 else FactorizedReduce(C, C, affine)
    ),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "sep_conv_7x7": lambda C, stride, affine: SepConv(C, C, 7, stride, 3, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
    "conv_7x1_1x7": lambda C, stride, affine: Conv7x1_1x7(C, stride, affine),
}


def make_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """Build operation ``name`` on C channels; unknown names list the known ones."""
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}; known operations: {', '.join(OPS)}")
    return OPS[name](C, stride, affine)


def starts_with_relu(op: nn.Module) -> bool:
    """True if ``op`` begins with a plain ReLU that `after_relu` skips (the conv ops of the space).

    Checked on the module itself, so an op whose ReLU was swapped for another activation (a
    smooth one for finite-difference tests, say) runs whole instead.
    """
    return hasattr(op, "after_relu") and type(op.leading()) is nn.ReLU


def is_pool(name: str) -> bool:
    """True for the parameter-free pooling ops (which DARTS follows by BN during search)."""
    return "pool" in name
