import pytest
import torch
from torch import nn

from nasviz.genotypes import EXTRA_OPS, PRIMITIVES
from nasviz.spaces.operations import (
    OPS,
    DepthwiseConv2d,
    FactorizedReduce,
    make_op,
    starts_with_relu,
)


@pytest.mark.parametrize("name", PRIMITIVES + EXTRA_OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_output_shape(name, stride, size):
    op = make_op(name, 16, stride, affine=True)
    y = op(torch.randn(2, 16, size, size))
    expected = size if stride == 1 else (size + 1) // 2
    assert y.shape == (2, 16, expected, expected)


def test_ops_are_bias_free_and_none_is_zero():
    for name in OPS:
        for m in make_op(name, 8, 1).modules():
            if isinstance(m, torch.nn.Conv2d):
                assert m.bias is None, name
    x = torch.randn(2, 8, 6, 6)
    assert torch.count_nonzero(make_op("none", 8, 2)(x)) == 0


def test_factorized_reduce_uses_shifted_input():
    fr = FactorizedReduce(4, 8)
    x = torch.zeros(1, 4, 4, 4)
    x[..., 1, 1] = 1.0  # only visible to the shifted branch (odd position)
    fr.eval()
    y = fr(x)
    a, b = y[:, :4], y[:, 4:]
    assert not torch.allclose(b, b[..., :1, :1].expand_as(b))  # the shifted half sees the pixel
    assert torch.allclose(a, a[..., :1, :1].expand_as(a))  # the plain half does not


def test_unknown_op():
    with pytest.raises(ValueError, match="unknown operation 'conv_9x9'"):
        make_op("conv_9x9", 8, 1)


@pytest.mark.parametrize("name", ["sep_conv_3x3", "dil_conv_5x5", "skip_connect", "conv_7x1_1x7"])
def test_after_relu_is_the_op_without_its_leading_relu(name):
    op = make_op(name, 8, 2, affine=False)  # stride 2: skip_connect is a FactorizedReduce
    assert starts_with_relu(op)
    x = torch.randn(2, 8, 7, 7)
    assert torch.equal(op.after_relu(torch.relu(x)), op(x))


def test_ops_with_another_leading_activation_are_not_shared():
    op = make_op("sep_conv_3x3", 8, 1)
    op[0][0] = torch.nn.Softplus()
    assert not starts_with_relu(op)
    assert not starts_with_relu(make_op("max_pool_3x3", 8, 1))


def _factorized_reduce_by_convs(fr: FactorizedReduce, x: torch.Tensor) -> torch.Tensor:
    """The paper's formula: two stride-2 1x1 convs, the second on the input shifted by a pixel."""
    a = fr.conv_1(x)
    b = fr.conv_2(torch.nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)))
    return torch.cat([a, b[:, :, : a.shape[2], : a.shape[3]]], dim=1)


@pytest.mark.parametrize("size", [(8, 8), (7, 7), (6, 9), (1, 1)])
def test_factorized_reduce_matmul_equals_the_two_convs(size):
    torch.manual_seed(0)
    fr = FactorizedReduce(6, 10).double()
    x = torch.randn(3, 6, *size, dtype=torch.float64, requires_grad=True)
    assert fr._plain_convs()
    fast = fr._both_convs(x)
    ref = _factorized_reduce_by_convs(fr, x)
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    params = [x, fr.conv_1.weight, fr.conv_2.weight]
    grads_fast = torch.autograd.grad(fast, params, g)
    grads_ref = torch.autograd.grad(ref, params, g)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_factorized_reduce_with_hooked_or_changed_convs_runs_them():
    fr = FactorizedReduce(4, 8)
    calls = []
    handle = fr.conv_2.register_forward_hook(lambda *_: calls.append(1))
    assert not fr._plain_convs()
    fr(torch.randn(2, 4, 6, 6))
    assert calls == [1]
    handle.remove()
    assert fr._plain_convs()
    fr.conv_1 = torch.nn.Conv2d(4, 4, 1, stride=2, bias=True)
    assert not fr._plain_convs()
    assert fr(torch.randn(2, 4, 6, 6)).shape == (2, 8, 3, 3)


@pytest.mark.parametrize(
    ("kernel", "dilation", "stride", "size"),
    [
        (3, 1, 1, 8),
        (5, 1, 1, 8),
        (3, 2, 1, 8),
        (5, 2, 2, 8),
        (5, 1, 1, 4),
        (3, 2, 1, 2),
        (5, 1, 2, 16),
    ],
)
def test_depthwise_conv_module_is_nn_conv2d(kernel, dilation, stride, size):
    """DepthwiseConv2d (the depthwise conv of sep_conv / dil_conv) computes nn.Conv2d's
    function and gradients on every path of depthwise_conv2d (matmul on small maps, the cheaper
    backward, torch's conv), with the same parameter and state-dict key."""
    torch.manual_seed(0)
    padding = dilation * (kernel - 1) // 2
    ours = DepthwiseConv2d(24, kernel, stride, padding, dilation)
    plain = nn.Conv2d(24, 24, kernel, stride, padding, dilation=dilation, groups=24, bias=False)
    plain.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(plain.state_dict()) == ["weight"]
    x = torch.randn(16, 24, size, size, requires_grad=True)
    outs = [m(x) for m in (ours, plain)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    g = torch.randn_like(outs[1])
    got = torch.autograd.grad(outs[0], (x, ours.weight), g)
    want = torch.autograd.grad(outs[1], (x, plain.weight), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [2, 4, 16])
def test_flop_counter_sees_the_depthwise_convolution(size):
    """Under torch's FLOP counter a dil_conv counts as its convolutions, as with nn.Conv2d
    (the matmul that replaces a depthwise conv on small maps would count otherwise)."""
    from torch.utils.flop_counter import FlopCounterMode

    op = make_op("dil_conv_5x5", 16, 1, affine=False)
    plain = nn.Sequential(
        nn.ReLU(), nn.Conv2d(16, 16, 5, 1, 4, dilation=2, groups=16, bias=False),
        nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16, affine=False),
    )  # fmt: skip
    x = torch.randn(8, 16, size, size)
    counts = []
    for module in (op, plain):
        with FlopCounterMode(display=False) as counter:
            module(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
