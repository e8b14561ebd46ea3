"""Issue 28: a lesson at the projector. Actions in reach at every size, presentation mode (every
text of the lesson at least 20 px at 1280x720), and a sense re-run that keeps the reader where
they were. Screenshots go to artifacts/screenshots (the ones the docs show are in docs/screenshots)."""

from __future__ import annotations

import os

import pytest

playwright = pytest.importorskip("playwright.sync_api")

from browser_support import BROWSER, SHOTS, TIMEOUT_MS  # noqa: E402
SIZES = {"laptop": (1440, 900), "projector": (1280, 720), "phone": (390, 844)}
PRESENT_SIZES = {"projector": (1280, 720), "full-hd": (1920, 1080)}
# Every text a lesson reads from the back of the room (issue 28 measured 10-14 px at 1280x720).
LESSON_TEXT = ["#summary .zs-file", "#summary .zs-badge", "#summary .zs-chip", "#bars .zs-label", "#bars .zs-pct",
               "#bars .zs-card-title", "#verdict .zs-verdict", "#views figcaption", "#wordnet-panels .zs-node",
               "#wordnet-panels .zs-pruned small", "#wordnet-panels li", "#classes label span", "#run-status .zs-status",
               "#strategies label span", "#model-note .zs-random"]

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")


def _open(browser, url: str, size: tuple[int, int]):
    tab = browser.new_page(viewport={"width": size[0], "height": size[1]})
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url)
    tab.wait_for_selector("#run")
    tab.size = size
    return tab


def _inside(tab, selector: str) -> bool:
    """Wholly inside the window, and not under the action bar unless it is part of it."""
    box = tab.locator(selector).first.bounding_box()
    width, height = tab.size
    bar = tab.locator("#action-bar").bounding_box()
    bottom = height if selector.startswith("#action-bar") or tab.locator(f"#action-bar {selector}").count() \
        else min(height, bar["y"])
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1 \
        and box["y"] >= 0 and box["y"] + box["height"] <= bottom + 1


def _tick(tab, labels: list[str]) -> None:
    tab.evaluate("""(want) => document.querySelectorAll('#strategies label').forEach(l => {
        const box = l.querySelector('input'); if (box.checked !== want.includes(l.innerText.trim())) box.click(); })""",
                 labels)


@pytest.mark.parametrize("size", list(SIZES))
def test_classify_stop_and_the_status_stay_in_reach(browser, live_app, size):
    tab = _open(browser, live_app, SIZES[size])
    try:
        assert _inside(tab, "#run") and _inside(tab, "#run-status")          # before a run, unscrolled
        tab.screenshot(path=str(SHOTS / f"28_1_{size}_start.png"))
        # 1,000 new classes with CLIP-80: a run of many seconds, long enough to look at it.
        tab.fill("#classes textarea", "\n".join(f"{size} reach {k}" for k in range(1000)))
        _tick(tab, ["Name only", "CLIP-80 ensemble"])
        tab.click("#run")
        tab.wait_for_function("document.querySelector('#run-status').innerText.includes('encoding prompts')")
        tab.wait_for_timeout(700)                   # the smooth scroll to the results has ended
        assert _inside(tab, "#stop") and _inside(tab, "#run-status")        # during it, after the jump
        assert "Stop" in tab.inner_text("#run-status") or tab.is_visible("#stop")
        tab.screenshot(path=str(SHOTS / f"28_1_{size}_running.png"))
        tab.click("#stop")
        tab.wait_for_selector("#run-status .zs-status-stopped", timeout=20_000)
        assert _inside(tab, "#run") and _inside(tab, "#run-status")
    finally:
        tab.close()


def test_a_sense_rerun_keeps_the_reader_beside_the_wordnet_panel(browser, live_app):
    tab = _open(browser, live_app, SIZES["projector"])
    try:
        tab.fill("#classes textarea", "crane, heron, stork, excavator")
        _tick(tab, ["Name only", "WordNet re-ranking"])
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done")
        tab.locator("#sense").scroll_into_view_if_needed()
        tab.wait_for_timeout(600)                       # the smooth scroll of the run has ended
        before = tab.evaluate("window.scrollY")
        tab.locator("#sense input[value='crane.n.04']").check()
        # The status still says the first run's "Classified ..." until the re-run starts: note any
        # change to it, then wait for the re-run's own end (racing it failed on a loaded machine).
        tab.evaluate("""() => { window.zsStatusChanged = false; new MutationObserver(() => {
            window.zsStatusChanged = true; }).observe(document.querySelector('#run-status'),
            {childList: true, subtree: true, characterData: true}); }""")
        tab.click("#apply-sense")
        tab.wait_for_function("window.zsStatusChanged")
        tab.wait_for_function("document.querySelector('#run-status').innerText.includes('Classified')"
                              " && !document.querySelector('#run[disabled]')")
        # The panels are drawn from the new result after the status says so: wait for the sense.
        tab.wait_for_function("document.querySelector('#wordnet-panels').innerText.includes('crane.n.04')")
        tab.wait_for_timeout(600)
        assert abs(tab.evaluate("window.scrollY") - before) < 30
    finally:
        tab.close()


