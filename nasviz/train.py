"""Retraining a genotype from scratch: the DARTS evaluation protocol, on CPU or GPU, resumable.

The protocol (DARTS, PC-DARTS; PAPERS.md): the `NetworkCIFAR` of a genotype (C=36, 20 cells,
auxiliary head), SGD with momentum 0.9 and weight decay 3e-4, cosine learning rate from 0.025 to 0
over 600 epochs, batch 96, cutout, drop path ramped linearly from 0 to 0.2 (PC-DARTS: 0.3), an
auxiliary loss weighted 0.4, gradients clipped at norm 5. `retrain_preset("paper")` is exactly
that; `quick` runs the same code on the embedded 8x8 digits in about a minute and a half on 2 CPU
cores; `smoke` is `quick` cut to a few steps, for notebooks and CI.

Speed by design, as in `nasviz.search.engine`: train and test splits live on the device
(`DeviceLoader`, augmentation on whole batches there), losses and accuracies are accumulated on
the device and read only when the progress bar shows them (every 10 steps) and once per epoch;
bf16 autocast and channels_last on CUDA.

Exact resume: every epoch writes a checkpoint with the weights, the optimizer and scheduler, the
loader's generator and position, and the global RNG (drop path draws its masks from it). On CPU a
run interrupted after any epoch and resumed ends with bitwise the same weights as a straight run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasviz import allocator, architectures, checkpoint, loop, threads
from nasviz.architectures import Architecture
from nasviz.config import Config, ConfigError, check_dataset_and_device, param, suggest
from nasviz.data import DeviceLoader, ImageDataset, load_dataset, search_split
from nasviz.history import SearchHistory
from nasviz.io import atomic_write_text
from nasviz.resources import count_parameters, peak_memory_mb, reset_peak_memory

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
HISTORY = "history.json"
GENOTYPE = "genotype.json"
CONFIG = "config.json"

PRESETS: tuple[str, ...] = ("paper", "quick", "smoke")

#: Config fields allowed to differ between a checkpoint and the run that resumes it (they change
#: where the run happens, not what it computes).
RESUME_MAY_DIFFER: tuple[str, ...] = ("device", "data_root", "download")


@dataclass
class RetrainConfig(Config):
    """Every knob of retraining an architecture (defaults: the DARTS paper protocol on CIFAR-10)."""

    label: ClassVar[str] = "retrain"

    dataset: str = param("cifar10", help="digits (embedded) or cifar10")
    data_root: str = param("data")
    download: bool = param(False)
    val_portion: float = param(
        0.0, min=0.0, max=0.5,
        help="share of the training data held out as a validation split, evaluated every "
        "epoch (0: train on all of it, as the papers' final retraining does)",
    )  # fmt: skip
    # network: width and depth knobs of the architecture kind (None: its paper default)
    C: int | None = param(36, min=1, max=4096, help="width (DARTS: initial channels)")
    layers: int | None = param(20, min=1, max=512, help="depth (DARTS: cells, >= 3)")
    auxiliary: bool = param(True)
    auxiliary_weight: float = param(0.4, min=0.0)
    # schedule: SGD, cosine annealing from lr to lr_min over `epochs`
    epochs: int = param(600, min=1, max=100_000)
    batch_size: int = param(96, min=1, max=65_536)
    lr: float = param(0.025, min=0.0, min_open=True, max=10.0)
    lr_min: float = param(0.0, min=0.0)
    momentum: float = param(0.9, min=0.0, max=1.0, max_open=True)
    weight_decay: float = param(3e-4, min=0.0, max=1.0)
    grad_clip: float = param(5.0, min=0.0, min_open=True)
    # regularization
    cutout: bool = param(True)
    drop_path_prob: float = param(
        0.2, min=0.0, max=1.0, max_open=True,
        help="final value; epoch e (0-based) uses drop_path_prob * e / epochs",
    )  # fmt: skip
    max_steps_per_epoch: int | None = param(None, min=1, help="cap for smoke runs")
    # the ImageNet (EfficientNet-style) recipe of Cream's retraining, with timm's pieces
    optimizer: str = param("sgd", choices=("sgd", "rmsproptf"), help="rmsproptf: timm RMSpropTF")
    opt_eps: float = param(1e-2, min=0.0, min_open=True, help="RMSpropTF epsilon")
    ema_decay: float = param(
        0.0, min=0.0, max=1.0, max_open=True,
        help="EMA of the weights (timm ModelEmaV3), evaluated instead of the weights when > 0",
    )  # fmt: skip
    randaugment: str = param("", help="timm RandAugment config, e.g. rand-m9-mstd0.5 ('': off)")
    label_smoothing: float = param(0.0, min=0.0, max=1.0, max_open=True)
    # bookkeeping
    seed: int = param(0, min=0, max=2**63 - 1)
    device: str = param("auto")
    amp: bool = param(True, help="bf16 autocast on CUDA")
    channels_last: bool = param(True, help="on CUDA")
    threads: int | None = param(None, min=1, max=1024, help="CPU threads (None: nasviz.threads)")

    def check(self) -> None:
        check_dataset_and_device(self.dataset, self.device)
        if self.lr_min > self.lr:
            raise ConfigError(f"lr_min must be in [0, lr={self.lr}], got {self.lr_min}")


# Digits (8x8, 1 channel, 1437 train / 360 test images) on 2 CPU cores: a narrower, shallower
# network and a larger learning rate, same code. 22 steps per epoch at ~0.15 s each.
_QUICK: dict[str, Any] = dict(
    dataset="digits", C=16, layers=8, epochs=20, batch_size=64, lr=0.05, drop_path_prob=0.1
)
_SMOKE: dict[str, Any] = dict(epochs=2, max_steps_per_epoch=3)


# NASNet cells: ``layers`` is N normal cells per stage (3N + 2 cells in all). Paper: the NASNet-A
# CIFAR-10 network (N=6, 32 filters); quick/smoke: N=2, the 8 cells of the quick DARTS network.
_NASNET: dict[str, dict[str, Any]] = {
    "paper": dict(C=32, layers=6),
    "quick": dict(layers=2),
    "smoke": dict(layers=2),
}

#: Fields added after the first checkpoints were written, with the value those runs used.
_ADDED_FIELDS: dict[str, Any] = dict(
    optimizer="sgd", opt_eps=1e-2, ema_decay=0.0, randaugment="", label_smoothing=0.0
)

# Cream of the Crop's retraining (official experiments/configs/retrain/retrain.yaml; the paper's
# 500 epochs): a path network has no auxiliary head, no drop path and a depth of its own; timm's
# RMSpropTF (eps 1e-2, momentum 0.9) at lr 1e-2 per 128 images, EMA 0.9998, RandAugment
# rand-m9-mstd0.5, label smoothing 0.1, dropout 0.2 before the classifier (CreamPath default).
# The official schedule's 3-epoch warm-up and step decay are replaced by the cosine schedule.
_CREAM: dict[str, dict[str, Any]] = {
    "paper": dict(
        dataset="imagenet-folder", C=None, layers=None, auxiliary=False, cutout=False,
        drop_path_prob=0.0, epochs=500, batch_size=128, optimizer="rmsproptf", opt_eps=1e-2,
        lr=1e-2, lr_min=1e-5, momentum=0.9, weight_decay=1e-5, ema_decay=0.9998,
        randaugment="rand-m9-mstd0.5", label_smoothing=0.1,
    ),
    # digits: the search's half-width space (C = 8 stem channels), SGD as the quick DARTS one
    "quick": dict(
        dataset="digits", C=8, layers=None, auxiliary=False, cutout=False, drop_path_prob=0.0,
        epochs=10, batch_size=64, lr=0.05, label_smoothing=0.1,
    ),
}  # fmt: skip
_CREAM["smoke"] = {**_CREAM["quick"], **_SMOKE}


def cream_retrain_preset(name: str = "quick", **overrides: Any) -> RetrainConfig:
    """Cream's ``paper`` retraining recipe (timm RMSpropTF, EMA, RandAugment), or quick/smoke."""
    if name not in PRESETS:
        raise ConfigError(
            f"unknown retrain preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}"
        )
    return RetrainConfig.create(**_CREAM[name]).replace(**overrides)


