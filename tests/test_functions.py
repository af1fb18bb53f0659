"""nasviz.spaces.functions: the grouped matmul saves its inputs only; grad_needed asks the engine."""

import torch

from nasviz.spaces.functions import (
    LeanFunction,
    bilinear_jvp,
    grad_needed,
    grouped_matmul,
    save_inputs,
)


def test_grouped_matmul_equals_matmul_and_saves_its_two_inputs_only():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(8, 3, 5, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t), t)[1], lambda t: t):
        y = grouped_matmul(w, x)
    assert sorted(t.numel() for t in saved) == sorted([w.numel(), x.numel()])
    ref = torch.matmul(w, x)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    got, want = torch.autograd.grad(y, (w, x), g), torch.autograd.grad(ref, (w, x), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        assert grouped_matmul(w, x).grad_fn is None


class _Record(torch.autograd.Function):
    """x * w, recording grad_needed for both inputs in its backward."""

    asked: list = []

    @staticmethod
    def forward(ctx, x, w):  # noqa: ANN001, ANN205
        return x * w

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        _Record.asked.append((grad_needed(ctx, 0), grad_needed(ctx, 1)))
        return g, g


def test_grad_needed_follows_what_the_backward_pass_uses():
    x, w, a = (torch.randn(3, requires_grad=True) for _ in range(3))
    y = _Record.apply(x * a, w * 2).sum()
    _Record.asked.clear()
    y.backward(inputs=[a], retain_graph=True)  # an architecture step: only upstream of x
    y.backward(retain_graph=True)  # a weight step: everything
    torch.autograd.grad(y, [w])  # autograd.grad of w only
    assert _Record.asked == [(True, False), (True, True), (False, True)]
    z = _Record.apply(torch.randn(3), w).sum()  # x needs no grad at all
    _Record.asked.clear()
    z.backward()
    assert _Record.asked == [(False, True)]


class _Scale(LeanFunction):
    """a * b with the LeanFunction layout: backward and jvp from the saved inputs."""

    @staticmethod
    def forward(a, b):  # noqa: ANN001, ANN205
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: ANN001, ANN205
        save_inputs(ctx, *inputs)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        a, b = ctx.saved_tensors
        return g * b, g * a

    @staticmethod
    def jvp(ctx, a_t, b_t):  # noqa: ANN001, ANN205
        return bilinear_jvp(torch.mul, ctx, a_t, b_t)


def test_lean_function_runs_its_twin_eagerly_and_itself_under_torch_func():
    gen = torch.Generator().manual_seed(0)
    a, b, t = (torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(3))
    a.requires_grad_(True)
    y = _Scale.run(a, b)
    assert type(y.grad_fn).__name__ == "_ScaleBackward"  # named as the class, in profiles too
    assert type(y.grad_fn)._forward_cls is _Scale._eager  # the twin without setup_context
    torch.testing.assert_close(torch.autograd.grad(y.sum(), a)[0], b)
    # torch.func needs the setup_context form: grad, and jvp of grad (the exact HVP's shape)
    f = lambda x: _Scale.run(x, b).sum()  # noqa: E731
    torch.testing.assert_close(torch.func.grad(f)(a.detach()), b)
    _, tangent = torch.func.jvp(lambda x: _Scale.run(x, b), (a.detach(),), (t,))
    torch.testing.assert_close(tangent, t * b)
    # forward-mode AD outside torch.func runs the twin's jvp
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        out = _Scale.run(fwAD.make_dual(a.detach(), t), b)
        torch.testing.assert_close(fwAD.unpack_dual(out).tangent, t * b)
