"""The name-only lesson's screenshots of docs/screenshots/ (issue 40): "What the model found in your
photos" and TIP-X's panel after a run of ``?lesson=sus``, at 1440x900, at 1280x720 in presentation
mode, and at 390x844.

    python docs/screenshots/take_sus.py      # starts the app with the tiny test model

Taken with the tiny random-weight model: which photos it picks means nothing (a random model picks
the same few for every class), the page is what is shown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT))

from serving import lesson_tabs  # noqa: E402

VIEWS = {"sus-laptop": ((1440, 900), "?lesson=sus"), "sus-presentation": ((1280, 720), "?lesson=sus&present=1"),
         "sus-phone": ((390, 844), "?lesson=sus")}


def main() -> None:
    with lesson_tabs(VIEWS) as tabs:
        for name, tab in tabs:
            tab.wait_for_selector(".zs-panel-sus", timeout=180_000)
            tab.wait_for_timeout(800)
            for panel, suffix in ((".zs-panel-sus", ""), (".zs-panel-tipx", "-tipx")):
                tab.evaluate(f"document.querySelector('{panel}').scrollIntoView({{block: 'start'}})")
                tab.wait_for_timeout(300)
                tab.screenshot(path=str(OUT / f"{name}{suffix}.jpg"), type="jpeg", quality=80)
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in OUT.glob("sus-*.jpg"))))

if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
