import pytest
import torch

from nasviz.genotypes import PRIMITIVES, Genotype
from nasviz.search import create_search, preset
from nasviz.search.child import (
    child_accuracy,
    fixed_op_weights,
    one_hot_weights,
    plot_child_vs_supernet,
)
from nasviz.spaces.darts import Mixing, PartialChannelMixing, SearchNetwork, SpaceConfig


def test_one_hot_masks_follow_the_genotype():
    concat = [2, 3, 4, 5]
    normal = [("sep_conv_3x3", 0), ("skip_connect", 1)] * 4
    darts = Genotype(normal, concat, [("max_pool_3x3", 0), ("dil_conv_5x5", 1)] * 4, concat)
    m = one_hot_weights(darts, PRIMITIVES, 4)
    assert m["normal"].shape == (14, 8) and m["normal"].sum() == 8  # 2 edges per node, rest removed
    sep = PRIMITIVES.index("sep_conv_3x3")
    assert m["normal"][0, sep] == m["normal"][2, sep] == m["normal"][5, sep] == 1
    assert m["normal"][4].sum() == 0  # node 1's edge from node 0 is not in the genotype
    every = [(i, j) for i in range(4) for j in range(i + 2)]
    edge_all = Genotype(
        [("none" if j == 1 else "sep_conv_3x3", j) for _, j in every], concat,
        [("skip_connect", j) for _, j in every], concat, edge_all=True,
    )  # fmt: skip
    m = one_hot_weights(edge_all, ("none", "sep_conv_3x3", "skip_connect"), 4)
    assert m["normal"].sum() == 10 and m["normal"][1].sum() == 0 and m["reduce"][:, 2].sum() == 14


@pytest.mark.parametrize("mixing", [Mixing(), PartialChannelMixing(2, True)])
def test_fixed_weights_override_and_restore(mixing):
    model = SearchNetwork(SpaceConfig(C=4, layers=3, num_classes=10, in_channels=1), mixing).eval()
    x = torch.randn(2, 1, 8, 8)
    reference = model(x)
    same = {c: mixing.op_weights(a) for c, a in model.alphas().items()}
    with fixed_op_weights(model, same):
        out = model(x)
    if mixing.uses_betas:  # edge weights became 1 instead of softmax(beta): a different network
        assert not torch.allclose(out, reference)
    else:
        torch.testing.assert_close(out, reference)
    torch.testing.assert_close(model(x), reference)  # restored
    assert "op_weights" not in vars(mixing) and (model.betas() is None) == (not mixing.uses_betas)


@pytest.mark.parametrize(
    "method, extra", [("darts", {}), ("pc-darts", dict(k=2)), ("snas", dict(constraint="mild"))]
)
def test_child_accuracy_of_tiny_searches(method, extra, data):
    cfg = preset(
        method,
        "quick",
        C=4,
        layers=3,
        batch_size=8,
        epochs=1,
        max_steps_per_epoch=2,
        warmup_epochs=0,
        **extra,
    )
    search = create_search(cfg, None, train_data=data[0], val_data=data[1])
    search.run(progress=False)
    rng = torch.get_rng_state()
    result = child_accuracy(search)
    assert torch.equal(rng, torch.get_rng_state())
    assert set(result) == {"supernet_acc", "child_acc", "drop", "n"}
    assert result["n"] == len(data[1])  # every validation image, for the noise level
    assert 0 <= result["supernet_acc"] <= 1 and 0 <= result["child_acc"] <= 1
    assert result["drop"] == pytest.approx(result["supernet_acc"] - result["child_acc"])
    assert "op_weights" not in vars(search.model.mixing)


def test_plot_child_vs_supernet():
    fig = plot_child_vs_supernet(
        {
            "darts": dict(supernet_acc=0.8, child_acc=0.3),
            "snas": dict(supernet_acc=0.7, child_acc=0.68),
        }
    )
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and [t.get_text() for t in ax.get_xticklabels()] == [
        "darts",
        "snas",
    ]
    with pytest.raises(ValueError, match="no results"):
        plot_child_vs_supernet({})
