"""Every student (issue 37): axe-core on every view, a whole lesson by keyboard alone, what a
screen reader hears, the palette the page draws, and the lesson's rough edges, in a real browser.

axe-core 4.12 comes bundled in ``axe-playwright-python`` (offline); the rules are WCAG 2.0, 2.1
and 2.2, levels A and AA, and a test fails on any serious or critical violation.
"""

from __future__ import annotations

import os
import re
import time
import zipfile

import pytest

playwright = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
expect = playwright.expect

from browser_support import BROWSER, SHOTS, open_page  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
AXE = axe_module.Axe()


def serious(tab) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line per element."""
    found = AXE.run(tab, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
    return [f"{v['id']}: {n['target']} {n.get('failureSummary', '')[:160]}"
            for v in found if v["impact"] in ("serious", "critical") for n in v["nodes"]]


def _open(browser, url: str, size: tuple[int, int], query: str = "", dark: bool = False):
    return open_page(browser, url, size, query, dark)


def _classify(tab) -> None:
    """A run, and its panels drawn: the status says "done" before the result's panels arrive."""
    tab.click("#run")
    tab.wait_for_selector("#run[disabled]", timeout=10_000)
    tab.wait_for_selector("#run-status .zs-status-done")
    tab.wait_for_selector("#run:not([disabled])")
    tab.wait_for_selector("#bars .zs-card")
    tab.wait_for_selector("#summary .zs-row")


def _evaluation_zip(tmp_path, cat_path, astronaut_path):
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(2):
            z.write(cat_path, f"set/n02123045/{k}.png")
            z.write(astronaut_path, f"set/astronaut/{k}.png")
    return archive


# (name, viewport, address, dark, what to do before the check)
VIEWS = [
    ("laptop-start", (1440, 900), "", False, None),
    ("laptop-run", (1440, 900), "", False, "run"),
    ("laptop-run-open", (1440, 900), "", False, "run+open"),
    ("dark-run-open", (1440, 900), "?__theme=dark", True, "run+open"),
    ("lesson", (1440, 900), "?lesson=crane", False, "run"),
    ("presentation", (1280, 720), "?present=1", False, "run"),
    ("presentation-dark", (1920, 1080), "?lesson=cats&present=1&__theme=dark", True, "run+open"),
    ("phone", (390, 844), "", False, "run"),
    ("evaluate", (1440, 900), "", False, "evaluate"),
    ("evaluate-dark", (390, 844), "?__theme=dark", True, "evaluate"),
]


def _open_everything(tab) -> None:
    """The occlusion map drawn and the downloads made (what a lesson may open after a run)."""
    tab.click("#occlusion button, #occlusion .label-wrap")
    tab.click("#occlusion-run")
    tab.wait_for_selector("#occlusion-map img")
    tab.wait_for_selector("#run:not([disabled])")
    tab.click("#downloads")
    tab.wait_for_selector("#download-files a")


def _evaluate(tab, archive) -> None:
    tab.get_by_role("tab", name="Evaluate", exact=True).click()
    tab.set_input_files("#eval-zip input[type=file]", str(archive))
    tab.wait_for_selector("#eval-zip a, #eval-zip .file-name, #eval-zip td")
    tab.click("#eval-run")
    tab.wait_for_selector("#eval-coverage img")
    tab.wait_for_selector("#eval-run:not([disabled])")


@pytest.mark.parametrize("name,size,query,dark,then", VIEWS, ids=[v[0] for v in VIEWS])
def test_axe_finds_no_serious_or_critical_issue(browser, live_app, tmp_path, cat_path, astronaut_path,
                                                name, size, query, dark, then):
    tab = _open(browser, live_app, size, query, dark)
    try:
        tab.wait_for_timeout(800)            # the page's load events (a lesson's link) have landed
        if then and then.startswith("run"):
            _classify(tab)
            if then == "run+open":
                _open_everything(tab)
        elif then == "evaluate":
            before = serious(tab)
            _evaluate(tab, _evaluation_zip(tmp_path, cat_path, astronaut_path))
            assert before == [], before
        tab.wait_for_timeout(300)
        tab.screenshot(path=str(SHOTS / f"37_axe_{name}.png"), full_page=True)
        assert serious(tab) == []
    finally:
        tab.close()


