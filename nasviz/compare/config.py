"""What a comparison runs: methods, seeds, the random baseline, the budget, the shared split.

`CompareConfig` is checked like every nasviz config (`nasviz.config.Config`): an unknown method
gets a "did you mean", a method planned but not landed in this version is kept aside and named in
one message by `landed_methods` (the others still run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nasviz.config import Config, ConfigError, check_dataset_and_device, param, suggest
from nasviz.search import registry
from nasviz.search.config import PRESETS

#: Every built-in method, in the order the papers appeared in nasviz's notebooks.
ALL_METHODS = "darts,pc-darts,snas,nasnet,cream"
BUDGETS: tuple[str, ...] = ("images", "seconds")


def split_methods(text: str) -> list[str]:
    """'darts, pc-darts' -> ['darts', 'pc-darts'] (empty items dropped)."""
    return [m.strip() for m in text.split(",") if m.strip()]


def _planned_name(name: str) -> bool:
    """Whether ``name`` is a method nasviz plans whose module has not landed."""
    return any(p == name or p.replace("pc", "pc-", 1) == name for p in registry.planned())


@dataclass
class CompareConfig(Config):
    """A comparison of search methods on one dataset, one split and one budget."""

    label: ClassVar[str] = "compare"

    methods: str = param(ALL_METHODS, help="comma-separated method names")
    dataset: str = param("digits", help="the one dataset every search and retraining uses")
    data_root: str = param("data")
    preset: str = param("quick", choices=PRESETS, help="every method's search preset")
    seeds: int = param(3, min=1, max=1000, help="searches per method (seeds first_seed, ...)")
    first_seed: int = param(0, min=0, max=2**31)
    random: int = param(8, min=0, max=100_000, help="random architectures per search space")
    budget: str = param(
        "images", choices=BUDGETS,
        help="images: the same number of training images seen by each search; seconds: the "
        "same wall clock (estimated from a short measured run of each method)",
    )  # fmt: skip
    budget_value: float | None = param(
        None, min=0.0, min_open=True,
        help="images or seconds per search; None: what the first method's preset spends",
    )  # fmt: skip
    val_portion: float = param(
        0.5, min=0.05, max=0.5,
        help="the last share of the training data every search holds out (the rest trains weights)",
    )  # fmt: skip
    retrain_preset: str = param("quick", choices=PRESETS, help="retraining of every architecture")
    retrain_epochs: int | None = param(None, min=1, help="override the retrain preset's epochs")
    out: str = param("runs/compare", help="every run is a run directory under here")
    device: str = param("auto")

    def check(self) -> None:
        check_dataset_and_device(self.dataset, self.device)
        names = split_methods(self.methods)
        if not names:
            raise ConfigError(f"give at least one method; methods: {', '.join(registry.names())}")
        seen = set()
        for name in names:
            if name in seen:
                raise ConfigError(f"method {name!r} is given twice in methods={self.methods!r}")
            seen.add(name)
            if name not in registry.names() and not _planned_name(name):
                known = registry.names()
                raise ConfigError(
                    f"unknown search method {name!r}{suggest(name, known)}; "
                    f"methods: {', '.join(known)}"
                )

    def method_list(self) -> list[str]:
        """The methods, in the order given."""
        return split_methods(self.methods)

    def landed_methods(self) -> tuple[list[str], list[str]]:
        """(methods that can run, methods planned but not in this nasviz version)."""
        names = self.method_list()
        missing = [m for m in names if m not in registry.names()]
        return [m for m in names if m not in missing], missing

    def seed_list(self) -> list[int]:
        """The search (and retraining) seeds."""
        return list(range(self.first_seed, self.first_seed + self.seeds))


__all__ = ["ALL_METHODS", "BUDGETS", "CompareConfig", "split_methods"]
