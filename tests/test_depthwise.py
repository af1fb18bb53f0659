"""depthwise_conv2d (cheaper CPU backward) computes what F.conv2d does, with the same gradients."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from nasviz.spaces import depthwise
from nasviz.spaces.depthwise import depthwise_conv2d

# kernel, stride, dilation: every combination of the DARTS space (sep 3/5, dil 3/5, stride 1/2)
CASES = list(itertools.product((3, 5), (1, 2), (1, 2)))


@pytest.fixture(autouse=True)
def _small_tensors_too(monkeypatch):
    """These tests use small tensors, which the size threshold would send to plain F.conv2d."""
    monkeypatch.setattr(depthwise, "MIN_OUTPUT_ELEMENTS", 0)
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 0)  # tested on its own below


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Equal to float32 rounding (relative 1e-5 of the tensor's scale)."""
    assert a.shape == b.shape, what
    assert (a - b).abs().max().item() <= 1e-5 * b.abs().max().item() + 1e-6, what


def _inputs(k: int, size: tuple[int, int], channels: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, channels, *size, generator=gen, requires_grad=True)
    w = torch.randn(channels, 1, k, k, generator=gen, requires_grad=True)
    return x, w


def _uses_fast_backward(y: torch.Tensor) -> bool:
    return type(y.grad_fn).__name__ == "_DepthwiseConv2dBackward"


@pytest.mark.parametrize(("k", "stride", "dilation"), CASES)
@pytest.mark.parametrize("size", [(8, 8), (7, 9), (16, 16)])
def test_forward_and_gradients_equal_conv2d(k, stride, dilation, size):
    x, w = _inputs(k, size)
    p = dilation * (k - 1) // 2
    conf = ((stride, stride), (p, p), (dilation, dilation))
    y = depthwise_conv2d(x, w, *conf)
    ref = F.conv2d(x, w, None, stride, p, dilation, groups=x.shape[1])
    # torch's own backward is kept for 3x3 without dilation (it is fast there)
    assert _uses_fast_backward(y) == ((k, dilation) != (3, 1))
    _close(y, ref, "output")
    g = torch.randn_like(ref)
    for got, want, name in zip(
        torch.autograd.grad(y, (x, w), g),
        torch.autograd.grad(ref, (x, w), g),
        ("x", "weight"),
        strict=True,
    ):
        _close(got, want, f"gradient of {name}")


@pytest.mark.parametrize(("k", "stride", "dilation"), [(5, 1, 1), (3, 2, 2), (5, 1, 2)])
def test_only_the_gradients_asked_for(k, stride, dilation):
    x, w = _inputs(k, (8, 8))
    p = dilation * (k - 1) // 2
    conf = ((stride, stride), (p, p), (dilation, dilation))
    ref = F.conv2d(x, w, None, stride, p, dilation, groups=x.shape[1]).square().sum()
    (gx,) = torch.autograd.grad(depthwise_conv2d(x, w.detach(), *conf).square().sum(), x)
    _close(gx, torch.autograd.grad(ref, x, retain_graph=True)[0], "x only")
    (gw,) = torch.autograd.grad(depthwise_conv2d(x.detach(), w, *conf).square().sum(), w)
    _close(gw, torch.autograd.grad(ref, w)[0], "weight only")


@pytest.mark.parametrize(("k", "stride", "dilation"), [(5, 1, 1), (3, 2, 2), (5, 1, 2)])
def test_double_backward_equals_conv2d(k, stride, dilation):
    x, w = _inputs(k, (7, 7))
    p = dilation * (k - 1) // 2
    conf = ((stride, stride), (p, p), (dilation, dilation))
    v = torch.randn(3, 6, 7, 7)

    def second(conv) -> tuple[torch.Tensor, ...]:
        loss = conv(x, w).tanh().sum()
        gx, gw = torch.autograd.grad(loss, (x, w), create_graph=True)
        return torch.autograd.grad((gx * v).sum() + gw.square().sum(), (x, w))

    got = second(lambda a, b: depthwise_conv2d(a, b, *conf))
    want = second(lambda a, b: F.conv2d(a, b, None, stride, p, dilation, groups=6))
    for a, b, name in zip(got, want, ("x", "weight"), strict=True):
        _close(a, b, f"second derivative wrt {name}")


