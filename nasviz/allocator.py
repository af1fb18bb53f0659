"""glibc malloc kept from handing the heap back to the kernel between search steps (CPU, Linux).

A training step on the CPU frees, at its end, nearly every tensor it allocated, and the next step
allocates the same sizes again. glibc's malloc gives the free top of its heap back to the kernel
once more than ``M_TRIM_THRESHOLD`` is free there (by default a threshold it raises as it goes,
twice the largest mmapped block freed so far), and the next step's first touch of each of those
pages is a page fault that the kernel serves with a zeroed page. strace over 10 steady steps of
the small DARTS supernet (one thread, C=8, 5 cells, 16x16): the heap shrank and grew back by
10.4 MiB per step at batch 8 (6 ``brk`` calls per step) and by 46 MiB per step at batch 32.

`apply` fixes glibc's two thresholds instead (``mallopt``): blocks up to `MMAP_THRESHOLD` come from
the heap, and up to `TRIM_THRESHOLD` of free heap is kept for the next step. With them the same
10 steps made no ``brk`` or ``mmap`` call at all. The peak of the process's memory is the same
memory as before (the heap still only holds what the step had live at its peak); what changes is
that the process keeps it between steps instead of giving it back and faulting it in again.
benchmarks/README.md has the measured effect on the search step.

The rule (applied by every search and retraining on the CPU, like `nasviz.threads`):

1. ``NASVIZ_MALLOC=default`` leaves glibc's own behaviour;
2. a ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TOP_PAD_`` environment
   variable means the user tuned glibc already: nasviz leaves it alone;
3. not Linux with glibc (macOS, Windows, musl), or not the CPU: nothing to do;
4. otherwise the two thresholds below, once per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

MMAP_THRESHOLD = 64 * 2**20
"""Blocks above this many bytes still get their own mapping, returned to the kernel when freed."""

TRIM_THRESHOLD = 256 * 2**20
"""Free memory at the top of the heap kept for reuse, up to this many bytes."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
_USER_TUNING = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_applied: bool | None = None  # None: not tried yet in this process


def _libc() -> ctypes.CDLL | None:
    """The C library if it is glibc (has ``mallopt`` and ``gnu_get_libc_version``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has mallopt as a no-op)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def wanted(device: torch.device | str) -> bool:
    """True if the rule above sets glibc's thresholds for work on ``device``."""
    if torch.device(device).type != "cpu":
        return False
    setting = os.environ.get("NASVIZ_MALLOC", "keep").strip().lower()
    if setting not in ("keep", "default"):
        raise ValueError(f"NASVIZ_MALLOC must be 'keep' or 'default', got {setting!r}")
    return setting == "keep" and not any(os.environ.get(name) for name in _USER_TUNING)


def apply(device: torch.device | str) -> bool:
    """Set glibc's thresholds by the rule above (once per process); True if they are set."""
    global _applied
    if _applied is not None or not wanted(device):
        return bool(_applied)
    libc = _libc()
    _applied = bool(
        libc is not None
        and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    return _applied


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "apply", "wanted"]
