"""What a search records over time, for every method: one `SearchHistory`, read by all plots.

A history is a list of records, one per epoch (``kind="epoch"``) and optionally every N steps
(``kind="step"``). Each record may carry

* ``metrics``: scalars such as train/val loss and accuracy, learning rates, seconds, peak memory;
* ``groups``: what the method decides, as named **groups of probability rows over named choices**
  (one R x C matrix per group; NaN marks a choice a row does not have);
* ``architecture``: the architecture derived at that point, as its JSON dict (with ``kind``);
* ``extra``: other named series (SNAS temperature, NASNet rewards, Cream's board accuracy ...).

A group is declared once with its row and column labels (`declare_group`), so every plot can
draw every method without knowing it:

=========  ======================  =====================================  ====================
method     group                   rows                                   columns
=========  ======================  =====================================  ====================
DARTS      ``alpha/normal``,       edges ``c_{k-2} → 0`` ...              op names
           ``alpha/reduce``
PC-DARTS   ``beta/normal``, ...    nodes ``node 0`` ...                   input states
NASNet     e.g. ``op/block 1``     the controller's decisions             the 13 ops
Cream      e.g. ``layer/stage 1``  layers                                 the block choices
=========  ======================  =====================================  ====================

`darts_groups` computes the DARTS-family groups (labels written once, here). The file format is
versioned (``"format"``): format 1 (alphas/betas/genotype fields per record) is converted to
groups on load; a newer format than this code knows is refused with a clear message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Record = dict[str, Any]
GroupSpec = dict[str, Any]  # {"rows": [str], "cols": [str], "title": str}
Callback = Callable[["SearchHistory", Record], None]

FORMAT_VERSION = 2
HISTORY_FILE = "history.json"
CELLS = ("normal", "reduce")  # DARTS cell types
_PROB_TOLERANCE = 1e-4  # float32 softmax rows may overshoot [0, 1] by rounding


# ------------------------------------------------------------------------------ entropy


def entropy(probs: Any, axis: int = -1, *, normalized: bool = False) -> np.ndarray:
    """Shannon entropy (nats) of probability rows along ``axis``; NaN entries are unavailable.

    Each row is first renormalized over its available (finite) choices, so choice frequencies
    work as well as softmax rows. With ``normalized=True`` the entropy is divided by
    log(#available choices): 1 = uniform, 0 = one-hot. Rows with no available choice (or an
    all-zero row) give NaN; with ``normalized=True``, rows with a single choice give NaN too.
    """
    p = np.asarray(probs, dtype=float)
    available = np.isfinite(p)
    p = np.where(available, p, 0.0)
    total = p.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = p / total
        terms = np.where(q > 0, -q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    h = terms.sum(axis=axis)
    n = available.sum(axis=axis)
    h = np.where((n > 0) & (np.squeeze(total, axis=axis) > 0), h, np.nan)
    if normalized:
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.where(n >= 2, h / np.log(np.maximum(n, 2)), np.nan)
    return h


# ------------------------------------------------------------------------------ DARTS labels


def darts_edge_labels(steps: int = 4) -> list[str]:
    """Alpha-row labels of a DARTS cell, e.g. 'c_{k-2} → 0' (14 for 4 nodes)."""
    from nasviz.spaces.darts import edge_list
    from nasviz.viz.cells import state_label  # graphviz-free; the one state naming rule

    return [f"{state_label(s)} → {state_label(d)}" for s, d in edge_list(steps)]


def darts_node_labels(steps: int = 4) -> list[str]:
    """Intermediate node labels 'node 0' .. 'node {steps-1}'."""
    return [f"node {i}" for i in range(steps)]


def darts_input_labels(steps: int = 4) -> list[str]:
    """States that can feed a node: 'c_{k-2}', 'c_{k-1}', '0' .. str(steps-2)."""
    from nasviz.viz.cells import state_label

    return [state_label(s) for s in range(steps + 1)]


def _as_array(value: Any) -> np.ndarray:
    """A tensor, array or nested list as a float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=float)


def _steps_for_edges(n_edges: int) -> int:
    """Intermediate nodes of a DARTS cell with ``n_edges`` edges (2 + 3 + ... + (steps + 1))."""
    steps, total = 0, 0
    while total < n_edges:
        total += steps + 2
        steps += 1
    if total != n_edges:
        raise ValueError(f"{n_edges} edges is not a DARTS cell (2 + 3 + ... edges per node)")
    return steps


