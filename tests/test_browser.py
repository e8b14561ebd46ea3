"""The page in a real browser (Playwright driving Debian's chromium, headless).

Screenshots go to ``artifacts/screenshots/`` (git-ignored) so that a person can look at them.
Set ZSDEMO_BROWSER to another Chromium executable; without one the tests are skipped.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

from browser_support import BROWSER, SHOTS, TIMEOUT_MS  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")


# The sizes a person sees the page at: a laptop, a projector, a phone.
VIEWPORTS = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}


def _open(browser, url: str, width: int, height: int):
    tab = browser.new_page(viewport={"width": width, "height": height})
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url)
    tab.wait_for_selector("#run")
    return tab


@pytest.fixture(scope="module")
def page(browser, live_app):
    tab = _open(browser, live_app, 1400, 1000)
    yield tab
    tab.close()


@pytest.fixture(scope="module", params=list(VIEWPORTS))
def sized(request, browser, live_app):
    """The page at one of VIEWPORTS, with one finished run of the default photos and classes."""
    name = request.param
    tab = _open(browser, live_app, *VIEWPORTS[name])
    tab.click("#run")
    tab.wait_for_selector("#run-status .zs-status-done")
    tab.name = name
    yield tab
    tab.close()


def _classify(page, classes: str) -> None:
    """Start a run; a later wait for "done" then waits for this run, not the previous one's line
    (the click dims the results until the new ones are drawn)."""
    page.fill("#classes textarea", classes)
    page.click("#run")
    page.wait_for_function("document.getElementById('results').classList.contains('zs-stale')"
                           " || document.querySelector('#run[disabled]')", timeout=10_000)
    page.wait_for_function("!document.getElementById('results').classList.contains('zs-stale')"
                           " && !document.querySelector('#run[disabled]')")


def test_upload_type_run_and_see_every_panel(page, cat_path, tmp_path):
    other = tmp_path / "red square.png"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(other)
    page.get_by_role("button", name="Clear").first.click()
    page.set_input_files("#images input[type=file]", [str(cat_path), str(other)])
    page.wait_for_selector("#images [aria-label='Thumbnail 2 of 2']")
    _classify(page, "cat, crane, heron, stork, red square")
    page.wait_for_selector("#verdict .zs-verdict")
    page.wait_for_selector("#bars .zs-card")
    verdict = page.inner_text("#verdict")
    assert "Confident" in verdict or "Uncertain" in verdict
    wordnet = page.inner_text("#wordnet")
    assert "WordNet re-ranking" in wordnet and "parent:" in wordnet
    page.wait_for_selector("#wordnet-panels .zs-tree .zs-class")   # the drawn trees
    summary = page.inner_text("#summary")
    assert "cat.png" in summary and "red square.png" in summary
    page.screenshot(path=str(SHOTS / "1_result.png"), full_page=True)
    # Clicking the second image shows its panels.
    page.click("#images [aria-label='Thumbnail 2 of 2']")
    page.wait_for_function("() => document.body.innerText.includes('red square.png (300×200)')")
    page.screenshot(path=str(SHOTS / "2_second_image.png"), full_page=True)


def test_the_wordnet_panel_shows_what_the_sparse_hierarchy_pruned(page):
    _classify(page, "coral, cat, stork, heron, rocket")
    page.wait_for_selector("#run-status .zs-status-done")
    # The run's state change draws the panels after the buttons come back: wait until the tree of
    # this run is drawn and has stopped changing.
    page.wait_for_function("document.querySelector('#wordnet-panels')?.innerText.includes('coral')")
    page.wait_for_selector("#wordnet-panels .zs-pruned")
    page.wait_for_timeout(500)
    pruned = page.locator("#wordnet-panels .zs-pruned").first
    pruned.scroll_into_view_if_needed()
    assert pruned.is_visible()
    text = pruned.inner_text()
    assert "<" in text and pruned.locator("s").count() == 1       # struck out, with its score < threshold
    assert "Sparse WordNet" in page.inner_text("#wordnet") and "pruned:" in page.inner_text("#wordnet")


def test_bad_input_gets_a_message_not_a_traceback_and_the_page_keeps_working(page):
    _classify(page, "  ,  ")
    page.get_by_text("No class names given").first.wait_for()
    page.screenshot(path=str(SHOTS / "3_error.png"), full_page=True)
    assert "Traceback" not in page.content()
    _classify(page, "<b>bold</b>, cat")
    page.wait_for_function("() => document.querySelector('#summary').innerText.includes('<b>bold</b>')"
                           " || document.body.innerText.includes('<b>bold</b>')")
    # Shown as text, never as markup: no element is the name's own <b> (the page's bold labels
    # hold the name as the text "<b>bold</b>").
    assert page.eval_on_selector_all("b", "els => els.filter(e => e.innerText.trim() === 'bold').length") == 0
    assert "<b>bold</b>" in page.inner_text("#summary")


def test_evaluate_tab_uploads_a_zip_and_shows_the_tables(page, cat_path, astronaut_path, tmp_path):
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(2):
            z.write(cat_path, f"set/n02123045/{k}.png")
            z.write(astronaut_path, f"set/astronaut/{k}.png")
    page.get_by_role("tab", name="Evaluate", exact=True).click()
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
    # One message where the summary goes, no red "Error" badge on every table.
    page.wait_for_selector("#eval-run:not([disabled])")
    assert page.locator("#eval-summary .zs-status-error").count() == 1
    assert page.get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=str(SHOTS / "4_evaluate_bad_zip.png"), full_page=True)
    page.get_by_role("tab", name="Classify", exact=True).click()


def test_a_cached_example_reopens_its_images(page):
    """An example's result comes back from the browser with its file paths; they pass the
    server's upload check, so the view thumbnails are drawn (a refused path would drop them)."""
    page.get_by_role("tab", name="Classify", exact=True).click()
    page.get_by_text("Chelsea the cat vs fine-grained cat breeds").click()
    page.wait_for_function("() => { const s = document.querySelector('#summary').innerText;"
                           " return s.includes('cat.png') && !s.includes('red square.png'); }")
    page.wait_for_function("() => document.body.innerText.includes('flipped left-right')")
    assert page.get_by_text("Tabby cat", exact=False).count() or "tabby cat" in page.inner_text("#wordnet")
    page.screenshot(path=str(SHOTS / "5_example.png"), full_page=True)


