"""Cream space: the released models at the official counts, the FLOPs table, paths, sampling."""

import itertools
import json

import pytest
import torch

from nasviz import architectures
from nasviz.resources import count_flops, count_parameters
from nasviz.spaces.cream import (
    CHOICES,
    OFFICIAL_COUNTS,
    RELEASED,
    CreamNetwork,
    CreamPath,
    CreamSpace,
    CreamSupernet,
    official_layout,
    stride_plan,
)

# Read from the official code (microsoft/Cream at 4a13c40, Cream/): each child network built on
# CPU with its own gen_childnet (tools/retrain.py's arch lists and resolutions, timm 0.1.20),
# outside this repository; parameters = sum of p.numel(), FLOPs = torch.utils.flop_counter on
# one zero image at the model's resolution (the same counter as our table). For reference, the
# official counters give in millions of multiply-adds: thop 14.418 / 43.922 / 118.689 / 296.575 /
# 499.436 / 625.786, ptflops 13.93 / 42.65 / 115.14 / 288.73 / 484.93 / 608.50.
OFFICIAL = {
    "cream_14m": (64, 2_673_096, 26_377_216),
    "cream_43m": (96, 4_398_600, 81_310_464),
    "cream_114m": (160, 4_410_120, 219_247_360),
    "cream_287m": (224, 6_044_368, 552_524_032),
    "cream_481m": (224, 7_713_360, 920_796_160),
    "cream_604m": (224, 9_695_624, 1_157_396_736),
}
# The official search supernet for 0-600M (gen_supernet(0, 600)): parameters without its
# meta layer, read the same way.
OFFICIAL_SUPERNET_PARAMS = 29_805_072


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_released_model_matches_the_official_child_network(name):
    resolution, params, flops = OFFICIAL[name]
    path = architectures.get(name)
    assert path.resolution == resolution
    net = path.build_network(num_classes=1000, image_size=resolution)
    assert count_parameters(net) == params
    assert count_flops(net, (1, 3, resolution, resolution)) == flops
    assert path.flops() == flops  # the table agrees with the counter on the whole network
    # The names count multiply-adds with BN/activation element ops (ptflops); the counter here
    # counts conv/linear multiply-adds only, 3.5-6% fewer.
    named = int(name.split("_")[1][:-1])
    assert 0.93 * named < path.madds() < named
    assert OFFICIAL_COUNTS[name] == (params, named)  # what `nasviz info` may print as official


def test_reference_network_is_imagenet_at_the_path_resolution():
    ((desc, net, shape),) = RELEASED["cream_14m"].reference_networks()
    assert shape == (1, 3, 64, 64) and "1000 classes" in desc
    logits, aux = net.eval()(torch.zeros(shape))
    assert logits.shape == (1, 1000) and aux is None


def test_a_path_found_on_8px_digits_is_reported_at_imagenet_scale():
    path = CreamSpace.digits().random_path(torch.Generator().manual_seed(0), (0.0, 100.0))
    ((desc, _, shape),) = path.reference_networks()
    assert (
        shape == (1, 3, 224, 224) and desc == "ImageNet at 224 px (1000 classes; searched at 8 px)"
    )


def test_official_supernet_parameter_count():
    space = CreamSpace.for_flops(0, 600)
    assert space.depths == (4, 4, 5, 4, 4) and space.image_size == 224
    assert count_parameters(CreamSupernet(space)) == OFFICIAL_SUPERNET_PARAMS


@pytest.mark.parametrize(
    "flops_range, depths, resolution",
    [
        ((0, 600), (4, 4, 5, 4, 4), 224),
        ((0, 300), (1, 2, 3, 3, 3), 224),
        ((0, 100), (1, 1, 1, 1, 1), 224),
        ((0, 50), (1, 1, 1, 1, 1), 160),
        ((0, 20), (1, 1, 1, 1, 1), 96),
    ],
)
def test_official_layout_rule(flops_range, depths, resolution):
    """The layouts the official gen_supernet picks for these ranges (PAPERS.md, and rerun)."""
    assert official_layout(*flops_range) == (depths, resolution)


