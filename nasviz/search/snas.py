"""SNAS: stochastic NAS with Gumbel-softmax samples, single-level updates, a resource constraint.

Symbols (the same in the notebooks and the CLI help): τ is the Gumbel-softmax temperature, λ the
weight of the resource penalty. (The SNAS paper itself writes λ for the temperature and η for the
penalty weight.)

Each step draws one sample Z = softmax((log_alpha + G) / τ) per cell type (`GumbelMixing`), runs
the supernet with it and updates the weights (SGD) and log_alpha (Adam) from the same loss on the
same training batch:

    loss = CE(supernet_Z(x), y) + λ * penalty

where penalty is the params/FLOPs/memory-access cost of the cells (`nasviz.spaces.costs`). Its
gradient with respect to log_alpha is taken by ``resource_gradient``: ``"paper"`` (default) is
SNAS's estimator, the cost of the sampled child network with a score-function (policy-gradient)
gradient whose reward is each edge's own cost (the locally decomposable reward); ``"relaxed"``
differentiates the cost of the relaxed sample Z through the Gumbel-softmax.

Decisions:

* Data: single level, so weights and log_alpha train on the same split: the first
  ``train_portion`` (90%) of the training data. The rest is a held-out validation split for the
  per-epoch ``val_acc``; the test split is never touched during the search.
* The supernet is evaluated with sampled Z, like in training (what SNAS reports during search).
* The temperature is set once per epoch (linear from temperature_start at the first epoch to
  temperature_end at the last, or geometric with ``temperature_schedule="exponential"``).
* Derivation: argmax of log_alpha on every edge, none included (`derive_edge_all`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nasviz.genotypes import Genotype
from nasviz.search import registry
from nasviz.search.config import ConfigError, param, presets_from
from nasviz.search.derive import derive_edge_all
from nasviz.search.supernet import SupernetConfig, SupernetSearch, supernet_presets_common
from nasviz.spaces.costs import (
    COST_NAMES,
    RESOURCE_GRADIENTS,
    CostTable,
    resource_penalty_gradient,
    supernet_costs,
)
from nasviz.spaces.darts import GumbelMixing, Mixing, gumbel_softmax_sample

TEMPERATURE_SCHEDULES: tuple[str, ...] = ("linear", "exponential")
PENALTY_FORMS: tuple[str, ...] = ("log", "linear")
#: SNAS resource constraint -> resource_lambda for the log-form penalty. Our values, measured on the
#: quick digits search (the paper's example 1.5e-3 is for its CIFAR-10 setting and loss scale).
CONSTRAINTS: dict[str, float] = {"none": 0.0, "mild": 0.01, "moderate": 0.1, "aggressive": 1.0}


@dataclass
class SnasConfig(SupernetConfig):
    """SNAS: temperature schedule and resource constraint on the shared supernet fields."""

    train_portion: float = param(
        0.9, min=0.05, max=0.95, help="share of the training data that trains weights and log_alpha"
    )
    temperature_start: float = param(
        1.0, min=0.0, min_open=True, help="Gumbel-softmax τ, first epoch"
    )
    temperature_end: float = param(0.03, min=0.0, min_open=True, help="τ at the last epoch")
    temperature_schedule: str = param("linear", choices=TEMPERATURE_SCHEDULES)
    constraint: str = param("none", choices=tuple(CONSTRAINTS), help="sets resource_lambda")
    resource_lambda: float | None = param(
        None, min=0.0, help="penalty weight λ; None = the constraint's value"
    )
    penalty_form: str = param("log", choices=PENALTY_FORMS)
    resource_gradient: str = param(
        "paper",
        choices=RESOURCE_GRADIENTS,
        help="gradient of the penalty: 'paper' = score function on the sampled child (SNAS), "
        "'relaxed' = through the relaxed sample Z",
    )

    def check(self) -> None:
        super().check()
        t0, t1 = self.temperature_start, self.temperature_end
        if t1 > t0:
            raise ConfigError(
                f"temperature_end ({t1}) must not exceed temperature_start ({t0}) (SNAS anneals)"
            )

    def effective_resource_lambda(self) -> float:
        """SNAS penalty strength: ``resource_lambda`` if given, else the constraint's preset."""
        if self.resource_lambda is None:
            return CONSTRAINTS[self.constraint]
        return float(self.resource_lambda)


