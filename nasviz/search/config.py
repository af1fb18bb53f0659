"""Search configs: a small shared base, one dataclass per method next to its search, validated fields.

Every field is declared with `param` (default, allowed range or choices, help text). The base
class checks each value's type, range and finiteness when a config is made, changed (`replace`)
or read back (`from_dict`), and an unknown keyword gets a "did you mean" suggestion; every
problem is a `ConfigError` (a ``ValueError``, also a ``TypeError`` for code that caught the
dataclass's own error). A method's config subclasses `SearchConfig` and may add cross-field
checks in ``check()``.

Presets: each method registers ``paper`` (the paper's published setting), ``quick`` (the same
code on the embedded 8x8 digits in a few minutes on 2 CPU cores) and ``smoke`` (quick cut to a
few steps, for notebooks in CI); `preset(method, name, **overrides)` reads them from the registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

PRESETS: tuple[str, ...] = ("paper", "quick", "smoke")

#: Version of the config dict layout stored in checkpoints and histories. Version 1 (nasviz 0.1)
#: was one flat dict for every DARTS-family method; it is read by dropping the other methods' fields.
CONFIG_FORMAT = 2

C = TypeVar("C", bound="SearchConfig")


class ConfigError(ValueError, TypeError):
    """A config value, field name or preset that is not allowed (the message says what is)."""


def param(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    choices: Sequence[Any] | None = None,
    help: str = "",
) -> Any:
    """A config field with its allowed values (checked by `SearchConfig.validate`)."""
    meta = dict(min=min, max=max, min_open=min_open, max_open=max_open, choices=choices, help=help)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def suggest(name: str, options: Sequence[str]) -> str:
    """' (did you mean X?)' for the closest of ``options``, or ''."""
    close = difflib.get_close_matches(name, list(options), n=2, cutoff=0.6)
    if not close and name.lower() in [o.lower() for o in options]:
        close = [o for o in options if o.lower() == name.lower()]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _allows_none(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _base_type(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _check_type(name: str, value: Any, tp: Any) -> Any:
    """``value`` converted to the field's type (int -> float, list -> tuple), or ConfigError."""
    if value is None:
        if _allows_none(tp):
            return None
        raise ConfigError(f"{name} must not be None")
    base = _base_type(tp)
    origin = typing.get_origin(base)
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return value
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(base)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{name} must be a pair of numbers, got {value!r}")
        return tuple(
            _check_type(f"{name}[{i}]", v, a)
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    return value


def _check_range(name: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    if value is None:
        return
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            _check_range(f"{name}[{i}]", v, meta)
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        hint = suggest(value, [str(c) for c in choices]) if isinstance(value, str) else ""
        allowed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not allowed{hint}; allowed: {allowed}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value <= lo if meta.get("min_open") else value < lo):
        op = ">" if meta.get("min_open") else ">="
        raise ConfigError(f"{name} must be {op} {lo}, got {value!r}")
    if hi is not None and (value >= hi if meta.get("max_open") else value > hi):
        op = "<" if meta.get("max_open") else "<="
        raise ConfigError(f"{name} must be {op} {hi}, got {value!r}")


class _ConfigMeta(type):
    """Checks keyword names before the dataclass ``__init__`` runs, to suggest the close name."""

    def __call__(cls, *args: Any, **kw: Any) -> Any:
        cls.check_names(kw)  # type: ignore[attr-defined]
        return super().__call__(*args, **kw)


@dataclass
class SearchConfig(metaclass=_ConfigMeta):
    """What every search shares: data, schedule, seed, device, precision, threads, logging."""

    method: ClassVar[str] = "base"

    dataset: str = param("cifar10", help="digits (embedded) or cifar10")
    data_root: str = param("data", help="where datasets are read from / downloaded to")
    download: bool = param(False, help="download the dataset into data_root if missing")
    epochs: int = param(50, min=1, max=100_000)
    batch_size: int = param(64, min=1, max=65_536)
    max_steps_per_epoch: int | None = param(
        None, min=1, help="cap on iterations per epoch (smoke runs); None = the whole split"
    )
    seed: int = param(2, min=0, max=2**63 - 1)
    device: str = param("auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    amp: bool = param(True, help="bf16 autocast on CUDA")
    threads: int | None = param(
        None, min=1, max=1024, help="CPU threads (None: the library's rule, nasviz.threads)"
    )
    log_every: int = param(0, min=0, help="also record every N steps (0: per epoch only)")

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    @classmethod
    def field_names(cls) -> list[str]:
        """The config's field names."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_names(cls, names: typing.Iterable[str]) -> None:
        """ConfigError for any name that is not a field, with a suggestion."""
        known = cls.field_names()
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"unknown {cls.method} search option {name!r}{suggest(name, known)}; "
                    f"options: {', '.join(known)}"
                )

    def validate(self) -> None:
        """Check every field's type, range and finiteness, then the method's own `check`."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _check_type(f.name, getattr(self, f.name), hints[f.name])
            _check_range(f.name, value, f.metadata)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field checks of a method (override; raise ConfigError)."""

    def warnings(self) -> list[str]:
        """Settings that are allowed but probably not meant (e.g. a warm-up covering every epoch)."""
        return []

    # ------------------------------------------------------------------ copies and I/O
    @classmethod
    def create(cls: type[C], **values: Any) -> C:
        """Build a config, with a suggestion for a misspelt keyword."""
        cls.check_names(values)
        return cls(**values)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (None values are ignored, for CLI flags)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        self.check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the method and the config format."""
        d = {"method": self.method, "config_format": CONFIG_FORMAT}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Inverse of `to_dict`; a version-1 flat dict (nasviz 0.1) keeps only this method's fields."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        version = d.pop("config_format", 1)
        method = d.pop("method", cls.method)
        if method != cls.method:
            raise ConfigError(f"this config is for {method!r}, not {cls.method!r}")
        if version > CONFIG_FORMAT:
            raise ConfigError(
                f"this config was written by a newer nasviz (config format {version}; this "
                f"version reads up to {CONFIG_FORMAT}): upgrade nasviz to read it"
            )
        if version == 1:  # one flat dict for darts/pc-darts/snas: drop what this method lacks
            known = set(cls.field_names())
            d = {k: v for k, v in d.items() if k in known}
        return cls.create(**d)


def preset(method: str, name: str = "quick", **overrides: Any) -> SearchConfig:
    """The ``paper``, ``quick`` or ``smoke`` config of a registered method, with overrides."""
    from nasviz.search import registry

    entry = registry.get(method)
    if name not in entry.presets:
        raise ConfigError(
            f"unknown preset {name!r}{suggest(name, list(entry.presets))}; "
            f"presets: {', '.join(entry.presets)}"
        )
    values = dict(entry.presets[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return entry.config_class.create(**values)


def presets_from(
    paper: dict[str, Any], quick: dict[str, Any], smoke: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The three presets of a method: ``smoke`` is ``quick`` updated with ``smoke``."""
    return {"paper": dict(paper), "quick": dict(quick), "smoke": {**quick, **smoke}}


Factory = Callable[..., SearchConfig]

__all__ = [
    "CONFIG_FORMAT",
    "PRESETS",
    "ConfigError",
    "SearchConfig",
    "param",
    "preset",
    "presets_from",
    "suggest",
]
