"""Configs that check themselves: typed fields with allowed values, suggestions, plain-dict I/O.

Every field is declared with `param` (default, allowed range or choices, help text). `Config`
checks each value's type, range and finiteness when a config is made, changed (`replace`) or read
back (`from_dict`); an unknown keyword gets a "did you mean" suggestion (difflib); every problem
is a `ConfigError` (a ``ValueError``, and a ``TypeError`` for code that caught the dataclass's
own error). Search configs (`nasviz.search.config`) and the retraining config build on it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

C = TypeVar("C", bound="Config")


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
class Config(metaclass=_ConfigMeta):
    """Base of every nasviz config: checked fields, suggestions, copies, plain-dict I/O."""

    #: What the config configures, for messages ("unknown darts search option ...").
    label: ClassVar[str] = "config"

    def __post_init__(self) -> None:
        self.validate()

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
                    f"unknown {cls.option_label()} option {name!r}{suggest(name, known)}; "
                    f"options: {', '.join(known)}"
                )

    @classmethod
    def option_label(cls) -> str:
        """How messages name this config's options ("retrain", "darts search" ...)."""
        return cls.label

    def validate(self) -> None:
        """Check every field's type, range and finiteness, then the config's own `check`."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _check_type(f.name, getattr(self, f.name), hints[f.name])
            _check_range(f.name, value, f.metadata)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field checks (override; raise ConfigError)."""

    def warnings(self) -> list[str]:
        """Settings that are allowed but probably not meant (e.g. a warm-up covering every epoch)."""
        return []

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
        """JSON-ready dict of the fields (tuples as lists)."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Inverse of `to_dict` (unknown keys get the same error as unknown keywords)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a {cls.label} config must be a JSON object, got {type(d).__name__}")
        return cls.create(**d)


def check_dataset_and_device(dataset: str, device: str) -> None:
    """ConfigError for an unknown dataset name or a string that is not a torch device."""
    from nasviz.data import known_datasets

    if dataset not in known_datasets():
        raise ConfigError(
            f"unknown dataset {dataset!r}{suggest(dataset, known_datasets())}; "
            f"known datasets: {', '.join(known_datasets())}"
        )
    if device != "auto":
        import torch

        try:
            torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(
                f"device {device!r} is not a torch device; use auto, cpu, cuda, cuda:1 ..."
            ) from exc
