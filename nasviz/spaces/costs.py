"""Resource costs of the candidate ops of a supernet, and SNAS's resource penalty.

Every op on every edge is measured as it really is in the supernet, at its real input shape
(recorded with forward pre-hooks during one batch-1 forward), per image:

* ``params``: the op's parameter count (the search ops use BN(affine=False), so pools, skip at
  stride 1 and none have 0);
* ``flops``: `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls, a multiply-add
  = 2 FLOPs) plus k*k FLOPs per output element of each pooling layer, which the counter skips;
* ``mac``: memory access cost, summed over the leaf modules the op runs:
  input elements + output elements + parameter elements (ShuffleNet V2's definition, per layer).
  Identity (skip at stride 1) and Zero (none) move nothing in a derived network: 0.

A table is [3, edges, ops] per cell type, averaged over the cells of that type. Under op weights
Z [edges, ops] the cost of a cell is sum_{e,k} Z_ek * cost_ek: a sum of one term per edge, which is
what SNAS calls a *locally decomposable* cost.

Two estimators of the penalty's gradient with respect to log_alpha (`RESOURCE_GRADIENTS`):

* ``"paper"`` (SNAS's own, `resource_penalty_paper`): the cost is that of the discrete child H
  (H_e = one-hot argmax of the sample, distributed as softmax(log_alpha_e) by the Gumbel-max
  property), which is not differentiable, so its gradient is the score-function (policy-gradient)
  estimator with each edge's own cost as its reward:
  grad_{log_alpha_e} = r_e * (H_e - softmax(log_alpha_e)),  r_e = the edge's share of the penalty.
  For the ``linear`` form the penalty is exactly sum_e r_e and this estimator is unbiased for the
  gradient of E[penalty(H)]; for the ``log`` form r_e is the edge's cost times d log(1 + C)/dC at
  the sampled child (the chain rule, so the rewards still add up edge by edge).
* ``"relaxed"`` (`resource_penalty`): differentiate the cost of the relaxed sample Z itself
  (pathwise, through the Gumbel-softmax): lower variance, but the cost of a mixture of ops, not of
  the child network the search will return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.spaces.darts import edge_list
from nasviz.spaces.operations import Identity, Zero

COST_NAMES: tuple[str, ...] = ("params", "flops", "mac")
RESOURCE_GRADIENTS: tuple[str, ...] = ("paper", "relaxed")


def _pool_flops(module: nn.Module, output: torch.Tensor) -> int:
    k = module.kernel_size
    area = k * k if isinstance(k, int) else int(torch.tensor(k).prod())
    return area * output.numel()


@torch.no_grad()
def op_cost(
    op: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu"
) -> tuple[int, int, int]:
    """(params, FLOPs, memory access cost) of one op run in eval mode on zeros of input_shape."""
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in op.parameters())
    if isinstance(op, (Zero, Identity)):
        return params, 0, 0
    counts = {"pool_flops": 0, "mac": 0}

    def leaf_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, (Zero, Identity)):
            return
        counts["mac"] += sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        counts["mac"] += output.numel() + sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            counts["pool_flops"] += _pool_flops(module, output)

    leaves = [m for m in op.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(leaf_hook) for m in leaves]
    was = op.training
    op.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            op(torch.zeros(tuple(input_shape), device=device))
    finally:
        op.train(was)
        for h in handles:
            h.remove()
    return params, int(counter.get_total_flops()) + counts["pool_flops"], counts["mac"]


@dataclass
class CostTable:
    """Per-op costs of a supernet: ``costs[cell]`` is [3 (params, flops, mac), edges, ops] per cell.

    Values are per image and averaged over the ``counts[cell]`` cells of each type.
    """

    costs: dict[str, torch.Tensor]
    counts: dict[str, int]
    ops: tuple[str, ...]

    def to(self, device: str | torch.device) -> CostTable:
        """The same table on ``device``."""
        return CostTable(
            {c: t.to(device) for c, t in self.costs.items()}, dict(self.counts), self.ops
        )

    def cost(self, name: str, cell: str = "normal") -> torch.Tensor:
        """[edges, ops] costs of one kind (params, flops or mac) for one cell type."""
        if name not in COST_NAMES:
            raise ValueError(f"unknown cost {name!r}; costs: {', '.join(COST_NAMES)}")
        return self.costs[cell][COST_NAMES.index(name)]

    def expected(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Expected cost of one cell of each type under op weights Z [edges, ops] -> [3] each."""
        return {c: expected_cost(self.costs[c], z) for c, z in weights.items()}

    def max_cost(self) -> dict[str, torch.Tensor]:
        """The cost of each cell type if every edge took its most expensive op -> [3] per type."""
        return {c: t.max(dim=-1).values.sum(dim=-1) for c, t in self.costs.items()}


