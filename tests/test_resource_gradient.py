"""SNAS's resource-gradient estimator checked against the paper's formula on hand-made numbers.

SNAS (Sec. 2.4 of the paper; the seed: the resource constraint is a locally decomposable reward
whose credit goes to each edge's own decision) takes the gradient of the child network's cost with
the policy-gradient (score-function) estimator: per edge e with sampled op k_e,
grad_{log_alpha_e} = r_e * (onehot(k_e) - softmax(log_alpha_e)), r_e = the edge's cost share.
"""

import pytest
import torch

from nasviz.search import preset
from nasviz.search.config import ConfigError
from nasviz.spaces.costs import (
    CostTable,
    child_weights,
    edge_rewards,
    resource_penalty,
    resource_penalty_gradient,
    resource_penalty_paper,
)

OPS = ("none", "pool", "conv")


def _table() -> CostTable:
    # [3 (params, flops, mac), 2 edges, 3 ops] per cell type: hand-made numbers
    normal = torch.tensor(
        [
            [[0.0, 0.0, 10.0], [0.0, 0.0, 30.0]],
            [[0.0, 4.0, 20.0], [0.0, 2.0, 40.0]],
            [[0.0, 6.0, 8.0], [0.0, 3.0, 9.0]],
        ]
    )
    reduce = 2 * normal
    return CostTable({"normal": normal, "reduce": reduce}, {"normal": 1, "reduce": 1}, OPS)


def _alphas() -> dict[str, torch.Tensor]:
    return {
        "normal": torch.tensor([[0.1, 0.5, -0.2], [0.3, 0.0, 0.4]], requires_grad=True),
        "reduce": torch.tensor([[0.0, 0.2, 0.1], [-0.3, 0.1, 0.6]], requires_grad=True),
    }


def _sample(alphas: dict[str, torch.Tensor], tau: float = 0.5) -> dict[str, torch.Tensor]:
    z = {}
    for c, a in alphas.items():
        g = -torch.log(-torch.log(torch.rand(a.shape).clamp_min(1e-20)))
        z[c] = torch.softmax((a + g) / tau, dim=-1)
    return z


def test_linear_form_gradient_equals_the_papers_formula_by_hand():
    table, alphas = _table(), _alphas()
    # A fixed sample: normal picks (conv, pool), reduce picks (pool, conv).
    z = {
        "normal": torch.tensor([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]]),
        "reduce": torch.tensor([[0.2, 0.5, 0.3], [0.0, 0.1, 0.9]]),
    }
    picks = {"normal": [2, 1], "reduce": [1, 2]}
    penalty = resource_penalty_paper(table, alphas, z, form="linear")
    penalty.backward()
    # By hand: top_m = mean over the two cell types of sum_e max_k cost (reduce = 2 x normal).
    top_normal = torch.tensor([10.0 + 30.0, 20.0 + 40.0, 8.0 + 9.0])
    top = (top_normal + 2 * top_normal) / 2  # [3]
    child_cost = {c: table.costs[c][:, [0, 1], picks[c]] for c in picks}  # [3, 2 edges]
    assert penalty.item() == pytest.approx(
        float((((child_cost["normal"] + child_cost["reduce"]).sum(1) / 2) / top).mean())
    )
    for cell in ("normal", "reduce"):
        r = (child_cost[cell] / (2 * top[:, None])).mean(0)  # [2]: mean over the 3 costs
        p = torch.softmax(alphas[cell].detach(), dim=-1)
        onehot = torch.nn.functional.one_hot(torch.tensor(picks[cell]), 3).float()
        expected = r[:, None] * (onehot - p)
        torch.testing.assert_close(alphas[cell].grad, expected)


def test_log_form_rewards_are_the_chain_rule_at_the_child():
    table = _table()
    hard = {"normal": torch.eye(3)[[2, 1]], "reduce": torch.eye(3)[[1, 2]]}
    rewards = edge_rewards(table, hard, form="log")
    cost = (table.expected(hard)["normal"] + table.expected(hard)["reduce"]) / 2  # [3]
    for cell in ("normal", "reduce"):
        own = (table.costs[cell] * hard[cell]).sum(-1)  # [3, edges]
        expected = (own / (2 * (1 + cost[:, None]))).mean(0)
        torch.testing.assert_close(rewards[cell], expected)


def test_value_is_the_sampled_childs_penalty():
    table, alphas = _table(), _alphas()
    torch.manual_seed(1)
    z = _sample(alphas)
    value = resource_penalty_paper(table, alphas, z, form="log")
    child = {c: child_weights(v) for c, v in z.items()}
    assert value.item() == pytest.approx(resource_penalty(table, child, "log").item())
    assert value.requires_grad  # the gradient goes to log_alpha, not through the relaxed sample:
    assert torch.autograd.grad(value, z["normal"], allow_unused=True)[0] is None


