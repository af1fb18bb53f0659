"""Checkpoints shared by search and retraining: atomic saves, clear errors, full RNG state."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def save(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with torch.save via a temporary file, so the previous checkpoint survives a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load(
    path: str | Path, *, kind: str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by `save`; a missing, corrupt or foreign file gets a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; nothing to resume (run without --resume first)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated/garbled files
        raise ValueError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
            "it was not modified: delete it to start over, or restore a copy"
        ) from exc
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {path} is not a nasviz {kind} checkpoint (found {found!r})")
    return state


def check_resume_config(
    saved: dict[str, Any], asked: dict[str, Any], may_differ: Iterable[str]
) -> None:
    """Refuse to resume when the asked config differs from the checkpoint's (naming each field)."""
    may_differ = set(may_differ)
    differ = [
        f"{k}: checkpoint {saved.get(k)!r} vs asked {asked.get(k)!r}"
        for k in sorted(set(saved) | set(asked))
        if k not in may_differ and saved.get(k) != asked.get(k)
    ]
    if differ:
        raise ValueError(
            f"cannot resume with a different configuration ({'; '.join(differ)}); only "
            f"{', '.join(sorted(may_differ))} may differ: resume with the checkpoint's settings "
            "or start a new run in another directory"
        )


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA random states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
