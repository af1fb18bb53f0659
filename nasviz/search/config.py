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

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from nasviz.config import Config, ConfigError, check_dataset_and_device, param, suggest

PRESETS: tuple[str, ...] = ("paper", "quick", "smoke")

#: Version of the config dict layout stored in checkpoints and histories. Version 1 (nasviz 0.1)
#: was one flat dict for every DARTS-family method; it is read by dropping the other methods' fields.
CONFIG_FORMAT = 2

S = TypeVar("S", bound="SearchConfig")


@dataclass
class SearchConfig(Config):
    """What every search shares: data, schedule, seed, device, precision, threads, logging."""

    method: ClassVar[str] = "base"
    label: ClassVar[str] = "search"

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

    def check(self) -> None:
        check_dataset_and_device(self.dataset, self.device)

    @classmethod
    def option_label(cls) -> str:
        return f"{cls.method} search"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the method and the config format."""
        return {"method": self.method, "config_format": CONFIG_FORMAT, **super().to_dict()}

    @classmethod
    def from_dict(cls: type[S], d: dict[str, Any]) -> S:
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
