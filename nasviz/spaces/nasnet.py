"""The NASNet block-cell space (Zoph et al. 2018): its 13 ops, the cell, NASNet-A, the networks.

A cell reads two hidden states, h_{i-1} (state 0) and h_i (state 1), and builds B = 5 blocks.
Block b picks two hidden states among the cell inputs and the blocks before it (states
0 .. b+1; state j >= 2 is block j-2), applies one op to each and combines the two results (add,
or concat as an option). The hidden states no block reads are concatenated as the cell output. In
a reduction cell the ops that read a cell input have stride 2.

Everything not fixed by the paper follows the TensorFlow model (tensorflow/models,
research/slim/nets/nasnet), which the published parameter counts come from:

* h_i goes through ReLU-1x1-BN to the cell's filters C; h_{i-1} is brought to C and h_i's size by
  ReLU + factorized reduction when its spatial size differs, by ReLU-1x1-BN when only its channels
  differ, and used as it is otherwise (the first cell has no h_{i-1}: it reads its input twice,
  raw);
* every op maps its input's channels to C: convolutions directly, pooling and identity through a
  1x1 conv + BN when the channels (or, for identity, the stride) require it;
* a concatenated cell input is brought to the output's size by factorized reduction (channels by a
  1x1 conv) as the TF code's ``_combine_unused_states`` does;
* drop path acts on every op output except identity, with ScheduledDropPath's probability
  (`scheduled_drop_path_prob`);
* networks: the CIFAR stem (3x3 conv to 3C) or the ImageNet stem (3x3 stride-2 conv, then two
  stride-2 reduction cells at C/4 and C/2), then 3 stages of N normal cells with a reduction cell
  before stages 2 and 3 (filters doubling), an auxiliary head before the second reduction.

The TF model's NASNet-A also concatenates h_{i-1} into the normal cell's output and block 1 into the
reduction cell's output although blocks read them (its hand-written ``used_hiddenstates``); the
genotype says so with an explicit ``normal_concat`` / ``reduce_concat`` (None = the paper's rule).
With that, ``NasnetGenotype.builtin("nasnet_a")`` gives exactly the reference parameter counts
(tests/test_spaces_nasnet.py): CIFAR-10 3,346,538, Mobile 5,289,978, Large 88,753,150.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasviz import architectures
from nasviz.models import drop_path
from nasviz.spaces.operations import DilConv, FactorizedReduce, ReLUConvBN

#: The paper's 13 operations, in the controller's softmax order.
OPS: tuple[str, ...] = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)

#: How a block combines its two op outputs (the paper's step 5).
COMBINES: tuple[str, ...] = ("add", "concat")

CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

NUM_BLOCKS = 5


# ============================================================================ the 13 operations
class FactorizedConv(nn.Sequential):
    """ReLU -> 1xk conv -> kx1 conv -> BN (the paper's '1x3 then 3x1', '1x7 then 7x1')."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False),
            nn.Conv2d(C_out, C_out, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False),
            nn.BatchNorm2d(C_out),
        )


