"""Tests for nasviz.search.policy: PPO and REINFORCE over the controller, the baseline."""

from __future__ import annotations

import pytest
import torch

from nasviz.search.controller import Controller
from nasviz.search.policy import (
    MovingAverageBaseline,
    PolicyConfig,
    PolicyUpdater,
    make_updater,
    ppo_objective,
    reinforce_objective,
)
from nasviz.spaces.nasnet import NasnetSpace


def test_clipped_objective_equals_the_formula_on_hand_made_numbers():
    old = torch.log(torch.tensor([0.5, 0.5, 0.5, 0.5]))
    new = torch.log(torch.tensor([0.8, 0.3, 0.55, 0.2]))  # ratios 1.6, 0.6, 1.1, 0.4
    adv = torch.tensor([1.0, 1.0, -2.0, -1.0])
    # min(r A, clip(r, 0.8, 1.2) A): 1.2 ; 0.6 ; -2.2 ; min(-0.4, -0.8) = -0.8
    expected = (1.2 + 0.6 - 2.2 - 0.8) / 4
    assert ppo_objective(new, old, adv, 0.2).item() == pytest.approx(expected, rel=1e-6)
    assert reinforce_objective(new, adv).item() == pytest.approx(
        ((new * adv).sum() / 4).item(), rel=1e-6
    )


def test_baseline_update_is_exact():
    b = MovingAverageBaseline(0.95)
    adv = b.advantages([0.5, 0.7])
    assert b.value == pytest.approx(0.95 * (0.95 * 0.6 + 0.05 * 0.5) + 0.05 * 0.7, abs=1e-12)
    assert torch.allclose(adv, torch.tensor([-0.1, 0.1]))  # first batch: its mean
    before = b.value
    adv = b.advantages([0.9])
    assert adv.item() == pytest.approx(0.9 - before)
    assert b.value == pytest.approx(0.95 * before + 0.05 * 0.9, abs=1e-12)
    with pytest.raises(ValueError, match="finite"):
        b.advantages([float("nan")])


def test_config_validation():
    with pytest.raises(ValueError, match="algorithm='a2c' is not allowed"):
        PolicyConfig(algorithm="a2c")
    with pytest.raises(ValueError, match="baseline_decay must be < 1"):
        PolicyConfig(baseline_decay=1.0)
    with pytest.raises(ValueError, match="did you mean 'entropy_weight'"):
        PolicyConfig.create(entropy_weigth=0.1)
    assert PolicyConfig().lr == 3.5e-4 and PolicyConfig().entropy_weight == 1e-5


def _op_probability(c: Controller, op: str) -> float:
    groups = c.probabilities()
    total = 0.0
    for cell in ("normal", "reduce"):
        _, cols, m = groups[f"{cell} op"]
        total += m[:, cols.index(op)].mean().item()
    return total / 2


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce"])
def test_toy_reward_raises_the_rewarded_op(algorithm):
    """reward = fraction of op decisions choosing sep_conv_3x3: its probability must rise."""
    torch.manual_seed(0)
    c = Controller(NasnetSpace(combines=("add",)), hidden=32)
    target = c.space.ops.index("sep_conv_3x3")
    op_cols = [i for i, d in enumerate(c.decisions) if d.type == "op"]
    updater = make_updater(c, algorithm, lr=0.01)
    g = torch.Generator().manual_seed(0)
    before = _op_probability(c, "sep_conv_3x3")
    for _ in range(6 if algorithm == "ppo" else 12):  # PPO's epochs learn faster per batch
        s = c.sample(16, generator=g)
        rewards = (s.actions[:, op_cols] == target).float().mean(1)
        stats = updater.update(s, rewards)
    after = _op_probability(c, "sep_conv_3x3")
    assert before < 0.1 and after > 2 * before, (before, after)
    assert stats["steps"] == (4 if algorithm == "ppo" else 1)


def test_ppo_takes_several_epochs_and_respects_the_clip():
    torch.manual_seed(0)
    c = Controller(hidden=16)
    updater = make_updater(c, "ppo", lr=0.05, epochs=6)
    s = c.sample(8, generator=torch.Generator().manual_seed(0))
    stats = updater.update(s, torch.linspace(0, 1, 8))
    assert stats["steps"] == 6 and stats["clip_fraction"] > 0
    assert updater.updates == 1


def test_state_dict_round_trip_continues_identically():
    def run(resume: bool) -> torch.Tensor:
        torch.manual_seed(0)
        c = Controller(hidden=16)
        u = PolicyUpdater(c, PolicyConfig(lr=0.01))
        g = torch.Generator().manual_seed(1)
        s = c.sample(4, generator=g)
        u.update(s, torch.rand(4, generator=torch.Generator().manual_seed(2)))
        if resume:
            state, weights = u.state_dict(), {k: v.clone() for k, v in c.state_dict().items()}
            c = Controller(hidden=16)
            c.load_state_dict(weights)
            u = PolicyUpdater(c, PolicyConfig(lr=0.01))
            u.load_state_dict(state)
        s = c.sample(4, generator=g)
        u.update(s, torch.rand(4, generator=torch.Generator().manual_seed(3)))
        return torch.cat([p.detach().flatten() for p in c.parameters()])

    assert torch.equal(run(False), run(True))


def test_resume_with_another_config_is_refused():
    c = Controller(hidden=8)
    state = PolicyUpdater(c).state_dict()
    with pytest.raises(ValueError, match="policy config differs"):
        PolicyUpdater(c, PolicyConfig(algorithm="reinforce")).load_state_dict(state)


def test_reward_count_must_match():
    c = Controller(hidden=8)
    s = c.sample(3)
    with pytest.raises(ValueError, match="2 rewards for 3 samples"):
        make_updater(c).update(s, [0.1, 0.2])
