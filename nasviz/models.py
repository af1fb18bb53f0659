"""Evaluation networks built from a genotype (CIFAR and ImageNet mobile stems), with drop path.

`NetworkCIFAR(36, 10, 20, True, get("darts_v2"))` is the DARTS evaluation network: 3,349,342
parameters without the auxiliary head, exactly as the official code counts them.

Both networks validate their genotype and refuse a degenerate one (a cell whose output no input
reaches through a real op, `nasviz.genotypes.degenerate_cells`) unless ``allow_degenerate=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.genotypes import Genotype, check_not_degenerate, resolve
from nasviz.spaces.operations import FactorizedReduce, Identity, ReLUConvBN, make_op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability drop_prob and rescale the rest (per-op drop path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class Cell(nn.Module):
    """A discrete cell: each node sums its genotype edges; output = concat of the concat states.

    Handles both genotype forms: two edges per node (DARTS) and all edges per node (SNAS
    edge-all), where 'none' edges vanish and a node without live edges outputs zeros.
    """

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        cell = "reduce" if reduction else "normal"
        self.concat = list(genotype.concat(cell))
        self.multiplier = len(self.concat)
        # Per node: the input state of each live edge; ops in one flat ModuleList.
        self.node_inputs: list[list[int]] = []
        self.ops = nn.ModuleList()
        for node in genotype.nodes(cell):
            live = [(op, j) for op, j in node if op != "none"]
            self.node_inputs.append([j for _, j in live])
            for op, j in live:
                self.ops.append(make_op(op, C, 2 if reduction and j < 2 else 1))
        self.stride = 2 if reduction else 1

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        k = 0
        for inputs in self.node_inputs:
            node = None
            for j in inputs:
                op = self.ops[k]
                k += 1
                h = op(states[j])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node = h if node is None else node + h
            if node is None:  # every edge chose 'none': the node disappears (zeros)
                ref = states[1][:, :, :: self.stride, :: self.stride]
                node = torch.zeros_like(ref)
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


def _checked(genotype: Genotype | str, allow_degenerate: bool) -> Genotype:
    """Resolve and validate a genotype before any layer is built (size, ops, degeneracy)."""
    genotype = resolve(genotype)
    genotype.validate()  # a Genotype made in code has not been validated yet
    if not allow_degenerate:
        check_not_degenerate(genotype)
    return genotype


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier after cell 2*layers//3 (expects 8x8 maps on CIFAR)."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # 8x8 -> 2x2 as the paper (avg pool 5, stride 3); smaller inputs (8x8 digits) pool to 2x2.
        if x.shape[-1] >= 5:
            x = F.avg_pool2d(F.relu(x), 5, stride=3, padding=0, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(F.relu(x), 2)
        x = self.features[1:](x)
        return self.classifier(x.flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """Auxiliary classifier of the ImageNet network (expects 14x14 maps)."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class _Network(nn.Module):
    """Cells stacked after a stem; subclasses build the stem and choose the auxiliary head."""

    drop_path_prob: float = 0.0

    def _build_cells(
        self,
        genotype: Genotype,
        C: int,
        layers: int,
        C_stem: int,
        reduction_prev: bool,
        num_classes: int,
    ) -> int:
        C_prev_prev, C_prev, C_curr = C_stem, C_stem, C
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3
        aux_channels = C_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = Cell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.aux_index:
                aux_channels = C_prev
        self.classifier = nn.Linear(C_prev, num_classes)
        return aux_channels

    def _run_cells(
        self, s0: torch.Tensor, s1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
        return logits, logits_aux

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or None); the auxiliary head runs only in training mode."""
        s0, s1 = self.stem_forward(x)
        return self._run_cells(s0, s1)

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class NetworkCIFAR(_Network):
    """DARTS CIFAR evaluation network: 3x3 stem to 3C, `layers` cells, optional auxiliary head."""

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        genotype: Genotype | str,
        in_channels: int = 3,
        stem_multiplier: int = 3,
        *,
        allow_degenerate: bool = False,
    ):
        super().__init__()
        genotype = _checked(genotype, allow_degenerate)
        self.genotype = genotype
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem)
        )
        aux_c = self._build_cells(genotype, C, layers, C_stem, False, num_classes)
        self.auxiliary_head = AuxiliaryHeadCIFAR(aux_c, num_classes) if auxiliary else None

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class NetworkImageNet(_Network):
    """ImageNet mobile-setting network: two stride-2 stems (224 px -> 28 px), then cells."""

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        genotype: Genotype | str,
        in_channels: int = 3,
        *,
        allow_degenerate: bool = False,
    ):
        super().__init__()
        genotype = _checked(genotype, allow_degenerate)
        self.genotype = genotype
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        aux_c = self._build_cells(genotype, C, layers, C, True, num_classes)
        self.auxiliary_head = AuxiliaryHeadImageNet(aux_c, num_classes) if auxiliary else None

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