def test_linear_form_is_unbiased_for_the_expected_child_cost():
    """Averaged over samples, the score function equals grad of E_H[penalty(H)] = penalty(p)."""
    table, alphas = _table(), _alphas()
    exact = {c: a.detach().clone().requires_grad_(True) for c, a in alphas.items()}
    probs = {c: torch.softmax(a, dim=-1) for c, a in exact.items()}
    resource_penalty(table, probs, "linear").backward()  # linear in H: E[P(H)] = P(E[H])
    torch.manual_seed(0)
    n = 3000
    total = {c: torch.zeros_like(a) for c, a in alphas.items()}
    for _ in range(n):
        a = {c: v.detach().clone().requires_grad_(True) for c, v in alphas.items()}
        resource_penalty_paper(table, a, _sample(a), form="linear").backward()
        for c in total:
            total[c] += a[c].grad
    for c in total:
        torch.testing.assert_close(total[c] / n, exact[c].grad, atol=4e-3, rtol=0)


def test_relaxed_estimator_differentiates_through_z():
    table, alphas = _table(), _alphas()
    torch.manual_seed(2)
    z = _sample(alphas)
    relaxed = resource_penalty_gradient("relaxed", table, alphas, z, "log")
    assert relaxed.item() == pytest.approx(resource_penalty(table, z, "log").item())
    relaxed.backward()
    assert alphas["normal"].grad is not None and alphas["normal"].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown resource gradient 'policy'"):
        resource_penalty_gradient("policy", table, alphas, z)


def test_config_defaults_to_the_papers_estimator():
    assert preset("snas", "quick").resource_gradient == "paper"
    assert preset("snas", "quick", resource_gradient="relaxed").resource_gradient == "relaxed"
    with pytest.raises(ConfigError, match="resource_gradient"):
        preset("snas", "quick", resource_gradient="reinforce")


@pytest.mark.parametrize("estimator", ["paper", "relaxed"])
def test_search_step_with_either_estimator(estimator, data):
    from nasviz.search import create_search

    train, val = data
    cfg = preset(
        "snas", "smoke", constraint="aggressive", resource_gradient=estimator, epochs=1,
        max_steps_per_epoch=2, batch_size=16,
    )  # fmt: skip
    result = create_search(cfg, None, train_data=train, val_data=val).run(progress=False)
    _, penalty = result.history.extra("penalty")
    assert len(penalty) == 2 and all(p > 0 for p in penalty)


def test_cli_flag_sets_the_estimator_and_help_names_the_symbols():
    from nasviz.cli import build_parser, search_overrides

    parser = build_parser()
    args = parser.parse_args(["search", "snas", "--out", "x", "--resource-gradient", "relaxed"])
    assert search_overrides(args)["resource_gradient"] == "relaxed"
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "snas", "--out", "x", "--resource-gradient", "reinforce"])
    from nasviz.search import registry

    helps = {f.flags[0]: f.kwargs.get("help", "") for f in registry.get("snas").cli_flags}
    assert "τ" in helps["--temperature"] and "λ" in helps["--resource-lambda"]
    assert "λ" not in helps["--temperature"] and "τ" not in helps["--resource-lambda"]


def test_resource_ablation_compares_estimators_and_reads_finished_runs_back(tmp_path, data):
    from nasviz.search.snas import resource_ablation

    train, val = data
    base = preset("snas", "smoke", epochs=1, max_steps_per_epoch=2, batch_size=16)
    kw = dict(resource_gradients=["paper", "relaxed"], out_root=tmp_path, measure_flops=False)
    rows = resource_ablation(
        ["none", "aggressive"], [0], base, train_data=train, val_data=val, **kw
    )
    # λ = 0 has no penalty, so it runs once; the aggressive constraint once per estimator.
    assert [(r["constraint"], r["resource_gradient"]) for r in rows] == [
        ("none", "paper"), ("aggressive", "paper"), ("aggressive", "relaxed"),
    ]  # fmt: skip
    assert len(list(tmp_path.iterdir())) == 3
    again = resource_ablation(
        ["none", "aggressive"], [0], base, train_data=train, val_data=val, **kw
    )
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in again] == [
        {k: v for k, v in r.items() if k not in strip} for r in rows
    ]
    assert len(list(tmp_path.iterdir())) == 3  # read back, nothing new
