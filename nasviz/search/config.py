"""Search configuration: one dataclass for the DARTS-family methods, with `paper` and `quick` presets.

`paper` is each paper's published setting (PAPERS.md); `quick` runs the same code on the
embedded 8x8 digits in a few minutes on 2 CPU cores. Notebooks and CI shrink further through
`smoke`, which is `quick` with fewer epochs and steps (same code path).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

METHODS: tuple[str, ...] = ("darts", "pc-darts", "snas")
PRESETS: tuple[str, ...] = ("paper", "quick", "smoke")
TEMPERATURE_SCHEDULES: tuple[str, ...] = ("linear", "exponential")
PENALTY_FORMS: tuple[str, ...] = ("log", "linear")
#: SNAS resource constraint -> resource_lambda for the log-form penalty. Our values, measured on the
#: quick digits search (the paper's example 1.5e-3 is for its CIFAR-10 setting and loss scale).
CONSTRAINTS: dict[str, float] = {"none": 0.0, "mild": 0.01, "moderate": 0.1, "aggressive": 1.0}


@dataclass
class SearchConfig:
    """Every knob of a DARTS / PC-DARTS / SNAS search (defaults: DARTS paper)."""

    method: str = "darts"
    dataset: str = "cifar10"
    data_root: str = "data"
    download: bool = False
    train_portion: float = 0.5  # first half trains the weights, second half the architecture
    # supernet
    C: int = 16
    layers: int = 8
    steps: int = 4
    # schedule
    epochs: int = 50
    batch_size: int = 64
    max_steps_per_epoch: int | None = None  # cap for smoke runs; None = the whole split
    # weights: SGD with cosine annealing
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    # architecture: Adam
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    order: int = 1  # DARTS: 1 = first order, 2 = second order (unrolled)
    warmup_epochs: int = 0  # architecture frozen for these first epochs (PC-DARTS: 15)
    # PC-DARTS
    k: int = 1
    edge_normalization: bool = False
    # SNAS
    temperature_start: float = 1.0
    temperature_end: float = 0.03
    temperature_schedule: str = "linear"
    constraint: str = "none"  # none | mild | moderate | aggressive: sets resource_lambda
    resource_lambda: float | None = None  # explicit strength; None = the constraint's value
    penalty_form: str = "log"
    # bookkeeping
    seed: int = 2
    log_every: int = 0  # also record every N steps (0 = per epoch only)
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True  # on CUDA
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming any bad value and what is allowed."""
        if self.method not in METHODS:
            raise ValueError(
                f"unknown search method {self.method!r}; methods: {', '.join(METHODS)}"
            )
        if self.order not in (1, 2):
            raise ValueError(
                f"order must be 1 (first-order) or 2 (second-order), got {self.order!r}"
            )
        if self.method == "pc-darts" and self.order != 1:
            raise ValueError("PC-DARTS searches with first-order DARTS (order=1)")
        for name in ("epochs", "batch_size", "C", "layers", "steps", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < self.train_portion < 1:
            raise ValueError(f"train_portion must be in (0, 1), got {self.train_portion}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(
                f"max_steps_per_epoch must be >= 1 or None, got {self.max_steps_per_epoch}"
            )
        self._validate_snas()

    def _validate_snas(self) -> None:
        t0, t1 = self.temperature_start, self.temperature_end
        for name, t in (("temperature_start", t0), ("temperature_end", t1)):
            if not t > 0:
                raise ValueError(f"{name} must be > 0 (Gumbel-softmax temperature), got {t!r}")
        if t1 > t0:
            raise ValueError(
                f"temperature_end ({t1}) must not exceed temperature_start ({t0}) (SNAS anneals)"
            )
        if self.temperature_schedule not in TEMPERATURE_SCHEDULES:
            raise ValueError(
                f"unknown temperature_schedule {self.temperature_schedule!r}; "
                f"allowed: {', '.join(TEMPERATURE_SCHEDULES)}"
            )
        if self.constraint not in CONSTRAINTS:
            allowed = ", ".join(CONSTRAINTS)
            raise ValueError(f"unknown constraint {self.constraint!r}; allowed: {allowed}")
        if self.resource_lambda is not None and not self.resource_lambda >= 0:
            raise ValueError(f"resource_lambda must be >= 0 or None, got {self.resource_lambda!r}")
        if self.penalty_form not in PENALTY_FORMS:
            allowed = ", ".join(PENALTY_FORMS)
            raise ValueError(f"unknown penalty_form {self.penalty_form!r}; allowed: {allowed}")

    def effective_resource_lambda(self) -> float:
        """SNAS penalty strength: ``resource_lambda`` if given, else the constraint's preset."""
        if self.resource_lambda is None:
            return CONSTRAINTS[self.constraint]
        return float(self.resource_lambda)

    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with some fields changed (None values are ignored, for CLI flags)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown search option(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = dataclasses.asdict(self)
        d["arch_betas"] = list(self.arch_betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        """Inverse of `to_dict` (unknown keys are an error)."""
        d = dict(d)
        if "arch_betas" in d:
            d["arch_betas"] = tuple(d["arch_betas"])
        return cls(**d)


_PAPER: dict[str, dict[str, Any]] = {
    "darts": dict(epochs=50, batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4, order=2),
    "pc-darts": dict(
        epochs=50,
        batch_size=256,
        lr=0.1,
        lr_min=0.0,
        arch_lr=6e-4,
        k=4,
        edge_normalization=True,
        warmup_epochs=15,
    ),  # fmt: skip
    "snas": dict(
        epochs=150, batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4, train_portion=0.5
    ),
}

# Digits (8x8, 1437 train images) on 2 CPU cores: a narrower, shallower supernet, same code.
# A quick search takes ~80 architecture steps instead of the paper's thousands, so the
# architecture learning rates are raised (ours, not the papers') to let the alphas visibly move.
_QUICK_COMMON: dict[str, Any] = dict(dataset="digits", C=8, layers=5, batch_size=64, epochs=10)
_QUICK: dict[str, dict[str, Any]] = {
    "darts": dict(lr=0.05, lr_min=0.001, arch_lr=2e-2),
    "pc-darts": dict(
        lr=0.1, lr_min=0.0, arch_lr=3e-2, k=2, edge_normalization=True, warmup_epochs=3
    ),
    "snas": dict(lr=0.05, lr_min=0.001, arch_lr=3e-3, epochs=15),
}
_SMOKE: dict[str, Any] = dict(epochs=2, max_steps_per_epoch=4, warmup_epochs=0)


def preset(method: str, name: str = "quick", **overrides: Any) -> SearchConfig:
    """The `paper`, `quick` or `smoke` configuration of a method, with optional overrides."""
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; methods: {', '.join(METHODS)}")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    values: dict[str, Any] = {"method": method}
    if name == "paper":
        values.update(_PAPER[method])
    else:
        values.update(_QUICK_COMMON, **_QUICK[method])
        if name == "smoke":
            values.update(_SMOKE)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SearchConfig(**values)
