"""The training-loop pieces that search and retraining share: autocast, an epoch, an evaluation.

Losses and accuracies are accumulated on the device; the host reads them once per epoch and every
10 steps for the progress bar, so a step never waits for the host otherwise.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.data import DeviceLoader


class DivergenceError(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when enabled, otherwise a no-op."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def steps_per_epoch(loader: DeviceLoader, cap: int | None) -> int:
    """Batches in one epoch of ``loader``, capped by ``cap`` (max_steps_per_epoch) when set."""
    return min(len(loader), cap) if cap else len(loader)


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss and accuracy of an epoch, images seen and seconds spent."""

    loss: float
    acc: float
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def train_epoch(
    loader: DeviceLoader,
    step: Step,
    steps: int,
    bar: Any,
    device: torch.device,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    label: str = "",
) -> EpochStats:
    """Run ``steps`` calls of ``step(x, y) -> (loss, logits)`` on batches from the persistent loader."""
    t0 = time.perf_counter()
    sum_loss = torch.zeros((), device=device)
    sum_correct = torch.zeros((), device=device)
    seen = 0
    for i in range(steps):
        x, y = loader.next()
        loss, logits = step(x, y)
        sum_loss += loss * len(y)
        sum_correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        bar.update(1)
        if on_step is not None:
            on_step(i, loss)
        if (i + 1) % 10 == 0 or i + 1 == steps:  # a host sync only when the bar shows figures
            mean = sum_loss.item() / seen
            if not math.isfinite(mean):
                raise DivergenceError(
                    f"training diverged: the loss is {mean} in {label or 'this epoch'}, by step "
                    f"{i + 1}; the last good checkpoint is kept: lower the learning rate, or "
                    "resume to retry"
                )
            bar.set_postfix(loss=f"{mean:.3f}", acc=f"{sum_correct.item() / seen:.3f}")
    return EpochStats(
        sum_loss.item() / seen, sum_correct.item() / seen, seen, time.perf_counter() - t0
    )


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DeviceLoader, device: torch.device, amp: bool = True
) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` in eval mode over one pass of ``loader``."""
    was = model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    n = 0
    try:
        for x, y in loader:
            with autocast(device, amp):
                logits = model(x)
            logits = logits[0] if isinstance(logits, tuple) else logits  # eval nets: (logits, aux)
            total_loss += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            n += len(y)
    finally:
        model.train(was)
    return total_loss.item() / n, correct.item() / n