def darts_group_specs(
    ops: Sequence[str], steps: int = 4, betas: bool = False, cells: Sequence[str] = CELLS
) -> dict[str, GroupSpec]:
    """Specs of the DARTS-family groups, to declare before the first record (see `darts_groups`)."""
    specs = {
        f"alpha/{c}": _spec(
            darts_edge_labels(steps), list(ops), f"{c} cell: softmax(alpha) per edge"
        )
        for c in cells
    }
    if betas:
        for c in cells:
            specs[f"beta/{c}"] = _spec(
                darts_node_labels(steps),
                darts_input_labels(steps),
                f"{c} cell: normalized edge weights (beta) per node",
            )
    return specs


def darts_groups(
    probabilities: Mapping[str, Any],
    edge_weights: Mapping[str, Any] | None,
    ops: Sequence[str],
    steps: int,
) -> tuple[dict[str, GroupSpec], dict[str, np.ndarray]]:
    """DARTS-family groups: 'alpha/<cell>' [edges, ops] and, with edge weights, 'beta/<cell>'.

    ``probabilities``: per cell type, softmax(alpha) as [E, O]; ``edge_weights``: per cell type,
    PC-DARTS's normalized betas as [E] (None for DARTS/SNAS). The beta group has one row per
    intermediate node and one column per input state ([steps, steps + 1]), NaN where a node has no
    such input. Returns (specs for `declare_groups`, values for ``log(groups=...)``).
    """
    from nasviz.spaces.darts import edge_list

    edges = edge_list(steps)
    every = darts_group_specs(
        ops, steps, betas=True, cells=sorted({*probabilities, *(edge_weights or {})})
    )
    specs: dict[str, GroupSpec] = {}
    values: dict[str, np.ndarray] = {}
    for cell, p in probabilities.items():
        p = _as_array(p)
        if p.shape != (len(edges), len(ops)):
            raise ValueError(
                f"{cell} probabilities have shape {p.shape}; a {steps}-node cell with "
                f"{len(ops)} ops needs ({len(edges)}, {len(ops)})"
            )
        specs[f"alpha/{cell}"], values[f"alpha/{cell}"] = every[f"alpha/{cell}"], p
    for cell, b in (edge_weights or {}).items():
        b = _as_array(b)
        if b.shape != (len(edges),):
            raise ValueError(f"{cell} edge weights have shape {b.shape}; need ({len(edges)},)")
        grid = np.full((steps, steps + 1), np.nan)  # [node, input state]
        for (src, dst), w in zip(edges, b, strict=True):
            grid[dst - 2, src] = w
        specs[f"beta/{cell}"], values[f"beta/{cell}"] = every[f"beta/{cell}"], grid
    return specs, values


def beta_edges(grid: np.ndarray) -> np.ndarray:
    """A beta group's [..., nodes, states] values back to alpha-row order [..., edges]."""
    from nasviz.spaces.darts import edge_list

    grid = np.asarray(grid, dtype=float)
    edges = edge_list(grid.shape[-2])
    return np.stack([grid[..., dst - 2, src] for src, dst in edges], axis=-1)


# ------------------------------------------------------------------------------ the history


def _spec(rows: Sequence[str], cols: Sequence[str], title: str) -> GroupSpec:
    return {"rows": list(rows), "cols": list(cols), "title": title}


