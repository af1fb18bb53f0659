"""recalibrated_bn: BN statistics recomputed from data for an evaluation, then put back."""

import pytest
import torch
from torch import nn

from nasviz.bn_calibration import batch_norms, recalibrated_bn

CPU = torch.device("cpu")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())


def _batches(n: int = 4, size: int = 16):
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 3, 5, 5, generator=gen) * 3 + 2, None) for _ in range(n)]


def test_eval_uses_the_datas_statistics_and_the_old_ones_come_back() -> None:
    net = _net()
    bn = net[1]
    bn.running_mean.fill_(50.0)  # stale statistics, as after a few fast-moving steps
    bn.running_var.fill_(1e4)
    bn.num_batches_tracked.fill_(7)
    batches = _batches()
    x = torch.cat([b[0] for b in batches])
    with torch.no_grad():
        feats = net[0](x)
    net.eval()
    with torch.no_grad(), recalibrated_bn(net, batches, CPU, amp=False, max_images=10**6) as m:
        assert not m.training  # the block runs in the mode the model was in
        torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)))
        # the cumulative average of the per-batch (unbiased) variances
        per_batch = torch.stack([f.var(dim=(0, 2, 3)) for f in feats.split(16)])
        torch.testing.assert_close(bn.running_var, per_batch.mean(0), rtol=1e-4, atol=1e-5)
        out = m(x)
    assert out.std() > 0.1  # normalized with the data's statistics, not crushed to ~0
    assert torch.all(bn.running_mean == 50.0) and torch.all(bn.running_var == 1e4)
    assert bn.num_batches_tracked.item() == 7 and bn.momentum == 0.1 and not net.training


def test_max_images_limits_the_batches_used() -> None:
    net = _net()
    seen = []

    class Counting(list):
        def __iter__(self):
            for b in super().__iter__():
                seen.append(len(b[0]))
                yield b

    with recalibrated_bn(net, Counting(_batches(4)), CPU, amp=False, max_images=20):
        assert net[1].num_batches_tracked.item() == 2
    assert seen == [16, 16] and net.training


def test_bad_input_is_named() -> None:
    net = _net()
    with pytest.raises(ValueError, match="max_images"):
        with recalibrated_bn(net, _batches(), CPU, max_images=0):
            pass
    with pytest.raises(ValueError, match="no calibration batches"):
        with recalibrated_bn(net, [], CPU):
            pass
    assert batch_norms(nn.Linear(2, 2)) == []


def test_the_global_random_stream_is_left_alone() -> None:
    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(2)

        def forward(self, x):
            return self.bn(x + torch.rand_like(x))  # a sampling forward, like SNAS's

    net, batches = Noisy(), [(torch.ones(8, 2), None)]
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    with recalibrated_bn(net, batches, CPU, amp=False):
        pass
    assert torch.equal(torch.rand(1), expected)
