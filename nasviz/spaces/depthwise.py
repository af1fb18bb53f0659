"""Depthwise convolution with a cheaper backward on CPU (same function, same gradients).

On CPU, torch's depthwise conv forward (oneDNN) is fast for every kernel the DARTS space uses,
but its backward is fast only for 3x3, dilation 1. Measured on this project's 2-core AMD EPYC
(AVX-512, torch 2.14, one thread, CPU time, [32, 32, 16, 16] input, load average ~3):

    kernel, dilation         forward   input grad   weight grad
    3x3, 1  (sep_conv_3x3)    0.15 ms      0.20 ms      0.16 ms
    5x5, 1  (sep_conv_5x5)    0.18 ms      0.39 ms      6.4 ms
    3x3, 2  (dil_conv_3x3)    0.14 ms      2.4 ms       2.2 ms
    5x5, 2  (dil_conv_5x5)    0.19 ms      4.2 ms       6.5 ms

so the backward of the 5x5 and dilated convs costs 10-60x their forward. `depthwise_conv2d`
keeps torch's forward and computes the backward from the fast kernels only:

* input gradient: the transposed convolution, written as a forward convolution with the
  flipped kernel (on the stride-2 edges, of the output gradient with zeros inserted between its
  pixels): 2.4 -> 0.15 ms for 3x3 dilation 2;
* weight gradient: dL/dw[c] is the correlation of each image's input channel with its output
  gradient, i.e. a depthwise *forward* conv over B*C channels with the output gradient as the
  kernel (`_weight_grad`), summed over the batch. oneDNN's forward is the fast kernel, so for
  every kernel, dilation and stride: 5x5 [8, 384, 8, 8] 4.9 -> 0.33 ms, stride 2 from
  [8, 384, 16, 16] 7.4 -> 0.66 ms, 5x5 dilation 2 [8, 64, 16, 16] 3.0 -> 0.23 ms (torch's own
  backward -> this; one thread, CPU time);
* 3x3, dilation 1: torch's own backward (already fast).

Small outputs (at most `MATMUL_MAX_OUTPUT_PIXELS` pixels per channel, the 4x4 maps of the last
stage of a small supernet, in convs narrow enough that the matrices stay small:
`MAX_MATMUL_MATRIX`) run as a matrix product instead, forward and backward: per channel,
the conv is a [H*W, Ho*Wo] matrix gathered from its k*k taps (`_taps_index`: which tap links
input pixel q to output pixel o), so the conv is one batched product [C, B, H*W] x
[C, H*W, Ho*Wo] and its gradients are batched products too (`_MatmulDepthwise`: it saves x and
the kernel, not the matrix, which is larger than x at batch 8, and rebuilds it). oneDNN's depthwise
kernels have a large fixed cost there: one thread, forward + backward, [8, 128, 4, 4]: 5x5
1.69 -> 0.34 ms, 3x3 dilation 2 1.07 -> 0.26 ms; [32, 128, 4, 4] 5x5 5.07 -> 0.50 ms; stride 2
from 8x8, 5x5 1.15 -> 0.66 ms. At 8x8 outputs the matrix has 64x64 entries and loses (3x3:
0.51 -> 0.87 ms), so larger maps keep the convolution.

Over the whole forward + backward of the supernet (benchmarks/README.md, "A cheaper depthwise-conv
backward on CPU"): DARTS 1.2-1.4x, PC-DARTS K=4 (narrower convs) 1.0-1.1x. On CUDA (cuDNN) and
for other dtypes the plain `F.conv2d` runs: `CPU_FAST_BACKWARD` below switches this off.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from nasviz.spaces.functions import LeanFunction, bilinear_jvp, grad_needed, save_inputs

try:  # private, but the one place torch keeps the stack of active dispatch modes
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack as _dispatch_modes
except ImportError:  # pragma: no cover - a torch without it: nothing is watched

    def _dispatch_modes() -> list:
        return []


CPU_FAST_BACKWARD = True
"""Use the backward above for float32 CPU tensors (False: always torch's own backward)."""

MATMUL_MAX_OUTPUT_PIXELS = 16
"""Outputs with at most this many pixels per channel (and inputs of at most 64) run as a batched
matrix product on CPU (float32, float64); 0 switches it off."""

MAX_MATMUL_INPUT_PIXELS = 64

MAX_MATMUL_MATRIX = 2**17
"""...and at most this many entries in the [C, H*W, Ho*Wo] conv matrix: wider convs run the
convolution. Measured, one thread, cold caches, forward + backward of a 5x5 at batch 8, matmul
vs the convolution: stride 2 from 8x8 with 128 channels (131,072 entries) 0.54 vs 0.64 ms, 192
channels 0.76 vs 0.67 ms, 384 channels 1.44 vs 0.82 ms; stride 1 on 4x4 with 384 channels
(98,304 entries) 0.55 vs 0.64 ms, 768 channels 1.00 vs 0.79 ms."""

MIN_OUTPUT_ELEMENTS = 8192
"""Below this many output elements the few extra small ops cost more than they save (measured,
forward + backward, 5x5: [8, 4, 8, 8] 0.18 ms torch vs 0.30 ms here, [8, 4, 16, 16] 0.37 vs
0.33 ms, [8, 24, 8, 8] 0.34 vs 0.32 ms)."""

_Pair = tuple[int, int]


def depthwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, stride: _Pair, padding: _Pair, dilation: _Pair
) -> torch.Tensor:
    """F.conv2d(x, weight, None, stride, padding, dilation, groups=channels), [C, 1, k, k]."""
    if _aten_watched():  # the FLOP counter counts the conv the op defines, not its stand-ins
        return F.conv2d(x, weight, None, stride, padding, dilation, groups=x.shape[1])
    if _matmul_applies(x, weight, stride, padding, dilation):
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
            return _MatmulDepthwise.run(x, weight, stride[0], padding[0], dilation[0])
        return _matmul_depthwise(x, weight, stride[0], padding[0], dilation[0])
    if _fast_backward_applies(x, weight, stride, padding, dilation):
        return _DepthwiseConv2d.run(x, weight, stride[0], padding[0], dilation[0])
    return F.conv2d(x, weight, None, stride, padding, dilation, groups=x.shape[1])


