"""The command as the user typed it, for usage lines (the command line's and the server's)."""

from __future__ import annotations

import sys
from pathlib import Path


def command_name(argv0: str | None = None) -> str:
    """The command as the user typed it, for usage lines: ``zsdemo`` (the installed command),
    ``python -m zsdemo`` or ``python app.py``."""
    path = Path(sys.argv[0] if argv0 is None else argv0)
    if path.name == "__main__.py":
        return f"python -m {path.parent.name}"
    if path.name in ("-c", "-m", ""):
        return "python -m zsdemo"
    return f"python {path.name}" if path.name.endswith(".py") else path.name