def _focused(tab) -> str:
    return tab.evaluate("(document.activeElement && (document.activeElement.id || "
                        "document.activeElement.textContent.trim().slice(0, 40))) || ''")


def test_a_whole_lesson_by_keyboard_alone(browser, live_app):
    tab = _open(browser, live_app, (1280, 720), "?lesson=crane")
    try:
        tab.wait_for_timeout(800)
        # Classify in two Tab stops (a skip link), run by Enter; the focus ring is visible.
        tab.keyboard.press("Tab")
        assert _focused(tab) == "Skip to Classify"
        tab.keyboard.press("Enter")
        assert _focused(tab) == "run"
        ring = tab.evaluate("getComputedStyle(document.activeElement).outlineWidth")
        assert float(ring.rstrip("px")) >= 2
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#run-status .zs-status-done")
        tab.wait_for_selector("#run:not([disabled])")
        tab.wait_for_selector("#summary .zs-row")           # the panels come after the status line
        # The second skip link goes to the results.
        tab.evaluate("window.scrollTo(0, 0)")
        tab.locator(".zs-skip").nth(1).focus()
        tab.keyboard.press("Enter")
        assert _focused(tab) == "results"
        # Choose the image to inspect: each summary row is a Tab stop, Enter (or Space) selects it.
        rows = tab.locator("#summary .zs-row")
        assert rows.count() == 1 and rows.first.get_attribute("tabindex") == "0"
        # The sense picker: radio buttons, chosen with the arrow keys, re-run by Enter.
        tab.locator("#sense input:checked").focus()
        before = tab.evaluate("document.querySelector('#sense input:checked').value")
        tab.keyboard.press("ArrowUp")          # one radio group (page.js): the arrows move within it
        tab.wait_for_function(f"document.querySelector('#sense input:checked').value !== {before!r}")
        tab.locator("#apply-sense").focus()
        tab.keyboard.press("Enter")
        tab.wait_for_function("new URLSearchParams(location.search).get('senses')")   # the address says it
        tab.wait_for_selector("#run:not([disabled])")
        tab.wait_for_selector("#run-status .zs-status-done")
        # The downloads by keyboard, and each file is a link that takes focus.
        tab.locator("#downloads").focus()
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#download-files a")
        tab.locator("#download-files a").first.focus()
        assert tab.evaluate("document.activeElement.tagName") == "A"
        # The occlusion map: open its area and draw it by keyboard; its button waits while it runs.
        tab.locator("#occlusion .label-wrap, #occlusion button").first.focus()
        tab.keyboard.press("Enter")
        tab.locator("#occlusion-run").focus()
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#occlusion-run[disabled]", timeout=10_000)
        tab.wait_for_selector("#occlusion-map img")
        tab.wait_for_selector("#occlusion-run:not([disabled])")
        tab.screenshot(path=str(SHOTS / "37_keyboard_lesson.png"), full_page=True)
    finally:
        tab.close()


def test_escape_stops_a_long_run(browser, live_app):
    tab = _open(browser, live_app, (1440, 900))
    try:
        tab.fill("#classes textarea", "\n".join(f"escape class {k}" for k in range(1000)))
        tab.evaluate("""() => document.querySelectorAll('#strategies label').forEach(l => {
            const box = l.querySelector('input'); const want = ['Name only', 'CLIP-80 ensemble'].includes(l.innerText.trim());
            if (box.checked !== want) box.click(); })""")
        tab.locator("#run").focus()
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#run-status .progress-text")
        expect(tab.locator("#stop")).to_be_visible()
        # Under the progress, no stale line from the last run shows through.
        expect(tab.locator("#run-status .zs-status")).to_be_hidden()
        began = time.monotonic()
        tab.keyboard.press("Escape")
        tab.wait_for_selector("#run-status .zs-status-stopped", timeout=15_000)
        assert time.monotonic() - began < 15
    finally:
        tab.close()


