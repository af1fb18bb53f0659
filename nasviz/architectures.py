"""Architectures as one protocol: a DARTS genotype, a NASNet block cell, a Cream path.

Every architecture kind is a class that

* names itself with ``kind`` (written into its JSON as ``"kind"``),
* serializes with ``to_dict()`` / ``from_dict(d)`` and validates with ``validate()`` (clear
  ``ValueError`` naming the bad part),
* builds its evaluation network with ``build_network(num_classes=..., in_channels=...,
  image_size=..., C=None, layers=None, auxiliary=True)``; ``C``/``layers`` are the kind's width and
  depth knobs (None = the kind's paper default), and the network's ``forward`` returns
  ``(logits, auxiliary_logits_or_None)``,
* lists the networks ``nasviz info`` reports with ``reference_networks()``:
  ``[(description, module, input_shape), ...]``,
* draws itself with ``graph(title=None)`` (graphviz, imported lazily),
* offers its published architectures through ``builtin(name)`` / ``builtin_names()``.

`register` adds a kind; `from_dict`, `load`, `resolve` and `names` dispatch over all kinds, so
`nasviz info`, `nasviz retrain` and the plots accept any of them. Files written before the
``kind`` field existed are DARTS genotypes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class Architecture(Protocol):
    """What every architecture kind provides (see the module docstring)."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...

    def validate(self) -> None: ...

    def build_network(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool = True,
    ) -> nn.Module: ...

    def reference_networks(self) -> list[tuple[str, nn.Module, tuple[int, ...]]]: ...

    def graph(self, title: str | None = None) -> Any: ...


_KINDS: dict[str, type] = {}
_LOADED = False


def register(cls: type) -> type:
    """Class decorator: make an architecture kind known to `from_dict`, `load` and `resolve`."""
    _KINDS[cls.kind] = cls
    return cls


def _ensure_kinds() -> dict[str, type]:
    """Import the modules that define the built-in kinds (once)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import importlib

        for module in ("nasviz.genotypes", "nasviz.spaces.nasnet", "nasviz.spaces.cream"):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a kind whose module has not landed yet
                if exc.name != module:
                    raise
    return _KINDS


def kinds() -> list[str]:
    """The registered architecture kinds."""
    return list(_ensure_kinds())


def kind_class(kind: str) -> type:
    """The class of an architecture kind."""
    table = _ensure_kinds()
    if kind not in table:
        import difflib

        close = difflib.get_close_matches(str(kind), list(table), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown architecture kind {kind!r}{hint}; kinds: {', '.join(table)}")
    return table[kind]


def from_dict(d: Any) -> Architecture:
    """Rebuild and validate an architecture from its JSON dict (no ``kind``: a DARTS genotype)."""
    if not isinstance(d, dict):
        raise ValueError(f"an architecture must be a JSON object, got {type(d).__name__}")
    return kind_class(d.get("kind", "darts")).from_dict(d)


def load(path: str | Path) -> Architecture:
    """Read and validate an architecture JSON file of any kind (errors name the file)."""
    from nasviz.io import read_json

    path = Path(path)
    data = read_json(path, "architecture file", max_bytes=1 << 20, max_depth=16)
    try:
        return from_dict(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"architecture file {path}: {exc}") from exc


def names() -> dict[str, list[str]]:
    """Built-in architecture names per kind."""
    return {kind: list(cls.builtin_names()) for kind, cls in _ensure_kinds().items()}


def get(name: str) -> Architecture:
    """A built-in architecture of any kind by name (e.g. 'darts_v2', 'nasnet_a', 'cream_287m')."""
    for cls in _ensure_kinds().values():
        found = cls.builtin(name)
        if found is not None:
            return found
    import difflib

    every = [n for ns in names().values() for n in ns]
    close = difflib.get_close_matches(name.strip().lower(), [n.lower() for n in every], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown architecture {name!r}{hint} (built-in: {', '.join(every)}; or pass a JSON file)"
    )


def resolve(spec: Any) -> Architecture:
    """An architecture from an architecture object, a built-in name, or a JSON file path."""
    if isinstance(spec, tuple(_ensure_kinds().values())):
        return spec
    text = str(spec)
    if text.endswith(".json") or Path(text).exists():
        return load(text)
    return get(text)


def save(arch: Architecture, path: str | Path) -> Path:
    """Write an architecture's JSON (with its ``kind``) atomically."""
    from nasviz.io import atomic_write_text

    return atomic_write_text(Path(path), json.dumps(arch.to_dict(), indent=2) + "\n")