def temperature_schedule(
    epoch: int, epochs: int, start: float = 1.0, end: float = 0.03, kind: str = "linear"
) -> float:
    """Temperature of 0-based ``epoch``: ``start`` at the first epoch, ``end`` at the last one."""
    if kind not in TEMPERATURE_SCHEDULES:
        raise ValueError(
            f"unknown temperature schedule {kind!r}; allowed: {', '.join(TEMPERATURE_SCHEDULES)}"
        )
    if not (start > 0 and end > 0):
        raise ValueError(f"temperatures must be > 0, got start={start!r}, end={end!r}")
    frac = min(max(epoch, 0), epochs - 1) / (epochs - 1) if epochs > 1 else 0.0
    if kind == "linear":
        return start + (end - start) * frac
    return start * (end / start) ** frac


def entropy(z: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row of a probability matrix [edges, ops] -> [edges]."""
    return -(z * torch.log(z.clamp_min(1e-12))).sum(-1)


class SnasSearch(SupernetSearch):
    """SNAS on the DARTS cell space: Gumbel-softmax mixing, single-level steps, resource penalty."""

    config: SnasConfig

    def setup(self, **data: Any) -> None:
        super().setup(**data)
        config = self.config
        self.resource_lambda = config.effective_resource_lambda()
        info = self.info
        self.costs: CostTable = supernet_costs(
            self.model, (1, info.in_channels, info.image_size, info.image_size)
        )
        self.set_temperature(0)
        self._reset_sums()

    # ------------------------------------------------------------------ construction
    def make_mixing(self) -> Mixing:
        return GumbelMixing(self.config.temperature_start)

    @property
    def mixing(self) -> GumbelMixing:
        """The supernet's Gumbel-softmax mixing (holds the temperature and the latest samples)."""
        return self.model.mixing  # type: ignore[return-value]

    # ------------------------------------------------------------------ temperature
    def temperature_at(self, epoch: int) -> float:
        """The configured schedule's temperature at 0-based ``epoch``."""
        cfg = self.config
        return temperature_schedule(
            epoch, cfg.epochs, cfg.temperature_start, cfg.temperature_end, cfg.temperature_schedule
        )

    def set_temperature(self, epoch: int) -> None:
        """Set the mixing's temperature for ``epoch``."""
        self.mixing.temperature = self.temperature_at(epoch)

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.set_temperature(epoch)
        self._reset_sums()

    # ------------------------------------------------------------------ the step
    def samples(self, *, detach: bool = False) -> dict[str, torch.Tensor]:
        """The Z per cell type that the latest forward used."""
        out = {}
        for cell, a in self.model.alphas().items():
            z = self.mixing.last_sample(a, detach=detach)
            if z is None:
                raise RuntimeError("no sample yet: run a forward pass first")
            out[cell] = z
        return out

    def penalty(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        """The resource penalty of samples ``z``, with the configured estimator's gradient.

        'paper': value = the sampled child's penalty, gradient = score function to log_alpha;
        'relaxed': the penalty of the relaxed Z, differentiated through Z.
        """
        cfg = self.config
        return resource_penalty_gradient(
            cfg.resource_gradient, self.costs, self.model.alphas(), z, cfg.penalty_form
        )

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Single level: one loss, one backward, SGD on the weights and Adam on log_alpha."""
        self.w_optimizer.zero_grad(set_to_none=True)
        self.a_optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.model(x)
        ce = self.loss(logits, y)
        z = self.samples()
        penalty = self.penalty(z)
        loss = ce + self.resource_lambda * penalty if self.resource_lambda else ce
        loss.backward()
        self.clip_and_step_weights()
        self.a_optimizer.step()
        self._accumulate({c: v.detach() for c, v in z.items()}, penalty.detach())
        return ce.detach(), logits.detach()

    # ------------------------------------------------------------------ recording
    def _reset_sums(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._n = 0

    def _accumulate(self, z: dict[str, torch.Tensor], penalty: torch.Tensor) -> None:
        """Add this step's sample statistics to the epoch sums (on the device, no host sync)."""
        values = {"penalty": penalty}
        for cell, cost in self.costs.expected(z).items():
            values[f"entropy_{cell}"] = entropy(z[cell]).mean()
            for i, name in enumerate(COST_NAMES):
                values[f"{name}_{cell}"] = cost[i]
        for k, v in values.items():
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
        self._n += 1

    def extra_series(self) -> dict[str, float]:
        """Temperature; over the epoch's samples: Z entropy per edge, expected cell cost, penalty.

        Before any step (the epoch-0 record) the statistics are of one sample drawn with a
        private generator, so recording never touches the global RNG.
        """
        out = {"temperature": float(self.mixing.temperature)}
        if self._n:
            return out | {k: v.item() / self._n for k, v in self._sums.items()}
        gen = torch.Generator(device=self.device).manual_seed(self.config.seed)
        with torch.no_grad():
            z = {
                c: gumbel_softmax_sample(a.detach(), self.mixing.temperature, gen)
                for c, a in self.model.alphas().items()
            }
            saved = self._sums, self._n
            self._accumulate(z, self.penalty(z))
            series = {k: v.item() for k, v in self._sums.items()}
            self._sums, self._n = saved
        return out | series

    # ------------------------------------------------------------------ derivation, resume
    def derive(self) -> Genotype:
        """Argmax of log_alpha on every edge, none included (edges that pick none vanish)."""
        a = self.model.alphas()
        return derive_edge_all(a["normal"], a["reduce"], self.model.primitives)

    def method_state(self) -> dict[str, Any]:
        return super().method_state() | {"temperature": self.mixing.temperature}

    def load_method_state(self, state: dict[str, Any]) -> None:
        super().load_method_state(state)
        if "temperature" in state:
            self.mixing.temperature = state["temperature"]


# ---------------------------------------------------------------------- λ ablation
def resource_ablation(
    constraints: Sequence[str] = ("none", "mild", "moderate", "aggressive"),
    seeds: Sequence[int] = (0, 1),
    base_config: SnasConfig | None = None,
    *,
    resource_gradients: Sequence[str] | None = None,
    out_root: str | None = None,
    measure_flops: bool = True,
    progress: bool = False,
    **search_kw: Any,
) -> list[dict[str, Any]]:
    """Run one SNAS search per (constraint, seed, resource gradient) and measure each derived cell.

    Params and FLOPs are of the evaluation network at the CIFAR-10 config (NetworkCIFAR(36, 10, 20),
    32x32 input, params without the auxiliary head, as the papers count them), so rows compare
    with published cells. ``base_config`` defaults to the SNAS quick preset; ``resource_gradients``
    to the base config's estimator. With ``out_root`` every search is kept there and a finished
    one is read back instead of rerun (`nasviz.viz.runs.cached_search`). ``measure_flops=False``
    skips the FLOPs count (a forward of the 20-cell network per row).

    ``expected_penalty_change``: the penalty of the distribution softmax(log_alpha) (the expected
    cost per edge) at the last epoch minus at the first: it moves with λ before any argmax flips.
    ``penalty_change``: the same for the mean penalty of the sampled children.
    """
    from nasviz.models import NetworkCIFAR
    from nasviz.resources import count_flops, count_parameters
    from nasviz.search import preset
    from nasviz.viz.runs import cached_search

    base = base_config or preset("snas", "quick")
    estimators = list(resource_gradients or [base.resource_gradient])
    rows = []
    for constraint in constraints:
        for seed in seeds:
            for estimator in estimators:
                if CONSTRAINTS[constraint] == 0 and estimator != estimators[0]:
                    continue  # λ = 0: no penalty, so the estimator changes nothing
                # resource_lambda=None: the constraint's own strength.
                cfg = dataclasses.replace(
                    base, constraint=constraint, seed=seed, resource_lambda=None,
                    resource_gradient=estimator,
                )  # fmt: skip
                t0 = time.perf_counter()
                search = cached_search(
                    cfg, out_root, name=f"snas-{constraint}-{estimator}-seed{seed}",
                    progress=progress, **search_kw,
                )  # fmt: skip
                seconds = time.perf_counter() - t0
                g = search.derive()
                net = NetworkCIFAR(36, 10, 20, True, g)
                last = search.history.last()
                _, penalty = search.history.extra("penalty")  # [epochs + 1]: sampled children
                rows.append(
                    {
                        "constraint": constraint,
                        "resource_gradient": estimator,
                        "seed": seed,
                        "resource_lambda": cfg.effective_resource_lambda(),
                        "params": count_parameters(net),
                        "flops": count_flops(net, (1, 3, 32, 32)) if measure_flops else math.nan,
                        "none_edges": sum(
                            op == "none" for cell in ("normal", "reduce") for op, _ in g.edges(cell)
                        ),
                        "val_acc": last["metrics"].get("val_acc", math.nan) if last else math.nan,
                        "seconds": seconds,
                        "search_seconds": float(search.history.metric("seconds")[1].sum()),
                        "penalty_change": float(penalty[-1] - penalty[0])
                        if len(penalty)
                        else math.nan,
                        "expected_penalty_change": _expected_penalty_change(search),
                        "genotype": g.to_dict(),
                    }
                )
    return rows


def _expected_penalty_change(search: SnasSearch) -> float:
    """Penalty of softmax(log_alpha) at the last recorded epoch minus at the first."""
    from nasviz.spaces.costs import resource_penalty

    probs = {c: search.history.group_series(f"alpha/{c}")[1] for c in search.costs.costs}
    values = [
        resource_penalty(
            search.costs, {c: torch.as_tensor(p[t]).float() for c, p in probs.items()},
            search.config.penalty_form,
        ).item()
        for t in (0, -1)
    ]  # fmt: skip
    return values[1] - values[0]


PRESETS = presets_from(
    paper=dict(epochs=150, batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4),
    quick=dict(supernet_presets_common(), lr=0.05, lr_min=0.001, arch_lr=3e-3, epochs=15),
    smoke=dict(epochs=2, max_steps_per_epoch=4, warmup_epochs=0),
)


def _temperature_flag(value: list[float]) -> dict[str, float]:
    return {"temperature_start": value[0], "temperature_end": value[1]}


registry.register(
    registry.Method(
        name="snas",
        title="SNAS",
        search_class=SnasSearch,
        config_class=SnasConfig,
        presets=PRESETS,
        cli_flags=(
            registry.CliFlag(
                ("--temperature",), "temperature_start",
                dict(type=float, nargs=2, metavar=("START", "END"), help="SNAS: Gumbel-softmax temperature τ, first and last epoch"),
                to_config=_temperature_flag,
            ),
            registry.CliFlag(("--temperature-schedule",), "temperature_schedule", dict(choices=TEMPERATURE_SCHEDULES)),
            registry.CliFlag(("--constraint",), "constraint", dict(choices=tuple(CONSTRAINTS), help="SNAS resource constraint")),
            registry.CliFlag(("--resource-lambda",), "resource_lambda", dict(type=float, help="SNAS penalty weight λ")),
            registry.CliFlag(("--penalty-form",), "penalty_form", dict(choices=PENALTY_FORMS)),
            registry.CliFlag(
                ("--resource-gradient",), "resource_gradient",
                dict(choices=RESOURCE_GRADIENTS, help="SNAS: gradient of the λ penalty: paper (score function on the sampled child) or relaxed"),
            ),
        ),
        controls=(
            registry.Control("temperature_start", "float", "τ start", min=0.001, max=100.0, step=0.1),
            registry.Control("temperature_end", "float", "τ end", min=0.001, max=100.0, step=0.01),
            registry.Control("temperature_schedule", "dropdown", "schedule", options=TEMPERATURE_SCHEDULES),
            registry.Control(
                "constraint", "dropdown", "constraint", options=tuple(CONSTRAINTS),
                sets=lambda c: {"resource_lambda": CONSTRAINTS[c]},
            ),
            registry.Control("resource_lambda", "float", "λ", min=0.0, max=1000.0, step=0.01),
            registry.Control("penalty_form", "dropdown", "penalty", options=PENALTY_FORMS),
            registry.Control("resource_gradient", "dropdown", "λ gradient", options=RESOURCE_GRADIENTS),
        ),
        summary="Gumbel-softmax relaxation, single-level search, resource constraints",
    )
)  # fmt: skip

__all__ = [
    "CONSTRAINTS",
    "PENALTY_FORMS",
    "RESOURCE_GRADIENTS",
    "TEMPERATURE_SCHEDULES",
    "SnasConfig",
    "SnasSearch",
    "entropy",
    "resource_ablation",
    "temperature_schedule",
]
