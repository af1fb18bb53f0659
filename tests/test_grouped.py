"""The grouped 1x1 conv as a matmul (nasviz.spaces.grouped._pointwise) computes F.conv2d; the
tied BNs of a group are each member's BN."""

import copy

import pytest
import torch
import torch.nn.functional as F

from nasviz.spaces import grouped
from nasviz.spaces.functions import FOLD_MAX_PIXELS
from nasviz.spaces.grouped import _pointwise, _tied, tie_batch_norms, tied_batch_norm


def _inputs(
    batch: int, groups: int, c: int = 4, c_out: int = 3, dtype=torch.float32, size: int = 5
):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, groups * c, size, size, generator=gen, dtype=dtype, requires_grad=True)
    w = torch.randn(groups * c_out, c, 1, 1, generator=gen, dtype=dtype, requires_grad=True)
    return x, w


@pytest.mark.parametrize(
    ("batch", "groups", "size"),
    # maps of 5x5 run the broadcast matmul, of 4x4 and less the batch folded into the columns
    [(8, 6, 5), (3, 24, 5), (8, 2, 5), (16, 6, 5), (32, 1, 5), (8, 6, 2), (5, 24, 4), (3, 2, 1)],
)
def test_pointwise_equals_grouped_conv_with_gradients(batch, groups, size):
    assert (size * size <= FOLD_MAX_PIXELS) == (size < 5)
    x, w = _inputs(batch, groups, dtype=torch.float64, size=size)
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


@pytest.mark.parametrize("size", [5, 2])
def test_pointwise_torch_func_jvp_of_grad(size):
    """torch.func.jvp of torch.func.grad (the exact Hessian-vector product's path)."""
    x, w = (t.detach() for t in _inputs(8, 6, dtype=torch.float64, size=size))
    t = torch.randn_like(w)

    def jvp_of_grad(conv):
        grad = torch.func.grad(lambda a, b: conv(a, b).tanh().sum(), argnums=(0, 1))
        return torch.func.jvp(lambda b: grad(x, b), (w,), (t,))[1]

    got = jvp_of_grad(lambda a, b: _pointwise(a, b, 6))
    want = jvp_of_grad(lambda a, b: F.conv2d(a, b, None, groups=6))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", [5, 2])
def test_pointwise_matmul_saves_its_two_inputs_only(size):
    x, w = _inputs(8, 24, size=size)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t), t)[1], lambda t: t):
        _pointwise(x, w, 24)
    assert sorted(t.numel() for t in saved) == sorted([x.numel(), w.numel()])


def test_tied_batch_norm_is_each_bn_and_notices_a_replaced_buffer():
    """Tied, the wide BN is each member's BN on its channels (outputs and running statistics);
    a member whose running mean was replaced (here by a view of another flat buffer, as a
    second tie would make) is no longer tied, and each BN then runs on its own."""
    torch.manual_seed(0)
    bns = [torch.nn.BatchNorm2d(4, affine=False) for _ in range(3)]
    flat = tie_batch_norms(bns)
    assert _tied(flat, bns)
    for replace in (False, True):
        if replace:
            other = tie_batch_norms([torch.nn.BatchNorm2d(4, affine=False)])
            bns[1].running_mean = other["running_mean"].view(4)
            assert not _tied(flat, bns) and _tied(flat, [bns[0], bns[2]])
        twins = [copy.deepcopy(bn) for bn in bns]
        _assert_tied_is_each_bn(torch.randn(2, 12, 5, 5) * 3 + 1, flat, bns, twins)


def _assert_tied_is_each_bn(x, flat, bns, twins) -> None:
    """tied_batch_norm(x) over ``bns`` equals each twin BN on its channels: outputs, running
    statistics and batch counts."""
    out = tied_batch_norm(x, flat, bns)
    expected = torch.cat([b(part) for b, part in zip(twins, x.chunk(len(bns), 1), strict=True)], 1)
    torch.testing.assert_close(out, expected)
    for bn, twin in zip(bns, twins, strict=True):
        torch.testing.assert_close(bn.running_mean, twin.running_mean)
        torch.testing.assert_close(bn.running_var, twin.running_var)
        assert int(bn.num_batches_tracked) == int(twin.num_batches_tracked)


def test_tied_batch_norm_cumulative_average_is_each_bn():
    """momentum None (a cumulative average, as `recalibrated_bn` sets it): the tied BN updates
    with factor 1/count like each member; members counted apart each keep their own count."""
    torch.manual_seed(0)
    bns = [torch.nn.BatchNorm2d(4) for _ in range(3)]
    flat = tie_batch_norms(bns)
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    twins = [copy.deepcopy(bn) for bn in bns]
    for step in range(4):
        if step == 2:  # one member counted apart: each BN runs on its own from here
            bns[1].num_batches_tracked.add_(5)
            twins[1].num_batches_tracked.add_(5)
        _assert_tied_is_each_bn(torch.randn(6, 12, 3, 3) * (step + 1) + step, flat, bns, twins)
    assert _tied(flat, bns)  # still views of the flat buffers
    for bn in bns + twins:
        bn.eval()
    _assert_tied_is_each_bn(torch.randn(2, 12, 3, 3), flat, bns, twins)
