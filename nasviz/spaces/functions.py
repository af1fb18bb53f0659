"""What the fast path's autograd Functions share: saving only their inputs, skipping gradients
the backward pass does not use, and the forward-mode derivative of a bilinear op.

Autograd of plain ops saves whatever each op needs, which for a broadcast matmul is its weights
expanded B times and for the small-map depthwise matmul the whole conv matrix (benchmarks/
README.md, item 13). The Functions here and in nasviz.spaces.depthwise save their two inputs
and recompute the rest in backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def grad_needed(ctx, i: int) -> bool:  # noqa: ANN001 - an autograd backward's ctx
    """True if input i's gradient is used by this backward pass.

    ``needs_input_grad`` only says the input requires grad; in an architecture step
    (``backward(inputs=alphas)``) the engine never runs the weights' gradient nodes, and plain
    autograd ops skip those gradients. A Function asks the engine the same (the private
    `torch._C._will_engine_execute_node`, which torch.utils.checkpoint uses too); where it
    cannot answer (an older torch, a leaf in ``autograd.grad``), the gradient is computed.
    """
    if not ctx.needs_input_grad[i]:
        return False
    will_run = getattr(torch._C, "_will_engine_execute_node", None)
    node = ctx.next_functions[i][0]
    if will_run is None or node is None:
        return True
    try:
        return bool(will_run(node))
    except RuntimeError:
        return True


def save_inputs(ctx, a: torch.Tensor, b: torch.Tensor, *conf: int) -> None:  # noqa: ANN001
    """setup_context of a bilinear Function op(a, b, *conf): keep a, b (backward and jvp)."""
    ctx.save_for_backward(a, b)
    ctx.save_for_forward(a, b)
    ctx.conf = conf


def bilinear_jvp(
    op: Callable[..., torch.Tensor],
    ctx,
    a_t: torch.Tensor | None,
    b_t: torch.Tensor | None,  # noqa: ANN001
) -> torch.Tensor | None:
    """Forward-mode derivative of op(a, b, *conf), linear in a and in b: op(a', b) + op(a, b')."""
    a, b = ctx.saved_tensors
    out = None
    if a_t is not None:
        out = op(a_t, b, *ctx.conf)
    if b_t is not None:
        y = op(a, b_t, *ctx.conf)
        out = y if out is None else out + y
    return out


def grouped_matmul(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[g, o, c] @ [B, g, c, n] -> [B, g, o, n] (torch.matmul), saving w and x only."""
    if torch.is_grad_enabled() and (w.requires_grad or x.requires_grad):
        return _GroupedMatmul.apply(w, x)
    return torch.matmul(w, x)


class _GroupedMatmul(torch.autograd.Function):
    """Autograd of the broadcast matmul saves the weights expanded B times (a copy per image:
    5 MiB of a small DARTS step's saved tensors at batch 8); this saves the two inputs."""

    @staticmethod
    def forward(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(w, x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        save_inputs(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        w, x = ctx.saved_tensors
        gw = torch.matmul(grad, x.transpose(-1, -2)).sum(0) if grad_needed(ctx, 0) else None
        gx = torch.matmul(w.transpose(-1, -2), grad) if grad_needed(ctx, 1) else None
        return gw, gx

    @staticmethod
    def jvp(ctx, w_t, x_t):  # noqa: ANN001, ANN205 - autograd's signature (torch.func.jvp)
        return bilinear_jvp(torch.matmul, ctx, w_t, x_t)


__all__ = ["bilinear_jvp", "grad_needed", "grouped_matmul", "save_inputs"]
