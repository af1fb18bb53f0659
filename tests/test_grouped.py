"""The grouped 1x1 conv as a matmul (nasviz.spaces.grouped._pointwise) computes F.conv2d."""

import pytest
import torch
import torch.nn.functional as F

from nasviz.spaces import grouped
from nasviz.spaces.grouped import _pointwise


def _inputs(batch: int, groups: int, c: int = 4, c_out: int = 3, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, groups * c, 5, 5, generator=gen, dtype=dtype, requires_grad=True)
    w = torch.randn(groups * c_out, c, 1, 1, generator=gen, dtype=dtype, requires_grad=True)
    return x, w


@pytest.mark.parametrize(("batch", "groups"), [(8, 6), (3, 24), (8, 2), (16, 6), (32, 1)])
def test_pointwise_equals_grouped_conv_with_gradients(batch, groups):
    x, w = _inputs(batch, groups, dtype=torch.float64)
    y = _pointwise(x, w, groups)
    matmul = groups >= grouped.MATMUL_MIN_GROUPS  # at every batch size
    assert (type(y.grad_fn).__name__ == "ViewBackward0") == matmul
    ref = F.conv2d(x, w, None, groups=groups)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    got = torch.autograd.grad(y, (x, w), g, create_graph=True)
    want = torch.autograd.grad(ref, (x, w), g, create_graph=True)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # double backward: the weight gradient depends on x (the weight does not enter it)
    for i in (0, 1):
        a, b = (
            torch.autograd.grad(t[i].square().sum(), (x, w), retain_graph=True, allow_unused=True)
            for t in (got, want)
        )
        for u, v in zip(a, b, strict=True):
            assert (u is None) == (v is None)
            if u is not None:
                torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


def test_pointwise_torch_func_jvp_of_grad():
    """torch.func.jvp of torch.func.grad (the exact Hessian-vector product's path)."""
    x, w = (t.detach() for t in _inputs(8, 6, dtype=torch.float64))
    t = torch.randn_like(w)

    def jvp_of_grad(conv):
        grad = torch.func.grad(lambda a, b: conv(a, b).tanh().sum(), argnums=(0, 1))
        return torch.func.jvp(lambda b: grad(x, b), (w,), (t,))[1]

    got = jvp_of_grad(lambda a, b: _pointwise(a, b, 6))
    want = jvp_of_grad(lambda a, b: F.conv2d(a, b, None, groups=6))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_pointwise_matmul_saves_its_two_inputs_only():
    x, w = _inputs(8, 24)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t), t)[1], lambda t: t):
        _pointwise(x, w, 24)
    assert sorted(t.numel() for t in saved) == sorted([x.numel(), w.numel()])
