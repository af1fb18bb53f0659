"""Running independent child jobs: in this process, or on Ray (locally or on a cluster).

Both executors have one API, ``map(fn, jobs) -> results`` in job order, and share a result cache
keyed by the job (canonical JSON of it by default): a job seen before, or twice in one batch, is
computed once and its cached result reused, so a duplicate genotype costs nothing. The cache is
plain data (`state_dict`) for checkpoints.

* `InProcessExecutor` runs the jobs one after another and restores the global RNG around each,
  so a job sees the same state wherever it runs and the caller's random streams are untouched.
* `RayExecutor(workers, address=None)` keeps at most ``workers`` jobs in flight as Ray tasks of
  ``cpus_per_job`` CPUs each. A worker that dies mid-job (killed, out of memory, os._exit) has its
  job retried by Ray up to ``max_retries`` times: the job is neither lost nor counted twice, since
  each job's result is collected once. ``address=None`` starts a local Ray (or joins the one this
  process already started); an address joins that cluster, checked within ``connect_timeout``
  seconds. More workers than the cluster's CPUs warns (the extra jobs queue; nothing hangs).
  Ray is optional: ``pip install "nasviz[ray]"``.
"""

from __future__ import annotations

import json
import socket
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from nasviz import checkpoint

RAY_HINT = 'pip install "nasviz[ray]"'

Job = Any
KeyFn = Callable[[Job], str]


def job_key(job: Job) -> str:
    """The cache key of a job: its canonical JSON (sorted keys), else its repr."""
    try:
        return json.dumps(job, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(job)


class _CachedExecutor:
    """The shared part: the result cache, duplicates computed once, results in job order."""

    def __init__(self, key: KeyFn = job_key):
        self.key = key
        self.cache: dict[str, Any] = {}
        self.hits = 0  # jobs answered from the cache
        self.computed = 0  # jobs actually run

    def map(self, fn: Callable[[Job], Any], jobs: Sequence[Job]) -> list[Any]:
        """``[fn(job) for job in jobs]``, each distinct uncached job computed once."""
        jobs = list(jobs)
        keys = [self.key(j) for j in jobs]
        todo: dict[str, Job] = {}
        for k, j in zip(keys, jobs, strict=True):
            if k not in self.cache and k not in todo:
                todo[k] = j
        self.hits += len(jobs) - len(todo)
        if todo:
            results = self._run(fn, list(todo.values()))
            for k, r in zip(todo, results, strict=True):
                self.cache[k] = r
            self.computed += len(todo)
        return [self.cache[k] for k in keys]

    def _run(self, fn: Callable[[Job], Any], jobs: list[Job]) -> list[Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The cache and counters (plain data)."""
        return {"cache": dict(self.cache), "hits": self.hits, "computed": self.computed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`."""
        self.cache = dict(state["cache"])
        self.hits = int(state["hits"])
        self.computed = int(state["computed"])

    def close(self) -> None:
        """Release what the executor holds (nothing in process)."""

    def __enter__(self) -> _CachedExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessExecutor(_CachedExecutor):
    """Runs the jobs here, one by one, with the global RNG restored around each job."""

    def _run(self, fn: Callable[[Job], Any], jobs: list[Job]) -> list[Any]:
        results = []
        for job in jobs:
            saved = checkpoint.rng_state()
            try:
                results.append(fn(job))
            finally:
                checkpoint.set_rng_state(saved)
        return results


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"running children on Ray needs Ray, which is not installed: {RAY_HINT}"
        ) from exc
    return ray


def _check_address(address: str, timeout: float) -> None:
    """Fail fast (ValueError) when a host:port or ray://host:port address does not answer."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or ray://head:10001); "
            "omit it to start Ray locally"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ValueError(
            f"no Ray cluster answers at {address!r} within {timeout:g} s ({exc}); start one with "
            "`ray start --head` or omit the address to run Ray locally"
        ) from exc


def _run_job(fn: Callable[[Job], Any], job: Job, threads: int) -> Any:
    """A Ray task: the job with ``threads`` torch threads (Ray workers default to one)."""
    import torch

    torch.set_num_threads(threads)
    return fn(job)


class RayExecutor(_CachedExecutor):
    """Runs the jobs as Ray tasks, at most ``workers`` at a time (see the module docstring)."""

    def __init__(
        self,
        workers: int = 2,
        address: str | None = None,
        *,
        cpus_per_job: float = 1.0,
        max_retries: int = 3,
        connect_timeout: float = 5.0,
        key: KeyFn = job_key,
        init_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(key)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if not cpus_per_job > 0:
            raise ValueError(f"cpus_per_job must be > 0, got {cpus_per_job}")
        ray = _import_ray()
        self.ray = ray
        self.workers = workers
        self.cpus_per_job = cpus_per_job
        self.max_retries = max_retries
        self._owns_ray = False
        if not ray.is_initialized():
            kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False)
            kw.update(init_kwargs or {})
            if address is not None:
                _check_address(address, connect_timeout)
                try:
                    ray.init(address=address, **kw)
                except (ConnectionError, RuntimeError) as exc:
                    raise ValueError(
                        f"cannot connect to the Ray cluster at {address!r}: {exc}"
                    ) from exc
            else:
                try:
                    ray.init(**kw)
                except Exception as exc:  # Ray raises a bare Exception when its raylet is late
                    raise RuntimeError(
                        f"Ray could not start locally ({exc}); try again on a less busy machine, "
                        "or run the children in-process (no --workers)"
                    ) from exc
            self._owns_ray = True
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus < cpus_per_job:
            self.close()
            raise ValueError(
                f"the Ray cluster has {cpus:g} CPUs, fewer than cpus_per_job={cpus_per_job:g}: "
                "no job could ever start"
            )
        if workers * cpus_per_job > cpus:
            warnings.warn(
                f"{workers} workers x {cpus_per_job:g} CPUs but the Ray cluster has {cpus:g} CPUs: "
                f"at most {int(cpus // cpus_per_job)} jobs run at once, the others wait their turn",
                stacklevel=2,
            )
        self._task = ray.remote(_run_job).options(
            num_cpus=cpus_per_job, max_retries=max_retries, retry_exceptions=False
        )

    def _run(self, fn: Callable[[Job], Any], jobs: list[Job]) -> list[Any]:
        ray = self.ray
        module = getattr(fn, "__module__", None) or "__main__"
        if module != "__main__" and not module.startswith("nasviz") and module in sys.modules:
            # a function from a notebook helper or a test module: ship its code with it, since
            # workers may not be able to import that module
            ray.cloudpickle.register_pickle_by_value(sys.modules[module])
        threads = max(1, int(self.cpus_per_job))
        fn_ref = ray.put(fn)
        results: list[Any] = [None] * len(jobs)
        pending: dict[Any, int] = {}
        next_job = 0
        while next_job < len(jobs) or pending:
            while next_job < len(jobs) and len(pending) < self.workers:
                pending[self._task.remote(fn_ref, jobs[next_job], threads)] = next_job
                next_job += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.WorkerCrashedError as exc:
                    raise RuntimeError(
                        f"job {i} lost its worker {self.max_retries + 1} times; giving up ({exc})"
                    ) from exc
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
        return results

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns_ray = False


def make_executor(
    workers: int | None = None, address: str | None = None, **kw: Any
) -> _CachedExecutor:
    """In-process without ``workers`` and ``address``; otherwise Ray with ``workers`` (default 2)."""
    if workers is None and address is None:
        return InProcessExecutor(**kw)
    return RayExecutor(workers or 2, address, **kw)
