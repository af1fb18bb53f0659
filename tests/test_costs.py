import pytest
import torch

from nasviz.genotypes import PRIMITIVES
from nasviz.spaces.costs import COST_NAMES, expected_cost, op_cost, resource_penalty, supernet_costs
from nasviz.spaces.darts import GumbelMixing, SearchNetwork, SpaceConfig, gumbel_softmax_sample
from nasviz.spaces.operations import make_op

OPS = list(PRIMITIVES)


@pytest.fixture(scope="module")
def table():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = SearchNetwork(SpaceConfig(C=4, layers=3, num_classes=10, in_channels=1), GumbelMixing())
    rng = torch.get_rng_state()
    t = supernet_costs(model, (1, 1, 8, 8))
    assert torch.equal(rng, torch.get_rng_state())  # measuring draws no sample from the global RNG
    torch.set_num_threads(threads)
    return t


def test_table_shape_and_cell_counts(table):
    assert table.counts == {"normal": 1, "reduce": 2}  # layers=3: cells 1 and 2 reduce
    assert table.ops == tuple(PRIMITIVES) and COST_NAMES == ("params", "flops", "mac")
    for t in table.costs.values():
        assert t.shape == (3, 14, 8) and (t >= 0).all()


def test_params_are_the_real_modules(table):
    params = table.cost("params", "normal")
    # normal cell of C=4: every edge is stride 1 on 4 channels, the search ops use BN(affine=False)
    for k, name in enumerate(OPS):
        real = sum(p.numel() for p in make_op(name, 4, 1, affine=False).parameters())
        assert params[0, k].item() == real, name
    assert params[0, OPS.index("sep_conv_3x3")].item() == 2 * (9 * 4 + 4 * 4)
    for name in ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"):
        assert (params[:, OPS.index(name)] == 0).all(), name
    # reduction cells: stride-2 skip = FactorizedReduce (two 1x1 convs); mean over C=8 and C=16
    reduce_skip = table.cost("params", "reduce")[0, OPS.index("skip_connect")].item()
    assert reduce_skip == (2 * 8 * 4 + 2 * 16 * 8) / 2


def test_flops_and_memory_order(table):
    flops, mac = table.cost("flops", "normal"), table.cost("mac", "normal")
    conv = min(
        flops[0, OPS.index(n)]
        for n in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    )
    pool = flops[0, OPS.index("max_pool_3x3")]
    assert conv > pool > flops[0, OPS.index("skip_connect")] == 0
    assert flops[0, OPS.index("avg_pool_3x3")] == pool == 9 * 4 * 8 * 8  # k*k per output element
    assert mac[0, OPS.index("none")] == mac[0, OPS.index("skip_connect")] == 0
    assert (
        mac[0, OPS.index("sep_conv_5x5")]
        > mac[0, OPS.index("sep_conv_3x3")]
        > mac[0, OPS.index("max_pool_3x3")]
        > 0
    )
    # one conv: FLOPs = 2 * MACs of FlopCounterMode; MAC = input + output + weights
    conv1x1 = torch.nn.Conv2d(4, 6, 1, bias=False)
    assert op_cost(conv1x1, (1, 4, 5, 5)) == (24, 2 * 24 * 25, 4 * 25 + 6 * 25 + 24)


def test_expected_cost_is_linear_in_z(table):
    one_hot = torch.zeros(14, 8)
    one_hot[:, OPS.index("sep_conv_3x3")] = 1
    c = table.costs["normal"]
    torch.testing.assert_close(
        expected_cost(c, one_hot), c[:, :, OPS.index("sep_conv_3x3")].sum(-1)
    )
    none = torch.zeros(14, 8)
    none[:, 0] = 1
    assert (expected_cost(c, none) == 0).all()
    penalty = resource_penalty(table, {"normal": none, "reduce": none})
    assert penalty.item() == 0.0  # log(1 + 0)


@pytest.mark.parametrize("form", ["log", "linear"])
def test_penalty_gradient_lowers_expected_cost(table, form):
    gen = torch.Generator().manual_seed(0)
    log_alpha = {
        c: torch.nn.Parameter(1.0 + 0.01 * torch.randn(14, 8, generator=gen)) for c in table.costs
    }
    opt = torch.optim.SGD(log_alpha.values(), lr=20.0)

    def mean_cost() -> torch.Tensor:  # expected cost under p = softmax(log_alpha)
        with torch.no_grad():
            return torch.stack(
                [expected_cost(table.costs[c], a.softmax(-1)) for c, a in log_alpha.items()]
            ).mean(0)

    before = mean_cost()
    for _ in range(10):
        opt.zero_grad()
        z = {c: gumbel_softmax_sample(a, 1.0, gen) for c, a in log_alpha.items()}
        resource_penalty(table, z, form).backward()
        opt.step()
    after = mean_cost()
    assert (after < 0.95 * before).all(), (before, after)


def test_bad_cost_names(table):
    with pytest.raises(ValueError, match="'latency'.*params, flops, mac"):
        table.cost("latency")
    with pytest.raises(ValueError, match="'sqrt'"):
        resource_penalty(table, {c: torch.ones(14, 8) / 8 for c in table.costs}, "sqrt")
