"""zsdemo as a Hugging Face Space: the front matter, requirements, the Python version, ZeroGPU's
process boundary and GPU booking, preloaded weights, the MCP server, and cold starts under load."""

from __future__ import annotations

import functools
import http.server
import json
import os
import multiprocessing
import pickle
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import gradio as gr
import httpx
import pytest
import yaml
from gradio_client import Client, handle_file

from zsdemo.app import classifying, state as app_state
from zsdemo.engine import weights
from zsdemo.prompts.classnames import parse_classnames
from zsdemo.app import gpu, tasks
from zsdemo.core.errors import InputError
from zsdemo.engine.presets import PRESETS
from zsdemo.core.progress import StopFlag, Stopped

ROOT = Path(__file__).resolve().parents[1]
ZEROGPU_PYTHONS = ("3.10", "3.12")     # the Hub's ZeroGPU documentation: 3.10.13 and 3.12.12


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


# --- front matter, requirements, Python version -------------------------------------------------

def test_front_matter_preloads_and_lists_every_presets_weights():
    meta = front_matter()
    hub = [weights.hub_weights(p) for p in PRESETS]
    expected = [f"{repo} {file}" for repo, file in (h for h in hub if h)]
    assert meta["preload_from_hub"] == expected and len(expected) == 5
    assert set(meta["models"]) == {repo for repo, _ in (h for h in hub if h)}


def test_front_matter_runs_a_zerogpu_python_and_the_pinned_gradio():
    meta = front_matter()
    assert meta["python_version"] in ZEROGPU_PYTHONS and meta["sdk"] == "gradio"
    assert f"gradio[mcp]=={meta['sdk_version']}" in (ROOT / "requirements.txt").read_text()
    assert meta["app_file"] == "app.py" and (ROOT / "app.py").is_file()


def test_runtime_requirements_hold_no_test_tools_and_install_sh_installs_both():
    runtime = (ROOT / "requirements.txt").read_text()
    names = {re.split(r"[=<>\[ ]", line)[0] for line in runtime.splitlines() if line and not line.startswith("#")}
    assert not names & {"pytest", "playwright", "vermin"}
    assert {"torch", "open-clip-torch", "gradio", "spaces", "nltk"} <= names
    assert re.search(r"^spaces==\d", runtime, re.M)                 # pinned
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and "pytest==" in dev and "playwright==" in dev
    assert "-r requirements.txt -r requirements-dev.txt" in (ROOT / "install.sh").read_text()


