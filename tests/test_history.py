"""Tests for nasviz.history: groups, DARTS-family labels, entropy, file formats 1 and 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nasviz import genotypes
from nasviz.genotypes import PRIMITIVES
from nasviz.history import (
    FORMAT_VERSION,
    SearchHistory,
    beta_edges,
    darts_group_specs,
    darts_groups,
    entropy,
)
from nasviz.spaces.darts import edge_list, normalize_edges

STEPS = 4
EDGES = edge_list(STEPS)  # 14 (input state, node state) pairs


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    z = np.exp(rng.normal(0, 1, shape))
    return z / z.sum(axis=-1, keepdims=True)


def _darts_values(seed: int) -> tuple[dict, dict]:
    """softmax(alpha) [14, 8] and normalized betas [14] per cell type."""
    rng = np.random.default_rng(seed)
    probs = {c: torch.tensor(_probs(rng, (14, 8))) for c in ("normal", "reduce")}
    betas = {
        c: normalize_edges(torch.tensor(rng.normal(0, 1, 14)), STEPS) for c in ("normal", "reduce")
    }
    return probs, betas


# ------------------------------------------------------------------------------ entropy


def test_entropy_known_values() -> None:
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8))
    assert entropy([1.0, 0.0, 0.0]) == pytest.approx(0.0)
    assert entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5 * math.log(2))
    rows = entropy(np.array([[0.5, 0.5], [0.9, 0.1]]))  # row-wise by default
    assert rows == pytest.approx([math.log(2), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))])


def test_entropy_ignores_unavailable_choices() -> None:
    rows = np.array(
        [
            [0.5, 0.5, np.nan, np.nan],  # 2 available choices at uniform
            [0.25, 0.25, 0.25, 0.25],
            [1.0, np.nan, np.nan, np.nan],  # a single choice: nothing to decide
            [np.nan] * 4,
        ]
    )
    h = entropy(rows)
    assert h[0] == pytest.approx(math.log(2)) and h[1] == pytest.approx(math.log(4))
    assert h[2] == pytest.approx(0.0) and np.isnan(h[3])
    hn = entropy(rows, normalized=True)
    assert hn[0] == pytest.approx(1.0) and hn[1] == pytest.approx(1.0)
    assert np.isnan(hn[2]) and np.isnan(hn[3])
    # frequencies that do not sum to one are renormalized over the available choices
    assert entropy([0.2, 0.2, np.nan], normalized=True) == pytest.approx(1.0)


def test_entropy_axis() -> None:
    p = _probs(np.random.default_rng(0), (3, 5, 4))
    assert entropy(p, axis=1) == pytest.approx(entropy(np.swapaxes(p, 1, 2)))


# ------------------------------------------------------------------------------ groups


def test_declare_group_is_idempotent_and_refuses_changes() -> None:
    h = SearchHistory("nasnet")
    spec = h.declare_group("op/block 1", ["a", "b"], ["x", "y", "z"], title="ops")
    assert h.declare_group("op/block 1", ["a", "b"], ["x", "y", "z"]) == spec
    assert h.declare_group("op/block 1", ["a", "b"], ["x", "y", "z"], title="ops") == spec
    with pytest.raises(ValueError, match="already declared"):
        h.declare_group("op/block 1", ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="already declared"):
        h.declare_group("op/block 1", ["a", "b"], ["x", "y", "z"], title="other")
    with pytest.raises(ValueError, match="duplicate row labels"):
        h.declare_group("g", ["a", "a"], ["x"])
    with pytest.raises(ValueError, match="non-empty list"):
        h.declare_group("g", [], ["x"])
    assert h.group_names() == ["op/block 1"]
    assert h.group_spec("op/block 1") == {
        "rows": ["a", "b"],
        "cols": ["x", "y", "z"],
        "title": "ops",
    }
    with pytest.raises(ValueError, match="no group 'nope'.*op/block 1"):
        h.group_spec("nope")


def test_log_checks_group_values() -> None:
    h = SearchHistory("nasnet")
    h.declare_group("g", ["a", "b"], ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"shape \(2, 3\), got \(3, 2\)"):
        h.log(0, 0, groups={"g": np.full((3, 2), 0.5)})
    with pytest.raises(ValueError, match="no group 'h'"):
        h.log(0, 0, groups={"h": np.full((2, 3), 0.5)})
    with pytest.raises(ValueError, match="probabilities in"):
        h.log(0, 0, groups={"g": np.array([[2.0, -1.0, 0.0], [0.2, 0.3, 0.5]])})  # logits
    assert h.records == []  # nothing half-logged


def test_group_series_and_nan() -> None:
    h = SearchHistory("nasnet")
    h.declare_group("g", ["a", "b"], ["x", "y", "z"])
    assert h.group_series("g")[1].shape == (0, 2, 3)
    v0 = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, np.nan]])
    v1 = torch.tensor([[0.1, 0.1, 0.8], [0.9, 0.1, float("nan")]])
    h.log(0, 0, groups={"g": v0})
    h.log(0, 5, kind="step", groups={"g": v1}, metrics={"epoch_progress": 0.5})
    h.log(1, 10, groups={"g": v1.tolist()})
    assert h.records[0]["groups"]["g"][1][2] is None  # JSON null, not NaN
    x, v = h.group_series("g")
    assert x.tolist() == [0.0, 1.0] and v.shape == (2, 2, 3)
    np.testing.assert_allclose(v[0], v0)
    np.testing.assert_allclose(v[1], v1.numpy(), rtol=1e-6)
    xs, _ = h.group_series("g", kind="step")
    assert xs.tolist() == [0.5]
    h.records[0]["groups"]["g"] = [[0.5, 0.5]]  # as a corrupted file would hold it
    with pytest.raises(ValueError, match="group 'g': a record's values are not 2 x 3 numbers"):
        h.group_series("g")


def test_callbacks_and_notify() -> None:
    h = SearchHistory("darts")
    seen = []
    h.add_callback(lambda hist, rec: seen.append(rec["epoch"]))
    h.log(0, 0)
    rec = h.log(1, 1, notify=False)
    assert seen == [0]
    h.notify(rec)
    assert seen == [0, 1]


def test_architectures_any_kind_through_the_protocol() -> None:
    h = SearchHistory("darts")
    h.log(0, 0)
    h.log(1, 1, architecture=genotypes.get("darts_v1"))
    h.log(2, 2, architecture=genotypes.get("darts_v2").to_dict())
    h.log(2, 3, kind="step", architecture=genotypes.get("pc_darts"))  # epochs() only
    found = h.architectures()
    assert [e for e, _ in found] == [1, 2]
    assert found[1][1] == genotypes.get("darts_v2")
    assert h.last_architecture() == genotypes.get("darts_v2")
    assert h.genotypes() == found
    assert SearchHistory("x").last_architecture() is None
    with pytest.raises(ValueError, match="unknown architecture kind 'rocket'"):
        h.log(3, 3, architecture={"kind": "rocket"})


# ------------------------------------------------------------------------------ DARTS groups


def test_darts_groups_labels_and_beta_grid() -> None:
    probs, betas = _darts_values(0)
    specs, values = darts_groups(probs, betas, PRIMITIVES, STEPS)
    assert list(specs) == ["alpha/normal", "alpha/reduce", "beta/normal", "beta/reduce"]
    alpha = specs["alpha/normal"]
    assert len(alpha["rows"]) == 14 and alpha["cols"] == list(PRIMITIVES)
    assert alpha["rows"][:3] == ["c_{k-2} → 0", "c_{k-1} → 0", "c_{k-2} → 1"]
    assert alpha["rows"][-1] == "2 → 3"
    beta = specs["beta/reduce"]
    assert beta["rows"] == ["node 0", "node 1", "node 2", "node 3"]
    assert beta["cols"] == ["c_{k-2}", "c_{k-1}", "0", "1", "2"]
    grid = values["beta/normal"]  # [4 nodes, 5 input states]
    for (src, dst), w in zip(EDGES, betas["normal"].numpy(), strict=True):
        assert grid[dst - 2, src] == pytest.approx(w)
    # node i has inputs 0 .. i+1 only; each node's weights sum to one
    assert np.isnan(grid).sum() == 3 + 2 + 1
    assert np.isnan(grid[0, 2:]).all() and not np.isnan(grid[3]).any()
    np.testing.assert_allclose(np.nansum(grid, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(beta_edges(grid), betas["normal"].numpy(), rtol=1e-6)
    assert darts_group_specs(PRIMITIVES, STEPS, betas=True) == specs
    no_beta, _ = darts_groups(probs, None, PRIMITIVES, STEPS)
    assert list(no_beta) == ["alpha/normal", "alpha/reduce"]
    with pytest.raises(ValueError, match=r"needs \(14, 7\)"):
        darts_groups(probs, None, PRIMITIVES[1:], STEPS)


def test_darts_wrappers_and_deprecated_log_arguments() -> None:
    """log(alphas=, betas=, genotype=) gives the same record as groups= and architecture=."""
    probs, betas = _darts_values(1)
    specs, values = darts_groups(probs, betas, PRIMITIVES, STEPS)
    new = SearchHistory("pc_darts")
    new.declare_groups(specs)
    new.log(1, 10, groups=values, architecture=genotypes.get("darts_v2"))
    old = SearchHistory("pc_darts", ops=list(PRIMITIVES), edges=EDGES)
    old.log(1, 10, alphas=probs, betas=betas, genotype=genotypes.get("darts_v2"))
    assert old.to_dict() == new.to_dict()
    assert new.cell_types() == ["normal", "reduce"] and new.has_betas()
    x, a = new.alpha_series("reduce")
    np.testing.assert_allclose(a[0], probs["reduce"].numpy(), rtol=1e-6)
    _, b = new.beta_series("normal")  # back in alpha-row order [T, 14]
    np.testing.assert_allclose(b[0], betas["normal"].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="no betas.*PC-DARTS"):
        SearchHistory("darts").beta_series("normal")
    with pytest.raises(ValueError, match="no alphas for cell 'normal'"):
        SearchHistory("darts").alpha_series("normal")


# ------------------------------------------------------------------------------ files


def _format_1_dict() -> dict:
    """A history as today's main (format 1) wrote it: top-level ops/edges, alphas/betas/genotype."""
    records = []
    for epoch in range(3):
        probs, betas = _darts_values(epoch)
        records.append(
            {
                "epoch": epoch,
                "step": 6 * epoch,
                "kind": "epoch",
                "metrics": {"train_loss": 2.0 - epoch * 0.1, "val_acc": 0.2 + 0.1 * epoch},
                "alphas": {c: p.tolist() for c, p in probs.items()},
                "betas": {c: b.tolist() for c, b in betas.items()},
                "genotype": {  # format 1 genotypes had no "kind"
                    k: v for k, v in genotypes.get("pc_darts").to_dict().items() if k != "kind"
                },
            }
        )
    records.append(
        {
            "epoch": 2,
            "step": 15,
            "kind": "step",
            "metrics": {"train_loss": 1.7, "epoch_progress": 2.5},
            "alphas": records[-1]["alphas"],
            "betas": records[-1]["betas"],
        }
    )
    return {
        "format": 1,
        "method": "pc-darts",
        "config": {"method": "pc-darts", "steps": 4, "k": 4},
        "ops": list(PRIMITIVES),
        "edges": [list(e) for e in EDGES],
        "records": records,
    }


