"""Repo-root pytest settings for running the notebooks with nbval.

`python -m pytest` (with nbval's `--nbval-lax`) executes notebooks/*.ipynb in kernels that
inherit this process's environment. Setting NASVIZ_SMOKE=1 here makes the notebooks switch to
the library's `smoke` presets (the same code as `quick`, cut to a few steps), so CI stays fast.
Export NASVIZ_SMOKE yourself to override it; unset it in a shell to run the real presets.
"""

import os

os.environ.setdefault("NASVIZ_SMOKE", "1")
