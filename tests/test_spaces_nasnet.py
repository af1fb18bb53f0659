"""Tests for nasviz.spaces.nasnet: the 13 ops, the genotype protocol, NASNet-A, the networks."""

from __future__ import annotations

import json

import pytest
import torch

from nasviz import architectures, genotypes
from nasviz.resources import count_parameters
from nasviz.spaces import nasnet as N
from nasviz.spaces.nasnet import Block, NasnetGenotype, NasnetSpace


def _nasnet_a() -> NasnetGenotype:
    return NasnetGenotype.builtin("nasnet_a")


# ------------------------------------------------------------------------------ ops
def test_thirteen_ops_from_the_paper():
    assert len(N.OPS) == 13 == len(set(N.OPS))


@pytest.mark.parametrize("op", N.OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("C_in", [6, 8])
def test_every_op_maps_channels_and_strides(op, stride, C_in):
    m = N.make_op(op, C_in, 8, stride)
    y = m(torch.randn(2, C_in, 8, 8))
    assert y.shape == (2, 8, 8 // stride, 8 // stride)


def test_op_structure_follows_the_tf_model():
    # separable_kxk_2: the first layer maps C_in -> C_out (depthwise k*k*C_in + pointwise C_in*C_out)
    sep = N.make_op("sep_conv_5x5", 6, 8, 1)
    assert count_parameters(sep) == (25 * 6 + 6 * 8 + 2 * 8) + (25 * 8 + 8 * 8 + 2 * 8)
    assert isinstance(N.make_op("identity", 8, 8, 1), torch.nn.Identity)
    # identity with a stride or a channel change is the TF model's ReLU-1x1-BN
    assert count_parameters(N.make_op("identity", 6, 8, 1)) == 6 * 8 + 16
    assert count_parameters(N.make_op("max_pool_3x3", 8, 8, 2)) == 0
    assert count_parameters(N.make_op("avg_pool_3x3", 6, 8, 1)) == 6 * 8 + 16  # pool, then 1x1
    assert count_parameters(N.make_op("conv_1x7_7x1", 8, 8, 1)) == 2 * 7 * 64 + 16
    assert count_parameters(N.make_op("dil_conv_3x3", 8, 8, 1)) == 9 * 64 + 16
    with pytest.raises(ValueError, match="unknown NASNet op 'skip_connect'"):
        N.make_op("skip_connect", 8, 8, 1)


# ------------------------------------------------------------------------------ the genotype
def test_nasnet_a_matches_the_tf_cell_definitions():
    """NasNetANormalCell / NasNetAReductionCell, with the TF state numbering (0 = h_i) swapped."""
    tf_normal_ops = ["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2",
                     "avg_pool_3x3", "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2",
                     "none"]  # fmt: skip
    tf_normal_idx = [0, 1, 1, 1, 0, 1, 1, 1, 0, 0]
    tf_reduce_ops = ["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2",
                     "avg_pool_3x3", "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2",
                     "max_pool_3x3"]  # fmt: skip
    tf_reduce_idx = [0, 1, 0, 1, 0, 1, 3, 2, 2, 0]
    tf_used = {"normal": [1, 0, 0, 0, 0, 0, 0], "reduce": [1, 1, 1, 0, 0, 0, 0]}

    def ours(op: str) -> str:
        if op == "none":
            return "identity"
        return f"sep_conv_{op.split('_')[1]}" if op.startswith("separable") else op

    swap = {0: 1, 1: 0}
    g = _nasnet_a()
    for cell, ops, idx in (("normal", tf_normal_ops, tf_normal_idx),
                           ("reduce", tf_reduce_ops, tf_reduce_idx)):  # fmt: skip
        flat_ops = [op for b in g.blocks(cell) for op in b.ops]
        flat_idx = [j for b in g.blocks(cell) for j in b.inputs]
        assert flat_ops == [ours(o) for o in ops]
        assert flat_idx == [swap.get(j, j) for j in idx]
        assert {b.combine for b in g.blocks(cell)} == {"add"}
        unused_tf = [j for j, used in enumerate(tf_used[cell]) if not used]
        assert sorted(g.concat(cell)) == sorted(swap.get(j, j) for j in unused_tf)


def test_nasnet_a_agrees_with_the_darts_form_entry_except_the_tf_concats():
    darts = json.loads(
        (genotypes.resources.files("nasviz") / "published_genotypes.json").read_text()
    )["NASNet"]
    g = _nasnet_a()
    for cell in ("normal", "reduce"):
        ours = [
            ("skip_connect" if op == "identity" else op, j)
            for b in g.blocks(cell)
            for j, op in zip(b.inputs, b.ops, strict=True)
        ]
        assert ours == [tuple(e) for e in darts[cell]]
    # the DARTS form concatenates only unread blocks; the TF model adds h_{i-1} / block 1
    assert set(g.concat("normal")) - set(darts["normal_concat"]) == {0}
    assert set(g.concat("reduce")) - set(darts["reduce_concat"]) == {3}


def test_json_round_trip_and_registry():
    g = _nasnet_a()
    d = g.to_dict()
    assert d["kind"] == "nasnet"
    assert architectures.from_dict(json.loads(json.dumps(d))) == g
    assert NasnetGenotype.from_dict(d) == g
    assert NasnetGenotype.builtin_names() == ["nasnet_a"]
    assert NasnetGenotype.builtin("NASNet-A") == g and NasnetGenotype.builtin("darts_v2") is None
    found = architectures.get("nasnet_a")
    # genotypes.py's DARTS-form alias 'nasnet_a' is gone, so the registry finds the NASNet kind
    assert found.kind == "nasnet" and found == g
    assert "nasnet" in architectures.kinds()


def test_default_concat_is_the_unread_blocks():
    blocks = (
        Block((0, 1), ("conv_3x3", "identity")),
        Block((2, 1), ("max_pool_3x3", "conv_1x1")),
    ) + tuple(Block((0, 1), ("identity", "identity")) for _ in range(3))
    g = NasnetGenotype(blocks, blocks)
    assert g.concat("normal") == (3, 4, 5, 6)  # block 0 (state 2) is read by block 1
    assert "normal_concat" not in g.to_dict()


def _bad(**change):
    d = _nasnet_a().to_dict()
    d["normal"] = [dict(b) for b in d["normal"]]
    for key, value in change.items():
        d["normal"][1][key] = value
    return d


@pytest.mark.parametrize(
    "d, message",
    [
        (_bad(ops=["sep_conv_9x9", "identity"]), "unknown op 'sep_conv_9x9'"),
        (_bad(inputs=[0, 3]), r"normal cell, block 1: input 3 is block 1, which is not built yet"),
        (_bad(inputs=[0, -1]), "input -1 is no state"),
        (_bad(combine="mul"), "unknown combine 'mul'"),
        (_bad(inputs=[0]), "inputs must be two state indices"),
        (genotypes.get("darts_v2").to_dict(), r"'darts' architecture .* not a NASNet genotype"),
        (
            {k: v for k, v in genotypes.get("darts_v2").to_dict().items() if k != "kind"},
            "not a NASNet genotype",
        ),  # fmt: skip
        ({"kind": "nasnet", "normal": []}, "missing the key"),
        ({**_nasnet_a().to_dict(), "normal_concat": [0, 9]}, "state 9 does not exist"),
    ],
)
def test_bad_genotypes_name_the_problem(d, message):
    with pytest.raises(ValueError, match=message):
        NasnetGenotype.from_dict(d)


def test_a_darts_genotype_handed_to_a_nasnet_network_is_refused():
    with pytest.raises(ValueError, match="needs a NasnetGenotype .*Genotype \\(kind 'darts'\\)"):
        N.NasnetNetwork(genotypes.get("darts_v2"), N.network_preset("cifar"), 10)


def test_file_round_trip(tmp_path):
    path = architectures.save(_nasnet_a(), tmp_path / "a.json")
    assert architectures.load(path) == _nasnet_a()


# ------------------------------------------------------------------------------ the space
def test_space_size_is_computed_from_the_decisions():
    space = NasnetSpace(combines=("add",))
    decisions = space.decisions()
    assert len(decisions) == 2 * 5 * 4  # add only: input, input, op, op per block
    assert len(NasnetSpace().decisions()) == 50  # the paper's 2 x 5B
    product = 1
    for d in decisions:
        product *= d.num_choices
    assert space.size() == product == N.space_size(num_combines=1)
    # per cell: (2*3*4*5*6)^2 input pairs x 13^10 op choices (x 2^5 combines in the paper's space)
    assert N.space_size(num_combines=1, num_cells=1) == 720**2 * 13**10
    assert N.space_size() == NasnetSpace().size() == N.space_size(num_combines=1) * 2**10


def test_decode_encode_round_trip():
    space = NasnetSpace(combines=("add", "concat"))
    g = NasnetGenotype(_nasnet_a().normal, _nasnet_a().reduce)
    actions = space.encode(g)
    assert space.decode(actions) == g
    with pytest.raises(ValueError, match="expected 50 actions"):
        space.decode(actions[:-1])


# ------------------------------------------------------------------------------ networks
@pytest.mark.parametrize(
    "preset, classes, expected",
    [
        # TF-slim build_nasnet_cifar (cifar_config, 10 classes, no auxiliary head): the slim
        # definition transcribed and built with tf_slim 1.1 / TensorFlow 2.21, summing
        # tf.trainable_variables(). No published PyTorch CIFAR NASNet-A exists to compare with.
        ("cifar", 10, 3_346_538),
        # pretrainedmodels 0.7.4 (Cadene) NASNetAMobile(num_classes=1000): sum of p.numel() over
        # parameters(); the TF-slim build_nasnet_mobile gives the same at 1000 classes.
        ("mobile", 1000, 5_289_978),
        # timm 1.0.31 create_model('nasnetalarge', pretrained=False): sum of p.numel(); the TF-slim
        # build_nasnet_large gives the same at 1000 classes (TF's own head has 1001).
        ("large", 1000, 88_753_150),
    ],
)
def test_nasnet_a_parameter_counts_equal_the_references(preset, classes, expected):
    size = {"cifar": 32, "mobile": 224, "large": 331}[preset]
    net = _nasnet_a().build_network(num_classes=classes, image_size=size, preset=preset)
    assert count_parameters(net) == expected  # without the auxiliary head, as the references


def test_reference_networks_are_the_three_configs():
    nets = _nasnet_a().reference_networks()
    assert [shape for _, _, shape in nets] == [(1, 3, 32, 32), (1, 3, 224, 224), (1, 3, 331, 331)]
    assert [count_parameters(n) for _, n, _ in nets] == [3_346_538, 5_289_978, 88_753_150]


def test_mobile_mult_adds_match_the_paper():
    """Paper Table 2: NASNet-A (4 @ 1056) on 224 px, 564M multiply-adds."""
    from nasviz.resources import count_flops

    net = _nasnet_a().build_network(num_classes=1000, image_size=224, preset="mobile")
    assert round(count_flops(net, (1, 3, 224, 224)) / 2 / 1e6) == 564


def test_cifar_network_layout_and_digits_forward():
    net = _nasnet_a().build_network(num_classes=10, in_channels=1, image_size=8, C=8, layers=2)
    assert len(net.cells) == 3 * 2 + 2
    assert [c.reduction for c in net.cells] == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert net.aux_index == 4  # after the last normal cell of stage 2
    net.train()
    net.drop_path_prob = 0.3
    logits, aux = net(torch.randn(4, 1, 8, 8))
    assert logits.shape == aux.shape == (4, 10)
    net.eval()
    assert net(torch.randn(4, 1, 8, 8))[1] is None


@pytest.mark.parametrize("preset, size", [("mobile", 224), ("large", 331)])
def test_imagenet_stems_run_at_their_resolution(preset, size):
    net = _nasnet_a().build_network(num_classes=7, image_size=size, C=8, layers=1, preset=preset)
    assert len(net.cells) == 2 + 3 + 2  # two stem cells, 3 normal, 2 reduction
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, size, size))[0].shape == (1, 7)


