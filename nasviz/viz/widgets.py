"""A control panel per search method: the paper's knobs, a Run button, live plots, the derived cell.

    panel = SearchPanel("pc-darts", preset="quick")   # or search_panel("pc-darts")
    panel                                              # shows the panel in Jupyter
    result = panel.run()                               # what the Run button does

The panel only wires widgets to library functions: `nasviz.search.preset` builds the config,
`nasviz.search.create_search` runs it, `nasviz.viz.live.LivePlots` draws the evolution into an
``ipywidgets.Output``, `nasviz.viz.cells.genotype_graph` the derived cell, and
`nasviz.viz.runs.RunList` keeps every finished run for the table and the overlay plot.

Controls can only hold valid values: dropdowns, bounded numbers, and K restricted to the divisors
`valid_k` allows for the preset's supernet. A combination the config rejects (e.g. a final
temperature above the start) is reported in the status line, never raised.

The search runs synchronously in the kernel: the widgets (progress, status, the live-plot
Output) still update while it runs. There is no background-thread mode on purpose: output
captured by ``with output:`` from another thread lands in whichever cell runs last.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from typing import Any

import ipywidgets as W

from nasviz.history import Record, SearchHistory
from nasviz.search import create_search, preset, registry
from nasviz.search.base import SearchResult
from nasviz.search.config import PRESETS, ConfigError, SearchConfig, suggest
from nasviz.viz.cells import DotNotFoundError
from nasviz.viz.live import LivePlots
from nasviz.viz.runs import RunList, RunRecord, fresh_run_dir

DATASETS: tuple[str, ...] = ("digits", "cifar10")
# Errors a user's settings can cause: shown in the status line instead of raised.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError)

_STYLE = {"description_width": "initial"}


def _layout(width: str = "190px") -> W.Layout:
    return W.Layout(width=width)


def _figure_png(fig: Any, dpi: int = 80) -> str:
    """A matplotlib Figure as base64 PNG text."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _show(output: W.Output, data: dict[str, str]) -> None:
    """Replace what ``output`` shows with one display_data (works with or without a kernel)."""
    output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


def _labelled_width(label: str, box: int = 70, least: int = 170) -> str:
    """A width that leaves ``box`` pixels for the input after the label (~7.5 px a character):
    with a fixed width a long label ("Ray workers (0: in-process)") squeezed the box to nothing."""
    return f"{max(least, round(7.5 * len(label)) + box)}px"


def make_control(control: registry.Control) -> W.Widget:
    """The ipywidget for a registry `Control` (options filled in by the panel from the preset)."""
    kw: dict[str, Any] = dict(description=control.label, style=_STYLE, tooltip=control.help)
    width = _labelled_width(control.label)
    if control.widget == "dropdown":
        options = control.options if not callable(control.options) else []
        return W.Dropdown(options=list(options), layout=_layout(width), **kw)
    if control.widget == "toggle":
        return W.ToggleButtons(
            options=list(control.options or []),
            style={"button_width": "80px"},
            description=control.label,
        )
    if control.widget == "checkbox":
        return W.Checkbox(indent=False, layout=_layout(), description=control.label)
    if control.widget == "int":
        return W.BoundedIntText(
            min=control.min or 0, max=control.max or 10**9, layout=_layout(width), **kw
        )
    if control.widget == "float":
        step = control.step or 0.1
        return W.BoundedFloatText(
            min=control.min or 0.0, max=control.max or 1e9, step=step, layout=_layout(width), **kw
        )
    raise ValueError(f"unknown control widget {control.widget!r} for {control.field}")


