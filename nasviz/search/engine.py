"""The loop every DARTS-family search shares: data, supernet, optimizers, epochs, history, checkpoints.

A method subclasses `Search` and overrides the few places where it really differs:

* `make_mixing()`: how an edge mixes its ops (DARTS softmax, PC-DARTS partial channels, SNAS);
* `train_step()`: one optimization step (bilevel for DARTS/PC-DARTS, single-level for SNAS);
* `derive()`: the discrete genotype by the paper's rule;
* `extra_series()`: named method-specific series for the history (temperature, cost ...).

Speed by design: batches come from persistent device-resident loaders (never a new iterator per
step); losses and accuracies are accumulated on the device and read once per epoch (and every
`log_every` steps when asked), so the step itself never waits for the host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasviz import checkpoint, loop
from nasviz.data import DeviceLoader, ImageDataset, load_dataset, search_split
from nasviz.genotypes import Genotype
from nasviz.history import SearchHistory
from nasviz.resources import peak_memory_mb, reset_peak_memory
from nasviz.search.config import SearchConfig
from nasviz.spaces.darts import Mixing, SearchNetwork, SpaceConfig, edge_list

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
GENOTYPE = "genotype.json"


@dataclass
class SearchResult:
    """What a finished (or interrupted) search leaves: the genotype, the history, where it is saved."""

    genotype: Genotype
    history: SearchHistory
    out: Path | None
    config: SearchConfig


class Search:
    """Base search: owns the loop, the evaluation, the history and the checkpoints."""

    method = "base"

    def __init__(
        self,
        config: SearchConfig,
        out: str | Path | None = None,
        *,
        train_data: ImageDataset | None = None,
        val_data: ImageDataset | None = None,
    ):
        self.config = config
        self.out = Path(out) if out is not None else None
        self.device = checkpoint.resolve_device(config.device)
        checkpoint.seed_everything(config.seed)
        self._build_data(train_data, val_data)
        self.model = self._build_model()
        self.w_optimizer = torch.optim.SGD(
            self.model.weight_parameters(),
            config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.lr_min
        )
        self.a_optimizer = torch.optim.Adam(
            self.model.arch_parameters(),
            config.arch_lr,
            betas=config.arch_betas,
            weight_decay=config.arch_weight_decay,
        )
        self.history = SearchHistory(
            method=config.method, config=config.to_dict(), ops=list(self.model.primitives),
            edges=edge_list(config.steps),
        )  # fmt: skip
        self.epoch = 0  # completed epochs
        self.global_step = 0

    # ------------------------------------------------------------------ construction
    def _build_data(self, train_data: ImageDataset | None, val_data: ImageDataset | None) -> None:
        cfg = self.config
        if train_data is None:
            full = load_dataset(cfg.dataset, "train", root=cfg.data_root, download=cfg.download)
            train_data, val_data = search_split(full, cfg.train_portion)
        elif val_data is None:
            train_data, val_data = search_split(train_data, cfg.train_portion)
        self.info = train_data.info
        cl = cfg.channels_last and self.device.type == "cuda"
        kw = dict(device=self.device, channels_last=cl)
        self.train_loader = DeviceLoader(
            train_data, cfg.batch_size, train=True, seed=cfg.seed, **kw
        )
        self.val_loader = DeviceLoader(
            val_data, cfg.batch_size, train=True, seed=cfg.seed + 1, **kw
        )
        self.eval_loader = DeviceLoader(val_data, 2 * cfg.batch_size, train=False, **kw)

    def space_config(self) -> SpaceConfig:
        """The supernet shape for this config and dataset."""
        cfg = self.config
        return SpaceConfig(
            C=cfg.C, layers=cfg.layers, steps=cfg.steps,
            num_classes=self.info.num_classes, in_channels=self.info.in_channels,
        )  # fmt: skip

    def make_mixing(self) -> Mixing:
        """The edge mixing strategy of this method."""
        return Mixing()

    def _build_model(self) -> SearchNetwork:
        gen = torch.Generator().manual_seed(self.config.seed)
        model = SearchNetwork(self.space_config(), self.make_mixing(), generator=gen).to(
            self.device
        )
        if self.config.channels_last and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    # ------------------------------------------------------------------ method hooks
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimization step on a training batch; returns (loss, logits), not synced."""
        raise NotImplementedError

    def derive(self) -> Genotype:
        """The discrete genotype of the current architecture parameters."""
        raise NotImplementedError

    def extra_series(self) -> dict[str, float]:
        """Method-specific values recorded with each epoch."""
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (e.g. SNAS sets its temperature)."""

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when enabled, otherwise a no-op."""
        return loop.autocast(self.device, self.config.amp)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task loss (cross-entropy)."""
        return F.cross_entropy(logits.float(), y)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SGD step on the network weights (gradient clipped) for a training batch."""
        self.w_optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.model(x)
        loss = self.loss(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.weight_parameters(), self.config.grad_clip)
        self.w_optimizer.step()
        return loss.detach(), logits.detach()

    def steps_per_epoch(self) -> int:
        """Weight steps per epoch (the whole train split, capped by max_steps_per_epoch)."""
        return loop.steps_per_epoch(self.train_loader, self.config.max_steps_per_epoch)

    def evaluate(
        self, loader: DeviceLoader | None = None, model: nn.Module | None = None
    ) -> tuple[float, float]:
        """(loss, accuracy) of the supernet (or ``model``) on the validation split, eval-mode BN."""
        return loop.evaluate(
            model or self.model, loader or self.eval_loader, self.device, self.config.amp
        )

    def snapshot(self) -> dict[str, Any]:
        """The architecture state to record: probabilities, normalized betas, genotype."""
        alphas = {c: p.cpu() for c, p in self.model.probabilities().items()}
        ew = self.model.edge_weights()
        betas = {c: b.cpu() for c, b in ew.items()} if ew is not None else None
        return {"alphas": alphas, "betas": betas, "genotype": self.derive()}

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        *,
        progress: bool = True,
        callbacks: list[Callable[[SearchHistory, dict], None]] | None = None,
    ) -> SearchResult:
        """Run (or continue) the search to `config.epochs`, checkpointing after every epoch."""
        from tqdm.auto import tqdm

        for fn in callbacks or []:
            self.history.add_callback(fn)
        cfg = self.config
        spe = self.steps_per_epoch()
        if self.epoch == 0 and not self.history.records:
            self.history.log(0, 0, **self.snapshot(), extra=self.extra_series() or None)
        bar = tqdm(
            total=cfg.epochs * spe, initial=self.epoch * spe, disable=not progress,
            desc=f"{self.method} search", unit="step", dynamic_ncols=True,
        )  # fmt: skip
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch(spe, bar)
        finally:
            bar.close()
            for fn in callbacks or []:
                self.history.remove_callback(fn)
        return SearchResult(self.derive(), self.history, self.out, cfg)

    def _run_epoch(self, spe: int, bar: Any) -> None:
        cfg = self.config
        epoch = self.epoch  # 0-based index of the epoch being run
        self.on_epoch_start(epoch)
        reset_peak_memory(self.device)
        self.model.train()

        def on_step(i: int, loss: torch.Tensor) -> None:
            self.global_step += 1
            if cfg.log_every and self.global_step % cfg.log_every == 0:
                self._log_step(epoch + (i + 1) / spe, loss)

        stats = loop.train_epoch(self.train_loader, self.train_step, spe, bar, self.device, on_step)
        t_eval = time.perf_counter()
        lr = self.w_optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        val_loss, val_acc = self.evaluate()
        self.epoch += 1
        metrics = {
            "train_loss": stats.loss,
            "train_acc": stats.acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr,
            "arch_lr": self.a_optimizer.param_groups[0]["lr"],
            "seconds": stats.seconds,
            "eval_seconds": time.perf_counter() - t_eval,
            "images_per_second": stats.images_per_second,
            "peak_memory_mb": peak_memory_mb(self.device),
        }
        record = self.history.log(
            self.epoch, self.global_step, metrics=metrics, **self.snapshot(),
            extra=self.extra_series() or None, notify=False,
        )  # fmt: skip
        bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
        self.save()  # before the callbacks: an error in a live plot never loses the epoch
        self.history.notify(record)

    def _log_step(self, progress: float, loss: torch.Tensor) -> None:
        snap = self.snapshot()
        snap.pop("genotype")
        self.history.log(
            self.epoch, self.global_step, kind="step",
            metrics={"train_loss": loss.item(), "epoch_progress": progress}, **snap,
            extra=self.extra_series() or None,
        )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, arch params, optimizers, RNG, data order."""
        return {
            "kind": "search",
            "method": self.method,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loaders": {
                "train": self.train_loader.state_dict(),
                "val": self.val_loader.state_dict(),
            },
            "rng": checkpoint.rng_state(),
            "history": self.history.to_dict(),
            "method_state": self.method_state(),
        }

    def method_state(self) -> dict[str, Any]:
        """Extra state a method needs on resume (override)."""
        return {}

    def load_method_state(self, state: dict[str, Any]) -> None:
        """Restore `method_state` (override)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict`."""
        self.model.load_state_dict(state["model"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loaders"]["train"])
        self.val_loader.load_state_dict(state["loaders"]["val"])
        checkpoint.set_rng_state(state["rng"])
        callbacks = self.history._callbacks
        self.history = SearchHistory.from_dict(state["history"])
        self.history._callbacks = callbacks
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.load_method_state(state.get("method_state", {}))

    def save(self) -> None:
        """Write checkpoint.pt, history.json and genotype.json into the output directory."""
        if self.out is None:
            return
        checkpoint.save(self.state_dict(), self.out / CHECKPOINT)
        self.history.save(self.out / HISTORY)
        self.derive().save(self.out / GENOTYPE)