class SepConv(nn.Sequential):
    """The TF model's ``separable_kxk_2``: two (ReLU, depthwise kxk, 1x1, BN), the first strides.

    Unlike DARTS' sep_conv (operations.SepConv keeps C_in in its first half) the first layer
    already maps C_in to C_out, as slim.separable_conv2d(net, filter_size, ...) does.
    """

    def __init__(self, C_in: int, C_out: int, k: int, stride: int):
        super().__init__(
            DilConv(C_in, C_out, k, stride, k // 2, 1),
            DilConv(C_out, C_out, k, 1, k // 2, 1),
        )


class Pool(nn.Sequential):
    """kxk max or average pool (SAME padding, the average excludes it); 1x1 conv + BN if C changes."""

    def __init__(self, kind: str, k: int, C_in: int, C_out: int, stride: int):
        pool: nn.Module
        if kind == "avg":
            pool = nn.AvgPool2d(k, stride=stride, padding=k // 2, count_include_pad=False)
        else:
            pool = nn.MaxPool2d(k, stride=stride, padding=k // 2)
        layers = [pool]
        if C_in != C_out:  # the TF model projects after pooling, without a ReLU
            layers += [nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out)]
        super().__init__(*layers)


def make_op(name: str, C_in: int, C_out: int, stride: int) -> nn.Module:
    """Build NASNet op ``name`` from C_in to C_out channels; unknown names list the 13 ops."""
    if name == "identity":
        if stride == 1 and C_in == C_out:
            return nn.Identity()
        return ReLUConvBN(C_in, C_out, 1, stride, 0)  # the TF model's strided/projecting 'none'
    if name in ("conv_1x3_3x1", "conv_1x7_7x1"):
        return FactorizedConv(C_in, C_out, 3 if name == "conv_1x3_3x1" else 7, stride)
    if name == "dil_conv_3x3":  # a full 3x3 conv, dilation 2 (separable convs are separate ops)
        return nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, 3, stride=stride, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(C_out),
        )
    if name in ("avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7"):
        return Pool(name[:3], int(name[-1]), C_in, C_out, stride)
    if name in ("conv_1x1", "conv_3x3"):
        k = int(name[-1])
        return ReLUConvBN(C_in, C_out, k, stride, k // 2)
    if name in ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"):
        return SepConv(C_in, C_out, int(name[-1]), stride)
    raise ValueError(f"unknown NASNet op {name!r}; the 13 ops are: {', '.join(OPS)}")


def combine_reduction(C_in: int, C_out: int, stride: int) -> nn.Module:
    """The TF ``factorized_reduction`` of a concatenated cell input (no ReLU, unlike preprocessing)."""
    if stride == 1:
        if C_in == C_out:
            return nn.Identity()
        return nn.Sequential(nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out))
    fr = FactorizedReduce(C_in, C_out)
    fr.relu = nn.Identity()
    return fr


# ============================================================================ the genotype
@dataclass(frozen=True)
class Block:
    """One block: two hidden-state indices, an op for each, and how the two results combine."""

    inputs: tuple[int, int]
    ops: tuple[str, str]
    combine: str = "add"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "ops", tuple(self.ops))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"inputs": list(self.inputs), "ops": list(self.ops), "combine": self.combine}


def state_name(j: int) -> str:
    """Paper name of a hidden state: 0 -> 'h_{i-1}', 1 -> 'h_i', j >= 2 -> 'block j-2'."""
    return {0: "h_{i-1}", 1: "h_i"}.get(j, f"block {j - 2}")


