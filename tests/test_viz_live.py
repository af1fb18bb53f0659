"""Tests for nasviz.viz.live: throttling, forced final redraw, one display handle reused."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nasviz.history import SearchHistory
from nasviz.viz import live

pytest.importorskip("matplotlib")
pytest.importorskip("IPython")

EDGES = [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]  # a 2-node cell keeps the test fast
OPS = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]


def _log(history: SearchHistory, epoch: int) -> None:
    rng = np.random.default_rng(epoch)
    probs = {c: rng.dirichlet(np.ones(len(OPS)), size=len(EDGES)) for c in ("normal", "reduce")}
    history.log(epoch, epoch, metrics={"train_loss": 1.0 / (epoch + 1)}, alphas=probs)


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
    history = SearchHistory(method="darts", ops=OPS, edges=EDGES)
    plots = live.LivePlots(history, ["alpha_normal", "curves"], min_interval=2.0).attach()
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
    history = SearchHistory(method="darts", ops=OPS, edges=EDGES)
    plots = live.LivePlots(history)
    assert plots.selected() == []
    assert "waiting for data" in plots.to_html()
    _log(history, 0)
    assert plots.selected() == ["alpha_normal", "alpha_reduce", "curves"]


def test_output_widget_mode(clock, displayed) -> None:
    calls, _ = displayed
    history = SearchHistory(method="darts", ops=OPS, edges=EDGES)
    out = FakeOutput()
    plots = live.LivePlots(history, ["curves"], min_interval=0, output=out)
    history.add_callback(plots)
    _log(history, 0)
    _log(history, 1)
    assert out.cleared == 2 and out.entered == 2
    assert len(calls) == 2 and "display_id" not in calls[0]


def test_outside_ipython_it_is_a_no_op(monkeypatch) -> None:
    monkeypatch.setattr(live, "_in_ipython", lambda: False)
    history = SearchHistory(method="darts", ops=OPS, edges=EDGES)
    plots = live.LivePlots(history).attach()
    _log(history, 0)
    plots.finish()
    assert plots.redraws == 0 and not plots.active


def test_plot_errors_do_not_stop_the_search(clock, displayed, monkeypatch) -> None:
    _, handle = displayed
    history = SearchHistory(method="darts", ops=OPS, edges=EDGES)
    live.LivePlots(history, ["curves"], min_interval=0).attach()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(live.evolution, "plot_curves", broken)
    _log(history, 0)
    _log(history, 1)
    assert "boom" in handle.updates[-1].data


def test_unknown_plot_name() -> None:
    with pytest.raises(ValueError, match="unknown live plot 'alphas'"):
        live.LivePlots(SearchHistory(method="darts"), ["alphas"])
