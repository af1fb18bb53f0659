"""Tests for nasviz.viz.widgets and nasviz.viz.runs: panels, K choices, runs via the button."""

from __future__ import annotations

import pytest

from nasviz.search.snas import CONSTRAINTS

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from nasviz.data import search_split, synthetic_dataset  # noqa: E402
from nasviz.search import SearchConfig, preset  # noqa: E402
from nasviz.spaces.darts import SpaceConfig, valid_k  # noqa: E402
from nasviz.viz.runs import RunList, run_ablation  # noqa: E402
from nasviz.viz.widgets import SearchPanel, search_panel  # noqa: E402

# A 3-cell, 4-channel supernet on 24+24 random digits-shaped images: one step per run.
TINY = dict(C=4, layers=3, batch_size=8)


@pytest.fixture(scope="module")
def data() -> dict:
    train, val = search_split(synthetic_dataset("digits", 48, seed=0), 0.5)
    return {"train_data": train, "val_data": val}


def _panel(data: dict, **kw) -> SearchPanel:
    panel = SearchPanel("pc-darts", "smoke", overrides=TINY, search_kwargs=data, live=False, **kw)
    panel.set(epochs=1, max_steps_per_epoch=1)
    return panel


@pytest.mark.parametrize("method", ["darts", "pc-darts", "snas"])
def test_panels_build_for_every_method(method):
    panel = search_panel(method)
    assert panel.widget.children, "the panel has a layout"
    assert panel._repr_mimebundle_()["text/plain"]
    cfg = panel.config()
    assert isinstance(cfg, SearchConfig) and cfg.method == method
    assert ("order" in panel.controls) == (method == "darts")
    assert ("k" in panel.controls) == (method == "pc-darts")
    assert ("temperature_start" in panel.controls) == (method == "snas")


def test_k_choices_are_the_valid_divisors_of_the_preset():
    panel = SearchPanel("pc-darts", "quick")
    quick = preset("pc-darts", "quick")
    assert list(panel.controls["k"].options) == valid_k(SpaceConfig(C=quick.C, layers=quick.layers))
    assert panel.controls["k"].value == quick.k
    panel.preset_widget.value = "paper"
    paper = preset("pc-darts", "paper")
    assert (
        list(panel.controls["k"].options)
        == valid_k(SpaceConfig(C=paper.C, layers=paper.layers))
        == [1, 2, 4, 8, 16]
    )
    assert panel.controls["k"].value == 4 and panel.config().k == 4
    assert (
        panel.controls["epochs"].value == paper.epochs
        and panel.controls["dataset"].value == "cifar10"
    )


def test_snas_constraint_sets_lambda_and_bad_temperatures_are_reported():
    panel = SearchPanel("snas", "quick")
    panel.set(constraint="moderate")
    assert panel.controls["resource_lambda"].value == pytest.approx(CONSTRAINTS["moderate"])
    assert panel.config().effective_resource_lambda() == pytest.approx(CONSTRAINTS["moderate"])
    panel.set(constraint="aggressive")  # a new constraint brings its own strength
    assert panel.config().effective_resource_lambda() == pytest.approx(CONSTRAINTS["aggressive"])
    panel.set(resource_lambda=0.5)
    assert panel.config().effective_resource_lambda() == 0.5
    panel.set(temperature_start=0.1, temperature_end=1.0)
    assert panel.config() is None
    assert "temperature_end" in panel.status.value


def test_bad_config_goes_to_the_status_line():
    panel = SearchPanel("pc-darts", "quick", overrides=TINY)
    assert panel.config({"k": 3}) is None
    assert "k=3" in panel.status.value and "[1, 2, 4]" in panel.status.value
    assert panel.run({"epochs": 0}) is None
    assert "epochs must be &gt;= 1" in panel.status.value
    assert not panel.run_button.disabled and len(panel.runs) == 0
    assert panel.config({"no_such_knob": 1}) is None and "no_such_knob" in panel.status.value
    with pytest.raises(ValueError, match="no control"):
        panel.set(order=2)


