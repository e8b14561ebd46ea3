"""What the browser tests share: the Chromium they drive, its flags, where screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BROWSER = os.environ.get("ZSDEMO_BROWSER") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 90_000
