"""The Evaluate tab draws the shots curve and says what a prompt is worth, in a real browser, at a
laptop's, a projector's and a phone's size (screenshots in artifacts/screenshots/)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")

from browser_support import BROWSER, SHOTS, TIMEOUT_MS  # noqa: E402
from test_few_shot import make_support  # noqa: E402
from test_shots_curve import make_eval  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")
SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}


def _zip(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.rglob("*.png")):
            z.write(f, f.relative_to(folder))
    return path


def test_the_evaluate_tab_shows_the_shots_curve(browser, live_app, tmp_path):
    evaluated = _zip(make_eval(tmp_path / "eval"), tmp_path / "eval.zip")
    support = _zip(make_support(tmp_path / "support", 4), tmp_path / "support.zip")
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_app)
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.set_input_files("#eval-zip input[type=file]", str(evaluated))
    page.wait_for_selector("#eval-zip a, #eval-zip .file-name, #eval-zip td")
    page.set_input_files("#eval-support input[type=file]", str(support))
    page.wait_for_selector("#eval-support a, #eval-support .file-name, #eval-support td")
    page.fill("#eval-shots textarea, #eval-shots input", "1,2,4")
    page.fill("#eval-seeds input", "2")
    page.click("#eval-run")
    page.wait_for_function("() => document.querySelector('#eval-shots-text')?.innerText.includes('is worth')")
    text = page.inner_text("#eval-shots-text")
    assert "How many labelled examples is a prompt worth here?" in text
    assert "CLIP-80 ensemble" in text and "of linear probe" in text and "of GDA" in text
    curve = page.locator("#eval-shots-curve img")
    curve.wait_for()
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#eval-shots-text").scroll_into_view_if_needed()
        box, frame = curve.bounding_box(), page.locator("#eval-shots-curve").bounding_box()
        # Drawn at a size a person can read: most of the results column; on a phone wider than
        # the screen, in a frame that scrolls sideways and itself stays on the screen.
        assert box["width"] >= min(0.45 * width, 600) if width > 640 else box["width"] >= 590
        assert frame["x"] >= 0 and frame["x"] + frame["width"] <= width + 1
        if width <= 640:
            assert page.eval_on_selector("#eval-shots-curve", "e => getComputedStyle(e).overflowX") == "auto"
        page.screenshot(path=str(SHOTS / f"shots_curve_{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})
    # Another evaluation without a curve hides it again.
    page.fill("#eval-shots textarea, #eval-shots input", "")
    page.click("#eval-run")
    page.wait_for_function("() => !document.querySelector('#eval-shots-curve img')")
    assert not page.locator("#eval-shots-text").is_visible()
    page.close()
