import pytest
import torch

from nasviz.genotypes import PRIMITIVES
from nasviz.spaces.darts import (
    Mixing,
    PartialChannelMixing,
    SearchNetwork,
    SpaceConfig,
    channel_shuffle,
    edge_list,
    normalize_edges,
    num_edges,
    valid_k,
)

SMALL = SpaceConfig(C=8, layers=5, num_classes=10, in_channels=1)


def test_edges():
    assert num_edges(4) == 14
    assert edge_list(4)[:5] == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def test_supernet_shapes_and_parameter_split():
    net = SearchNetwork(SpaceConfig())
    assert net.alpha_normal.shape == net.alpha_reduce.shape == (14, 8)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    arch = {id(p) for p in net.arch_parameters()}
    assert not arch & {id(p) for p in net.weight_parameters()}
    assert len(net.cells) == 8 and [c.reduction for c in net.cells].count(True) == 2


def _pair(seed=0):
    torch.manual_seed(seed)
    darts = SearchNetwork(SMALL, Mixing())
    pc = SearchNetwork(SMALL, PartialChannelMixing(k=1, edge_normalization=False))
    pc.load_state_dict(darts.state_dict())
    return darts, pc


def test_k1_without_betas_is_exactly_darts():
    darts, pc = _pair()
    x = torch.randn(4, 1, 8, 8)
    y = torch.randint(0, 10, (4,))
    out_d, out_p = darts(x), pc(x)
    assert torch.equal(out_d, out_p)
    torch.nn.functional.cross_entropy(out_d, y).backward()
    torch.nn.functional.cross_entropy(out_p, y).backward()
    for (n, a), (_, b) in zip(darts.named_parameters(), pc.named_parameters(), strict=True):
        assert torch.equal(a.grad, b.grad), n


def test_partial_channels_change_the_network():
    torch.manual_seed(0)
    pc4 = SearchNetwork(SMALL, PartialChannelMixing(k=4))
    n4 = sum(p.numel() for p in pc4.weight_parameters())
    n1 = sum(p.numel() for p in SearchNetwork(SMALL, Mixing()).weight_parameters())
    assert n4 < n1 / 2  # the mixed ops run on a quarter of the channels
    assert pc4.beta_normal.shape == (14,)
    assert pc4(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_bad_k_lists_valid_k():
    assert valid_k(SpaceConfig()) == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match=r"K=3 does not divide .* valid K: \[1, 2, 4, 8, 16\]"):
        SearchNetwork(SpaceConfig(), PartialChannelMixing(k=3))
    with pytest.raises(ValueError, match="K must be a positive integer"):
        PartialChannelMixing(k=0)


def test_edge_normalization_sums_to_one_per_node():
    w = normalize_edges(torch.randn(14), 4)
    starts = [0, 2, 5, 9, 14]
    for a, b in zip(starts, starts[1:], strict=False):
        assert torch.isclose(w[a:b].sum(), torch.tensor(1.0))


def test_channel_shuffle_is_a_permutation():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    y = channel_shuffle(x, 4)
    assert sorted(y.flatten().tolist()) == list(range(8))
    assert y.flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_fast_cell_shares_pools_per_state_and_groups_conv_ops():
    fast = SearchNetwork(SMALL, Mixing()).cells[0]
    ref = SearchNetwork(SMALL, Mixing(), reference=True).cells[0]
    pool = PRIMITIVES.index("max_pool_3x3")
    # edges 0, 2, 5, 9 read s0: one pooling module in the fast cell, four in the reference
    assert len({id(fast.edges[e].ops[pool]) for e in (0, 2, 5, 9)}) == 1
    assert len({id(ref.edges[e].ops[pool]) for e in (0, 2, 5, 9)}) == 4
    sep = PRIMITIVES.index("sep_conv_3x3")
    dil5 = PRIMITIVES.index("dil_conv_5x5")
    # s0 and s1 together: sep_conv_3x3/5x5 and dil_conv_3x3 of their 8 edges as one 5x5 group
    g, _ = fast._member[(0, sep)]
    assert fast._groups[g].n == 24 and fast._member[(1, PRIMITIVES.index("dil_conv_3x3"))][0] == g
    assert fast._groups[fast._member[(0, dil5)][0]].n == 8  # dil_conv_5x5 (field 9) alone
    # then one pair of groups per intermediate state (3, 2, 1 readers): 8 groups in all
    assert len(fast._groups) == 8 and fast._groups[fast._member[(13, sep)][0]].n == 3
    assert not ref._groups