def test_the_code_needs_nothing_newer_than_the_oldest_python_it_claims():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.10"' in pyproject
    done = subprocess.run(["vermin", "--no-tips", "--violations", "--eval-annotations", "-t=3.10-",
                           str(ROOT / "zsdemo"), str(ROOT / "app.py")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    # ... and nothing that Python 3.12 removed.
    removed = re.compile(r"^\s*(import|from)\s+(distutils|imp|asynchat|asyncore|smtpd)\b", re.M)
    offenders = [p for p in (ROOT / "zsdemo").rglob("*.py") if removed.search(p.read_text(encoding="utf-8"))]
    assert not offenders


def test_preloaded_weights_are_used_offline(monkeypatch, tmp_path):
    """What preload_from_hub leaves in the Hub cache is found without asking the Hub."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo_id, filename = weights.hub_weights("openai-b32")
    repo = tmp_path / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / filename).write_bytes(b"weights")
    arch, pretrained, overrides = weights.open_clip_arguments(weights.resolve_spec("openai-b32"))
    assert arch == "ViT-B-32-quickgelu" and pretrained == str(repo / "snapshots" / "abc123" / filename)
    assert overrides["image_mean"]


# --- ZeroGPU --------------------------------------------------------------------------------------

CONFIG = app_state.AppConfig("tiny-random", None, "cpu", None)


def args_for(paths, classes="cat, dog, crane", strategies="name,clip80,hierarchy", **options) -> dict:
    return dict(paths=[str(p) for p in paths], classes=classes, strategies=strategies, **options)


def test_off_zerogpu_spaces_changes_nothing_and_errors_keep_their_message(cat_path):
    import spaces

    assert gpu.spaces is spaces and not gpu.on_zerogpu()      # installed, and not on ZeroGPU hardware
    assert spaces.GPU(len) is len and spaces.GPU(duration=5)(len) is len
    for task in (tasks.classify, tasks.evaluate_page, tasks.evaluate_api):
        assert not hasattr(task, "zerogpu") and task.__wrapped__.__module__ == "zsdemo.app.tasks"
    # What a task raises comes back as data (spaces would reduce it to "ZeroGPU worker error"),
    # pickles whole, and is raised again on this side with both its hints.
    error = InputError("No class names given.", cli=" Use --classes.", page=" Type some.")
    back = _round_trip(gpu.Outcome(error=error))
    with pytest.raises(InputError) as raised:
        back.get()
    assert raised.value.for_cli() == error.for_cli() and raised.value.for_page() == error.for_page()
    with pytest.raises(InputError, match="No class names"):
        tasks.classify(CONFIG.with_uploads(cat_path.parent), args_for([cat_path], classes=""))
    stopped = _round_trip(gpu.Outcome(error=Stopped("Stopped: nothing was produced.")))
    with pytest.raises(Stopped):
        stopped.get()


def test_the_booking_follows_the_requests_own_estimate(cat_path):
    config = CONFIG.with_uploads(cat_path.parent)
    small = tasks._run_seconds(config, args_for([cat_path], strategies="name"))
    large = tasks._run_seconds(config, args_for([cat_path] * 8, classes=", ".join(f"class {k}" for k in range(400)),
                                                strategies="name,clip80", consistency=True))
    huge = tasks._run_seconds(config, args_for([cat_path] * 64, classes=", ".join(f"k{k}" for k in range(1000)),
                                               strategies="clip80,tpt", tpt_steps=20))
    assert small < 1 < large < huge
    assert gpu.booked_seconds(small) == gpu.MIN_S
    assert gpu.MIN_S < gpu.booked_seconds(large) < gpu.MAX_S
    assert gpu.booked_seconds(huge) == gpu.MAX_S == gpu.booked_seconds(float("nan"))
    # Bad input is refused before anything is booked, with the page's own message.
    with pytest.raises(InputError, match="No class names"):
        tasks._run_seconds(config, args_for([cat_path], classes=""))


def _round_trip(value):
    return pickle.loads(pickle.dumps(value))


def test_the_tasks_arguments_and_results_cross_a_process_boundary(cat_path, labelled_zip, tmp_path):
    """What spaces pickles into the GPU worker and back: the arguments, as they arrive there, give
    the same result, and the result pickles back unchanged."""
    config = CONFIG.with_uploads(cat_path.parent, tmp_path)
    args = args_for([cat_path], senses="crane=crane.n.04", consistency=True)
    stop, progress = StopFlag(), gpu.PageProgress(gr.Progress())
    sent = _round_trip((config, args, stop, progress))
    assert sent[0] == config and sent[1] == args and sent[2].path == stop.path
    state = tasks.classify(*sent[:3])
    assert _round_trip(state) == state == tasks.classify(config, args)
    api = tasks.classify(config, args, answer="api")
    assert _round_trip(api) == api and api == app_state.Run.from_state(state).to_dict()
    archive = tmp_path / "set.zip"
    shutil.copy(labelled_zip, archive)
    options = dict(views="flip", model="", wordnet_keep=1.0)
    panels, files = tasks.evaluate_page(*_round_trip((config, str(archive), "name", options)))
    back = _round_trip((panels, files))
    assert back[1] == files and back[0].summary == panels.summary and back[0].accuracy == panels.accuracy
    report = tasks.evaluate_api(config, str(archive), "name", options)
    assert _round_trip(report) == report


def _classify_in_child(config, args, stop, out):
    try:
        tasks.classify(config, args, stop)
        out.put("finished")
    except Stopped:
        out.put("stopped")
    except Exception as e:
        out.put(repr(e))


def test_stop_reaches_a_run_in_a_forked_worker(cat_path):
    """ZeroGPU runs the task in a forked process; the page's Stop (a file) still reaches it."""
    config = CONFIG.with_uploads(cat_path.parent)
    args = args_for([cat_path], classes=", ".join(f"stop class {k}" for k in range(1200)), strategies="clip80")
    stop, context = StopFlag(), multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_classify_in_child, args=(config, args, _round_trip(stop), out))
    child.start()
    time.sleep(3)
    stop.set()
    try:
        assert out.get(timeout=120) == "stopped"
    finally:
        child.join(30)
        stop.discard()
    assert not stop.is_set()


def test_with_spaces_installed_the_api_answers_as_the_backend_does(client, cat_path):
    answer = client.predict([handle_file(str(cat_path))], "cat, crane, heron", "name,clip80,hierarchy",
                            consistency=True, api_name="/classify")
    direct = classifying.run(CONFIG.with_uploads(cat_path.parent), [str(cat_path)], "cat, crane, heron",
                      "name,clip80,hierarchy", consistency=True).to_dict()
    direct = json.loads(json.dumps(direct))              # as the wire carries it (tuples become lists)
    for got, want in zip(answer["images"][0]["strategies"].values(), direct["images"][0]["strategies"].values()):
        assert got["top_k"][0]["class_name"] == want["top_k"][0]["class_name"]
        assert got["probs"] == pytest.approx(want["probs"], abs=1e-6)
    assert answer["senses"] == direct["senses"]


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


# --- MCP --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mcp_app(tmp_path_factory):
    import app

    page = app.build_app("tiny-random", None, "cpu", str(tmp_path_factory.mktemp("mcp-features")))
    _, url, _ = app.launch(page, port=None, prevent_thread_lock=True, quiet=True, mcp=True)
    yield url
    page.close()


def _call(url: str, name: str, arguments: dict, ident: int = 1) -> dict:
    response = httpx.post(url + "gradio_api/mcp/", timeout=120,
                          headers={"Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": ident, "method": "tools/call",
                                "params": {"name": name, "arguments": arguments}})
    assert response.status_code == 200, response.text[:500]
    data = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    message = json.loads(data[-1])
    assert message["id"] == ident
    return message["result"]


def test_mcp_schema_lists_each_public_endpoint_with_every_argument_described(mcp_app):
    tools = {t["name"]: t for t in httpx.get(mcp_app + "gradio_api/mcp/schema", timeout=60).json()}
    assert set(tools) == {"classify", "evaluate", "embedding_map", "wordnet", "options"}
    for tool in tools.values():
        assert tool["description"]
        for name, prop in tool["inputSchema"]["properties"].items():
            assert prop.get("description"), (tool["name"], name)
    for tool in ("classify", "embedding_map"):
        assert "an http(s) URL" in json.dumps(tools[tool]["inputSchema"]["properties"]["images"])


@pytest.fixture
def photo_server():
    """A loopback web server for the example photos."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT / "assets/images"))
    handler.log_message = lambda *a: None
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mcp_tool_calls_over_json_rpc(mcp_app, photo_server, monkeypatch):
    result = _call(mcp_app, "wordnet", {"classes": "crane, heron, stork"})
    assert not result.get("isError") and "crane.n.05" in result["content"][0]["text"]
    # A file as a URL goes through Gradio's SSRF check: a loopback host is refused ...
    refused = _call(mcp_app, "classify", {"images": [f"{photo_server}/cat.png"], "classes": "cat, dog"}, 2)
    assert refused["isError"] and "could not be downloaded" in refused["content"][0]["text"]
    # ... a path on the server is never opened ...
    for path in ("/etc/passwd", str(ROOT / "README.md"), "file:///etc/passwd"):
        refused = _call(mcp_app, "classify", {"images": [path], "classes": "cat, dog"}, 3)
        assert refused["isError"] and "was not uploaded with this request" in refused["content"][0]["text"]
    # ... and a host that passes the check (loopback, allowed here as Gradio allows its own hosts)
    # is downloaded into the upload folder and classified like an upload.
    from gradio import processing_utils

    monkeypatch.setattr(processing_utils, "PUBLIC_HOSTNAME_WHITELIST", ["127.0.0.1"])
    result = _call(mcp_app, "classify", {"images": [f"{photo_server}/cat.png"], "classes": "cat, dog",
                                         "strategies": "name"}, 4)
    assert not result.get("isError"), result
    assert json.loads(result["content"][0]["text"])["images"][0]["source"] == "cat.png"


# --- cold starts and load -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLASSES = "crane, heron, stork, excavator, cat, dog"


def _hierarchy_answers(url: str, photo: str, n: int) -> list:
    client = Client(url, verbose=False)
    jobs = [client.submit([handle_file(photo)], CLASSES, "name,hierarchy",
                          api_name="/classify") for _ in range(n)]
    return [job.result(timeout=180) for job in jobs]


def test_a_cold_server_answers_concurrent_hierarchy_requests_sent_the_moment_it_answers(tmp_path):
    photo = str(ROOT / "assets/images/cat.png")
    senses = None
    for start in range(3):
        port = _free_port()
        server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", "tiny-random", "--device", "cpu",
                                   "--port", str(port), "--feature-cache", str(tmp_path / f"cache{start}")],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:            # the warm-up (WordNet among its steps) starts with the server
                assert server.poll() is None, server.stderr.read()[-3000:]
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            answers = _hierarchy_answers(f"http://127.0.0.1:{port}/", photo, 4)
        finally:
            server.terminate()
            _, log = server.communicate(timeout=30)
        assert "Traceback" not in log and "WordNetError" not in log, log[-3000:]
        got = [a["senses"] for a in answers]
        assert all(g == got[0] for g in got)
        senses = senses or got[0]
        assert got[0] == senses                                  # every start reads the same senses
    assert {s["name"]: s["chosen"]["synset"] for s in senses}["crane"] == "crane.n.05"
    # ... and what one thread reads here: every noun sense of each name, and the one chosen.
    from zsdemo.wordnet import senses as wordnet

    alone = [c.to_dict() for c in wordnet.class_senses(parse_classnames(CLASSES).names)]
    for got, want in zip(senses, json.loads(json.dumps(alone)), strict=True):
        assert (got["name"], got["senses"], got["chosen"]) == (want["name"], want["senses"], want["chosen"])


def test_a_load_run_with_hierarchy_requests_mixed_in(live_app, cat_path):
    """Four visitors at once, each sending page-like requests, WordNet look-ups and hierarchy runs."""
    client = Client(live_app, verbose=False)
    expected = client.predict("crane, heron, excavator", api_name="/wordnet")
    errors: list[str] = []

    def visitor(k: int) -> None:
        try:
            for round_ in range(3):
                if (k + round_) % 3 == 0:
                    assert client.predict("crane, heron, excavator", api_name="/wordnet") == expected
                else:
                    strategies = "name,hierarchy" if (k + round_) % 3 == 1 else "name,clip80"
                    out = client.predict([handle_file(str(cat_path))], f"crane, heron, excavator, cat {k}",
                                         strategies, api_name="/classify")
                    assert out["images"][0]["error"] is None
        except Exception as e:      # collected: a thread's failure must fail the test
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=visitor, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors


def test_the_examples_cache_goes_under_zsdemos_cache_folder_not_the_current_one(tmp_path):
    """Gradio would write .gradio/cached_examples wherever the server was started."""
    code = """import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
import page_events
from zsdemo.app import build_app, launch
page = build_app("tiny-random", None, "cpu", None)
_, url, _ = launch(page, port=None, prevent_thread_lock=True, quiet=True)
assert page_events.call(url, "load_example", [0])["output"]["data"] == [{"example": 0}]
page.close()"""
    here, home = tmp_path / "standing here", tmp_path / "home"
    here.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("GRADIO_EXAMPLES_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=here, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(here.iterdir()) == []
    assert list((home / ".cache" / "zsdemo" / "examples").glob("*/log.csv"))