def retrain_preset(name: str = "quick", kind: str | None = None, **overrides: Any) -> RetrainConfig:
    """The `paper`, `quick` or `smoke` retraining configuration, with optional overrides.

    `paper` is the DARTS protocol (PAPERS.md). PC-DARTS retrains the same way but with drop path
    0.3: ``retrain_preset("paper", drop_path_prob=0.3)``. None-valued overrides are ignored.
    ``kind="cream"`` (a Cream path) gives `cream_retrain_preset`.
    """
    if kind == "cream":
        return cream_retrain_preset(name, **overrides)
    if name not in PRESETS:
        raise ConfigError(
            f"unknown retrain preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}"
        )
    values: dict[str, Any] = {}
    if name != "paper":  # the dataclass defaults are the paper protocol
        values.update(_QUICK)
        if name == "smoke":
            values.update(_SMOKE)
    if kind == "nasnet":  # a NASNet cell's `layers` is N cells per stage, not the total
        values.update(_NASNET[name])
    return RetrainConfig.create(**values).replace(**overrides)


@dataclass
class RetrainResult:
    """A finished retraining: final test figures, per-epoch metrics, where it is saved."""

    genotype: Architecture
    config: RetrainConfig
    metrics: list[dict[str, Any]]
    test_acc: float
    test_loss: float
    params: int  # without the auxiliary head, as the papers count them
    out: Path | None
    test_images: int = 0  # how many test images test_acc counts (its binomial noise)