def test_typed_classes_survive_the_preset_dropdown_and_the_sense_picker_shows_the_sense_used(page):
    page.get_by_role("tab", name="Classify", exact=True).click()
    page.fill("#classes textarea", "crane, heron, stork")
    page.locator("#preset input").first.focus()     # pass through the presets without choosing one
    page.keyboard.press("Tab")
    page.wait_for_timeout(1000)
    assert page.input_value("#classes textarea") == "crane, heron, stork"
    page.click("#run")
    page.wait_for_function("() => document.querySelector('#sense input:checked')?.value === 'crane.n.05'")
    assert page.eval_on_selector("#sense-class input:checked", "e => e.value") == "crane"
    # Reset forgets the choices without running anything.
    before = page.inner_text("#summary")
    page.click("#reset-senses")
    page.get_by_text("Sense choices cleared").first.wait_for()
    page.wait_for_timeout(1000)
    assert page.inner_text("#summary") == before
    page.screenshot(path=str(SHOTS / "6_senses.png"), full_page=True)


def test_class_names_that_look_like_links_are_shown_as_text(page):
    page.get_by_role("tab", name="Classify", exact=True).click()
    _classify(page, "http://example.com/a_b, me@example.com, cat")
    page.wait_for_function("() => document.querySelector('#wordnet').innerText.includes('example.com/a_b')")
    wordnet = page.inner_text("#wordnet")
    assert "http://example.com/a_b" in wordnet and "me@example.com" in wordnet and "\\" not in wordnet
    assert page.locator("#wordnet a[href*='example']").count() == 0
    assert page.locator("#notes a[href*='example'], #summary a[href*='example']").count() == 0


# Each point of a page a class can follow, at the three sizes.

