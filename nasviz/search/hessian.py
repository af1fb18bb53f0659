"""The mixed Hessian-vector product of second-order DARTS, exact (torch.func) or by differences.

Second-order DARTS needs (PAPERS.md)

    grad_alpha L_val(w', alpha) - xi * H v,   H v = grad^2_{alpha, w} L_train(w, alpha) . v,

with v = grad_w' L_val(w', alpha). The paper approximates H v by central finite differences,

    H v ~ (grad_alpha L_train(w + eps v) - grad_alpha L_train(w - eps v)) / (2 eps),
    eps = 0.01 / ||v||,

which costs two forward + backward passes and carries an O(eps^2) truncation error (and breaks
down at the kinks of ReLU and max pooling). `exact_hvp` computes the same product exactly, as the
directional derivative of grad_alpha L_train along v (forward-mode over reverse-mode autodiff,
`torch.func.jvp` of `torch.func.grad`): one pass that costs about two to three backward passes.

Both take the loss as a function of a {name: tensor} dict of parameters that is passed to
`torch.func.functional_call` (weights and architecture parameters replaced by name), so the
search can call either::

    loss_at = lambda p: self._loss_at(p, x_train, y_train)        # functional_call inside
    hvp = exact_hvp(self.model, loss_at, dict(zip(names, params)),
                    named_arch_parameters(self.model), d_w)
    hvp = finite_difference_hvp(loss_at, dict(zip(names, params)),
                                named_arch_parameters(self.model), d_w)

Both return one tensor per architecture parameter, in the order of ``arch``. BatchNorm in
training mode updates its running statistics on each loss evaluation, as in the official code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

LossAt = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def named_arch_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """{name: parameter} of a SearchNetwork's architecture parameters (alphas, betas)."""
    arch = {id(p) for p in model.arch_parameters()}
    return {n: p for n, p in model.named_parameters() if id(p) in arch}


@contextlib.contextmanager
def running_stats_frozen(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalize with batch statistics but leave their running ones untouched.

    In training mode the outputs are unchanged (BN uses the batch statistics either way); torch.func
    transforms cannot run BN's in-place running-statistics update on tensors they did not receive.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.track_running_stats, m.running_mean, m.running_var) for m in bns]
    try:
        for m in bns:
            if m.training:  # eval-mode BN reads the running statistics and writes nothing
                m.track_running_stats, m.running_mean, m.running_var = False, None, None
        yield
    finally:
        for m, (track, mean, var) in zip(bns, saved, strict=True):
            m.track_running_stats, m.running_mean, m.running_var = track, mean, var


def exact_hvp(
    model: nn.Module,
    loss_at: LossAt,
    weights: dict[str, torch.Tensor],
    arch: dict[str, torch.Tensor],
    vector: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """grad^2_{alpha,w} L(w, alpha) . v exactly: d/dt grad_alpha L(w + t v, alpha) at t = 0.

    ``model`` is the network ``loss_at`` calls; its BatchNorm running statistics are not updated
    by this product (`running_stats_frozen`), unlike the two passes of `finite_difference_hvp`.
    """
    names = list(weights)
    if len(vector) != len(names):
        raise ValueError(f"vector has {len(vector)} tensors, weights has {len(names)}")
    a0 = {n: a.detach() for n, a in arch.items()}

    def grad_alpha(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return torch.func.grad(lambda a: loss_at({**w, **a}))(a0)

    primals = {n: weights[n].detach() for n in names}
    tangents = {n: v.detach().to(weights[n].dtype) for n, v in zip(names, vector, strict=True)}
    with running_stats_frozen(model):
        _, hvp = torch.func.jvp(grad_alpha, (primals,), (tangents,))
    return [hvp[n] for n in arch]


def finite_difference_hvp(
    loss_at: LossAt,
    weights: dict[str, torch.Tensor],
    arch: dict[str, torch.Tensor],
    vector: Sequence[torch.Tensor],
    r: float = 0.01,
) -> list[torch.Tensor]:
    """The paper's central difference with eps = r / ||v|| (two forward + backward passes)."""
    names = list(weights)
    eps = r / torch.cat([v.reshape(-1) for v in vector]).norm()
    alpha = list(arch.values())
    grads = []
    for sign in (1.0, -1.0):
        shifted = {
            n: (weights[n] + sign * eps * v).detach() for n, v in zip(names, vector, strict=True)
        }
        grads.append(torch.autograd.grad(loss_at({**shifted, **arch}), alpha))
    return [(gp - gn) / (2 * eps) for gp, gn in zip(*grads, strict=True)]


__all__ = ["exact_hvp", "finite_difference_hvp", "named_arch_parameters", "running_stats_frozen"]
