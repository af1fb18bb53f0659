"""The comparison protocol: every search, retraining and random architecture is a run directory.

    OUT/calibrate/<method>         (budget "seconds" only) a few measured iterations per method
    OUT/search/<method>-seed<k>    the search (engine: `nasviz.search.create_search`)
    OUT/retrain/<method>-seed<k>   its derived architecture retrained from scratch with seed k
    OUT/random/<space>-<i>         the i-th uniformly random architecture of a space, retrained

A run whose files say it is finished (history or metrics up to its last epoch) is read back, an
interrupted one is resumed, a missing one is run; so a comparison stopped at any point continues
where it stopped, and rerunning a finished one only redraws the table and plots. A directory whose
settings differ from the ones asked for (another budget, preset or retraining) is refused with the
engine's message, never overwritten.

Protocol decisions (each also stated in notebook 06):

* one dataset and one split for all (`nasviz.compare.budget.split_overrides`);
* one budget per search (`nasviz.compare.budget`); the default is what the first method's preset
  spends, so ``--methods darts,...`` gives every method DARTS's quick budget;
* every derived architecture is retrained with the same retrain preset (per architecture kind:
  `nasviz.train.retrain_preset`) and the search's seed; the test split is read once, at the end of
  each retraining;
* random baseline: ``random`` architectures per search space drawn uniformly (the methods' own
  samplers: `Search.random_architectures`; DARTS, PC-DARTS and SNAS share one DARTS-cell cloud),
  the i-th retrained with seed ``first_seed + i`` (the comparison's seeds first, then further
  ones, so adding seeds or samples later reuses every finished run), at the same retraining.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasviz import architectures
from nasviz.architectures import Architecture
from nasviz.compare.budget import (
    Shape,
    fit_budget,
    measure_shape,
    seconds_per_iteration,
    split_overrides,
)
from nasviz.compare.config import CompareConfig
from nasviz.history import SearchHistory
from nasviz.io import atomic_write_text
from nasviz.search import registry
from nasviz.search.base import ARCHITECTURE
from nasviz.search.config import ConfigError, SearchConfig, preset


@dataclass
class Budget:
    """The budget every search gets, and how it was chosen."""

    kind: str  # "images" or "seconds"
    value: float
    source: str  # a sentence: given, or which preset it comes from
    images: dict[str, float] = field(default_factory=dict)  # per method, what it is fitted to

    def describe(self) -> str:
        """'7,680 training images per search (what the darts quick preset spends: ...)'."""
        unit = "training images" if self.kind == "images" else "seconds"
        return f"{self.value:,.0f} {unit} per search ({self.source})"


@dataclass
class SearchOutcome:
    """One finished search of the comparison."""

    method: str
    seed: int
    out: Path
    config: SearchConfig
    shape: Shape
    space: str
    architecture: Architecture
    history: SearchHistory
    gap: dict[str, float]
    reused: bool

    def budget_images(self) -> int:
        """Training images this search saw."""
        return self.shape.images(self.config)

    def search_seconds(self) -> float:
        """Training plus evaluation seconds over all epochs (measured per epoch, resume-proof)."""
        h = self.history
        return float(h.metric("seconds")[1].sum() + h.metric("eval_seconds")[1].sum())

    def peak_memory_mb(self) -> float:
        """Largest per-epoch peak memory (CUDA: allocated; CPU: the process's peak RSS)."""
        m = self.history.metric("peak_memory_mb")[1]
        return float(m.max()) if len(m) else math.nan


@dataclass
class RetrainOutcome:
    """One finished retraining (a method's architecture, or a random one)."""

    name: str
    seed: int
    out: Path
    architecture: Architecture
    test_acc: float
    params: int
    flops: int
    reused: bool


@dataclass
class Comparison:
    """Everything a comparison produced; `nasviz.compare.table` turns it into DataFrames."""

    config: CompareConfig
    budget: Budget
    searches: list[SearchOutcome]
    retrains: dict[tuple[str, int], RetrainOutcome]
    random: dict[str, list[RetrainOutcome]]
    missing: list[str]

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def frame(self) -> Any:
        """One row per (method, seed): `nasviz.compare.table.comparison_frame`."""
        from nasviz.compare.table import comparison_frame

        return comparison_frame(self)

    def random_frame(self) -> Any:
        """One row per random architecture: `nasviz.compare.table.random_frame`."""
        from nasviz.compare.table import random_frame

        return random_frame(self)

    def summary(self) -> Any:
        """One row per method (means over seeds): `nasviz.compare.table.method_summary`."""
        from nasviz.compare.table import method_summary

        return method_summary(self.frame())


# ---------------------------------------------------------------------------------- finished runs
def search_finished(out: Path, epochs: int) -> bool:
    """Whether ``out`` holds a search whose files reach ``epochs`` (checkpoint and history)."""
    from nasviz.search.base import CHECKPOINT, HISTORY

    if not (out / CHECKPOINT).is_file() or not (out / HISTORY).is_file():
        return False
    try:
        last = SearchHistory.load(out / HISTORY).last()
    except (ValueError, OSError):
        return False
    return last is not None and int(last["epoch"]) >= epochs


def retrain_finished(out: Path, epochs: int) -> bool:
    """Whether ``out`` holds a retraining whose metrics reach ``epochs`` with a test accuracy."""
    import json

    from nasviz.train import CHECKPOINT, METRICS

    if not (out / CHECKPOINT).is_file() or not (out / METRICS).is_file():
        return False
    try:
        metrics = json.loads((out / METRICS).read_text())
    except (ValueError, OSError):
        return False
    return bool(metrics) and metrics[-1].get("epoch") == epochs and "test_acc" in metrics[-1]


# ---------------------------------------------------------------------------------- the runner
Log = Callable[[str], None]


class Runner:
    """Runs (or reads back) every run of a comparison in order, numbering them '[k/N]'."""

    def __init__(self, config: CompareConfig, *, progress: bool = True, log: Log | None = None):
        config.validate()
        self.config = config
        self.root = Path(config.out)
        self.progress = progress
        self.log = log or (lambda text: print(text, flush=True))
        self.methods, self.missing = config.landed_methods()
        if not self.methods:
            raise ConfigError(
                f"none of the methods {', '.join(self.missing)} has landed in this nasviz "
                f"version; methods: {', '.join(registry.names())}"
            )
        self.seeds = config.seed_list()
        self.spaces = list(dict.fromkeys(self._space(m) for m in self.methods))
        calibrations = len(self.methods) if config.budget == "seconds" else 0
        per_method = len(self.seeds) * 2
        self.total = (
            calibrations + len(self.methods) * per_method + len(self.spaces) * config.random
        )
        self.done = 0

    @staticmethod
    def _space(method: str) -> str:
        return registry.get(method).search_class.space_name

    def _announce(self, what: str, out: Path, reused: bool) -> None:
        self.done += 1
        state = "reusing finished" if reused else "running"
        self.log(f"[{self.done}/{self.total}] {what}: {state} {out}")

    # ------------------------------------------------------------------ configs and budget
    def base_config(self, method: str) -> SearchConfig:
        """The method's preset on the comparison's dataset and split."""
        cfg = self.config
        cls = registry.get(method).config_class
        return preset(
            method, cfg.preset, dataset=cfg.dataset, data_root=cfg.data_root, device=cfg.device,
            **split_overrides(cls, cfg.val_portion),
        )  # fmt: skip

    def resolve_budget(self, bases: dict[str, SearchConfig], shapes: dict[str, Shape]) -> Budget:
        """The budget value and, per method, the training images it is fitted to."""
        cfg, first = self.config, self.methods[0]
        base, shape = bases[first], shapes[first]
        how = (
            f"what the {first} {cfg.preset} preset spends: {base.epochs} epochs x "
            f"{shape.steps(base)} iterations x {shape.images_per_iteration} images"
        )
        if cfg.budget == "images":
            value = cfg.budget_value or float(shape.images(base))
            source = "given" if cfg.budget_value else how
            return Budget("images", value, source, {m: value for m in self.methods})
        rates = {m: self.calibrate(m, bases[m], shapes[m]) for m in self.methods}
        iterations = base.epochs * shape.steps(base)
        value = cfg.budget_value or rates[first] * iterations
        source = (
            "given"
            if cfg.budget_value
            else f"{how}, at the measured {rates[first]:.3f} s/iteration"
        )
        images = {m: value / rates[m] * shapes[m].images_per_iteration for m in self.methods}
        return Budget("seconds", value, source, images)

    def calibrate(self, method: str, base: SearchConfig, shape: Shape) -> float:
        """Seconds per iteration of ``method``, from a short run in OUT/calibrate/<method>."""
        from nasviz.viz.runs import cached_search

        steps = min(shape.steps(base), 3)
        changes: dict[str, Any] = {"epochs": 1}
        if getattr(base, "warmup_epochs", None):
            changes["warmup_epochs"] = 0  # time the method's full step, not its warm-up
        config = base.replace(**changes)
        config = fit_budget(config, shape, steps * shape.images_per_iteration)
        out = self.root / "calibrate" / method
        reused = search_finished(out, config.epochs)
        self._announce(f"timing {method} ({steps} iterations)", out, reused)
        search = cached_search(config, out, progress=self.progress and not reused)
        return seconds_per_iteration(search.history, shape.steps(config), shape.steps(base))

    # ------------------------------------------------------------------ runs
    def search(self, method: str, seed: int, config: SearchConfig, shape: Shape) -> SearchOutcome:
        """The search of ``config`` in OUT/search/<method>-seed<k>: read back if finished, else run.

        A finished search is read from its files (history, architecture, the supernet-to-child
        figures in gap.json) after checking that its settings are the ones asked for.
        """
        from nasviz.search import RESUME_MAY_DIFFER
        from nasviz.search.base import HISTORY
        from nasviz.viz.runs import cached_search

        out = self.root / "search" / f"{method}-seed{seed}"
        space = self._space(method)
        reused = search_finished(out, config.epochs) and (out / GAP).is_file()
        self._announce(f"search {method} seed {seed} ({config.epochs} epochs)", out, reused)
        if reused:
            history = SearchHistory.load(out / HISTORY)
            with _naming(out):
                _check_settings(history.config, config.to_dict(), RESUME_MAY_DIFFER)
            arch = architectures.load(out / ARCHITECTURE)
            gap = json.loads((out / GAP).read_text())
            return SearchOutcome(method, seed, out, config, shape, space, arch, history, gap, True)
        with _naming(out):
            search = cached_search(config, out, progress=self.progress)
        gap = search.subnet_gap()
        atomic_write_text(out / GAP, json.dumps(gap, indent=2) + "\n")
        self._samplers.setdefault(space, search)
        return SearchOutcome(
            method, seed, out, search.config, shape, space, search.derive(), search.history,
            gap, False,
        )  # fmt: skip

    def retrain_config(self, kind: str, seed: int) -> Any:
        """The comparison's retraining of an architecture ``kind`` (its kind's preset), ``seed``."""
        from nasviz.train import retrain_preset

        cfg = self.config
        return retrain_preset(
            cfg.retrain_preset, kind=kind, seed=seed, dataset=cfg.dataset,
            data_root=cfg.data_root, device=cfg.device, epochs=cfg.retrain_epochs,
        )  # fmt: skip

    def retrain(
        self, name: str, arch: Architecture | Callable[[], Architecture], seed: int, out: Path,
        kind: str,
    ) -> RetrainOutcome:  # fmt: skip
        """Retrain ``arch`` (or the architecture a callable draws) in ``out``, or read it back.

        A finished retraining is read from its files (metrics.json, genotype.json) after checking
        its settings; ``arch`` is then not needed (a random architecture is not drawn again).
        """
        from nasviz.train import CHECKPOINT, CONFIG, GENOTYPE, METRICS, RESUME_MAY_DIFFER, retrain

        rcfg = self.retrain_config(kind, seed)
        reused = retrain_finished(out, rcfg.epochs) and (out / CONFIG).is_file()
        self._announce(f"retrain {name} seed {seed} ({rcfg.epochs} epochs)", out, reused)
        if reused:
            with _naming(out):
                saved = json.loads((out / CONFIG).read_text())
                _check_settings(saved, rcfg.to_dict(), RESUME_MAY_DIFFER)
            arch = architectures.load(out / GENOTYPE)
            test_acc = float(json.loads((out / METRICS).read_text())[-1]["test_acc"])
        else:
            arch = arch() if callable(arch) else arch
            with _naming(out):
                result = retrain(
                    arch, rcfg, out, resume=(out / CHECKPOINT).is_file(), progress=self.progress
                )
            test_acc = float(result.test_acc)
        params, flops = network_cost(arch, rcfg)
        return RetrainOutcome(name, seed, out, arch, test_acc, params, flops, reused)

    def sampler(self, space: str, config: SearchConfig) -> Any:
        """A search of ``space`` to draw random architectures from (built in memory if needed)."""
        from nasviz.search import create_search

        if space not in self._samplers:
            self._samplers[space] = create_search(config, None)
        return self._samplers[space]

    def random_cloud(self, space: str, config: SearchConfig) -> list[RetrainOutcome]:
        """The space's random architectures, each retrained (or read back)."""
        n = self.config.random
        drawn: list[Architecture] = []

        def draw(i: int) -> Callable[[], Architecture]:
            def get() -> Architecture:
                if not drawn:  # the whole stream once, so the i-th never depends on the others
                    drawn.extend(self.sampler(space, config).random_architectures(n, self.seeds[0]))
                return drawn[i]

            return get

        kind = self._kind(space, config)
        return [
            self.retrain(
                f"random {space} #{i}", draw(i), self.config.first_seed + i,
                self.root / "random" / f"{space}-{i}", kind,
            )
            for i in range(n)
        ]  # fmt: skip

    def _kind(self, space: str, config: SearchConfig) -> str:
        """The architecture kind of a space (from a finished search, else from one draw)."""
        for s in self._outcomes:
            if s.space == space:
                return s.architecture.kind
        return self.sampler(space, config).random_architectures(1, 0)[0].kind

    def run(self) -> Comparison:
        """Every run in order: searches, their retrainings, then the random baselines."""
        if self.missing:
            self.log(
                f"not in this nasviz version (skipped): {', '.join(self.missing)}; "
                f"comparing {', '.join(self.methods)}"
            )
        bases = {m: self.base_config(m) for m in self.methods}
        shapes = {m: measure_shape(bases[m]) for m in self.methods}
        budget = self.resolve_budget(bases, shapes)
        self.log(f"budget: {budget.describe()}; {self.total} runs under {self.root}")
        fitted = {m: fit_budget(bases[m], shapes[m], budget.images[m]) for m in self.methods}
        self._samplers: dict[str, Any] = {}  # one search per space draws its random cloud
        self._outcomes: list[SearchOutcome] = []
        for method in self.methods:
            for seed in self.seeds:
                config = fitted[method].replace(seed=seed)
                self._outcomes.append(self.search(method, seed, config, shapes[method]))
        retrains = {}
        for s in self._outcomes:
            out = self.root / "retrain" / f"{s.method}-seed{s.seed}"
            retrains[(s.method, s.seed)] = self.retrain(
                s.method, s.architecture, s.seed, out, s.architecture.kind
            )
        first = {self._space(m): fitted[m].replace(seed=self.seeds[0]) for m in self.methods[::-1]}
        random = {space: self.random_cloud(space, first[space]) for space in self.spaces}
        return Comparison(self.config, budget, self._outcomes, retrains, random, self.missing)


#: The supernet-to-child figures of a finished search, beside its history.
GAP = "gap.json"


def _check_settings(saved: dict[str, Any], asked: dict[str, Any], may_differ: Any) -> None:
    """The engine's resume check: a ValueError naming every field that differs."""
    from nasviz.checkpoint import check_resume_config

    check_resume_config(saved, asked, may_differ)


@contextlib.contextmanager
def _naming(out: Path) -> Iterator[None]:
    """Re-raise a refused resume naming the comparison's run directory and the way out."""
    try:
        yield
    except ValueError as exc:
        if "cannot resume" not in str(exc):
            raise
        raise ValueError(
            f"{out} holds a run with other settings than this comparison asks for: {exc}. "
            "Give the comparison another --out (or remove that run directory)"
        ) from exc


def network_cost(arch: Architecture, rcfg: Any) -> tuple[int, int]:
    """(parameters, FLOPs) of ``arch``'s retraining network (no auxiliary head), one image."""
    from nasviz.data import dataset_info
    from nasviz.resources import count_flops, count_parameters

    info = dataset_info(rcfg.dataset)
    net = arch.build_network(
        num_classes=info.num_classes, in_channels=info.in_channels, image_size=info.image_size,
        C=rcfg.C, layers=rcfg.layers, auxiliary=False,
    )  # fmt: skip
    shape = (1, info.in_channels, info.image_size, info.image_size)
    return count_parameters(net), count_flops(net, shape)


def run_comparison(
    config: CompareConfig | None = None, *, progress: bool = True, log: Log | None = None,
    **values: Any,
) -> Comparison:  # fmt: skip
    """Run (or resume, or read back) a comparison: ``run_comparison(methods="darts,snas", seeds=2)``."""
    config = config or CompareConfig()
    if values:
        config = config.replace(**values)
    return Runner(config, progress=progress, log=log).run()


__all__ = [
    "Budget",
    "Comparison",
    "RetrainOutcome",
    "Runner",
    "SearchOutcome",
    "network_cost",
    "retrain_finished",
    "run_comparison",
    "search_finished",
]