def _aten_watched() -> bool:
    """True while a TorchDispatchMode sees the aten ops (`torch.utils.flop_counter`'s counter,
    fake tensors): it then sees the convolution, as nn.Conv2d would run it."""
    return bool(_dispatch_modes())


def _fast_backward_applies(
    x: torch.Tensor, weight: torch.Tensor, stride: _Pair, padding: _Pair, dilation: _Pair
) -> bool:
    k = weight.shape[-1]
    return (
        CPU_FAST_BACKWARD
        and torch.is_grad_enabled()
        and (x.requires_grad or weight.requires_grad)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and weight.shape[1] == 1
        and weight.shape[0] == x.shape[1]
        and weight.shape[-2] == k
        and isinstance(padding, tuple)  # not 'same' / 'valid'
        and len({*stride}) == len({*padding}) == len({*dilation}) == 1  # square
        and not (k == 3 and dilation[0] == 1)  # torch's own backward is fast there
        and 0 <= padding[0] <= dilation[0] * (k - 1)  # the transposed conv has padding >= 0
        and _output_elements(x, k, stride[0], padding[0], dilation[0]) >= MIN_OUTPUT_ELEMENTS
    )


def _matmul_applies(
    x: torch.Tensor, weight: torch.Tensor, stride: _Pair, padding: _Pair, dilation: _Pair
) -> bool:
    if not (
        CPU_FAST_BACKWARD
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and x.dim() == 4
        and weight.shape[1] == 1
        and weight.shape[0] == x.shape[1]
        and weight.shape[-1] == weight.shape[-2]
        and isinstance(padding, tuple)
        and len({*stride}) == len({*padding}) == len({*dilation}) == 1
        and x.shape[-1] * x.shape[-2] <= MAX_MATMUL_INPUT_PIXELS
    ):
        return False
    per_channel = _output_pixels(x, weight.shape[-1], stride[0], padding[0], dilation[0])
    matrix = x.shape[1] * x.shape[-1] * x.shape[-2] * per_channel
    return 0 < per_channel <= MATMUL_MAX_OUTPUT_PIXELS and matrix <= MAX_MATMUL_MATRIX


