"""The app as a ZeroGPU Space starts it, under the ``spaces`` package's own CUDA emulation.

``SPACES_ZERO_GPU=1`` makes ``spaces`` patch torch as on ZeroGPU: CUDA is faked (tensors moved to
``cuda`` are kept aside and packed at launch), a real CUDA call raises "Low-level CUDA init
reached", and each ``@spaces.GPU`` call asks the device API for a GPU. A stand-in for that API,
served here, answers the start-up report and refuses every booking as an exhausted quota does,
so that what a visitor reads then can be checked too. What this cannot show: the forked GPU
worker itself (it needs a real GPU and ZeroGPU's scheduler).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from gradio_client import Client, handle_file

import page_events

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("spaces")


class DeviceApi(http.server.ThreadingHTTPServer):
    """ZeroGPU's device API as the ``spaces`` client calls it: ``/startup-report`` is accepted,
    ``/schedule`` is answered 429 with no quota left (what a visitor meets when the Space's GPU
    time is spent). Every request is kept."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: DeviceApi

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.server.requests.append((url.path, parse_qs(url.query)))
        body = json.dumps({"left": 0, "wait": 30}).encode() if url.path == "/schedule" else b""
        self.send_response(429 if url.path == "/schedule" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def zerogpu_space(tmp_path_factory):
    """``python app.py`` as a ZeroGPU Space runs it: the model named by ZSDEMO_MODEL, emulation on."""
    api = DeviceApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    folder = tmp_path_factory.mktemp("zerogpu")
    port = _free_port()
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": f"http://127.0.0.1:{api.server_port}",
           "ZSDEMO_MODEL": "tiny-random", "GRADIO_SERVER_PORT": str(port), "ZEROGPU_OFFLOAD_DIR": str(folder / "tensors"),
           "ZSDEMO_FEATURE_CACHE": str(folder / "cache"), "CUDA_VISIBLE_DEVICES": ""}
    log = (folder / "server.log").open("w+")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        assert server.poll() is None, (folder / "server.log").read_text()[-4000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline, (folder / "server.log").read_text()[-4000:]
            time.sleep(0.2)
    yield url, api, folder / "server.log"
    server.terminate()
    server.wait(timeout=30)
    api.shutdown()


def test_the_space_starts_with_its_model_on_cuda(zerogpu_space):
    url, api, log = zerogpu_space
    banner = page_events.call(url, "warm_status", [])
    assert page_events.error(banner) is None, banner
    assert banner["output"]["data"][0] == "", banner      # no "no model could be loaded", no failed step
    text = log.read_text()
    assert "Low-level CUDA init" not in text, text[-4000:]
    assert "ZeroGPU tensors packing" in text              # the model went to (emulated) cuda before launch
    assert "2 of 2 steps done, 0 failed" in text          # the model and WordNet, on the main thread
    assert ("/startup-report", {}) in api.requests


def test_a_request_books_its_own_estimate_and_the_hosts_refusal_is_said(zerogpu_space, cat_path):
    """The booking's duration is computed in the server's worker thread (outside the emulation's
    thread): it must only count. ZeroGPU's refusal reaches the caller in its own words."""
    url, api, log = zerogpu_space
    client = Client(url, verbose=False)
    with pytest.raises(Exception) as refused:
        client.predict([handle_file(str(cat_path))], "cat, dog, crane", "name,clip80", api_name="/classify")
    assert "GPU limit" in str(refused.value) or "quota" in str(refused.value), refused.value
    booked = [query for path, query in api.requests if path == "/schedule"]
    assert booked and 15 <= int(booked[-1]["durationSeconds"][0]) <= 120
    text = log.read_text()
    assert "Low-level CUDA init" not in text and "unexpected error" not in text, text[-4000:]
    # A bad request is refused before anything is booked.
    before = len(api.requests)
    with pytest.raises(Exception, match="class"):
        client.predict([handle_file(str(cat_path))], "", "name", api_name="/classify")
    assert len(api.requests) == before
    # The tools that need no GPU answer outside a task, touching no CUDA either.
    assert "openai-b32" in json.dumps(client.predict(api_name="/options"))
    assert client.predict("crane, heron", api_name="/wordnet")[0]["name"] == "crane"
    assert len(api.requests) == before and "Low-level CUDA init" not in log.read_text()


def test_on_the_page_the_hosts_refusal_is_the_status_line_not_a_generic_error():
    import gradio as gr

    from zsdemo.app import events

    line = events.problem(gr.Error("No GPU was available. <b>Try again</b>"), "classify")
    assert "No GPU was available" in line and "&lt;b&gt;" in line and "Something went wrong" not in line
