"""What the browser tests share: the Chromium they drive, its flags, where screenshots go, and
the ``browser`` fixture (conftest.py offers it to every test module)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BROWSER = os.environ.get("ZSDEMO_BROWSER") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def browser(live_app):
    """Chromium, headless, for one test module (after the app is up)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=ARGS)
        yield chromium
        chromium.close()
