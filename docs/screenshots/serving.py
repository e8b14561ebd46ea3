"""The app with the tiny random-weight model on a free port, for the screenshot scripts."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

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