class SearchPanel:
    """An ipywidgets control panel for one search method; every finished run lands in `runs`.

    ``overrides`` are fixed `preset` overrides under the widgets (e.g. a smaller supernet),
    ``search_kwargs`` go to `create_search` (e.g. ``train_data``/``val_data``), ``live`` turns the
    live plots on or off and ``live_plots`` chooses them (see `LivePlots`).
    """

    def __init__(
        self,
        method: str = "pc-darts",
        preset: str = "quick",
        runs: RunList | None = None,
        out_root: str | None = None,
        *,
        overrides: dict[str, Any] | None = None,
        search_kwargs: dict[str, Any] | None = None,
        live: bool = True,
        live_plots: list[str] | None = None,
        live_interval: float = 2.0,
    ) -> None:
        self.entry = registry.get(method)
        if preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {preset!r}{suggest(preset, PRESETS)}; presets: {', '.join(PRESETS)}"
            )
        self.method = method
        self.runs = RunList() if runs is None else runs
        self.out_root = out_root
        self.overrides = dict(overrides or {})
        self.search_kwargs = dict(search_kwargs or {})
        self.live = live
        self.live_plots = live_plots
        self.live_interval = live_interval
        self.result: SearchResult | None = None  # the last finished run
        self.live_view: LivePlots | None = None  # the live plots of the last run
        self.last_error: BaseException | None = None
        self._busy = False
        self._label = ""  # label of the run in progress
        self._build(preset)

    # ------------------------------------------------------------------ widgets
    def _build(self, preset_name: str) -> None:
        lay = _layout
        self.preset_widget = W.Dropdown(
            options=PRESETS, value=preset_name, description="preset", layout=lay()
        )
        c: dict[str, W.Widget] = {
            "dataset": W.Dropdown(options=DATASETS, description="dataset", layout=lay()),
            "epochs": W.BoundedIntText(min=1, max=1000, description="epochs", layout=lay("150px")),
            "batch_size": W.BoundedIntText(
                min=1, max=4096, description="batch", layout=lay("150px")
            ),
            "max_steps_per_epoch": W.BoundedIntText(
                min=0,
                max=100_000,
                description="max steps/epoch (0 = all)",
                style=_STYLE,
                layout=lay("230px"),
            ),
            "seed": W.BoundedIntText(min=0, max=2**31 - 1, description="seed", layout=lay("150px")),
        }
        self.specs = {control.field: control for control in self.entry.controls}
        for name, control in self.specs.items():  # the method's own knobs, from the registry
            c[name] = make_control(control)
            if control.sets is not None:
                c[name].observe(self._on_sets(control), names="value")
        self.controls = c

        self.run_button = W.Button(description="Run search", button_style="primary", icon="play")
        self.run_button.on_click(self._on_click)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="epoch 0/0", style=_STYLE)
        self.status = W.HTML(value="ready")
        self.live_output = W.Output()
        self.cell_output = W.Output()
        self.table = W.HTML(value=self.runs.to_html(), layout=W.Layout(width="100%"))
        self.overlay_output = W.Output()

        self._load_preset(preset_name)
        self.preset_widget.observe(lambda change: self._load_preset(change["new"]), names="value")

        common = ["dataset", "epochs", "batch_size", "max_steps_per_epoch", "seed"]
        specific = [name for name in c if name not in common]
        rows = [
            W.HTML(f"<b>{self.entry.title} search</b>"),
            W.HBox([self.preset_widget] + [c[n] for n in common[:3]]),
            W.HBox([c[n] for n in common[3:]]),
            W.HBox([c[n] for n in specific[:3]]),
            W.HBox([c[n] for n in specific[3:]]),
            W.HBox([self.run_button, self.progress, self.status]),
            W.HTML("<b>Live plots</b>"),
            self.live_output,
            W.HTML("<b>Derived cell</b>"),
            self.cell_output,
            W.HTML("<b>Runs</b>"),
            self.table,
            self.overlay_output,
        ]
        self.widget = W.VBox([r for r in rows if not (isinstance(r, W.HBox) and not r.children)])

    def _base_config(self, preset_name: str) -> SearchConfig:
        return preset(self.method, preset_name, **self.overrides)

    def _load_preset(self, preset_name: str) -> None:
        """Set every control to ``preset_name``'s value; new K choices for its supernet."""
        base = self._base_config(preset_name)
        for name, widget in self.controls.items():
            spec = self.specs.get(name)
            value = getattr(base, name)
            if spec is not None and callable(spec.options):  # options that depend on the preset
                options = list(spec.options(base))
                widget.options = options
                value = value if value in options else options[0]
            if name == "max_steps_per_epoch":
                value = value or 0
            if value is None and spec is not None and spec.widget == "float":
                continue  # None = derived from another control (its `sets` fills it in)
            widget.value = value
        for name, spec in self.specs.items():
            if spec.sets is not None and getattr(base, name) is not None:
                self._apply_sets(spec, getattr(base, name), keep_explicit=base)

    def _on_sets(self, spec: registry.Control) -> Any:
        """A control whose value implies others (SNAS: a constraint sets its λ, still editable)."""
        return lambda change: self._apply_sets(spec, change["new"])

    def _apply_sets(self, spec: registry.Control, value: Any, keep_explicit: Any = None) -> None:
        for name, implied in spec.sets(value).items():
            if keep_explicit is not None and getattr(keep_explicit, name, None) is not None:
                continue
            if name in self.controls:
                self.controls[name].value = implied

    @property
    def preset_name(self) -> str:
        """The preset the panel is set to."""
        return self.preset_widget.value

    def values(self) -> dict[str, Any]:
        """The controls' values as `preset` overrides."""
        return {name: w.value for name, w in self.controls.items()}

    def set(self, **values: Any) -> None:
        """Set controls by config field name (``max_steps_per_epoch=0`` means the whole split)."""
        if "preset" in values:
            self.preset_widget.value = values.pop("preset")
        for name in values:
            if name not in self.controls:
                raise ConfigError(
                    f"no control for {name!r}{suggest(name, list(self.controls))} in the "
                    f"{self.method} panel; controls: {list(self.controls)}"
                )
        for name, value in values.items():
            self.controls[name].value = value

    # ------------------------------------------------------------------ config
    def config(self, overrides: dict[str, Any] | None = None, **kw: Any) -> SearchConfig | None:
        """The controls' SearchConfig (plus ``overrides``); None (error in status) if invalid."""
        values = {**self.overrides, **self.values(), **(overrides or {}), **kw}
        whole_split = values.get("max_steps_per_epoch") == 0
        if whole_split:
            values.pop("max_steps_per_epoch")
        try:
            cfg = preset(self.method, self.preset_name, **values)
            if whole_split:
                cfg = dataclasses.replace(cfg, max_steps_per_epoch=None)
        except ValueError as exc:  # ConfigError names the bad value
            self._error(exc)
            return None
        return cfg

    # ------------------------------------------------------------------ running
    def _on_click(self, _button: W.Button) -> None:
        self.run()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in [self.run_button, self.preset_widget, *self.controls.values()]:
            widget.disabled = busy

    def _error(self, exc: BaseException) -> None:
        self.last_error = exc
        text = html.escape(f"{type(exc).__name__}: {exc}", quote=False)
        self.status.value = f'<span style="color:#b00020">{text}</span>'

    def _on_record(self, history: SearchHistory, record: Record) -> None:
        """History callback: advance the progress bar and the status line after every epoch."""
        if record["kind"] != "epoch" or record["epoch"] == 0:
            return
        epoch = record["epoch"]
        self.progress.value = epoch
        self.progress.description = f"epoch {epoch}/{self.progress.max}"
        m = record.get("metrics", {})
        parts = [f"{k} {m[k]:.3f}" for k in ("train_loss", "val_acc") if k in m]
        if "seconds" in m:
            parts.append(f"{m['seconds']:.1f} s")
        self.status.value = html.escape(f"{self._label}: epoch {epoch}: " + ", ".join(parts))

    def run(self, overrides: dict[str, Any] | None = None) -> SearchResult | None:
        """Run a search with the current settings (the Run button); None if it could not run."""
        if self._busy:
            self.status.value = "a search is already running"
            return None
        cfg = self.config(overrides)
        if cfg is None:
            return None
        self.last_error = None
        self._label = self.runs.label_for(cfg)
        self._set_busy(True)
        self.progress.max, self.progress.value = cfg.epochs, 0
        self.progress.description = f"epoch 0/{cfg.epochs}"
        self.progress.bar_style = "info"
        self.status.value = html.escape(f"{self._label}: starting")
        live = None
        try:
            out = fresh_run_dir(self.out_root, self._label) if self.out_root is not None else None
            search = create_search(cfg, out, **self.search_kwargs)
            callbacks: list[Any] = [self._on_record]
            if self.live:
                live = LivePlots(
                    search.history, self.live_plots, self.live_interval, output=self.live_output
                )
                self.live_view = live
                callbacks.append(live)
            result = search.run(progress=False, callbacks=callbacks)
            if live is not None:
                live.finish()
        except USER_ERRORS as exc:
            self.progress.bar_style = "danger"
            self._error(exc)
            return None
        except Exception as exc:  # a bug: show it, then let the traceback through
            self.progress.bar_style = "danger"
            self._error(exc)
            raise
        finally:
            self._set_busy(False)
        self.result = result
        record = self.runs.add(result, self._label)
        self.progress.bar_style = "success"
        self._show_run(record)
        return result

    def _show_run(self, record: RunRecord) -> None:
        """The derived cell, the status summary, the table and the overlay after a run."""
        s = record.summary()
        self.status.value = html.escape(
            f"{record.label}: done, val_acc {s['val_acc']:.3f}, "
            f"{s['seconds_per_epoch']:.1f} s/epoch, eval-net params {s['params'] / 1e6:.2f}M"
        )
        self.show_cell(record)
        self.refresh_runs()

    def show_cell(self, record: RunRecord) -> None:
        """Draw ``record``'s genotype in the cell output (install help if Graphviz is missing)."""
        try:
            svg = record.genotype.graph(title=record.label).pipe(format="svg", encoding="utf-8")
            data = {"image/svg+xml": svg, "text/plain": str(record.genotype)}
        except DotNotFoundError as exc:
            data = {"text/plain": f"{exc}\n\n{record.genotype}"}
        _show(self.cell_output, data)

    def refresh_runs(self, metric: str = "val_acc") -> None:
        """Redraw the run table and the overlay of ``metric`` (e.g. after runs added elsewhere)."""
        self.table.value = self.runs.to_html()
        if not len(self.runs):
            self.overlay_output.outputs = ()
            return
        from matplotlib.figure import Figure

        fig: Figure = self.runs.plot_overlay(metric)
        _show(
            self.overlay_output,
            {"image/png": _figure_png(fig), "text/plain": f"<{metric} overlay>"},
        )

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def search_panel(method: str = "pc-darts", **kw: Any) -> SearchPanel:
    """A `SearchPanel` for ``method`` (keyword arguments as SearchPanel's)."""
    return SearchPanel(method, **kw)


__all__ = ["DATASETS", "SearchPanel", "make_control", "search_panel"]
