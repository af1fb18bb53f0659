"""Cream quick search: seconds per epoch with 1 process against N data-parallel processes (gloo).

    python benchmarks/cream_ddp.py                 # 1 vs 2 processes, 3 epochs of the quick preset
    python benchmarks/cream_ddp.py --epochs 2 --max-steps 20 --procs 2 4

Each setting runs the real command (``python -m nasviz search cream ...`` and ``torchrun
--nproc-per-node N -m nasviz search cream ...``, the same global batch) in a fresh temporary run
directory, one CPU thread per process, and reads the seconds of every epoch from its
history.json (training only; the per-epoch evaluation is listed apart). The first epoch is the
warm-up (no board, no teacher); later ones include the teacher's forwards and the meta updates.
The machine's load average is printed with the figures: on a shared machine they mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(procs: int, args: argparse.Namespace, out: Path) -> dict:
    """One search with ``procs`` processes; its per-epoch seconds and wall time."""
    search = ["search", "cream", "--preset", "quick", "--epochs", str(args.epochs),
              "--out", str(out), "--no-progress", "--threads", "1"]  # fmt: skip
    if args.max_steps:
        search += ["--max-steps-per-epoch", str(args.max_steps)]
    if procs == 1:
        cmd = [sys.executable, "-m", "nasviz", *search]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
               "--master-port", str(29600 + procs), "-m", "nasviz", *search]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    records = json.loads((out / "history.json").read_text())["records"]
    epochs = [r["metrics"] for r in records if r["kind"] == "epoch" and r["epoch"] > 0]
    return {
        "procs": procs,
        "seconds": [m["seconds"] for m in epochs],
        "eval_seconds": [m["eval_seconds"] for m in epochs],
        "val_acc": epochs[-1]["val_acc"],
        "wall": wall,
    }


def main() -> None:
    """Print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per epoch")
    p.add_argument("--procs", type=int, nargs="+", default=[2], help="process counts to compare")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(n, args, Path(tmp) / f"p{n}") for n in [1, *args.procs]]
    load = os.getloadavg()
    print(f"Cream quick search, {args.epochs} epochs, load average {load[0]:.2f} {load[1]:.2f}")
    base = sum(results[0]["seconds"][1:] or results[0]["seconds"])
    for r in results:
        post = r["seconds"][1:] or r["seconds"]  # epochs after the warm-up epoch
        per = ", ".join(f"{s:.1f}" for s in r["seconds"])
        print(
            f"{r['procs']} process(es): s/epoch [{per}] (eval {sum(r['eval_seconds']):.1f} s "
            f"in all), after warm-up {sum(post) / len(post):.1f} s/epoch, speed-up "
            f"{base / sum(post):.2f}x, wall {r['wall']:.0f} s, final val_acc {r['val_acc']:.3f}"
        )


if __name__ == "__main__":
    main()
