"""Verdicts from a run say only what its numbers support."""

import numpy as np
import pytest

from nasviz.analysis import (
    accuracy_noise,
    child_claim_verdict,
    choice_share,
    collapse_report,
    compare_accuracies,
    edges_differing,
    trend,
)
from nasviz.genotypes import PRIMITIVES, get
from nasviz.history import SearchHistory, darts_edge_labels


def _history(skip_probs):
    """A DARTS-like history whose normal-cell edges put ``p`` on skip_connect at each epoch."""
    h = SearchHistory("darts", {})
    h.declare_group("alpha/normal", rows=darts_edge_labels(), cols=list(PRIMITIVES), title="a")
    skip = PRIMITIVES.index("skip_connect")
    for epoch, p in enumerate(skip_probs):
        rows = np.full((14, 8), (1 - p) / 7)
        rows[:, skip] = p
        h.log(epoch, epoch, metrics={}, groups={"alpha/normal": rows})
    return h


def test_choice_share_and_trend():
    h = _history([0.125, 0.3])
    x, share = choice_share(h, "alpha/normal", ["skip_connect"])
    np.testing.assert_allclose(share, [0.125, 0.3])
    assert list(x) == [0, 1]
    assert trend(0.125, 0.125) == "stayed level" and trend(0.125, 0.1253) == "stayed level"
    assert trend(0.125, 0.3) == "rose" and trend(0.3, 0.1) == "fell"
    with pytest.raises(ValueError, match="no choice 'skip'"):
        choice_share(h, "alpha/normal", ["skip"])


def test_collapse_verdict_never_says_rose_for_a_level_share():
    level = collapse_report(_history([0.125, 0.125]), get("DARTS_V2"))
    assert level["skip_trend"] == "stayed level" and "rose" not in level["verdict"]
    assert level["verdict"].startswith("no sign of the collapse")
    risen = collapse_report(_history([0.125, 0.6]), get("PC_DARTS_cifar"))  # 1 skip_connect
    assert risen["skip_trend"] == "rose" and "not the collapse" in risen["verdict"]
    collapsed = collapse_report(_history([0.125, 0.6]), get("DARTS_V1"))  # 3 skip_connect
    assert collapsed["verdict"].startswith("this run shows the collapse signature")


def test_child_verdict_needs_a_darts_drop_larger_than_noise():
    n = 180
    no_drop = {
        "SNAS": {"supernet_acc": 0.5, "drop": 0.0},
        "DARTS": {"supernet_acc": 0.5, "drop": 0.0},
    }
    assert "does not test the claim" in child_claim_verdict(no_drop, n)
    agree = {
        "SNAS": {"supernet_acc": 0.9, "drop": 0.01},
        "DARTS": {"supernet_acc": 0.9, "drop": 0.4},
    }
    assert "agrees with the claim" in child_claim_verdict(agree, n)
    both = {"SNAS": {"supernet_acc": 0.9, "drop": 0.2}, "DARTS": {"supernet_acc": 0.9, "drop": 0.5}}
    assert "partly agrees" in child_claim_verdict(both, n)
    worse = {
        "SNAS": {"supernet_acc": 0.9, "drop": 0.5},
        "DARTS": {"supernet_acc": 0.9, "drop": 0.3},
    }
    assert "does not reproduce" in child_claim_verdict(worse, n)
    untrained = {"SNAS": {"supernet_acc": 0.11, "drop": 0.0}, "DARTS": agree["DARTS"]}
    assert "SNAS supernet is at chance level" in child_claim_verdict(untrained, n, chance=0.1)
    assert "agrees" in child_claim_verdict(untrained, n)  # without a chance level: only the drops


def test_accuracy_noise_and_comparison():
    assert accuracy_noise(0.5, 100) == pytest.approx(0.1)  # 2 * sqrt(0.25 / 100)
    assert accuracy_noise(1.0, 50) == pytest.approx(1 / 50)
    assert compare_accuracies(0.80, 0.78, 100) == "the same within noise"
    assert compare_accuracies(0.95, 0.60, 100) == "higher"
    with pytest.raises(ValueError, match="positive number of images"):
        accuracy_noise(0.5, 0)


def test_edges_differing():
    assert edges_differing(get("DARTS_V2"), get("DARTS_V2")) == 0
    assert edges_differing(get("DARTS_V2"), get("DARTS_V1")) > 0
