"""The embedding map on the page, in a real browser: the lesson opens it and it is drawn after each
Classify, a colour per class from the page's palette, a visitor's text shown as text, its words
for a screen reader, presentation sizes, the downloads, the keyboard, axe; and the figure itself
without a browser."""

from __future__ import annotations

import os

import pytest

from zsdemo.app import embedding_map as page_map
from zsdemo.run import embedding_map as maps
from zsdemo.run import plots

playwright = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

from browser_support import BROWSER, SHOTS, open_page  # noqa: E402

browser_only = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

TRACES_JS = """() => [...document.querySelector('#map-plot .js-plotly-plot').data].map(t => ({
    name: t.name, colour: t.marker && typeof t.marker.color === 'string' ? t.marker.color : null,
    n: (t.x || []).filter(x => x !== null).length, hover: t.hovertext || null}))"""


def _open(browser, url: str, size: tuple[int, int], query: str = ""):
    tab = open_page(browser, url, size, query)
    tab.wait_for_timeout(800)                 # the page's load events (a lesson's link) have landed
    return tab


def _classify_and_wait_for_the_map(tab) -> None:
    tab.click("#run")
    tab.wait_for_selector("#run[disabled]", timeout=10_000)
    tab.wait_for_selector("#summary .zs-row")
    tab.wait_for_selector("#map-plot .main-svg")
    tab.wait_for_selector("#map-words li")
    tab.wait_for_selector("#run:not([disabled])")


