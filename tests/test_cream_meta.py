"""Meta-network: the KD loss formula, the teacher with the highest matching score, and the
one-step look-ahead gradient against a finite difference."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from nasviz.search.cream_board import PathBoard
from nasviz.search.cream_meta import (
    MetaMatchingNetwork,
    cream_loss,
    kd_loss,
    lookahead_meta_grads,
    matching_scores,
    meta_step,
    select_teacher,
    teacher_logits,
)
from nasviz.spaces.cream import CreamPath, CreamSpace, CreamSupernet


def _log_softmax(row):
    z = math.log(sum(math.exp(v) for v in row))
    return [v - z for v in row]


def test_kd_and_cream_loss_against_the_formula():
    s = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]]
    t = [[3.0, 2.0, 1.0], [1.0, 0.0, 0.0]]
    y = [2, 0]
    kd = 0.0
    ce = 0.0
    for srow, trow, label in zip(s, t, y, strict=True):
        p = [math.exp(v) for v in _log_softmax(trow)]
        logq = _log_softmax(srow)
        kd += -sum(pi * lq for pi, lq in zip(p, logq, strict=True)) / len(s)
        ce += -logq[label] / len(s)
    student, teacher, labels = torch.tensor(s), torch.tensor(t), torch.tensor(y)
    assert kd_loss(student, teacher).item() == pytest.approx(kd, rel=1e-6)
    m = 0.7
    expected = (m * kd + (2 - m) * ce) / 2
    assert cream_loss(student, labels, teacher, m).item() == pytest.approx(expected, rel=1e-6)
    assert cream_loss(student, labels, None, m).item() == pytest.approx(ce, rel=1e-6)
    # m = 1 weighs both halves equally; m = 0 is CE alone
    assert cream_loss(student, labels, teacher, 1.0).item() == pytest.approx((kd + ce) / 2)
    assert cream_loss(student, labels, teacher, 0.0).item() == pytest.approx(ce)


@pytest.fixture(scope="module")
def tiny():
    """A tiny digits supernet (float64), a board of three paths, data."""
    torch.manual_seed(0)
    space = CreamSpace.digits(depths=(1, 1, 1, 1, 1), width=0.25)
    supernet = CreamSupernet(space).double()
    board = PathBoard(size=3, slice=2)
    g = torch.Generator().manual_seed(1)
    paths = [space.random_path(g) for _ in range(3)]
    for i, path in enumerate(paths):
        x = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=g)
        with torch.no_grad():
            logits = supernet(x, path)
        board.update(path, 0.5 + 0.1 * i, space.madds(path), x, logits)
    student = CreamPath(stages=((5,), (0,), (3,), (1,), (2,)), resolution=8)
    assert student not in board.paths()
    return space, supernet, board, student


def test_the_teacher_is_the_entry_with_the_highest_matching_score(tiny):
    _, supernet, board, student = tiny
    meta = MetaMatchingNetwork(num_classes=10, slice=2).double()
    images = torch.cat([e.images for e in board])
    with torch.no_grad():
        probs = torch.softmax(supernet(images, student), 1).view(3, 2, 10)
    stored = torch.stack([e.probs for e in board])
    diffs = (probs - stored).flatten(1)  # [3, 20]
    for target in range(3):
        # weights along one entry's difference make that entry's score the largest
        with torch.no_grad():
            meta.layer.weight.copy_(diffs[target] / diffs[target].norm() ** 2 * 5)
            meta.layer.bias.zero_()
        scores = matching_scores(meta, supernet, student, board)
        expected = torch.sigmoid(meta.layer.weight[0] @ diffs.T).detach()
        assert torch.allclose(scores, expected)
        choice = select_teacher(meta, supernet, student, board)
        assert choice.index == int(expected.argmax()) == target
        assert choice.path == board.entries[target].path
        assert float(choice.m.detach()) == pytest.approx(
            float(expected.max())
        )  # the chosen one's score
        assert choice.m.requires_grad


def test_the_student_does_not_teach_itself_while_others_can(tiny):
    _, supernet, board, _ = tiny
    meta = MetaMatchingNetwork(num_classes=10, slice=2).double()
    own = board.entries[1].path
    with torch.no_grad():
        meta.layer.weight.zero_()
    assert select_teacher(meta, supernet, own, board).index != 1


def test_matching_and_teacher_forwards_leave_bn_statistics_alone(tiny):
    _, supernet, board, student = tiny
    before = {n: b.clone() for n, b in supernet.named_buffers()}
    meta = MetaMatchingNetwork(num_classes=10, slice=2).double()
    matching_scores(meta, supernet, student, board)
    teacher_logits(supernet, board.entries[0].images, board.entries[0].path)
    assert all(torch.equal(before[n], b) for n, b in supernet.named_buffers())


def _held_out_loss_after_step(supernet, meta, student, board, train, held_out, lr, theta):
    """Independent reference: copy the supernet, really take the SGD step, evaluate held-out CE."""
    net = copy.deepcopy(supernet)
    meta = copy.deepcopy(meta)
    torch.nn.utils.vector_to_parameters(theta, meta.parameters())
    with torch.no_grad():
        choice = select_teacher(meta, net, student, board)
        soft = teacher_logits(net, train[0], choice.path)
    loss = cream_loss(net(train[0], student), train[1], soft, choice.m)
    params = [p for p in net.parameters()]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p.sub_(lr * g)
        return F.cross_entropy(net(held_out[0], student), held_out[1]).item()


def test_lookahead_gradient_matches_a_finite_difference(tiny):
    _, supernet, board, student = tiny
    g = torch.Generator().manual_seed(2)
    meta = MetaMatchingNetwork(num_classes=10, slice=2).double()
    with torch.no_grad():
        meta.layer.weight.normal_(0, 2.0, generator=g)
    train = (torch.randn(6, 1, 8, 8, dtype=torch.float64, generator=g), torch.arange(6) % 10)
    held_out = (torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=g), torch.arange(5) + 3)
    lr = 0.5
    before = {n: t.clone() for n, t in supernet.state_dict().items()}
    grads, info = lookahead_meta_grads(meta, supernet, student, board, train, held_out, lr)
    assert all(torch.equal(before[n], t) for n, t in supernet.state_dict().items())
    analytic = torch.cat([gr.flatten() for gr in grads])
    theta = torch.nn.utils.parameters_to_vector(meta.parameters()).detach()
    direction = torch.randn(theta.shape, dtype=torch.float64, generator=g)
    direction /= direction.norm()
    eps = 1e-5
    args = (supernet, meta, student, board, train, held_out, lr)
    plus = _held_out_loss_after_step(*args, theta + eps * direction)
    minus = _held_out_loss_after_step(*args, theta - eps * direction)
    numeric = (plus - minus) / (2 * eps)
    assert abs(float(analytic @ direction)) > 1e-6  # the look-ahead really depends on theta
    assert float(analytic @ direction) == pytest.approx(numeric, rel=1e-4, abs=1e-9)
    assert info["held_out_loss"] == pytest.approx(_held_out_loss_after_step(*args, theta), rel=1e-9)


def test_meta_step_moves_theta_downhill(tiny):
    _, supernet, board, student = tiny
    g = torch.Generator().manual_seed(4)
    meta = MetaMatchingNetwork(num_classes=10, slice=2).double()
    train = (torch.randn(6, 1, 8, 8, dtype=torch.float64, generator=g), torch.arange(6) % 10)
    held_out = (torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=g), torch.arange(5))
    grads, info = lookahead_meta_grads(meta, supernet, student, board, train, held_out, 0.5)
    opt = torch.optim.SGD(meta.parameters(), lr=1e-3)
    meta_step(meta, opt, grads)
    _, after = lookahead_meta_grads(meta, supernet, student, board, train, held_out, 0.5)
    assert after["held_out_loss"] < info["held_out_loss"]
