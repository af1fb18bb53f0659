"""Optimizers and gradient clipping that update all tensors at once (for the search engine).

The supernet has ~1,400 weight tensors, most of them tiny; torch's default CPU optimizers loop
over them in Python, one small kernel per tensor and step (about 5 per tensor for SGD with
momentum and weight decay). ``fused=True`` runs one kernel per tensor group, the whole update in
C++; ``foreach=True`` (the fallback where fused is not supported) runs each step of the update as
one multi-tensor op. The math is the same as the default loop (same results to float rounding;
tests/test_fast_path.py checks it).

The engine calls these where it builds its optimizers and clips::

    self.w_optimizer = weight_optimizer(model.weight_parameters(), lr, momentum, weight_decay)
    self.a_optimizer = arch_optimizer(model.arch_parameters(), arch_lr, arch_betas, arch_wd)
    clip_grad_norm(model.weight_parameters(), grad_clip)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _fused_ok(params: list[torch.Tensor], optimizer: type[torch.optim.Optimizer]) -> bool:
    """True if ``optimizer(fused=True)`` supports these tensors (device and dtype)."""
    try:
        optimizer(params, lr=0.0, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def weight_optimizer(
    params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float
) -> torch.optim.SGD:
    """SGD with momentum and weight decay over all weight tensors at once (fused, else foreach)."""
    params = list(params)
    if _fused_ok(params, torch.optim.SGD):
        return torch.optim.SGD(params, lr, momentum=momentum, weight_decay=weight_decay, fused=True)
    return torch.optim.SGD(params, lr, momentum=momentum, weight_decay=weight_decay, foreach=True)


def arch_optimizer(
    params: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
) -> torch.optim.Adam:
    """Adam over the architecture parameters (fused, else foreach)."""
    params = list(params)
    kw = dict(betas=betas, weight_decay=weight_decay)
    if _fused_ok(params, torch.optim.Adam):
        return torch.optim.Adam(params, lr, fused=True, **kw)
    return torch.optim.Adam(params, lr, foreach=True, **kw)


def clip_grad_norm(params: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip the total gradient norm to ``max_norm`` with multi-tensor ops; returns the norm."""
    return nn.utils.clip_grad_norm_(list(params), max_norm, foreach=True)


__all__ = ["arch_optimizer", "clip_grad_norm", "weight_optimizer"]