@functools.lru_cache(maxsize=256)
def _taps_pattern(
    h: int, w: int, k: int, s: int, p: int, d: int, device: str, dtype: torch.dtype
) -> torch.Tensor:
    """[k*k, h*w*ho*wo] 0/1: entry (tap, (q, o)) = 1 if tap links input pixel q to output o."""
    ho, wo = _output_size(h, w, k, s, p, d)
    pattern = torch.zeros(k, k, h, w, ho, wo, dtype=dtype)
    for i in range(k):
        for j in range(k):
            for oh in range(ho):
                r = oh * s - p + d * i
                if not 0 <= r < h:
                    continue
                for ow in range(wo):
                    c = ow * s - p + d * j
                    if 0 <= c < w:
                        pattern[i, j, r, c, oh, ow] = 1
    return pattern.reshape(k * k, h * w * ho * wo).to(device)


@functools.lru_cache(maxsize=256)
def _taps_index(h: int, w: int, k: int, s: int, p: int, d: int, device: str) -> torch.Tensor:
    """[h*w*ho*wo]: the tap linking input pixel q to output o, k*k where none does."""
    pattern = _taps_pattern(h, w, k, s, p, d, device, torch.float32)
    return torch.where(pattern.any(0), pattern.argmax(0), k * k)


def _conv_matrix(weight: torch.Tensor, h: int, w: int, s: int, p: int, d: int) -> torch.Tensor:
    """The [C, H*W, Ho*Wo] matrix of the depthwise conv: each entry a tap of its channel or 0
    (a gather from the kernel with a zero appended: cheaper than a product with the pattern)."""
    c, k = weight.shape[0], weight.shape[-1]
    index = _taps_index(h, w, k, s, p, d, str(weight.device))
    taps = F.pad(weight.reshape(c, k * k), (0, 1))  # [C, k*k + 1], the last one 0
    return torch.index_select(taps, 1, index).view(c, h * w, -1)


def _matmul_depthwise(
    x: torch.Tensor, weight: torch.Tensor, s: int, p: int, d: int
) -> torch.Tensor:
    """The depthwise conv as [C, B, H*W] x [C, H*W, Ho*Wo] (plain autograd ops: grad, jvp)."""
    b, c, h, w = x.shape
    matrix = _conv_matrix(weight, h, w, s, p, d)
    out = torch.bmm(x.reshape(b, c, h * w).transpose(0, 1), matrix)  # [C, B, Ho*Wo]
    ho, wo = _output_size(h, w, weight.shape[-1], s, p, d)
    return out.transpose(0, 1).reshape(b, c, ho, wo)


def _output_size(h: int, w: int, k: int, s: int, p: int, d: int) -> tuple[int, int]:
    """(Ho, Wo) of a kxk conv with stride s, padding p, dilation d on an h x w map."""
    span = d * (k - 1) + 1
    return (h + 2 * p - span) // s + 1, (w + 2 * p - span) // s + 1


