"""One registry of search methods: name -> search class, config class, presets, CLI flags, widgets.

A method module ends with one `register(Method(...))` call. `nasviz search METHOD`, `preset()`,
the widget panels and `nasviz plot` read the registry, so adding a method is its own modules
plus the module's name in `METHOD_MODULES`; nothing else switches on method names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The modules that register the built-in methods, in the order they are listed.
METHOD_MODULES: tuple[str, ...] = (
    "nasviz.search.darts",
    "nasviz.search.pcdarts",
    "nasviz.search.snas",
    "nasviz.search.nasnet",
    "nasviz.search.cream",
)


@dataclass(frozen=True)
class CliFlag:
    """A method's command-line flag: argparse arguments, and how its value becomes config fields.

    ``to_config(value) -> {field: value}``; by default the flag's value goes to ``field``.
    """

    flags: tuple[str, ...]
    field: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    to_config: Callable[[Any], dict[str, Any]] | None = None

    def config_values(self, value: Any) -> dict[str, Any]:
        """The config fields this flag's parsed value sets (nothing if not given)."""
        if value is None or value is False:
            return {}
        return self.to_config(value) if self.to_config else {self.field: value}


@dataclass(frozen=True)
class Control:
    """A widget a method's panel offers for one config field.

    ``widget``: 'int', 'float', 'dropdown', 'toggle', 'checkbox'. ``options`` may be a callable of
    the preset's config (e.g. PC-DARTS' K: the divisors of the supernet's channels). ``sets``
    maps a new value to other fields it implies (SNAS: a constraint sets its penalty weight).
    """

    field: str
    widget: str
    label: str
    options: Sequence[Any] | Callable[[Any], Sequence[Any]] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    sets: Callable[[Any], dict[str, Any]] | None = None
    help: str = ""


@dataclass(frozen=True)
class Method:
    """Everything the rest of nasviz needs to know about a search method."""

    name: str
    title: str
    search_class: type
    config_class: type
    presets: dict[str, dict[str, Any]]
    cli_flags: tuple[CliFlag, ...] = ()
    controls: tuple[Control, ...] = ()
    summary: str = ""
    plots: tuple[str, ...] = ()  # names of extra plots `nasviz plot` draws for this method


_METHODS: dict[str, Method] = {}
_LOADED = False


def register(method: Method) -> Method:
    """Add a method (its module calls this once, at import)."""
    method.search_class.method = method.name
    method.config_class.method = method.name
    _METHODS[method.name] = method
    return method


def _load() -> dict[str, Method]:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in METHOD_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a method that has not landed yet
                if exc.name != module:
                    raise
    return _METHODS


def names() -> list[str]:
    """The registered method names."""
    return list(_load())


def planned() -> list[str]:
    """Methods nasviz plans whose modules are not installed yet."""
    have = {m.search_class.__module__ for m in _load().values()}
    return [m.rsplit(".", 1)[1] for m in METHOD_MODULES if m not in have]


def get(name: str) -> Method:
    """The registered method ``name`` (ConfigError with a suggestion otherwise)."""
    from nasviz.search.config import ConfigError, suggest

    table = _load()
    if name not in table:
        missing = [p for p in planned() if p.replace("pc", "pc-") == name or p == name]
        if missing:
            raise ConfigError(f"search method {name!r} has not landed in this nasviz version yet")
        raise ConfigError(
            f"unknown search method {name!r}{suggest(name, list(table))}; "
            f"methods: {', '.join(table)}"
        )
    return table[name]


__all__ = ["METHOD_MODULES", "CliFlag", "Control", "Method", "get", "names", "planned", "register"]
