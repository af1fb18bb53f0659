"""Repo-root pytest settings for running the notebooks with nbval.

`python -m pytest` (with nbval's `--nbval-lax --nbval-current-env`) executes notebooks/*.ipynb in
kernels that inherit this process's environment, so both settings below reach the notebooks:

* NASVIZ_SMOKE=1 switches notebooks to the library's `smoke` presets (the same code as `quick`,
  cut to a few steps), so CI stays fast. Set NASVIZ_SMOKE yourself to override it.
* OMP_NUM_THREADS=1: the smoke networks are tiny, and on a 2-core CI box shared with the pytest
  process, PyTorch's intra-op threads mostly wait on each other (tests/conftest.py uses one
  thread for the same reason). Measured on a busy 2-core machine: 01_darts took 13 min with the
  default threads.
"""

import os

os.environ.setdefault("NASVIZ_SMOKE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
