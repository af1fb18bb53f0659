"""Training one NASNet child: a small network of a sampled genotype, scored on held-out images.

Zoph et al. (2018) train each sampled child (N=2 normal cells per stage) for 20 epochs and
reward the controller with its accuracy on a validation split held out from the training set.
`train_child` does that with the existing retraining code (`nasviz.train.Retrainer`), whose
"test" loader is handed the validation split carved from the TRAIN split here; the test split is
never loaded. A child is a plain-data job (`child_job`: genotype dict, config dict, seed), so any
executor (nasviz.search.executor) can run it in this process or on a Ray worker, and the same job
gives the same reward wherever it runs.

`child_seed` derives each child's seed from the run's seed and the genotype, so a duplicate
genotype makes an identical job, which the executors' cache answers without training again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from nasviz import architectures
from nasviz.config import Config, ConfigError, check_dataset_and_device, param, suggest
from nasviz.data import ImageDataset, load_dataset, search_split
from nasviz.spaces.nasnet import NasnetGenotype
from nasviz.train import RetrainConfig, Retrainer

PRESETS: tuple[str, ...] = ("paper", "quick", "smoke")


@dataclass
class ChildConfig(Config):
    """How a child is built and trained (defaults: the paper's N=2, 20 epochs on CIFAR-10).

    ``val_portion`` of the train split is held out for the reward (the last images, fixed);
    ``C``, the batch and the learning rate of the paper's children are not in PAPERS.md: 32
    filters (the NASNet CIFAR width), batch 64 and lr 0.025 with cosine decay are our choice.
    """

    label: ClassVar[str] = "child"

    dataset: str = param("cifar10", help="digits (embedded) or cifar10")
    data_root: str = param("data")
    download: bool = param(False)
    val_portion: float = param(
        0.1, min=0.0, max=1.0, min_open=True, max_open=True,
        help="share of the TRAIN split held out for the reward (0.1: 5,000 CIFAR-10 images)",
    )  # fmt: skip
    cells_per_stage: int = param(2, min=1, max=64, help="N normal cells per stage")
    C: int = param(32, min=1, max=4096, help="filters of the first stage")
    epochs: int = param(20, min=1, max=100_000)
    batch_size: int = param(64, min=1, max=65_536)
    lr: float = param(0.025, min=0.0, min_open=True, max=10.0)
    weight_decay: float = param(3e-4, min=0.0, max=1.0)
    cutout: bool = param(False)
    drop_path_prob: float = param(0.0, min=0.0, max=1.0, max_open=True)
    max_steps_per_epoch: int | None = param(None, min=1, help="cap for smoke runs")
    device: str = param("auto")
    amp: bool = param(True, help="bf16 autocast on CUDA")

    def check(self) -> None:
        check_dataset_and_device(self.dataset, self.device)

    def retrain_config(self, seed: int) -> RetrainConfig:
        """The `RetrainConfig` of one child: N cells per stage, no auxiliary head."""
        return RetrainConfig(
            dataset=self.dataset, data_root=self.data_root, download=self.download, C=self.C,
            layers=self.cells_per_stage, auxiliary=False, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            cutout=self.cutout, drop_path_prob=self.drop_path_prob,
            max_steps_per_epoch=self.max_steps_per_epoch, seed=seed, device=self.device,
            amp=self.amp,
        )  # fmt: skip


_QUICK: dict[str, Any] = dict(dataset="digits", val_portion=0.2, C=8, epochs=3, lr=0.05)
_SMOKE: dict[str, Any] = dict(C=4, epochs=1, max_steps_per_epoch=2)


def child_preset(name: str = "quick", **overrides: Any) -> ChildConfig:
    """The `paper`, `quick` (digits, a few epochs) or `smoke` child config, with overrides."""
    if name not in PRESETS:
        raise ConfigError(
            f"unknown child preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}"
        )
    values: dict[str, Any] = {}
    if name != "paper":
        values.update(_QUICK)
        if name == "smoke":
            values.update(_SMOKE)
    return ChildConfig.create(**values).replace(**overrides)


@functools.lru_cache(maxsize=4)
def validation_split(
    dataset: str, data_root: str, download: bool, val_portion: float
) -> tuple[ImageDataset, ImageDataset]:
    """(train, validation) carved in order from the dataset's TRAIN split (cached per process)."""
    train = load_dataset(dataset, "train", root=data_root, download=download)
    return search_split(train, 1.0 - val_portion)


def train_child(
    arch_dict: dict[str, Any],
    config_dict: dict[str, Any],
    seed: int,
    train_data: ImageDataset | None = None,
    val_data: ImageDataset | None = None,
) -> dict[str, Any]:
    """Train one child and return ``{"reward": validation accuracy, ...}`` (plain data).

    Without ``train_data``/``val_data`` the config's dataset is loaded and split
    (`validation_split`); given, they are used as they are (the caller keeps test data out).
    """
    arch = architectures.from_dict(arch_dict)
    if not isinstance(arch, NasnetGenotype):
        raise ValueError(f"a NASNet child needs a 'nasnet' genotype, got kind {arch.kind!r}")
    cfg = ChildConfig.from_dict(config_dict)
    if (train_data is None) != (val_data is None):
        raise ValueError("pass both train_data and val_data, or neither")
    if train_data is None:
        train_data, val_data = validation_split(
            cfg.dataset, cfg.data_root, cfg.download, cfg.val_portion
        )
    start = time.perf_counter()
    # The validation split is also handed in as the "test" data, so that the test split is never
    # loaded: Retrainer reads its test data once, at the end.
    trainer = Retrainer(
        arch, cfg.retrain_config(seed), None, train_data=train_data, val_data=val_data,
        test_data=val_data,
    )  # fmt: skip
    result = trainer.run(progress=False)
    last = result.metrics[-1]
    return {
        "reward": float(last["val_acc"]),  # accuracy on the held-out validation split
        "val_loss": float(last["val_loss"]),
        "train_acc": float(last["train_acc"]),
        "params": int(result.params),
        "seconds": time.perf_counter() - start,
        "seed": int(seed),
    }


def child_seed(base_seed: int, arch_dict: dict[str, Any]) -> int:
    """A child's seed from the run's seed and its genotype (a duplicate genotype, the same seed)."""
    text = json.dumps(arch_dict, sort_keys=True) + f"/{int(base_seed)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def child_job(arch: NasnetGenotype, config: ChildConfig, base_seed: int) -> dict[str, Any]:
    """One child as a plain-data job for an executor: genotype, config and seed."""
    arch_dict = arch.to_dict()
    return {"arch": arch_dict, "config": config.to_dict(), "seed": child_seed(base_seed, arch_dict)}


def run_child_job(job: dict[str, Any]) -> dict[str, Any]:
    """The function an executor maps over `child_job`s."""
    return train_child(job["arch"], job["config"], job["seed"])
