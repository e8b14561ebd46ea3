"""The embedding map's screenshots of docs/screenshots/ (issue 39): the "What the prompt does" lesson
after a run, its map drawn, at 1440x900, at 1280x720 in presentation mode, and at 390x844; and the
same map with images and texts centred apart.

    python docs/screenshots/take_map.py      # starts the app with the tiny test model

Taken with the tiny random-weight model: where the points fall means nothing, the page is what is
shown (a real CLIP puts the photo far from every text until the modality gap is removed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT))

from serving import lesson_tabs  # noqa: E402

VIEWS = {"map-laptop": ((1440, 900), "?lesson=prompt"), "map-presentation": ((1280, 720), "?lesson=prompt&present=1"),
         "map-phone": ((390, 844), "?lesson=prompt")}


def _drawn(tab) -> None:
    tab.wait_for_selector("#map-plot .main-svg", timeout=180_000)
    tab.wait_for_selector("#map-draw:not([disabled])")
    tab.wait_for_timeout(800)


def main() -> None:
    with lesson_tabs(VIEWS) as tabs:
        for name, tab in tabs:                      # the lesson draws the map after its run
            _drawn(tab)
            tab.evaluate("document.querySelector('#map-draw').scrollIntoView({block: 'start'})")
            tab.wait_for_timeout(300)
            tab.screenshot(path=str(OUT / f"{name}.jpg"), type="jpeg", quality=80)
            if name == "map-laptop":
                tab.check("#map-separate input")
                tab.click("#map-draw")
                tab.wait_for_selector("#map-draw[disabled]", timeout=10_000)
                _drawn(tab)
                tab.locator("#map-plot").screenshot(path=str(OUT / "map-centred-apart.jpg"), type="jpeg", quality=80)
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in OUT.glob("map-*.jpg"))))

if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
