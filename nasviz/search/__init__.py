"""Search methods. `run_search(preset("pc-darts", "quick"), out="runs/pc")` is the one-call entry.

Layout: `base` (the loop every method shares), `registry` (name -> search, config, presets, CLI
flags, widgets), `config` (shared config base, validation, presets), `supernet` (the DARTS
family's shared supernet search), one module per method (`darts`, `pcdarts`, `snas`, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasviz import checkpoint
from nasviz.search import registry
from nasviz.search.base import CHECKPOINT, DivergenceError, Search, SearchResult
from nasviz.search.config import PRESETS, ConfigError, SearchConfig, preset

#: Config fields that may differ between a checkpoint and the run resuming it (they change where
#: the run happens or what it prints, not what it computes).
RESUME_MAY_DIFFER = {
    "device",
    "data_root",
    "download",
    "log_every",
    "threads",
    "workers",
    "ray_address",
}


def search_class(method: str) -> type[Search]:
    """The Search subclass implementing ``method``."""
    return registry.get(method).search_class


def config_class(method: str) -> type[SearchConfig]:
    """The config dataclass of ``method``."""
    return registry.get(method).config_class


def load_config(d: dict[str, Any], method: str | None = None) -> SearchConfig:
    """A config of the right method class from its stored dict (any config format)."""
    name = d.get("method", method)
    if name is None:
        raise ConfigError("the stored config names no search method")
    return config_class(name).from_dict(d)


def _resume_state(out: Path, method: str | None) -> dict[str, Any]:
    state = checkpoint.load(out / CHECKPOINT, kind="search")
    saved = state.get("method") or state["config"].get("method")
    if method is not None and saved != method:
        raise ConfigError(
            f"{out} holds a {saved} search, not {method}: resume it as "
            f"`nasviz search {saved} ... --resume`, or start the {method} search in another directory"
        )
    return state


def create_search(
    config: SearchConfig | None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    method: str | None = None,
    overrides: dict[str, Any] | None = None,
    **kw: Any,
) -> Search:
    """Build a search, refusing to overwrite an existing run unless resuming it.

    On resume, ``config`` may be None (use the checkpoint's); otherwise it must match it, and so
    must every field in ``overrides`` (those in `RESUME_MAY_DIFFER` are applied instead). The
    method of the checkpoint must equal ``method`` (or ``config``'s) when given.
    """
    ckpt = Path(out) / CHECKPOINT if out is not None else None
    state = None
    if resume:
        if ckpt is None:
            raise ValueError("resume needs an output directory holding checkpoint.pt")
        asked = config.method if config is not None else method
        state = _resume_state(Path(out), asked)
        saved = load_config(state["config"], state.get("method"))
        if config is not None:
            checkpoint.check_resume_config(saved.to_dict(), config.to_dict(), RESUME_MAY_DIFFER)
        if overrides:  # only the settings given now are compared (a CLI resume)
            given = saved.replace(**overrides).to_dict()
            checkpoint.check_resume_config(saved.to_dict(), given, RESUME_MAY_DIFFER)
            saved = saved.replace(**{k: v for k, v in overrides.items() if k in RESUME_MAY_DIFFER})
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
    for text in config.warnings():
        warnings.warn(text, UserWarning, stacklevel=2)
    search = search_class(config.method)(config, out, **kw)
    if state is not None:
        search.load_state_dict(state)
    return search


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


def methods() -> list[str]:
    """The registered search methods."""
    return registry.names()


__all__ = [
    "PRESETS",
    "ConfigError",
    "DivergenceError",
    "Search",
    "SearchConfig",
    "SearchResult",
    "config_class",
    "create_search",
    "load_config",
    "methods",
    "preset",
    "run_search",
    "search_class",
]
