"""What the browser tests share: the Chromium they drive, its flags, where screenshots go, and
the ``browser`` fixture (conftest.py offers it to every test module)."""

from __future__ import annotations

import os
import shutil
import threading
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


def open_page(browser, url: str, size: tuple[int, int], query: str = "", dark: bool = False):
    """A tab at ``size`` on ``url + query``, once the page's own script has run."""
    tab = browser.new_page(viewport={"width": size[0], "height": size[1]}, color_scheme="dark" if dark else "light")
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url + query)
    tab.wait_for_selector("#run")
    tab.wait_for_function("window.__zsPage === true")
    return tab


# Issue 34: what a hostile visitor sends, and how a test sees that none of it became markup.

class Listener:
    """A local server standing for "another host": it records every request it gets."""

    def __init__(self):
        import http.server

        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def payloads(host: str) -> list[str]:
    return [f"<img src=//{host}/img-zsx>", f"<a href=//{host}/a-zsx>Log in</a>", "<b>zsxbold</b>",
            f"<script>fetch('//{host}/script-zsx')</script>", f"<iframe src=//{host}/iframe-zsx></iframe>",
            f"<style>@import url(//{host}/style-zsx);</style>",
            f"<a href=\"javascript:fetch('//{host}/js-zsx')\">zsxjs</a>",
            f"<svg onload=\"fetch('//{host}/svg-zsx')\"><image href=//{host}/svgimg-zsx /></svg>",
            f"![x](//{host}/mdimg-zsx)", f"[Log in](//{host}/mdlink-zsx)"]


# An element made from a visitor's text: a dangerous attribute naming the marker ("-zsx": never in
# base64, so the page's own data: pictures cannot match), a script or style holding it, or a bold
# or link whose whole text is the payload's.
CREATED_JS = """() => { const bad = [];
  const risky = new Set(['src', 'href', 'srcset', 'style', 'data', 'action', 'formaction', 'xlink:href', 'poster']);
  for (const el of document.querySelectorAll('img,a,iframe,script,style,svg,image,b,object,embed,link,frame')) {
    for (const a of el.attributes) if ((risky.has(a.name) || a.name.startsWith('on')) && a.value.includes('-zsx'))
      bad.push(el.outerHTML.slice(0, 160));
    if (['SCRIPT', 'STYLE'].includes(el.tagName) && el.textContent.includes('-zsx'))
      bad.push(el.outerHTML.slice(0, 160));
    if (['B', 'A'].includes(el.tagName) && ['zsxbold', 'zsxjs'].includes(el.textContent.trim()))
      bad.push(el.outerHTML.slice(0, 160));
  }
  return bad; }"""
