"""Search methods. `run_search(preset("pc-darts", "quick"), out="runs/pc")` is the one-call entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasviz import checkpoint
from nasviz.search.config import METHODS, PRESETS, SearchConfig, preset
from nasviz.search.engine import CHECKPOINT, Search, SearchResult


def search_class(method: str) -> type[Search]:
    """The Search subclass implementing ``method``."""
    from nasviz.search.darts import DartsSearch
    from nasviz.search.pcdarts import PCDartsSearch

    classes: dict[str, type[Search]] = {"darts": DartsSearch, "pc-darts": PCDartsSearch}
    try:
        from nasviz.search.snas import SnasSearch

        classes["snas"] = SnasSearch
    except ImportError:  # pragma: no cover - SNAS lands in its own module
        pass
    if method not in classes:
        raise ValueError(f"unknown search method {method!r}; methods: {', '.join(classes)}")
    return classes[method]


def create_search(
    config: SearchConfig | None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    **kw: Any,
) -> Search:
    """Build a search, refusing to overwrite an existing run unless resuming it.

    On resume, ``config`` may be None (use the checkpoint's); otherwise it must match it.
    """
    ckpt = Path(out) / CHECKPOINT if out is not None else None
    state = None
    if resume:
        if ckpt is None:
            raise ValueError("resume needs an output directory holding checkpoint.pt")
        state = checkpoint.load(ckpt, kind="search")
        saved = SearchConfig.from_dict(state["config"])
        if config is not None:
            checkpoint.check_resume_config(state["config"], config.to_dict(), _RESUME_FREE)
        config = saved.replace(device=device or (config.device if config else None))
    elif config is None:
        raise ValueError("a config is needed unless resuming")
    else:
        config = config.replace(device=device)
    if not resume and ckpt is not None and ckpt.exists():
        raise FileExistsError(
            f"{out} already holds a search ({CHECKPOINT}); pass --resume (resume=True) to continue it, "
            "or choose another output directory: nothing was overwritten"
        )
    search = search_class(config.method)(config, out, **kw)
    if state is not None:
        search.load_state_dict(state)
    return search


_RESUME_FREE = {"device", "data_root", "download", "log_every"}


def run_search(
    config: SearchConfig | None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: list[Callable] | None = None,
    **kw: Any,
) -> SearchResult:
    """Create (or resume) and run a search to completion."""
    return create_search(config, out, resume=resume, **kw).run(
        progress=progress, callbacks=callbacks
    )


__all__ = [
    "METHODS",
    "PRESETS",
    "Search",
    "SearchConfig",
    "SearchResult",
    "create_search",
    "preset",
    "run_search",
    "search_class",
]
