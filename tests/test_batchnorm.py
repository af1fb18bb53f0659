"""nasviz.spaces.batchnorm: training-mode BN with vectorized statistics equals torch's BN."""

import pytest
import torch
import torch.nn.functional as F

from nasviz.spaces import batchnorm
from nasviz.spaces.batchnorm import batch_norm


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert (a - b).abs().max().item() <= 1e-5 * b.abs().max().item() + 1e-7, what


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", [(8, 64, 16, 16), (4, 40, 32, 32)])
def test_equals_torch_batch_norm(shape, affine, monkeypatch):
    """Output, every gradient and the running statistics of two steps match F.batch_norm."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(*shape, generator=gen) * 3 + 6  # mean/std = 2, as in a search step
    grad = torch.randn(*shape, generator=gen)
    c = shape[1]
    calls = []
    apply = batchnorm._BatchNorm.apply
    monkeypatch.setattr(batchnorm._BatchNorm, "apply", lambda *a: calls.append(1) or apply(*a))
    results = []
    for fn in (batch_norm, F.batch_norm):
        x = x0.clone().requires_grad_()
        w = (torch.rand(c, generator=torch.Generator().manual_seed(1)) + 0.5).requires_grad_()
        bias = torch.randn(c, generator=torch.Generator().manual_seed(2)).requires_grad_()
        rm, rv = torch.zeros(c), torch.ones(c)
        for _ in range(2):
            y = fn(x, rm, rv, w if affine else None, bias if affine else None, True, 0.1, 1e-5)
            y.backward(grad)
        results.append((y.detach(), x.grad, w.grad, bias.grad, rm, rv))
    fast, ref = results
    assert len(calls) == 2, "the vectorized statistics ran"
    names = ["output", "x grad", "weight grad", "bias grad", "mean", "var"]
    for a, b, what in zip(fast, ref, names, strict=True):
        if b is None:
            assert a is None, what
        else:
            _close(a, b, what)


def test_input_gradient_only_as_in_an_architecture_step():
    x = torch.randn(8, 64, 16, 16, requires_grad=True)
    w = torch.ones(64, requires_grad=True)
    g = torch.randn(8, 64, 16, 16)
    y = batch_norm(x, None, None, w, None, True, 0.1, 1e-5)
    (gx,) = torch.autograd.grad((y * g).sum(), [x])
    (ref,) = torch.autograd.grad((F.batch_norm(x, None, None, w, None, True) * g).sum(), [x])
    _close(gx, ref, "x grad")


@pytest.mark.parametrize(
    "x, training, momentum",
    [
        (torch.randn(8, 768, 4, 4), True, 0.1),  # 4x4 maps: torch's kernel is faster there
        (torch.randn(2, 8, 8, 8), True, 0.1),  # small
        (torch.randn(8, 64, 16, 16).to(memory_format=torch.channels_last), True, 0.1),
        (torch.randn(8, 64, 16, 16, dtype=torch.float64), True, 0.1),
        (torch.randn(8, 64, 16, 16), False, 0.1),  # eval mode
        (torch.randn(8, 64, 16, 16) + 10, True, 0.1),  # mean/std 10: E[x^2] - mean^2 too coarse
    ],
)
def test_other_cases_run_torch_batch_norm(x, training, momentum):
    """Bit-identical to F.batch_norm: torch's own kernel ran."""
    rm, rv = torch.zeros(x.shape[1], dtype=x.dtype), torch.ones(x.shape[1], dtype=x.dtype)
    y = batch_norm(x, rm, rv, None, None, training, momentum, 1e-5)
    ref = F.batch_norm(x, torch.zeros_like(rm), torch.ones_like(rv), None, None, training,
                       momentum, 1e-5)  # fmt: skip
    assert torch.equal(y, ref)


def test_torch_func_and_forward_mode_run_torch_batch_norm():
    """Under torch.func (the exact Hessian-vector product) and forward-mode AD, torch's BN runs:
    this Function has no setup_context and no jvp."""
    x = torch.randn(8, 64, 16, 16)

    w = torch.randn(8, 64, 16, 16)

    def f(x):
        return (batch_norm(x, None, None, None, None, True, 0.1, 1e-5) * w).sum()

    g = torch.func.grad(f)(x)
    ref = torch.func.grad(lambda x: (F.batch_norm(x, None, None, training=True) * w).sum())(x)
    _close(g, ref, "torch.func.grad")
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        out = batch_norm(fwAD.make_dual(x, torch.ones_like(x)), None, None, training=True)
        assert fwAD.unpack_dual(out).tangent is not None


def test_double_backward_is_refused():
    x = torch.randn(8, 64, 16, 16, requires_grad=True)
    (g,) = torch.autograd.grad(
        batch_norm(x, None, None, None, None, True).square().sum(), [x], create_graph=True
    )
    with pytest.raises(RuntimeError):
        g.sum().backward()
