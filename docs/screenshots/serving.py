"""The app with the tiny random-weight model on a free port, for the screenshot scripts."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tiny_app() -> Iterator[str]:
    """Its address while it serves (a fresh feature cache each time); stopped afterwards."""
    port = _free_port()
    cache = tempfile.mkdtemp(prefix="zsdemo-shots-")
    server = subprocess.Popen([sys.executable, "app.py", "--model", "tiny-random", "--device", "cpu",
                               "--port", str(port), "--feature-cache", cache], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()


@contextlib.contextmanager
def lesson_tabs(views: dict[str, tuple[tuple[int, int], str]]) -> Iterator[Iterator[tuple[str, Any]]]:
    """For each view (name: ((width, height), query)), a tab on the tiny app with that address,
    after the page's load events, its run started (Classify clicked); each tab closed after use."""
    import sys

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import ARGS, BROWSER

    def tabs(browser: Any, url: str) -> Iterator[tuple[str, Any]]:
        for name, ((w, h), query) in views.items():
            tab = browser.new_page(viewport={"width": w, "height": h})
            tab.goto(url + query)
            tab.wait_for_selector("#run")
            tab.wait_for_timeout(1500)
            tab.click("#run")
            yield name, tab
            tab.close()

    with tiny_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=ARGS)
        try:
            yield tabs(browser, url)
        finally:
            browser.close()
