"""Issue 34: safe when a lesson link is shared. Nothing a visitor sends is rendered as markup,
the page's state is the server's, a long address is a page and not a server error, saves never
clobber (test_saved_heads.py), every serve flag is checked at start, one range per argument, and
a heavy request leaves the model to a small one between its batches."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from zsdemo.app import evaluating, links, server, state, tasks
from zsdemo.core.errors import InputError
from zsdemo.engine import models
from zsdemo.run import shots

import page_events
from browser_support import CREATED_JS, Listener, payloads

ROOT = Path(__file__).resolve().parents[1]


# --- 1. one escaping helper: every toast goes through app/toasts.py --------------------------------

def test_no_toast_is_raised_but_through_the_escaping_helper():
    """Gradio draws a toast's message as HTML; app/toasts.py escapes it. A gr.Info, gr.Warning or
    gr.Error anywhere else would show a visitor's text as markup."""
    found = []
    for path in (ROOT / "zsdemo").rglob("*.py"):
        if path.name == "toasts.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bgr\.(Info|Warning|Error)\s*\(", line):      # made (raised or shown) here
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_a_toast_shows_markup_as_text(monkeypatch):
    import gradio as gr

    from zsdemo.app import toasts

    shown = []
    monkeypatch.setattr(gr, "Warning", shown.append)
    toasts.warning("unknown strategy '<img src=//other.host/t>'")
    assert shown == ["unknown strategy '&lt;img src=//other.host/t&gt;'"]
    assert toasts.error("<b>x</b>").message == "&lt;b&gt;x&lt;/b&gt;"
    assert toasts.error("<b>x</b>", shown_in_page=False).message == "<b>x</b>"      # an API client reads text


def test_a_long_word_may_break_a_short_one_never_and_both_are_text():
    from zsdemo.core.markup import LONG_WORD, breakable

    assert breakable("excavator crane") == "excavator crane"            # whole words: never "excavat/or"
    assert breakable("a" * LONG_WORD) == "a" * LONG_WORD
    long = breakable("<img src=x onerror=window.__owned=1>")
    assert "<img" not in long and long.replace("<wbr>", "") == "&lt;img src=x onerror=window.__owned=1&gt;"
    assert "<wbr>" in long


def test_a_refusal_is_a_warning_wherever_it_happens(monkeypatch):
    # "Nothing to download yet" (a page event) and a run's refusal (the status line) were an Error
    # toast in one place and a Warning in the other: one severity per kind of message.
    import gradio as gr

    from zsdemo.app import events
    from zsdemo.core.errors import InputError, ModelLoadError

    shown = []
    monkeypatch.setattr(gr, "Warning", shown.append)
    for error in (InputError("Nothing to download yet: press Classify first."), ModelLoadError("no model")):
        def refused():
            raise error
        with pytest.raises(gr.Error) as caught:
            events.user_errors(refused)()
        assert caught.value.visible is False            # the event ends there, with no second toast
        events.problem(error, "classify")
    assert len(shown) == 4 and shown[0] == shown[1] and shown[2] == shown[3]


# --- 2. the page's state is the server's ---------------------------------------------------------

def forged_state(classes: int) -> dict:
    images = [{"source": "cat.png", "error": None, "strategies": {}, "consistency": None}]
    return {"result": {"classes": [f"c{k}" for k in range(classes)], "images": images}, "paths": ["/etc/passwd"]}


def nested(depth: int) -> dict:
    value: dict = {"example": 0}
    for _ in range(depth):
        value = {"example": value}
    return value


@pytest.mark.parametrize("sent", [forged_state(100_000), forged_state(3), {"example": 99}, {"example": "0"},
                                  {"example": True}, {"example": 0, "result": {}}, nested(500), [1, 2], "abc"])
def test_a_forged_state_sent_to_the_page_is_refused_and_sets_nothing(live_app, sent):
    session = "forged" + str(abs(hash(str(sent)[:200])))[:8]
    refused = page_events.error(page_events.call(live_app, "shown", [sent], session))
    assert refused and "Only this page&#x27;s own examples" not in refused
    assert refused.startswith("Only this page's own examples can be shown this way"), refused
    # Nothing reached the session's state: the occlusion map and the downloads have no run to use.
    drawn = page_events.call(live_app, "ui_occlusion", [None, None, "top-1", 7], session)
    assert "Nothing to look at yet: press Classify first" in str(drawn["output"]["data"][1])
    downloads = page_events.error(page_events.call(live_app, "prepare", [None, None, None], session))
    assert downloads == "Nothing to download yet: press Classify first."


