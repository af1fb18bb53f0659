"""The search base: what every method shares, and nothing of any one method.

A `Search` owns the config, the device, the seed, the output directory, the epoch/iteration loop
(a template), the history and its callbacks, the progress bar and the checkpoints. A method
subclasses it and fills in a few hooks:

* `setup(**data)`: build data, networks, optimizers (called once, from ``__init__``);
* `iterations_per_epoch()` and `run_iteration(i) -> (values, weight)`: one iteration is a batch
  step for a supernet, or "sample M architectures, score them, update" for a controller;
  ``values`` are scalars (tensors may stay on the device) averaged over the epoch with ``weight``
  (images, or children);
* `end_epoch(means) -> metrics`: evaluation after an epoch;
* `snapshot() -> {"groups": ..., "extra": ...}`: what the method decides, as history groups;
* `derive() -> Architecture`: the discrete result (any kind of `nasviz.architectures`);
* `method_state()` / `load_method_state(state)`: everything to continue exactly.

Guards every method gets: the output directory is checked before any work; a loss that becomes
NaN or infinite stops the run naming the epoch and step, with the last good checkpoint, history
and architecture files untouched; Ctrl-C (also in a notebook) stops the run and rolls the object
back to the last saved epoch, which `--resume` continues exactly.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasviz import allocator, checkpoint, distributed, threads
from nasviz.architectures import Architecture
from nasviz.history import SearchHistory
from nasviz.loop import DivergenceError
from nasviz.resources import peak_memory_mb, reset_peak_memory
from nasviz.search.config import SearchConfig

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
ARCHITECTURE = "genotype.json"  # any architecture kind; the DARTS name is kept for old runs
GENOTYPE = ARCHITECTURE


@dataclass
class SearchResult:
    """What a finished search leaves: the architecture, the history, where it is saved."""

    genotype: Architecture
    history: SearchHistory
    out: Path | None
    config: SearchConfig

    @property
    def architecture(self) -> Architecture:
        """The derived architecture (``genotype`` is its historical name)."""
        return self.genotype


def check_out_dir(out: Path) -> None:
    """Refuse an output directory that is a file or cannot be written, before any work."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a directory: choose a directory")
    parent = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    probe = parent / f".nasviz-write-test-{os.getpid()}-{id(out)}"  # one per rank
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write to {parent} for --out {out} ({exc.strerror})") from exc


