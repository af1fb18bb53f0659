"""Tests for nasviz.viz.live: throttling, forced final redraw, one display handle reused."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nasviz.history import SearchHistory, darts_group_specs, darts_groups
from nasviz.viz import live

pytest.importorskip("matplotlib")
pytest.importorskip("IPython")

STEPS = 2  # a 2-node cell (5 edges) keeps the test fast
OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def _history() -> SearchHistory:
    """A DARTS history with its groups declared up front, as the search engine does."""
    history = SearchHistory(method="darts")
    history.declare_groups(darts_group_specs(OPS, STEPS))
    return history


def _log(history: SearchHistory, epoch: int) -> None:
    rng = np.random.default_rng(epoch)
    probs = {c: rng.dirichlet(np.ones(len(OPS)), size=5) for c in ("normal", "reduce")}
    _, groups = darts_groups(probs, None, OPS, STEPS)
    history.log(epoch, epoch, metrics={"train_loss": 1.0 / (epoch + 1)}, groups=groups)


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list[object] = []

    def update(self, obj: object) -> None:
        self.updates.append(obj)


class FakeOutput:
    def __init__(self) -> None:
        self.cleared = 0
        self.entered = 0

    def __enter__(self) -> FakeOutput:
        self.entered += 1
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def clear_output(self, wait: bool = False) -> None:
        assert wait, "clear_output(wait=True) avoids flicker"
        self.cleared += 1


@pytest.fixture()
def clock(monkeypatch) -> list[float]:
    """A fake monotonic clock the test advances by hand."""
    now = [100.0]
    monkeypatch.setattr(live, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture()
def displayed(monkeypatch) -> tuple[list[dict], FakeHandle]:
    """Pretend to be in IPython; record display() calls and hand back one fake handle."""
    import IPython.display

    calls: list[dict] = []
    handle = FakeHandle()

    def fake_display(obj: object, **kwargs: object) -> FakeHandle:
        calls.append({"obj": obj, **kwargs})
        return handle

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(live, "_in_ipython", lambda: True)
    return calls, handle


def test_redraws_are_throttled_and_reuse_one_handle(clock, displayed) -> None:
    calls, handle = displayed
    history = _history()
    plots = live.LivePlots(history, ["alpha_normal", "curves"], min_interval=2.0, dpi=30).attach()
    for epoch in range(10):  # 0.5 s per epoch: a redraw every 4 epochs
        _log(history, epoch)
        clock[0] += 0.5
    assert plots.redraws == 3  # epochs 0, 4, 8
    assert len(calls) == 1 and calls[0]["display_id"] is True
    assert len(handle.updates) == 2
    html = handle.updates[-1].data
    assert html.count("<img") == 2 and "data:image/png;base64," in html

    plots.finish()  # forced, although the interval has not passed
    assert plots.redraws == 4 and len(handle.updates) == 3
    _log(history, 10)  # detached by finish(): no more redraws
    clock[0] += 10
    assert plots.redraws == 4


def test_default_plots_follow_the_data(clock, displayed) -> None:
    history = _history()
    plots = live.LivePlots(history)
    assert plots.selected() == []
    assert "waiting for data" in plots.to_html()
    _log(history, 0)
    assert plots.selected() == ["alpha_normal", "alpha_reduce", "curves"]


def test_output_widget_mode(clock, displayed) -> None:
    calls, _ = displayed
    history = _history()
    out = FakeOutput()
    plots = live.LivePlots(history, ["curves"], min_interval=0, output=out)
    history.add_callback(plots)
    _log(history, 0)
    _log(history, 1)
    assert out.cleared == 2 and out.entered == 2
    assert len(calls) == 2 and "display_id" not in calls[0]


def test_outside_ipython_it_is_a_no_op(monkeypatch) -> None:
    monkeypatch.setattr(live, "_in_ipython", lambda: False)
    history = _history()
    plots = live.LivePlots(history).attach()
    _log(history, 0)
    plots.finish()
    assert plots.redraws == 0 and not plots.active


def test_plot_errors_do_not_stop_the_search(clock, displayed, monkeypatch) -> None:
    _, handle = displayed
    history = _history()
    live.LivePlots(history, ["curves"], min_interval=0).attach()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(live.evolution, "plot_curves", broken)
    _log(history, 0)
    _log(history, 1)
    assert "boom" in handle.updates[-1].data


def test_unknown_plot_name() -> None:
    with pytest.raises(ValueError, match="unknown live plot 'alphas'.*alpha_normal"):
        live.LivePlots(_history(), ["alphas"])


def test_names_checked_once_groups_exist(clock, displayed) -> None:
    history = SearchHistory(method="nasnet")  # groups declared with the first record
    plots = live.LivePlots(history, ["curves", "op_typo"], min_interval=0)
    history.declare_group("op/block 1", ["normal block 1 op a"], ["identity", "sep_conv_3x3"])
    history.log(0, 0, metrics={"train_loss": 1.0}, groups={"op/block 1": [[0.5, 0.5]]})
    assert plots.selected() == ["curves"]
    assert "unknown live plot &#x27;op_typo&#x27;" in plots.to_html()


def test_plot_aliases(clock, displayed) -> None:
    history = _history()
    _log(history, 0)
    plots = live.LivePlots(history, ["alpha/reduce", "heatmap_normal", "alpha_reduce"])
    assert plots.selected() == ["alpha_reduce", "heatmap_alpha_normal"]


def test_default_plots_of_a_controller_history(clock, displayed) -> None:
    history = SearchHistory(method="nasnet")
    for g in ("op/block 1", "op/block 2", "input/block 1", "input/block 2", "combine/block 1"):
        history.declare_group(g, ["normal", "reduce"], ["a", "b"])
    history.log(0, 0, metrics={"val_acc": 0.5}, groups={"op/block 1": np.full((2, 2), 0.5)})
    assert live.default_plots(history) == [
        "op_block_1", "op_block_2", "curves", "input_block_1", "input_block_2"
    ]  # fmt: skip
    assert live.LivePlots(history).selected() == ["op_block_1", "curves"]  # those with data
