"""Tests for nasviz.search.executor: in-process and Ray executors, the cache, retries, bad input."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch

from nasviz.data import synthetic_dataset
from nasviz.search import executor as E
from nasviz.search.children import child_job, child_preset, train_child
from nasviz.search.controller import Controller


def _double(job):
    return {"x": job["x"] * 2, "pid": os.getpid()}


def _random_draw(job):
    torch.manual_seed(job["seed"])
    return float(torch.rand(1))


def _tiny_child(job):
    """A real child (train_child) on tiny synthetic digits, so a Ray worker needs no dataset."""
    train = synthetic_dataset("digits", 32, seed=0)
    val = synthetic_dataset("digits", 16, seed=1)
    return train_child(job["arch"], job["config"], job["seed"], train, val)


def _crash_once(job):
    """Kill the worker on the first attempt (marker file), succeed on the retry."""
    with open(job["attempts"], "a") as f:
        f.write("attempt\n")
    marker = Path(job["marker"])
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return job["x"] * 10


def _tiny_jobs(n: int = 2):
    torch.manual_seed(0)
    controller = Controller(hidden=8)
    samples = controller.sample(n, generator=torch.Generator().manual_seed(0))
    cfg = child_preset("smoke", device="cpu", C=4, cells_per_stage=1, batch_size=16)
    return [child_job(g, cfg, base_seed=7) for g in samples.genotypes]


# ------------------------------------------------------------------------------ in process
def test_in_process_results_in_order_and_duplicates_cached():
    ex = E.InProcessExecutor()
    calls = []

    def fn(job):
        calls.append(job["x"])
        return job["x"] * 2

    assert ex.map(fn, [{"x": 3}, {"x": 1}, {"x": 3}]) == [6, 2, 6]
    assert calls == [3, 1]  # the duplicate ran once
    assert ex.map(fn, [{"x": 1}, {"x": 5}]) == [2, 10]
    assert calls == [3, 1, 5] and ex.hits == 2 and ex.computed == 3


def test_in_process_restores_the_callers_rng():
    ex = E.InProcessExecutor()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.map(_random_draw, [{"seed": 1}, {"seed": 2}])
    assert torch.equal(torch.rand(3), expected)


def test_cache_state_round_trip():
    ex = E.InProcessExecutor()
    ex.map(_double, [{"x": 1}])
    other = E.InProcessExecutor()
    other.load_state_dict(ex.state_dict())
    assert other.map(lambda job: pytest.fail("recomputed"), [{"x": 1}])[0]["x"] == 2


def test_child_jobs_key_on_the_genotype():
    jobs = _tiny_jobs(2)
    again = _tiny_jobs(2)
    assert jobs == again and E.job_key(jobs[0]) == E.job_key(again[0])
    assert jobs[0]["seed"] != jobs[1]["seed"]


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r'pip install "nasviz\[ray\]"'):
        E.RayExecutor(2)


def test_make_executor_defaults_in_process():
    assert isinstance(E.make_executor(), E.InProcessExecutor)


# ------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for this module (starting Ray is the slow part).

    Started by a RayExecutor, as `nasviz search --workers` does: ray.init(num_cpus=2,
    include_dashboard=False); the executors of the tests join it; closing the first shuts it down.
    """
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    for attempt in range(2):
        try:
            owner = E.RayExecutor(2, init_kwargs={"num_cpus": 2})
            break
        except (
            Exception
        ) as exc:  # Ray waits a fixed 30 s for its raylet: a busy machine can miss it
            if attempt or "timed out during startup" not in str(exc):
                raise
            ray.shutdown()
    assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2
    yield ray
    owner.close()
    assert not ray.is_initialized()


def test_bad_address_fails_fast():
    pytest.importorskip("ray")
    start = time.perf_counter()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match="no Ray cluster answers at '127.0.0.1:"):
        E.RayExecutor(2, address=f"127.0.0.1:{port}", connect_timeout=2)
    with pytest.raises(ValueError, match="is not host:port"):
        E.RayExecutor(2, address="nonsense")
    assert time.perf_counter() - start < 10


def test_ray_same_seeds_same_rewards_as_in_process(local_ray):
    jobs = _tiny_jobs(2)
    here = E.InProcessExecutor().map(_tiny_child, jobs)
    with E.RayExecutor(2) as ex:
        there = ex.map(_tiny_child, jobs + jobs[:1])
        assert ex.computed == 2 and ex.hits == 1
    assert [r["reward"] for r in there] == [r["reward"] for r in here] + [here[0]["reward"]]
    assert [r["val_loss"] for r in there[:2]] == [r["val_loss"] for r in here]
    assert local_ray.is_initialized()  # the executor did not start Ray, so it leaves it running


def test_ray_retries_a_job_whose_worker_died(local_ray, tmp_path):
    jobs = [
        {"x": 1, "marker": str(tmp_path / "m1"), "attempts": str(tmp_path / "a1")},
        {"x": 2, "marker": str(tmp_path / "m2"), "attempts": str(tmp_path / "a2")},
    ]
    (tmp_path / "m2").touch()  # job 2 does not crash
    ex = E.RayExecutor(2, max_retries=2)
    assert ex.map(_crash_once, jobs) == [10, 20]
    assert (tmp_path / "a1").read_text().count("attempt") == 2  # died once, retried once
    assert (tmp_path / "a2").read_text().count("attempt") == 1  # not run twice
    assert ex.computed == 2


def test_more_workers_than_cpus_warns_and_finishes(local_ray):
    with pytest.warns(UserWarning, match="4 workers .* 2 CPUs"):
        ex = E.RayExecutor(4)
    out = ex.map(_double, [{"x": i} for i in range(5)])
    assert [r["x"] for r in out] == [0, 2, 4, 6, 8]


def test_job_errors_surface(local_ray):
    def bad(job):
        raise KeyError("no such thing")

    with pytest.raises(KeyError, match="no such thing"):
        E.RayExecutor(1).map(bad, [{"x": 1}])