def expected_cost(costs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """sum over edges of sum_k Z_ek * cost_ek: [3, E, O] costs and [E, O] weights -> [3]."""
    return (costs * z.to(costs.dtype)).sum(dim=(-2, -1))


@torch.no_grad()
def supernet_costs(model: nn.Module, input_shape: Sequence[int]) -> CostTable:
    """Measure every op of a `SearchNetwork` at its real input shape (input_shape: [1, C, H, W]).

    One forward records each op's input shape (the global RNG is left untouched, BN statistics
    are not updated); then each op is run alone (ops of equal kind, stride and input shape share
    one measurement).
    """
    shapes: dict[tuple[int, int, int], tuple[int, ...]] = {}  # (cell, edge, op) -> input shape
    handles = []
    for i, cell in enumerate(model.cells):
        for e, edge in enumerate(cell.edges):
            for k, op in enumerate(edge.ops):

                def pre_hook(module: nn.Module, inputs: tuple, key: tuple = (i, e, k)) -> None:
                    shapes[key] = tuple(inputs[0].shape)

                handles.append(op.register_forward_pre_hook(pre_hook))
    device = next(model.parameters()).device
    was, threads = model.training, torch.get_num_threads()
    model.eval()
    torch.set_num_threads(1)  # batch-1 ops on a few pixels: extra threads only add sync overhead
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            model(torch.zeros(tuple(input_shape), device=device))
        table = _measure(model, shapes, device)
    finally:
        torch.set_num_threads(threads)
        model.train(was)
        for h in handles:
            h.remove()
    return table


def _measure(
    model: nn.Module, shapes: dict[tuple[int, int, int], tuple[int, ...]], device: torch.device
) -> CostTable:
    """Run every recorded op alone; average each cell type's [3, edges, ops] table over cells."""
    ops = tuple(model.primitives)
    n_edges = len(model.cells[0].edges)
    per_type: dict[str, list[torch.Tensor]] = {"normal": [], "reduce": []}
    cache: dict[tuple, tuple[int, int, int]] = {}
    for i, cell in enumerate(model.cells):
        table = torch.zeros(len(COST_NAMES), n_edges, len(ops), dtype=torch.float64)
        for e, edge in enumerate(cell.edges):
            for k, op in enumerate(edge.ops):
                shape = shapes.get((i, e, k))
                if shape is None or isinstance(op, Zero):
                    continue  # none (skipped by MixedOp) costs nothing
                stride = 2 if cell.reduction and edge_list(cell.steps)[e][0] < 2 else 1
                key = (ops[k], stride, shape)
                if key not in cache:
                    cache[key] = op_cost(op, shape, device)
                table[:, e, k] = torch.tensor(cache[key], dtype=torch.float64)
        per_type["reduce" if cell.reduction else "normal"].append(table)
    costs = {c: torch.stack(t).mean(0).float() for c, t in per_type.items() if t}
    return CostTable(costs, {c: len(t) for c, t in per_type.items() if t}, ops)


def resource_penalty(
    table: CostTable, weights: dict[str, torch.Tensor], form: str = "log"
) -> torch.Tensor:
    """SNAS resource penalty of op weights Z per cell type (a differentiable scalar).

    The expected cost per cell is averaged over the normal and reduction cell types -> [3]; then
    ``log``: mean over params, FLOPs, MAC of log(1 + cost) (the paper's mean of the logs; the +1
    keeps an all-'none' cell finite); ``linear``: mean over the three of cost / max possible cost.
    """
    expected = table.expected(weights)
    cost = torch.stack(list(expected.values())).mean(0)  # [3]
    if form == "log":
        return torch.log1p(cost).mean()
    if form == "linear":
        top = torch.stack([table.max_cost()[c] for c in expected]).mean(0).clamp_min(1.0)
        return (cost / top).mean()
    raise ValueError(f"unknown penalty form {form!r}; allowed: log, linear")


def child_weights(z: torch.Tensor) -> torch.Tensor:
    """One-hot H [edges, ops] of each row's argmax: the discrete child a sample Z stands for."""
    return F.one_hot(z.argmax(dim=-1), z.shape[-1]).to(z.dtype)


def edge_rewards(
    table: CostTable, hard: dict[str, torch.Tensor], form: str = "log"
) -> dict[str, torch.Tensor]:
    """Each edge's share r_e [edges] of the penalty of the child ``hard`` (one-hot per edge).

    r_e = sum_k H_ek * d penalty / d H_ek at H: for the linear form the penalty equals sum_e r_e;
    for the log form the shares are those of its linearisation at H.
    """
    leaves = {c: h.detach().clone().requires_grad_(True) for c, h in hard.items()}
    with torch.enable_grad():
        grads = torch.autograd.grad(resource_penalty(table, leaves, form), list(leaves.values()))
    return {c: (g * hard[c]).sum(-1) for c, g in zip(leaves, grads, strict=True)}


def resource_penalty_paper(
    table: CostTable,
    log_alphas: dict[str, torch.Tensor],
    z: dict[str, torch.Tensor],
    form: str = "log",
) -> torch.Tensor:
    """SNAS's resource term: value = penalty of the child H = argmax(Z); gradient = score function.

    Returns a scalar whose value is penalty(H) and whose gradient with respect to log_alpha is
    sum_e r_e * d log p(H_e) / d log_alpha_e = r_e * (H_e - softmax(log_alpha_e)) per edge (see the
    module docstring); nothing flows into Z.
    """
    hard = {c: child_weights(v.detach()) for c, v in z.items()}
    value = resource_penalty(table, hard, form)
    rewards = edge_rewards(table, hard, form)
    surrogate = sum(
        (rewards[c] * (F.log_softmax(log_alphas[c], dim=-1) * hard[c]).sum(-1)).sum() for c in hard
    )
    return value + surrogate - surrogate.detach()  # value of the child, score-function gradient


def resource_penalty_gradient(
    estimator: str,
    table: CostTable,
    log_alphas: dict[str, torch.Tensor],
    z: dict[str, torch.Tensor],
    form: str = "log",
) -> torch.Tensor:
    """The penalty term whose gradient is the chosen estimator's: 'paper' or 'relaxed'."""
    if estimator == "paper":
        return resource_penalty_paper(table, log_alphas, z, form)
    if estimator == "relaxed":
        return resource_penalty(table, z, form)
    raise ValueError(
        f"unknown resource gradient {estimator!r}; allowed: {', '.join(RESOURCE_GRADIENTS)}"
    )


__all__ = [
    "COST_NAMES",
    "RESOURCE_GRADIENTS",
    "child_weights",
    "edge_rewards",
    "resource_penalty_gradient",
    "resource_penalty_paper",
    "CostTable",
    "expected_cost",
    "op_cost",
    "resource_penalty",
    "supernet_costs",
]
