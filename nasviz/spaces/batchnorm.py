"""Training-mode batch norm with vectorized statistics on CPU (same function, same gradients).

torch's CPU batch norm collects the statistics of an NCHW tensor with a scalar loop per channel
(two passes, each a chain of dependent additions that does not vectorize), so in training mode
it costs several times its eval-mode normalization. `batch_norm` reads the statistics off two
vectorized reductions instead: the mean per (image, channel) and the rows' 2-norms (sums of
squares, no x*x temporary), var = E[x^2] - mean^2; torch's eval-mode kernel then normalizes with
them, and the backward is torch's own training-mode BN backward with the saved mean and 1/std
(the call torch's autograd makes). Running statistics are updated as torch updates them
(momentum; the unbiased variance). Measured on this project's 2-core AMD EPYC (torch 2.14, one
thread, CPU time, warm caches), forward, torch -> this (eval-mode normalize alone), and forward +
backward:

    [8, 192, 16, 16]     502 -> 137 us (44)     672 -> 419 us
    [8, 384, 8, 8]       263 -> 126 us (34)     373 -> 247 us
    [32, 192, 16, 16]   2129 -> 1364 us (199)  4718 -> 2952 us
    [32, 384, 8, 8]     1084 -> 321 us (102)   1771 -> 958 us

Inside a search step (cold caches, fresh outputs) the gain is smaller: the grouped BNs' forwards
of a first-order DARTS step (small configuration) took 44.7 -> 31.2 ms at batch 32 and
13.0 -> 12.7 ms at batch 8 (one process, alternating), the whole step 1.025-1.029x at batch 32
and no change this machine resolves at batch 8 (benchmarks/README.md, item 24).

E[x^2] - mean^2 keeps float32's digits while mean/std is moderate (relative variance error
against float64: 2e-7 at mean/std 0, 3e-6 at 2.4, 4e-5 at 10; torch's two-pass kernel 1.4e-7),
so a call with any channel above `MAX_MEAN_OVER_STD` runs torch's kernel. Small tensors keep
torch's kernel too (under `MIN_PIXELS` pixels per map or `MIN_ELEMENTS` elements the extra
small ops cost what they save: [8, 96, 8, 8] with cold caches 131 -> 211 us), and so does every
other case: eval mode, CUDA, other dtypes and layouts, a cumulative average (momentum None),
torch.func transforms and forward-mode AD (this Function has neither ``setup_context`` nor
``jvp``); double backward through it raises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

MIN_PIXELS = 64
"""Maps with fewer pixels per channel (H*W) keep torch's kernel."""

MIN_ELEMENTS = 131072
"""Inputs with fewer elements keep torch's kernel."""

MAX_MEAN_OVER_STD = 4.0
"""E[x^2] - mean^2 loses float32 digits as (mean/std)^2 grows: largest relative variance error
against float64 over the channels of [8, 192, 16, 16] / [32, 384, 8, 8] normal inputs, 2e-7 at
mean/std 0, 5e-7 at 1, 3e-6 at 2.4, 4e-6 at 3, 6e-6 at 4, 4e-5 at 10 (torch's two-pass kernel:
1.4e-7 throughout). A channel above this ratio sends the call to torch's kernel. In the search
step the grouped BNs' inputs have mean/std 1.3 (median) and at most 2.4."""


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.batch_norm`` with the same arguments; in training mode on CPU, vectorized statistics."""
    if training and momentum is not None and _applies(x):
        with torch.no_grad():
            mean, var = _statistics(x)
        if not (mean.square() > MAX_MEAN_OVER_STD**2 * var).any():
            args = (x, weight, bias, running_mean, running_var, mean, var, momentum, eps)
            return _BatchNorm.apply(*args)
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


def _applies(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[2] * x.shape[3] >= MIN_PIXELS
        and x.numel() >= MIN_ELEMENTS
        and x.is_contiguous()
        and not _transformed()
    )


def _transformed() -> bool:
    """True inside a torch.func transform or a forward-mode AD level (torch's path runs there)."""
    check = getattr(torch._C, "_are_functorch_transforms_active", None)
    if check is None or check():
        return True
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def _statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased variance) per channel of x [B, C, H, W]: two vectorized reads of x."""
    b, c = x.shape[:2]
    x3 = x.view(b, c, -1)
    mean = x3.mean(2).mean(0)  # per (image, channel), then over the images
    # E[x^2] - mean^2; the rows' sums of squares as 2-norms (one fused reduction, no x*x temp)
    var = torch.linalg.vector_norm(x3, dim=2).square_().mean(0).div_(x3.shape[2])
    return mean, var.sub_(mean.square()).clamp_(min=0.0)


class _BatchNorm(torch.autograd.Function):
    """Training-mode BN with the given batch statistics: torch's eval-mode kernel normalizes,
    torch's training-mode backward kernel differentiates (with the saved mean and 1/std)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, mean, var, momentum, eps):  # noqa: ANN001, ANN205
        out = torch.batch_norm(x, weight, bias, mean, var, False, 0.0, eps, False)
        if running_mean is not None and running_var is not None:
            n = x.numel() // x.shape[1]
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var, alpha=momentum * n / (n - 1))
        ctx.save_for_backward(x, weight, mean, (var + eps).rsqrt_())
        ctx.eps = eps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight, mean, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        mask = [need[0], need[1], need[2]]  # x, weight, bias (the latter two only if affine)
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            grad.contiguous(), x, weight, None, None, mean, invstd, True, ctx.eps, mask
        )
        return gx, gw, gb, None, None, None, None, None, None


__all__ = ["MAX_MEAN_OVER_STD", "MIN_ELEMENTS", "MIN_PIXELS", "batch_norm"]
