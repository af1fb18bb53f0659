"""benchmarks/compare_official.py end to end against a stand-in for the official PC-DARTS code.

The official repositories are not part of nasviz (nor fetched in CI), so a small checkout with
the same interface (``model_search.Network``, ``architect.Architect``, the hard-coded
``self.k = 4`` the benchmark patches) stands in for it. What is tested is the harness: the
patched copy, the workers that take turns step by step, a failing implementation reported
without stopping the run, and the table. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_official.py"

MODEL_SEARCH = """
import torch
from torch import nn


class MixedOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.k = 4
        if self.k == 1:  # as the real code on PyTorch 2.x: an empty bypass on K=1
            raise RuntimeError("Expected 3D or 4D tensor, got [8, 0, 16, 16]")


class Network(nn.Module):
    def __init__(self, C, num_classes, layers, criterion):
        super().__init__()
        self.mixed = MixedOp()
        self.stem = nn.Conv2d(3, C, 3, padding=1)
        self.head = nn.Linear(C, num_classes)
        self.alphas = torch.zeros(2, requires_grad=True)
        self._criterion = criterion
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.mixed.k == 2 and self.calls > 2:  # a failure in the second timed step
            raise RuntimeError("out of memory in step 2")
        w = torch.softmax(self.alphas, 0)
        h = self.stem(x).relu() * w[0] + self.stem(x) * w[1]
        return self.head(h.mean((2, 3)))

    def arch_parameters(self):
        return [self.alphas]
"""

ARCHITECT = """
import torch


class Architect:
    def __init__(self, model, args):
        self.model = model
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=args.arch_learning_rate)

    def step(self, x, y, x_val, y_val, eta, optimizer, unrolled):
        self.optimizer.zero_grad()
        self.model._criterion(self.model(x_val), y_val).backward()
        self.optimizer.step()
"""


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pcdarts")
    (root / "model_search.py").write_text(textwrap.dedent(MODEL_SEARCH))
    (root / "architect.py").write_text(textwrap.dedent(ARCHITECT))
    return root


def run(official: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list]:
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(SCRIPT), "--official", str(official), "--device", "cpu",
           "--batch", "2", "--steps", "2", "--warmup", "0", "--repeats", "1", "--json", str(out),
           *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_side_by_side_table(official: Path, tmp_path: Path) -> None:
    proc, results = run(official, tmp_path, "--only", "K=4")
    assert sorted(r["impl"] for r in results) == ["nasviz", "official"]
    for r in results:
        assert r["case"] == "PC-DARTS K=4" and r["batch"] == 2 and r["threads"] == 1
        assert r["images_per_second"] > 0 and r["peak_mb"] > 0 and r["saved_mb"] > 0
    nasviz = next(r for r in results if r["impl"] == "nasviz")
    assert nasviz["paper_params"] == 299_578  # the published PC-DARTS supernet at C=16, 8 cells
    lines = proc.stdout.splitlines()
    row = next(line for line in lines if line.startswith("PC-DARTS K=4"))
    ratio = nasviz["images_per_second"] / next(
        r["images_per_second"] for r in results if r["impl"] == "official"
    )
    assert f"{ratio:.2f}" in row.split()


def test_a_failing_implementation_is_reported_and_the_run_goes_on(
    official: Path, tmp_path: Path
) -> None:
    proc, results = run(official, tmp_path, "--only", "K=1")
    assert "official FAILED: RuntimeError: Expected 3D or 4D tensor" in proc.stdout
    assert [r["impl"] for r in results] == ["nasviz"]  # nasviz still ran and was timed


def test_a_failure_during_the_timed_steps_is_reported_too(official: Path, tmp_path: Path) -> None:
    proc, results = run(official, tmp_path, "--only", "K=2")
    assert "official FAILED: RuntimeError: out of memory in step 2" in proc.stdout
    assert [r["impl"] for r in results] == ["nasviz"]


def test_missing_checkout_is_named(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--official", str(tmp_path), "--only", "K=4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    assert "no model_search.py + architect.py" in proc.stderr


def test_image_size_sets_the_input(official: Path, tmp_path: Path) -> None:
    """--image-size 8: the notebooks' quick preset's 8x8 inputs (the header says so)."""
    proc, results = run(official, tmp_path, "--only", "K=4", "--image-size", "8")
    assert "cells 8x8" in proc.stdout
    assert sorted(r["impl"] for r in results) == ["nasviz", "official"]
    cmd = [sys.executable, str(SCRIPT), "--official", str(official), "--image-size", "2"]
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "--image-size 2" in bad.stderr
