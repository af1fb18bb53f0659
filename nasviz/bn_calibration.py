"""BatchNorm statistics recomputed for an evaluation: `recalibrated_bn`.

A supernet's BatchNorm layers keep running averages (momentum 0.1) of their inputs' statistics,
and eval mode normalizes with them. In a short search (a few dozen steps, as in the notebooks'
quick mode) the weights move faster than those averages follow, so eval mode normalizes with
stale statistics: the measured validation accuracy then sits at chance although the same
weights classify well with the statistics of the data (the notebook 02 quick runs: 0.10 in eval
mode, 0.61 with recomputed statistics). With long searches (the papers' 50 epochs) the averages
have caught up and recalibrating changes little.

`recalibrated_bn` recomputes every BatchNorm's statistics as the plain average over a few
training batches (forward passes only, no labels, no gradient), runs the block, and puts the
original running statistics back and draws no random number from the global stream (a sampling forward
such as SNAS's uses a forked one), so a search's state, checkpoint and later steps do not change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nasviz import loop
from nasviz.data import DeviceLoader, ImageDataset
from nasviz.loop import autocast

#: Images the statistics are recomputed from by default (a few batches: cheap, and enough for
#: per-channel means and variances).
CALIBRATION_IMAGES = 512


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@contextlib.contextmanager
def recalibrated_bn(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, Any]],
    device: torch.device,
    amp: bool = True,
    max_images: int = CALIBRATION_IMAGES,
) -> Iterator[nn.Module]:
    """Within the block, ``model``'s BatchNorms use statistics recomputed from ``batches``.

    The statistics are the cumulative average (``momentum=None``) over the first ``max_images``
    images of ``batches`` (inputs only), computed in train mode without gradients. On exit the
    running statistics, momenta and the train/eval mode are restored exactly.
    """
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    norms = batch_norms(model)
    saved = [
        (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum)
        for m in norms
    ]
    was_training = model.training
    try:
        if norms:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batches
            model.train()
            seen = 0
            devices = [device] if device.type == "cuda" else []
            # forked RNG: a sampling forward (SNAS) leaves the search's random stream as it was
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                for x, _ in batches:
                    with autocast(device, amp):
                        model(x)
                    seen += len(x)
                    if seen >= max_images:
                        break
            if seen == 0:
                raise ValueError("no calibration batches: the loader yielded nothing")
            model.train(was_training)
        yield model
    finally:
        for m, (mean, var, tracked, momentum) in zip(norms, saved, strict=True):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(tracked)
            m.momentum = momentum
        model.train(was_training)


def calibration_loader(
    train_data: ImageDataset, batch_size: int, device: torch.device
) -> DeviceLoader:
    """The first `CALIBRATION_IMAGES` training images, unshuffled and unaugmented: the same
    images before every evaluation, so a resumed search measures what an uninterrupted one does."""
    first = torch.arange(min(len(train_data), CALIBRATION_IMAGES))
    return DeviceLoader(
        train_data.subset(first), batch_size, train=False, drop_last=False, device=device
    )


def evaluate_recalibrated(
    model: nn.Module,
    calibration: DeviceLoader,
    loader: DeviceLoader,
    device: torch.device,
    amp: bool,
) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on ``loader`` with BN statistics from one pass of ``calibration``."""
    n = len(calibration.data)
    with recalibrated_bn(model, iter(calibration), device, amp, max_images=n):
        return loop.evaluate(model, loader, device, amp)
