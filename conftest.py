"""Repo-root pytest settings for running the notebooks with nbval.

`python -m pytest` (with nbval's `--nbval-lax --nbval-current-env`) executes notebooks/*.ipynb in
kernels that inherit this process's environment, so the setting below reaches the notebooks:

* NASVIZ_SMOKE=1 switches notebooks to the library's `smoke` presets (the same code as `quick`,
  cut to a few steps), so CI stays fast. Set NASVIZ_SMOKE yourself to override it.

CPU threads are not set here: the library picks them itself (`nasviz.threads`, one thread for
these small networks), so CI runs the notebooks exactly as a student's JupyterLab does.
"""

import os

os.environ.setdefault("NASVIZ_SMOKE", "1")
