"""CPU threads chosen by the library, so a notebook gets CI's speed without knowing about OpenMP.

The networks of a quick search are tiny (8x8 digits, C=8): each op runs for microseconds, and
PyTorch's intra-op threads spend more time handing work to each other than computing. Measured
on this project's 2-core machines (notes in README and benchmarks/): a smoke search step of
01_darts ran many times slower with PyTorch's default threads than with one thread, and a
quick PC-DARTS search was no faster with 2 threads than with 1 even on an idle machine.

The rule: on the CPU, one thread, unless the user asked otherwise. In order of precedence:

1. the config's ``threads`` field (``--threads`` on the command line);
2. the ``NASVIZ_THREADS`` environment variable;
3. ``OMP_NUM_THREADS`` when set (PyTorch already read it: nasviz leaves it alone);
4. otherwise 1 thread (`DEFAULT_CPU_THREADS`).

`import nasviz` applies the rule once (so a notebook that only builds and counts networks gets it),
and every search and retraining applies it again with its config's ``threads``. On a GPU
nothing is changed. Paper-size CPU runs (CIFAR-10 at C=16 on a many-core workstation)
should set ``threads`` to the number of physical cores.
"""

from __future__ import annotations

import os

import torch

DEFAULT_CPU_THREADS = 1


def choose(device: torch.device | str, requested: int | None = None) -> int | None:
    """The intra-op thread count nasviz should use on ``device`` (None: leave PyTorch's)."""
    if torch.device(device).type != "cpu":
        return None
    if requested is not None:
        return int(requested)
    env = os.environ.get("NASVIZ_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"NASVIZ_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"NASVIZ_THREADS must be a positive integer, got {env!r}")
        return n
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return DEFAULT_CPU_THREADS


def apply(device: torch.device | str, requested: int | None = None) -> int:
    """Set torch's intra-op threads by `choose`'s rule; returns the count in use."""
    n = choose(device, requested)
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
