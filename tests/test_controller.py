"""Tests for nasviz.search.controller: the LSTM controller's sampling, evaluation and probabilities."""

from __future__ import annotations

import pytest
import torch

from nasviz.search.controller import Controller
from nasviz.spaces.nasnet import NasnetGenotype, NasnetSpace


def test_architecture_follows_the_paper():
    c = Controller(NasnetSpace(combines=("add",)))
    assert isinstance(c.lstm, torch.nn.LSTMCell) and c.lstm.hidden_size == 100
    for p in c.parameters():
        assert p.abs().max() <= 0.1  # U(-0.1, 0.1)
    assert c.num_decisions == 40 and c.decision_names()[:5] == [
        "normal b0 input 0",
        "normal b0 input 1",
        "normal b0 op 0",
        "normal b0 op 1",
        "normal b1 input 0",
    ]
    paper = Controller(NasnetSpace())  # the paper: add or concat
    assert paper.num_decisions == 50 and "reduce b4 combine" in paper.decision_names()
    assert set(paper.heads) == {"input", "op", "combine"}


def test_sample_shapes_and_valid_genotypes():
    c = Controller(NasnetSpace(combines=("add", "concat")), hidden=16)
    s = c.sample(8, generator=torch.Generator().manual_seed(0))
    assert s.actions.shape == s.log_probs.shape == s.entropies.shape == (8, 50)
    assert len(s.genotypes) == 8 and all(isinstance(g, NasnetGenotype) for g in s.genotypes)
    assert (s.log_probs <= 0).all() and (s.entropies >= 0).all()
    # input decisions of block b have b+2 choices: block 0 reads only h_{i-1}, h_i
    assert s.actions[:, 0].max() <= 1 and s.actions[:, 1].max() <= 1
    for g in s.genotypes:
        g.validate()


def test_same_generator_seed_same_samples():
    c = Controller(hidden=16)
    a = c.sample(4, generator=torch.Generator().manual_seed(5))
    b = c.sample(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.actions, b.actions) and a.genotypes == b.genotypes


def test_evaluate_reproduces_the_sampling_log_probs_with_gradients():
    c = Controller(hidden=16)
    s = c.sample(6, generator=torch.Generator().manual_seed(1))
    log_probs, entropies = c.evaluate(s.actions)
    assert torch.allclose(log_probs, s.log_probs, atol=1e-6)
    assert torch.allclose(entropies, s.entropies, atol=1e-6)
    log_probs.sum().backward()
    assert c.lstm.weight_ih.grad is not None and c.heads["op"].weight.grad.abs().sum() > 0


def test_decisions_are_autoregressive():
    """Changing an early action changes later decisions' distributions (embedding fed back)."""
    c = Controller(hidden=16)
    s = c.sample(1, generator=torch.Generator().manual_seed(2))
    other = s.actions.clone()
    other[0, 2] = (other[0, 2] + 1) % 13
    _, e1 = c.evaluate(s.actions)
    _, e2 = c.evaluate(other)
    assert torch.equal(e1[:, :3], e2[:, :3]) and (e1[:, 3:] - e2[:, 3:]).abs().max() > 0


def test_log_prob_of_a_known_genotype_by_hand():
    """Decision 0's log-prob is log_softmax of the input head on the first LSTM step."""
    c = Controller(hidden=8)
    space = c.space
    g = NasnetGenotype(
        *(NasnetGenotype.builtin("nasnet_a").blocks(x) for x in ("normal", "reduce"))
    )
    actions = torch.tensor([space.encode(g)])
    log_probs, _ = c.evaluate(actions)
    h, _ = c.lstm(c.go, (torch.zeros(1, 8), torch.zeros(1, 8)))
    first = torch.log_softmax(c.heads["input"](h)[:, :2], -1)[0, actions[0, 0]]
    assert log_probs[0, 0].item() == pytest.approx(first.item(), abs=1e-6)


def test_bad_actions_are_refused():
    c = Controller(NasnetSpace(combines=("add",)), hidden=8)
    with pytest.raises(ValueError, match=r"actions must be \[n, 40\]"):
        c.evaluate(torch.zeros(2, 39, dtype=torch.long))
    bad = torch.zeros(1, 40, dtype=torch.long)
    bad[0, 0] = 2  # block 0 can read only states 0 and 1
    with pytest.raises(ValueError, match="normal b0 input 0"):
        c.evaluate(bad)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        c.sample(0)


def test_probabilities_are_history_groups():
    c = Controller(NasnetSpace(combines=("add", "concat")), hidden=16)
    groups = c.probabilities()
    assert set(groups) == {f"{cell} {t}" for cell in ("normal", "reduce")
                           for t in ("op", "input", "combine")}  # fmt: skip
    rows, cols, m = groups["normal op"]
    assert len(rows) == 10 and len(cols) == 13 and m.shape == (10, 13)
    assert torch.allclose(m.sum(1), torch.ones(10))
    rows, cols, m = groups["reduce input"]
    assert cols[:2] == ["h_{i-1}", "h_i"] and m.shape == (10, 6)
    assert m[0, 2:].sum() == 0 and m[9].sum() == pytest.approx(1.0)  # b0 reads 2 states, b4 six
    s = c.sample(5, generator=torch.Generator().manual_seed(0))
    mean_rows = c.probabilities(s.actions)["normal combine"][2]
    assert mean_rows.shape == (5, 2) and torch.allclose(mean_rows.sum(1), torch.ones(5))


def test_greedy_is_deterministic():
    c = Controller(hidden=16)
    assert c.greedy() == c.greedy()