def _serious(tab) -> list[str]:
    found = axe_module.Axe().run(tab, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
    return [f"{v['id']}: {n['target']}" for v in found if v["impact"] in ("serious", "critical") for n in v["nodes"]]


@browser_only
def test_the_prompt_lesson_opens_the_map_and_draws_it_after_each_classify(browser, live_app):
    tab = _open(browser, live_app, (1440, 900), "?lesson=prompt")
    try:
        assert tab.is_checked("#map-follow input")                    # the lesson asked for it
        assert tab.locator("#map-draw").is_visible()                  # the area is open
        _classify_and_wait_for_the_map(tab)
        traces = tab.evaluate(TRACES_JS)
        classes = ["coffee mug", "espresso", "cup", "teapot", "soup bowl", "plate"]
        colours = {t["name"]: t["colour"] for t in traces if t["name"] in classes}
        assert list(colours) == classes and list(colours.values()) == list(plots.PALETTE[:6])
        # A class's cloud: CLIP-80's 80 prompts, CLIP-7's 7, the single template and the two custom ones.
        hovers = [h for t in traces if t["name"] == "coffee mug" and t["hover"] for h in t["hover"]]
        assert sum(h.endswith("(clip80)") for h in hovers) == 80 and sum(h.endswith("(clip7)") for h in hovers) == 7
        assert sum(h.endswith("(custom)") for h in hovers) == 2
        words = tab.inner_text("#map-words")
        assert "on the top two principal axes" in words and "coffee.png: nearest ensemble:" in words
        tab.locator("#embedding-map").screenshot(path=str(SHOTS / "39_map_lesson.png"))
        # Another class, Classify again: the map follows with its cloud.
        tab.fill("#classes textarea", "coffee mug, espresso, cup, teapot, soup bowl, plate, saucer")
        tab.click("#run")
        tab.wait_for_function("""() => [...document.querySelector('#map-plot .js-plotly-plot').data]
            .some(t => t.name === 'saucer')""")
        assert _serious(tab) == []
    finally:
        tab.close()


@browser_only
def test_a_visitors_markup_is_text_on_the_map_and_presentation_type_is_20px(browser, live_app):
    tab = _open(browser, live_app, (1280, 720), "?lesson=prompt&present=1")
    try:
        tab.fill("#classes textarea", "<b>cup</b>, <img src=x onerror=window.__owned=1>, plate")
        _classify_and_wait_for_the_map(tab)
        assert tab.evaluate("window.__owned") is None
        assert tab.locator("#map-plot b, #map-plot img, #map-words b, #map-words img").count() == 0
        legend = tab.evaluate("document.querySelector('#map-plot .legend').textContent")
        assert "<b>cup</b>" in legend
        sizes = tab.evaluate("""() => [...document.querySelectorAll('#map-plot svg text')]
            .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
            .map(t => parseFloat(getComputedStyle(t).fontSize))""")
        assert sizes and min(sizes) >= 20, sorted(sizes)[:5]
        tab.locator("#embedding-map").screenshot(path=str(SHOTS / "39_map_present.png"))
        assert _serious(tab) == []
    finally:
        tab.close()


@browser_only
def test_by_keyboard_the_map_is_drawn_and_joins_the_downloads_on_a_phone(browser, live_app):
    tab = _open(browser, live_app, (390, 844), "?lesson=cats")
    try:
        tab.click("#run")
        tab.wait_for_selector("#summary .zs-row")
        tab.wait_for_selector("#run:not([disabled])")
        tab.click("#embedding-map .label-wrap")
        tab.check("#map-separate input")
        tab.focus("#map-draw")
        tab.keyboard.press("Enter")
        tab.wait_for_selector("#map-plot .main-svg")
        tab.wait_for_selector("#map-draw:not([disabled])")
        words = tab.inner_text("#map-words")
        assert "images and texts centred apart" in words and "WordNet points" in words   # the cats lesson's hierarchy
        width = tab.evaluate("document.querySelector('#map-plot .main-svg').getBoundingClientRect().width")
        assert width <= 390
        tab.click("#downloads")
        tab.wait_for_function("document.querySelectorAll('#download-files a').length >= 7")
        names = tab.eval_on_selector_all("#download-files a", "els => els.map(e => e.getAttribute('download') "
                                         "|| decodeURIComponent(e.href.split('/').pop()))")
        assert {"embedding-map.png", "embedding-map.svg", "embedding-map.json"} <= set(names)
        tab.screenshot(path=str(SHOTS / "39_map_phone.png"), full_page=True)
        assert _serious(tab) == []
    finally:
        tab.close()


def _found() -> maps.EmbeddingMap:
    points = [maps.MapPoint("image", None, "a.png", x=0.1, y=0.2), maps.MapPoint("image", None, "b.png", x=0.3, y=0.1),
              maps.MapPoint("name", "<i>x</i>", "<i>x</i>", x=0.0, y=0.0),
              maps.MapPoint("prompt", "<i>x</i>", "a photo of a <i>x</i>.", "photo", x=0.2, y=0.2),
              maps.MapPoint("prompt", "<i>x</i>", "a toy <i>x</i>.", "clip80", x=0.2, y=0.3),
              maps.MapPoint("prompt", "<i>x</i>", "a sketch of a <i>x</i>.", "clip80", x=0.3, y=0.2),
              maps.MapPoint("ensemble", "<i>x</i>", "CLIP-80 ensemble: the mean of 2 prompts", "clip80", x=0.25, y=0.25),
              maps.MapPoint("wordnet", "<i>x</i>", "thing", "hierarchy", x=-0.1, y=0.0, prompt="<i>x</i> which is a "
                            "kind of thing", relation="parent")]
    return maps.EmbeddingMap(points, (0.6, 0.3), False, total=len(points),
                             nearest=[maps.Nearest("a.png", ("CLIP-80 ensemble", "<i>x</i>", 0.3),
                                                   ("a toy <i>x</i>.", "<i>x</i>", 0.31))])


def test_the_figure_escapes_what_it_shows_and_marks_the_image_inspected():
    fig = page_map.figure(_found(), highlighted=1)
    texts = [str(t.name) for t in fig.data] + [h for t in fig.data for h in (t.hovertext or [])]
    assert all("<i>" not in t for t in texts) and any("&lt;i&gt;x&lt;/i&gt;" in t for t in texts)
    images = next(t for t in fig.data if t.name == "images")
    assert list(images.marker.size) == [20, 30] and list(images.marker.line.width) == [1.5, 3]
    assert {t.name for t in fig.data} >= {"CLIP-80 ensemble", "WordNet parents and children", "prompts (one dot each)"}
    assert fig.layout.font.size == 14 and page_map.figure(_found(), present=True).layout.font.size == 20
    words = page_map.words_html(_found())
    assert "<i>" not in words and "&lt;i&gt;x&lt;/i&gt;" in words and "nearest single prompt" in words


def test_what_the_page_keeps_is_read_back_and_a_forged_map_is_refused():
    kept = _found().to_dict()
    plot, words = page_map.map_view(kept, 0, False)
    assert plot["visible"] is True and "a.png" in words
    assert page_map.map_view(None, 0, False)[0]["visible"] is False
    with pytest.raises(Exception, match="draw it again"):
        page_map.map_view({"points": [{"x": 1}]}, 0, False)


def test_the_map_of_a_run_keeps_its_senses_and_says_why_a_second_model_is_not_drawn(cat_path, tiny):
    from zsdemo.app import classifying, state as app_state

    config = app_state.AppConfig("tiny-random", None, "cpu", None, allow_random=True).with_uploads(cat_path.parent)
    run = classifying.run(config, [str(cat_path)], "crane, heron, rocket", ["name", "clip7", "hierarchy", "perception"],
                          senses="crane=crane.n.04", compare_model="tiny-random-sigmoid")
    found = page_map.map_of_run(config, run, False)
    crane = {p.text for p in found.points if p.kind == "wordnet" and p.class_name == "crane"}
    assert "transporter" in crane and "whooping crane" not in crane     # the machine, as the run was told
    assert any("The map is of tiny model" in n and "Choose the other model" in n for n in found.notes)
    assert any("PerceptionCLIP" in n and "no prompt points" in n for n in found.notes)
    assert [p.text for p in found.points if p.kind == "image"] == ["cat.png"]
    assert found.model["name"] == "zsdemo-tiny"
    with pytest.raises(Exception, match="press Classify first"):
        page_map.map_of_run(config, None, False)


def test_the_image_inspected_is_counted_among_the_images_the_map_could_read():
    from types import SimpleNamespace

    images = [SimpleNamespace(ok=ok) for ok in (True, False, True, True)]
    run = SimpleNamespace(result=SimpleNamespace(images=images))
    assert [page_map.map_index(run, k) for k in range(4)] == [0, None, 1, 2]     # the unreadable one is not drawn
    assert page_map.map_index(run, 9) is None and page_map.map_index(run, True) is None
    assert page_map.map_index(None, 0) is None
