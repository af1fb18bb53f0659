"""benchmarks/grouped_matmul.py runs and prints one line per shape, both variants timed."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prints_both_variants_per_shape() -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "grouped_matmul.py"), "--batch", "2",
           "--repeats", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines()[1:] if "|" in line]
    assert len(rows) == 8
    for row in rows:
        times = [float(t) for part in row.split("|")[1:] for t in part.split("<-")[0].split("/")]
        assert len(times) == 4 and all(t > 0 for t in times)
    assert sum("folded by default" in row for row in rows) == 5  # the maps of <= 16 pixels