class Search:
    """Base search: config, device, seed, loop, history, progress bar, checkpoints."""

    method = "base"
    iteration_unit = "step"

    def __init__(self, config: SearchConfig, out: str | Path | None = None, **data: Any):
        config.validate()  # fields may have been changed after construction
        self.config = config
        self.out = Path(out) if out is not None else None
        if self.out is not None:
            check_out_dir(self.out)
        # data parallel under torchrun (nasviz.distributed); a no-op in a single process
        self.dist = distributed.from_env(checkpoint.resolve_device(config.device))
        self.device = self.dist.device(checkpoint.resolve_device(config.device))
        self.threads = threads.apply(self.device, config.threads)
        allocator.apply(self.device)  # glibc keeps the heap between steps (CPU, Linux)
        checkpoint.seed_everything(config.seed)
        self.history = SearchHistory(method=self.method, config=config.to_dict())
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.setup(**data)

    # ------------------------------------------------------------------ method hooks
    def setup(self, **data: Any) -> None:
        """Build data, networks and optimizers (override)."""

    def iterations_per_epoch(self) -> int:
        """Iterations in one epoch (override)."""
        raise NotImplementedError

    def run_iteration(self, index: int) -> tuple[dict[str, torch.Tensor | float], int]:
        """One iteration; returns scalars to average over the epoch and their weight (override)."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called before each 0-based epoch (e.g. SNAS sets its temperature)."""

    def end_epoch(self, means: dict[str, float]) -> dict[str, float]:
        """Metrics of the finished epoch from the iteration means (override to evaluate)."""
        return dict(means)

    def snapshot(self, *, step: bool = False) -> dict[str, Any]:
        """What the method decides now: ``{"groups": {...}, "extra": {...}}`` (override)."""
        return {}

    def derive(self) -> Architecture:
        """The discrete architecture the search has found so far (override)."""
        raise NotImplementedError

    def method_state(self) -> dict[str, Any]:
        """The method's own state for exact resume (override)."""
        return {}

    # ------------------------------------------------------------------ comparison hooks
    #: The search space's name: methods with the same name share one random baseline
    #: (`nasviz.compare`); DARTS, PC-DARTS and SNAS all search the DARTS cell space.
    space_name = "base"

    def images_trained(self, weight: int) -> int:
        """Training images an epoch pushed through weights being trained.

        ``weight`` is what the epoch's means were weighted by: the images of the batches for a
        supernet (the default); a controller weights by children and overrides this.
        """
        return weight

    def images_per_iteration(self) -> int:
        """Training images one iteration pushes through weights being trained (override).

        A batch step for a supernet; a controller update trains whole child networks.
        """
        return self.config.batch_size

    def random_architectures(self, n: int, seed: int) -> list[Architecture]:
        """``n`` architectures drawn uniformly from this search's space (random baseline)."""
        raise NotImplementedError(f"{self.method} has no random sampler of its space")

    def subnet_gap(self) -> dict[str, float]:
        """Before retraining: ``supernet_acc`` and ``child_acc`` of the derived architecture.

        Weight-sharing methods: the child evaluated with the supernet's weights (no retraining);
        a method without a supernet gives its own score of the child (NASNet: the reward).
        """
        return {}

    def load_method_state(self, state: dict[str, Any]) -> None:
        """Restore `method_state` (override)."""

    # ------------------------------------------------------------------ the loop (template)
    def steps_per_epoch(self) -> int:
        """Iterations per epoch, capped by ``max_steps_per_epoch``."""
        n = self.iterations_per_epoch()
        cap = self.config.max_steps_per_epoch
        return min(n, cap) if cap else n

    def run(
        self,
        *,
        progress: bool = True,
        callbacks: list[Callable[[SearchHistory, dict], None]] | None = None,
    ) -> SearchResult:
        """Run (or continue) to ``config.epochs``, checkpointing after every epoch."""
        from tqdm.auto import tqdm

        for fn in callbacks or []:
            self.history.add_callback(fn)
        spe = self.steps_per_epoch()
        if self.epoch == 0 and not self.history.records:
            self._log(0, self.snapshot(), {}, notify=True, architecture=self.derive())
        bar = tqdm(
            total=self.config.epochs * spe, initial=self.epoch * spe,
            disable=not progress or not self.dist.is_main,
            desc=f"{self.method} search", unit=self.iteration_unit, dynamic_ncols=True,
        )  # fmt: skip
        try:
            while self.epoch < self.config.epochs:
                self._run_epoch(spe, bar)
        except (KeyboardInterrupt, DivergenceError):
            self._roll_back()
            raise
        except Exception as exc:
            if self.dist.enabled and distributed.is_comm_error(exc):
                raise distributed.RankLostError(
                    f"{distributed.lost_message(exc)} (last saved epoch: {self.epoch})"
                ) from exc
            raise
        finally:
            bar.close()
            for fn in callbacks or []:
                self.history.remove_callback(fn)
        return SearchResult(self.derive(), self.history, self.out, self.config)

    def _run_epoch(self, spe: int, bar: Any) -> None:
        epoch = self.epoch  # 0-based index of the epoch being run
        self.start_epoch(epoch)
        reset_peak_memory(self.device)
        sums: dict[str, torch.Tensor | float] = {}
        weight = 0
        t0 = time.perf_counter()
        for i in range(spe):
            values, w = self.run_iteration(i)
            for k, v in values.items():
                sums[k] = sums[k] + v * w if k in sums else v * w
            weight += w
            self.global_step += 1
            bar.update(1)
            if (i + 1) % 10 == 0 or i + 1 == spe:  # a host sync only when the bar shows figures
                means = self._means(sums, weight, epoch, i)
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(means.items())[:2]})
            if self.config.log_every and self.global_step % self.config.log_every == 0:
                self._log_step(epoch + (i + 1) / spe, values)
        seconds = time.perf_counter() - t0
        sums, weight = self._reduce_sums(sums, weight)
        means = self._means(sums, weight, epoch, spe - 1)
        t_eval = time.perf_counter()
        metrics = self.end_epoch(means)
        metrics.update(
            seconds=seconds,
            eval_seconds=time.perf_counter() - t_eval,
            images_per_second=self.images_trained(weight) / seconds if seconds > 0 else math.nan,
            peak_memory_mb=peak_memory_mb(self.device),
        )
        self.epoch += 1
        record = self._log(self.epoch, self.snapshot(), metrics, notify=False)
        self.save()  # before the callbacks: an error in a live plot never loses the epoch
        self.history.notify(record)

    def _reduce_sums(self, sums: dict[str, Any], weight: int) -> tuple[dict[str, Any], int]:
        """Epoch sums and weight over all ranks (one collective; unchanged with one process)."""
        if not self.dist.enabled:
            return sums, weight
        names = sorted(sums)  # the same order on every rank
        flat = torch.tensor(
            [float(sums[k]) for k in names] + [float(weight)], dtype=torch.float64,
            device=self.device if self.dist.backend == "nccl" else "cpu",
        )  # fmt: skip
        self.dist.all_reduce(flat)
        return dict(zip(names, flat[:-1].tolist(), strict=True)), int(flat[-1].item())

    def _means(self, sums: dict[str, Any], weight: int, epoch: int, index: int) -> dict[str, float]:
        """Epoch means so far (one host sync); a non-finite value stops the run."""
        means = {k: float(v) / weight for k, v in sums.items()}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise DivergenceError(
                f"{self.method} search diverged: {bad[0]} is {means[bad[0]]} in epoch "
                f"{epoch + 1}, by step {index + 1}; the last good checkpoint (epoch {self.epoch}) "
                "is kept: lower the learning rate, or resume to retry"
            )
        return means

    def _log(
        self, epoch: int, snap: dict[str, Any], metrics: dict[str, float], *, notify: bool,
        architecture: Architecture | None = None,
    ) -> dict:  # fmt: skip
        return self.history.log(
            epoch, self.global_step, metrics=metrics, groups=snap.get("groups"),
            architecture=architecture or self.derive(), extra=snap.get("extra"), notify=notify,
        )  # fmt: skip

    def _log_step(self, progress: float, values: dict[str, Any]) -> None:
        """A step record: the decisions only (no derived architecture: it is per epoch)."""
        snap = self.snapshot(step=True)
        metrics = {k: float(v) for k, v in values.items()} | {"epoch_progress": progress}
        self.history.log(
            self.epoch, self.global_step, kind="step", metrics=metrics,
            groups=snap.get("groups"), extra=snap.get("extra"),
        )  # fmt: skip

    def _roll_back(self) -> None:
        """After Ctrl-C or divergence: back to the last saved epoch (what --resume continues)."""
        ckpt = self.out / CHECKPOINT if self.out is not None else None
        if ckpt is not None and ckpt.is_file():
            callbacks = self.history._callbacks
            self.load_state_dict(checkpoint.load(ckpt, kind="search"))
            self.history._callbacks = callbacks

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as plain data (tensors and containers)."""
        return {
            "kind": "search",
            "format": checkpoint.FORMAT,
            "method": self.method,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "rng": checkpoint.rng_state(),
            "history": self.history.to_dict(),
            "method_state": self.method_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict` (also one written by nasviz 0.1)."""
        method_state = state.get("method_state", {})
        if state.get("format", 1) < 2:  # 0.1 kept the supernet's state at the top level
            method_state = {**state, **method_state}
        self.load_method_state(method_state)
        checkpoint.set_rng_state(state["rng"])
        callbacks = self.history._callbacks
        self.history = SearchHistory.from_dict(state["history"])
        self.history._callbacks = callbacks
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]

    def save(self) -> None:
        """Write checkpoint.pt, history.json and genotype.json (each atomically); rank 0 only."""
        if self.out is None or not self.dist.is_main:
            return
        checkpoint.save(self.state_dict(), self.out / CHECKPOINT)
        self.history.save(self.out / HISTORY)
        from nasviz import architectures

        architectures.save(self.derive(), self.out / ARCHITECTURE)
