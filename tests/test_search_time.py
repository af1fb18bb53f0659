"""benchmarks/search_time.py: a whole search on synthetic CIFAR-shaped data, timed end to end.

What is tested is the harness on the CPU (tiny settings): every epoch reported, the time limit
stopping after a saved epoch with the projection, and --resume finishing that run. No timing is
asserted.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "search_time", ROOT / "benchmarks" / "search_time.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = ["--method", "pc-darts", "--preset", "smoke", "--images", "128", "--device", "cpu"]


def test_every_epoch_timed_and_written(tmp_path, capsys):
    out = _script().main([*ARGS, "--epochs", "2", "--out", str(tmp_path / "run"),
                          "--json", str(tmp_path / "t.json")])  # fmt: skip
    assert out["epochs_run"] == 2 and not out["stopped_by_time_limit"]
    assert all(e["seconds"] > 0 and e["images_per_second"] > 0 for e in out["per_epoch"])
    assert json.loads((tmp_path / "t.json").read_text())["epochs"] == 2
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert "finished 2 epochs" in capsys.readouterr().out


def test_time_limit_stops_after_a_saved_epoch_and_resume_finishes(tmp_path, capsys):
    script, run = _script(), str(tmp_path / "run")
    out = script.main([*ARGS, "--epochs", "3", "--out", run, "--time-limit", "1e-6"])
    assert out["stopped_by_time_limit"] and out["epochs_run"] == 1
    assert out["projected_total_seconds"] > out["wall_seconds"]
    assert "(projected)" in capsys.readouterr().out
    rest = script.main([*ARGS, "--epochs", "3", "--out", run, "--resume"])
    assert rest["epochs_run"] == 2 and not rest["stopped_by_time_limit"]