def test_an_example_is_shown_from_the_servers_own_run(live_app):
    session = "example-session"
    shown = page_events.call(live_app, "shown", [{"example": 1}], session)
    assert shown["success"], shown
    assert "Showing an example" in shown["output"]["data"][1]
    downloads = page_events.call(live_app, "prepare", [None, None, None], session)
    assert downloads["success"], downloads           # the run the server computed is the session's now


@pytest.mark.parametrize("grid", ["abc", None, "7", [7], {"x": 1}])
def test_an_occlusion_grid_that_is_no_number_is_said_in_words(live_app, grid):
    refused = page_events.error(page_events.call(live_app, "ui_occlusion", [None, None, "top-1", grid]))
    assert refused == "Argument 4 of this request is not a value its input takes: send a number in its range there."


def test_a_gallery_that_is_no_list_of_files_is_said_in_words(live_app):
    for sent in ("notalist", [{"x": 1}], 5):
        refused = page_events.error(page_events.call(live_app, "check_upload", [sent]))
        assert refused and "does not have the form its input takes" in refused, refused


# --- 3. an address too long is a page, not a server error -----------------------------------------

def _raw_get(url: str, target: str, headers: bool = False, piece: int = 4096) -> tuple:
    """GET ``target`` with its head sent in pieces of ``piece`` bytes, as a real network cuts a long
    address (a head sent whole over loopback is read whole or in pieces by the luck of timing)."""
    import socket
    import time
    from urllib.parse import urlparse

    where = urlparse(url)
    head = f"GET {target} HTTP/1.1\r\nHost: {where.hostname}:{where.port}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((where.hostname, where.port), timeout=30) as connection:
        for start in range(0, len(head), piece):
            connection.sendall(head[start:start + piece])
            time.sleep(0.002)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    top, _, body = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    status = int(lines[0].split()[1])
    return (status, body, fields.get("location")) if headers else (status, body)


@pytest.mark.parametrize("length", [40_000, 70_000, 100_000])
def test_a_long_address_is_sent_to_the_page_that_says_so(live_app, length):
    response = httpx.get(live_app.rstrip("/") + "/?classes=" + "a" * 20_000, timeout=30)   # under the limit
    assert response.status_code == 200
    status, body, location = _raw_get(live_app, "/?classes=" + "a" * length, headers=True)
    assert status == 303 and location == f"?{links.TOO_LONG}=1" and b"too long" in body
    assert httpx.get(live_app.rstrip("/") + "/" + location, timeout=30).status_code == 200
    status, _ = _raw_get(live_app, "/gradio_api/info?x=" + "a" * length)
    assert status in (200, 303)


def test_an_address_past_the_web_servers_own_limit_is_a_bad_request_not_a_server_error(live_app):
    try:                     # uvicorn refuses it before the app: 400, or the connection closed mid-send
        status, _ = _raw_get(live_app, "/?classes=" + "a" * 200_000)
    except ConnectionError:
        status = 400
    assert status == 400 and _raw_get(live_app, "/?lesson=crane")[0] == 200          # and it serves on


def test_a_long_path_is_refused_in_words(live_app):
    status, body = _raw_get(live_app, "/" + "a" * 70_000)
    assert status == 414 and b"This address is too long" in body


def test_the_page_reads_an_over_long_link_as_too_long():
    values, problems = links.from_query([(links.TOO_LONG, "1")])
    assert values == {} and problems[0].startswith("The link is too long")


def test_the_links_the_page_makes_stay_far_under_the_limit():
    longest = max(len(links.lesson_link(lesson, present=True)) for lesson in links.LESSONS)
    assert longest < 100 and links.MAX_QUERY < links.MAX_ADDRESS < 65_536


# --- 5. serve flags checked at start ---------------------------------------------------------------

@pytest.mark.parametrize("argv, expect", [
    (["--port", "-1"], "--port: must be a whole number from 1 to 65535"),
    (["--port", "99999"], "--port: must be a whole number from 1 to 65535"),
    (["--mcp", "--port", "-3"], "--port: must be a whole number from 1 to 65535"),
    (["--port", "http"], "--port: must be a whole number from 1 to 65535"),
    (["--concurrency", "0"], "--concurrency: must be a whole number from 1 to 64"),
    (["--concurrency", "-5"], "--concurrency: must be a whole number from 1 to 64"),
    (["--queue-size", "0"], "--queue-size: must be a whole number from 1 to 10000"),
    (["--queue-size", "-1"], "--queue-size: must be a whole number from 1 to 10000"),
    (["--max-models", "-1"], "--max-models: must be a whole number from 0 to 16"),
    (["--feature-cache", "/etc/passwd"], "is a file, not a folder"),
    (["--feature-cache", "/dev/null"], "is in a system folder"),
    (["--feature-cache", "/proc/self"], "is in a system folder"),
    (["--host", "no-such-host.invalid"], "is not an address or a name this machine can resolve"),
    (["--model", "tiny-random", "--pretrained", "/etc/passwd", "--no-warm-up"], "is not a checkpoint"),
    (["--model", "no-such-architecture", "--no-warm-up"], "Unknown model architecture"),
])
def test_every_serve_flag_is_checked_before_anything_starts(argv, expect, capsys, monkeypatch):
    monkeypatch.setattr(server, "build_app", lambda *a, **k: pytest.fail("the app was built"))
    with pytest.raises(SystemExit) as stopped:
        server.main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and expect in err and "Traceback" not in err, err
    assert err.strip().splitlines()[0].startswith("usage: ") and " serve [-h]" in err   # the usage, then the flag


