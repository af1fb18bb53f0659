"""Every finished search kept side by side: a table, overlaid curves and the search-cost trade-off.

    runs = run_ablation("pc-darts", "quick", "k", [1, 2, 4])  # the K ablation, on digits
    runs.to_dataframe()           # val_acc, s/epoch, peak MB, img/s, params of the derived cell
    runs.plot_overlay("val_acc")  # one line per run
    runs.plot_tradeoff()          # seconds/epoch, peak memory and accuracy against K

A `RunList` is plain Python (no widgets): `nasviz.viz.widgets.SearchPanel` appends to one after
each run and only shows what these functions return. Every method records the same
`SearchHistory` metrics, so the comparison works across DARTS, PC-DARTS and SNAS runs alike.

A run with exactly the settings of an earlier one is marked in its label ("(same settings as #1)"),
and drawn dashed in the overlay, so a rerun never hides the earlier curve without saying so.

`cached_search` keeps finished searches in a folder named after their settings, so running a
notebook again reads them back instead of searching again (and finishes an interrupted one).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasviz.architectures import Architecture
from nasviz.history import SearchHistory
from nasviz.search import registry
from nasviz.search.config import ConfigError, SearchConfig, suggest

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nasviz.search.base import Search, SearchResult


def _label_knob(method: str) -> str | None:
    """The knob named in a run's label when it is not the one being ablated: the method's first control."""
    controls = registry.get(method).controls
    return controls[0].field if controls else None


def check_knob(method: str, knob: str) -> None:
    """ConfigError unless ``knob`` is a config field of ``method``."""
    fields = registry.get(method).config_class.field_names()
    if knob not in fields:
        raise ConfigError(
            f"unknown knob {knob!r}{suggest(knob, fields)} for {method}; use a config field: "
            f"{', '.join(fields)}"
        )


# Knobs looked for (in this order) when guessing what an ablation varied.
_KNOBS = ("k", "order", "edge_normalization", "batch_size", "C", "layers", "steps", "epochs",
          "constraint", "resource_lambda", "penalty_form", "temperature_schedule",
          "temperature_start", "temperature_end", "lr", "arch_lr", "seed")  # fmt: skip

COLUMNS: dict[str, str] = {  # row key -> table header
    "label": "run",
    "method": "method",
    "dataset": "dataset",
    "k": "K",
    "epochs": "epochs",
    "val_acc": "val acc",
    "seconds_per_epoch": "s/epoch",
    "peak_memory_mb": "peak MB",
    "images_per_second": "img/s",
    "params": "params (eval net)",
}


def knob_text(knob: str, value: Any) -> str:
    """How a knob reads in a label: 'K=4', 'order=2', 'moderate'."""
    if knob == "k":
        return f"K={value}"
    if knob == "constraint":
        return str(value)
    return f"{knob}={value}"


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


@dataclass
class RunRecord:
    """One finished search: its label, config, history and genotype, plus a cached summary."""

    label: str
    config: SearchConfig
    history: SearchHistory
    genotype: Architecture
    out: Path | None = None
    knob: str | None = (
        None  # the config field this run varies in an ablation (None: not an ablation)
    )
    _params: int | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_result(cls, result: SearchResult, label: str, knob: str | None = None) -> RunRecord:
        """A record of a `SearchResult`."""
        return cls(label, result.config, result.history, result.genotype, result.out, knob)

    @property
    def knob_value(self) -> Any:
        """The value of `knob` in this run's config (None without a knob)."""
        return getattr(self.config, self.knob) if self.knob else None

    def params(self) -> int:
        """Parameters of the derived architecture's paper evaluation network (computed once)."""
        if self._params is None:
            from nasviz.resources import count_parameters

            self._params = count_parameters(self.genotype.reference_networks()[0][1])
        return self._params

    def summary(self) -> dict[str, Any]:
        """Final val_acc, mean training seconds/epoch, peak memory (MB), mean images/s, params."""
        h = self.history
        acc = h.metric("val_acc")[1]
        return {
            "val_acc": float(acc[-1]) if len(acc) else math.nan,
            "seconds_per_epoch": _mean(h.metric("seconds")[1]),
            "peak_memory_mb": float(np.max(m))
            if len(m := h.metric("peak_memory_mb")[1])
            else math.nan,
            "images_per_second": _mean(h.metric("images_per_second")[1]),
            "params": self.params(),
        }

    def row(self) -> dict[str, Any]:
        """One table row: label, method, dataset, the method's main knob, epochs, then the summary."""
        cfg = self.config
        row = {"label": self.label, "method": cfg.method, "dataset": cfg.dataset}
        shown = _label_knob(cfg.method)
        if shown:
            row[shown] = getattr(cfg, shown)
        row["epochs"] = cfg.epochs
        if self.knob and self.knob not in row:
            row[self.knob] = self.knob_value
        row.update(self.summary())
        return row