def _check_labels(name: str, what: str, labels: Any) -> list[str]:
    """Non-empty list of distinct strings, else ValueError naming the group."""
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise ValueError(f"group {name!r}: {what} must be a non-empty list of labels")
    labels = list(labels)
    if not all(isinstance(x, str) for x in labels):
        raise ValueError(f"group {name!r}: {what} labels must be strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"group {name!r}: duplicate {what} labels {dup}")
    return labels


@dataclass
class SearchHistory:
    """The record of one search: method, config, declared groups and the per-epoch records."""

    method: str
    config: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    # Deprecated: only used to label the deprecated ``log(alphas=, betas=)``; not saved.
    ops: list[str] = field(default_factory=list, kw_only=True, repr=False)
    edges: list[tuple[int, int]] = field(default_factory=list, kw_only=True, repr=False)
    _callbacks: list[Callback] = field(default_factory=list, repr=False, compare=False)

    # ---------------------------------------------------------------- groups
    def declare_group(
        self, name: str, rows: Sequence[str], cols: Sequence[str], title: str | None = None
    ) -> GroupSpec:
        """Declare a group of R probability rows over C choices (idempotent for the same spec)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a group name must be a non-empty string, got {name!r}")
        spec = _spec(_check_labels(name, "row", rows), _check_labels(name, "column", cols), "")
        old = self.groups.get(name)
        if old is not None:
            same = old["rows"] == spec["rows"] and old["cols"] == spec["cols"]
            if same and title in (None, old["title"]):
                return old
            raise ValueError(
                f"group {name!r} is already declared with {len(old['rows'])} rows "
                f"{old['rows'][:3]}... x {len(old['cols'])} columns {old['cols'][:3]}... "
                f"(title {old['title']!r}); a group's labels cannot change during a search"
            )
        spec["title"] = title if title is not None else name
        self.groups[name] = spec
        return spec

    def declare_groups(self, specs: Mapping[str, GroupSpec]) -> None:
        """Declare several groups from {name: spec} (e.g. the specs of `darts_groups`)."""
        for name, spec in specs.items():
            self.declare_group(name, spec["rows"], spec["cols"], spec.get("title"))

    def group_names(self) -> list[str]:
        """Declared group names, in declaration order."""
        return list(self.groups)

    def group_spec(self, name: str) -> GroupSpec:
        """The {"rows", "cols", "title"} of a group (a copy)."""
        if name not in self.groups:
            have = ", ".join(self.groups) or "none"
            raise ValueError(f"history of {self.method!r} has no group {name!r} (groups: {have})")
        spec = self.groups[name]
        return {"rows": list(spec["rows"]), "cols": list(spec["cols"]), "title": spec["title"]}

    def _group_values(self, name: str, value: Any) -> list[list[float | None]]:
        """Check a logged R x C matrix against the group's spec; NaN stored as JSON null."""
        spec = self.group_spec(name)
        shape = (len(spec["rows"]), len(spec["cols"]))
        a = _as_array(value)
        if a.shape != shape:
            raise ValueError(f"group {name!r} needs an array of shape {shape}, got {a.shape}")
        finite = a[np.isfinite(a)]
        if finite.size and (finite.min() < -_PROB_TOLERANCE or finite.max() > 1 + _PROB_TOLERANCE):
            raise ValueError(
                f"group {name!r} holds probabilities in [0, 1] (NaN = unavailable), got values "
                f"in [{finite.min():.4g}, {finite.max():.4g}]; log softmax(alpha), not alpha"
            )
        return [[float(v) if math.isfinite(v) else None for v in row] for row in a]

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
        metrics: Mapping[str, float] | None = None,
        groups: Mapping[str, Any] | None = None,
        architecture: Any = None,
        extra: Mapping[str, Any] | None = None,
        notify: bool = True,
        alphas: Mapping[str, Any] | None = None,
        betas: Mapping[str, Any] | None = None,
        genotype: Any = None,
    ) -> Record:
        """Append one record and, unless ``notify=False``, call the callbacks.

        ``groups``: name -> R x C tensor/array/nested list of a declared group (NaN =
        unavailable choice). ``architecture``: an object with ``to_dict()`` or its dict.
        Deprecated (converted to groups/architecture; use groups= and architecture=):
        ``alphas`` (cell -> [E, O] probabilities), ``betas`` (cell -> [E] normalized edge
        weights), ``genotype``; their labels come from ``self.ops`` / ``self.edges``.
        """
        if kind not in ("epoch", "step"):
            raise ValueError(f"record kind must be 'epoch' or 'step', got {kind!r}")
        groups = dict(groups or {})
        if alphas is not None or betas is not None:
            groups.update(self._legacy_groups(alphas or {}, betas))
        if genotype is not None:
            if architecture is not None:
                raise ValueError("pass architecture= only (genotype= is its deprecated name)")
            architecture = genotype
        record: Record = {"epoch": int(epoch), "step": int(step), "kind": kind}
        record["metrics"] = {k: _to_py(v) for k, v in (metrics or {}).items()}
        if groups:
            record["groups"] = {k: self._group_values(k, v) for k, v in groups.items()}
        if architecture is not None:
            record["architecture"] = _architecture_dict(architecture)
        if extra:
            record["extra"] = {k: _to_py(v) for k, v in extra.items()}
        self.records.append(record)
        if notify:
            self.notify(record)
        return record

    def _legacy_groups(
        self, alphas: Mapping[str, Any], betas: Mapping[str, Any] | None
    ) -> dict[str, np.ndarray]:
        """Declare and return the DARTS groups of the deprecated alphas=/betas= arguments."""
        sizes = [_as_array(a).shape for a in alphas.values()]
        sizes += [(_as_array(b).shape[0], 0) for b in (betas or {}).values()]
        n_edges = len(self.edges) or (sizes[0][0] if sizes else 0)
        steps = _steps_for_edges(n_edges)
        n_ops = next((s[1] for s in sizes if s[1]), len(self.ops))
        ops = list(self.ops) if len(self.ops) == n_ops else [f"op {i}" for i in range(n_ops)]
        specs, values = darts_groups(alphas, betas, ops, steps)
        self.declare_groups(specs)
        return values

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
        if kind not in ("epoch", "step"):
            raise ValueError(f"record kind must be 'epoch' or 'step', got {kind!r}")
        rows = [r for r in self.records if r["kind"] == kind]
        return rows if rows or kind == "epoch" else self.epochs()

    def last(self, kind: str = "epoch") -> Record | None:
        """The newest record of a kind."""
        rows = self.select(kind)
        return rows[-1] if rows else None

    def metric_names(self) -> list[str]:
        """All metric names that appear in any record."""
        return sorted({k for r in self.records for k in r.get("metrics", {})})

    def extra_names(self) -> list[str]:
        """All extra series names that appear in any record."""
        return sorted({k for r in self.records for k in r.get("extra", {})})

    def metric(self, name: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], values [T]) of a metric; records without it are skipped."""
        return self._series("metrics", name, kind)

    def extra(self, name: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], values [T, ...]) of an extra series (ValueError if not numeric)."""
        return self._series("extra", name, kind)

    def _series(self, field_: str, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [r for r in self.select(kind) if name in r.get(field_, {})]
        x = np.array([_x(r) for r in rows], dtype=float)
        y = np.array([r[field_][name] for r in rows], dtype=float)
        return x, y

    def group_series(self, name: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], values [T, R, C]) of a group; NaN = unavailable; T = 0 before any record."""
        spec = self.group_spec(name)
        rows = [r for r in self.select(kind) if name in r.get("groups", {})]
        x = np.array([_x(r) for r in rows], dtype=float)
        shape = (len(rows), len(spec["rows"]), len(spec["cols"]))
        try:  # JSON null -> NaN with dtype=float
            values = np.array([r["groups"][name] for r in rows], dtype=float).reshape(shape)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"group {name!r}: a record's values are not {shape[1]} x {shape[2]} numbers ({exc})"
            ) from exc
        return x, values

    def has_group_data(self, name: str, kind: str = "epoch") -> bool:
        """Whether any record of ``kind`` carries values of group ``name``."""
        return name in self.groups and any(name in r.get("groups", {}) for r in self.select(kind))

    def architectures(self) -> list[tuple[int, Any]]:
        """(epoch, architecture) for every epoch record that carries one (any kind)."""
        from nasviz import architectures

        return [
            (r["epoch"], architectures.from_dict(r["architecture"]))
            for r in self.epochs()
            if "architecture" in r
        ]

    def last_architecture(self) -> Any | None:
        """The architecture of the newest epoch record that carries one, or None."""
        from nasviz import architectures

        for r in reversed(self.epochs()):
            if "architecture" in r:
                return architectures.from_dict(r["architecture"])
        return None

    # ---------------------------------------------------------------- DARTS-named wrappers
    def cell_types(self) -> list[str]:
        """Cell types with an 'alpha/<cell>' group (e.g. ['normal', 'reduce'])."""
        return [n.split("/", 1)[1] for n in self.groups if n.startswith("alpha/")]

    def alpha_series(self, cell: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], op probabilities [T, edges, ops]): group 'alpha/<cell>'."""
        if f"alpha/{cell}" not in self.groups:
            raise ValueError(
                f"history has no alphas for cell {cell!r} (cells: {self.cell_types()})"
            )
        return self.group_series(f"alpha/{cell}", kind)

    def beta_series(self, cell: str, kind: str = "epoch") -> tuple[np.ndarray, np.ndarray]:
        """(epochs [T], normalized edge weights [T, edges]) in alpha-row order: 'beta/<cell>'."""
        if f"beta/{cell}" not in self.groups:
            raise ValueError(f"history has no betas for cell {cell!r} (only PC-DARTS records them)")
        x, grid = self.group_series(f"beta/{cell}", kind)
        return x, beta_edges(grid)

    def has_betas(self) -> bool:
        """True if any record carries a 'beta/<cell>' group."""
        return any(self.has_group_data(n) for n in self.groups if n.startswith("beta/"))

    def genotypes(self) -> list[tuple[int, Any]]:
        """(epoch, Genotype) for every epoch record whose architecture is a DARTS genotype."""
        return [(e, a) for e, a in self.architectures() if a.kind == "darts"]

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (format 2)."""
        return {
            "format": FORMAT_VERSION,
            "method": self.method,
            "config": self.config,
            "groups": self.groups,
            "records": self.records,
        }

    @classmethod
    def from_dict(cls, d: Any, source: str | Path | None = None) -> SearchHistory:
        """Rebuild a history from `to_dict` output (format 1 is converted to groups)."""
        where = f"{source}: " if source is not None else ""
        if not isinstance(d, dict) or "records" not in d or "method" not in d:
            got = sorted(d)[:6] if isinstance(d, dict) else type(d).__name__
            raise ValueError(
                f"{where}not a nasviz search history (needs 'method' and 'records'; got {got})"
            )
        version = d.get("format", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"{where}history 'format' must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{where}history format {version} was written by a newer nasviz; this version "
                f"reads formats 1..{FORMAT_VERSION}. Upgrade nasviz (pip install -U nasviz) "
                "to read it."
            )
        try:
            if version == 1:
                return _from_format_1(cls, d)
            history = cls(method=str(d["method"]), config=dict(d.get("config") or {}))
            history.declare_groups(dict(d.get("groups") or {}))
            history.records = [_check_record(r) for r in d["records"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{where}malformed search history ({type(exc).__name__}: {exc})"
            ) from exc
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from exc
        return history

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON, atomically (a crash never leaves half a file)."""
        from nasviz.io import atomic_write_text

        return atomic_write_text(Path(path), json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> SearchHistory:
        """Read a history JSON file (a run directory is accepted: DIR/history.json)."""
        path = Path(path)
        if path.is_dir():
            path = path / HISTORY_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no search history at {path}")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} is not a history JSON file (not UTF-8 text)") from exc
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"{path} is not a valid history JSON file: {exc}") from exc
        return cls.from_dict(data, source=path)


