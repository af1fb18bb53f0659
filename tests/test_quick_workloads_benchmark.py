"""benchmarks/quick_workloads.py: each notebook's searches and retraining, timed by name
(here cut to one step per epoch so the test stays fast)."""

import importlib.util
from pathlib import Path

import pytest

from nasviz.search import preset
from nasviz.train import retrain_preset

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "quick_workloads.py"


@pytest.fixture
def workloads(monkeypatch):
    spec = importlib.util.spec_from_file_location("quick_workloads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def short_preset(method, name, **kw):
        return preset(method, name, **{**kw, "epochs": 1, "max_steps_per_epoch": 1})

    def short_retrain(name, **kw):
        return retrain_preset(name, **{**kw, "epochs": 1, "max_steps_per_epoch": 1})

    monkeypatch.setattr(module, "preset", short_preset)
    monkeypatch.setattr(module, "retrain_preset", short_retrain)
    return module


@pytest.mark.parametrize(("notebook", "parts"), [("01", 3), ("02", 4), ("03", 5)])
def test_each_notebooks_runs_are_timed(workloads, notebook, parts):
    out = workloads.run(notebook)
    assert out["notebook"] == notebook and len(out["parts"]) == parts
    assert all(seconds > 0 for _, seconds in out["parts"])
    assert out["total_s"] == pytest.approx(sum(s for _, s in out["parts"]), abs=0.2)
