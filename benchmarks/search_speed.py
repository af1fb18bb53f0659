"""Images per second and peak memory of one search step: DARTS (1st/2nd order), PC-DARTS K=1,2,4,8.

    python benchmarks/search_speed.py --device cpu      # small configuration (C=8, 5 cells, 16x16)
    python benchmarks/search_speed.py --device cuda     # paper configuration (C=16, 8 cells, 32x32)

Synthetic CIFAR-shaped batches (speed does not depend on pixel values). A "step" is what the
search loop does per training batch: the architecture step on a validation batch, then the weight
step. Timings exclude a few warm-up steps; CUDA is synchronized around the timed region. Each case
runs in its own process, so the CPU peak (the process's peak RSS) belongs to that case alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import torch

from nasviz.data import DatasetInfo, search_split, synthetic_dataset
from nasviz.resources import peak_memory_mb, reset_peak_memory
from nasviz.search import create_search, preset


@dataclass
class Row:
    name: str
    batch: int
    images_per_second: float
    seconds_per_step: float
    peak_memory_mb: float


def _cases() -> list[tuple[str, str, dict]]:
    cases = [
        ("DARTS 1st order", "darts", dict(order=1)),
        ("DARTS 2nd order", "darts", dict(order=2)),
    ]
    cases += [
        (f"PC-DARTS K={k}", "pc-darts", dict(k=k, edge_normalization=True)) for k in (1, 2, 4, 8)
    ]
    return cases


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    method: str,
    overrides: dict,
    device: str,
    cuda_config: bool,
    batch: int,
    steps: int,
    warmup: int,
) -> Row:
    """Time `steps` search steps of one method on synthetic data."""
    if cuda_config:  # the papers' search network on CIFAR-shaped data
        info = DatasetInfo(
            "cifar10", 10, 3, 32, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), 4, True, 16
        )
        cfg = preset(method, "paper", batch_size=batch, device=device, warmup_epochs=0, **overrides)
    else:  # small CPU configuration
        info = DatasetInfo("cifar10", 10, 3, 16, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), 2, True, 8)
        cfg = preset(
            method,
            "quick",
            dataset="cifar10",
            batch_size=batch,
            device=device,
            warmup_epochs=0,
            **overrides,
        )
    data = synthetic_dataset(info, max(4 * batch, 256), seed=0)
    train, val = search_split(data)
    search = create_search(cfg, None, train_data=train, val_data=val)
    dev = search.device
    for _ in range(warmup):
        search.train_step(*search.train_loader.next())
    _sync(dev)
    reset_peak_memory(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        search.train_step(*search.train_loader.next())
    _sync(dev)
    dt = (time.perf_counter() - t0) / steps
    return Row("", batch, batch / dt, dt, peak_memory_mb(dev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--batch", type=int, default=None, help="default: 64 (CUDA, DARTS paper) / 32 (CPU)"
    )
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", default=None, help="substring filter on the case names")
    parser.add_argument(
        "--single", default=None, help=argparse.SUPPRESS
    )  # internal: one case, JSON out
    args = parser.parse_args()
    cuda_config = args.device.startswith("cuda")
    batch = args.batch or (64 if cuda_config else 32)
    steps = args.steps or (20 if cuda_config else 5)
    if not args.single:
        print(
            f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
            f"config={'paper C=16 8 cells 32x32' if cuda_config else 'small C=8 5 cells 16x16'} batch={batch}"
        )
        print(f"{'case':<18} {'img/s':>9} {'s/step':>9} {'peak MiB':>10}")
    cases = {name: (method, overrides) for name, method, overrides in _cases()}
    if args.single:
        method, overrides = cases[args.single]
        row = bench(method, overrides, args.device, cuda_config, batch, steps, args.warmup)
        print(json.dumps(row.__dict__))
        return
    for name in cases:
        if args.only and args.only not in name:
            continue
        cmd = [
            sys.executable,
            __file__,
            "--single",
            name,
            "--device",
            args.device,
            "--batch",
            str(batch),
            "--steps",
            str(steps),
            "--warmup",
            str(args.warmup),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = Row(**json.loads(out.strip().splitlines()[-1]))
        print(
            f"{name:<18} {row.images_per_second:>9.1f} {row.seconds_per_step:>9.3f} {row.peak_memory_mb:>10.1f}"
        )


if __name__ == "__main__":
    main()