class _MatmulDepthwise(LeanFunction):
    """`_matmul_depthwise` saving only x and the kernel for backward.

    Autograd of the plain ops would save the [C, H*W, Ho*Wo] matrix, which at these sizes is
    larger than x (at batch 8 twice its size: 8 MiB of a small DARTS step's 83 MiB of saved
    tensors); the backward gathers it again from the kernel (`_conv_matrix`).
    """

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, s: int, p: int, d: int) -> torch.Tensor:
        return _matmul_depthwise(x, weight, s, p, d)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        save_inputs(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        x, weight = ctx.saved_tensors
        s, p, d = ctx.conf
        b, c, h, w = x.shape
        k = weight.shape[-1]
        g = grad.reshape(b, c, -1).transpose(0, 1)  # [C, B, Ho*Wo]
        gx = gw = None
        if grad_needed(ctx, 0):
            matrix = _conv_matrix(weight, h, w, s, p, d)
            gx = torch.bmm(g, matrix.transpose(1, 2)).transpose(0, 1).reshape(b, c, h, w)
        if grad_needed(ctx, 1):
            pattern = _taps_pattern(h, w, k, s, p, d, str(x.device), x.dtype)
            xt = x.reshape(b, c, h * w).permute(1, 2, 0)  # [C, H*W, B]
            grad_matrix = torch.bmm(xt, g)  # [C, H*W, Ho*Wo]
            gw = (grad_matrix.reshape(c, -1) @ pattern.t()).view(c, 1, k, k)
        return gx, gw, None, None, None

    @staticmethod
    def jvp(ctx, x_t, w_t, *_):  # noqa: ANN001, ANN205 - autograd's signature (torch.func.jvp)
        return bilinear_jvp(_matmul_depthwise, ctx, x_t, w_t)


def _output_pixels(x: torch.Tensor, k: int, s: int, p: int, d: int) -> int:
    """Ho * Wo of the conv's output (per image and channel)."""
    ho, wo = _output_size(x.shape[-2], x.shape[-1], k, s, p, d)
    return ho * wo


def _output_elements(x: torch.Tensor, k: int, s: int, p: int, d: int) -> int:
    return x.shape[0] * x.shape[1] * _output_pixels(x, k, s, p, d)


def _depthwise_forward(
    x: torch.Tensor, weight: torch.Tensor, s: int, p: int, d: int
) -> torch.Tensor:
    return F.conv2d(x, weight, None, s, p, d, groups=weight.shape[0])


class _DepthwiseConv2d(LeanFunction):
    """Depthwise conv: torch's forward, the backward of the module docstring."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, s: int, p: int, d: int) -> torch.Tensor:
        return _depthwise_forward(x, weight, s, p, d)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        save_inputs(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        x, weight = ctx.saved_tensors
        s, p, d = ctx.conf
        gx = gw = None
        if grad_needed(ctx, 0) and d == 1:  # torch's input gradient is fast without dilation
            gx = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [s, s], [p, p], [1, 1], False, [0, 0], x.shape[1],
                [True, False, False],
            )[0]  # fmt: skip
        elif grad_needed(ctx, 0):
            gx = _input_grad(grad, weight, x.shape[-2:], s, p, d)
        if grad_needed(ctx, 1):  # not in an architecture step, whose backward stops at the alphas
            gw = _weight_grad(grad, x, weight.shape[-1], s, p, d)
        return gx, gw, None, None, None

    @staticmethod
    def jvp(ctx, x_t, w_t, *_):  # noqa: ANN001, ANN205 - autograd's signature (torch.func.jvp)
        return bilinear_jvp(_depthwise_forward, ctx, x_t, w_t)


def _input_grad(
    grad: torch.Tensor, weight: torch.Tensor, size: torch.Size, s: int, p: int, d: int
) -> torch.Tensor:
    """dL/dx: the flipped kernel over the output gradient (zeros between pixels if stride > 1)."""
    b, c, ho, wo = grad.shape
    k = weight.shape[-1]
    if s > 1:  # [B, C, ho, wo] -> [B, C, s*(ho-1)+1 (+ the rows no output reads), ...]
        up = F.pad(grad.reshape(b, c, ho, 1, wo, 1), (0, s - 1, 0, 0, 0, s - 1))
        up = up.reshape(b, c, ho * s, wo * s)
        grad = up[:, :, : size[0] + 2 * p - d * (k - 1), : size[1] + 2 * p - d * (k - 1)]
    return F.conv2d(grad, weight.flip(-2, -1), None, 1, d * (k - 1) - p, d, groups=c)


def _weight_grad(
    grad: torch.Tensor, x: torch.Tensor, k: int, s: int, p: int, d: int
) -> torch.Tensor:
    """dL/dweight [C, 1, k, k] as a depthwise *forward* conv (oneDNN's fast kernel).

    dL/dw[c, i, j] = sum_{b, h, w} x_pad[b, c, s*h + d*i, s*w + d*j] * grad[b, c, h, w]: for one
    (b, c) that is a correlation of x_pad with grad[b, c] as the kernel (dilation s, stride d),
    so all B*C of them are one depthwise conv with B*C groups, summed over the batch.
    """
    b, c, ho, wo = grad.shape
    out = F.conv2d(  # the conv's own zero padding: no padded copy of x
        x.reshape(1, b * c, *x.shape[-2:]), grad.reshape(b * c, 1, ho, wo), None, d, p, s,
        groups=b * c,
    )  # fmt: skip
    return out[..., :k, :k].reshape(b, c, k, k).sum(0).unsqueeze(1)


__all__ = [
    "CPU_FAST_BACKWARD",
    "MATMUL_MAX_OUTPUT_PIXELS",
    "MAX_MATMUL_MATRIX",
    "MIN_OUTPUT_ELEMENTS",
    "depthwise_conv2d",
]