def test_format_1_loads_as_groups_and_saves_as_format_2(tmp_path) -> None:
    old = _format_1_dict()
    (tmp_path / "history.json").write_text(json.dumps(old))
    h = SearchHistory.load(tmp_path)  # a run directory is accepted
    assert h.method == "pc-darts" and h.config == old["config"]
    assert h.group_names() == ["alpha/normal", "alpha/reduce", "beta/normal", "beta/reduce"]
    assert h.group_spec("alpha/normal")["cols"] == list(PRIMITIVES)
    x, a = h.group_series("alpha/normal")
    assert x.tolist() == [0, 1, 2]
    np.testing.assert_allclose(a, [r["alphas"]["normal"] for r in old["records"][:3]])
    _, b = h.beta_series("reduce")
    np.testing.assert_allclose(b, [r["betas"]["reduce"] for r in old["records"][:3]])
    assert h.group_series("beta/normal", kind="step")[0].tolist() == [2.5]
    assert h.metric("val_acc")[1] == pytest.approx([0.2, 0.3, 0.4])
    assert [e for e, _ in h.architectures()] == [0, 1, 2]
    assert h.last_architecture() == genotypes.get("pc_darts")
    assert not any(k in r for r in h.records for k in ("alphas", "betas", "genotype"))

    path = h.save(tmp_path / "again.json")
    saved = json.loads(path.read_text())
    assert saved["format"] == FORMAT_VERSION == 2 and "ops" not in saved
    again = SearchHistory.load(path)
    assert again.to_dict() == h.to_dict()
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporaries


