"""Cream of the Crop: one-shot single-path training with a prioritized path board and a teacher.

Per batch (paper, Alg. 1; official microsoft/Cream ``tools/train.py``):

1. draw one path uniformly among those within the FLOPs range (SPOS uniform sampling;
   `CreamSpace.random_path`, rejection sampling, so the range is a hard constraint);
2. after the warm-up (``warmup_epochs``) and once the board holds a path, the meta-network
   scores every board path's match with this student on the board's stored images and the best
   match is the teacher (`nasviz.search.cream_meta.select_teacher`); the student minimizes
   ``(m * KD + (2 - m) * CE) / 2`` with the teacher's soft labels on the same batch, m = the
   chosen teacher's matching score (held constant in this step); without a teacher, or with
   ``kd=False``, plain cross-entropy (label smoothing 0.1);
3. after the warm-up the path is offered to the board with its accuracy on that batch
   (`nasviz.search.cream_board.PathBoard`: the paper's admission rule, the FLOPs range enforced);
4. every ``meta_every`` post-warm-up iterations the meta-network takes one step on the held-out
   cross-entropy after a simulated student step (the one-step look-ahead), on images of the
   validation split carved from the training data (``val_portion``); the test split is never read.

The result is the best board path (`derive()` returns a `CreamPath`); there is no separate
search after training. Where the official code has bugs (PAPERS.md) this module does what the
paper says: the weight m is the chosen teacher's own score with the paper's sign; the sampling
is uniform (the official code's preset probabilities never took effect either); see the
docstrings of `cream_board` and `cream_meta` for the other differences.

Quick mode (``preset("cream", "quick")``) is the same code on the embedded 8x8 digits with
`CreamSpace.digits()`: the same block types and choice structure at half width, depths
1, 2, 2, 2, 2, and the stride-2 points that an 8x8 input cannot afford dropped (the
`nasviz.spaces.cream` docstring says how); FLOPs ranges are then in the digits space's own
multiply-adds (its paths span about 2.5-5.25M).

Data parallel (``torchrun``): every rank seeds the path generator identically and trains the same
path on its shard through DistributedDataParallel; the batch accuracy is averaged over ranks
before the board sees it, the stored images and outputs come from rank 0 (shard 0 starts with
the global batch, so they are the single-process ones), and the meta-network's look-ahead
gradients are averaged over ranks. Each rank's look-ahead simulates the student step on its own
shard, so their mean is not the single-process look-ahead gradient of the global batch (the
look-ahead is not linear in the batch); and BN normalizes each shard with its own statistics
(SyncBatchNorm is CUDA-only). Everything else matches a single-process run with the same global
batch; tests/test_distributed.py checks both.
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
from nasviz.data import (
    DatasetInfo,
    DeviceLoader,
    ImageDataset,
    dataset_info,
    load_dataset,
    search_split,
)
from nasviz.search import registry
from nasviz.search.base import Search
from nasviz.search.config import ConfigError, SearchConfig, param, presets_from
from nasviz.search.cream_board import PathBoard
from nasviz.search.cream_meta import (
    MetaMatchingNetwork,
    cream_loss,
    kd_loss,
    lookahead_meta_grads,
    meta_step,
    select_teacher,
    should_update_meta,
    teacher_logits,
)
from nasviz.spaces.cream import CHOICE_NAMES, CreamPath, CreamSpace, official_layout

BOARD_GROUP = "board/choices"


@dataclass
class CreamConfig(SearchConfig):
    """Cream of the Crop (defaults: the paper / official supernet training on ImageNet)."""

    # the constraint, in millions of multiply-adds (the paper's "MFLOPs")
    flops_min: float = param(0.0, min=0.0, help="FLOPs range minimum (M multiply-adds)")
    flops_max: float = param(600.0, min=0.0, min_open=True, help="FLOPs range maximum (M)")
    # the space
    depths: tuple[int, int, int, int, int] | None = param(
        None, min=1, max=8, help="layers per stage (None: the official rule for the FLOPs range)"
    )
    width: float = param(1.0, min=0.0, min_open=True, max=4.0, help="channel multiplier")
    image_size: int | None = param(
        None, min=8, max=1024, help="imagenet-folder input size (None: the rule's resolution)"
    )
    # the prioritized path board and the meta-network
    board_size: int = param(10, min=1, max=1000, help="K: paths on the prioritized board")
    board_slice: int = param(4, min=1, max=256, help="stored images per board path")
    board_margin: float = param(
        0.0, min=0.0, max=1.0, help="accuracy gap needed to beat the worst entry (official: 0.05)"
    )
    kd: bool = param(True, help="distill from the board's best-matching path (off: SPOS)")
    warmup_epochs: int = param(20, min=0, help="epochs of plain uniform sampling")
    meta_every: int = param(200, min=1, help="iterations between meta-network updates")
    meta_lr: float = param(1e-4, min=0.0, min_open=True, max=100.0)
    val_portion: float = param(
        0.1, min=0.01, max=0.5, help="share of the training data held out (meta, val_acc)"
    )
    # supernet training: SGD (Nesterov), linear decay, label smoothing
    lr: float = param(1.0, min=0.0, min_open=True, max=100.0)
    lr_min: float = param(0.0, min=0.0, max=100.0)
    momentum: float = param(0.9, min=0.0, max=1.0, max_open=True)
    nesterov: bool = param(True)
    weight_decay: float = param(1e-4, min=0.0, max=1.0)
    label_smoothing: float = param(0.1, min=0.0, max=1.0, max_open=True)
    grad_clip: float = param(0.0, min=0.0, help="gradient norm clip (0: off, as the paper)")

    def check(self) -> None:
        super().check()
        if self.flops_min > self.flops_max:
            raise ConfigError(
                f"flops_min ({self.flops_min:g}) must not exceed flops_max ({self.flops_max:g})"
            )
        if self.lr_min > self.lr:
            raise ConfigError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")
        if self.board_slice > self.batch_size:
            raise ConfigError(
                f"board_slice={self.board_slice} stored images per path need batches of at "
                f"least that many images; batch_size is {self.batch_size}"
            )
        space = config_space(self)
        lo, hi = space.madds_bounds()
        if self.flops_max < lo or self.flops_min > hi:
            raise ConfigError(
                f"no path has {self.flops_min:g}-{self.flops_max:g}M multiply-adds: in this space "
                f"(depths {list(space.depths)}, {space.image_size} px, width {space.width:g}) the "
                f"smallest path has {lo:.2f}M and the largest {hi:.2f}M; choose a range that "
                f"overlaps [{lo:.2f}, {hi:.2f}]"
            )

    def warnings(self) -> list[str]:
        if self.warmup_epochs >= self.epochs:
            return [
                f"warmup_epochs={self.warmup_epochs} covers all {self.epochs} epochs: the path "
                "board and the teacher never start (plain uniform sampling)"
            ]
        return []

    @property
    def flops_range(self) -> tuple[float, float]:
        """(min, max) in millions of multiply-adds."""
        return (self.flops_min, self.flops_max)


def _info_for(config: CreamConfig) -> DatasetInfo:
    if config.dataset == "imagenet-folder":  # classes are known once the folder is read
        return DatasetInfo("imagenet-folder", 1000, 3, 224, (0.0,), (1.0,), 0, True, 0)
    return dataset_info(config.dataset)


def config_space(
    config: CreamConfig, info: DatasetInfo | None = None, image_size: int | None = None
) -> CreamSpace:
    """The supernet space a config trains: depths, input size, width, channels, classes."""
    info = info or _info_for(config)
    depths, resolution = config.depths, None
    if depths is None:
        try:
            depths, resolution = official_layout(config.flops_min, config.flops_max)
        except ValueError as exc:
            raise ConfigError(f"{exc}; set depths=(a, b, c, d, e) for this dataset") from exc
    if image_size is None:
        image_size = info.image_size
        if config.dataset == "imagenet-folder":
            image_size = config.image_size or resolution or info.image_size
    return CreamSpace(
        depths=tuple(depths), image_size=image_size, width=config.width,
        in_channels=info.in_channels, num_classes=info.num_classes,
    )  # fmt: skip


class _PathModel(nn.Module):
    """One path of the supernet as a plain model (``model(x) -> logits``), for evaluation."""

    def __init__(self, supernet: nn.Module, path: CreamPath) -> None:
        super().__init__()
        self.supernet = supernet
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.path)


class CreamSearch(Search):
    """Cream of the Crop on the Cream MBConv space: SPOS + prioritized board + meta teacher."""

    config: CreamConfig

    def setup(
        self, train_data: ImageDataset | None = None, val_data: ImageDataset | None = None
    ) -> None:
        cfg = self.config
        self._build_data(train_data, val_data)
        self.space = config_space(cfg, self.info, self.info.image_size)
        self.supernet = self.space.build_supernet().to(self.device)
        # a path uses one block per layer: DDP must look for the parameters it did not use
        self.model = self.dist.wrap(self.supernet, find_unused_parameters=True)
        self.optimizer = torch.optim.SGD(
            self.supernet.parameters(), cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )  # fmt: skip
        # linear decay from lr to lr_min over the epochs (official: per epoch)
        span = cfg.lr - cfg.lr_min
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda e: (cfg.lr_min + span * (1 - e / cfg.epochs)) / cfg.lr
        )
        self.meta = MetaMatchingNetwork(self.info.num_classes, cfg.board_slice).to(self.device)
        self.meta_optimizer = torch.optim.SGD(self.meta.parameters(), cfg.meta_lr)
        self.board = PathBoard(
            cfg.board_size, cfg.flops_range, slice=cfg.board_slice, margin=cfg.board_margin
        )
        # paths are drawn on the CPU from their own generator, seeded identically on every rank
        self.path_generator = torch.Generator().manual_seed(cfg.seed)
        # shown while the board is empty: a fixed in-range path from a generator of its own
        self.reference_path = self.space.random_path(
            torch.Generator().manual_seed(cfg.seed + 1), cfg.flops_range
        )
        self.board_steps = 0  # post-warm-up iterations (the meta-network's clock)
        self._madds: dict[CreamPath, float] = {}
        self._reset_epoch_stats()
        self.history.declare_group(
            BOARD_GROUP, rows=self.space.layer_names(), cols=list(CHOICE_NAMES),
            title="Cream: choice frequencies among the board's paths",
        )  # fmt: skip

    def _build_data(self, train_data: ImageDataset | None, val_data: ImageDataset | None) -> None:
        """Training data minus a held-out validation split (meta look-ahead, val_acc)."""
        cfg = self.config
        if train_data is None:
            train_data = load_dataset(
                cfg.dataset, "train", root=cfg.data_root, download=cfg.download,
                **({"image_size": cfg.image_size} if cfg.dataset == "imagenet-folder" else {}),
            )  # fmt: skip
        if val_data is None:
            train_data, val_data = search_split(train_data, 1.0 - cfg.val_portion)
        self.info = train_data.info
        self.dist.check_batch(cfg.batch_size)
        local = cfg.batch_size // self.dist.world_size
        if local < cfg.board_slice:
            raise ConfigError(
                f"each of the {self.dist.world_size} processes trains on {local} images per "
                f"batch, fewer than board_slice={cfg.board_slice}: raise --batch-size"
            )
        kw = dict(device=self.device)
        self.train_loader = self.dist.shard(
            DeviceLoader(train_data, cfg.batch_size, train=True, seed=cfg.seed, **kw)
        )
        self.val_loader = self.dist.shard(
            DeviceLoader(val_data, cfg.batch_size, train=True, seed=cfg.seed + 1, **kw)
        )
        self.eval_loader = DeviceLoader(val_data, 2 * cfg.batch_size, train=False, **kw)
        # A path's BN statistics, recomputed before it is evaluated (as SPOS does): the running
        # averages are shared by all paths and fit none (`evaluate`)
        self.calibration_loader = calibration_loader(train_data, 2 * cfg.batch_size, self.device)

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when enabled, otherwise a no-op."""
        return loop.autocast(self.device, self.config.amp)

    def madds(self, path: CreamPath) -> float:
        """Millions of multiply-adds of ``path`` in this space (cached)."""
        if path not in self._madds:
            self._madds[path] = self.space.madds(path)
        return self._madds[path]

    def board_active(self) -> bool:
        """Whether the warm-up is over (the board takes paths, a teacher may teach)."""
        return self.epoch >= self.config.warmup_epochs

    def lr(self) -> float:
        """The student's current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _reset_epoch_stats(self) -> None:
        self._stats = {"kd_steps": 0, "m_sum": 0.0, "teacher_top": 0, "meta_updates": 0}
        self._held_out: list[float] = []

    # ------------------------------------------------------------------ the loop's hooks
    def iterations_per_epoch(self) -> int:
        return len(self.train_loader)

    def start_epoch(self, epoch: int) -> None:
        self.supernet.train()
        self._reset_epoch_stats()

    def run_iteration(self, index: int) -> tuple[dict[str, torch.Tensor | float], int]:
        cfg = self.config
        x, y = self.train_loader.next()
        path = self.space.random_path(self.path_generator, cfg.flops_range)
        soft, m = None, 0.0
        if self.board_active() and cfg.kd and len(self.board):
            if should_update_meta(self.board_steps, cfg.meta_every):
                self._meta_update(path, x, y)
            choice = select_teacher(self.meta, self.supernet, path, self.board)
            soft = teacher_logits(self.supernet, x, choice.path)
            m = choice.m.detach()
            self._stats["kd_steps"] += 1
            self._stats["m_sum"] += float(m)
            self._stats["teacher_top"] += int(choice.index == 0)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.model(x, path)
        logits = logits.float()
        loss = cream_loss(logits, y, soft, m, label_smoothing=cfg.label_smoothing)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), cfg.grad_clip)
        self.optimizer.step()
        logits = logits.detach()
        acc = (logits.argmax(1) == y).float().mean()
        if self.board_active():
            self._offer(path, acc, x, logits)
            self.board_steps += 1
        values: dict[str, torch.Tensor | float] = {"train_loss": loss.detach(), "train_acc": acc}
        values["train_ce"] = F.cross_entropy(logits, y)
        if soft is not None:
            values["train_kd"] = kd_loss(logits, soft)
        return values, len(y)

    def _offer(self, path: CreamPath, acc: torch.Tensor, x: torch.Tensor, logits: torch.Tensor):
        """Offer the path to the board: accuracy over all ranks, rank 0's stored images."""
        acc = self.dist.all_reduce(acc.clone(), "mean")  # the global batch's accuracy
        s = self.config.board_slice
        images = self.dist.broadcast(x[:s].contiguous())
        out = self.dist.broadcast(logits[:s].contiguous())
        self.board.update(path, float(acc), self.madds(path), images, out, self.global_step)

    def _meta_update(self, path: CreamPath, x: torch.Tensor, y: torch.Tensor) -> None:
        """One look-ahead step of the meta-network on held-out images (gradients averaged)."""
        held_out = self.val_loader.next()
        grads, info = lookahead_meta_grads(
            self.meta, self.supernet, path, self.board, (x, y), held_out, self.lr(),
            label_smoothing=self.config.label_smoothing,
        )  # fmt: skip
        grads = self.dist.all_reduce_list(grads, "mean")
        meta_step(self.meta, self.meta_optimizer, grads)
        self._stats["meta_updates"] += 1
        self._held_out.append(float(info["held_out_loss"]))

    def end_epoch(self, means: dict[str, float]) -> dict[str, float]:
        lr = self.lr()
        self.scheduler.step()
        self.dist.broadcast_buffers(self.supernet)  # rank 0's BN statistics on every rank
        val_loss, val_acc = self.evaluate(self.derive())
        return {**means, "val_loss": val_loss, "val_acc": val_acc, "lr": lr}

    def evaluate(self, path: CreamPath) -> tuple[float, float]:
        """(loss, accuracy) of ``path`` with the supernet's weights on the validation split.

        BN statistics are those of ``path`` on training images (`recalibrated_bn`; the
        supernet's own running statistics are restored afterwards).
        """
        model = _PathModel(self.supernet, path)
        return evaluate_recalibrated(
            model, self.calibration_loader, self.eval_loader, self.device, self.config.amp
        )

    def snapshot(self, *, step: bool = False) -> dict[str, Any]:
        groups = {BOARD_GROUP: self.board.choice_frequencies()} if len(self.board) else {}
        return {"groups": groups, "extra": self.extra_series(full=not step)}

    def extra_series(self, full: bool = True) -> dict[str, Any]:
        """Board figures (best/mean accuracy, size), the teacher's matching score, meta updates."""
        accs = [e.accuracy for e in self.board]
        st = self._stats
        out: dict[str, Any] = {"board_size": len(self.board)}
        if accs:
            out |= {
                "board_best_acc": max(accs), "board_mean_acc": sum(accs) / len(accs),
                "board_best_madds": self.board.best().madds,  # type: ignore[union-attr]
            }  # fmt: skip
        if st["kd_steps"]:
            out["matching_score"] = st["m_sum"] / st["kd_steps"]
            out["teacher_is_top"] = st["teacher_top"] / st["kd_steps"]
        out["kd_steps"] = st["kd_steps"]
        out["meta_updates"] = st["meta_updates"]
        if self._held_out:
            out["meta_held_out_loss"] = sum(self._held_out) / len(self._held_out)
        if full:  # the whole board: what the Cream plot draws (skipped by the numeric plots)
            out["board"] = self.board.summary()
            out["flops_range"] = list(self.config.flops_range)
        return out

    def derive(self) -> CreamPath:
        best = self.board.best()
        return best.path if best is not None else self.reference_path

    # ------------------------------------------------------------------ comparison hooks
    space_name = "cream-path"

    def random_architectures(self, n: int, seed: int) -> list[CreamPath]:
        """``n`` paths drawn uniformly within the FLOPs range (as the search samples them)."""
        gen = torch.Generator().manual_seed(seed)
        return [self.space.random_path(gen, self.config.flops_range) for _ in range(n)]

    def subnet_gap(self, paths: int = 8) -> dict[str, float]:
        """Supernet: mean validation accuracy of ``paths`` uniform in-range paths (its sampling);
        child: the derived path; both with the supernet's weights, no retraining."""
        gen = torch.Generator().manual_seed(self.config.seed + 2)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            accs = [self.evaluate(self.space.random_path(gen, self.config.flops_range))[1]
                    for _ in range(paths)]  # fmt: skip
            child = self.evaluate(self.derive())[1]
        return {"supernet_acc": sum(accs) / len(accs), "child_acc": child}

    # ------------------------------------------------------------------ checkpoints
    def method_state(self) -> dict[str, Any]:
        return {
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "meta": self.meta.state_dict(),
            "meta_optimizer": self.meta_optimizer.state_dict(),
            "board": self.board.state_dict(),
            "path_generator": self.path_generator.get_state(),
            "board_steps": self.board_steps,
            "loaders": {
                "train": self.train_loader.state_dict(),
                "val": self.val_loader.state_dict(),
            },
        }

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.meta.load_state_dict(state["meta"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
        self.board.load_state_dict(state["board"], device=self.device)
        self.path_generator.set_state(state["path_generator"])
        self.board_steps = int(state["board_steps"])
        self.train_loader.load_state_dict(state["loaders"]["train"])
        self.val_loader.load_state_dict(state["loaders"]["val"])


# The paper (PAPERS.md; official supernet training): 120 epochs, warm-up 20, K=10, meta update
# every 200 iterations at lr 1e-4, SGD Nesterov lr 1.0 with linear decay, wd 1e-4, label
# smoothing 0.1, global batch 1024 (8 GPUs x 128), the 0-600M supernet at 224 px.
# Quick (ours): digits, CreamSpace.digits(), 6 epochs of 40 steps (batch 32: a weight-sharing
# supernet needs many steps more than batch size), warm-up 2, K=5, a meta update every 20
# iterations with a larger rate so the few updates are visible, lr 0.03. Measured on digits
# (batch 32, one path per batch, training accuracy over steps 151-200): uniform SPOS reaches
# only about 18-23% at lr 0.02-0.1 (0.03: 23%, 0.1: 18%; the quick searches' validation
# accuracy is 20-27%), while one fixed path averages 94% over steps 51-100. The cause is the
# search space, not the code: the first layer of every stage has no residual, so each of its
# six candidates hands the next layers different features; with the residual layers random and
# the first layers fixed the supernet reaches 95%, with only the first layers random 23%.
# Weight sharing needs many more steps than one network (the paper trains 120 ImageNet epochs);
# quick mode shows the method, not a converged supernet, and notebook 05 says so with the
# run's own numbers.
PRESETS = presets_from(
    paper=dict(
        dataset="imagenet-folder", epochs=120, batch_size=1024, flops_min=0.0, flops_max=600.0,
        warmup_epochs=20, board_size=10, meta_every=200, meta_lr=1e-4, lr=1.0,
    ),
    quick=dict(
        dataset="digits", depths=(1, 2, 2, 2, 2), width=0.5, epochs=6, batch_size=32,
        flops_min=0.0, flops_max=6.0, warmup_epochs=2, board_size=5, meta_every=20,
        meta_lr=0.05, lr=0.03, weight_decay=1e-4,
    ),
    smoke=dict(epochs=2, max_steps_per_epoch=3, warmup_epochs=1, meta_every=2),
)  # fmt: skip


def _flops_flag(value: list[float]) -> dict[str, float]:
    lo, hi = (float(v) for v in value)
    return {"flops_min": lo, "flops_max": hi}


registry.register(
    registry.Method(
        name="cream",
        title="Cream of the Crop",
        search_class=CreamSearch,
        config_class=CreamConfig,
        presets=PRESETS,
        cli_flags=(
            registry.CliFlag(
                ("--flops",),
                "flops_min",
                dict(
                    type=float,
                    nargs=2,
                    metavar=("MIN", "MAX"),
                    help="Cream: FLOPs range in millions of multiply-adds",
                ),
                to_config=_flops_flag,
            ),
            registry.CliFlag(
                ("--board-size",),
                "board_size",
                dict(type=int, help="Cream: K, paths on the prioritized board"),
            ),
            registry.CliFlag(
                ("--no-kd",),
                "kd",
                dict(action="store_true", help="Cream without distillation (uniform SPOS)"),
                to_config=lambda v: {"kd": False},
            ),
        ),  # fmt: skip
        controls=(
            registry.Control("flops_min", "float", "FLOPs min (M)", min=0.0, max=1e5, step=0.25),
            registry.Control("flops_max", "float", "FLOPs max (M)", min=0.0, max=1e5, step=0.25),
            registry.Control("board_size", "int", "board size K", min=1, max=100),
            registry.Control("kd", "checkbox", "distillation (KD)"),
        ),
        summary="single-path uniform sampling, a prioritized path board and a meta-network teacher",
        plots=("nasviz.viz.cream:save_run_plots",),
    )
)
