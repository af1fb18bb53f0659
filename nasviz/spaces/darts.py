"""The DARTS cell search space: mixed edges, the search cell and the search supernet.

How the candidate ops on an edge are mixed is delegated to a `Mixing` strategy, so DARTS
(softmax), PC-DARTS (partial channels + edge normalization) and SNAS (Gumbel-softmax samples) are
one network with different mixing, not three copies:

    weights = mixing.op_weights(alpha)          # [edges, ops], one row per edge
    node_i  = sum_j edge_weight_j * edge_j(state_j, weights[j])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.genotypes import CELL_TYPES, PRIMITIVES
from nasviz.spaces.grouped import GroupedOps, GroupedReduce, family, groupable
from nasviz.spaces.operations import (
    FactorizedReduce,
    Identity,
    ReLUConvBN,
    SepConv,
    Zero,
    is_pool,
    make_op,
    starts_with_relu,
)


def edge_list(steps: int = 4) -> list[tuple[int, int]]:
    """(input state, node state) of every edge, in alpha-row order: 14 edges for 4 nodes."""
    return [(j, i + 2) for i in range(steps) for j in range(i + 2)]


def num_edges(steps: int = 4) -> int:
    """Number of edges of a cell with ``steps`` intermediate nodes (2 + 3 + ... = 14 for 4)."""
    return sum(2 + i for i in range(steps))


def normalize_edges(beta: torch.Tensor, steps: int) -> torch.Tensor:
    """PC-DARTS edge normalization: softmax of beta over each node's incoming edges -> [edges]."""
    parts, start = [], 0
    for i in range(steps):
        parts.append(F.softmax(beta[start : start + i + 2], dim=-1))
        start += i + 2
    return torch.cat(parts)


# ----------------------------------------------------------------------------------- edges
class MixedOp(nn.Module):
    """All candidate ops on one edge; output = sum_k w_k * op_k(x) (DARTS)."""

    def __init__(self, C: int, stride: int, primitives: Sequence[str] = PRIMITIVES):
        super().__init__()
        self.ops = nn.ModuleList()
        for name in primitives:
            op = make_op(name, C, stride, affine=False)
            if is_pool(name):
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self.ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = None
        for w, op in zip(weights, self.ops, strict=True):
            if isinstance(op, Zero):
                continue  # w * 0 adds nothing to the output nor to any gradient
            y = w * op(x)
            out = y if out is None else out + y
        return out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: [B, g*c, H, W] -> interleave the g groups."""
    if groups == 1:
        return x
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialMixedOp(MixedOp):
    """PC-DARTS edge: only the first C/K channels go through the mixed op, the rest bypass it.

    The bypass is max-pooled 2x2 on stride-2 edges; the two parts are concatenated and
    channel-shuffled with K groups, so a different channel subset is sampled at the next cell.
    """

    def __init__(self, C: int, stride: int, k: int, primitives: Sequence[str] = PRIMITIVES):
        super().__init__(C // k, stride, primitives)
        self.k = k
        self.c_part = C // k
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return super().forward(x, weights)
        x_part, x_bypass = x[:, : self.c_part], x[:, self.c_part :]
        mixed = super().forward(x_part, weights)
        if self.stride == 2:
            x_bypass = F.max_pool2d(x_bypass, 2, 2, ceil_mode=True)
        return channel_shuffle(torch.cat([mixed, x_bypass], dim=1), self.k)


# ----------------------------------------------------------------------------------- mixing
class Mixing:
    """How an edge mixes its ops: builds the edge modules and turns alphas into op weights."""

    name = "darts"
    uses_betas = False

    def make_edge(self, C: int, stride: int, primitives: Sequence[str]) -> nn.Module:
        """The module placed on every edge."""
        return MixedOp(C, stride, primitives)

    def init_alpha(
        self, shape: tuple[int, int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Initial architecture parameters: 1e-3 * N(0, 1) (DARTS)."""
        return 1e-3 * torch.randn(shape, generator=generator)

    def op_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        """Per-edge op weights used in the forward pass: softmax(alpha)."""
        return F.softmax(alpha, dim=-1)

    def probabilities(self, alpha: torch.Tensor) -> torch.Tensor:
        """The architecture distribution that is recorded and derived from."""
        return F.softmax(alpha, dim=-1)

    def check_config(self, config: SpaceConfig) -> None:
        """Raise ValueError if this mixing cannot run on a network of this shape."""


