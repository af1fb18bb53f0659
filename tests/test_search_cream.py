"""Cream of the Crop search: config checks, one smoke run's records, KD off, CLI flags, resume."""

import shutil

import pytest
import torch

from nasviz import architectures, loop
from nasviz.cli import build_parser, search_overrides
from nasviz.data import load_dataset
from nasviz.search import cream as cream_search
from nasviz.search import create_search, preset, run_search
from nasviz.search.config import ConfigError
from nasviz.search.cream import BOARD_GROUP, CreamSearch, config_space
from nasviz.spaces.cream import CHOICE_NAMES, CreamPath
from nasviz.viz.cream import pareto_front
from nasviz.viz.evolution import plot_run


@pytest.fixture(scope="module")
def digits():
    """200 real digits (train and held-out come from them; the test split is never used)."""
    data = load_dataset("digits", "train")
    return data.subset(torch.arange(200))


def _tiny(**kw):
    base = dict(
        batch_size=16, epochs=2, max_steps_per_epoch=4, warmup_epochs=1, meta_every=2,
        board_size=3, val_portion=0.2,
    )  # fmt: skip
    base.update(kw)
    return preset("cream", "smoke", **base)


def test_flops_range_no_path_satisfies_names_smallest_and_largest():
    lo, hi = config_space(preset("cream", "quick")).madds_bounds()
    with pytest.raises(
        ConfigError, match=rf"smallest path has {lo:.2f}M and the largest {hi:.2f}M"
    ):
        preset("cream", "quick", flops_min=hi + 1, flops_max=hi + 2)
    with pytest.raises(ConfigError, match="flops_min .* must not exceed flops_max"):
        preset("cream", "quick", flops_min=4.0, flops_max=3.0)
    with pytest.raises(ConfigError, match="board_slice"):
        preset("cream", "quick", batch_size=2)


def test_cli_flags_set_range_board_and_kd():
    args = build_parser().parse_args(
        ["search", "cream", "--flops", "2.5", "4", "--board-size", "7", "--no-kd", "--out", "x"]
    )
    given = search_overrides(args)
    assert given == {"flops_min": 2.5, "flops_max": 4.0, "board_size": 7, "kd": False}
    cfg = preset("cream", "quick", **given)
    assert (cfg.flops_range, cfg.board_size, cfg.kd) == ((2.5, 4.0), 7, False)


def test_smoke_run_fills_board_within_range_and_records_it(digits):
    cfg = _tiny(flops_min=2.5, flops_max=4.0)
    result = run_search(cfg, train_data=digits, progress=False)
    path = result.architecture
    assert isinstance(path, CreamPath) and path.kind == "cream"
    search_space = config_space(cfg)
    assert 2.5 <= search_space.madds(path) <= 4.0
    last = result.history.last()
    board = last["extra"]["board"]
    assert 1 <= len(board) <= 3 and last["extra"]["board_size"] == len(board)
    assert all(2.5 <= e["madds"] <= 4.0 for e in board)
    assert [e["accuracy"] for e in board] == sorted((e["accuracy"] for e in board), reverse=True)
    assert CreamPath.from_dict(board[0]["path"]) == path
    # the per-layer choice frequencies of the board: rows = layers, cols = the six blocks
    spec = result.history.group_spec(BOARD_GROUP)
    assert spec["rows"] == search_space.layer_names() and spec["cols"] == list(CHOICE_NAMES)
    _, freq = result.history.group_series(BOARD_GROUP)
    assert freq.shape[1:] == (search_space.num_layers(), 6)
    assert torch.allclose(torch.tensor(freq[-1]).sum(1), torch.ones(freq.shape[1], dtype=float))
    # the teacher and the meta-network were at work after the warm-up
    assert last["extra"]["kd_steps"] > 0 and last["extra"]["meta_updates"] >= 1
    assert 0.0 < last["extra"]["matching_score"] < 1.0
    assert "train_kd" in last["metrics"] and "val_acc" in last["metrics"]
    # the epoch-0 and warm-up records carry no board group (the board is empty)
    assert BOARD_GROUP not in result.history.epochs()[0].get("groups", {})


def test_no_kd_is_plain_uniform_sampling(digits):
    result = run_search(_tiny(kd=False), train_data=digits, progress=False)
    last = result.history.last()
    assert last["extra"]["kd_steps"] == 0 and last["extra"]["meta_updates"] == 0
    assert "train_kd" not in last["metrics"] and last["extra"]["board_size"] >= 1


def test_a_path_is_evaluated_with_its_own_bn_statistics(digits):
    """evaluate() recomputes BN statistics for the path and restores the supernet's own."""
    search = create_search(_tiny(kd=False), train_data=digits)
    search.run(progress=False)
    before = {k: v.clone() for k, v in search.supernet.state_dict().items()}
    path = search.derive()
    loss, acc = search.evaluate(path)
    after = search.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats restored
    assert search.evaluate(path) == (loss, acc)  # same calibration images every time
    model = cream_search._PathModel(search.supernet, path)
    plain = loop.evaluate(model, search.eval_loader, search.device, False)
    assert plain != (loss, acc)  # the shared running statistics give another figure


def test_interrupted_and_resumed_equals_straight_run(digits, tmp_path):
    cfg = _tiny(epochs=3)
    straight = create_search(cfg, tmp_path / "a", train_data=digits)
    straight.run(progress=False)
    first = create_search(cfg, tmp_path / "b", train_data=digits)

    def interrupt(history, record):  # Ctrl-C right after epoch 1 was saved
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(progress=False, callbacks=[interrupt])
    resumed = create_search(cfg, tmp_path / "b", resume=True, train_data=digits)
    assert resumed.epoch == 1
    resumed.run(progress=False)
    for k, v in straight.supernet.state_dict().items():
        assert torch.equal(v, resumed.supernet.state_dict()[k]), k
    assert straight.board.summary() == resumed.board.summary()
    assert torch.equal(straight.meta.layer.weight, resumed.meta.layer.weight)
    a, b = straight.history.epochs()[-1], resumed.history.epochs()[-1]
    assert a["metrics"]["train_loss"] == b["metrics"]["train_loss"]
    assert a["extra"]["board"] == b["extra"]["board"]
    saved = architectures.load(tmp_path / "b" / "genotype.json")
    assert saved == straight.derive()
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)  # plain data
    assert state["method"] == "cream" and len(state["method_state"]["board"]["entries"]) >= 1
    assert isinstance(resumed, CreamSearch)
    # `nasviz plot`: the shared plots from the board group, the board over time, the path
    written = {p.name for p in plot_run(tmp_path / "a")}
    assert {"cream_board.png", "extra.png", "curves.png"} <= written
    assert {"board_choices.png", "heatmap_board_choices.png"} <= written
    if shutil.which("dot"):
        assert "cream_path.png" in written


def test_pareto_front():
    points = [(3.0, 0.5), (2.0, 0.4), (4.0, 0.45), (5.0, 0.7), (2.5, 0.4)]
    assert pareto_front(points) == [(2.0, 0.4), (3.0, 0.5), (5.0, 0.7)]
