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


class LeanFunction(torch.autograd.Function):
    """An autograd Function written in the torch.func style (``forward`` without ctx,
    ``setup_context``, ``backward``, ``jvp``), applied through a twin without ``setup_context``
    when no torch.func transform is active.

    For a Function with ``setup_context`` torch binds the call's arguments to ``forward``'s
    signature (`inspect.signature`) on every call: about 15 us against 3 us for the twin, and
    in a search step, with ~200 calls, 4-7 % of the whole step (measured)
    (benchmarks/README.md, item 16). Under a transform (``torch.func.grad``/``jvp``, the exact
    Hessian-vector product of second-order DARTS) the class itself runs, as torch.func needs.
    """

    _eager: type[torch.autograd.Function]

    def __init_subclass__(cls, **kwargs) -> None:  # noqa: ANN003
        super().__init_subclass__(**kwargs)

        def forward(ctx, *args):  # noqa: ANN001, ANN002, ANN202 - autograd's signature
            out = cls.forward(*args)
            cls.setup_context(ctx, args, out)
            return out

        body = {"forward": staticmethod(forward), "backward": staticmethod(cls.backward)}
        if "jvp" in cls.__dict__:  # forward-mode AD (torch.autograd.forward_ad) as well
            body["jvp"] = staticmethod(cls.jvp)
        # same name: its backward node reads as the class's ("_DepthwiseConv2dBackward") in profiles
        cls._eager = type(cls.__name__, (torch.autograd.Function,), body)

    @classmethod
    def run(cls, *args):  # noqa: ANN002, ANN206
        """``cls.apply(*args)``, through the twin unless a torch.func transform is active."""
        if _transforms_active():
            return cls.apply(*args)
        return cls._eager.apply(*args)


def _transforms_active() -> bool:
    check = getattr(torch._C, "_are_functorch_transforms_active", None)
    return True if check is None else bool(check())


FOLD_MAX_PIXELS = 16
"""`grouped_matmul` folds the batch into the columns (g products [o, c] @ [c, B*n]) when a map
has at most this many pixels n, instead of B*g products [o, c] @ [c, n]: a 2x2 map makes the
broadcast matmul B*g products of 4 columns each, where the per-product overhead is most of the
time. Measured (one thread, median, forward | backward; benchmarks/README.md, item 28):
B 64, g 24, [32, 32] at n = 4: 1.96 -> 0.54 | 3.06 -> 0.98 ms; n = 16 ([16, 16]): 0.42 -> 0.35 |
0.84 -> 0.65 ms; B 8, n = 4: 0.24 -> 0.06 | 0.42 -> 0.16 ms. From n = 64 the two copies the fold
costs are as large as what it saves (B 64, [8, 8] at n = 64: 0.34 -> 0.39 | 0.87 -> 1.21 ms)."""


def grouped_matmul(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[g, o, c] @ [B, g, c, n] -> [B, g, o, n] (contiguous), saving w and x only."""
    if torch.is_grad_enabled() and (w.requires_grad or x.requires_grad):
        return _GroupedMatmul.run(w, x)
    return _grouped_product(w, x)


def _grouped_product(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[g, o, c] @ [B, g, c, n]: the batch folded into the columns on small maps, else a
    broadcast matmul (see `FOLD_MAX_PIXELS`)."""
    if not _folds(x):
        return torch.matmul(w, x)
    return _unfold(torch.bmm(w, _fold(x)), x.shape[0])


def _folds(x: torch.Tensor) -> bool:
    """True if the product with ``x`` [B, g, c, n] folds the batch (forward and backward alike)."""
    return x.shape[-1] <= FOLD_MAX_PIXELS


def _fold(x: torch.Tensor) -> torch.Tensor:
    """[B, g, c, n] -> [g, c, B*n] (a copy)."""
    b, g, c, n = x.shape
    return x.permute(1, 2, 0, 3).reshape(g, c, b * n)


def _unfold(y: torch.Tensor, batch: int) -> torch.Tensor:
    """[g, o, B*n] -> [B, g, o, n] (a contiguous copy)."""
    g, o, bn = y.shape
    return y.view(g, o, batch, bn // batch).permute(2, 0, 1, 3).contiguous()


class _GroupedMatmul(LeanFunction):
    """Autograd of the broadcast matmul saves the weights expanded B times (a copy per image:
    5 MiB of a small DARTS step's saved tensors at batch 8); this saves the two inputs."""

    @staticmethod
    def forward(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _grouped_product(w, x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        save_inputs(ctx, *inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        w, x = ctx.saved_tensors
        need_w, need_x = grad_needed(ctx, 0), grad_needed(ctx, 1)
        if _folds(x):  # as in the forward: the batch in the columns
            g = _fold(grad)  # [g, o, B*n]
            gw = torch.bmm(g, _fold(x).transpose(1, 2)) if need_w else None
            gx = _unfold(torch.bmm(w.transpose(1, 2), g), x.shape[0]) if need_x else None
            return gw, gx
        gw = torch.matmul(grad, x.transpose(-1, -2)).sum(0) if need_w else None
        gx = torch.matmul(w.transpose(-1, -2), grad) if need_x else None
        return gw, gx

    @staticmethod
    def jvp(ctx, w_t, x_t):  # noqa: ANN001, ANN205 - autograd's signature (torch.func.jvp)
        return bilinear_jvp(_grouped_product, ctx, w_t, x_t)


__all__ = [
    "FOLD_MAX_PIXELS",
    "LeanFunction",
    "bilinear_jvp",
    "grad_needed",
    "grouped_matmul",
    "save_inputs",
]