class PartialChannelMixing(Mixing):
    """PC-DARTS: partial channel connections (1/K of the channels) and optional edge normalization."""

    name = "pc-darts"

    def __init__(self, k: int = 4, edge_normalization: bool = True):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"K must be a positive integer, got {k!r}")
        self.k = k
        self.uses_betas = edge_normalization

    def make_edge(self, C: int, stride: int, primitives: Sequence[str]) -> nn.Module:
        return PartialMixedOp(C, stride, self.k, primitives)

    def check_config(self, config: SpaceConfig) -> None:
        valid = valid_k(config)
        if self.k not in valid:
            channels = sorted(set(SearchNetwork.edge_channels(config)))
            raise ValueError(
                f"K={self.k} does not divide the edge channel counts {channels} of this network "
                f"(C={config.C}); valid K: {valid}"
            )


def gumbel_softmax_sample(
    log_alpha: torch.Tensor, temperature: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One concrete (Gumbel-softmax) sample per row: Z = softmax((log_alpha + G) / temperature).

    G = -log(-log(U)), U ~ Uniform(0, 1), drawn from ``generator`` or torch's global RNG on
    log_alpha's device (so restoring the RNG state replays the same samples). The argmax of Z is
    distributed as softmax(log_alpha) (the Gumbel-max property); as temperature -> 0, Z -> one-hot.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    u = torch.rand(
        log_alpha.shape, generator=generator, device=log_alpha.device, dtype=log_alpha.dtype
    )
    gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))  # U=0 would give -inf
    return F.softmax((log_alpha + gumbel) / temperature, dim=-1)