@pytest.mark.parametrize("size", list(PRESENT_SIZES))
def test_presentation_mode_from_the_address(browser, live_app, size):
    tab = _open(browser, live_app + "?present=1", PRESENT_SIZES[size])
    try:
        tab.wait_for_function("document.body.classList.contains('zs-present')")
        assert tab.is_checked("#present input")
        for hidden in ("#advanced", "#method-settings", "#model", "#templates"):
            assert not tab.is_visible(hidden), hidden
        tab.fill("#classes textarea", "cat, crane, heron, stork, rocket, coffee mug")
        _tick(tab, ["Name only", "CLIP-80 ensemble", "WordNet re-ranking"])
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done")
        tab.wait_for_timeout(800)                       # the scroll to the results has ended
        # After a run the selected image's verdict and every strategy's top-1 are in view.
        assert _inside(tab, "#summary .zs-selected .zs-badge")
        for k in range(tab.locator("#summary .zs-selected .zs-chip").count()):
            assert _inside(tab, f"#summary .zs-selected .zs-chip >> nth={k}")
        tab.screenshot(path=str(SHOTS / f"28_2_present_{size}_result.png"))
        sizes = {s: tab.eval_on_selector_all(s, "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
                 for s in LESSON_TEXT}
        assert all(sizes[s] for s in LESSON_TEXT), [s for s in LESSON_TEXT if not sizes[s]]
        small = {s: min(v) for s, v in sizes.items() if min(v) < 20}
        assert small == {}
        tab.locator("#wordnet-panels").scroll_into_view_if_needed()
        tab.screenshot(path=str(SHOTS / f"28_2_present_{size}_wordnet.png"))
    finally:
        tab.close()


def test_the_presentation_switch_turns_it_on_and_off(browser, live_app):
    tab = _open(browser, live_app, SIZES["projector"])
    try:
        assert not tab.evaluate("document.body.classList.contains('zs-present')")
        assert tab.is_visible("#advanced")
        tab.click("#present input")
        tab.wait_for_function("document.body.classList.contains('zs-present')")
        assert not tab.is_visible("#advanced")
        tab.click("#present input")
        tab.wait_for_function("!document.body.classList.contains('zs-present')")
    finally:
        tab.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_a_lesson_opens_from_its_link_and_copy_link_restores_the_page(browser, live_app, size):
    tab = _open(browser, live_app + "?lesson=crane&present=1", SIZES[size])
    try:
        tab.wait_for_function("document.querySelector('#classes textarea').value.includes('excavator')")
        assert tab.evaluate("document.body.classList.contains('zs-present')")
        ticked = tab.eval_on_selector_all("#strategies input:checked", "els => els.length")
        assert ticked == 3
        assert tab.locator("#images [aria-label^='Thumbnail']").count() == 1
        assert "Lesson loaded" in tab.inner_text("#run-status")
        # Change the page, copy its link, and open the link in a fresh tab: the same page.
        tab.screenshot(path=str(SHOTS / f"28_3_{size}_lesson_opened.png"))
        tab.fill("#classes textarea", "crane, heron, forklift")
        tab.wait_for_selector("#lesson-list", state="visible")    # a lesson's link opens its notes
        tab.locator("#copy-link").scroll_into_view_if_needed()
        tab.click("#copy-link")
        tab.wait_for_function("document.querySelector('#lesson-link textarea').value.includes('forklift')")
        url = tab.input_value("#lesson-link textarea")
        assert tab.evaluate("window.location.href") == url
        tab.locator("#lesson-list").scroll_into_view_if_needed()
        tab.screenshot(path=str(SHOTS / f"28_3_{size}_lessons.png"))
    finally:
        tab.close()
    again = _open(browser, url, SIZES["laptop"])
    try:
        again.wait_for_function("document.querySelector('#classes textarea').value === 'crane\\nheron\\nforklift'")
        assert not again.evaluate("document.body.classList.contains('zs-present')")
    finally:
        again.close()


def test_a_hostile_address_gets_a_message_and_names_nothing_on_the_server(browser, live_app):
    tab = _open(browser, live_app + "?images=..%2F..%2Fetc%2Fpasswd&model=local-dir%3A%2Fetc&tpt_steps=NaN",
                SIZES["laptop"])
    try:
        tab.get_by_text("example photos", exact=False).first.wait_for()
        text = tab.inner_text("body")
        assert "passwd" not in text and "Traceback" not in text
        assert tab.locator("#images [aria-label^='Thumbnail']").count() == 4     # the page's own photos stay
    finally:
        tab.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_result_can_be_taken_home(browser, live_app, size):
    tab = _open(browser, live_app, SIZES[size])
    try:
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done")
        tab.locator("#downloads").scroll_into_view_if_needed()
        tab.click("#downloads")
        tab.wait_for_function("document.querySelectorAll('#download-files a').length >= 4")
        names = tab.eval_on_selector_all("#download-files a", "els => els.map(e => e.getAttribute('download') "
                                         "|| decodeURIComponent(e.href.split('/').pop()))")
        assert {"result.json", "probabilities.csv"} <= set(names)
        assert any(n.endswith(".png") for n in names) and any(n.endswith(".svg") for n in names)
        assert tab.evaluate("document.scrollingElement.scrollWidth") <= SIZES[size][0]
        tab.locator("#download-files").scroll_into_view_if_needed()
        tab.screenshot(path=str(SHOTS / f"28_4_{size}_downloads.png"))
    finally:
        tab.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_where_the_model_looks(browser, live_app, size):
    tab = _open(browser, live_app, SIZES[size])
    try:
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done")
        tab.get_by_text("Where the model looks").first.click()
        tab.wait_for_selector("#occlusion-run", state="visible")
        grid = tab.locator("#occlusion-grid input[type=number]")
        for _ in range(3):                      # the accordion draws its content on first opening
            grid.fill("4")
            grid.press("Tab")                   # the box commits its value when it loses focus
            tab.wait_for_timeout(300)
            if "17 forward passes" in tab.inner_text("#occlusion-cost"):
                break
        assert "17 forward passes" in tab.inner_text("#occlusion-cost")     # the cost, before the run
        tab.locator("#occlusion-run").scroll_into_view_if_needed()
        tab.click("#occlusion-run")
        tab.wait_for_selector("#occlusion-map img", timeout=60_000)
        picture = tab.locator("#occlusion-map img")
        picture.scroll_into_view_if_needed()
        box = picture.bounding_box()
        assert box["width"] >= min(300, SIZES[size][0] - 120) and picture.evaluate("im => im.naturalWidth > 0")
        assert "forward passes" in tab.inner_text("#occlusion-map")
        assert tab.evaluate("document.scrollingElement.scrollWidth") <= SIZES[size][0]
        tab.screenshot(path=str(SHOTS / f"28_5_{size}_occlusion.png"))
    finally:
        tab.close()


def test_a_new_run_closes_the_last_problems_toast(browser, live_app):
    tab = _open(browser, live_app, SIZES["projector"])
    try:
        tab.fill("#classes textarea", "  ,  ")
        tab.click("#run")
        tab.get_by_text("No class names given").first.wait_for()
        assert tab.locator(".toast-body").count() >= 1
        tab.fill("#classes textarea", "cat, dog")
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done")
        assert tab.locator(".toast-body").count() == 0
    finally:
        tab.close()


def test_an_examples_result_says_so_in_the_status_line(browser, live_app):
    tab = _open(browser, live_app, SIZES["projector"])
    try:
        tab.get_by_text("Chelsea the cat vs fine-grained cat breeds").click()
        tab.wait_for_function("document.querySelector('#run-status').innerText.includes('Showing an example')",
                              timeout=120_000)
        assert "press Classify" not in tab.inner_text("#run-status")
    finally:
        tab.close()


def test_the_per_class_table_shows_every_column_at_1280(browser, live_app, labelled_zip):
    tab = _open(browser, live_app, SIZES["projector"])
    try:
        tab.get_by_role("tab", name="Evaluate", exact=True).click()
        tab.set_input_files("#eval-zip input[type=file]", str(labelled_zip))
        tab.wait_for_selector("#eval-zip a, #eval-zip .file-name", timeout=20_000)
        tab.click("#eval-run")
        tab.wait_for_selector("#eval-per-class table", state="visible")
        table = tab.locator("#eval-per-class")
        table.scroll_into_view_if_needed()
        right = table.bounding_box()["x"] + table.bounding_box()["width"]
        headers = tab.eval_on_selector_all("#eval-per-class thead th",
                                           "els => els.map(e => e.getBoundingClientRect().right)")
        assert len(headers) >= 5 and max(headers) <= right + 1            # the 4th and 5th column are there
        tab.screenshot(path=str(SHOTS / "28_6_per_class_1280.png"))
    finally:
        tab.close()