def test_random_genotypes_with_concat_build_and_run():
    space = NasnetSpace(combines=("add", "concat"))
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        actions = [int(torch.randint(d.num_choices, (1,), generator=g)) for d in space.decisions()]
        genotype = space.decode(actions)
        net = genotype.build_network(num_classes=10, in_channels=1, image_size=8, C=4, layers=1)
        net.train()
        net.drop_path_prob = 0.2
        logits, aux = net(torch.randn(2, 1, 8, 8))
        assert logits.shape == (2, 10)
        logits.sum().backward()


# ------------------------------------------------------------------------------ ScheduledDropPath
def test_scheduled_drop_path_follows_the_tf_formula():
    # keep_l = 1 - (l+1)/L * (1 - keep0); keep = 1 - t * (1 - keep_l)
    assert N.scheduled_drop_path_prob(19, 20, 1.0, 0.6) == pytest.approx(0.4)
    assert N.scheduled_drop_path_prob(9, 20, 1.0, 0.6) == pytest.approx(0.2)
    assert N.scheduled_drop_path_prob(19, 20, 0.5, 0.6) == pytest.approx(0.2)
    assert N.scheduled_drop_path_prob(0, 20, 0.0, 0.6) == 0.0
    assert N.scheduled_drop_path_prob(19, 20, 2.0, 0.6) == pytest.approx(0.4)  # progress capped
    with pytest.raises(ValueError, match="cell_index"):
        N.scheduled_drop_path_prob(20, 20, 0.5, 0.6)