def test_stride_plan_drops_the_earliest_strides_for_small_inputs():
    assert stride_plan(224) == (2, (2, 2, 2, 1, 2))
    assert stride_plan(64) == (2, (2, 2, 2, 1, 2))  # the paper's smallest resolution: all kept
    assert stride_plan(32) == (1, (2, 2, 2, 1, 2))
    assert stride_plan(8) == (1, (1, 1, 2, 1, 2))  # digits: 8 -> 4 -> 2


@pytest.fixture(scope="module")
def digits():
    return CreamSpace.digits(depths=(1, 2, 2, 1, 2), width=0.5)


def test_table_equals_the_flop_counter_on_whole_paths(digits):
    g = torch.Generator().manual_seed(3)
    supernet = CreamSupernet(digits).eval()
    for _ in range(3):
        path = digits.random_path(g)
        child = CreamNetwork(path, digits)
        assert count_flops(child, (1, 1, 8, 8)) == digits.flops(path)

        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            supernet(torch.zeros(1, 1, 8, 8), path)
        assert counter.get_total_flops() == digits.flops(path)


def test_table_is_per_resolution_and_width():
    path = CreamPath(stages=((1,), (2, 3), (4,), (5,), (0,)), resolution=8)
    small = path.flops(image_size=8, width=0.5, in_channels=1, num_classes=10)
    wide = path.flops(image_size=8, width=1.0, in_channels=1, num_classes=10)
    bigger = path.flops(image_size=16, width=0.5, in_channels=1, num_classes=10)
    assert small < wide and small < bigger


def test_supernet_path_equals_its_child_with_inherited_weights(digits):
    supernet = CreamSupernet(digits).eval()
    path = digits.random_path(torch.Generator().manual_seed(1))
    child = supernet.child(path).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(supernet(x, path), child(x)[0], atol=1e-6)


def test_a_path_trains_only_its_own_blocks(digits):
    supernet = CreamSupernet(digits)
    path = CreamPath(stages=((0,), (1, 2), (3, 4), (5,), (0, 1)), resolution=8)
    loss = supernet(torch.randn(4, 1, 8, 8), path).logsumexp(1).mean()
    loss.backward()
    used = set(supernet.path_parameter_names(path))
    touched = {n for n, p in supernet.named_parameters() if p.grad is not None}
    assert touched == used
    assert "blocks.2.1.2.conv_dw.weight" in used and "blocks.2.1.3.conv_dw.weight" not in used


def test_random_path_is_uniform_over_the_paths_in_range():
    """Compare per-layer choice frequencies with the exact ones over every path in the range."""
    space = CreamSpace.digits(depths=(1, 1, 1, 1, 1), width=0.5)
    table = space.table()
    lo, hi = space.madds_bounds()
    flops_range = (lo + 0.6 * (hi - lo), lo + 0.8 * (hi - lo))
    inside = [
        c
        for c in itertools.product(range(len(CHOICES)), repeat=5)
        if flops_range[0] * 2e6 <= table.flops([[x] for x in c]) <= flops_range[1] * 2e6
    ]
    exact = torch.zeros(5, len(CHOICES))
    for c in inside:
        exact[torch.arange(5), torch.tensor(c)] += 1 / len(inside)
    g = torch.Generator().manual_seed(0)
    n = 3000
    seen = torch.zeros(5, len(CHOICES))
    for _ in range(n):
        path = space.random_path(g, flops_range)
        assert flops_range[0] <= space.madds(path) <= flops_range[1]
        seen[torch.arange(5), torch.tensor([s[0] for s in path.stages])] += 1 / n
    assert (seen - exact).abs().max() < 0.035  # ~4 standard errors at n=3000
    # the range really skews the marginals: plain uniform choices would fail the check above
    assert (exact - 1 / len(CHOICES)).abs().max() > 0.1


def test_layer_names_follow_the_network_order(digits):
    names = digits.layer_names()
    assert names[:3] == ["stage1.layer1", "stage2.layer1", "stage2.layer2"]
    assert len(names) == digits.num_layers() == 8 and digits.num_paths() == 6**8


