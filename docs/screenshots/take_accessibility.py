"""The accessibility screenshots of docs/screenshots/ (issue 37): the page after a run at 1440x900,
1280x720, 390x844 and in presentation mode at 1920x1080, light and dark, and the bars as eyes with
each colour-vision deficiency see them (Chromium's own emulation, over the DevTools protocol).

    python docs/screenshots/take_accessibility.py      # starts the app with the tiny test model

Taken with the tiny random-weight model: the probabilities mean nothing, the page is what is shown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(OUT))

from browser_support import ARGS, BROWSER  # noqa: E402
from serving import tiny_app  # noqa: E402

SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}
DEFICIENCIES = ("protanopia", "deuteranopia", "tritanopia", "achromatopsia")
CLASSES = "tabby cat\nespresso\ncoffee mug\nrocket\nastronaut\nspace shuttle\ncrane\nexcavator\nteapot\nlighthouse"


def _run(tab, classes: str | None = None) -> None:
    if classes:
        tab.fill("#classes textarea", classes)
    tab.click("#run")
    tab.wait_for_selector("#run[disabled]", timeout=10_000)
    tab.wait_for_selector("#run-status .zs-status-done", timeout=120_000)
    tab.wait_for_timeout(600)


def _shoot(tab, name: str, selector: str = "#results") -> None:
    tab.locator(selector).scroll_into_view_if_needed()
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(OUT / f"{name}.jpg"), type="jpeg", quality=80)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tiny_app() as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=BROWSER, args=ARGS)
            for scheme in ("light", "dark"):
                query = "?__theme=dark" if scheme == "dark" else ""
                for size, (w, h) in SIZES.items():
                    tab = browser.new_page(viewport={"width": w, "height": h}, color_scheme=scheme)
                    tab.goto(url + query)
                    tab.wait_for_selector("#run")
                    _run(tab)
                    _shoot(tab, f"a11y-{size}-{scheme}")
                    tab.close()
                tab = browser.new_page(viewport={"width": 1920, "height": 1080}, color_scheme=scheme)
                tab.goto(url + "?lesson=crane&present=1" + ("&__theme=dark" if scheme == "dark" else ""))
                tab.wait_for_selector("#run")
                tab.wait_for_timeout(800)
                _run(tab)
                _shoot(tab, f"a11y-present-full-hd-{scheme}", "#bars")
                tab.close()
            tab = browser.new_page(viewport={"width": 1440, "height": 900})
            tab.goto(url)
            tab.wait_for_selector("#run")
            _run(tab, CLASSES)
            devtools = tab.context.new_cdp_session(tab)
            for deficiency in ("none", *DEFICIENCIES):
                devtools.send("Emulation.setEmulatedVisionDeficiency", {"type": deficiency})
                _shoot(tab, f"a11y-vision-{deficiency}", "#bars")
            tab.close()
            browser.close()
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in OUT.glob("a11y-*.jpg"))))


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