def test_network_drop_path_grows_with_depth_and_progress():
    net = _nasnet_a().build_network(num_classes=10, image_size=8, in_channels=1, C=4, layers=1)
    K = len(net.cells)
    net.set_drop_path(0.5)
    for k in range(K):
        expected = N.scheduled_drop_path_prob(k, K, 0.5, 0.6)
        assert net.cell_drop_prob(k) == pytest.approx(expected)
    assert net.cell_drop_prob(0) < net.cell_drop_prob(K - 1)


def test_retrainer_ramps_scheduled_drop_path_on_nasnet_a(data):
    """Retrainer sets drop_path_prob = final * epoch/epochs; the network scales it by depth."""
    from nasviz.train import Retrainer, retrain_preset

    cfg = retrain_preset("smoke", C=4, layers=3, drop_path_prob=0.4, device="cpu", batch_size=16)
    trainer = Retrainer(_nasnet_a(), cfg, train_data=data[0], test_data=data[1])
    result = trainer.run(progress=False)
    assert [m["drop_path_prob"] for m in result.metrics] == [0.0, 0.2]
    net = trainer.model
    K = len(net.cells)
    assert net.cell_drop_prob(K - 1) == pytest.approx(0.2)
    assert net.cell_drop_prob(0) == pytest.approx(0.2 / K)
    assert net.cell_drop_prob(K - 1) == pytest.approx(
        N.scheduled_drop_path_prob(K - 1, K, 0.5, 0.6)
    )


def test_drop_path_zeroes_whole_samples_in_training_only():
    net = _nasnet_a().build_network(num_classes=10, image_size=8, in_channels=1, C=4, layers=1)
    cell = net.cells[0]
    x = torch.randn(64, 12, 8, 8)
    cell.eval()
    a, b = cell(None, x, 0.9), cell(None, x, 0.9)
    assert torch.equal(a, b)  # no drop path in eval mode
    cell.train()
    torch.manual_seed(0)
    c = cell(None, x, 0.0)
    torch.manual_seed(0)
    d = cell(None, x, 0.9)
    assert not torch.allclose(c, d)
