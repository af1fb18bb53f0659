"""What a network costs: parameters (as the papers count them), FLOPs, latency, peak memory."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn


def count_parameters(model: nn.Module, *, include_auxiliary: bool = False) -> int:
    """Trainable parameters; by default without the auxiliary head, as the papers count them."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if p.requires_grad and (include_auxiliary or "auxiliary" not in name)
    )


def count_flops(
    model: nn.Module, input_shape: tuple[int, ...], device: str | torch.device = "cpu"
) -> int:
    """FLOPs of one forward pass in eval mode (torch.utils.flop_counter; a multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(input_shape, device=device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    *,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median seconds per forward pass (eval mode, no grad), synchronizing CUDA around each call."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    x = torch.randn(input_shape, device=device)
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                _sync(device)
                t0 = time.perf_counter()
                model(x)
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    times.sort()
    return times[len(times) // 2]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA only; the CPU figure is the process peak RSS)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: CUDA max allocated since the last reset, or the process peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class CostReport:
    """Parameters and FLOPs of an evaluation network."""

    params: int
    params_with_auxiliary: int
    flops: int
    input_shape: tuple[int, ...]

    def __str__(self) -> str:
        return (
            f"parameters: {self.params:,} ({self.params / 1e6:.2f}M; "
            f"{self.params_with_auxiliary:,} with the auxiliary head)\n"
            f"FLOPs: {self.flops:,} ({self.flops / 2e6:.1f}M multiply-adds) at input {list(self.input_shape)}"
        )


def cost_report(model: nn.Module, input_shape: tuple[int, ...]) -> CostReport:
    """Parameters (papers' convention and with the auxiliary head) and FLOPs of ``model``."""
    return CostReport(
        params=count_parameters(model),
        params_with_auxiliary=count_parameters(model, include_auxiliary=True),
        flops=count_flops(model, input_shape),
        input_shape=tuple(input_shape),
    )
