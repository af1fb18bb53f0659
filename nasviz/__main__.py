"""`python -m nasviz` is the `nasviz` command."""

import sys

from nasviz.cli import main

sys.exit(main())