def _jvp_of_grad(conv, x, w, t) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.func.jvp (tangent t of w) of torch.func.grad of conv(x, w).tanh().sum()."""
    grad = torch.func.grad(lambda a, b: conv(a, b).tanh().sum(), argnums=(0, 1))
    return torch.func.jvp(lambda b: grad(x, b), (w,), (t,))[1]


def test_torch_func_grad_and_jvp_equal_conv2d():
    """The path exact_hvp takes: torch.func.jvp of torch.func.grad through the conv."""
    x, w = _inputs(5, (8, 8))
    x, w = x.detach(), w.detach()
    t = torch.randn_like(w)
    got = _jvp_of_grad(lambda a, b: depthwise_conv2d(a, b, (1, 1), (4, 4), (2, 2)), x, w, t)
    want = _jvp_of_grad(lambda a, b: F.conv2d(a, b, None, 1, 4, 2, groups=6), x, w, t)
    for a, b, name in zip(got, want, ("x", "weight"), strict=True):
        _close(a, b, f"jvp of the gradient wrt {name}")


def test_plain_conv_when_switched_off_small_or_not_float32_cpu(monkeypatch):
    x, w = _inputs(5, (8, 8))
    conf = ((1, 1), (2, 2), (1, 1))
    assert _uses_fast_backward(depthwise_conv2d(x, w, *conf))
    assert not _uses_fast_backward(depthwise_conv2d(x.double(), w.double(), *conf))
    with torch.no_grad():
        assert depthwise_conv2d(x, w, *conf).grad_fn is None
    monkeypatch.setattr(depthwise, "MIN_OUTPUT_ELEMENTS", 3 * 6 * 8 * 8 + 1)  # one more than x
    assert not _uses_fast_backward(depthwise_conv2d(x, w, *conf))
    monkeypatch.setattr(depthwise, "MIN_OUTPUT_ELEMENTS", 0)
    monkeypatch.setattr(depthwise, "CPU_FAST_BACKWARD", False)
    assert not _uses_fast_backward(depthwise_conv2d(x, w, *conf))


def _uses_matmul(y: torch.Tensor) -> bool:
    return type(y.grad_fn).__name__ == "_MatmulDepthwiseBackward"


# small maps (4x4 outputs, the last stage of a small supernet) run as a batched matrix product
@pytest.mark.parametrize(("k", "stride", "dilation"), CASES)
@pytest.mark.parametrize("size", [(4, 4), (8, 8), (3, 5)])
def test_small_maps_as_matmul_equal_conv2d(monkeypatch, k, stride, dilation, size):
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 16)
    x, w = _inputs(k, size)
    p = dilation * (k - 1) // 2
    conf = ((stride, stride), (p, p), (dilation, dilation))
    y = depthwise_conv2d(x, w, *conf)
    ref = F.conv2d(x, w, None, stride, p, dilation, groups=x.shape[1])
    assert _uses_matmul(y) == (ref.shape[-1] * ref.shape[-2] <= 16)
    _close(y, ref, "output")
    g = torch.randn_like(ref)
    for got, want, name in zip(
        torch.autograd.grad(y, (x, w), g, create_graph=True),
        torch.autograd.grad(ref, (x, w), g, create_graph=True),
        ("x", "weight"),
        strict=True,
    ):
        _close(got, want, f"gradient of {name}")


def test_small_maps_as_matmul_torch_func_and_float64(monkeypatch):
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 16)
    x, w = _inputs(5, (4, 4))
    x, w = x.detach().double(), w.detach().double()
    t = torch.randn_like(w)
    got = _jvp_of_grad(lambda a, b: depthwise_conv2d(a, b, (1, 1), (2, 2), (1, 1)), x, w, t)
    want = _jvp_of_grad(lambda a, b: F.conv2d(a, b, None, 1, 2, 1, groups=6), x, w, t)
    for a, b, name in zip(got, want, ("x", "weight"), strict=True):
        assert (a - b).abs().max() < 1e-10, f"jvp of the gradient wrt {name}"
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 0)
    assert not _uses_matmul(depthwise_conv2d(x.requires_grad_(), w, (1, 1), (2, 2), (1, 1)))


@pytest.mark.parametrize("size", [(16, 16), (4, 4)])
def test_a_backward_that_stops_before_the_kernel_skips_its_gradient(monkeypatch, size):
    """An architecture step's backward(inputs=alphas) never uses the weights' gradients: the
    Functions skip them (the conv's weight gradient, the matmul's kernel gradient)."""
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 16)
    calls, asked = [], []
    orig_grad, orig_needed = depthwise._weight_grad, depthwise.grad_needed
    monkeypatch.setattr(depthwise, "_weight_grad", lambda *a: (calls.append(1), orig_grad(*a))[1])
    monkeypatch.setattr(
        depthwise,
        "grad_needed",
        lambda ctx, i: (asked.append((i, orig_needed(ctx, i))), asked[-1][1])[1],
    )
    x, w = _inputs(5, size)
    scale = torch.ones(1, requires_grad=True)  # stands for the alphas, upstream of the conv
    y = depthwise_conv2d(x * scale, w * 1.0, (1, 1), (2, 2), (1, 1))
    assert _uses_matmul(y) == (size == (4, 4)) and _uses_fast_backward(y) == (size == (16, 16))
    (g,) = torch.autograd.grad(y.square().sum(), [scale], retain_graph=True)
    assert calls == [] and sorted(asked) == [(0, True), (1, False)]
    ref = F.conv2d(x * scale, w, None, 1, 2, 1, groups=x.shape[1])
    _close(
        g,
        torch.autograd.grad(ref.square().sum(), [scale], retain_graph=True)[0],
        "gradient upstream",
    )
    asked.clear()
    y.square().sum().backward(inputs=[scale], retain_graph=True)
    assert sorted(asked) == [(0, True), (1, False)]
    _close(scale.grad, g, "backward(inputs=...)")
    asked.clear()
    y.square().sum().backward()  # a full backward computes the kernel's gradient
    assert sorted(asked) == [(0, True), (1, True)] and calls == ([1] if size == (16, 16) else [])
    _close(w.grad, torch.autograd.grad(ref.square().sum(), [w])[0], "kernel gradient")


def test_wide_small_maps_run_the_convolution(monkeypatch):
    """Above MAX_MATMUL_MATRIX entries in the conv matrix the convolution runs (same values)."""
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 16)
    x, w = _inputs(5, (8, 8), channels=32)  # stride 2: a [32, 64, 16] matrix, 32,768 entries
    conf = ((2, 2), (2, 2), (1, 1))
    monkeypatch.setattr(depthwise, "MAX_MATMUL_MATRIX", 32 * 64 * 16)
    assert _uses_matmul(depthwise_conv2d(x, w, *conf))
    monkeypatch.setattr(depthwise, "MAX_MATMUL_MATRIX", 32 * 64 * 16 - 1)
    y = depthwise_conv2d(x, w, *conf)
    assert not _uses_matmul(y)
    _close(y, F.conv2d(x, w, None, 2, 2, 1, groups=32), "output")


def test_small_maps_as_matmul_save_x_and_the_kernel_only(monkeypatch):
    monkeypatch.setattr(depthwise, "MATMUL_MAX_OUTPUT_PIXELS", 16)
    x, w = _inputs(5, (4, 4), channels=32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t), t)[1], lambda t: t):
        y = depthwise_conv2d(x, w, (1, 1), (2, 2), (1, 1))
    assert _uses_matmul(y)
    assert sorted(t.numel() for t in saved) == sorted([x.numel(), w.numel()])