# ------------------------------------------------------------------------------ helpers


def _check_record(r: Any) -> Record:
    """A record with its required keys, else ValueError."""
    if not isinstance(r, dict) or not {"epoch", "step", "kind"} <= set(r):
        raise ValueError(f"a history record needs 'epoch', 'step' and 'kind', got {r!r:.80}")
    return r


def _from_format_1(cls: type[SearchHistory], d: dict[str, Any]) -> SearchHistory:
    """Format 1 (top-level ops/edges; records with alphas/betas/genotype) -> groups."""
    history = cls(
        method=str(d["method"]),
        config=dict(d.get("config") or {}),
        ops=list(d.get("ops") or []),
        edges=[tuple(e) for e in d.get("edges") or []],
    )
    for r in d["records"]:
        r = dict(_check_record(r))
        alphas, betas, genotype = (
            r.pop("alphas", None),
            r.pop("betas", None),
            r.pop("genotype", None),
        )
        if alphas or betas:
            r["groups"] = {
                k: history._group_values(k, v)
                for k, v in history._legacy_groups(alphas or {}, betas).items()
            }
        if genotype is not None:
            r["architecture"] = {"kind": "darts", **genotype}
        history.records.append(r)
    history.ops, history.edges = [], []
    return history


def _architecture_dict(arch: Any) -> dict[str, Any]:
    """An architecture object's dict, or a dict validated through nasviz.architectures."""
    if hasattr(arch, "to_dict"):
        return arch.to_dict()
    if isinstance(arch, dict):
        from nasviz import architectures

        return architectures.from_dict(arch).to_dict()
    raise ValueError(f"architecture must have to_dict() or be a dict, got {type(arch).__name__}")


def _x(record: Record) -> float:
    """x coordinate of a record: its epoch, fractional for step records when known."""
    frac = record.get("metrics", {}).get("epoch_progress")
    return float(frac) if frac is not None else float(record["epoch"])


def _to_py(value: Any) -> Any:
    """Tensors/arrays to nested lists, numpy scalars to Python numbers."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