def test_a_file_written_by_the_format_1_code_loads() -> None:
    """tests/fixtures/history_format1.json was written by nasviz/history.py of commit bc2e54a."""
    path = Path(__file__).parent / "fixtures" / "history_format1.json"
    raw = json.loads(path.read_text())
    h = SearchHistory.load(path)
    epochs = [r for r in raw["records"] if r["kind"] == "epoch"]
    assert len(h.epochs()) == len(epochs) == 3 and len(h.select("step")) == 3
    for cell in ("normal", "reduce"):
        np.testing.assert_array_equal(h.alpha_series(cell)[1], [r["alphas"][cell] for r in epochs])
        np.testing.assert_array_equal(h.beta_series(cell)[1], [r["betas"][cell] for r in epochs])
    assert h.extra("temperature")[1].tolist() == [1.0, 1.0, 1.0]
    assert h.last_architecture() == genotypes.get("pc_darts")


def test_format_1_without_edges_infers_the_cell(tmp_path) -> None:
    old = _format_1_dict()
    del old["edges"], old["ops"], old["format"]  # the oldest files
    h = SearchHistory.from_dict(old)
    assert h.group_spec("alpha/normal")["rows"][-1] == "2 → 3"
    assert h.group_spec("alpha/normal")["cols"][0] == "op 0"