WORDS_SPLIT_JS = """(selector) => {
  // Words of the element's text that a line break cuts in two (drawn on more than one line).
  const split = [];
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


def _in_view(tab, selector: str) -> bool:
    box = tab.locator(selector).first.bounding_box()
    width, height = VIEWPORTS[tab.name]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1 \
        and box["y"] < height and box["y"] + box["height"] > 0


def test_the_verdict_is_in_view_after_a_run_and_nothing_scrolls_sideways(sized):
    # The click scrolled the results into view: the status line and the first verdict are on screen.
    assert _in_view(sized, "#run-status .zs-status-done")
    assert _in_view(sized, "#summary .zs-row .zs-badge")
    assert sized.evaluate("document.scrollingElement.scrollWidth") <= VIEWPORTS[sized.name][0]
    assert sized.evaluate(WORDS_SPLIT_JS, "#summary .zs-summary") == []
    sized.screenshot(path=str(SHOTS / f"{sized.name}_1_after_run.png"))


def test_the_image_inspected_is_marked_and_a_row_selects_it(sized):
    assert sized.get_attribute("#summary .zs-selected", "data-index") == "0"
    sized.click("#summary [data-index='2']")
    sized.wait_for_function("document.querySelector('#summary .zs-selected')?.dataset.index === '2'")
    second = sized.inner_text("#summary [data-index='2'] .zs-file").replace("▶", "")
    sized.wait_for_function(f"document.querySelector('#image-title').innerText.includes({second.strip()!r})")
    sized.click("#summary [data-index='0']")
    sized.wait_for_function("document.querySelector('#summary .zs-selected')?.dataset.index === '0'")


def test_examples_are_above_the_inputs(sized):
    examples = sized.get_by_text("Examples: click one").first.bounding_box()
    gallery = sized.locator("#images").bounding_box()
    assert examples["y"] < gallery["y"]


def test_bar_labels_are_legible_and_the_top1_is_highlighted(sized):
    sizes = sized.eval_on_selector_all("#bars .zs-bar .zs-label",
                                       "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert sizes and min(sizes) >= 12
    cards = sized.locator("#bars .zs-card")
    assert cards.count() >= 3
    for k in range(cards.count()):
        assert cards.nth(k).locator(".zs-top1").count() == 1
    # The whole card fits the width: no label or percentage is cut at the edge.
    assert all(_in_view_box(b, sized) for b in sized.eval_on_selector_all(
        "#bars .zs-card", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"))


def _in_view_box(box, tab) -> bool:
    return box[0] >= 0 and box[1] <= VIEWPORTS[tab.name][0] + 1


def test_view_captions_are_whole(sized):
    sized.locator("#views figcaption").first.scroll_into_view_if_needed()
    captions = sized.eval_on_selector_all(
        "#views figcaption", "els => els.map(e => [e.innerText, e.scrollWidth <= e.clientWidth + 1, "
                             "e.scrollHeight <= e.clientHeight + 1, parseFloat(getComputedStyle(e).fontSize)])")
    assert len(captions) == 11                      # the original and its 10 views
    for text, fits_width, fits_height, size in captions:
        assert "→" in text and fits_width and fits_height and size >= 12, text
    assert all(("✓" in t or "✗" in t) for t, *_ in captions[1:])
    assert sized.evaluate(WORDS_SPLIT_JS, "#views figcaption") == []
    sized.locator("#views").screenshot(path=str(SHOTS / f"{sized.name}_2_views.png"))


def test_the_dropdown_keeps_the_box_and_the_sense_picker_starts_on_the_sense_used(sized):
    from zsdemo.app import choices

    classes = "crane, heron, stork, bulldozer"
    sized.fill("#classes textarea", classes)
    sized.locator("#preset input").first.focus()   # pass through the presets without choosing one
    sized.keyboard.press("Tab")
    sized.wait_for_timeout(500)
    assert sized.input_value("#classes textarea") == classes
    sized.click("#run")
    sized.wait_for_selector("#run-status .zs-status-done")
    used = {c["name"]: c["chosen"]["synset"] for c in choices.wordnet_senses(classes) if c["chosen"]}
    sized.wait_for_function("document.querySelector('#sense-class input:checked')?.value === 'crane'")
    sized.wait_for_function(f"document.querySelector('#sense input:checked')?.value === {used['crane']!r}")
    sized.screenshot(path=str(SHOTS / f"{sized.name}_3_senses.png"), full_page=True)


def test_a_long_run_shows_progress_at_once_and_stop_ends_it(sized):
    # 1,000 new classes with CLIP-80: about 81,000 prompts, well over 10 s with the tiny model on
    # 2 cores. Names differ per size so that no run finds them in the text cache.
    names = "\n".join(f"{sized.name} class {k}" for k in range(1000))
    sized.fill("#classes textarea", names)
    sized.evaluate("""() => document.querySelectorAll('#strategies label').forEach(l => {
        const box = l.querySelector('input'); const want = ['Name only', 'CLIP-80 ensemble'].includes(l.innerText.trim());
        if (box.checked !== want) box.click(); })""")
    sized.click("#run")
    clicked = time.monotonic()
    sized.wait_for_selector("#run-status .progress-text", timeout=2000)
    assert time.monotonic() - clicked < 2.0
    # The busy state is an event of its own: on a loaded machine it may land just after the
    # progress text, so wait for it rather than race it.
    expect(sized.locator("#run")).to_be_disabled(timeout=5000)
    expect(sized.locator("#stop")).to_be_visible(timeout=5000)
    assert "zs-stale" in sized.get_attribute("#results", "class")     # the previous results, dimmed
    sized.wait_for_function("document.querySelector('#run-status').innerText.includes('encoding prompts')")
    sized.screenshot(path=str(SHOTS / f"{sized.name}_4_progress.png"))
    assert sized.locator("#run-status .zs-status-done").count() == 0   # still running after the checks
    sized.click("#stop")
    sized.wait_for_selector("#run-status .zs-status-stopped", timeout=15_000)
    sized.wait_for_selector("#run:not([disabled])")
    assert "zs-stale" not in sized.get_attribute("#results", "class")
    sized.evaluate("""() => document.querySelectorAll('#strategies label').forEach(l => {
        const box = l.querySelector('input'); const want = ['Name only', 'Single template', 'CLIP-80 ensemble',
        'WordNet re-ranking'].includes(l.innerText.trim()); if (box.checked !== want) box.click(); })""")


def test_a_file_that_is_not_an_image_is_refused_at_upload(browser, live_app, cat_path, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a picture")
    page = _open(browser, live_app, 1440, 900)
    page.locator("#images").get_by_role("button", name="Clear").first.click()
    page.set_input_files("#images input[type=file]", [str(cat_path), str(notes)])
    page.get_by_text("notes.png: not an image").first.wait_for()       # the message names the file
    page.wait_for_selector("#images [aria-label='Thumbnail 1 of 1']")  # and only the image stays
    assert "Traceback" not in page.content()
    page.screenshot(path=str(SHOTS / "7_not_an_image.png"))
    page.close()


def test_two_models_side_by_side_and_the_methods_explain_themselves(sized):
    """One column per model in the summary and the bars (side by side where there is room, stacked
    on a phone), the sigmoid model's note, and the methods' reasons, at each size."""
    sized.fill("#classes textarea", "cat, coffee mug, rocket, astronaut")
    sized.evaluate("""() => document.querySelectorAll('#strategies label').forEach(l => {
        const box = l.querySelector('input');
        const want = ['Name only', 'DCLIP (descriptors)', 'PerceptionCLIP (contextual attributes)']
            .includes(l.innerText.trim());
        if (box.checked !== want) box.click(); })""")
    sized.click("#compare-model input")
    sized.fill("#compare-model input", "tiny-random-sigmoid")
    sized.keyboard.press("Enter")
    sized.wait_for_timeout(300)
    sized.click("#run")
    sized.wait_for_selector("#run-status .zs-status-done, #run-status .zs-status-error")
    assert sized.locator("#run-status .zs-status-error").count() == 0, sized.inner_text("#run-status")
    sized.wait_for_selector("#bars .zs-compare")
    columns = sized.locator("#bars .zs-compare > .zs-model-col")
    assert columns.count() == 2
    # Both boxes are read in one script: two separate reads can straddle a scroll or a late layout
    # change, which once made side-by-side columns look 3 px apart.
    boxes_js = """() => [...document.querySelectorAll('#bars .zs-compare > .zs-model-col')].map(c => {
        const r = c.getBoundingClientRect(); return {x: r.left, y: r.top, width: r.width, height: r.height}; })"""
    if sized.name == "phone":
        first, second = sized.evaluate(boxes_js)
        assert second["y"] >= first["y"] + first["height"] - 1        # stacked
    else:         # side by side (once the columns' images and fonts have settled)
        sized.wait_for_function("""() => { const c = document.querySelectorAll('#bars .zs-compare > .zs-model-col');
            return Math.abs(c[0].getBoundingClientRect().top - c[1].getBoundingClientRect().top) < 2; }""",
                                timeout=5000)
        first, second = sized.evaluate(boxes_js)
        assert abs(second["y"] - first["y"]) < 2 and second["x"] >= first["x"] + first["width"]
    assert "trained with a sigmoid per class" in sized.inner_text("#bars")
    assert sized.locator("#summary .zs-selected .zs-model-name").count() == 2
    assert sized.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[sized.name][0]
    sized.locator("#methods-panels").scroll_into_view_if_needed()
    why = sized.inner_text("#methods-panels")
    assert "DCLIP (descriptors)" in why and "p(z|x)" in why and "quality:" in why
    sized.screenshot(path=str(SHOTS / f"{sized.name}_7_methods.png"))
    sized.click("#compare-model input")
    sized.fill("#compare-model input", "none")
    sized.keyboard.press("Enter")
    sized.wait_for_timeout(300)
    sized.click("#run")                   # "none" is a choice (no second model), not a model's name
    sized.wait_for_function("() => !document.querySelector('#bars .zs-compare')")
    sized.wait_for_selector("#run-status .zs-status-done")


def test_few_shot_examples_are_uploaded_and_the_nearest_are_pictured(sized, tmp_path_factory):
    """A support zip on the page: Tip-Adapter's nearest examples as pictures a person can see,
    CoOp's training loss, at each size."""
    folder = tmp_path_factory.mktemp("support")
    archive = folder / "support.zip"
    photos = Path(__file__).resolve().parents[1] / "assets" / "images"
    with zipfile.ZipFile(archive, "w") as z:
        for cls, name in (("cat", "cat.png"), ("coffee mug", "coffee.png"), ("rocket", "rocket.jpg")):
            image = Image.open(photos / name).convert("RGB")
            for k in range(2):
                path = folder / f"{k}.png"
                image.rotate(90 * (k + 1), expand=True).save(path)
                z.write(path, f"{cls}/{k}.png")
    sized.fill("#classes textarea", "cat, coffee mug, rocket")
    sized.evaluate("""() => document.querySelectorAll('#strategies label').forEach(l => {
        const box = l.querySelector('input');
        const want = ['Name only', 'Tip-Adapter (few-shot cache)', 'CoOp (learned context)'].includes(l.innerText.trim());
        if (box.checked !== want) box.click(); })""")
    sized.click("#few-shot .label-wrap")
    sized.set_input_files("#support input[type=file]", str(archive))
    sized.wait_for_selector("#support a, #support .file-name", timeout=20_000)
    sized.click("#run")
    # The previous run's "done" is still on the page at the click: wait for this run's pictures.
    sized.wait_for_function("() => document.querySelectorAll('#methods-panels .zs-panel-tip img').length === 3"
                            " || document.querySelector('#run-status .zs-status-error')")
    assert sized.locator("#run-status .zs-status-error").count() == 0, sized.inner_text("#run-status")
    pictures = sized.locator("#methods-panels .zs-panel-tip img")
    assert pictures.count() == 3
    sized.locator("#methods-panels .zs-panel-tip").scroll_into_view_if_needed()
    for k in range(3):
        box = pictures.nth(k).bounding_box()
        assert box["width"] >= 60 and box["height"] >= 60                    # seen, not a speck
        assert pictures.nth(k).evaluate("im => im.complete && im.naturalWidth > 0")
    assert "Training loss at 8 of the 50 epochs" in sized.inner_text("#methods-panels")
    assert sized.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[sized.name][0]
    sized.screenshot(path=str(SHOTS / f"{sized.name}_8_few_shot.png"))
    sized.locator("#support button[aria-label='Clear']").first.click()


