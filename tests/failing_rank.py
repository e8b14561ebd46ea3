"""``python -m zsdemo`` whose rank 1 fails in its first batch: run by tests/test_distributed.py under
torchrun to check that a failing rank ends the whole run with its message, not a hang."""

import os
import sys

from zsdemo.run import evaluation
from zsdemo.cli import main

_records = evaluation._records


def _failing(*args, **kwargs):
    if os.environ.get("RANK") == "1":
        raise RuntimeError("rank 1 fails on purpose")
    return _records(*args, **kwargs)


evaluation._records = _failing
sys.exit(main(sys.argv[1:]))
