"""Live plots during a search: one notebook output, redrawn in place at most every few seconds.

    live = LivePlots(history).attach()   # or history.add_callback(LivePlots(history))
    run_search(..., history=history)
    live.finish()                        # final redraw, detach

Each redraw renders the chosen figures (see ``nasviz.viz.evolution.available_plots``) to PNG and
replaces the content of a single ``IPython.display`` handle (or of an ``ipywidgets.Output``
passed as ``output``), so the notebook does not grow by one output per epoch. Outside IPython,
with no ``output`` widget, the object does nothing at all.
"""

from __future__ import annotations

import base64
import html
import io
import time
from typing import Any

from nasviz.history import Record, SearchHistory
from nasviz.viz import evolution

DEFAULT_PLOTS = ("alpha_normal", "alpha_reduce", "curves", "beta_normal", "beta_reduce")
_FIXED_NAMES = {"curves", "entropy", "stability", "extra"}
_PER_CELL_PREFIXES = ("alpha_", "heatmap_", "beta_")


def _in_ipython() -> bool:
    """True when running under an IPython shell or kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _check_names(plots: list[str]) -> None:
    """ValueError naming a plot that available_plots could never offer."""
    for name in plots:
        if name not in _FIXED_NAMES and not name.startswith(_PER_CELL_PREFIXES):
            raise ValueError(
                f"unknown live plot {name!r}; use {sorted(_FIXED_NAMES)} or "
                f"alpha_<cell>, heatmap_<cell>, beta_<cell> (cell = normal or reduce)"
            )


def _png_tag(fig: Any, dpi: int) -> str:
    """A figure as an inline base64 <img> tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%;margin:2px">'


class LivePlots:
    """A SearchHistory callback that redraws chosen plots into one notebook output, throttled."""

    def __init__(
        self,
        history: SearchHistory,
        plots: list[str] | None = None,
        min_interval: float = 2.0,
        *,
        output: Any = None,
        kind: str = "epoch",
        dpi: int = 72,
    ) -> None:
        if plots is not None:
            _check_names(list(plots))
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval}")
        self.history = history
        self.plots = list(plots) if plots is not None else None
        self.min_interval = float(min_interval)
        self.output = output
        self.kind = kind
        self.dpi = dpi
        self.redraws = 0  # how many times the output was rendered
        self.render_seconds = 0.0  # duration of the last render
        self._handle: Any = None
        self._last_draw: float | None = None
        self._attached = False

    # ------------------------------------------------------------------ wiring
    @property
    def active(self) -> bool:
        """Whether anything will be shown: an output widget was given, or we run in IPython."""
        return self.output is not None or _in_ipython()

    def attach(self) -> LivePlots:
        """Register as a callback of the history; returns self for chaining."""
        if not self._attached:
            self.history.add_callback(self)
            self._attached = True
        return self

    def detach(self) -> None:
        """Stop listening to the history."""
        if self._attached:
            self.history.remove_callback(self)
            self._attached = False

    def __call__(self, history: SearchHistory, record: Record) -> None:
        """History callback: redraw if the interval has passed since the last redraw."""
        self.update()

    def finish(self) -> None:
        """Draw the final state now (ignoring the interval) and detach from the history."""
        self.update(force=True)
        self.detach()

    # ------------------------------------------------------------------ drawing
    def update(self, force: bool = False) -> bool:
        """Redraw if forced or ``min_interval`` seconds have passed; returns whether it drew."""
        if not self.active:
            return False
        now = time.monotonic()
        # Never spend more than ~20% of the search redrawing, even if a redraw is slow.
        interval = max(self.min_interval, 4 * self.render_seconds)
        if not force and self._last_draw is not None and now - self._last_draw < interval:
            return False
        self._render()
        self.render_seconds = time.monotonic() - now
        self._last_draw = time.monotonic()
        self.redraws += 1
        return True

    def selected(self) -> list[str]:
        """The plot names that will be drawn now, given what the history holds so far."""
        available = evolution.available_plots(self.history, self.kind)
        wanted = self.plots if self.plots is not None else DEFAULT_PLOTS
        return [name for name in wanted if name in available]

    def to_html(self) -> str:
        """The current plots as one HTML fragment of inline PNGs (errors shown, not raised)."""
        available = evolution.available_plots(self.history, self.kind)
        parts = []
        for name in self.selected():
            try:
                parts.append(_png_tag(available[name](), self.dpi))
            except Exception as exc:  # a plotting bug must never stop the search
                parts.append(f"<pre>{name}: {html.escape(repr(exc))}</pre>")
        if not parts:
            parts.append(f"<pre>waiting for data ({len(self.history.records)} records)</pre>")
        return "<div>" + "".join(parts) + "</div>"

    def _render(self) -> None:
        """Show the current plots in the output widget or the single display handle."""
        from IPython.display import HTML, display

        content = HTML(self.to_html())
        if self.output is not None:
            with self.output:
                self.output.clear_output(wait=True)
                display(content)
        elif self._handle is None:
            self._handle = display(content, display_id=True)
        else:
            self._handle.update(content)