def test_saved_json_is_strict(tmp_path) -> None:
    h = SearchHistory("nasnet")
    h.declare_group("g", ["a"], ["x", "y"])
    h.log(0, 0, groups={"g": [[1.0, float("nan")]]})
    text = h.save(tmp_path / "h.json").read_text()

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    json.loads(text, parse_constant=refuse)
    assert np.isnan(SearchHistory.load(tmp_path / "h.json").group_series("g")[1][0, 0, 1])


def test_newer_format_is_refused(tmp_path) -> None:
    d = SearchHistory("darts").to_dict() | {"format": 99}
    (tmp_path / "history.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"history\.json.*format 99.*newer nasviz.*Upgrade"):
        SearchHistory.load(tmp_path / "history.json")


def test_bad_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no search history"):
        SearchHistory.load(tmp_path)
    bad = tmp_path / "genotype.json"
    genotypes.get("darts_v2").save(bad)
    with pytest.raises(ValueError, match=r"genotype\.json: not a nasviz search history"):
        SearchHistory.load(bad)
    (tmp_path / "broken.json").write_text('{"method": "darts", "rec')
    with pytest.raises(ValueError, match=r"broken\.json is not a valid history JSON"):
        SearchHistory.load(tmp_path / "broken.json")
    (tmp_path / "fmt.json").write_text(json.dumps({"method": "d", "records": [], "format": "2"}))
    with pytest.raises(ValueError, match="'format' must be a positive integer"):
        SearchHistory.load(tmp_path / "fmt.json")
    (tmp_path / "rec.json").write_text(json.dumps({"method": "d", "records": [{"epoch": 0}]}))
    with pytest.raises(ValueError, match=r"rec\.json: a history record needs"):
        SearchHistory.load(tmp_path / "rec.json")