def test_a_bad_port_in_the_environment_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "abc")
    with pytest.raises(SystemExit):
        server.main([])
    assert "--port: must be a whole number from 1 to 65535 (got 'abc')" in capsys.readouterr().err


def test_a_model_that_cannot_load_is_said_at_start_and_the_page_still_serves(capsys, monkeypatch):
    started = {}
    monkeypatch.setattr(server, "build_app", lambda *a, **k: started.setdefault("page", a) or "page")
    monkeypatch.setattr(server, "launch", lambda page, *a, **k: started.setdefault("launched", a))
    server.main(["--model", "tiny-random", "--pretrained", "/etc/passwd", "--port", "7999"])
    assert "the model cannot be loaded: --pretrained '/etc/passwd' is not a checkpoint" in capsys.readouterr().err
    assert started["launched"][1] == 7999


def test_a_preset_with_a_checkpoint_file_means_its_architecture():
    from zsdemo.engine.weights import resolve_spec

    assert resolve_spec("tiny-random", "/some/file.pt").name == models.PRESETS["tiny-random"].arch


# --- 6. one truth per argument ---------------------------------------------------------------------

def test_top_k_has_one_range_everywhere(live_app):
    from zsdemo.cli import build_parser
    from zsdemo.run.pipeline import prepare_request

    with pytest.raises(InputError, match="top-k must be a whole number from 1 to 20"):
        prepare_request("cat, dog", "name", top_k=21)
    assert prepare_request("cat, dog", "name", top_k=20).top_k == 2            # all the classes given
    from zsdemo.app import api
    described = next(words for p, words in api.request_arguments("classify") if p.name == "top_k")
    assert "(1 to 20)" in described                                     # the API's and MCP's description
    assert "1 to 20" in _classify_help(build_parser())                  # the command line's help
    config = httpx.get(live_app.rstrip("/") + "/config", timeout=30).json()
    slider = next(c["props"] for c in config["components"] if "Top-k" in str(c.get("props", {}).get("label")))
    assert "(1 to 20)" in slider["label"] and slider["maximum"] == 20     # the page


def _classify_help(parser) -> str:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["classify"].format_help()
    return ""


@pytest.mark.parametrize("seeds", [math.nan, math.inf, -math.inf, -1, 1e309, "3", "three", 2.5, True])
def test_seeds_are_checked_without_a_curve_too(seeds, labelled_zip):
    config = state.AppConfig("tiny-random", device="cpu", feature_cache=None).with_uploads(labelled_zip.parent)
    with pytest.raises(InputError, match="Seeds must be a whole number from 1 to 10"):
        evaluating.evaluate_upload(config, str(labelled_zip), ["name"], views="flip", seeds=seeds)


def test_seeds_without_shots_are_refused_unless_they_are_the_default(labelled_zip):
    config = state.AppConfig("tiny-random", device="cpu", feature_cache=None).with_uploads(labelled_zip.parent)
    with pytest.raises(InputError, match="Seeds set the draws of the shots curve: give shots too"):
        evaluating.evaluate_upload(config, str(labelled_zip), ["name"], views="flip", seeds=5)
    report = evaluating.evaluate_upload(config, str(labelled_zip), ["name"], views="flip", seeds=shots.DEFAULT_SEEDS)
    assert report.shots_curve is None


def test_a_raw_seeds_string_is_refused_through_the_api(live_app, labelled_zip):
    from gradio_client import Client, handle_file

    client = Client(live_app, verbose=False)
    with pytest.raises(Exception, match="Seeds must be a whole number from 1 to 10 \\(got '3'\\)"):
        client.predict(handle_file(str(labelled_zip)), "name", seeds="3", api_name="/evaluate")


# --- 7. a heavy request leaves the model to a small one between its batches ----------------------