Callback = Callable[[dict[str, Any]], Any]


class Retrainer:
    """Trains the evaluation network of a genotype: the loop, the evaluation, the checkpoints."""

    def __init__(
        self,
        genotype: Architecture | str | Path,
        config: RetrainConfig,
        out: str | Path | None = None,
        *,
        train_data: ImageDataset | None = None,
        test_data: ImageDataset | None = None,
        val_data: ImageDataset | None = None,
    ):
        self.genotype = architectures.resolve(genotype)  # any kind: DARTS, NASNet, Cream
        self.genotype.validate()  # an architecture built in code has not been validated yet
        config.validate()  # fields may have been changed after construction
        self.config = config
        self.out = Path(out) if out is not None else None
        self.device = checkpoint.resolve_device(config.device)
        self._cuda = self.device.type == "cuda"
        self.threads = threads.apply(self.device, config.threads)
        allocator.apply(self.device)  # glibc keeps the heap between steps (CPU, Linux)
        checkpoint.seed_everything(config.seed)
        self._build_data(train_data, test_data, val_data)
        self.model = self._build_model()
        self.optimizer = make_optimizer(self.model, config)
        self.ema = make_ema(self.model, config.ema_decay)
        self.augment = make_randaugment(config.randaugment, self.info)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=config.epochs, eta_min=config.lr_min
        )
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.metrics: list[dict[str, Any]] = []
        # The same history format as a search, so one plotting path draws both.
        self.history = SearchHistory(method="retrain", config=config.to_dict())
        # True once this object has written or loaded out/checkpoint.pt: only then may it write it.
        self._owns_out = False

    # ------------------------------------------------------------------ construction
    def _build_data(
        self,
        train_data: ImageDataset | None,
        test_data: ImageDataset | None,
        val_data: ImageDataset | None = None,
    ) -> None:
        """Train (minus a held-out validation share if asked), validation, and test loaders."""
        cfg = self.config
        if train_data is None:
            train_data = load_dataset(
                cfg.dataset, "train", root=cfg.data_root, download=cfg.download
            )
        if test_data is None:
            test_data = load_dataset(cfg.dataset, "test", root=cfg.data_root, download=cfg.download)
        for split, ds in (("train", train_data), ("test", test_data)):
            if ds.info.name != cfg.dataset:
                raise ValueError(
                    f"{split}_data is {ds.info.name!r} but config.dataset is {cfg.dataset!r}; "
                    "set config.dataset to match the data"
                )
        if val_data is None and cfg.val_portion > 0:
            train_data, val_data = search_split(train_data, 1.0 - cfg.val_portion)
        self.info = train_data.info
        kw = dict(device=self.device, channels_last=cfg.channels_last and self._cuda)
        self.train_loader = DeviceLoader(
            train_data, cfg.batch_size, train=True, cutout=cfg.cutout, seed=cfg.seed, **kw
        )
        self.test_loader = DeviceLoader(test_data, 2 * cfg.batch_size, train=False, **kw)
        self.val_loader = (
            DeviceLoader(val_data, 2 * cfg.batch_size, train=False, **kw) if val_data else None
        )

    def _build_model(self) -> nn.Module:
        cfg, info = self.config, self.info
        model = self.genotype.build_network(
            num_classes=info.num_classes, in_channels=info.in_channels,
            image_size=info.image_size, C=cfg.C, layers=cfg.layers, auxiliary=cfg.auxiliary,
        )  # fmt: skip
        model = model.to(self.device)
        if cfg.channels_last and self._cuda:
            model = model.to(memory_format=torch.channels_last)
        return model

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when enabled, otherwise a no-op."""
        return loop.autocast(self.device, self.config.amp)

    def steps_per_epoch(self) -> int:
        """Steps per epoch (the whole train split, capped by max_steps_per_epoch)."""
        return loop.steps_per_epoch(self.train_loader, self.config.max_steps_per_epoch)

    def drop_path_prob(self, epoch: int) -> float:
        """Drop path probability of 0-based ``epoch``: linear from 0 (as DARTS' train.py)."""
        return self.config.drop_path_prob * epoch / self.config.epochs

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns (loss, logits), detached and not synced."""
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        if self.augment is not None:
            x = self.augment(x)
        with self.autocast():
            logits, logits_aux = self.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        total = loss
        if logits_aux is not None:
            total = loss + cfg.auxiliary_weight * F.cross_entropy(logits_aux.float(), y)
        total.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach(), logits.detach()  # the main head's loss, as DARTS reports it

    def evaluate(self, split: str = "test") -> tuple[float, float]:
        """(loss, accuracy) on the ``test`` or held-out ``val`` split, eval-mode BN, no drop path."""
        loader = self.test_loader if split == "test" else self.val_loader
        if loader is None:
            raise ValueError("no validation split: set val_portion > 0 or pass val_data")
        model = self.ema.module if self.ema is not None else self.model  # EMA: what is reported
        return loop.evaluate(model, loader, self.device, self.config.amp)

    # ------------------------------------------------------------------ the loop
    def run(
        self, progress: bool = True, callbacks: Callback | Iterable[Callback] | None = None
    ) -> RetrainResult:
        """Train (or continue) to `config.epochs`; after each epoch save, then call the callbacks.

        Each callback gets the epoch's metrics dict. Saving comes first, so an exception raised in
        a callback leaves a checkpoint of the epoch just finished. After an interruption continue
        with ``retrain(..., resume=True)`` (or a new Retrainer and `resume`): calling `run` again
        on an object stopped mid-epoch would go on from that partial epoch, not exactly.
        """
        from tqdm.auto import tqdm

        if callable(callbacks):
            callbacks = [callbacks]
        callbacks = list(callbacks or [])
        self._claim_out()
        cfg = self.config
        spe = self.steps_per_epoch()
        bar = tqdm(
            total=cfg.epochs * spe,
            initial=self.epoch * spe,
            disable=not progress,
            desc="retrain",
            unit="step",
            dynamic_ncols=True,
        )
        try:
            while self.epoch < cfg.epochs:
                metrics = self._run_epoch(spe, bar)
                if self.epoch == cfg.epochs:  # the test split is read once, for the final figure
                    metrics["test_loss"], metrics["test_acc"] = self.evaluate("test")
                self.history.log(self.epoch, self.global_step, metrics=metrics)
                self.save()
                for fn in callbacks:
                    fn(metrics)
        except (KeyboardInterrupt, loop.DivergenceError):
            if self.out is not None and (self.out / CHECKPOINT).is_file():
                self.resume()  # back to the last saved epoch: what --resume continues
            raise
        finally:
            bar.close()
        return self.result()

    def _run_epoch(self, spe: int, bar: Any) -> dict[str, Any]:
        epoch = self.epoch  # 0-based index of the epoch being run
        self.model.drop_path_prob = self.drop_path_prob(epoch)
        reset_peak_memory(self.device)
        self.model.train()
        stats = loop.train_epoch(
            self.train_loader, self.train_step, spe, bar, self.device, label=f"epoch {epoch + 1}"
        )
        self.global_step += spe
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.epoch += 1
        metrics: dict[str, Any] = {
            "epoch": self.epoch,  # 1-based: epochs completed
            "train_loss": stats.loss,
            "train_acc": stats.acc,
        }
        if self.val_loader is not None:
            metrics["val_loss"], metrics["val_acc"] = self.evaluate("val")
        metrics |= {
            "lr": lr,  # the rate this epoch trained with
            "drop_path_prob": self.model.drop_path_prob,
            "seconds": stats.seconds,  # training only
            "images_per_second": stats.images_per_second,
            "peak_memory_mb": peak_memory_mb(self.device),
        }
        self.metrics.append(metrics)
        bar.set_postfix(loss=f"{stats.loss:.3f}", acc=f"{stats.acc:.3f}")
        return metrics

    def result(self) -> RetrainResult:
        """The figures so far (test figures of the last completed epoch; NaN before any)."""
        last = self.metrics[-1] if self.metrics else {}
        return RetrainResult(
            genotype=self.genotype,
            config=self.config,
            metrics=list(self.metrics),
            test_acc=last.get("test_acc", float("nan")),
            test_loss=last.get("test_loss", float("nan")),
            params=count_parameters(self.model),
            out=self.out,
            test_images=len(self.test_loader.data),
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, scheduler, data order, RNG."""
        return {
            "kind": "retrain",
            "config": self.config.to_dict(),
            "genotype": self.genotype.to_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "metrics": [dict(m) for m in self.metrics],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loaders": {"train": self.train_loader.state_dict()},
            "rng": checkpoint.rng_state(),
            **({"ema": self.ema.module.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict`; its config and genotype must match this run's."""
        self._check_compatible(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loaders"]["train"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])
        checkpoint.set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.metrics = [dict(m) for m in state["metrics"]]
        self.history = SearchHistory(method="retrain", config=self.config.to_dict())
        for m in self.metrics:
            self.history.log(m["epoch"], 0, metrics=m, notify=False)
        if self.epoch > 0:
            self.model.drop_path_prob = self.drop_path_prob(self.epoch - 1)

    def _check_compatible(self, state: dict[str, Any]) -> None:
        saved = {**_ADDED_FIELDS, **state.get("config", {})}  # older runs lack the new fields
        checkpoint.check_resume_config(saved, self.config.to_dict(), RESUME_MAY_DIFFER)
        if architectures.from_dict(state["genotype"]) != self.genotype:
            raise ValueError(
                "cannot resume: the genotype differs from the checkpoint's; "
                "resume with the same genotype or start a new run in another directory"
            )

    def resume(self) -> None:
        """Load ``out/checkpoint.pt`` (clear errors when missing, corrupt or incompatible)."""
        if self.out is None:
            raise ValueError("cannot resume without an output directory (out=None)")
        state = checkpoint.load(self.out / CHECKPOINT, kind="retrain", map_location="cpu")
        self.load_state_dict(state)
        self._owns_out = True

    def _claim_out(self) -> None:
        """Refuse to overwrite another run's checkpoint; write config.json and genotype.json."""
        if self.out is None or self._owns_out:
            return
        ckpt = self.out / CHECKPOINT
        if ckpt.exists():
            raise FileExistsError(
                f"{ckpt} already exists: pass --resume (resume=True) to continue that run, "
                "or choose another output directory; nothing was overwritten"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        _write_json(self.config.to_dict(), self.out / CONFIG)
        architectures.save(self.genotype, self.out / GENOTYPE)
        self._owns_out = True

    def save(self) -> None:
        """Write checkpoint.pt, metrics.json, genotype.json and config.json into ``out``."""
        if self.out is None:
            return
        checkpoint.save(self.state_dict(), self.out / CHECKPOINT)
        _write_json(self.metrics, self.out / METRICS)
        self.history.save(self.out / HISTORY)
        _write_json(self.config.to_dict(), self.out / CONFIG)
        architectures.save(self.genotype, self.out / GENOTYPE)
        self._owns_out = True


def make_optimizer(model: nn.Module, config: RetrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (DARTS protocol) or timm's RMSpropTF (Cream / EfficientNet recipe)."""
    if config.optimizer == "rmsproptf":
        from timm.optim import RMSpropTF

        return RMSpropTF(
            model.parameters(), lr=config.lr, alpha=0.9, eps=config.opt_eps,
            momentum=config.momentum, weight_decay=config.weight_decay,
        )  # fmt: skip
    return torch.optim.SGD(
        model.parameters(), config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_ema(model: nn.Module, decay: float) -> nn.Module | None:
    """timm's ModelEmaV3 of ``model`` (None when ``decay`` is 0)."""
    if not decay:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay)


class RandAugmentBatch:
    """timm's RandAugment applied per image to a normalized device batch [B, C, H, W].

    The device loader hands out normalized floats; each image is mapped back to its uint8
    pixels (exactly: normalization is affine), augmented as a PIL image by timm, and
    normalized again.
    """

    def __init__(self, config_str: str, info: Any) -> None:
        from timm.data.auto_augment import rand_augment_transform

        mean = tuple(round(255 * m) for m in info.mean)
        self.transform = rand_augment_transform(config_str, {"img_mean": mean})
        self.mean = torch.tensor(info.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(info.std).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        mean, std = self.mean.to(x.device), self.std.to(x.device)
        pixels = ((x.float() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).cpu()
        out = []
        for img in pixels:  # [C, H, W] uint8
            arr = img.permute(1, 2, 0).squeeze(-1).numpy()
            aug = self.transform(Image.fromarray(arr).convert("RGB"))
            t = torch.from_numpy(np.asarray(aug).copy()).permute(2, 0, 1)[: img.shape[0]]
            out.append(t)
        batch = torch.stack(out).to(x.device).float() / 255
        return ((batch - mean) / std).to(x.dtype).contiguous(memory_format=_format(x))


def _format(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        else torch.contiguous_format
    )  # fmt: skip


def make_randaugment(config_str: str, info: Any) -> RandAugmentBatch | None:
    """A `RandAugmentBatch` for a timm config string ('' or None: no RandAugment)."""
    if not config_str:
        return None
    try:
        return RandAugmentBatch(config_str, info)
    except (AssertionError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"randaugment={config_str!r} is not a timm RandAugment config "
            f"(e.g. 'rand-m9-mstd0.5'): {exc}"
        ) from exc


def _write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically, so a crash never leaves half a file."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def retrain(
    genotype: Architecture | str | Path,
    config: RetrainConfig | str = "quick",
    out: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: Callback | Iterable[Callback] | None = None,
    **kw: Any,
) -> RetrainResult:
    """Retrain ``genotype`` (Genotype, built-in name or JSON path) under ``config`` or a preset.

    With ``out`` every epoch is checkpointed there; ``resume=True`` continues from
    ``out/checkpoint.pt``. ``kw`` go to `Retrainer` (``train_data``, ``test_data``).
    """
    if isinstance(config, str):
        config = retrain_preset(config)
    if resume and out is None:
        raise ValueError("resume=True needs the output directory of the run to continue (out=...)")
    if out is not None and not resume and (Path(out) / CHECKPOINT).exists():
        raise FileExistsError(
            f"{Path(out) / CHECKPOINT} already exists: pass --resume (resume=True) to continue "
            "that run, or choose another output directory; nothing was overwritten"
        )
    trainer = Retrainer(genotype, config, out, **kw)
    if resume:
        trainer.resume()
    return trainer.run(progress=progress, callbacks=callbacks)
