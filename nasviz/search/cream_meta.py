"""Cream of the Crop's meta-network: which board path should teach the current student, and how much.

For every board entry the meta-network M_theta (one Linear over ``slice * classes`` inputs, the
official size) reads the difference between the student's softmax and the entry's stored
softmax on the entry's stored images and returns a score; the matching score is
``m = sigmoid(score)``. The entry with the highest score is the teacher, and the student
minimizes (paper, Eq. 5)

    L = (m * KD + (2 - m) * CE) / 2,    KD = -mean_b sum_c softmax(teacher)_bc log softmax(student)_bc

with the teacher's logits on the same batch (no gradient) and the labels' cross-entropy CE.
Every ~200 iterations M_theta is updated by a one-step look-ahead (second order): simulate the
student's SGD step ``w' = w - lr * grad_w L(w, theta)`` and descend the held-out cross-entropy
``CE(f(x_val; w'(theta)), y_val)`` in theta. Since L is linear in m and m depends on theta only
(the student's outputs on the stored images are constants here),
``grad_w L = (m * grad_w KD + (2 - m) * grad_w CE) / 2`` exactly, so ``dw'/dtheta`` needs the two
first-order gradients and autograd carries theta through m: the exact look-ahead gradient with
no double backward (which PyTorch lacks for the SE's hard-sigmoid). The simulated weights run
through ``torch.func.functional_call``; the supernet's weights and BN statistics stay untouched.

What differs from the official code (microsoft/Cream, ``lib/models/PrioritizedBoard.py`` and
``MetaMatchingNetwork.py``), and why:

* the matching score that weights the loss is the sigmoid of the *chosen* teacher's score; the
  official code uses the last evaluated entry's score with its sign flipped (``sigmoid(-weight)``);
* the student step treats m as a constant (it is detached): only the look-ahead trains
  M_theta. The official code lets the ordinary training loss also move the meta layer, which
  pushes m towards whichever of KD and CE is smaller rather than towards a better student;
* the look-ahead differentiates the held-out loss through *all* the student path's simulated
  weights with the student's own learning rate; the official code differentiates through the
  first parameter tensor only, with the meta-network's learning rate as the simulated step, and
  really applies an extra student step in the middle of the meta update;
* the simulated step uses the student's full loss L (what the student step minimizes); the
  official look-ahead uses ``m * KD`` alone;
* the student's own path is not its teacher while the board holds another path (distilling a
  path into itself only repeats its own outputs); the official code allows it;
* the forwards done only for matching and for the teacher's soft labels use the current weights
  in the supernet's mode but do not update BN running statistics (the official ones do).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nasviz.search.cream_board import PathBoard, softmax_probs
from nasviz.spaces.cream import CreamPath, CreamSupernet


class MetaMatchingNetwork(nn.Module):
    """M_theta: one Linear(slice * classes -> 1) over (student - stored) softmax on stored images."""

    def __init__(self, num_classes: int, slice: int = 4) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.slice = int(slice)
        self.layer = nn.Linear(self.slice * self.num_classes, 1)

    def forward(self, student_probs: torch.Tensor, board_probs: torch.Tensor) -> torch.Tensor:
        """Raw scores [K] from probabilities [K, slice, classes] (student's and stored)."""
        diff = (student_probs - board_probs).flatten(1)  # [K, slice * classes]
        return self.layer(diff).squeeze(1)


def _frozen_stats_forward(
    supernet: CreamSupernet, x: torch.Tensor, path: CreamPath
) -> torch.Tensor:
    """Logits of ``path`` with the current weights and mode, BN running statistics unchanged."""
    buffers = {n: b.clone() for n, b in supernet.named_buffers()}  # BN updates these copies
    return functional_call(supernet, buffers, (x, path))


def candidates(board: PathBoard, student: CreamPath) -> list[int]:
    """Board positions that may teach ``student``: all but its own path, unless that is all."""
    others = [i for i, e in enumerate(board.entries) if e.path != student]
    return others or list(range(len(board)))


def matching_scores(
    meta: MetaMatchingNetwork, supernet: CreamSupernet, student: CreamPath, board: PathBoard
) -> torch.Tensor:
    """Matching scores m = sigmoid(M(...)) [len(board)] of the student against every entry.

    The student's outputs carry no gradient; the scores carry M_theta's.
    """
    if not len(board):
        raise ValueError("the path board is empty: there is no teacher to match yet")
    k, s = len(board), board.slice
    images = torch.cat([e.images for e in board.entries])  # [K * slice, C, H, W]
    stored = torch.stack([e.probs for e in board.entries])  # [K, slice, classes]
    with torch.no_grad():
        logits = _frozen_stats_forward(supernet, images, student)
    student_probs = softmax_probs(logits).view(k, s, -1).to(stored.dtype)  # [K, slice, classes]
    return torch.sigmoid(meta(student_probs, stored))


@dataclass
class TeacherChoice:
    """The picked teacher: board position, its path, its matching score m, and all scores."""

    index: int
    path: CreamPath
    m: torch.Tensor  # scalar, carries M_theta's gradient
    scores: torch.Tensor  # [len(board)] (excluded entries included, for plots)


def select_teacher(
    meta: MetaMatchingNetwork, supernet: CreamSupernet, student: CreamPath, board: PathBoard
) -> TeacherChoice:
    """The board entry with the highest matching score (among `candidates`) and its score."""
    scores = matching_scores(meta, supernet, student, board)
    allowed = candidates(board, student)
    best = max(allowed, key=lambda i: float(scores[i].detach()))
    return TeacherChoice(
        index=best, path=board.entries[best].path, m=scores[best], scores=scores.detach()
    )


def teacher_logits(supernet: CreamSupernet, x: torch.Tensor, teacher: CreamPath) -> torch.Tensor:
    """The teacher path's logits on ``x`` (no gradient, BN statistics unchanged)."""
    with torch.no_grad():
        return _frozen_stats_forward(supernet, x, teacher)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the teacher's softmax as soft target, averaged over the batch."""
    target = torch.softmax(teacher_logits.detach(), dim=1)
    return -(target * F.log_softmax(student_logits, dim=1)).sum(1).mean()


def cream_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    m: torch.Tensor | float,
    *,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(m * KD + (2 - m) * CE) / 2; plain CE when there is no teacher (``teacher_logits=None``)."""
    ce = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    if teacher_logits is None:
        return ce
    return (m * kd_loss(student_logits, teacher_logits) + (2 - m) * ce) / 2


def lookahead_meta_grads(
    meta: MetaMatchingNetwork,
    supernet: CreamSupernet,
    student: CreamPath,
    board: PathBoard,
    train: tuple[torch.Tensor, torch.Tensor],
    held_out: tuple[torch.Tensor, torch.Tensor],
    lr: float,
    *,
    label_smoothing: float = 0.0,
    teacher: TeacherChoice | None = None,
) -> tuple[list[torch.Tensor], dict[str, float | int]]:
    """d CE(f(x_val; w - lr * grad_w L(w, theta)), y_val) / d theta, for M_theta's parameters.

    ``train`` = (images, labels) for the simulated student step, ``held_out`` = images the step
    did not see; ``lr`` = the student's current learning rate (the simulated step is plain SGD,
    as in the paper). Returns the gradients (in
    ``meta.parameters()`` order) and figures for the history (held-out loss, m, teacher index).
    """
    choice = teacher or select_teacher(meta, supernet, student, board)
    x, y = train
    x_val, y_val = held_out
    named = dict(supernet.named_parameters())
    weights = {n: named[n] for n in supernet.path_parameter_names(student)}
    soft = teacher_logits(supernet, x, choice.path)
    buffers = {n: b.clone() for n, b in supernet.named_buffers()}
    out = functional_call(supernet, {**weights, **buffers}, (x, student))
    ce = F.cross_entropy(out, y, label_smoothing=label_smoothing)
    kd = kd_loss(out, soft)
    # L = (m KD + (2 - m) CE) / 2 is linear in m, and m depends on theta only, so
    # grad_w L = (m g_KD + (2 - m) g_CE) / 2 exactly: two first-order gradients, theta enters
    # through m alone (no double backward; PyTorch has none for the SE's hard-sigmoid).
    g_kd = torch.autograd.grad(kd, list(weights.values()), retain_graph=True)
    g_ce = torch.autograd.grad(ce, list(weights.values()))
    m = choice.m
    stepped = {
        n: w.detach() - lr * (m * gk + (2 - m) * gc) / 2
        for (n, w), gk, gc in zip(weights.items(), g_kd, g_ce, strict=True)
    }
    buffers = {n: b.clone() for n, b in supernet.named_buffers()}
    val_out = functional_call(supernet, {**stepped, **buffers}, (x_val, student))
    val_loss = F.cross_entropy(val_out, y_val)
    meta_grads = torch.autograd.grad(val_loss, list(meta.parameters()), allow_unused=True)
    meta_grads = [
        torch.zeros_like(p) if g is None else g
        for p, g in zip(meta.parameters(), meta_grads, strict=True)
    ]
    info = {
        "held_out_loss": float(val_loss.detach()),
        "m": float(choice.m.detach()),
        "teacher": choice.index,
    }
    return meta_grads, info


def meta_step(
    meta: MetaMatchingNetwork,
    optimizer: torch.optim.Optimizer,
    grads: list[torch.Tensor],
    *,
    clip: float | None = None,
) -> None:
    """Apply look-ahead gradients to M_theta with ``optimizer`` (optionally clipping their norm)."""
    optimizer.zero_grad(set_to_none=True)
    for p, g in zip(meta.parameters(), grads, strict=True):
        p.grad = g.detach().clone()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(meta.parameters(), clip)
    optimizer.step()


def should_update_meta(step: int, every: int = 200) -> bool:
    """Whether iteration ``step`` (counted from the end of the warm-up) updates M_theta."""
    return step > 0 and step % every == 0