@pytest.fixture(scope="module")
def weightless_app(tmp_path_factory):
    """A server whose model has no weights anywhere: the hub offline and an empty cache."""
    from huggingface_hub import constants

    import app

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", True)
        mp.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty-hub")))
        page = app.build_app("openai-b32", None, "cpu", None, warm_up=True)
        _, url, _ = app.launch(page, port=None, prevent_thread_lock=True, quiet=True)
        yield url
        page.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_without_weights_the_page_says_so_at_once_and_classify_says_it_again(browser, weightless_app, size):
    width, height = VIEWPORTS[size]
    tab = _open(browser, weightless_app, width, height)
    try:
        banner = tab.locator("#warmup .zs-status-error")
        banner.wait_for(state="visible")
        text = banner.inner_text()
        assert "No model could be loaded on this server" in text and "--model tiny-random" in text
        box = banner.bounding_box()
        assert box and box["y"] + box["height"] <= height and box["x"] >= 0 and box["x"] + box["width"] <= width
        tab.screenshot(path=str(SHOTS / f"no-weights-{size}.png"))
        tab.click("#run")
        status = tab.locator("#run-status .zs-status-error")
        status.wait_for(state="visible")
        assert status.inner_text().count("No model could be loaded on this server") == 1
        assert "already loaded" not in status.inner_text()
        tab.screenshot(path=str(SHOTS / f"no-weights-classify-{size}.png"), full_page=size != "laptop")
    finally:
        tab.close()
