"""The page in a real browser (Playwright driving Debian's chromium, headless).

Screenshots go to ``artifacts/screenshots/`` (git-ignored) so that a person can look at them.
Set ZSDEMO_BROWSER to another Chromium executable; without one the tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

playwright = pytest.importorskip("playwright.sync_api")

BROWSER = os.environ.get("ZSDEMO_BROWSER") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 90_000

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")


@pytest.fixture(scope="module")
def page(live_app):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(live_app)
        tab.wait_for_selector("#run")
        yield tab
        browser.close()


def _classify(page, classes: str) -> None:
    page.fill("#classes textarea", classes)
    page.click("#run")


def test_upload_type_run_and_see_every_panel(page, cat_path, tmp_path):
    other = tmp_path / "red square.png"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(other)
    page.get_by_role("button", name="Clear").first.click()
    page.set_input_files("#images input[type=file]", [str(cat_path), str(other)])
    page.wait_for_selector("#images [aria-label='Thumbnail 2 of 2']")
    _classify(page, "cat, crane, heron, stork, red square")
    page.wait_for_selector("#verdict .zs-verdict")
    page.wait_for_selector("#bars img")
    verdict = page.inner_text("#verdict")
    assert "Confident" in verdict or "Uncertain" in verdict
    wordnet = page.inner_text("#wordnet")
    assert "WordNet re-ranking" in wordnet and "parent:" in wordnet
    page.wait_for_selector("#wordnet-tree .zs-tree .zs-class")   # the drawn trees
    summary = page.inner_text("#summary")
    assert "cat.png" in summary and "red square.png" in summary
    page.screenshot(path=str(SHOTS / "1_result.png"), full_page=True)
    # Clicking the second image shows its panels.
    page.click("#images [aria-label='Thumbnail 2 of 2']")
    page.wait_for_function("() => document.body.innerText.includes('red square.png (300×200)')")
    page.screenshot(path=str(SHOTS / "2_second_image.png"), full_page=True)


def test_bad_input_gets_a_message_not_a_traceback_and_the_page_keeps_working(page):
    _classify(page, "  ,  ")
    page.get_by_text("No class names given").first.wait_for()
    page.screenshot(path=str(SHOTS / "3_error.png"), full_page=True)
    assert "Traceback" not in page.content()
    _classify(page, "<b>bold</b>, cat")
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('<b>bold</b>')"
                           " || document.body.innerText.includes('<b>bold</b>')")
    assert page.locator("b", has_text="bold").count() == 0   # shown as text, never as markup


def test_evaluate_tab_uploads_a_zip_and_shows_the_tables(page, cat_path, astronaut_path, tmp_path):
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(2):
            z.write(cat_path, f"set/n02123045/{k}.png")
            z.write(astronaut_path, f"set/astronaut/{k}.png")
    page.get_by_role("tab", name="Evaluate a labelled set").click()
    page.set_input_files("#eval-zip input[type=file]", str(archive))
    page.wait_for_selector("#eval-zip a, #eval-zip .file-name, #eval-zip td")
    page.click("#eval-run")
    page.wait_for_function("() => document.querySelector('#eval-summary').innerText.includes('classes')")
    summary = page.inner_text("#eval-summary")
    assert "4 images" in summary and "2 classes" in summary
    assert "Name only" in page.inner_text("#eval-accuracy")
    page.wait_for_selector("#eval-files a")
    page.screenshot(path=str(SHOTS / "4_evaluate.png"), full_page=True)
    # An unsafe zip: a message, no traceback, and the tab keeps working.
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.png", b"x")
    page.locator("#eval-zip").get_by_role("button", name="Clear").click()
    page.set_input_files("#eval-zip input[type=file]", str(bad))
    page.wait_for_selector("#eval-zip a, #eval-zip .file-name, #eval-zip td")
    page.click("#eval-run")
    page.get_by_text("points outside").first.wait_for()
    assert "Traceback" not in page.content()
    page.get_by_role("tab", name="Classify images").click()


def test_a_cached_example_reopens_its_images(page):
    """An example's result comes back from the browser with its file paths; they pass the
    server's upload check, so the view thumbnails are drawn (a refused path would drop them)."""
    page.get_by_role("tab", name="Classify images").click()
    page.get_by_text("Chelsea the cat vs fine-grained cat breeds").click()
    page.wait_for_function("() => { const s = document.querySelector('#summary').innerText;"
                           " return s.includes('cat.png') && !s.includes('red square.png'); }")
    page.wait_for_function("() => document.body.innerText.includes('flipped left-right')")
    assert page.get_by_text("Tabby cat", exact=False).count() or "tabby cat" in page.inner_text("#wordnet")
    page.screenshot(path=str(SHOTS / "5_example.png"), full_page=True)


def test_typed_classes_survive_the_preset_dropdown_and_the_sense_picker_shows_the_sense_used(page):
    page.get_by_role("tab", name="Classify images").click()
    page.fill("#classes textarea", "crane, heron, stork")
    page.click("#preset input")            # open the preset list ...
    page.mouse.click(5, 5)                 # ... and click elsewhere without choosing
    page.wait_for_timeout(1000)
    assert page.input_value("#classes textarea") == "crane, heron, stork"
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#sense input').value.startsWith('crane.n.05')")
    assert page.input_value("#sense-class input") == "crane"
    # Reset forgets the choices without running anything.
    before = page.inner_text("#summary")
    page.click("#reset-senses")
    page.get_by_text("Sense choices cleared").first.wait_for()
    page.wait_for_timeout(1000)
    assert page.inner_text("#summary") == before
    page.screenshot(path=str(SHOTS / "6_senses.png"), full_page=True)


def test_class_names_that_look_like_links_are_shown_as_text(page):
    page.get_by_role("tab", name="Classify images").click()
    _classify(page, "http://example.com/a_b, me@example.com, cat")
    page.wait_for_function("() => document.querySelector('#wordnet').innerText.includes('example.com/a_b')")
    wordnet = page.inner_text("#wordnet")
    assert "http://example.com/a_b" in wordnet and "me@example.com" in wordnet and "\\" not in wordnet
    assert page.locator("#wordnet a[href*='example']").count() == 0
    assert page.locator("#notes a[href*='example'], #summary a[href*='example']").count() == 0