def test_run_button_runs_records_and_compares(data, tmp_path):
    panel = _panel(data, out_root=str(tmp_path))
    panel.set(k=2)
    panel.run_button.click()
    assert len(panel.runs) == 1
    record = panel.runs[0]
    assert record.label == "pc-darts K=2 #1" and record.config.epochs == 1
    assert [r["epoch"] for r in record.history.epochs()] == [0, 1]
    assert not panel.run_button.disabled and not panel.controls["k"].disabled
    assert panel.progress.value == panel.progress.max == 1
    assert (tmp_path / "pc-darts-K=2--1" / "genotype.json").exists()
    row = panel.runs.table()[0]
    assert row["label"] == "pc-darts K=2 #1" and row["k"] == 2
    assert row["val_acc"] == record.history.metric("val_acc")[1][-1]
    assert row["seconds_per_epoch"] > 0 and row["params"] > 100_000
    assert "pc-darts K=2 #1" in panel.table.value and "pc-darts K=2 #1" in panel.runs.to_markdown()
    cell = panel.cell_output.outputs[0]["data"]
    assert "image/svg+xml" in cell or "Graphviz" in cell["text/plain"]
    assert "image/png" in panel.overlay_output.outputs[0]["data"]

    panel.set(k=4)
    result = panel.run()
    assert result is not None and result.config.k == 4
    assert [r.label for r in panel.runs] == ["pc-darts K=2 #1", "pc-darts K=4 #2"]
    fig = panel.runs.plot_overlay("val_acc")
    assert len(fig.axes[0].get_lines()) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "pc-darts K=2 #1",
        "pc-darts K=4 #2",
    ]
    assert panel.runs.varied() == ["k"] and panel.runs.tradeoff_knob() == "k"


def test_live_plots_and_a_failing_run_reenables_the_panel(data, monkeypatch):
    panel = SearchPanel("darts", "smoke", overrides=TINY, search_kwargs=data, live_plots=["curves"])
    panel.set(epochs=1, max_steps_per_epoch=1)
    result = panel.run()
    assert result is not None and panel.runs[0].label == "darts order=1 #1"
    assert panel.live_view is not None and panel.live_view.redraws >= 1
    assert panel.live_view.selected() == ["curves"]

    def boom(*args, **kwargs):
        raise FileNotFoundError("no dataset here")

    monkeypatch.setattr("nasviz.viz.widgets.create_search", boom)
    assert panel.run() is None
    assert "no dataset here" in panel.status.value
    assert not panel.run_button.disabled and len(panel.runs) == 1


def test_run_ablation_and_tradeoff(data):
    runs = run_ablation(
        "pc-darts",
        "smoke",
        "k",
        [1, 2],
        search_kwargs=data,
        epochs=1,
        max_steps_per_epoch=1,
        **TINY,
    )
    assert isinstance(runs, RunList) and len(runs) == 2
    assert [r.config.k for r in runs] == [1, 2] and [r.label for r in runs] == [
        "pc-darts K=1 #1",
        "pc-darts K=2 #2",
    ]
    fig = runs.plot_tradeoff()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    from nasviz.resources import count_parameters

    g = runs[0].genotype
    assert runs[0].params() == count_parameters(g.build_network(num_classes=10, image_size=32))
    with pytest.raises(ValueError, match="unknown knob"):
        run_ablation("pc-darts", "smoke", "kay", [1])
    with pytest.raises(ValueError, match="no runs"):
        RunList().plot_overlay()


def test_a_long_control_label_leaves_room_for_its_input():
    """The input box keeps its 70 px however long the label ("Ray workers (0: in-process)")."""
    from nasviz.search import registry
    from nasviz.viz.widgets import make_control

    long = registry.Control("workers", "int", "Ray workers (0: in-process)", min=0, max=64)
    short = registry.Control("children", "int", "children", min=1, max=64)
    assert make_control(long).layout.width == f"{round(7.5 * len(long.label)) + 70}px"
    assert make_control(short).layout.width == "170px"
