"""NASNet children scored per minute, in this process and on Ray workers; the controller's own cost.

    python benchmarks/nasnet_children.py                    # quick children, 8 timed, 2 workers
    python benchmarks/nasnet_children.py --children 12 --workers 2 --preset quick
    python benchmarks/nasnet_children.py --skip-ray

The same genotypes (sampled by a seeded, untrained controller) are trained and scored as the
search's children (`nasviz.search.children`, the ``--preset``'s child settings on its dataset)
by a fresh `InProcessExecutor` (the library's CPU thread rule) and by a `RayExecutor` with
``--workers`` workers of one CPU and one torch thread each, on a local Ray started here. Each
executor first scores ``--warmup`` other children untimed (a Ray worker imports torch and loads
the dataset on its first job). The rewards of the two must be equal (same jobs, same seeds).

The controller's time per update: sampling M architectures plus the PPO update (4 epochs over
the batch) or REINFORCE, at M = the preset's children and 20 (the paper preset), in CPU seconds.

Clock: wall clock for children per minute (Ray's workers are other processes), with the load
average printed beside it, as the machine may be shared; the in-process CPU seconds per child
are printed too.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from nasviz import threads
from nasviz.search import preset
from nasviz.search.children import child_job, run_child_job
from nasviz.search.controller import Controller
from nasviz.search.executor import InProcessExecutor, RayExecutor
from nasviz.search.policy import PolicyUpdater


def _jobs(config, n: int, seed: int) -> list[dict]:
    controller = Controller(config.space())
    samples = controller.sample(n, generator=torch.Generator().manual_seed(seed))
    child = config.child_config().replace(device="cpu")
    return [child_job(g, child, config.seed) for g in samples.genotypes]


def _score(ex, jobs: list[dict]) -> tuple[list[float], float, float]:
    """(rewards, wall seconds, this process's CPU seconds)."""
    t, c = time.perf_counter(), time.process_time()
    results = ex.map(run_child_job, jobs)
    return [r["reward"] for r in results], time.perf_counter() - t, time.process_time() - c


def controller_seconds(config, m: int, algorithm: str, repeats: int = 3) -> float:
    """CPU seconds of one controller update (sample m + policy update), median of ``repeats``."""
    controller = Controller(config.space())
    updater = PolicyUpdater(controller, config.policy_config().replace(algorithm=algorithm))
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        c = time.process_time()
        samples = controller.sample(m, generator=gen)
        updater.update(samples, torch.rand(m, generator=gen).tolist())
        times.append(time.process_time() - c)
    return sorted(times)[len(times) // 2]


def _start_ray(workers: int, attempts: int = 3) -> RayExecutor:
    """A local Ray (all CPUs); retried, as Ray waits a fixed 30 s for its raylet on a busy machine."""
    import ray

    for attempt in range(attempts):
        try:
            return RayExecutor(workers, init_kwargs={"num_cpus": os.cpu_count()})
        except RuntimeError as exc:
            if attempt + 1 == attempts or "timed out during startup" not in str(exc):
                raise
            print(f"Ray start timed out (load {os.getloadavg()[0]:.1f}); retrying")
            ray.shutdown()
    raise AssertionError("unreachable")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="quick", choices=("quick", "smoke", "paper"))
    p.add_argument("--children", type=int, default=8, help="timed children per executor")
    p.add_argument("--warmup", type=int, default=2, help="untimed children first")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--skip-in-process", action="store_true")
    args = p.parse_args()

    config = preset("nasnet", args.preset, device="cpu")
    n_threads = threads.apply(torch.device("cpu"), None)
    warm, timed = _jobs(config, args.warmup, seed=100), _jobs(config, args.children, seed=1)
    print(f"preset {args.preset}: {args.children} children (C={config.child_C}, "
          f"{config.child_cells_per_stage} cell/stage, {config.child_epochs} epochs on "
          f"{config.dataset}); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("\n| controller update | M | CPU ms/update |\n|---|---|---|")
    for algorithm in ("ppo", "reinforce"):
        for m in sorted({config.children, 20}):
            ms = 1000 * controller_seconds(config, m, algorithm)
            print(f"| {algorithm} | {m} | {ms:.0f} |", flush=True)
    print("\n| executor | children/min (wall) | s/child (wall) | CPU s/child here | load after |")
    print("|---|---|---|---|---|", flush=True)
    here = None
    if not args.skip_in_process:
        ex = InProcessExecutor()
        _score(ex, warm)
        here, wall, cpu = _score(ex, timed)
        _row(f"in-process ({n_threads} threads)", len(timed), wall, cpu / len(timed))
    if not args.skip_ray:
        try:
            ray_ex = _start_ray(args.workers)
        except RuntimeError as exc:
            print(f"| Ray, {args.workers} workers | not measured: {exc} | | | |")
            return
        try:
            _score(ray_ex, warm)
            there, wall, _ = _score(ray_ex, timed)
        finally:
            ray_ex.close()
        _row(f"Ray, {args.workers} workers x 1 thread", len(timed), wall, float("nan"))
        if here is not None:
            print(f"\nsame rewards on Ray as in-process: {there == here}")


def _row(name: str, n: int, wall: float, cpu: float) -> None:
    load = os.getloadavg()[0]
    print(f"| {name} | {60 * n / wall:.1f} | {wall / n:.2f} | {cpu:.2f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
