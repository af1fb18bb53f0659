"""Cream of the Crop's prioritized path board: the K best paths seen so far within the FLOPs range.

Each entry keeps a path, its accuracy (on the batch it was just trained on, as in the paper),
its multiply-adds, and ``slice`` (default 4) of that batch's images with the path's own softmax
on them: the meta-network (`nasviz.search.cream_meta`) later compares a student's outputs on
those images with the stored ones to pick a teacher.

The admission rule (the paper): a sampled path whose multiply-adds lie in the FLOPs range enters
while the board has room; when it is full, it enters if it beats the worst entry's accuracy, or
ties it at lower FLOPs, and the worst entry leaves. Entries are ordered by accuracy (highest
first), then by FLOPs (lowest first); the best entry is the search's result.

What differs from the official code (microsoft/Cream, ``lib/models/PrioritizedBoard.py``), and why:

* the FLOPs range is enforced here; the official board never checks a path's FLOPs (the range
  only chooses the supernet's layer counts), so its board can hold paths outside the constraint;
* the official code requires a 5-point accuracy gap to beat the worst entry (``acc_gap``); the
  paper states no gap, so ``margin`` defaults to 0 (pass 5.0 with accuracies in % for the
  official behaviour);
* an entry stores the admitted path's own softmax on its stored images; the official code stores
  the *current teacher's* output once the board is non-empty, so the meta-network would compare
  the student with a path other than the board entry it scores;
* a path already on the board is re-recorded (latest accuracy, images and outputs) instead of
  being added a second time, so the board holds K distinct paths.

The board is plain data: ``state_dict()`` holds paths as JSON dicts, floats and CPU tensors, and
loads with ``torch.load(weights_only=True)``. When to call `PathBoard.update` (after the warm-up,
every batch) is the search's decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nasviz.spaces.cream import CHOICES, CreamPath


def softmax_probs(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, in float32 for half-precision logits."""
    low = logits.dtype in (torch.float16, torch.bfloat16)
    return torch.softmax(logits, dim=1, dtype=torch.float32 if low else None)


