"""`python -m pcflow.cli` (and `torchrun ... -m pcflow.cli`): the `pcflow` command."""

import sys

from .main import run

sys.exit(run())
