"""Deriving a discrete genotype from architecture parameters, by the papers' rules.

* DARTS / PC-DARTS: per node keep the 2 incoming edges whose strongest non-none op weight is
  largest; on each keep that argmax non-none op. PC-DARTS first multiplies each edge's op
  probabilities by its normalized beta (softmax over the node's incoming edges).
* SNAS: argmax over all ops, none included, on every edge (edge-all form).

The functions take probabilities or raw parameters as tensors or arrays, so any user can call them
on any alphas/betas (e.g. a history's records).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nasviz.genotypes import PRIMITIVES, Genotype
from nasviz.spaces.darts import normalize_edges

ArrayLike = torch.Tensor | np.ndarray | Sequence[Sequence[float]]


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    a = _np(x)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _num_nodes(n_edges: int) -> int:
    steps, total = 0, 0
    while total < n_edges:
        total += 2 + steps
        steps += 1
    if total != n_edges:
        raise ValueError(f"{n_edges} edges is not a cell (2+3+...+(n+1) edges for n nodes)")
    return steps


def normalize_betas(beta: ArrayLike) -> np.ndarray:
    """Softmax of raw betas over each node's incoming edges -> [edges] (`normalize_edges`)."""
    b = torch.as_tensor(_np(beta), dtype=torch.float64)
    return normalize_edges(b, _num_nodes(len(b))).numpy()


def parse_cell(
    weights: ArrayLike, primitives: Sequence[str] = PRIMITIVES, edges_per_node: int = 2
) -> list[tuple[str, int]]:
    """DARTS rule on one cell's [edges, ops] weights: top edges per node by strongest non-none op."""
    w = _np(weights)
    primitives = list(primitives)
    if w.shape[1] != len(primitives):
        raise ValueError(f"weights have {w.shape[1]} op columns but {len(primitives)} primitives")
    none = primitives.index("none") if "none" in primitives else None
    masked = w.copy()
    if none is not None:
        masked[:, none] = -np.inf
    gene, start = [], 0
    for i in range(_num_nodes(len(w))):
        rows = masked[start : start + i + 2]
        strength = rows.max(axis=1)
        # Strongest first; Python's sort is stable, so ties go to the earlier input.
        keep = sorted(range(i + 2), key=lambda j: -strength[j])[:edges_per_node]
        for j in keep:
            gene.append((primitives[int(rows[j].argmax())], int(j)))
        start += i + 2
    return gene


def parse_cell_edge_all(
    weights: ArrayLike, primitives: Sequence[str] = PRIMITIVES
) -> list[tuple[str, int]]:
    """SNAS rule: the argmax op (none included) on every edge."""
    w = _np(weights)
    gene, start = [], 0
    for i in range(_num_nodes(len(w))):
        for j in range(i + 2):
            gene.append((list(primitives)[int(w[start + j].argmax())], j))
        start += i + 2
    return gene


def derive_darts(
    alpha_normal: ArrayLike,
    alpha_reduce: ArrayLike,
    beta_normal: ArrayLike | None = None,
    beta_reduce: ArrayLike | None = None,
    primitives: Sequence[str] = PRIMITIVES,
    *,
    from_logits: bool = True,
) -> Genotype:
    """DARTS/PC-DARTS genotype from alphas (logits, or probabilities if from_logits=False) and betas.

    Betas are raw (pre-softmax) values; each edge's op probabilities are scaled by its normalized beta.
    """
    cells = {}
    for cell, alpha, beta in (
        ("normal", alpha_normal, beta_normal),
        ("reduce", alpha_reduce, beta_reduce),
    ):
        w = softmax(alpha) if from_logits else _np(alpha)
        if beta is not None:
            w = w * normalize_betas(beta)[:, None]
        cells[cell] = parse_cell(w, primitives)
    n = _num_nodes(len(_np(alpha_normal)))
    concat = list(range(2, 2 + n))
    return Genotype(cells["normal"], concat, cells["reduce"], concat)


def derive_edge_all(
    alpha_normal: ArrayLike, alpha_reduce: ArrayLike, primitives: Sequence[str] = PRIMITIVES
) -> Genotype:
    """SNAS edge-all genotype: argmax (none included) of every edge's alpha."""
    n = _num_nodes(len(_np(alpha_normal)))
    concat = list(range(2, 2 + n))
    return Genotype(
        parse_cell_edge_all(alpha_normal, primitives),
        concat,
        parse_cell_edge_all(alpha_reduce, primitives),
        concat,
        edge_all=True,
    )
