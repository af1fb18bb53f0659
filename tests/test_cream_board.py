"""Prioritized path board: admission and eviction order, FLOPs filter, re-records, plain state."""

import io

import pytest
import torch

from nasviz.search.cream_board import PathBoard
from nasviz.spaces.cream import CreamPath


def _path(i: int) -> CreamPath:
    """Distinct paths: the digits of i in base 6 over five one-layer stages."""
    digits = [(i // 6**k) % 6 for k in range(5)]
    return CreamPath(stages=tuple((d,) for d in digits), resolution=8)


def _offer(board: PathBoard, i: int, acc: float, madds: float, step: int = 0) -> bool:
    images = torch.full((6, 1, 8, 8), float(i))
    logits = torch.randn(6, 10)
    return board.update(_path(i), acc, madds, images, logits, step=step)


def _state(board: PathBoard) -> list[tuple[int, float, float]]:
    return [(int(e.images[0, 0, 0, 0]), e.accuracy, e.madds) for e in board]


def test_fills_up_sorted_by_accuracy_then_flops():
    board = PathBoard(size=4, flops_range=(2.0, 5.0))
    for i, (acc, madds) in enumerate([(0.5, 3.0), (0.7, 4.0), (0.5, 2.5), (0.9, 4.5)]):
        assert _offer(board, i, acc, madds)
    assert _state(board) == [(3, 0.9, 4.5), (1, 0.7, 4.0), (2, 0.5, 2.5), (0, 0.5, 3.0)]
    assert board.best().path == _path(3) and board.worst().path == _path(0)


def test_full_board_admission_and_eviction():
    board = PathBoard(size=3, flops_range=(2.0, 5.0))
    for i, acc in enumerate([0.6, 0.5, 0.4]):
        _offer(board, i, acc, 3.0)
    assert not _offer(board, 10, 0.3, 2.1)  # worse than the worst: out, even if cheaper
    assert not _offer(board, 11, 0.4, 3.5)  # ties the worst at higher FLOPs: out
    assert not _offer(board, 12, 0.4, 3.0)  # ties the worst at equal FLOPs: out
    assert _offer(board, 13, 0.4, 2.9)  # ties the worst at lower FLOPs: in, the worst leaves
    assert _state(board) == [(0, 0.6, 3.0), (1, 0.5, 3.0), (13, 0.4, 2.9)]
    assert _offer(board, 14, 0.55, 4.9)  # beats the worst: in at its rank
    assert _state(board) == [(0, 0.6, 3.0), (14, 0.55, 4.9), (1, 0.5, 3.0)]


def test_flops_range_is_enforced_even_when_there_is_room():
    board = PathBoard(size=5, flops_range=(2.0, 5.0))
    assert not _offer(board, 0, 0.99, 5.01)
    assert not _offer(board, 1, 0.99, 1.99)
    assert _offer(board, 2, 0.1, 5.0) and _offer(board, 3, 0.1, 2.0)  # bounds included
    assert len(board) == 2


def test_official_margin_needs_a_gap_to_beat_the_worst():
    board = PathBoard(size=1, margin=5.0)
    _offer(board, 0, 50.0, 3.0)
    assert not _offer(board, 1, 54.0, 3.0)
    assert _offer(board, 2, 55.5, 3.0)
    assert _offer(board, 3, 55.6, 2.0)  # above the worst at lower FLOPs needs no gap


def test_a_path_on_the_board_is_re_recorded_not_duplicated():
    board = PathBoard(size=3)
    _offer(board, 0, 0.5, 3.0)
    _offer(board, 1, 0.6, 3.0)
    assert _offer(board, 0, 0.9, 3.0, step=7)
    assert [e.path for e in board] == [_path(0), _path(1)]
    assert board.entries[0].accuracy == 0.9 and board.entries[0].step == 7


def test_stores_slice_images_and_the_paths_own_softmax():
    board = PathBoard(size=2, slice=4)
    images, logits = torch.randn(8, 1, 8, 8), torch.randn(8, 10)
    board.update(_path(5), 0.5, 3.0, images, logits)
    entry = board.entries[0]
    assert torch.equal(entry.images, images[:4])
    assert torch.allclose(entry.probs, torch.softmax(logits[:4], 1))
    with pytest.raises(ValueError, match="stores 4 images"):
        board.update(_path(6), 0.5, 3.0, images[:3], logits[:3])


def test_state_dict_is_plain_data_and_round_trips():
    board = PathBoard(size=3, flops_range=(2.0, 5.0), slice=2, margin=0.5)
    for i, acc in enumerate([0.6, 0.8, 0.7]):
        _offer(board, i, acc, 2.0 + i)
    buffer = io.BytesIO()
    torch.save(board.state_dict(), buffer)
    buffer.seek(0)
    restored = PathBoard()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert _state(restored) == _state(board)
    assert (restored.size, restored.flops_range, restored.slice, restored.margin) == (
        3, (2.0, 5.0), 2, 0.5
    )  # fmt: skip
    assert all(torch.equal(a.probs, b.probs) for a, b in zip(board, restored, strict=True))
    assert [e["accuracy"] for e in restored.summary()] == [0.8, 0.7, 0.6]


def test_choice_frequencies_per_layer():
    board = PathBoard(size=4)
    for i in (0, 1, 6, 7):  # layer 1 takes 0, 1, 0, 1; layer 2 takes 0, 0, 1, 1; others 0
        _offer(board, i, 0.5, 3.0)
    freq = board.choice_frequencies()
    assert freq.shape == (5, 6)
    assert freq[0].tolist() == [0.5, 0.5, 0, 0, 0, 0] and freq[1].tolist() == [0.5, 0.5, 0, 0, 0, 0]
    assert freq[2].tolist() == [1, 0, 0, 0, 0, 0]
    assert torch.allclose(freq.sum(1), torch.ones(5, dtype=torch.float64))
