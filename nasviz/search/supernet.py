"""The DARTS family (DARTS, PC-DARTS, SNAS) on the shared base: one supernet, two optimizers, a split.

`SupernetSearch` owns what the three methods share: the DARTS cell supernet (`SearchNetwork`
with the method's mixing strategy), SGD with cosine annealing over the weights, Adam over the
architecture parameters, the train/validation split of the training data (the weights train on
the first ``train_portion``, the architecture and every validation figure use the rest: the test
split is never touched during a search), device-resident loaders, and the history groups
``alpha/<cell>`` (softmax(alpha) per edge and op) and ``beta/<cell>`` (PC-DARTS edge weights).

A method subclasses it and overrides `make_mixing()`, `train_step()` and `derive()`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasviz import loop
from nasviz.bn_calibration import calibration_loader, evaluate_recalibrated
from nasviz.data import DeviceLoader, ImageDataset, load_dataset, search_split
from nasviz.genotypes import Genotype
from nasviz.history import darts_groups
from nasviz.search import fast
from nasviz.search.base import Search
from nasviz.search.config import ConfigError, SearchConfig, param
from nasviz.spaces.darts import Mixing, SearchNetwork, SpaceConfig


@dataclass
class SupernetConfig(SearchConfig):
    """Fields every DARTS-family search has (defaults: the DARTS paper)."""

    train_portion: float = param(
        0.5, min=0.05, max=0.95, help="share of the training data that trains the weights"
    )
    # supernet
    C: int = param(16, min=1, max=1024, help="initial channels")
    layers: int = param(8, min=3, max=64, help="cells (reductions at 1/3 and 2/3)")
    steps: int = param(4, min=1, max=8, help="intermediate nodes per cell")
    # weights: SGD with cosine annealing
    lr: float = param(0.025, min=0.0, min_open=True, max=10.0)
    lr_min: float = param(0.001, min=0.0, max=10.0)
    momentum: float = param(0.9, min=0.0, max=1.0, max_open=True)
    weight_decay: float = param(3e-4, min=0.0, max=1.0)
    grad_clip: float = param(5.0, min=0.0, min_open=True)
    # architecture: Adam
    arch_lr: float = param(3e-4, min=0.0, min_open=True, max=10.0)
    arch_betas: tuple[float, float] = param((0.5, 0.999), min=0.0, max=1.0, max_open=True)
    arch_weight_decay: float = param(1e-3, min=0.0, max=1.0)
    warmup_epochs: int = param(0, min=0, help="epochs with the architecture frozen")
    channels_last: bool = param(True, help="channels_last memory format on CUDA")
    multi_tensor: bool = param(
        True, help="fused / foreach optimizer steps and clipping over all tensors at once"
    )
    reference_forward: bool = param(
        False,
        help="run the cells' paper-reading forward (every edge a MixedOp) instead of the fast "
        "one; both compute the same function to float tolerance (tests/test_fast_path.py)",
    )

    def check(self) -> None:
        super().check()
        if self.lr_min > self.lr:
            raise ConfigError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")

    def warnings(self) -> list[str]:
        if self.warmup_epochs >= self.epochs:
            return [
                f"warmup_epochs={self.warmup_epochs} covers all {self.epochs} epochs: the "
                "architecture parameters will not be trained (raise --epochs or lower the warm-up)"
            ]
        return []


class SupernetSearch(Search):
    """Shared DARTS-family search: supernet, SGD + Adam, split, loaders, alpha/beta groups."""

    config: SupernetConfig

    def setup(
        self, train_data: ImageDataset | None = None, val_data: ImageDataset | None = None
    ) -> None:
        cfg = self.config
        self._build_data(train_data, val_data)
        self.model = self._build_model()
        if cfg.multi_tensor:  # one fused/foreach update over all tensors (nasviz.search.fast)
            self.w_optimizer = fast.weight_optimizer(
                self.model.weight_parameters(), cfg.lr, cfg.momentum, cfg.weight_decay
            )
            self.a_optimizer = fast.arch_optimizer(
                self.model.arch_parameters(), cfg.arch_lr, cfg.arch_betas, cfg.arch_weight_decay
            )
        else:
            self.w_optimizer = torch.optim.SGD(
                self.model.weight_parameters(), cfg.lr, momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
            )  # fmt: skip
            self.a_optimizer = torch.optim.Adam(
                self.model.arch_parameters(), cfg.arch_lr, betas=cfg.arch_betas,
                weight_decay=cfg.arch_weight_decay,
            )  # fmt: skip
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=cfg.epochs, eta_min=cfg.lr_min
        )
        specs, _ = self._groups()
        for name, spec in specs.items():
            self.history.declare_group(name, **spec)

    def _data_parallel(self) -> None:
        """Under torchrun: shard the batches, average every gradient over ranks (nasviz.distributed).

        The weights' gradients are averaged as each backward accumulates them (before clipping),
        whichever step the method runs; the architecture's just before Adam steps, which also
        covers gradients set by hand (second-order DARTS). A no-op in a single process.
        """
        if not self.dist.enabled:
            return
        self.train_loader = self.dist.shard(self.train_loader)
        self.val_loader = self.dist.shard(self.val_loader)
        self._grad_hooks = self.dist.average_gradients_on_backward(
            self.model.weight_parameters(), self.w_optimizer
        )
        self._arch_hook = self.dist.average_gradients_before_step(self.a_optimizer)

    # ------------------------------------------------------------------ construction
    def _build_data(self, train_data: ImageDataset | None, val_data: ImageDataset | None) -> None:
        """Split the training data: weights on the first part, architecture and validation on the rest."""
        cfg = self.config
        if train_data is None:
            train_data = load_dataset(
                cfg.dataset, "train", root=cfg.data_root, download=cfg.download
            )
        if val_data is None:
            train_data, val_data = search_split(train_data, cfg.train_portion)
        self.info = train_data.info
        kw = dict(device=self.device, channels_last=self._channels_last())
        self.train_loader = DeviceLoader(
            train_data, cfg.batch_size, train=True, seed=cfg.seed, **kw
        )
        self.val_loader = DeviceLoader(
            val_data, cfg.batch_size, train=True, seed=cfg.seed + 1, **kw
        )
        self.eval_loader = DeviceLoader(val_data, 2 * cfg.batch_size, train=False, **kw)
        # BN statistics recomputed before each evaluation (`evaluate`)
        self.calibration_loader = calibration_loader(train_data, 2 * cfg.batch_size, self.device)

    def _channels_last(self) -> bool:
        return self.config.channels_last and self.device.type == "cuda"

    def space_config(self) -> SpaceConfig:
        """The supernet shape for this config and dataset."""
        cfg = self.config
        return SpaceConfig(
            C=cfg.C, layers=cfg.layers, steps=cfg.steps,
            num_classes=self.info.num_classes, in_channels=self.info.in_channels,
        )  # fmt: skip

    def make_mixing(self) -> Mixing:
        """The edge mixing strategy of this method (override)."""
        return Mixing()

    def _build_model(self) -> SearchNetwork:
        gen = torch.Generator().manual_seed(self.config.seed)
        model = SearchNetwork(
            self.space_config(), self.make_mixing(), generator=gen,
            reference=self.config.reference_forward,
        )  # fmt: skip
        model = model.to(self.device)
        if self._channels_last():
            model = model.to(memory_format=torch.channels_last)
        return model

    # ------------------------------------------------------------------ method hooks
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimization step on a training batch; returns (loss, logits), not synced."""
        raise NotImplementedError

    def derive(self) -> Genotype:
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop's hooks
    def iterations_per_epoch(self) -> int:
        return len(self.train_loader)

    def start_epoch(self, epoch: int) -> None:
        self.model.train()

    def run_iteration(self, index: int) -> tuple[dict[str, torch.Tensor], int]:
        x, y = self.train_loader.next()
        loss, logits = self.train_step(x, y)
        acc = (logits.argmax(1) == y).float().mean()
        return {"train_loss": loss, "train_acc": acc}, len(y)

    def end_epoch(self, means: dict[str, float]) -> dict[str, float]:
        lr = self.w_optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.dist.broadcast_buffers(self.model)  # rank 0's BN statistics on every rank
        val_loss, val_acc = self.evaluate()
        arch_lr = self.a_optimizer.param_groups[0]["lr"]
        return {**means, "val_loss": val_loss, "val_acc": val_acc, "lr": lr, "arch_lr": arch_lr}

    def snapshot(self, *, step: bool = False) -> dict[str, Any]:
        _, values = self._groups()
        extra = self.extra_series()
        return {"groups": values, "extra": extra or None}

    def _groups(self) -> tuple[dict[str, dict], dict[str, Any]]:
        probs = {c: p.cpu() for c, p in self.model.probabilities().items()}
        ew = self.model.edge_weights()
        ew = {c: b.cpu() for c, b in ew.items()} if ew is not None else None
        return darts_groups(probs, ew, list(self.model.primitives), self.config.steps)

    def extra_series(self) -> dict[str, float]:
        """Method-specific scalars recorded with each epoch (override)."""
        return {}

    # ------------------------------------------------------------------ comparison hooks
    space_name = "darts-cell"

    def random_architectures(self, n: int, seed: int) -> list[Genotype]:
        """``n`` DARTS cells drawn uniformly (`nasviz.genotypes.random_genotype`)."""
        from nasviz.genotypes import random_genotypes

        return random_genotypes(n, seed, self.config.steps)

    def subnet_gap(self) -> dict[str, float]:
        """Supernet and derived child (one-hot op weights, inherited weights) validation accuracy."""
        from nasviz.search.child import child_accuracy

        gap = child_accuracy(self)
        return {"supernet_acc": gap["supernet_acc"], "child_acc": gap["child_acc"]}

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
        # Only the weights' gradients: the architecture step sets its own (and zeroes them first),
        # so the alphas' and betas' gradients of this backward (a batched product per node sum,
        # as large as the forward's) would be computed for nothing.
        loss.backward(inputs=self._weight_tensors())
        self.clip_and_step_weights()
        return loss.detach(), logits.detach()

    def _weight_tensors(self) -> list[torch.Tensor]:
        """The tensors the weight optimizer updates (= model.weight_parameters(), without
        walking the module tree on every step)."""
        return [p for group in self.w_optimizer.param_groups for p in group["params"]]

    def clip_and_step_weights(self) -> None:
        """Clip the weight gradients' total norm to ``grad_clip``, then the weight optimizer's
        step (multi-tensor when enabled: one fused update, `nasviz.search.fast.clip_and_step`)."""
        params = self._weight_tensors()
        if self.config.multi_tensor:
            fast.clip_and_step(self.w_optimizer, params, self.config.grad_clip)
        else:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            self.w_optimizer.step()

    def evaluate(
        self, loader: DeviceLoader | None = None, model: nn.Module | None = None
    ) -> tuple[float, float]:
        """(loss, accuracy) of the supernet (or ``model``) on the validation split, eval-mode BN.

        BN statistics are first recomputed from training images (`recalibrated_bn`; restored
        afterwards): a short search's running averages lag the weights and would put the
        measured accuracy at chance.
        """
        return evaluate_recalibrated(
            model or self.model, self.calibration_loader, loader or self.eval_loader,
            self.device, self.config.amp,
        )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def method_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loaders": {
                "train": self.train_loader.state_dict(),
                "val": self.val_loader.state_dict(),
            },
        }

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loaders"]["train"])
        self.val_loader.load_state_dict(state["loaders"]["val"])


#: Widgets and CLI flags every DARTS-family method offers (the registry entries add their own).
def supernet_presets_common() -> dict[str, Any]:
    """The quick-preset supernet on digits (8x8, 1437 train images) on 2 CPU cores."""
    return dict(dataset="digits", C=8, layers=5, batch_size=64, epochs=10)