@architectures.register
@dataclass(frozen=True)
class NasnetGenotype:
    """A NASNet normal and reduction cell: blocks, plus optional explicit output concats."""

    kind: ClassVar[str] = "nasnet"

    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]
    normal_concat: tuple[int, ...] | None = None  # None: the states no block reads (the paper)
    reduce_concat: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for cell in CELL_TYPES:
            blocks = tuple(b if isinstance(b, Block) else Block(**b) for b in getattr(self, cell))
            object.__setattr__(self, cell, blocks)
            concat = getattr(self, f"{cell}_concat")
            if concat is not None:
                object.__setattr__(self, f"{cell}_concat", tuple(concat))

    # ------------------------------------------------------------------ structure
    def blocks(self, cell: str) -> tuple[Block, ...]:
        """The blocks of ``cell`` ('normal' or 'reduce')."""
        _check_cell(cell)
        return getattr(self, cell)

    def concat(self, cell: str) -> tuple[int, ...]:
        """The hidden states concatenated into the output of ``cell``."""
        _check_cell(cell)
        explicit = getattr(self, f"{cell}_concat")
        if explicit is not None:
            return explicit
        blocks = self.blocks(cell)
        used = {j for b in blocks for j in b.inputs}
        return tuple(j for j in range(2, len(blocks) + 2) if j not in used)

    def ops(self) -> set[str]:
        """Every op name the genotype uses."""
        return {op for cell in CELL_TYPES for b in self.blocks(cell) for op in b.ops}

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``"kind": "nasnet"``."""
        d: dict[str, Any] = {"kind": self.kind}
        for cell in CELL_TYPES:
            d[cell] = [b.to_dict() for b in self.blocks(cell)]
            concat = getattr(self, f"{cell}_concat")
            if concat is not None:
                d[f"{cell}_concat"] = list(concat)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> NasnetGenotype:
        """Build and validate a NASNet genotype from its JSON dict; errors name the bad part."""
        if not isinstance(d, dict):
            raise ValueError(f"a NASNet genotype must be a JSON object, got {type(d).__name__}")
        kind = d.get("kind")
        if kind != cls.kind and (kind is not None or _looks_darts(d)):
            raise ValueError(
                f"this is a {kind or 'darts'!r} architecture (DARTS-style [op, input] edges), not a "
                "NASNet genotype (kind 'nasnet', blocks of {inputs, ops, combine}); use "
                "nasviz.architectures.from_dict for any kind"
            )
        missing = [k for k in CELL_TYPES if k not in d]
        if missing:
            raise ValueError(f"NASNet genotype is missing the key(s) {missing}")
        unknown = set(d) - {"kind", *CELL_TYPES, "normal_concat", "reduce_concat"}
        if unknown:
            raise ValueError(f"NASNet genotype has unknown key(s) {sorted(unknown)}")
        cells: dict[str, list[Block]] = {}
        for cell in CELL_TYPES:
            raw = d[cell]
            if not isinstance(raw, (list, tuple)) or not raw:
                raise ValueError(f"{cell} must be a non-empty list of blocks")
            cells[cell] = [_parse_block(cell, n, b) for n, b in enumerate(raw)]
        concats = {}
        for cell in CELL_TYPES:
            c = d.get(f"{cell}_concat")
            if c is not None and (
                not isinstance(c, (list, tuple))
                or any(isinstance(j, bool) or not isinstance(j, int) for j in c)
            ):
                raise ValueError(f"{cell}_concat must be a list of state indices, got {c!r}")
            concats[cell] = c
        g = cls(
            normal=tuple(cells["normal"]),
            reduce=tuple(cells["reduce"]),
            normal_concat=concats["normal"],
            reduce_concat=concats["reduce"],
        )
        g.validate()
        return g

    def validate(self) -> None:
        """Raise ValueError naming an unknown op or combine, or an input that is a later block."""
        for cell in CELL_TYPES:
            blocks = self.blocks(cell)
            if not blocks:
                raise ValueError(f"{cell} cell has no blocks")
            for b, block in enumerate(blocks):
                where = f"{cell} cell, block {b}"
                if len(block.inputs) != 2 or len(block.ops) != 2:
                    raise ValueError(f"{where}: a block has exactly two inputs and two ops")
                for op in block.ops:
                    if op not in OPS:
                        raise ValueError(
                            f"{where}: unknown op {op!r}; the 13 NASNet ops are: {', '.join(OPS)}"
                        )
                if block.combine not in COMBINES:
                    raise ValueError(
                        f"{where}: unknown combine {block.combine!r}; allowed: {', '.join(COMBINES)}"
                    )
                for j in block.inputs:
                    if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < b + 2:
                        later = isinstance(j, int) and j >= b + 2
                        what = f"block {j - 2}, which is not built yet" if later else "no state"
                        raise ValueError(
                            f"{where}: input {j!r} is {what}; block {b} can read states "
                            f"0..{b + 1} (0 = h_{{i-1}}, 1 = h_i, j >= 2 = block j-2)"
                        )
            concat = self.concat(cell)
            if not concat:
                raise ValueError(f"{cell} cell: no hidden state is left for the output concat")
            for j in concat:
                if not 0 <= j < len(blocks) + 2:
                    raise ValueError(
                        f"{cell}_concat: state {j} does not exist; states are 0..{len(blocks) + 1}"
                    )
            if len(set(concat)) != len(concat):
                raise ValueError(f"{cell}_concat repeats a state: {list(concat)}")

    # ------------------------------------------------------------------ the protocol
    def build_network(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool = True,
        preset: str | None = None,
    ) -> NasnetNetwork:
        """The evaluation network: CIFAR config below 128 px, Mobile from 128, Large from 300.

        ``C`` = filters (32 / 44 / 168), ``layers`` = N normal cells per stage (6 / 4 / 6);
        ``preset`` ('cifar', 'mobile', 'large') picks the stem and config explicitly.
        """
        if preset is None:
            preset = "cifar" if image_size < 128 else ("mobile" if image_size < 300 else "large")
        cfg = network_preset(preset)
        if C is not None or layers is not None:
            cfg = dataclasses.replace(cfg, C=C or cfg.C, N=layers or cfg.N)
        return NasnetNetwork(self, cfg, num_classes, in_channels, image_size, auxiliary)

    def reference_networks(self) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        """The networks `nasviz info` reports: CIFAR-10, Mobile and Large ImageNet configs."""
        nets = []
        for preset, classes, size, text in (
            ("cifar", 10, 32, "CIFAR-10 (N=6, 32 filters, 10 classes)"),
            ("mobile", 1000, 224, "Mobile ImageNet (N=4, 44 filters, 224 px, 1000 classes)"),
            ("large", 1000, 331, "Large ImageNet (N=6, 168 filters, 331 px, 1000 classes)"),
        ):
            net = self.build_network(num_classes=classes, image_size=size, preset=preset)
            nets.append((text, net, (1, 3, size, size)))
        return nets

    def graph(self, title: str | None = None) -> Any:
        """Both cells as graphviz block diagrams (blocks, their two ops, the combine node)."""
        from nasviz.viz.nasnet import nasnet_graph

        return nasnet_graph(self, title=title)

    @classmethod
    def builtin_names(cls) -> list[str]:
        """Names of the built-in NASNet genotypes."""
        return list(_BUILTIN)

    @classmethod
    def builtin(cls, name: str) -> NasnetGenotype | None:
        """A built-in NASNet genotype by name (case-insensitive), or None."""
        return _BUILTIN.get(str(name).strip().lower().replace("-", "_"))


def _check_cell(cell: str) -> None:
    if cell not in CELL_TYPES:
        raise ValueError(f"unknown cell type {cell!r}; expected one of {list(CELL_TYPES)}")


def _looks_darts(d: dict[str, Any]) -> bool:
    """True for a DARTS genotype dict: cells as [op, input] pairs."""
    cell = d.get("normal")
    return isinstance(cell, list) and any(isinstance(e, (list, tuple)) for e in cell)


def _parse_block(cell: str, n: int, raw: Any) -> Block:
    where = f"{cell} cell, block {n}"
    if not isinstance(raw, dict) or not {"inputs", "ops"} <= set(raw):
        raise ValueError(f"{where}: {raw!r} is not a block {{inputs: [i, j], ops: [a, b]}}")
    extra = set(raw) - {"inputs", "ops", "combine"}
    if extra:
        raise ValueError(f"{where}: unknown key(s) {sorted(extra)}")
    inputs, ops = raw["inputs"], raw["ops"]
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        raise ValueError(f"{where}: inputs must be two state indices, got {inputs!r}")
    if any(isinstance(j, bool) or not isinstance(j, int) for j in inputs):
        raise ValueError(f"{where}: inputs must be integers, got {inputs!r}")
    if (
        not isinstance(ops, (list, tuple))
        or len(ops) != 2
        or not all(isinstance(o, str) for o in ops)
    ):
        raise ValueError(f"{where}: ops must be two op names, got {ops!r}")
    return Block(tuple(inputs), tuple(ops), raw.get("combine", "add"))


def _nasnet_a() -> NasnetGenotype:
    """NASNet-A (paper Fig. 4) as the TF model defines it (NasNetANormalCell/ReductionCell).

    The TF lists number h_i as 0 and h_{i-1} as 1; here 0 = h_{i-1}, 1 = h_i (as in DARTS).
    Its 'none' is the identity; its used_hiddenstates give the explicit concats.
    """

    def blocks(spec: Sequence[tuple[int, str, int, str]]) -> tuple[Block, ...]:
        return tuple(Block((i, j), (a, b), "add") for i, a, j, b in spec)

    normal = blocks(
        [
            (1, "sep_conv_5x5", 0, "sep_conv_3x3"),
            (0, "sep_conv_5x5", 0, "sep_conv_3x3"),
            (1, "avg_pool_3x3", 0, "identity"),
            (0, "avg_pool_3x3", 0, "avg_pool_3x3"),
            (1, "sep_conv_3x3", 1, "identity"),
        ]
    )
    reduce = blocks(
        [
            (1, "sep_conv_5x5", 0, "sep_conv_7x7"),
            (1, "max_pool_3x3", 0, "sep_conv_7x7"),
            (1, "avg_pool_3x3", 0, "sep_conv_5x5"),
            (3, "identity", 2, "avg_pool_3x3"),
            (2, "sep_conv_3x3", 1, "max_pool_3x3"),
        ]
    )
    return NasnetGenotype(
        normal, reduce, normal_concat=(0, 2, 3, 4, 5, 6), reduce_concat=(3, 4, 5, 6)
    )


_BUILTIN: dict[str, NasnetGenotype] = {"nasnet_a": _nasnet_a()}


# ============================================================================ the space
@dataclass(frozen=True)
class Decision:
    """One controller decision: which cell and block, its type, its slot, how many choices."""

    cell: str
    block: int
    type: str  # 'input', 'op' or 'combine'
    slot: int  # 0 = the first (left) input/op, 1 = the second; 0 for combine
    num_choices: int

    @property
    def name(self) -> str:
        """E.g. 'normal b0 input 0', 'reduce b4 combine'."""
        tail = "" if self.type == "combine" else f" {self.slot}"
        return f"{self.cell} b{self.block} {self.type}{tail}"


@dataclass(frozen=True)
class NasnetSpace:
    """The block-cell search space: B blocks, the ops, the combines.

    The default is the paper's: 13 ops, add or concat, 2 x 5B = 50 decisions; ``combines=("add",)``
    is the add-only space NASNet-A lives in (40 decisions).
    """

    num_blocks: int = NUM_BLOCKS
    ops: tuple[str, ...] = OPS
    combines: tuple[str, ...] = COMBINES

    def __post_init__(self) -> None:
        if isinstance(self.num_blocks, bool) or not isinstance(self.num_blocks, int):
            raise ValueError(f"num_blocks must be a positive integer, got {self.num_blocks!r}")
        if self.num_blocks < 1:
            raise ValueError(f"num_blocks must be a positive integer, got {self.num_blocks}")
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "combines", tuple(self.combines))
        for op in self.ops:
            if op not in OPS:
                raise ValueError(f"unknown NASNet op {op!r}; the 13 ops are: {', '.join(OPS)}")
        if not self.ops or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be a non-empty list without repeats, got {self.ops}")
        if not self.combines or any(c not in COMBINES for c in self.combines):
            raise ValueError(f"combines must be among {COMBINES}, got {self.combines}")

    def decisions(self) -> list[Decision]:
        """Every decision in sampling order: per cell, per block: input, input, op, op (combine)."""
        out = []
        for cell in CELL_TYPES:
            for b in range(self.num_blocks):
                out += [Decision(cell, b, "input", s, b + 2) for s in (0, 1)]
                out += [Decision(cell, b, "op", s, len(self.ops)) for s in (0, 1)]
                if len(self.combines) > 1:
                    out.append(Decision(cell, b, "combine", 0, len(self.combines)))
        return out

    def size(self) -> int:
        """Number of distinct decision sequences (`space_size`)."""
        return space_size(self.num_blocks, len(self.ops), len(self.combines))

    def decode(self, actions: Sequence[int]) -> NasnetGenotype:
        """The genotype of one action sequence (ints, in `decisions` order)."""
        decisions = self.decisions()
        if len(actions) != len(decisions):
            raise ValueError(f"expected {len(decisions)} actions, got {len(actions)}")
        cells: dict[str, list[Block]] = {c: [] for c in CELL_TYPES}
        k = 0
        per_block = len(decisions) // (2 * self.num_blocks)
        for cell in CELL_TYPES:
            for _ in range(self.num_blocks):
                a = [int(x) for x in actions[k : k + per_block]]
                k += per_block
                combine = self.combines[a[4]] if per_block == 5 else self.combines[0]
                cells[cell].append(Block((a[0], a[1]), (self.ops[a[2]], self.ops[a[3]]), combine))
        g = NasnetGenotype(tuple(cells["normal"]), tuple(cells["reduce"]))
        g.validate()
        return g

    def encode(self, genotype: NasnetGenotype) -> list[int]:
        """The action sequence of a genotype of this space (inverse of `decode`)."""
        out = []
        for cell in CELL_TYPES:
            blocks = genotype.blocks(cell)
            if len(blocks) != self.num_blocks:
                raise ValueError(
                    f"{cell} cell has {len(blocks)} blocks, the space {self.num_blocks}"
                )
            for b, block in enumerate(blocks):
                for op in block.ops:
                    if op not in self.ops:
                        raise ValueError(f"{cell} block {b}: op {op!r} is not in this space")
                if block.combine not in self.combines:
                    raise ValueError(
                        f"{cell} block {b}: combine {block.combine!r} not in this space"
                    )
                out += [*block.inputs, *(self.ops.index(o) for o in block.ops)]
                if len(self.combines) > 1:
                    out.append(self.combines.index(block.combine))
        return out


def space_size(
    num_blocks: int = NUM_BLOCKS,
    num_ops: int = len(OPS),
    num_combines: int = len(COMBINES),
    num_cells: int = 2,
) -> int:
    """Distinct controller decision sequences: prod_b ((b+2)^2 * num_ops^2 * num_combines), per cell.

    Block b picks each of its two inputs among b+2 states and each of its two ops among num_ops;
    the left/right order counts (as the controller samples it), the concat rule is implied.
    """
    per_cell = 1
    for b in range(num_blocks):
        per_cell *= (b + 2) ** 2 * num_ops**2 * num_combines
    return per_cell**num_cells


# ============================================================================ ScheduledDropPath
def scheduled_drop_path_prob(
    cell_index: int, num_cells: int, progress: float, drop_path_keep_prob: float
) -> float:
    """ScheduledDropPath: drop probability of cell ``cell_index`` (0-based) at training ``progress``.

    As the TF model's ``_apply_drop_path`` (v3): keep = 1 - (cell+1)/num_cells * (1 - keep0), then
    keep = 1 - min(progress, 1) * (1 - keep); returns 1 - keep. keep0 = 0.6 on CIFAR, 0.7 Large.
    """
    if not 0 <= cell_index < num_cells:
        raise ValueError(f"cell_index must be in [0, {num_cells}), got {cell_index}")
    if not 0 < drop_path_keep_prob <= 1:
        raise ValueError(f"drop_path_keep_prob must be in (0, 1], got {drop_path_keep_prob}")
    if progress < 0:
        raise ValueError(f"progress must be >= 0, got {progress}")
    layer_ratio = (cell_index + 1) / num_cells
    keep = 1 - layer_ratio * (1 - drop_path_keep_prob)
    keep = 1 - min(progress, 1.0) * (1 - keep)
    return 1 - keep


# ============================================================================ the cell
@dataclass(frozen=True)
class _State:
    """What construction knows of a tensor: channels and how many times it was halved."""

    channels: int
    level: int


class NasnetCell(nn.Module):
    """A NASNet cell: preprocess h_{i-1} and h_i, run the blocks, concat the output states."""

    def __init__(
        self,
        genotype: NasnetGenotype,
        reduction: bool,
        C: int,
        prev: _State | None,
        curr: _State,
    ):
        super().__init__()
        cell = "reduce" if reduction else "normal"
        blocks = genotype.blocks(cell)
        self.reduction = reduction
        self.has_prev = prev is not None
        self.preprocess1 = ReLUConvBN(curr.channels, C, 1, 1, 0)
        states: list[_State]
        if (
            prev is None
        ):  # the first cell: h_{i-1} is the raw input (the TF model's prev_layer=None)
            self.preprocess0: nn.Module = nn.Identity()
            states = [curr, _State(C, curr.level)]
        elif prev.level != curr.level:
            self.preprocess0 = FactorizedReduce(prev.channels, C)  # ReLU + factorized reduction
            states = [_State(C, curr.level), _State(C, curr.level)]
        elif prev.channels != C:
            self.preprocess0 = ReLUConvBN(prev.channels, C, 1, 1, 0)
            states = [_State(C, curr.level), _State(C, curr.level)]
        else:
            self.preprocess0 = nn.Identity()
            states = [prev, _State(C, curr.level)]
        out_level = curr.level + (1 if reduction else 0)
        self.inputs: list[tuple[int, int]] = []
        self.combines: list[str] = []
        self.identity: list[bool] = []  # per op: no drop path after identity (the TF model)
        self.ops = nn.ModuleList()
        for block in blocks:
            for j, op in zip(block.inputs, block.ops, strict=True):
                stride = 2 if reduction and j < 2 else 1
                self.ops.append(make_op(op, states[j].channels, C, stride))
                self.identity.append(op == "identity")
            self.inputs.append(block.inputs)
            self.combines.append(block.combine)
            states.append(_State(C if block.combine == "add" else 2 * C, out_level))
        self.concat = list(genotype.concat(cell))
        self.out_reduce = nn.ModuleDict()
        for j in self.concat:
            s = states[j]
            if j < 2 and (s.level != out_level or s.channels != C):
                self.out_reduce[str(j)] = combine_reduction(
                    s.channels, C, 2 ** (out_level - s.level)
                )
        self.out = _State(
            sum(C if str(j) in self.out_reduce else states[j].channels for j in self.concat),
            out_level,
        )

    def forward(
        self, s0: torch.Tensor | None, s1: torch.Tensor, drop_prob: float = 0.0
    ) -> torch.Tensor:
        """[B, C_prev, H, W] inputs -> [B, out.channels, H', W'] (H' = H/2 in a reduction cell)."""
        h1 = self.preprocess1(s1)
        h0 = self.preprocess0(s0 if self.has_prev else s1)
        states = [h0, h1]
        k = 0
        for (i, j), combine in zip(self.inputs, self.combines, strict=True):
            outs = []
            for x in (states[i], states[j]):
                h = self.ops[k](x)
                if self.training and drop_prob > 0 and not self.identity[k]:
                    h = drop_path(h, drop_prob)
                outs.append(h)
                k += 1
            states.append(outs[0] + outs[1] if combine == "add" else torch.cat(outs, dim=1))
        out = []
        for j in self.concat:
            x = states[j]
            if str(j) in self.out_reduce:
                x = self.out_reduce[str(j)](x)
            out.append(x)
        return torch.cat(out, dim=1)


class AuxiliaryHead(nn.Module):
    """The TF auxiliary head: ReLU, 5x5 avg pool stride 3, 1x1 conv 128, conv to 768, FC."""

    def __init__(self, C_in: int, size: int, num_classes: int):
        super().__init__()
        # The second conv spans the whole pooled map (4x4 on CIFAR and Mobile, 6x6 on Large);
        # maps under 5 px (8x8 digits) skip the pool.
        self.pool = size >= 5
        k = (size - 5) // 3 + 1 if self.pool else size
        self.features = nn.Sequential(
            nn.Conv2d(C_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, k, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        if self.pool:
            x = F.avg_pool2d(x, 5, stride=3)
        return self.classifier(self.features(x).flatten(1))


# ============================================================================ the networks
@dataclass(frozen=True)
class NetworkConfig:
    """The TF model's hyperparameters of one evaluation network."""

    stem: str  # 'cifar' (3x3 conv) or 'imagenet' (3x3 stride-2 conv + two reduction stem cells)
    C: int  # num_conv_filters of the first stage
    N: int  # normal cells per stage
    stem_multiplier: float
    skip_reduction_layer_input: bool  # Large: the cell after a reduction reads the cell before it
    dropout: float  # before the classifier (1 - dense_dropout_keep_prob)
    drop_path_keep_prob: float  # ScheduledDropPath's keep0


NETWORK_PRESETS: dict[str, NetworkConfig] = {
    "cifar": NetworkConfig("cifar", 32, 6, 3.0, False, 0.0, 0.6),
    "mobile": NetworkConfig("imagenet", 44, 4, 1.0, False, 0.5, 1.0),
    "large": NetworkConfig("imagenet", 168, 6, 3.0, True, 0.5, 0.7),
}


def network_preset(name: str) -> NetworkConfig:
    """The TF model's 'cifar', 'mobile' or 'large' network config."""
    if name not in NETWORK_PRESETS:
        raise ValueError(f"unknown NASNet network {name!r}; known: {', '.join(NETWORK_PRESETS)}")
    return NETWORK_PRESETS[name]


class NasnetNetwork(nn.Module):
    """Stem, 3 stages of N normal cells with reduction cells between, auxiliary head, classifier.

    ``drop_path_prob`` is the drop probability of the last cell at the current training progress
    (`Retrainer` ramps it linearly to its final value ``1 - keep0``); cell k of K drops with
    ``drop_path_prob * (k+1)/K``, which is ScheduledDropPath (`scheduled_drop_path_prob`).
    """

    drop_path_prob: float = 0.0

    def __init__(
        self,
        genotype: NasnetGenotype,
        config: NetworkConfig,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        auxiliary: bool = True,
    ):
        super().__init__()
        if not isinstance(genotype, NasnetGenotype):
            raise ValueError(
                f"a NASNet network needs a NasnetGenotype (kind 'nasnet'), got "
                f"{type(genotype).__name__} (kind {getattr(genotype, 'kind', '?')!r})"
            )
        genotype.validate()
        for name in ("C", "N"):
            v = getattr(config, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.genotype, self.config = genotype, config
        C, N = config.C, config.N
        size = image_size
        self.cells = nn.ModuleList()
        if config.stem == "cifar":
            C_stem = int(C * config.stem_multiplier)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem)
            )
            outputs: list[_State | None] = [None, _State(C_stem, 0)]
        elif config.stem == "imagenet":
            C_stem = int(32 * config.stem_multiplier)
            self.stem = nn.Sequential(  # VALID padding: 224 -> 111, 331 -> 165
                nn.Conv2d(in_channels, C_stem, 3, stride=2, bias=False), nn.BatchNorm2d(C_stem)
            )
            size = (size - 3) // 2 + 1
            outputs = [None, _State(C_stem, 0)]
            for scaling in (4, 2):  # the stem cells are reduction cells at C/4 and C/2
                self._add_cell(True, C // scaling, outputs[-2], outputs)
        else:
            raise ValueError(f"unknown stem {config.stem!r}; use 'cifar' or 'imagenet'")
        self.prev_back: list[int] = [2] * len(self.cells)  # outputs[-2] feeds h_{i-1}
        filters = C
        self.aux_index = -1
        aux_state = None
        for stage in range(3):
            if stage > 0:
                filters *= 2
                self._add_cell(True, filters, outputs[-2], outputs)
                self.prev_back.append(2)
            for n in range(N):
                back = 3 if (stage > 0 and n == 0 and config.skip_reduction_layer_input) else 2
                self._add_cell(False, filters, outputs[-back], outputs)
                self.prev_back.append(back)
                if stage == 1 and n == N - 1:  # before the second reduction
                    self.aux_index, aux_state = len(self.cells) - 1, outputs[-1]
        self.auxiliary_head = None
        if auxiliary and aux_state is not None:
            aux_size = size
            for _ in range(aux_state.level):
                aux_size = math.ceil(aux_size / 2)
            self.auxiliary_head = AuxiliaryHead(aux_state.channels, aux_size, num_classes)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(outputs[-1].channels, num_classes)

    def _add_cell(
        self, reduction: bool, C: int, prev: _State | None, outputs: list[_State | None]
    ) -> None:
        cell = NasnetCell(self.genotype, reduction, C, prev, outputs[-1])
        self.cells.append(cell)
        outputs.append(cell.out)

    def set_drop_path(self, progress: float) -> None:
        """Set ScheduledDropPath for training ``progress`` in [0, 1] with the config's keep0."""
        self.drop_path_prob = scheduled_drop_path_prob(
            len(self.cells) - 1, len(self.cells), progress, self.config.drop_path_keep_prob
        )

    def cell_drop_prob(self, k: int) -> float:
        """Drop path probability of cell ``k`` now: it grows with depth (k+1)/K."""
        return self.drop_path_prob * (k + 1) / len(self.cells)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or None); the auxiliary head runs only in training mode."""
        outputs: list[torch.Tensor | None] = [None, self.stem(x)]
        logits_aux = None
        for k, cell in enumerate(self.cells):
            s = cell(outputs[-self.prev_back[k]], outputs[-1], self.cell_drop_prob(k))
            outputs = outputs[-2:] + [s]  # at most 3 back are read
            if k == self.aux_index and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s)
        out = F.adaptive_avg_pool2d(F.relu(outputs[-1]), 1).flatten(1)
        return self.classifier(self.dropout(out)), logits_aux
