"""The name-only lesson in a real browser: the shipped photos load as the pool, the model's own
examples are pictured per class with their cosines, TIP-X's panel splits its scores, and axe finds
no serious issue (laptop, presentation, phone)."""

from __future__ import annotations

import os

import pytest

playwright = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

from browser_support import BROWSER, SHOTS, open_page  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


@pytest.mark.parametrize("name,size,query", [("laptop", (1440, 900), ""), ("presentation", (1280, 720), "&present=1"),
                                             ("phone", (390, 844), "")])
def test_the_name_only_lesson_shows_what_the_model_found(browser, live_app, name, size, query):
    tab = open_page(browser, live_app, size, "?lesson=sus" + query)
    try:
        tab.wait_for_timeout(800)
        assert tab.locator("#sus-pool").is_visible()                  # the lesson opened the examples' area
        assert "pool\n.zip" in tab.inner_text("#sus-pool")                # the file component shows its name
        tab.click("#run")
        tab.wait_for_selector("#run-status .zs-status-done", timeout=180_000)
        tab.wait_for_selector("#methods-panels .zs-panel-sus")
        found = tab.locator(".zs-panel-sus")
        classes = found.locator(".zs-found-class h4").all_inner_texts()
        assert classes[:4] == ["cat", "coffee mug", "rocket", "astronaut"] and len(classes) == 12
        pictures = found.locator(".zs-found-class").first.locator("img")
        assert pictures.count() == 4 and pictures.first.get_attribute("alt").startswith("pool/")
        assert "cos " in found.locator("figcaption").first.inner_text()
        assert "Nothing in the pool looks most like" in tab.inner_text("#methods-panels") or \
            "nearer" in found.inner_text()
        tipx = tab.locator(".zs-panel-tipx")
        assert "zero-shot" in tipx.inner_text() and "KL" in tipx.inner_text() and "cache" in tipx.inner_text()
        # The page's empty boxes mean "searched" (a number box would have sent 0).
        assert "alpha, beta, gamma searched on a held-out quarter" in tipx.inner_text()
        found.scroll_into_view_if_needed()
        tab.screenshot(path=str(SHOTS / f"40_sus_{name}.png"))
        bad = [f"{v['id']}: {n['target']}" for v in axe_module.Axe().run(
            tab, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
            if v["impact"] in ("serious", "critical") for n in v["nodes"]]
        assert bad == []
    finally:
        tab.close()