def test_a_screen_reader_hears_each_change_once_and_reads_every_result_as_text(browser, live_app):
    tab = _open(browser, live_app, (1440, 900))
    try:
        assert tab.evaluate("document.documentElement.lang") != ""
        live = tab.locator("#zs-announce")
        assert live.get_attribute("role") == "status" and live.get_attribute("aria-live") == "polite"
        tab.evaluate("window.__zsAnnounced.length = 0")
        _classify(tab)
        tab.wait_for_timeout(500)
        heard = tab.evaluate("window.__zsAnnounced")
        done = [h for h in heard if h.startswith("✔ Classified")]
        assert len(done) == 1 and len(heard) <= 4, heard         # start, a progress line at most, done
        # Every image's verdict and every strategy's top-1, as text (not only bars).
        summary = tab.inner_text("#summary")
        assert summary.count("confident") + summary.count("uncertain") >= 4
        for name in ("Name only", "Single template", "CLIP-80 ensemble"):
            assert name + ":" in summary
        bars = tab.locator("#bars .zs-bar").first.get_attribute("title")
        assert re.match(r".+: \d+\.\d%$", bars)
        # The image to inspect, by keyboard: Tab to a row, Space (or Enter) inspects it.
        tab.locator("#summary .zs-row").first.focus()
        tab.keyboard.press("Tab")
        tab.keyboard.press("Space")
        tab.wait_for_selector("#summary .zs-row.zs-selected[data-index='1']")
        tab.keyboard.press("Tab")
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#summary .zs-row.zs-selected[data-index='2']")
        # A refusal is heard once.
        tab.evaluate("window.__zsAnnounced.length = 0")
        tab.fill("#classes textarea", "")
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-error")
        tab.wait_for_timeout(500)
        errors = tab.evaluate("window.__zsAnnounced")
        assert sum(1 for h in errors if h.startswith("✗")) == 1, errors
        # The occlusion map says in words where covering hurts most.
        tab.fill("#classes textarea", "cat\ndog\nrocket")
        _classify(tab)
        tab.click("#occlusion .label-wrap, #occlusion button")
        tab.click("#occlusion-run")
        alt = tab.locator("#occlusion-map img").get_attribute("alt")
        assert re.search(r"covering the .+ of the image lowers its probability most, by -?\d+\.\d percentage", alt)
    finally:
        tab.close()


def test_the_evaluate_tab_figures_have_their_words(browser, live_app, tmp_path, cat_path, astronaut_path):
    tab = _open(browser, live_app, (1440, 900))
    try:
        _evaluate(tab, _evaluation_zip(tmp_path, cat_path, astronaut_path))
        for figure in ("#eval-coverage", "#eval-strategy-coverage"):
            alt = tab.locator(f"{figure} img").get_attribute("alt")
            assert "right on every image" in alt and "%" in alt
            assert tab.locator(f"{figure} details summary").inner_text().endswith("in words")
        # Drawn at about the width it is shown: its type is not scaled down to unreadable.
        drawn, shown = tab.evaluate("""() => { const i = document.querySelector('#eval-coverage img');
            return [i.naturalWidth, i.getBoundingClientRect().width]; }""")
        assert shown >= 0.9 * drawn
    finally:
        tab.close()


def test_the_bars_use_the_palette_every_eye_can_tell_apart(browser, live_app):
    from zsdemo.run import plots

    tab = _open(browser, live_app, (1440, 900))
    try:
        tab.fill("#classes textarea", "\n".join(f"thing {k}" for k in range(12)))
        _classify(tab)
        tab.wait_for_function("document.querySelector('#bars .zs-card').innerText.includes('thing')")
        fills = tab.evaluate("""() => [...document.querySelector('#bars .zs-card').querySelectorAll('.zs-fill')]
            .map(f => f.style.background)""")
        assert len(fills) >= 5 and len(set(fills)) == len(fills)      # the union of the top-5s: one fill each
        rgb = {f"rgb({int(c[1:3], 16)}, {int(c[3:5], 16)}, {int(c[5:7], 16)})" for c in (*plots.PALETTE, plots.OTHER_COLOUR)}
        assert all(any(c in f for c in rgb) for f in fills), fills
    finally:
        tab.close()


