import pytest
import torch

from nasviz import genotypes as G
from nasviz.models import NetworkCIFAR, NetworkImageNet
from nasviz.resources import count_flops, count_parameters, measure_latency


@pytest.mark.parametrize("name, expected", [("darts_v2", 3_349_342), ("pc_darts", 3_634_678)])
def test_parameter_counts_equal_official_code(name, expected):
    model = NetworkCIFAR(36, 10, 20, True, G.get(name))
    assert count_parameters(model) == expected
    assert count_parameters(model, include_auxiliary=True) > expected


def test_forward_shapes_train_and_eval():
    model = NetworkCIFAR(8, 10, 5, True, "darts_v2")
    model.drop_path_prob = 0.2
    model.train()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    model.eval()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    assert aux is None


def test_digits_shaped_input_with_auxiliary():
    model = NetworkCIFAR(8, 10, 5, True, "pc_darts", in_channels=1)
    logits, aux = model(torch.randn(2, 1, 8, 8))
    assert logits.shape == aux.shape == (2, 10)


@pytest.mark.parametrize("name", ["snas_aggressive_edge_all", "nasnet", "amoebanet", "snas_mild"])
def test_other_published_cells_build(name):
    model = NetworkCIFAR(8, 10, 5, False, name)
    model.eval()
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 10)


def test_edge_all_vanished_node_outputs_zeros():
    # In SNAS aggressive's reduce cell nodes 2 and 3 (states 4, 5) keep only 'none' edges.
    model = NetworkCIFAR(8, 10, 5, False, "snas_aggressive_edge_all")
    cell = model.cells[1]
    assert cell.reduction and cell.node_inputs[2] == [] and cell.node_inputs[3] == []


def test_imagenet_mobile_network():
    model = NetworkImageNet(48, 1000, 14, True, "pc_darts_image")
    assert 5.2e6 < count_parameters(model) < 5.5e6  # paper: 5.3M


def test_flops_and_latency():
    model = NetworkCIFAR(8, 10, 5, False, "darts_v2")
    flops = count_flops(model, (1, 3, 32, 32))
    assert flops > 0
    assert count_flops(model, (2, 3, 32, 32)) == 2 * flops
    assert measure_latency(model, (1, 3, 32, 32), warmup=1, repeats=2) > 0


def _all_none(edge_all=False):
    g = G.get("snas_mild_edge_all" if edge_all else "darts_v2")
    reduce = tuple(("none", j) for _, j in g.reduce)
    return G.Genotype(g.normal, g.normal_concat, reduce, g.reduce_concat, g.edge_all)


@pytest.mark.parametrize("edge_all", [False, True])
def test_degenerate_genotype_is_refused_unless_allowed(edge_all):
    g = _all_none(edge_all)
    for build in (
        lambda **kw: NetworkCIFAR(8, 10, 5, False, g, **kw),
        lambda **kw: NetworkImageNet(8, 10, 5, False, g, **kw),
        lambda **kw: g.build_network(num_classes=10, C=8, layers=5, **kw),
    ):
        with pytest.raises(ValueError, match="degenerate genotype: the reduce cell outputs zeros"):
            build()
        model = build(allow_degenerate=True).eval()
        assert model.cells[1].reduction and model.cells[1].node_inputs == [[]] * 4
    # what the refusal protects from: the reduction cell's output is zeros whatever the input
    model = NetworkCIFAR(8, 10, 5, False, g, allow_degenerate=True).eval()
    s0, s1 = torch.randn(2, 24, 32, 32), torch.randn(2, 32, 32, 32)  # stem 3C, cell 0 4C
    assert torch.count_nonzero(model.cells[1](s0, s1)) == 0


def test_network_validates_a_genotype_made_in_code():
    g = G.get("darts_v2")
    bad = G.Genotype((("conv_9x9", 0),) + g.normal[1:], g.normal_concat, g.reduce, g.reduce_concat)
    with pytest.raises(ValueError, match="normal cell, node 0: unknown op 'conv_9x9'"):
        NetworkCIFAR(8, 10, 5, False, bad)


def test_reference_networks_report_a_degenerate_genotype_only_when_asked():
    g = _all_none()
    with pytest.raises(ValueError, match="degenerate"):
        g.reference_networks()
    ((desc, net, shape),) = g.reference_networks(allow_degenerate=True)
    assert "C=36" in desc and shape == (1, 3, 32, 32) and count_parameters(net) > 0