def test_a_small_request_is_answered_while_a_256_view_tpt_runs(tiny, cat_path):
    config = state.AppConfig("tiny-random", device="cpu", feature_cache=None)
    batches = []
    encode = tiny.model.encode_image

    def counted(images, *args, **kwargs):
        batches.append(len(images))
        return encode(images, *args, **kwargs)
    tiny.model.encode_image = counted
    try:
        heavy_args = dict(paths=[str(cat_path)] * 8, classes="cat, dog, rocket", strategies=["tpt"], tpt_views=256)
        heavy = threading.Thread(target=tasks.classify, args=(config, heavy_args))
        heavy.start()
        while not batches:
            time.sleep(0.005)
        small = tasks.classify(config, dict(paths=[str(cat_path)], classes="cat, dog", strategies=["name"]))
        answered_while_heavy_ran = heavy.is_alive()
        heavy.join(300)
    finally:
        tiny.model.encode_image = encode
    assert small["result"]["images"][0]["strategies"]["name"]["top_k"]
    assert answered_while_heavy_ran
    assert max(batches) <= 64            # the model is held for one batch of views at a time


def test_the_docs_state_what_one_request_may_cost():
    text = (ROOT / "docs" / "limits-and-safety.md").read_text(encoding="utf-8")
    assert "TPT at 256 views" in text


# --- 1. in Chromium: no element from a visitor's text, no request to another host ----------------

@pytest.mark.skipif(not os.path.exists(__import__("browser_support").BROWSER), reason="no Chromium")
def test_nothing_a_visitor_sends_becomes_markup_in_the_page(browser, live_app):
    from browser_support import SHOTS, TIMEOUT_MS

    listener = Listener()
    origin = live_app.rstrip("/")
    strays: list[str] = []
    found: dict[str, list] = {}
    tab = browser.new_page(viewport={"width": 1280, "height": 720})
    tab.set_default_timeout(TIMEOUT_MS)
    tab.on("request", lambda r: strays.append(r.url) if not r.url.startswith((origin, "data:", "blob:")) else None)
    try:
        every = payloads(listener.host)
        toasts = []
        for k in range(0, len(every), 3):          # the page shows the first three problems of a link
            group = every[k:k + 3]
            query = "&".join([f"strategies={quote(group[0])}"] + [f"{quote(p)}=1" for p in group[1:2]]
                             + [f"model={quote(p)}" for p in group[2:]])
            tab.goto(f"{origin}/?{query}")
            tab.wait_for_selector("[data-testid='toast-body']")
            tab.wait_for_timeout(1500)
            toasts += tab.locator("[data-testid='toast-body']").all_inner_texts()
            found[query] = tab.evaluate(CREATED_JS)
            if k == 0:
                tab.screenshot(path=str(SHOTS / "34_link_toast.png"))
        shown = "\n".join(toasts)             # the payloads appear as the characters they are
        assert "unknown strategy '<img src=//" in shown and "setting '<a href=//" in shown, shown[:2000]
        # The classes of a link: through a run, the summary, bars, panels, WordNet and dropdowns.
        tab.goto(f"{origin}/?classes={quote(chr(10).join(['cat'] + every))}&strategies=name,clip80,hierarchy"
                 "&images=cat.png")
        tab.wait_for_function("document.querySelector('#classes textarea')?.value.includes('zsxbold')")
        tab.click("#run")
        tab.wait_for_selector("#summary .zs-file", timeout=TIMEOUT_MS)
        tab.wait_for_timeout(2000)
        tab.screenshot(path=str(SHOTS / "34_hostile_classes.png"), full_page=True)
        found["run"] = tab.evaluate(CREATED_JS)
        assert "<img src=//" in tab.locator("#summary").inner_text() or "zsxbold" in tab.locator("body").inner_text()
        # An address past the limit: the page, and the link's own warning.
        tab.goto(f"{origin}/?classes=" + "a" * 70_000)
        tab.wait_for_selector("[data-testid='toast-body']")
        assert "The link is too long" in tab.locator("[data-testid='toast-body']").first.inner_text()
    finally:
        tab.close()
        listener.close()
    assert {k: v for k, v in found.items() if v} == {}
    assert strays == [] and listener.hits == [], (strays, listener.hits)


def test_visitors_opening_an_example_at_once_get_the_same_run(live_app):
    """The examples' runs are shared server state: several sessions at once, one computation each."""
    from concurrent.futures import ThreadPoolExecutor

    def open_example(k: int) -> str:
        session = f"together-{k}"
        assert page_events.call(live_app, "shown", [{"example": 2}], session)["success"]
        files = page_events.call(live_app, "prepare", [None, None, None], session)["output"]["data"][0]
        path = next(f["path"] for f in files["value"] if f["path"].endswith("result.json"))
        return Path(path).read_text()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(open_example, range(4)))
    assert len(set(answers)) == 1 and '"classes"' in answers[0]