class GumbelMixing(Mixing):
    """SNAS: an edge's op weights are a concrete sample Z ~ Gumbel-softmax(log_alpha, temperature).

    The network calls `op_weights` once per cell type per forward, so one sample Z is shared by
    all cells of a type (PAPERS.md). Evaluation (``model.eval()``) samples too, as SNAS evaluates
    its search network with sampled Z; `probabilities` is softmax(log_alpha), the distribution
    the one-hot architecture is drawn from. ``temperature`` is set by the search loop.
    """

    name = "snas"

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature
        # Z of the latest forward per cell type, keyed by the log_alpha parameter (it keeps its
        # graph to log_alpha so the resource penalty can use the very sample of the forward).
        self.last: dict[int, torch.Tensor] = {}

    def init_alpha(
        self, shape: tuple[int, int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log_alpha ~ N(1, 0.01^2) (SNAS)."""
        return 1.0 + 0.01 * torch.randn(shape, generator=generator)

    def op_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        """A fresh Gumbel-softmax sample Z [edges, ops] at the current temperature."""
        z = gumbel_softmax_sample(alpha, self.temperature)
        self.last[id(alpha)] = z
        return z

    def last_sample(self, alpha: torch.Tensor, *, detach: bool = True) -> torch.Tensor | None:
        """The Z that the latest forward drew for this log_alpha (None before any forward)."""
        z = self.last.get(id(alpha))
        return z.detach() if z is not None and detach else z


def valid_k(config: SpaceConfig) -> list[int]:
    """K values that divide every cell's channels, leaving an even part on reduction edges.

    (A stride-2 skip_connect is a FactorizedReduce, which splits its C/K channels in two.)
    """
    channels = SearchNetwork.edge_channels(config)
    g = 0
    for c in channels:
        g = math.gcd(g, c)
    reduce_channels = [channels[i] for i in SearchNetwork.reduction_indices(config.layers)]
    return [
        k for k in range(1, g + 1) if g % k == 0 and all((c // k) % 2 == 0 for c in reduce_channels)
    ]


# ----------------------------------------------------------------------------------- cells
class SearchCell(nn.Module):
    """A cell with ``steps`` nodes; node i mixes every earlier state through one edge each.

    Two forwards compute the same function (tests/test_fast_path.py checks outputs and gradients):

    * the reference one reads like the paper: every edge is a `MixedOp` called on its input
      state, and a node is the (edge-weighted) sum of its edges;
    * the fast one (the default) does once per *state* what is the same on every edge reading
      it, and sums a node in one reduction. See `_forward_fast`.

    ``reference=True`` selects the reference forward (and keeps every edge's pooling BN its own).
    """

    def __init__(
        self,
        mixing: Mixing,
        primitives: Sequence[str],
        steps: int,
        multiplier: int,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        reference: bool = False,
    ):
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        self.reference = reference
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            mixing.make_edge(C, self.stride(j), primitives) for j, _ in edge_list(steps)
        )
        ops = self.edges[0].ops
        self._pools = [k for k, name in enumerate(primitives) if is_pool(name)]
        # Columns of the op weights that reach the output ('none' adds nothing, as in MixedOp).
        kept = [k for k, op in enumerate(ops) if not isinstance(op, Zero)]
        self._kept = (
            slice(kept[0], kept[-1] + 1) if kept == list(range(kept[0], kept[-1] + 1)) else kept
        )
        self._k = getattr(self.edges[0], "k", 1)  # PC-DARTS partial channels (1 = all)
        # conv ops run side by side as grouped convs (fast path, see `_group_conv_ops`)
        self._groups: list[GroupedOps] = []
        # per group: the (state, repeats) runs of its input and how often the whole repeats
        self._group_inputs: list[tuple[list[tuple[int, int]], int]] = []
        self._member: dict[tuple[int, int], tuple[int, int]] = {}  # (edge, op) -> (group, pos)
        self._group_edges: list[list[tuple[int, int]]] = []  # per group, per position: (edge, op)
        # the states whose edges are summed together, in order, and the groups reading them
        self._reader_sets: list[list[int]] = [[j] for j in range(steps + 1)]
        self._set_groups: list[list[int]] = [[] for _ in self._reader_sets]
        self._index_cache: dict[tuple, torch.Tensor] = {}
        # per stride-2 state: its edges' FactorizedReduce ops side by side, and their (edge, op)
        self._reduces: dict[int, tuple[GroupedReduce, list[tuple[int, int]]]] = {}
        edges = edge_list(steps)
        self._edge_node = [i - 2 for _, i in edges]  # edge -> the node it feeds
        self._edges_reading = [
            [e for e, (j, _) in enumerate(edges) if j == s] for s in range(steps + 1)
        ]
        if not reference:
            self._share_parameter_free_ops()
            self._group_conv_ops()

    def stride(self, j: int) -> int:
        """Stride of the edges reading state j (2 for s0/s1 in a reduction cell)."""
        return 2 if self.reduction and j < 2 else 1

    def _share_parameter_free_ops(self) -> None:
        """Edges reading the same state share their pooling + BN(affine=False) modules.

        These ops have no weights, so on the same input every edge computes the same output (the
        same batch statistics in training; in eval the same running statistics, since each edge's
        BN was updated with the same batches). Shared, the op runs once per state, and its
        running statistics are updated once per forward, as each edge's own were. The state_dict
        keeps every edge's keys (with equal values), so checkpoints are unchanged. (When hooks
        watch the ops, the reference forward runs and calls a shared module once per edge.)
        """
        first: dict[int, MixedOp] = {}
        for e, (j, _) in enumerate(edge_list(self.steps)):
            owner = first.setdefault(j, self.edges[e])
            for k in self._pools:
                self.edges[e].ops[k] = owner.ops[k]

    def _group_conv_ops(self, merge: bool = True, grouped: bool = True) -> None:
        """The sep_conv / dil_conv ops of the edges reading the same states run as grouped convs.

        One group per (reader set, family): the reader sets are {s0, s1} (both exist before any
        node, with the same shape and stride) and each intermediate node alone; the family puts
        the ops whose kernels embed in one 5x5 depthwise conv together (nasviz.spaces.grouped).
        A cell of 4 nodes runs 8 conv groups instead of 14 edges x 4 conv ops. ``merge=False``
        groups per (state, op) only, ``grouped=False`` not at all: every op on its own (what
        fast_path_ablation.py compares against).
        """
        self._groups, self._group_inputs, self._member = [], [], {}
        self._group_edges, self._set_groups, self._index_cache = [], [], {}
        edges = list(edge_list(self.steps))
        states = sorted({j for j, _ in edges})
        reader_sets = [[0, 1], *([j] for j in states if j > 1)] if merge else [[j] for j in states]
        self._reader_sets = reader_sets
        for readers in reader_sets:
            self._set_groups.append([])
            members: dict[tuple, list[tuple[int, int, int]]] = {}
            for e, (j, _) in enumerate(edges):
                if j not in readers:
                    continue
                for k, op in enumerate(self.edges[e].ops):
                    if grouped and groupable(op):
                        key = (family(op),) if merge else (family(op), k)
                        members.setdefault(key, []).append((j, k, e))
            for group in members.values():
                # SepConv members first (they alone run the second block), then op-major
                group.sort(
                    key=lambda m: (
                        not isinstance(self.edges[m[2]].ops[m[1]], SepConv),
                        m[1],
                        m[0],
                        m[2],
                    )
                )
                runs: list[tuple[int, int]] = []
                for j, _, _ in group:
                    if runs and runs[-1][0] == j:
                        runs[-1] = (j, runs[-1][1] + 1)
                    else:
                        runs.append((j, 1))
                runs = _periodic(runs)
                g = len(self._groups)
                self._groups.append(GroupedOps([self.edges[e].ops[k] for _, k, e in group]))
                self._group_inputs.append(runs)
                for pos, (_, k, e) in enumerate(group):
                    self._member[(e, k)] = (g, pos)
                self._group_edges.append([(e, k) for _, k, e in group])
                self._set_groups[-1].append(g)
        self._reduces = self._group_reduces() if grouped else {}

    def _group_reduces(self) -> dict[int, tuple[GroupedReduce, list[tuple[int, int]]]]:
        """Per stride-2 state, the FactorizedReduce ops (skip_connect) of the edges reading it,
        run side by side (`GroupedReduce`): a reduction cell's 8 of them as 2 matmuls and 2 BNs."""
        out = {}
        for j in range(self.steps + 1):
            members = [
                (e, k)
                for e in self._edges_reading[j]
                for k, op in enumerate(self.edges[e].ops)
                if type(op) is FactorizedReduce
            ]
            if self.stride(j) == 2 and len(members) > 1:
                ops = [self.edges[e].ops[k] for e, k in members]
                out[j] = (GroupedReduce(ops), members)
        return out

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - nn.Module's signature
        # .to() / .double() replace every buffer, which unties the grouped BN statistics' views.
        super()._apply(fn, recurse)
        for group in self._groups:
            group.tie_buffers()
        for group, _ in self._reduces.values():
            group.tie_buffers()
        return self

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        if self.reference or self._ops_hooked():
            return self._forward_reference(states, weights, edge_weights)
        return self._forward_fast(states, weights, edge_weights)

    def _ops_hooked(self) -> bool:
        """True if hooks watch the edges' ops (they expect every op called as its own module)."""
        from torch.nn.modules import module as m

        if m._global_forward_hooks or m._global_forward_pre_hooks:
            return True
        # the module dicts, not ModuleList's iterator (a Python generator per edge, every forward)
        return any(
            op._forward_hooks or op._forward_pre_hooks
            for e in self.edges._modules.values()
            for op in e.ops._modules.values()
        )

    def _forward_reference(
        self, states: list[torch.Tensor], weights: torch.Tensor, edge_weights: torch.Tensor | None
    ) -> torch.Tensor:
        offset = 0
        for _ in range(self.steps):
            node = None
            for j, h in enumerate(states):
                y = self.edges[offset + j](h, weights[offset + j])
                if edge_weights is not None:
                    y = edge_weights[offset + j] * y
                node = y if node is None else node + y
            offset += len(states)
            states.append(node)
        return torch.cat(states[-self.multiplier :], dim=1)

    def _forward_fast(
        self, states: list[torch.Tensor], weights: torch.Tensor, edge_weights: torch.Tensor | None
    ) -> torch.Tensor:
        """The same function as `_forward_reference`, with fewer and larger kernels.

        * Per state, once for all edges reading it: the leading ReLU of every conv op (all of
          them start with ReLU(x)), the parameter-free ops (pooling + BN, identity), and for
          PC-DARTS the channel split and the bypass (max-pooled on stride-2 edges).
        * The conv ops (sep_conv, dil_conv) of the edges reading s0 and s1, and then of the
          edges reading each node, run side by side as grouped convolutions (`GroupedOps`,
          `_group_conv_ops`): sep_conv_3x3/5x5 and dil_conv_3x3 as one 5x5 depthwise conv,
          dil_conv_5x5 as another; 8 groups per 4-node cell instead of 56 op calls.
        * The weighted sums, node_i = sum_{e into i, k} w_ek * op_ek(x_e) with w_ek =
          softmax(alpha)_ek (times the edge weight softmax(beta)_e for PC-DARTS), are computed
          per *reader set* (s0 and s1, then each node), for all the nodes reading it at once
          (`_sum_reader_set`): a group's block output [B, m*c, H, W] is already m op outputs
          side by side, so [nodes, m] weights times it viewed [B, m, c*H*W] is one batched
          matmul that reads it in place, with no stacked copy of it per node (the ops outside
          the groups, pooling and identity once per state, are stacked once per reader set).
          The weight matrices are gathered from the [edges, ops] weights by a cached index
          (`_weight_index`); a node's entries for other nodes' edges are an exact zero.
        * PC-DARTS: an edge is shuffle(cat(mixed_e, bypass_e)), and shuffle and cat are linear,
          so node = shuffle(cat(sum_e b_e mixed_e, sum_e b_e bypass_e)): one cat and one shuffle
          per node instead of per edge, the bypass sums as batched matmuls too (`_sum_bypass`).
        """
        w = weights if edge_weights is None else weights * edge_weights[:, None]  # [edges, ops]
        flat = torch.cat([w.reshape(-1), w.new_zeros(1)])  # its last entry: an exact zero
        edge_flat = None
        if self._k > 1:  # the bypass sums: weighted by the edge weights (or 1)
            ew = edge_weights if edge_weights is not None else w.new_ones(len(self.edges))
            edge_flat = torch.cat([ew, w.new_zeros(1)])
        shared: list[dict] = []
        summands: list[list[torch.Tensor]] = [[] for _ in range(self.steps)]
        bypass: list[list[torch.Tensor]] = [[] for _ in range(self.steps)]
        done = 0
        for i in range(self.steps):
            n = len(states)
            while len(shared) < n:  # what every edge reading a new state needs, computed once
                shared.append(self._state_inputs(states[len(shared)], len(shared)))
            while done < len(self._reader_sets) and max(self._reader_sets[done]) < n:
                self._sum_reader_set(done, shared, flat, summands)
                if edge_flat is not None:
                    self._sum_bypass(done, shared, edge_flat, bypass)
                done += 1
            node = _add_all(summands[i])
            if self._k > 1:
                node = channel_shuffle(torch.cat([node, _add_all(bypass[i])], dim=1), self._k)
            states.append(node)
        return torch.cat(states[-self.multiplier :], dim=1)

    def _sum_reader_set(
        self, r: int, shared: list[dict], flat: torch.Tensor, summands: list[list[torch.Tensor]]
    ) -> None:
        """Run every op of the edges reading reader set r and add, to each node's summands, its
        weighted sum of them: one batched matmul per source (a conv group's block output, and the
        other ops' outputs stacked) gives the sums of all the nodes at once."""
        readers = self._reader_sets[r]
        first = max(max(readers) - 1, 0)  # the first node reading these states
        sources: list[tuple[tuple, list[list[tuple[int, int]]], torch.Tensor]] = []
        grouped: set[tuple[int, int]] = set()
        ran: list = []  # the groups that ran: the other ops' columns (and cache key) follow
        for g in self._set_groups[r]:
            group = self._groups[g]
            parts = group.parts()
            if not group.usable(parts):
                continue  # modules were swapped: each of its ops runs on its own (below)
            ran.append(g)
            sep, dil = group.block_outputs(self._grouped_input(g, shared), parts)
            members, ns = self._group_edges[g], group.n_sep
            if sep is not None:  # sep_conv members: the second block
                sources.append((("g", g, 1), [[m] for m in members[:ns]], sep))
            if dil is not None:  # dil_conv members: the first block's last channels
                sources.append((("g", g, 0), [[m] for m in members[ns:]], dil))
            grouped.update(members)
        for j in readers:  # the stride-2 skip_connects of the edges reading j, side by side
            reduce, members = self._reduces.get(j, (None, []))
            if reduce is not None and reduce.usable():
                out = reduce.outputs(self._relu(shared[j]), self._subsampled(shared[j]))
                sources.append((("fr", j), [[m] for m in members], out))
                grouped.update(members)
                ran.append(("fr", j))
        columns: list[list[tuple[int, int]]] = []
        tensors: list[torch.Tensor] = []
        for j in readers:
            column_of: dict[int, int] = {}  # op -> its column: one output for all edges of j
            for e in self._edges_reading[j]:
                for k, op in self._kept_ops(e):
                    if (e, k) in grouped:
                        continue
                    if k in self._pools or isinstance(op, Identity):
                        if k not in column_of:
                            column_of[k] = len(columns)
                            columns.append([])
                            tensors.append(self._op_output(shared[j], op, k))
                        columns[column_of[k]].append((e, k))
                    else:
                        columns.append([(e, k)])
                        tensors.append(self._op_output(shared[j], op, k))
        if tensors:
            rest = tensors[0].unsqueeze(1) if len(tensors) == 1 else torch.stack(tensors, 1)
            sources.append((("rest", tuple(ran)), columns, rest))
        for row, part in enumerate(self._weighted_sums(r, sources, flat, first)):
            summands[first + row].append(part)

    def _sum_bypass(
        self, r: int, shared: list[dict], edge_flat: torch.Tensor, bypass: list[list[torch.Tensor]]
    ) -> None:
        """PC-DARTS: the nodes' edge-weighted sums of the bypass channels of reader set r."""
        readers = self._reader_sets[r]
        first = max(max(readers) - 1, 0)
        columns = [[(e, 0) for e in self._edges_reading[j]] for j in readers]
        parts = [shared[j]["bypass"] for j in readers]
        t = parts[0].unsqueeze(1) if len(parts) == 1 else torch.stack(parts, 1)
        sums = self._weighted_sums(r, [(("bypass",), columns, t)], edge_flat, first, 1)
        for row, part in enumerate(sums):
            bypass[first + row].append(part)

    def _weighted_sums(
        self,
        r: int,
        sources: list[tuple[tuple, list[list[tuple[int, int]]], torch.Tensor]],
        flat: torch.Tensor,
        first: int,
        n_ops: int | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Per node from ``first``: sum over the sources of their columns' outputs times their
        weights in ``flat``, one batched matmul per source, accumulated in place."""
        acc = None
        for key, cols, t in sources:
            b, m = t.shape[0], len(cols)
            index = self._weight_index((r, *key), first, cols, flat.device, n_ops)
            weight = flat[index].expand(b, -1, -1)  # [B, nodes, m] (a view: one [nodes, m])
            x = t.reshape(b, m, -1)  # [B, m, c*H*W]: a view of the group outputs
            acc = torch.bmm(weight, x) if acc is None else acc.baddbmm_(weight, x)
        t, m = sources[0][2], len(sources[0][1])  # one op output's shape, from either layout
        shape = (
            t.shape[:1] + t.shape[2:]
            if t.dim() == 5
            else (t.shape[0], t.shape[1] // m, *t.shape[2:])
        )
        return tuple(part.view(shape) for part in acc.unbind(1))  # (one stack in the backward)

    def _kept_ops(self, e: int) -> list[tuple[int, nn.Module]]:
        """(op index, op) of edge e's ops that reach the output ('none' adds nothing)."""
        # the module dicts: ModuleList's indexing and iteration are slow Python
        ops = list(self.edges._modules[str(e)].ops._modules.values())
        kept = range(len(ops))[self._kept] if isinstance(self._kept, slice) else self._kept
        return [(k, ops[k]) for k in kept]

    def _op_output(self, inp: dict, op: nn.Module, k: int) -> torch.Tensor:
        """Output of one op that is not in a conv group, on the state's shared inputs."""
        if k in self._pools:  # shared module: computed once per state
            if k not in inp["pool"]:
                inp["pool"][k] = op(self._pool_input(inp))
            return inp["pool"][k]
        if isinstance(op, Identity):
            return inp["x"]
        if type(op) is FactorizedReduce and starts_with_relu(op):  # edges share the subsampling
            return op.after_relu(self._relu(inp), self._subsampled(inp))
        if starts_with_relu(op):
            return op.after_relu(self._relu(inp))
        return op(inp["x"])

    def _weight_index(
        self,
        key: tuple,
        first: int,
        columns: list[list[tuple[int, int]]],
        device: torch.device,
        n_ops: int | None = None,
    ) -> torch.Tensor:
        """[nodes from ``first``, columns] indices into the flat op weights (plus the exact zero
        at the end): column c's entry in node i's row is edge e's op k if (e, k) of node i is
        in ``columns[c]``. Cached per key: the layout is fixed unless modules are swapped."""
        idx = self._index_cache.get((key, device))
        if idx is None:
            n_ops = n_ops or len(self.edges[0].ops)
            zero = len(self.edges) * n_ops
            table = [[zero] * len(columns) for _ in range(self.steps - first)]
            for c, pairs in enumerate(columns):
                for e, k in pairs:
                    table[self._edge_node[e] - first][c] = e * n_ops + k
            idx = torch.tensor(table, dtype=torch.long, device=device)
            self._index_cache[(key, device)] = idx
        return idx

    def _state_inputs(self, h: torch.Tensor, j: int) -> dict:
        """Per state: the channels the ops see, their ReLU, the bypass (PC-DARTS); pools lazily."""
        x, bypass = h, None
        if self._k > 1:
            c_part = h.shape[1] // self._k
            # one split, not two slices (whose backward each zero a gradient of the whole state)
            x, bypass = torch.split(h, [c_part, h.shape[1] - c_part], dim=1)
            if self.stride(j) == 2:
                bypass = F.max_pool2d(bypass, 2, 2, ceil_mode=True)
        return {"x": x, "relu": None, "pool": {}, "bypass": bypass}

    @staticmethod
    def _pool_input(inp: dict) -> torch.Tensor:
        """The state for the pooling ops: channels-last on CPU, once per state.

        torch's CPU pooling kernels are several times faster in channels-last (one thread,
        max + avg pool 3x3 with their BN, forward + backward, [8, 16, 16, 16]: 1.72 -> 0.57 ms,
        the copy included); the BN is per channel, so the values are the same, and the outputs
        only feed the node's stacked sum.
        """
        if "pool_x" not in inp:
            x = inp["x"]
            if x.device.type == "cpu" and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            inp["pool_x"] = x
        return inp["pool_x"]

    def _subsampled(self, inp: dict) -> torch.Tensor:
        """`FactorizedReduce.subsample` of the state's ReLU, once per state."""
        if "subsampled" not in inp:
            inp["subsampled"] = FactorizedReduce.subsample(self._relu(inp))
        return inp["subsampled"]

    @staticmethod
    def _relu(inp: dict) -> torch.Tensor:
        if inp["relu"] is None:
            inp["relu"] = F.relu(inp["x"])
        return inp["relu"]

    def _grouped_input(self, g: int, shared: list[dict]) -> torch.Tensor:
        """ReLU of each member's state, side by side in the group's member order."""
        runs, times = self._group_inputs[g]
        parts = [
            self._relu(shared[j]) if n == 1 else self._relu(shared[j]).repeat(1, n, 1, 1)
            for j, n in runs
        ]
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return x if times == 1 else x.repeat(1, times, 1, 1)


def _add_all(parts: list[torch.Tensor]) -> torch.Tensor:
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


def _periodic(runs: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], int]:
    """(base, t) with base repeated t times == runs (a group's input: one repeat, not t cats)."""
    for period in range(1, len(runs) + 1):
        if len(runs) % period == 0 and runs == runs[:period] * (len(runs) // period):
            return runs[:period], len(runs) // period
    return runs, 1


# ----------------------------------------------------------------------------------- network
@dataclass(frozen=True)
class SpaceConfig:
    """Shape of the search supernet (PAPERS.md: C=16, 8 cells, 4 nodes on CIFAR-10)."""

    C: int = 16
    layers: int = 8
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    num_classes: int = 10
    in_channels: int = 3


class SearchNetwork(nn.Module):
    """The DARTS supernet: stem, `layers` search cells (reductions at 1/3 and 2/3), classifier.

    Architecture parameters (alphas, and betas if the mixing uses edge normalization) are shared
    by all cells of a type and live here; `weight_parameters()` and `arch_parameters()` split them
    for the bilevel optimizers. ``reference=True`` runs the cells' straightforward forward (every
    edge a `MixedOp` call) instead of the fast one; both compute the same function.
    """

    def __init__(
        self,
        config: SpaceConfig = SpaceConfig(),
        mixing: Mixing | None = None,
        primitives: Sequence[str] = PRIMITIVES,
        generator: torch.Generator | None = None,
        *,
        reference: bool = False,
    ):
        super().__init__()
        self.config = config
        self.mixing = mixing or Mixing()
        self.primitives = tuple(primitives)
        self.mixing.check_config(config)
        C, steps = config.C, config.steps

        C_curr = config.stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(config.layers):
            reduction = i in self.reduction_indices(config.layers)
            if reduction:
                C_curr *= 2
            cell = SearchCell(
                self.mixing, self.primitives, steps, config.multiplier,
                C_prev_prev, C_prev, C_curr, reduction, reduction_prev, reference,
            )  # fmt: skip
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, config.multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, config.num_classes)

        shape = (num_edges(steps), len(self.primitives))
        self.alpha_normal = nn.Parameter(self.mixing.init_alpha(shape, generator))
        self.alpha_reduce = nn.Parameter(self.mixing.init_alpha(shape, generator))
        if self.mixing.uses_betas:
            self.beta_normal = nn.Parameter(1e-3 * torch.randn(shape[0], generator=generator))
            self.beta_reduce = nn.Parameter(1e-3 * torch.randn(shape[0], generator=generator))

    @staticmethod
    def reduction_indices(layers: int) -> tuple[int, int]:
        """Cells that halve the resolution and double the channels."""
        return (layers // 3, 2 * layers // 3)

    @classmethod
    def edge_channels(cls, config: SpaceConfig) -> list[int]:
        """The channel count on the edges of every cell (what K must divide)."""
        C, out = config.C, []
        for i in range(config.layers):
            if i in cls.reduction_indices(config.layers):
                C *= 2
            out.append(C)
        return out

    # ------------------------------------------------------------- architecture parameters
    def alphas(self) -> dict[str, nn.Parameter]:
        """{'normal': alpha_normal, 'reduce': alpha_reduce}."""
        return {"normal": self.alpha_normal, "reduce": self.alpha_reduce}

    def betas(self) -> dict[str, nn.Parameter] | None:
        """{'normal': beta_normal, 'reduce': beta_reduce}, or None without edge normalization."""
        if not self.mixing.uses_betas:
            return None
        return {"normal": self.beta_normal, "reduce": self.beta_reduce}

    def arch_parameters(self) -> list[nn.Parameter]:
        """Alphas (and betas): what the architecture optimizer updates."""
        return list(self.alphas().values()) + list((self.betas() or {}).values())

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(name, parameter) of the network weights, excluding the architecture parameters."""
        arch = {id(p) for p in self.arch_parameters()}
        return ((n, p) for n, p in self.named_parameters() if id(p) not in arch)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights, excluding the architecture parameters."""
        return [p for _, p in self.named_weight_parameters()]

    def probabilities(self) -> dict[str, torch.Tensor]:
        """The architecture distribution per cell type: [edges, ops], detached."""
        return {c: self.mixing.probabilities(a.detach()) for c, a in self.alphas().items()}

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Normalized betas per cell type ([edges], detached), or None."""
        betas = self.betas()
        if betas is None:
            return None
        return {c: normalize_edges(b.detach(), self.config.steps) for c, b in betas.items()}

    # ------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.config.steps
        # One set of op weights per cell type, shared by all its cells (one sample for SNAS).
        weights = {c: self.mixing.op_weights(a) for c, a in self.alphas().items()}
        betas = self.betas()
        edge_w = {c: normalize_edges(b, steps) for c, b in betas.items()} if betas else None
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            ew = edge_w[kind] if edge_w is not None else None
            s0, s1 = s1, cell(s0, s1, weights[kind], ew)
        return self.classifier(self.global_pooling(s1).flatten(1))


__all__ = [
    "CELL_TYPES",
    "GumbelMixing",
    "MixedOp",
    "Mixing",
    "PartialChannelMixing",
    "PartialMixedOp",
    "SearchCell",
    "SearchNetwork",
    "SpaceConfig",
    "channel_shuffle",
    "edge_list",
    "gumbel_softmax_sample",
    "normalize_edges",
    "num_edges",
    "valid_k",
]
