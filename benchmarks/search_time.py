"""A whole search timed end to end on synthetic data of CIFAR-10's shape (no download needed).

    python benchmarks/search_time.py --method pc-darts --device cuda                  # the paper's 50 epochs
    python benchmarks/search_time.py --method pc-darts --device cuda --time-limit 420  # stop after ~7 min
    python benchmarks/search_time.py --method darts --preset quick --epochs 2 --images 512  # a small check

The method's preset (``paper`` by default: C=16, 8 cells, the paper's batch size and epochs) runs
with the dataset replaced by random uint8 images and labels of CIFAR-10's shape (50,000 by
default, split in halves as the papers do; speed does not depend on pixel values). The search
loop is the one ``nasviz search`` runs: an architecture step and a weight step per batch, then
per epoch the evaluation with BN recalibration, the history and the checkpoint. Printed per
epoch: search seconds, evaluation seconds, images per second, peak memory; at the end the total
wall time and, when ``--time-limit`` stopped the run early, the full search projected from the
mean epoch time (the checkpoint of the last finished epoch stays in ``--out``: ``nasviz search
... --resume`` or this script with ``--resume`` continues it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing (as on the GPU machine)
    sys.path.insert(0, str(ROOT))

from nasviz.data import dataset_info, synthetic_dataset  # noqa: E402
from nasviz.search import create_search, methods, preset  # noqa: E402


class _TimeUp(Exception):
    """Raised by the epoch callback once the time limit has passed (the epoch is saved)."""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="pc-darts", choices=methods())
    parser.add_argument("--preset", default="paper", choices=("paper", "quick", "smoke"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, help="default: the preset's (50 for PC-DARTS)")
    parser.add_argument("--images", type=int, default=50_000, help="synthetic training images")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds; 0 = none")
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    over = {"dataset": "cifar10", "device": args.device}
    if args.epochs:
        over["epochs"] = args.epochs
    cfg = preset(args.method, args.preset, **over)
    data = synthetic_dataset(dataset_info("cifar10"), args.images, seed=0)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="search_time_")) / "run"
    t0 = time.perf_counter()
    search = create_search(cfg, out, resume=args.resume, train_data=data)
    build = time.perf_counter() - t0
    device = torch.device(cfg.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.method} preset={args.preset} epochs={cfg.epochs} batch={cfg.batch_size} "
        f"C={cfg.C} layers={cfg.layers} images={args.images} device={name} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        flush=True,
    )
    epochs: list[dict] = []

    def on_epoch(history, record) -> None:  # noqa: ANN001 - SearchHistory's callback signature
        m = record["metrics"]
        if record.get("kind") != "epoch" or "seconds" not in m:
            return  # the record of the starting point (epoch 0) or a step record
        row = {k: m.get(k) for k in ("seconds", "eval_seconds", "images_per_second")}
        row |= {"epoch": record["epoch"], "peak_memory_mb": m.get("peak_memory_mb")}
        epochs.append(row)
        print(
            f"epoch {record['epoch']:3d}/{cfg.epochs}: search {row['seconds']:.1f} s, "
            f"evaluation {row['eval_seconds']:.1f} s, {row['images_per_second']:.0f} img/s, "
            f"peak {row['peak_memory_mb']:.0f} MiB",
            flush=True,
        )
        if args.time_limit and time.perf_counter() - t0 > args.time_limit:
            raise _TimeUp

    stopped = False
    try:
        search.run(progress=False, callbacks=[on_epoch])
    except _TimeUp:
        stopped = True
    wall = time.perf_counter() - t0
    per_epoch = [e["seconds"] + e["eval_seconds"] for e in epochs]
    summary = {
        "method": args.method, "preset": args.preset, "device": name, "epochs": cfg.epochs,
        "epochs_run": len(epochs), "batch_size": cfg.batch_size, "images": args.images,
        "build_seconds": build, "wall_seconds": wall, "stopped_by_time_limit": stopped,
        "mean_epoch_seconds": statistics.mean(per_epoch) if per_epoch else None,
        "mean_search_images_per_second": (
            statistics.mean(e["images_per_second"] for e in epochs) if epochs else None
        ),
        "peak_memory_mb": max((e["peak_memory_mb"] for e in epochs), default=None),
        "out": str(out), "per_epoch": epochs,
    }  # fmt: skip
    if per_epoch:
        remaining = cfg.epochs - search.epoch
        summary["projected_total_seconds"] = wall + remaining * statistics.mean(per_epoch)
    print(
        f"{'stopped by the time limit after' if stopped else 'finished'} {len(epochs)} epochs "
        f"in {wall:.1f} s (build {build:.1f} s); mean epoch {summary['mean_epoch_seconds'] or 0:.1f}"
        f" s; all {cfg.epochs} epochs: {summary.get('projected_total_seconds', wall):.0f} s "
        f"({'projected' if stopped else 'measured'}); peak {summary['peak_memory_mb'] or 0:.0f} MiB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
