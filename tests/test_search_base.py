"""The search base knows nothing of DARTS: a controller-style toy method registered in a test runs
through the same loop, CLI, presets, checkpoints and plots; Ctrl-C and divergence keep the last
good epoch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from nasviz.cli import main
from nasviz.genotypes import get
from nasviz.search import create_search, preset, registry
from nasviz.search.base import Search
from nasviz.search.config import SearchConfig, param, presets_from

CHOICES = ["a", "b", "c"]


@dataclass
class ToyConfig(SearchConfig):
    """A categorical 'controller' over 3 choices, moved towards the best-scoring sample."""

    samples: int = param(4, min=1, max=64)
    lr: float = param(0.5, min=0.0, min_open=True)


class ToySearch(Search):
    """One iteration = sample M choices, score them (choice 'c' scores best), update the logits."""

    def setup(self, **data: Any) -> None:
        self.logits = torch.zeros(len(CHOICES))
        self.history.declare_group("choice", rows=["decision"], cols=CHOICES, title="choice")

    def iterations_per_epoch(self) -> int:
        return 3

    def run_iteration(self, index: int) -> tuple[dict[str, Any], int]:
        probs = self.logits.softmax(0)
        picks = torch.multinomial(probs, self.config.samples, replacement=True)
        rewards = (picks == 2).float()
        advantage = rewards - rewards.mean()
        grad = torch.zeros_like(self.logits).index_add_(0, picks, advantage)
        self.logits += self.config.lr * grad
        return {"reward": rewards.mean()}, self.config.samples

    def snapshot(self, *, step: bool = False) -> dict[str, Any]:
        return {"groups": {"choice": self.logits.softmax(0)[None]}, "extra": {"lr": self.config.lr}}

    def derive(self):
        return get("darts_v2")  # any architecture kind: the toy decides nothing real

    def method_state(self) -> dict[str, Any]:
        return {"logits": self.logits.clone()}

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.logits = state["logits"].clone()


@pytest.fixture
def toy():
    entry = registry.register(
        registry.Method(
            name="toy", title="Toy", search_class=ToySearch, config_class=ToyConfig,
            presets=presets_from(dict(epochs=3), dict(epochs=3), dict(epochs=2)),
            cli_flags=(registry.CliFlag(("--samples",), "samples", dict(type=int)),),
            controls=(registry.Control("samples", "int", "samples", min=1, max=64),),
            summary="a toy categorical controller",
        )
    )  # fmt: skip
    yield entry
    registry._METHODS.pop("toy")


def test_a_registered_method_runs_through_cli_presets_and_plots(toy, tmp_path, capsys):
    assert preset("toy", "smoke").epochs == 2
    out = tmp_path / "run"
    assert main(["search", "toy", "--preset", "smoke", "--samples", "8", "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    history = json.loads((out / "history.json").read_text())
    assert history["method"] == "toy" and history["config"]["samples"] == 8
    assert [r["epoch"] for r in history["records"]] == [0, 1, 2]
    p_c = [r["groups"]["choice"][0][2] for r in history["records"]]
    assert p_c[-1] > p_c[0]  # the controller learnt that 'c' scores best
    assert history["records"][-1]["metrics"]["reward"] > 0
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    written = capsys.readouterr().out
    assert "choice" in written and (out / "plots").is_dir()
    from nasviz.viz.widgets import SearchPanel

    panel = SearchPanel("toy", "smoke", live=False)
    assert list(panel.controls)[-1] == "samples" and panel.config().samples == 4


def _stop_in(epoch: int, exc: type[BaseException]):
    calls = {"n": 0}
    original = ToySearch.run_iteration

    def run_iteration(self, index):
        if self.epoch == epoch - 1 and index == 1:
            raise exc()
        calls["n"] += 1
        return original(self, index)

    return run_iteration


def test_ctrl_c_rolls_back_to_the_last_epoch_and_resume_is_exact(toy, tmp_path, monkeypatch):
    straight = create_search(preset("toy", "quick"), tmp_path / "a").run(progress=False)
    search = create_search(preset("toy", "quick"), tmp_path / "b")
    monkeypatch.setattr(ToySearch, "run_iteration", _stop_in(2, KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        search.run(progress=False)
    assert search.epoch == 1 and len(search.history.epochs()) == 2  # back to the saved epoch 1
    monkeypatch.undo()
    resumed = create_search(None, tmp_path / "b", resume=True).run(progress=False)
    a, b = straight.history.group_series("choice")[1], resumed.history.group_series("choice")[1]
    assert a.shape == b.shape == (4, 1, 3) and (a == b).all()


def test_divergence_stops_naming_the_epoch_and_keeps_the_last_good_files(
    toy, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    search = create_search(preset("toy", "quick"), out)
    original = ToySearch.run_iteration

    def nan_in_epoch_2(self, index):
        values, w = original(self, index)
        return ({"reward": torch.tensor(float("nan"))} if self.epoch == 1 else values), w

    monkeypatch.setattr(ToySearch, "run_iteration", nan_in_epoch_2)
    files = {}
    search.history.add_callback(
        lambda h, r: (
            out.exists()
            and files.update({p.name: p.read_bytes() for p in out.iterdir() if p.is_file()})
        )
    )
    with pytest.raises(
        ValueError, match=r"toy search diverged: reward is nan in epoch 2, by step 3"
    ):
        search.run(progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files
    assert json.loads((out / "history.json").read_text())["records"][-1]["epoch"] == 1