#: Decimals each measured column can show (3 for an accuracy on a few hundred images, ...).
DECIMALS: dict[str, int] = {
    "val_acc": 3, "seconds_per_epoch": 2, "peak_memory_mb": 0, "images_per_second": 1,
}  # fmt: skip
#: Padding of the HTML table's cells: a widget's HTML gets none of the notebook's table style.
CELL_STYLE = "padding: 2px 6px; text-align: right;"


def _cell(key: str, value: Any) -> str:
    """A table value as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return format(value, f".{DECIMALS[key]}f" if key in DECIMALS else "g")
    if key == "params":
        return f"{value / 1e6:.2f}M"
    return str(value)


def _rounded(key: str, value: Any) -> Any:
    """A numeric table value rounded to what its column can show (`DECIMALS`)."""
    if isinstance(value, float) and key in DECIMALS and math.isfinite(value):
        return round(value, DECIMALS[key]) if DECIMALS[key] else round(value)
    return value


class RunList:
    """Finished runs in the order they ran; a table and comparison figures over all of them."""

    def __init__(self, records: Sequence[RunRecord] = ()) -> None:
        self.records: list[RunRecord] = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> RunRecord:
        return self.records[index]

    def __repr__(self) -> str:
        return f"RunList({[r.label for r in self.records]})"

    # ------------------------------------------------------------------ adding
    def duplicate_of(self, config: SearchConfig) -> RunRecord | None:
        """The first earlier run with the same settings as ``config`` (None if there is none)."""
        key = config_digest(config)
        return next((r for r in self.records if config_digest(r.config) == key), None)

    def label_for(self, config: SearchConfig, knob: str | None = None) -> str:
        """The label the next run of ``config`` gets, e.g. 'pc-darts K=4 #2' (# counts all runs).

        A run with the settings of an earlier one says so: 'pc-darts K=4 #3 (same settings as #1)'.
        """
        parts = [config.method]
        shown = _label_knob(config.method)
        if shown:
            parts.append(knob_text(shown, getattr(config, shown)))
        if knob and knob != shown:
            parts.append(knob_text(knob, getattr(config, knob)))
        parts.append(f"#{len(self.records) + 1}")
        same = self.duplicate_of(config)
        if same is not None:
            ref = next((w for w in same.label.split() if w.startswith("#")), same.label)
            parts.append(f"(same settings as {ref})")
        return " ".join(parts)

    def add(
        self, result: SearchResult, label: str | None = None, knob: str | None = None
    ) -> RunRecord:
        """Append a finished search (labelled by `label_for` unless given); returns its record."""
        record = RunRecord.from_result(result, label or self.label_for(result.config, knob), knob)
        self.records.append(record)
        return record

    # ------------------------------------------------------------------ tables
    def table(self) -> list[dict[str, Any]]:
        """One dict per run (`COLUMNS`, plus an ablation's knob when it is not among them)."""
        return [r.row() for r in self.records]

    def _columns(self, rows: list[dict[str, Any]]) -> list[str]:
        keys = list(COLUMNS)
        for row in rows:
            keys += [k for k in row if k not in keys]
        return keys

    def to_markdown(self) -> str:
        """The table as GitHub markdown."""
        rows = self.table()
        keys = self._columns(rows)
        lines = [
            "| " + " | ".join(COLUMNS.get(k, k) for k in keys) + " |",
            "|" + "---|" * len(keys),
        ]
        lines += ["| " + " | ".join(_cell(k, row.get(k, "")) for k in keys) + " |" for row in rows]
        return "\n".join(lines)

    def to_dataframe(self, formatted: bool = False) -> pd.DataFrame:
        """The table as a pandas DataFrame indexed by run label (``formatted``: values as text)."""
        import pandas as pd

        rows = self.table()
        keys = self._columns(rows)
        data = [
            {
                COLUMNS.get(k, k): (
                    _cell(k, row.get(k, "")) if formatted else _rounded(k, row.get(k))
                )
                for k in keys
            }
            for row in rows
        ]
        frame = pd.DataFrame(data, columns=[COLUMNS.get(k, k) for k in keys])
        return frame.set_index(COLUMNS["label"]) if rows else frame

    def to_html(self) -> str:
        """The table as HTML (pandas' DataFrame table; a placeholder line when there are no runs).

        Every cell carries `CELL_STYLE` inline: in a widget (the search panel) the notebook's
        table style does not apply, and without padding the columns run into each other.
        """
        if not self.records:
            return "<p><i>no runs yet</i></p>"
        html = self.to_dataframe(formatted=True).to_html(
            classes="dataframe nasviz-runs", border=0, escape=True
        )
        html = re.sub(r"<(t[dh])(?=[ >])", rf'<\1 style="{CELL_STYLE}"', html)
        html = html.replace("<table", '<table style="border-collapse: collapse;"', 1)
        return f'<div style="overflow-x: auto; max-width: 100%;">{html}</div>'  # wide: scrolls

    def _repr_html_(self) -> str:
        return self.to_html()

    # ------------------------------------------------------------------ figures
    def plot_overlay(self, metric: str = "val_acc") -> Figure:
        """``metric`` over epochs for every run on one axis (legend = run labels)."""
        from nasviz.viz.evolution import _figure

        if not self.records:
            raise ValueError("no runs to plot yet: run a search first")
        have = sorted({m for r in self.records for m in r.history.metric_names()})
        if metric not in have:
            raise ValueError(f"no run recorded the metric {metric!r}; recorded: {have}")
        from nasviz.viz.evolution import _epoch_axis

        fig = _figure(6.0, 3.6)
        ax = fig.subplots()
        seen: set[str] = set()
        xs = []
        for r in self.records:
            x, y = r.history.metric(metric)
            key = config_digest(r.config)
            rerun = key in seen  # same settings as an earlier run: dashed, so both stay visible
            seen.add(key)
            ax.plot(
                x, y, marker="x" if rerun else ("o" if len(x) < 12 else None),
                ls="--" if rerun else "-", lw=1.8, label=r.label,
            )  # fmt: skip
            xs.append(x)
        x_all = np.unique(np.concatenate(xs)) if xs else np.array([])
        if 0 < len(x_all) <= 15 and np.all(np.mod(x_all, 1) == 0):
            ax.set_xticks(x_all)  # whole epochs, also for a single point (no 0.96, 0.98 ...)
        else:
            _epoch_axis(ax, x_all)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{metric} of {len(self.records)} run(s)")
        return fig

    def varied(self) -> list[str]:
        """Config fields whose value differs between runs (in `_KNOBS` order first)."""
        if len(self.records) < 2:
            return []
        dicts = [r.config.to_dict() for r in self.records]
        keys = [k for k in dicts[0] if all(k in d for d in dicts)]
        diff = [k for k in keys if any(d[k] != dicts[0][k] for d in dicts[1:])]
        return sorted(diff, key=lambda k: (_KNOBS.index(k) if k in _KNOBS else len(_KNOBS), k))

    def tradeoff_knob(self) -> str:
        """Default knob of `plot_tradeoff`: the ablation knob, else the first varied one, else K."""
        knobs = {r.knob for r in self.records if r.knob}
        if len(knobs) == 1:
            return knobs.pop()
        varied = [k for k in self.varied() if k != "method"]
        return varied[0] if varied else "k"

    def plot_tradeoff(self, knob: str | None = None) -> Figure:
        """Seconds/epoch, peak memory and final accuracy against ``knob`` (e.g. K), per method."""
        from nasviz.viz.evolution import _figure

        if not self.records:
            raise ValueError("no runs to compare yet: run a search first")
        knob = knob or self.tradeoff_knob()
        for method in {r.config.method for r in self.records}:
            check_knob(method, knob)
        values = [getattr(r.config, knob) for r in self.records]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        categories = list(dict.fromkeys(str(v) for v in values))
        xs = [float(v) if numeric else float(categories.index(str(v))) for v in values]
        summaries = [r.summary() for r in self.records]
        panels = (("seconds_per_epoch", "training s / epoch"),
                  ("peak_memory_mb", "peak memory (MB)"), ("val_acc", "final val acc"))  # fmt: skip
        fig = _figure(12.0, 3.4)
        axes = fig.subplots(1, len(panels))
        methods = list(dict.fromkeys(r.config.method for r in self.records))
        for ax, (key, title) in zip(axes, panels, strict=True):
            for method in methods:
                pts = sorted(
                    (x, s[key])
                    for x, s, r in zip(xs, summaries, self.records, strict=True)
                    if r.config.method == method
                )
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", lw=1.8, label=method)
            ax.set_title(title)
            ax.set_xlabel(knob_text(knob, "").rstrip("=") or knob)
            if numeric:
                ax.set_xticks(sorted(set(xs)))
                ax.set_xticklabels([f"{x:g}" for x in sorted(set(xs))])
            else:
                ax.set_xticks(range(len(categories)))
                ax.set_xticklabels(categories)
            ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=8)
        fig.suptitle(f"search cost against {knob} ({len(self.records)} runs)")
        return fig


def fresh_run_dir(root: str | Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3`` ... if taken (a search never overwrites a run)."""
    root = Path(root)
    slug = "".join(c if c.isalnum() or c in "-_=" else "-" for c in name).strip("-")
    path, n = root / slug, 1
    while path.exists():
        n += 1
        path = root / f"{slug}-{n}"
    return path


def config_digest(config: SearchConfig) -> str:
    """8 hex digits naming a config's settings (fields that may differ on resume left out)."""
    from nasviz.search import RESUME_MAY_DIFFER

    settings = {k: v for k, v in config.to_dict().items() if k not in RESUME_MAY_DIFFER}
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def cached_run_dir(root: str | Path, name: str, config: SearchConfig) -> Path:
    """``root/<name>-<config digest>``: one folder per name and settings."""
    slug = "".join(c if c.isalnum() or c in "-_=" else "-" for c in name).strip("-")
    return Path(root) / f"{slug}-{config_digest(config)}"


def cached_search(
    config: SearchConfig,
    out: str | Path | None,
    *,
    name: str | None = None,
    progress: bool = True,
    callbacks: list[Callable] | None = None,
    live: Sequence[str] | None = None,
    live_interval: float = 10.0,
    **data: Any,
) -> Search:
    """The finished search of ``config`` in ``out``: read back if it is there, else run it.

    ``out`` is the run folder, or with ``name`` the root under which `cached_run_dir` names it
    after the settings, so a changed setting gets a new folder. A folder whose checkpoint is
    complete is resumed (nothing runs, the bar shows it full); an interrupted one is finished;
    an empty one is searched. ``out=None`` runs in memory. ``data`` (e.g. ``train_data``) is not
    part of the settings: pass the same data for the same folder. ``live``: plot names that
    `nasviz.viz.live.LivePlots` redraws while it runs (at most every ``live_interval`` seconds).
    """
    from nasviz.search import create_search
    from nasviz.search.base import CHECKPOINT

    if out is None:
        search = create_search(config, None, **data)
    else:
        path = cached_run_dir(out, name, config) if name is not None else Path(out)
        search = create_search(config, path, resume=(path / CHECKPOINT).is_file(), **data)
    plots = None
    if live:
        from nasviz.viz.live import LivePlots

        plots = LivePlots(search.history, list(live), min_interval=live_interval)
    search.run(progress=progress, callbacks=[*(callbacks or []), *([plots] if plots else [])])
    if plots is not None:
        plots.finish()
    return search


def cached_run(
    config: SearchConfig, out: str | Path | None, *, name: str | None = None, **kw: Any
) -> SearchResult:
    """`cached_search`, returning its `SearchResult`."""
    from nasviz.search.base import SearchResult

    search = cached_search(config, out, name=name, **kw)
    return SearchResult(search.derive(), search.history, search.out, search.config)


def run_ablation(
    method: str,
    preset_name: str,
    knob: str,
    values: Sequence[Any],
    *,
    runs: RunList | None = None,
    out_root: str | Path | None = None,
    progress: bool = False,
    callbacks: list[Callable] | None = None,
    search_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> RunList:
    """One search per value of ``knob`` (e.g. K = 1, 2, 4), appended to ``runs`` (or a new RunList).

    ``overrides`` go to `preset`; ``search_kwargs`` (e.g. ``train_data``) to the search. With
    ``out_root`` each run is kept under it and read back when it is already there (`cached_run`).
    """
    from nasviz.search import preset

    check_knob(method, knob)
    if not values:
        raise ValueError(f"give at least one value of {knob!r} to run")
    runs = RunList() if runs is None else runs
    configs = [
        preset(method, preset_name, **{**overrides, knob: v}) for v in values
    ]  # all checked up front
    for config in configs:
        label = runs.label_for(config, knob)
        name = f"{method}-{knob_text(knob, getattr(config, knob))}"
        result = cached_run(
            config, out_root, name=name if out_root is not None else None,
            progress=progress, callbacks=callbacks, **(search_kwargs or {}),
        )  # fmt: skip
        runs.add(result, label, knob)
    return runs


__all__ = [
    "COLUMNS",
    "cached_run",
    "cached_run_dir",
    "cached_search",
    "config_digest",
    "check_knob",
    "RunList",
    "RunRecord",
    "fresh_run_dir",
    "knob_text",
    "run_ablation",
]
