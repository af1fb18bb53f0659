"""Cream of the Crop's search space: a MobileNetV3-like single-path supernet and its paths.

The network, as the official code (microsoft/Cream, ``lib/models/structures/supernet.py``,
``childnet.py`` and their builders) defines it, top to bottom:

* stem: 3x3 conv stride 2 -> 16 channels, BN, Swish;
* fixed first block: depthwise-separable k3, 16 channels, squeeze-excitation 0.25, residual;
* five searchable stages with 24, 40, 80, 96 and 192 output channels; the first layer of each
  stage has stride 2 except in the 96-channel stage; every layer picks one of six MBConv blocks
  (``CHOICES``: kernel 3/5/7 x expansion 4/6, index order k3e4, k3e6, k5e4, k5e6, k7e4, k7e6)
  with squeeze-excitation (ratio 0.25 of the expanded width, rounded to 8, ReLU inside,
  hard-sigmoid gate) and Swish elsewhere; a residual when the shape allows;
* fixed last block: 1x1 conv -> 320, BN, Swish (the official arch string says ``se0.25`` but its
  ``cn`` block type takes no SE, so there is none);
* head: global average pool, then a 1x1 conv -> 1280 with bias, Swish, dropout, Linear.

The blocks are timm's own (``timm.models._efficientnet_blocks``): ``DepthwiseSeparableConv``,
``InvertedResidual``, ``SqueezeExcite`` and ``ConvBnAct``, with ``nn.SiLU`` (= Swish) and
``nn.Hardsigmoid`` (= timm 0.1's ``hard_sigmoid``), timm's ``round_channels``/``make_divisible``
and timm's TF-style weight init. The official code builds on timm 0.1.20's versions of the same
classes; they compute the same function with the same parameters: the six released models built
here have exactly the official parameter counts and flop-counter FLOPs
(tests/test_spaces_cream.py), and with the official networks' weights loaded, the 14M and 287M
children and the 0-600M supernet gave the official outputs to 2e-6. timm is imported only when a
network is built, so the core library imports without it.

**Released models** (`RELEASED`, names cream_14m ... cream_604m): the official retrain script's
lists give choice 3 (k5e6) to every single-layer stage, but its ``gen_childnet`` ignores the
choice of a stage with one layer and builds the stage's default block (24 ch: k3e4, 40: k5e4,
80: k3e6, 96: k3e6, 192: k5e6). The released checkpoints were trained that way, so the paths here
record the blocks really built (which is how their parameter counts match).

**Layer counts and resolution from the FLOPs range** (`CreamSpace.for_flops`): the official rule
(``search_for_layer``) starts from one layer per stage at 224 px. If even the cheapest first
layers exceed the range's maximum, it steps the resolution down by 32 px and scales the range by
7/size each step (cumulatively, as the official code does). Otherwise it adds layers in the order
80, 96, 192, 40, 24 (up to 3, 3, 3, 2, 2 entries, then up to 4 each) while the sum of the
largest choices' FLOPs stays under the maximum. The fourth entry of the 80-channel stage is
repeated twice in the official layout, so four entries there mean five layers: 0-600M gives
4, 4, 5, 4, 4 layers at 224 px; 0-300M 1, 2, 3, 3, 3; 0-100M one each; 0-50M one each at 160 px;
0-20M one each at 96 px. The rule's per-layer figures come from our measured table, not the
official hand-typed one (which used another counter); the layouts for those ranges are the same,
other ranges can differ by a layer near a threshold (200-400M: official 2, 2, 5, 4, 3, here
2, 2, 5, 4, 4). The rule only budgets the searchable blocks, so a space's whole paths can exceed
the range (0-100M at 224 px spans 76-130M); sampling (`CreamSpace.random_path`) enforces it.
Every layer of the supernet is searched (the official sampler draws four choices for the
80-channel stage, so its fifth layer never runs there).

**FLOPs**: a path's FLOPs are the sum of a per-choice table (`FlopsTable`) measured once per
space with ``torch.utils.flop_counter`` on the supernet's own modules at their real input shapes,
plus the fixed parts. The counter's convention: 2 FLOPs per multiply-add, convolutions and linear
layers only (batch norm, activations, pooling and the SE gate multiply are not counted), batch 1.
The paper, the official code and the model names (cream_14m ... cream_604m) speak of
*multiply-adds* in millions, and their counter (ptflops/thop) also counts BN and activation
element ops; so every FLOPs *range* here (``flops_range``, ``for_flops``) is in millions of
multiply-adds (= FLOPs / 2e6) and the released models' multiply-adds come out 3.7-5.8% under
their names (e.g. cream_287m: 276.26M multiply-adds here, 288.7M with ptflops on the official
model, 296.6M with thop).

**Small inputs (digits, CIFAR)**: `CreamSpace` scales honestly with the same block types and
the same choice structure: (1) ``width`` multiplies every channel count (stem, stages, last
block and the 1280 head; rounded to multiples of 8 as timm/official do); (2) the stride-2 points
(stem, first layers of the 24-, 40-, 80- and 192-channel stages) are dropped from the front, as
many as needed to keep the last feature map at least 2x2 (all five are kept from 64 px up, which
covers every resolution the paper uses; 8x8 digits keep only the 80- and 192-channel strides:
8 -> 4 -> 2). Depths come from the caller or from the FLOPs rule; ``CreamSpace.digits()`` uses
width 0.5 and 1, 2, 2, 2, 2 layers (the official 0-300M layout, 1, 2, 3, 3, 3, one layer shorter
in the last three stages, for a quick run on 2 CPU cores): 6**9 paths of 2.51-5.25M
multiply-adds. The FLOPs table is measured per space, i.e. per input resolution, width, depth,
input channels and classes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from nasviz import architectures

#: The six candidate blocks per searchable layer, as (kernel, expansion), in official index order.
CHOICES: tuple[tuple[int, int], ...] = ((3, 4), (3, 6), (5, 4), (5, 6), (7, 4), (7, 6))
CHOICE_NAMES: tuple[str, ...] = tuple(f"k{k}e{e}" for k, e in CHOICES)
#: Output channels and first-layer stride of the five searchable stages.
STAGE_CHANNELS: tuple[int, ...] = (24, 40, 80, 96, 192)
STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2)
STEM_CHANNELS = 16  # stem conv and fixed first (depthwise-separable) block
LAST_CHANNELS = 320  # fixed last block (1x1 conv)
HEAD_FEATURES = 1280  # 1x1 conv after the global pool
SE_RATIO = 0.25
#: The official search supernet (FLOPs range 0-600M): layers per stage, at 224 px.
OFFICIAL_DEPTHS: tuple[int, ...] = (4, 4, 5, 4, 4)

# The official layer-count rule (search_for_layer): stage order in which layers are added, and
# how many official arch-string entries each step may reach.
_LAYOUT_ORDER = (2, 3, 4, 1, 0, 2, 3, 4, 1, 0)
_LAYOUT_LIMITS = (3, 3, 3, 2, 2, 4, 4, 4, 4, 4)
# The official 80-channel stage's fourth entry is "ir_r2": repeated twice.
_REPEATS = ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 2), (1, 1, 1, 1), (1, 1, 1, 1))


# Below this input size a path is reported at ImageNet's 224 px (`CreamPath.reference_networks`).
MIN_IMAGENET_RESOLUTION = 32


def _timm() -> Any:
    """timm's EfficientNet blocks and builder helpers (imported on first network build)."""
    from timm.models import _efficientnet_blocks as blocks
    from timm.models import _efficientnet_builder as builder

    return blocks, builder