PRESENT_TEXT_JS = """() => { const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest('.zs-sr-only, .sr-only, .zs-skip, #zs-announce, .toast-wrap')) continue;
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(el).visibility === 'hidden') continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 19.5) small.push(`${el.tagName}.${el.className} ${size}px: ${node.textContent.trim().slice(0, 40)}`);
  }
  return small; }"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_presentation_mode_shows_every_text_at_20px_and_breaks_no_word(browser, live_app, scheme):
    dark = scheme == "dark"
    tab = _open(browser, live_app, (1920, 1080), "?lesson=crane&present=1" + ("&__theme=dark" if dark else ""), dark)
    try:
        tab.wait_for_timeout(800)
        tab.fill("#classes textarea", "excavator\ncrane\nrocket")
        _classify(tab)
        _open_everything(tab)
        tab.wait_for_timeout(300)
        small = tab.evaluate(PRESENT_TEXT_JS)
        tab.screenshot(path=str(SHOTS / f"37_present_1920_{scheme}.png"), full_page=True)
        assert small == [], small[:12]
        # No label of a bar is split inside a word ("excavat / or").
        broken = tab.evaluate("""() => [...document.querySelectorAll('#bars .zs-label, #bars .zs-card-top b')]
            .filter(el => { const r = document.createRange(); r.selectNodeContents(el);
              const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
              return tops.size > 1 && !el.textContent.trim().includes(' '); }).map(el => el.textContent)""")
        assert broken == []
    finally:
        tab.close()


def test_a_lesson_link_opens_its_notes_and_shows_its_one_photo_whole(browser, live_app):
    tab = _open(browser, live_app, (1440, 900), "?lesson=crane")
    try:
        expect(tab.locator("#lesson-list")).to_be_visible()       # the teaching notes are open
        tab.wait_for_function("document.querySelectorAll('#images img').length === 1")
        assert tab.evaluate("getComputedStyle(document.querySelector('#images img')).objectFit") == "contain"
        shown, frame = tab.locator("#images img").bounding_box(), tab.locator("#images").bounding_box()
        assert shown["y"] + shown["height"] <= frame["y"] + frame["height"]      # whole, not cut by the gallery
        tab.locator("#images").screenshot(path=str(SHOTS / "37_one_photo.png"))
    finally:
        tab.close()


def test_the_dropdowns_left_follow_the_combobox_pattern_a_screen_reader_can_use(browser, live_app):
    # Gradio 6.31's dropdowns are WAI-ARIA comboboxes (gradio#13542, the fix of gradio#10532): the
    # option under the arrow keys is the input's aria-activedescendant, so a screen reader names it.
    # The preset and the sense picker are radio buttons (their choices are few and read whole).
    tab = _open(browser, live_app, (1440, 900))
    try:
        tab.click("#occlusion .label-wrap, #occlusion button")     # its area is drawn once opened
        for picker in ("#model", "#compare-model", "#occlusion-class"):
            field = tab.locator(f"{picker} input[role='combobox']")
            assert field.get_attribute("aria-label")
            field.focus()
            tab.keyboard.press("ArrowDown")
            tab.keyboard.press("ArrowDown")
            active = field.get_attribute("aria-activedescendant")
            assert field.get_attribute("aria-expanded") == "true" and active
            option = tab.locator(f"[id='{active}']")
            assert option.get_attribute("role") == "option" and option.get_attribute("aria-label")
            tab.keyboard.press("Escape")
        assert tab.locator("#preset input[type='radio']").count() >= 8
    finally:
        tab.close()
