"""Seconds per search step of the quick presets with 1, 2, ... CPU threads (the thread rule's data).

Each case runs in a fresh process (torch's thread pool is set once per process), timing the same
steps of a quick-preset search on the embedded digits. Prints one row per (method, threads) and the
load average, since a busy machine changes the answer.

    python benchmarks/threads.py --threads 1 2 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASE = r"""
import json, sys, time, torch
from nasviz.search import create_search, preset
method, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = create_search(preset(method, "quick", threads=threads, warmup_epochs=0) if method == "pc-darts"
                  else preset(method, "quick", threads=threads), None)
s.start_epoch(0)
s.run_iteration(0)  # warm-up
t0 = time.perf_counter()
for i in range(steps):
    s.run_iteration(i)
print(json.dumps({"threads": torch.get_num_threads(), "s_per_step": (time.perf_counter() - t0) / steps}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["darts", "pc-darts", "snas"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NASVIZ_THREADS")}
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| method | threads | s/step | img/s (batch 64) |\n|---|---|---|---|")
    for method in args.methods:
        for n in args.threads:
            out = subprocess.run(
                [sys.executable, "-c", CASE, method, str(n), str(args.steps)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {method} | {r['threads']} | {r['s_per_step']:.3f} | {64 / r['s_per_step']:.0f} |"
            )
            time.sleep(1)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