def _se_layer() -> Any:
    """The official SE: ratio 0.25 of the block's (expanded) width rounded to 8, ReLU, hard-sigmoid."""
    blocks, builder = _timm()
    return functools.partial(
        blocks.SqueezeExcite,
        rd_ratio=SE_RATIO,
        rd_round_fn=builder.round_channels,
        force_act_layer=nn.ReLU,
        gate_layer=nn.Hardsigmoid,
    )


# ----------------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class CreamSpace:
    """One supernet configuration: layers per stage, input size, width, input channels, classes."""

    depths: tuple[int, ...] = OFFICIAL_DEPTHS
    image_size: int = 224
    width: float = 1.0
    in_channels: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        if len(self.depths) != len(STAGE_CHANNELS) or min(self.depths) < 1:
            raise ValueError(
                f"a Cream space needs {len(STAGE_CHANNELS)} stages of at least one layer, got "
                f"depths {list(self.depths)}"
            )
        if int(self.image_size) < 1 or int(self.in_channels) < 1 or int(self.num_classes) < 1:
            raise ValueError(
                f"image_size, in_channels and num_classes must be positive, got "
                f"{self.image_size}, {self.in_channels}, {self.num_classes}"
            )
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")

    @classmethod
    def for_flops(
        cls, flops_min: float, flops_max: float, *, num_classes: int = 1000
    ) -> CreamSpace:
        """The official supernet for a FLOPs range (millions of multiply-adds): depths, resolution."""
        depths, resolution = official_layout(flops_min, flops_max)
        return cls(depths=depths, image_size=resolution, num_classes=num_classes)

    @classmethod
    def digits(
        cls, depths: Sequence[int] = (1, 2, 2, 2, 2), width: float = 0.5, image_size: int = 8
    ) -> CreamSpace:
        """The quick-mode space: 8x8 grayscale digits, 10 classes, half width (module docstring)."""
        return cls(
            depths=tuple(depths), image_size=image_size, width=width, in_channels=1, num_classes=10
        )

    # ---- structure

    @property
    def strides(self) -> tuple[int, tuple[int, ...]]:
        """(stem stride, first-layer stride of each stage) for this input size."""
        return stride_plan(self.image_size)

    def channels(self) -> tuple[int, tuple[int, ...], int, int]:
        """(stem, stage outputs, last block, head) channels after the width multiplier."""
        return scaled_channels(self.width)

    def num_layers(self) -> int:
        """Searchable layers (one choice each)."""
        return sum(self.depths)

    def layers(self) -> list[tuple[int, int]]:
        """(stage, layer) of every searchable layer, in network order."""
        return [(s, i) for s, d in enumerate(self.depths) for i in range(d)]

    def layer_names(self) -> list[str]:
        """A short name per searchable layer, in network order ('stage2.layer1' = 40 ch, first)."""
        return [f"stage{s + 1}.layer{i + 1}" for s, i in self.layers()]

    def num_paths(self) -> int:
        """How many paths the space holds (6 ** layers)."""
        return len(CHOICES) ** self.num_layers()

    def build_supernet(self) -> CreamSupernet:
        """A freshly initialized supernet of this space."""
        return CreamSupernet(self)

    # ---- paths and FLOPs

    def validate_path(self, path: CreamPath) -> None:
        """ValueError unless ``path`` is a valid path with exactly this space's layers per stage."""
        path.validate()
        for s, (stage, depth) in enumerate(zip(path.stages, self.depths, strict=True)):
            if len(stage) != depth:
                raise ValueError(
                    f"stage {s + 1} ({STAGE_CHANNELS[s]} ch) of the path has {len(stage)} "
                    f"layer(s); this space has {depth} (depths {list(self.depths)})"
                )

    def table(self) -> FlopsTable:
        """The per-choice FLOPs table of this space (measured once, then cached)."""
        return _cached_table(self)

    def flops(self, path: CreamPath) -> int:
        """FLOPs of ``path`` (torch.utils.flop_counter convention, 2 per multiply-add)."""
        self.validate_path(path)
        return self.table().flops(path.stages)

    def madds(self, path: CreamPath) -> float:
        """Millions of multiply-adds of ``path``: the paper's and the names' "MFLOPs" unit."""
        return self.flops(path) / 2e6

    def madds_bounds(self) -> tuple[float, float]:
        """(cheapest, dearest) path in millions of multiply-adds."""
        lo, hi = self.table().bounds()
        return lo / 2e6, hi / 2e6

    def random_path(
        self,
        generator: torch.Generator | None = None,
        flops_range: tuple[float, float] | None = None,
        *,
        max_draws: int = 1 << 18,
    ) -> CreamPath:
        """A path drawn uniformly from those whose multiply-adds (millions) lie in ``flops_range``.

        Uniform choices per layer, redrawn until the path fits (rejection sampling, so the
        result is uniform over the fitting paths). A range that no path meets raises ValueError
        naming the cheapest and dearest paths.
        """
        table = self.table()
        if flops_range is None:
            choices = torch.randint(len(CHOICES), (self.num_layers(),), generator=generator)
            return self._path_from_flat(choices.tolist())
        lo, hi = _check_range(flops_range)
        cheapest, dearest = self.madds_bounds()
        if hi < cheapest or lo > dearest:
            raise ValueError(
                f"no path of this Cream space has {lo:g}-{hi:g}M multiply-adds: paths range from "
                f"{cheapest:.2f}M (smallest) to {dearest:.2f}M (largest) at {self.image_size} px, "
                f"width {self.width:g}, depths {list(self.depths)}"
            )
        per_layer = table.layer_matrix()  # [layers, 6] FLOPs
        batch = 4096
        for _ in range(max(1, max_draws // batch)):
            # [batch, layers] uniform choices; their FLOPs by gathering from the table
            draws = torch.randint(len(CHOICES), (batch, self.num_layers()), generator=generator)
            flops = table.fixed + per_layer.gather(1, draws.T).sum(0)
            fits = ((flops >= lo * 2e6) & (flops <= hi * 2e6)).nonzero()
            if fits.numel():
                return self._path_from_flat(draws[int(fits[0, 0])].tolist())
        raise ValueError(
            f"fewer than 1 in {max_draws:,} paths of this Cream space have {lo:g}-{hi:g}M "
            f"multiply-adds (paths range from {cheapest:.2f}M to {dearest:.2f}M); widen the range"
        )

    def fraction_in_range(
        self, flops_range: tuple[float, float], samples: int = 20000, seed: int = 0
    ) -> float:
        """Monte Carlo estimate of the share of paths within ``flops_range`` (M multiply-adds)."""
        lo, hi = _check_range(flops_range)
        madds = self.sample_madds(samples, seed=seed)
        return float(((madds >= lo) & (madds <= hi)).double().mean())

    def sample_madds(self, samples: int = 20000, seed: int = 0) -> torch.Tensor:
        """Multiply-adds (millions) of ``samples`` uniformly random paths, float64 [samples]."""
        g = torch.Generator().manual_seed(seed)
        table = self.table()
        draws = torch.randint(len(CHOICES), (samples, self.num_layers()), generator=g)
        flops = table.fixed + table.layer_matrix().gather(1, draws.T).sum(0)
        return flops.double() / 2e6

    def _path_from_flat(self, flat: Sequence[int]) -> CreamPath:
        stages, start = [], 0
        for d in self.depths:
            stages.append(tuple(int(c) for c in flat[start : start + d]))
            start += d
        return CreamPath(stages=tuple(stages), resolution=self.image_size)


def _check_range(flops_range: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in flops_range)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"a FLOPs range is (min, max) in millions of multiply-adds, got {flops_range!r}"
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or hi < 0:
        raise ValueError(f"a FLOPs range needs 0 <= min <= max, got ({lo:g}, {hi:g})")
    return lo, hi


def stride_plan(image_size: int) -> tuple[int, tuple[int, ...]]:
    """(stem stride, stage strides): keep the last stride-2 points that leave a map of >= 2x2."""
    points = 1 + sum(s == 2 for s in STAGE_STRIDES)  # stem + 4 stages = 5 halvings (224 -> 7)
    keep = max(0, min(points, int(math.floor(math.log2(max(image_size, 2) / 2)))))
    drop = points - keep  # the earliest `drop` stride-2 points become stride 1
    stem = 2 if drop == 0 else 1
    stages, point = [], 1
    for s in STAGE_STRIDES:
        if s == 2:
            stages.append(2 if point >= drop else 1)
            point += 1
        else:
            stages.append(s)
    return stem, tuple(stages)


def scaled_channels(width: float) -> tuple[int, tuple[int, ...], int, int]:
    """(stem, stages, last block, head) channels for a width multiplier (rounded to 8)."""

    def rnd(c: int) -> int:
        return _make_divisible(c * width) if width != 1.0 else c

    return (
        rnd(STEM_CHANNELS),
        tuple(rnd(c) for c in STAGE_CHANNELS),
        rnd(LAST_CHANNELS),
        rnd(HEAD_FEATURES),
    )


def _make_divisible(v: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """timm's/TF's channel rounding (kept here so the space needs no timm to describe itself)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


# ------------------------------------------------------------------------------ the networks


def _choice_block(in_chs: int, out_chs: int, choice: int, stride: int) -> nn.Module:
    """One MBConv candidate (timm InvertedResidual, Swish, the official SE)."""
    blocks, _ = _timm()
    kernel, expansion = CHOICES[choice]
    return blocks.InvertedResidual(
        in_chs,
        out_chs,
        dw_kernel_size=kernel,
        stride=stride,
        exp_ratio=float(expansion),
        act_layer=nn.SiLU,
        se_layer=_se_layer(),
    )


def _first_block(chs: int) -> nn.Module:
    """The fixed depthwise-separable k3 block (SE 0.25 of its input width, residual)."""
    blocks, _ = _timm()
    return blocks.DepthwiseSeparableConv(
        chs, chs, dw_kernel_size=3, stride=1, act_layer=nn.SiLU, se_layer=_se_layer()
    )


def _last_block(in_chs: int, out_chs: int) -> nn.Module:
    """The fixed 1x1 conv block (conv, BN, Swish)."""
    blocks, _ = _timm()
    return blocks.ConvBnAct(in_chs, out_chs, 1, act_layer=nn.SiLU)


class _Body(nn.Module):
    """Stem and head shared by the supernet and the child network (official module names)."""

    def _build_ends(self, space: CreamSpace, dropout: float) -> None:
        stem, _, last, head = space.channels()
        stem_stride, _ = space.strides
        self.conv_stem = nn.Conv2d(space.in_channels, stem, 3, stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.act1 = nn.SiLU(inplace=True)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        # the head conv runs after the pool (MobileNetV3 style): [B, last, 1, 1] -> [B, head, 1, 1]
        self.conv_head = nn.Conv2d(last, head, 1, bias=True)
        self.act2 = nn.SiLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head, space.num_classes)

    def _init_weights(self) -> None:
        """timm's TF-style init, as the official code does (efficientnet_init_weights)."""
        _timm()[1].efficientnet_init_weights(self)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in, H, W] -> [B, stem, H/s, W/s]."""
        return self.act1(self.bn1(self.conv_stem(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """[B, last, h, w] -> logits [B, classes]."""
        x = self.act2(self.conv_head(self.global_pool(x)))
        return self.classifier(self.dropout(x.flatten(1)))


class CreamSupernet(_Body):
    """The one-shot supernet: every searchable layer holds all six candidate blocks.

    ``forward(x, path)`` runs one path (one block per layer); the blocks' weights are shared by
    every path that picks them. ``blocks[0]`` and ``blocks[6]`` are the fixed first and last
    blocks, ``blocks[s + 1][layer][choice]`` the candidates of stage ``s``.
    """

    def __init__(self, space: CreamSpace, dropout: float = 0.0) -> None:
        super().__init__()
        self.space = space
        self._build_ends(space, dropout)
        stem, stage_chs, last, _ = space.channels()
        _, stage_strides = space.strides
        blocks = [nn.ModuleList([nn.ModuleList([_first_block(stem)])])]
        in_chs = stem
        for s, (out_chs, depth) in enumerate(zip(stage_chs, space.depths, strict=True)):
            layers = nn.ModuleList()
            for i in range(depth):
                stride = stage_strides[s] if i == 0 else 1
                layers.append(
                    nn.ModuleList(
                        _choice_block(in_chs, out_chs, c, stride) for c in range(len(CHOICES))
                    )
                )
                in_chs = out_chs
            blocks.append(layers)
        blocks.append(nn.ModuleList([nn.ModuleList([_last_block(in_chs, last)])]))
        self.blocks = nn.ModuleList(blocks)
        self._init_weights()

    def _chosen(self, path: CreamPath) -> Iterable[nn.Module]:
        """The blocks ``path`` runs, in order."""
        yield self.blocks[0][0][0]
        for s, stage in enumerate(path.stages):
            for i, choice in enumerate(stage):
                yield self.blocks[s + 1][i][choice]
        yield self.blocks[-1][0][0]

    def forward(self, x: torch.Tensor, path: CreamPath) -> torch.Tensor:
        """Logits [B, classes] of ``path`` on images [B, in, H, W]."""
        self.space.validate_path(path)
        x = self.stem(x)
        for block in self._chosen(path):
            x = block(x)
        return self.head(x)

    def path_parameter_names(self, path: CreamPath) -> list[str]:
        """Names of the parameters ``path`` uses (stem, fixed blocks, its choices, head)."""
        self.space.validate_path(path)
        keep = {id(p) for block in self._chosen(path) for p in block.parameters()}
        names = []
        for name, p in self.named_parameters():
            if not name.startswith("blocks.") or id(p) in keep:
                names.append(name)
        return names

    def path_parameters(self, path: CreamPath) -> dict[str, nn.Parameter]:
        """The parameters ``path`` uses, by name."""
        params = dict(self.named_parameters())
        return {n: params[n] for n in self.path_parameter_names(path)}

    def child(self, path: CreamPath, dropout: float = 0.0) -> CreamNetwork:
        """A standalone `CreamNetwork` of ``path`` that inherits the supernet's weights."""
        net = CreamNetwork(path, self.space, dropout=dropout)
        state = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] != "blocks":
                state[key] = value
                continue
            s, i, c = int(parts[1]), int(parts[2]), int(parts[3])
            if s == 0 or s == len(self.blocks) - 1 or path.stages[s - 1][i] == c:
                state[".".join(["blocks", str(s), str(i), *parts[4:]])] = value
        net.load_state_dict(state)
        return net.to(next(self.parameters()).device)


class CreamNetwork(_Body):
    """A standalone child network of one path (the official ChildNet layout and module names)."""

    def __init__(self, path: CreamPath, space: CreamSpace, dropout: float = 0.0) -> None:
        super().__init__()
        space.validate_path(path)
        self.path = path
        self.space = space
        self._build_ends(space, dropout)
        stem, stage_chs, last, _ = space.channels()
        _, stage_strides = space.strides
        stages = [nn.Sequential(_first_block(stem))]
        in_chs = stem
        for s, (out_chs, stage) in enumerate(zip(stage_chs, path.stages, strict=True)):
            layers = []
            for i, choice in enumerate(stage):
                layers.append(
                    _choice_block(in_chs, out_chs, choice, stage_strides[s] if i == 0 else 1)
                )
                in_chs = out_chs
            stages.append(nn.Sequential(*layers))
        stages.append(nn.Sequential(_last_block(in_chs, last)))
        self.blocks = nn.Sequential(*stages)
        self._init_weights()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(logits [B, classes], None): Cream networks have no auxiliary head."""
        return self.head(self.blocks(self.stem(x))), None


# ----------------------------------------------------------------------------- the FLOPs table


@dataclass(frozen=True)
class FlopsTable:
    """FLOPs of every choice at every layer, plus the fixed parts, measured on real modules.

    ``choices[s][i][c]`` = FLOPs of choice ``c`` at layer ``i`` of stage ``s``; ``fixed`` = stem,
    first and last block, head and classifier. torch.utils.flop_counter convention (2 FLOPs per
    multiply-add), batch 1. ``seconds`` = how long measuring took.
    """

    fixed: int
    choices: tuple[tuple[tuple[int, ...], ...], ...]
    seconds: float = 0.0

    def flops(self, stages: Sequence[Sequence[int]]) -> int:
        """FLOPs of the path with these per-stage choices."""
        total = self.fixed
        for s, stage in enumerate(stages):
            for i, c in enumerate(stage):
                total += self.choices[s][i][c]
        return total

    def layer_matrix(self) -> torch.Tensor:
        """[layers, 6] int64: FLOPs of each choice at each layer, in network order."""
        return torch.tensor([row for stage in self.choices for row in stage], dtype=torch.int64)

    def bounds(self) -> tuple[int, int]:
        """(cheapest, dearest) path FLOPs: the table is additive, so per-layer min / max."""
        m = self.layer_matrix()
        return self.fixed + int(m.min(1).values.sum()), self.fixed + int(m.max(1).values.sum())


def _count(module: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """FLOPs of one forward of ``module`` on ``x``, and its output."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        y = module(x)
    return int(counter.get_total_flops()), y


@torch.no_grad()
def measure_flops_table(supernet: CreamSupernet) -> FlopsTable:
    """Count every block of ``supernet`` once on its real input shape (batch 1, eval mode)."""
    t0 = time.perf_counter()
    space = supernet.space
    was_training = supernet.training
    supernet.eval()
    try:
        x = torch.zeros(1, space.in_channels, space.image_size, space.image_size)
        x = x.to(next(supernet.parameters()).device)
        fixed, x = _count(supernet.stem, x)
        flops, x = _count(supernet.blocks[0][0][0], x)
        fixed += flops
        stages = []
        for stage in supernet.blocks[1:-1]:
            rows = []
            for layer in stage:
                row, outs = [], []
                for block in layer:
                    flops, y = _count(block, x)
                    row.append(flops)
                    outs.append(y)
                rows.append(tuple(row))
                x = outs[0]  # every candidate maps to the same shape; any output feeds the next
            stages.append(tuple(rows))
        flops, x = _count(supernet.blocks[-1][0][0], x)
        fixed += flops
        flops, _ = _count(supernet.head, x)
        fixed += flops
    finally:
        supernet.train(was_training)
    return FlopsTable(fixed=fixed, choices=tuple(stages), seconds=time.perf_counter() - t0)


@functools.lru_cache(maxsize=32)
def _cached_table(space: CreamSpace) -> FlopsTable:
    with torch.random.fork_rng(devices=[]):  # building a supernet must not move the user's RNG
        return measure_flops_table(CreamSupernet(space))


# ------------------------------------------------------------------------ the official layout


@functools.lru_cache(maxsize=1)
def _layout_table() -> tuple[tuple[float, float, float], ...]:
    """Per stage at 224 px, width 1 (millions of multiply-adds, measured): (first layer with the
    cheapest choice, first layer with the dearest, one more layer with the dearest)."""
    table = CreamSpace(depths=(2, 2, 2, 2, 2), image_size=224).table()
    first_cheap = [stage[0][0] / 2e6 for stage in table.choices]
    first_dear = [stage[0][-1] / 2e6 for stage in table.choices]
    extra_dear = [stage[1][-1] / 2e6 for stage in table.choices]
    return tuple(zip(first_cheap, first_dear, extra_dear, strict=True))


def official_layout(flops_min: float, flops_max: float) -> tuple[tuple[int, ...], int]:
    """Layers per stage and resolution for a FLOPs range, by the official rule (module docstring)."""
    lo, hi = _check_range((flops_min, flops_max))
    table = _layout_table()
    entries = [1] * len(STAGE_CHANNELS)
    size_factor = 224 // 32
    base_min = sum(t[0] for t in table)
    base_max = sum(t[1] for t in table)
    if base_min > hi:
        # too small even at 224 px: step the resolution down, relaxing the range by 7/size per
        # step (cumulative, like the official code)
        while base_min > hi and size_factor >= 2:
            size_factor -= 1
            lo *= 7.0 / size_factor
            hi *= 7.0 / size_factor
        if size_factor < 2:
            raise ValueError(
                f"the FLOPs range {flops_min:g}-{flops_max:g}M multiply-adds is below the "
                f"cheapest official Cream layout at any resolution down to 64 px"
            )
    elif base_max < lo:
        # too large with one layer per stage: add layers until the dearest path reaches the minimum
        ptr = 0
        while base_max < lo and ptr < len(_LAYOUT_ORDER):
            stage = _LAYOUT_ORDER[ptr]
            if entries[stage] >= _LAYOUT_LIMITS[ptr]:
                ptr += 1
                continue
            base_max += table[stage][2]
            entries[stage] += 1
        if base_max < lo:
            raise ValueError(
                f"the FLOPs range {flops_min:g}-{flops_max:g}M multiply-adds is above what the "
                f"official Cream supernet layout reaches (about {base_max:.0f}M in the blocks)"
            )
    ptr = 0
    while ptr < len(_LAYOUT_ORDER):
        stage = _LAYOUT_ORDER[ptr]
        if entries[stage] >= _LAYOUT_LIMITS[ptr]:
            ptr += 1
            continue
        base_max += table[stage][2]
        if base_max > hi:
            break
        entries[stage] += 1
    depths = tuple(sum(_REPEATS[s][:n]) for s, n in enumerate(entries))
    return depths, size_factor * 32


# ------------------------------------------------------------------------------- the path


def _as_int(c: Any) -> Any:
    """numpy/torch integers become int; anything else stays as it is for validate() to name."""
    if not isinstance(c, (bool, int)) and hasattr(c, "__index__"):
        return int(c.__index__())
    return c


def _stage_name(s: int) -> str:
    return f"stage {s + 1} ({STAGE_CHANNELS[s]} ch)"


@architectures.register
@dataclass(frozen=True)
class CreamPath:
    """One Cream architecture: a choice index (``CHOICES``) per layer of each searchable stage.

    ``stages[s][i]`` is the block of layer ``i`` of stage ``s`` (0 = k3e4 ... 5 = k7e6);
    ``resolution`` the input size it is meant for (the released models: 64-224 px).
    """

    kind: ClassVar[str] = "cream"

    stages: tuple[tuple[int, ...], ...]
    resolution: int = 224

    def __post_init__(self) -> None:
        try:
            stages = tuple(tuple(_as_int(c) for c in stage) for stage in self.stages)
        except TypeError as exc:
            raise ValueError(
                f"a Cream path's stages must be lists of choice indices, got {self.stages!r}"
            ) from exc
        object.__setattr__(self, "stages", stages)

    @property
    def depths(self) -> tuple[int, ...]:
        """Layers per stage."""
        return tuple(len(stage) for stage in self.stages)

    def choice_names(self) -> list[list[str]]:
        """The blocks by name ('k5e6'), per stage."""
        return [[CHOICE_NAMES[c] for c in stage] for stage in self.stages]

    def validate(self) -> None:
        """ValueError naming the stage/layer whose choice is not one of the six blocks."""
        if len(self.stages) != len(STAGE_CHANNELS):
            raise ValueError(
                f"a Cream path has {len(STAGE_CHANNELS)} searchable stages "
                f"({', '.join(map(str, STAGE_CHANNELS))} channels), got {len(self.stages)}"
            )
        for s, stage in enumerate(self.stages):
            if not stage:
                raise ValueError(f"{_stage_name(s)} of the path has no layer")
            for i, c in enumerate(stage):
                if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(CHOICES):
                    raise ValueError(
                        f"{_stage_name(s)}, layer {i + 1}: choice {c!r} is not allowed; each layer "
                        f"takes 0..{len(CHOICES) - 1} ({', '.join(CHOICE_NAMES)})"
                    )
        r = self.resolution
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"a Cream path's resolution must be a positive integer, got {r!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"kind": "cream", "stages": [[...], ...], "resolution": 224}``."""
        return {
            "kind": self.kind,
            "stages": [list(stage) for stage in self.stages],
            "resolution": self.resolution,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CreamPath:
        """Build and validate a path from its JSON dict.

        ``stages`` may also be the official 7-list form with the fixed first and last ``[0]``.
        """
        if not isinstance(d, dict):
            raise ValueError(f"a Cream path must be a JSON object, got {type(d).__name__}")
        if d.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"this is a {d.get('kind')!r} architecture, not a Cream path")
        if "stages" not in d:
            raise ValueError("a Cream path needs the key 'stages' (a list of 5 lists of choices)")
        stages = d["stages"]
        if not isinstance(stages, list) or not all(isinstance(s, list) for s in stages):
            raise ValueError(f"a Cream path's 'stages' must be a list of lists, got {stages!r}")
        if len(stages) == len(STAGE_CHANNELS) + 2 and stages[0] == [0] and stages[-1] == [0]:
            stages = stages[1:-1]  # the official arch_list with its fixed first/last blocks
        path = cls(stages=tuple(tuple(s) for s in stages), resolution=d.get("resolution", 224))
        path.validate()
        return path

    def space(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: int | None = None,
        width: float = 1.0,
    ) -> CreamSpace:
        """The space with exactly this path's layers per stage (for FLOPs and building)."""
        return CreamSpace(
            depths=self.depths,
            image_size=self.resolution if image_size is None else image_size,
            width=width,
            in_channels=in_channels,
            num_classes=num_classes,
        )

    def flops(self, **space_kw: Any) -> int:
        """FLOPs (2 per multiply-add) at the path's resolution on ImageNet, or per ``space_kw``."""
        return self.space(**space_kw).flops(self)

    def madds(self, **space_kw: Any) -> float:
        """Millions of multiply-adds (the unit of the paper and of the names cream_14m ...)."""
        return self.flops(**space_kw) / 2e6

    def build_network(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool = True,
        dropout: float = 0.2,
    ) -> CreamNetwork:
        """The standalone child network; ``C`` = stem width (16 = paper; sets the width multiplier).

        Strides follow ``image_size`` (module docstring); ``layers`` must stay None (a path fixes
        its depth); ``auxiliary`` is ignored (no auxiliary head: forward returns (logits, None)).
        ``dropout`` before the classifier: 0.2 as in the official retraining.
        """
        self.validate()
        if layers is not None:
            raise ValueError(
                f"a Cream path fixes its own depth ({list(self.depths)} layers per stage); "
                f"layers={layers} cannot change it"
            )
        if C is not None and (isinstance(C, bool) or not isinstance(C, int) or C < 1):
            raise ValueError(f"C (the stem width) must be a positive integer, got {C!r}")
        width = 1.0 if C is None else C / STEM_CHANNELS
        space = self.space(
            num_classes=num_classes, in_channels=in_channels, image_size=image_size, width=width
        )
        return CreamNetwork(self, space, dropout=dropout)

    def reference_networks(self) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        """The network `nasviz info` reports: ImageNet, 1000 classes, at the path's resolution.

        A path searched on small images (the 8 px digits of quick mode) is reported at ImageNet
        scale, 224 px: at 8 px an ImageNet network means nothing.
        """
        r = self.resolution if self.resolution >= MIN_IMAGENET_RESOLUTION else 224
        net = self.build_network(num_classes=1000, image_size=r)
        note = "" if r == self.resolution else f"; searched at {self.resolution} px"
        return [(f"ImageNet at {r} px (1000 classes{note})", net, (1, 3, r, r))]

    def graph(self, title: str | None = None) -> Any:
        """A block diagram per layer (kernel, expansion, channels, stride), with graphviz."""
        from nasviz.viz.cream import path_graph

        return path_graph(self, title=title)

    @classmethod
    def builtin_names(cls) -> list[str]:
        """The released Cream models."""
        return list(RELEASED)

    @classmethod
    def builtin(cls, name: str) -> CreamPath | None:
        """A released model by name (e.g. 'cream_287m'), or None if the name is not one."""
        key = str(name).strip().lower().replace("-", "_")
        if key.startswith("cream_") and not key.endswith("m"):
            key += "m"
        return RELEASED.get(key)


def _released(stages: list[list[int]], resolution: int) -> CreamPath:
    path = CreamPath(stages=tuple(tuple(s) for s in stages), resolution=resolution)
    path.validate()
    return path


#: The released models, at their resolutions, as the official code builds them. The official
#: retrain/test scripts list choice 3 (k5e6) for every single-layer stage, but its gen_childnet
#: skips the choice of any stage with one layer and builds that stage's default arch-string block
#: instead (24 ch: k3e4, 40: k5e4, 80: k3e6, 96: k3e6, 192: k5e6); the released checkpoints have
#: those blocks, so the paths below record them (e.g. cream_14m's 24- and 96-channel stages).
RELEASED: dict[str, CreamPath] = {
    "cream_14m": _released([[0], [3, 3], [3, 3], [1], [3]], 64),
    "cream_43m": _released([[0], [3, 1], [3, 1], [3, 3, 3], [3, 3]], 96),
    "cream_114m": _released([[0], [3, 3], [3, 3], [3, 3, 3], [3, 3]], 160),
    "cream_287m": _released([[0], [3, 3], [3, 1, 3], [3, 3, 3, 3], [3, 3, 3]], 224),
    "cream_481m": _released(
        [[3, 4, 3, 1], [3, 2, 3, 0], [3, 3, 3, 1, 1], [3, 3, 3, 3], [3, 3, 3, 3]], 224
    ),
    "cream_604m": _released(
        [[3, 3, 2, 3, 3], [3, 2, 3, 2, 3], [3, 2, 3, 2, 3], [3, 3, 2, 2, 3, 3], [3, 3, 2, 3, 3, 3]],
        224,
    ),
}

#: The official child networks' parameter counts and names' FLOPs (millions of multiply-adds, the
#: official counter's convention), for reports such as `nasviz info`. The parameter counts were
#: read by building each model with the official code (tests/test_spaces_cream.py says how).
OFFICIAL_COUNTS: dict[str, tuple[int, int]] = {
    "cream_14m": (2_673_096, 14),
    "cream_43m": (4_398_600, 43),
    "cream_114m": (4_410_120, 114),
    "cream_287m": (6_044_368, 287),
    "cream_481m": (7_713_360, 481),
    "cream_604m": (9_695_624, 604),
}