@dataclass
class BoardEntry:
    """One prioritized path with what the meta-network needs to score a student against it."""

    path: CreamPath
    accuracy: float  # on the batch it was trained on (the caller's unit: fraction or %)
    madds: float  # millions of multiply-adds (the paper's "MFLOPs")
    images: torch.Tensor  # [slice, C, H, W] stored images
    probs: torch.Tensor  # [slice, classes] the path's own softmax on ``images``
    step: int = 0  # global step of its latest record

    def rank_key(self) -> tuple[float, float]:
        """Sort key: higher accuracy first, then lower FLOPs."""
        return (-self.accuracy, self.madds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (CPU tensors)."""
        return {
            "path": self.path.to_dict(),
            "accuracy": float(self.accuracy),
            "madds": float(self.madds),
            "images": self.images.detach().cpu(),
            "probs": self.probs.detach().cpu(),
            "step": int(self.step),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], device: torch.device | str | None = None) -> BoardEntry:
        """Inverse of `to_dict` (tensors moved to ``device`` when given)."""
        return cls(
            path=CreamPath.from_dict(d["path"]),
            accuracy=float(d["accuracy"]),
            madds=float(d["madds"]),
            images=d["images"].to(device) if device is not None else d["images"],
            probs=d["probs"].to(device) if device is not None else d["probs"],
            step=int(d["step"]),
        )


class PathBoard:
    """The prioritized path board (K best paths within a FLOPs range, best first)."""

    def __init__(
        self,
        size: int = 10,
        flops_range: tuple[float, float] | None = None,
        *,
        slice: int = 4,
        margin: float = 0.0,
    ) -> None:
        if size < 1 or slice < 1:
            raise ValueError(f"board size and slice must be >= 1, got {size} and {slice}")
        if flops_range is not None:
            lo, hi = (float(v) for v in flops_range)
            if lo > hi:
                raise ValueError(f"a FLOPs range needs min <= max, got ({lo:g}, {hi:g})")
            flops_range = (lo, hi)
        self.size = int(size)
        self.flops_range = flops_range
        self.slice = int(slice)
        self.margin = float(margin)
        self.entries: list[BoardEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[BoardEntry]:
        return iter(self.entries)

    def best(self) -> BoardEntry | None:
        """The top entry (the search's result), or None while empty."""
        return self.entries[0] if self.entries else None

    def worst(self) -> BoardEntry | None:
        """The entry the next admission would evict, or None while empty."""
        return self.entries[-1] if self.entries else None

    def paths(self) -> list[CreamPath]:
        """The board's paths, best first."""
        return [e.path for e in self.entries]

    def index(self, path: CreamPath) -> int | None:
        """Position of ``path`` on the board, or None."""
        for i, e in enumerate(self.entries):
            if e.path == path:
                return i
        return None

    def in_range(self, madds: float) -> bool:
        """Whether ``madds`` (millions of multiply-adds) lies in the board's FLOPs range."""
        return self.flops_range is None or self.flops_range[0] <= madds <= self.flops_range[1]

    def admits(self, accuracy: float, madds: float) -> bool:
        """The paper's admission rule for a path not yet on the board."""
        if not self.in_range(madds):
            return False
        worst = self.worst()
        if len(self.entries) < self.size or worst is None:
            return True
        if accuracy > worst.accuracy + self.margin:
            return True
        return accuracy >= worst.accuracy and madds < worst.madds

    def update(
        self,
        path: CreamPath,
        accuracy: float,
        madds: float,
        images: torch.Tensor,
        logits: torch.Tensor,
        step: int = 0,
    ) -> bool:
        """Offer a just-trained path; True if it is on the board afterwards.

        ``images`` [B, C, H, W] and ``logits`` [B, classes] are the batch and the path's output
        on it; the first ``slice`` of them are stored. A path already on the board is re-recorded.
        """
        if images.shape[0] < self.slice or logits.shape[0] < self.slice:
            raise ValueError(
                f"the board stores {self.slice} images per path; got a batch of "
                f"{min(images.shape[0], logits.shape[0])}"
            )
        entry = BoardEntry(
            path=path,
            accuracy=float(accuracy),
            madds=float(madds),
            images=images[: self.slice].detach().clone(),
            probs=softmax_probs(logits[: self.slice].detach()),
            step=int(step),
        )
        known = self.index(path)
        if known is not None:
            if not self.in_range(madds):  # cannot happen for a fixed space; keep the board valid
                del self.entries[known]
                return False
            self.entries[known] = entry
        elif self.admits(entry.accuracy, entry.madds):
            self.entries.append(entry)
        else:
            return False
        self.entries.sort(key=BoardEntry.rank_key)  # stable: earlier records win exact ties
        del self.entries[self.size :]
        return self.index(path) is not None

    def state_dict(self) -> dict[str, Any]:
        """Plain data: settings and entries (paths as JSON dicts, CPU tensors)."""
        return {
            "size": self.size,
            "flops_range": list(self.flops_range) if self.flops_range is not None else None,
            "slice": self.slice,
            "margin": self.margin,
            "entries": [e.to_dict() for e in self.entries],
        }

    def load_state_dict(
        self, state: dict[str, Any], device: torch.device | str | None = None
    ) -> None:
        """Restore a `state_dict` (tensors moved to ``device`` when given)."""
        self.size = int(state["size"])
        fr = state["flops_range"]
        self.flops_range = (float(fr[0]), float(fr[1])) if fr is not None else None
        self.slice = int(state["slice"])
        self.margin = float(state["margin"])
        self.entries = [BoardEntry.from_dict(d, device) for d in state["entries"]]
        self.entries.sort(key=BoardEntry.rank_key)

    def choice_frequencies(self) -> torch.Tensor:
        """[layers, 6] share of the board's paths taking each choice at each layer (rows sum to 1).

        Layers in network order (`CreamSpace.layer_names`); needs paths of equal depths.
        """
        if not self.entries:
            raise ValueError("the path board is empty")
        flat = torch.tensor([[c for stage in e.path.stages for c in stage] for e in self.entries])
        counts = torch.zeros(flat.shape[1], len(CHOICES), dtype=torch.float64)
        counts.scatter_add_(1, flat.T, torch.ones(flat.T.shape, dtype=torch.float64))
        return counts / len(self.entries)

    def summary(self) -> list[dict[str, Any]]:
        """Per entry, best first: path (JSON dict), accuracy, multiply-adds, step (for histories)."""
        return [
            {"path": e.path.to_dict(), "accuracy": e.accuracy, "madds": e.madds, "step": e.step}
            for e in self.entries
        ]
