"""Live plots during a search: one notebook output, redrawn in place at most every few seconds.

    live = LivePlots(history).attach()   # or history.add_callback(LivePlots(history))
    run_search(..., history=history)
    live.finish()                        # final redraw, detach

Plots are chosen by the names of ``nasviz.viz.evolution.available_plots`` ('curves', 'entropy',
'stability', 'extra', a group's evolution 'alpha_normal' or heatmap 'heatmap_alpha_normal') or
by group name ('alpha/normal'); by default the evolution of the first groups and the curves.
Each redraw renders the chosen figures to PNG and replaces the content of a single
``IPython.display`` handle (or of an ``ipywidgets.Output`` passed as ``output``), so the
notebook does not grow by one output per epoch. Outside IPython,
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

MAX_DEFAULT_GROUPS = 4  # default selection: the first groups' evolution plots, and the curves


def _in_ipython() -> bool:
    """True when running under an IPython shell or kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def plot_names(history: SearchHistory) -> dict[str, str]:
    """Every name a live plot may be asked by -> its `available_plots` name, for this history.

    The fixed plots, each declared group's evolution and heatmap plot names, the group names
    themselves (-> their evolution plot) and the old per-cell names ('heatmap_normal').
    """
    names = {n: n for n in evolution.FIXED_PLOTS}
    for group in history.group_names():
        evolve, heat = evolution.group_plot_names(group)
        names.update({evolve: evolve, heat: heat, group: evolve})
    for cell in history.cell_types():  # old name of the alpha heatmap
        names.setdefault(f"heatmap_{cell}", evolution.group_plot_names(f"alpha/{cell}")[1])
    return names


def default_plots(history: SearchHistory) -> list[str]:
    """The first two groups' evolution, the curves, then up to two more groups' evolution."""
    evolve = [evolution.group_plot_names(g)[0] for g in history.group_names()]
    evolve = evolve[:MAX_DEFAULT_GROUPS]
    return evolve[:2] + ["curves"] + evolve[2:]


def _check_names(plots: list[str], history: SearchHistory) -> None:
    """ValueError naming a plot this history can never offer (checked once groups are declared)."""
    if not history.groups:
        return  # groups are declared with the first record; names are matched then
    known = plot_names(history)
    for name in plots:
        if name not in known:
            raise ValueError(f"unknown live plot {name!r}; this history offers {sorted(known)}")


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
            _check_names(list(plots), history)
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
        wanted = self.plots if self.plots is not None else default_plots(self.history)
        aliases = plot_names(self.history)
        chosen = [aliases.get(name, name) for name in wanted]
        return list(dict.fromkeys(name for name in chosen if name in available))

    def to_html(self) -> str:
        """The current plots as one HTML fragment of inline PNGs (errors shown, not raised)."""
        available = evolution.available_plots(self.history, self.kind)
        parts = []
        for name in self.selected():
            try:
                parts.append(_png_tag(available[name](), self.dpi))
            except Exception as exc:  # a plotting bug must never stop the search
                parts.append(f"<pre>{name}: {html.escape(repr(exc))}</pre>")
        if self.plots is not None and self.history.groups:
            known = plot_names(self.history)
            for name in (n for n in self.plots if n not in known):
                parts.append(f"<pre>unknown live plot {html.escape(repr(name))}</pre>")
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
