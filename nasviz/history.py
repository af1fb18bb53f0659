"""What a search records over time, for every method: one `SearchHistory`, read by all plots.

A history is a list of records, one per epoch (``kind="epoch"``) and optionally every N steps
(``kind="step"``). Each record may carry

* ``metrics``: scalars such as train/val loss and accuracy, learning rates, seconds, peak memory;
* ``alphas``: per cell type, the op probabilities of every edge (a list of E rows of O floats);
* ``betas``: per cell type, the normalized edge weights (PC-DARTS edge normalization), E floats;
* ``genotype``: the genotype derived at that point, as its JSON dict;
* ``extra``: method-specific named series (SNAS temperature, NASNet rewards, Cream's board ...).

Nothing here is DARTS-specific except the naming of the alpha/beta fields, which later methods
may leave empty; they put their own series in ``extra``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasviz.genotypes import Genotype

Record = dict[str, Any]
Callback = Callable[["SearchHistory", Record], None]

_FORMAT_VERSION = 1


@dataclass
class SearchHistory:
    """The record of one search: method, config, the space's ops/edges, and per-epoch records."""

    method: str
    config: dict[str, Any] = field(default_factory=dict)
    ops: list[str] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(
        default_factory=list
    )  # (input state, node state) per alpha row
    records: list[Record] = field(default_factory=list)
    _callbacks: list[Callback] = field(default_factory=list, repr=False, compare=False)

    # ---------------------------------------------------------------- recording
    def add_callback(self, fn: Callback) -> None:
        """Call ``fn(history, record)`` after every new record (e.g. to redraw live plots)."""
        self._callbacks.append(fn)

    def remove_callback(self, fn: Callback) -> None:
        """Stop calling ``fn``."""
        self._callbacks.remove(fn)

    def log(
        self,
        epoch: int,
        step: int,
        *,
        kind: str = "epoch",
        metrics: dict[str, float] | None = None,
        alphas: dict[str, Any] | None = None,
        betas: dict[str, Any] | None = None,
        genotype: Genotype | dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> Record:
        """Append one record (converting tensors to lists) and, unless told not to, notify callbacks."""
        if kind not in ("epoch", "step"):
            raise ValueError(f"record kind must be 'epoch' or 'step', got {kind!r}")
        record: Record = {"epoch": int(epoch), "step": int(step), "kind": kind}
        record["metrics"] = {k: _to_py(v) for k, v in (metrics or {}).items()}
        if alphas is not None:
            record["alphas"] = {k: _to_py(v) for k, v in alphas.items()}
        if betas is not None:
            record["betas"] = {k: _to_py(v) for k, v in betas.items()}
        if genotype is not None:
            record["genotype"] = genotype.to_dict() if isinstance(genotype, Genotype) else genotype
        if extra:
            record["extra"] = {k: _to_py(v) for k, v in extra.items()}
        self.records.append(record)
        if notify:
            self.notify(record)
        return record

    def notify(self, record: Record) -> None:
        """Call every callback with ``record`` (a search does it after checkpointing the epoch)."""
        for fn in list(self._callbacks):
            fn(self, record)

    # ---------------------------------------------------------------- reading
    def epochs(self) -> list[Record]:
        """The per-epoch records, in order."""
        return [r for r in self.records if r["kind"] == "epoch"]

    def select(self, kind: str = "epoch") -> list[Record]:
        """Records of one kind ('epoch' or 'step'); 'step' falls back to epochs if none."""
        rows = [r for r in self.records if r["kind"] == kind]
        return rows if rows or kind == "epoch" else self.epochs()

    def metric_names(self) -> list[str]:
        """All metric names that appear in any record."""
        return sorted({k for r in self.records for k in r.get("metrics", {})})

    def extra_names(self) -> list[str]:
        """All extra series names that appear in any record."""
        return sorted({k for r in self.records for k in r.get("extra", {})})

    def metric(self, name: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a metric; records without it are skipped."""
        return self._series("metrics", name, kind)

    def extra(self, name: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a method-specific extra series."""
        return self._series("extra", name, kind)

    def _series(self, group: str, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [r for r in self.select(kind) if name in r.get(group, {})]
        x = np.array([_x(r) for r in rows], dtype=float)
        y = np.array([r[group][name] for r in rows], dtype=float)
        return x, y

    def cell_types(self) -> list[str]:
        """Cell types that have alpha records (e.g. ['normal', 'reduce'])."""
        for r in self.records:
            if "alphas" in r:
                return list(r["alphas"])
        return []

    def alpha_series(self, cell: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], op probabilities [T, edges, ops]) for one cell type."""
        rows = [r for r in self.select(kind) if cell in r.get("alphas", {})]
        if not rows:
            raise ValueError(
                f"history has no alphas for cell {cell!r} (cells: {self.cell_types()})"
            )
        return np.array([_x(r) for r in rows], float), np.array(
            [r["alphas"][cell] for r in rows], float
        )

    def beta_series(self, cell: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], normalized edge weights [T, edges]) for one cell type."""
        rows = [r for r in self.select(kind) if cell in (r.get("betas") or {})]
        if not rows:
            raise ValueError(f"history has no betas for cell {cell!r} (only PC-DARTS records them)")
        return np.array([_x(r) for r in rows], float), np.array(
            [r["betas"][cell] for r in rows], float
        )

    def has_betas(self) -> bool:
        """True if any record carries betas."""
        return any(r.get("betas") for r in self.records)

    def genotypes(self) -> list[tuple[int, Genotype]]:
        """(epoch, genotype) for every epoch record that carries one."""
        return [
            (r["epoch"], Genotype.from_dict(r["genotype"]))
            for r in self.epochs()
            if "genotype" in r
        ]

    def final_genotype(self) -> Genotype | None:
        """The last derived genotype, if any."""
        found = self.genotypes()
        return found[-1][1] if found else None

    def last(self, kind: str = "epoch") -> Record | None:
        """The newest record of a kind."""
        rows = self.select(kind)
        return rows[-1] if rows else None

    def node_edges(self) -> dict[int, list[int]]:
        """For each node state, the alpha-row indices of its incoming edges."""
        out: dict[int, list[int]] = {}
        for row, (_, node) in enumerate(self.edges):
            out.setdefault(node, []).append(row)
        return out

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "format": _FORMAT_VERSION,
            "method": self.method,
            "config": self.config,
            "ops": list(self.ops),
            "edges": [list(e) for e in self.edges],
            "records": self.records,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchHistory:
        """Rebuild a history from `to_dict` output."""
        try:
            return cls(
                method=d["method"],
                config=dict(d.get("config", {})),
                ops=list(d.get("ops", [])),
                edges=[tuple(e) for e in d.get("edges", [])],
                records=list(d["records"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a nasviz search history (missing {exc})") from exc

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (atomically, so a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SearchHistory:
        """Read a history JSON file (a run directory is accepted: DIR/history.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / "history.json"
        if not path.is_file():
            raise FileNotFoundError(f"no search history at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a valid history JSON file: {exc}") from exc
        return cls.from_dict(data)


def _x(record: Record) -> float:
    """x coordinate of a record: its epoch, fractional for step records when known."""
    frac = record.get("metrics", {}).get("epoch_progress")
    return float(frac) if frac is not None else float(record["epoch"])


def _to_py(value: Any) -> Any:
    """Tensors/arrays to nested lists, numpy scalars to floats; NaN kept as None-safe float."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return float("nan")
    return value


def entropy(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy (nats) of probability vectors along ``axis``."""
    p = np.clip(np.asarray(probs, float), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=axis)