def test_random_path_is_reproducible_and_respects_depths(digits):
    a = digits.random_path(torch.Generator().manual_seed(5), (2.5, 4.0))
    b = digits.random_path(torch.Generator().manual_seed(5), (2.5, 4.0))
    assert a == b and a.depths == digits.depths and a.resolution == 8


def test_impossible_flops_range_names_the_smallest_and_largest_paths(digits):
    lo, hi = digits.madds_bounds()
    with pytest.raises(ValueError, match=f"{lo:.2f}M .smallest. to {hi:.2f}M .largest."):
        digits.random_path(torch.Generator(), (hi + 1, hi + 2))
    with pytest.raises(ValueError, match="0 <= min <= max"):
        digits.random_path(torch.Generator(), (3, 2))


def test_path_json_round_trip_and_the_official_list_form(tmp_path):
    path = RELEASED["cream_481m"]
    d = path.to_dict()
    assert d["kind"] == "cream" and json.loads(json.dumps(d)) == d
    assert architectures.from_dict(d) == path
    file = architectures.save(path, tmp_path / "p.json")
    assert architectures.load(file) == path
    official = {"stages": [[0], [3, 4, 3, 1], [3, 2, 3, 0], [3, 3, 3, 1, 1], [3, 3, 3, 3],
                           [3, 3, 3, 3], [0]], "resolution": 224}  # fmt: skip
    assert CreamPath.from_dict(official) == path


@pytest.mark.parametrize(
    "stages, message",
    [
        ([[0], [1, 6], [0], [0], [0]], r"stage 2 \(40 ch\), layer 2: choice 6 is not allowed"),
        ([[0], [1], [-1], [0], [0]], r"stage 3 \(80 ch\), layer 1: choice -1"),
        ([[0], [1], [0], [True], [0]], r"stage 4 \(96 ch\), layer 1: choice True"),
        ([[0], [1], [0], [0], ["k3e4"]], r"stage 5 \(192 ch\), layer 1"),
        ([[0], [], [0], [0], [0]], r"stage 2 \(40 ch\) of the path has no layer"),
        ([[0], [0], [0], [0]], r"5 searchable stages"),
    ],
)
def test_bad_choices_name_the_layer(stages, message):
    with pytest.raises(ValueError, match=message):
        architectures.from_dict({"kind": "cream", "stages": stages})


def test_a_path_of_other_depths_is_refused_by_the_space(digits):
    path = CreamPath(stages=((0,), (0,), (0,), (0,), (0,)), resolution=8)
    with pytest.raises(ValueError, match=r"stage 2 \(40 ch\) of the path has 1 layer"):
        digits.flops(path)


def test_build_network_scales_for_digits_and_refuses_layers():
    path = RELEASED["cream_287m"]
    net = path.build_network(num_classes=10, in_channels=1, image_size=8, C=8)
    assert net.conv_stem.out_channels == 8 and net.conv_stem.stride == (1, 1)
    assert net.classifier.in_features == 640  # the head scales with the width too
    logits, aux = net(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 10) and aux is None
    with pytest.raises(ValueError, match="fixes its own depth"):
        path.build_network(num_classes=10, layers=8)


def test_a_path_is_an_architecture():
    path = architectures.resolve("cream_287m")
    assert isinstance(path, architectures.Architecture) and path.kind == "cream"
    assert architectures.resolve(path) is path


def test_builtin_names():
    assert CreamPath.builtin_names() == [
        "cream_14m", "cream_43m", "cream_114m", "cream_287m", "cream_481m", "cream_604m"
    ]  # fmt: skip
    assert CreamPath.builtin("Cream-287") is RELEASED["cream_287m"]
    assert CreamPath.builtin("darts_v2") is None
    assert "cream" in architectures.kinds()


def test_graph_draws_one_box_per_layer():
    pytest.importorskip("graphviz")
    source = RELEASED["cream_43m"].graph(title="43m").source
    assert source.count("MBConv") == 10 and "MBConv k5 e6\n40 ch, s2" in source
    assert "stage 5: 192 ch" in source and "1000 classes" in source
