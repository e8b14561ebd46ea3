"""The Live camera tab in a real browser, with Chromium's fake camera playing a file the test
writes (two photos, then a left/right-asymmetric picture): the answer follows the frames by itself,
the model gets the picture unmirrored, Pause freezes, "Send this frame to Classify" fills the
Classify tab, a camera lesson opens the tab, and axe finds no serious or critical issue."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

playwright = pytest.importorskip("playwright.sync_api")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

from browser_support import ARGS, BROWSER, SHOTS, TIMEOUT_MS  # noqa: E402
from test_accessibility import serious  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BROWSER), reason=f"no Chromium at {BROWSER}")

SIZE = (640, 480)


def write_y4m(path, pictures, frames_each: int, fps: int = 10) -> None:
    """A raw video Chromium's fake camera plays in a loop (YUV 4:2:0, JPEG ranges)."""
    w, h = SIZE
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture in pictures:
            ycc = np.asarray(ImageOps.fit(picture.convert("RGB"), SIZE).convert("YCbCr"))
            planes = ycc[:, :, 0].tobytes() + ycc[::2, ::2, 1].tobytes() + ycc[::2, ::2, 2].tobytes()
            for _ in range(frames_each):
                f.write(b"FRAME\n" + planes)


def halves() -> Image.Image:
    """Red on the left, blue on the right: a mirrored frame shows blue on the left."""
    picture = Image.new("RGB", SIZE, (0, 60, 230))
    picture.paste((230, 20, 20), (0, 0, SIZE[0] // 2, SIZE[1]))
    return picture


@pytest.fixture(scope="module")
def camera_browser(live_app, tmp_path_factory, cat_path):
    from playwright.sync_api import sync_playwright

    video = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(video, [Image.open(cat_path), Image.open(cat_path.parent / "rocket.jpg"), halves()], frames_each=25)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=ARGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        yield chromium
        chromium.close()


def _live(browser, url: str, size=(1440, 900), query: str = ""):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, permissions=["camera"])
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url + query)
    tab.wait_for_selector("#run", state="attached")
    tab.get_by_role("tab", name="Live camera").click()
    tab.get_by_text("Click to Access Webcam").click()
    tab.locator("#live-camera button", has_text="Record").click()
    tab.wait_for_selector("#live-bars .zs-live-card")
    return tab


def _seen_halves(tab) -> tuple[list[int], list[int]]:
    """The colour of the left and right edge of "what the model sees"."""
    return tab.evaluate("""() => { const img = document.querySelector('#live-seen img');
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0); const y = Math.floor(c.height / 2);
        const at = (x) => [...g.getImageData(x, y, 1, 1).data].slice(0, 3);
        return [at(2), at(c.width - 3)]; }""")


def _files(*folders: Path) -> set[Path]:
    return {f for folder in folders if folder.exists() for f in folder.rglob("*") if f.is_file()}


def test_the_answer_follows_the_camera_unmirrored_and_pause_freezes_it(camera_browser, live_app):
    from gradio.utils import get_upload_folder

    from zsdemo.app.state import REPORTS_DIR
    from zsdemo.engine.feature_store import CACHE_HOME

    watched = (Path(get_upload_folder()), REPORTS_DIR, CACHE_HOME)
    before = _files(*watched)
    tab = _live(camera_browser, live_app)
    try:
        seen, answers = set(), set()
        for _ in range(60):                                 # about 12 s: the file's three pictures go by
            answers.add(tab.inner_text("#live-bars"))
            left, right = _seen_halves(tab)
            if left[0] > 150 and left[2] < 100 and right[2] > 150 and right[0] < 100:
                seen.add("unmirrored")
            if left[2] > 150 and left[0] < 100 and right[0] > 150 and right[2] < 100:
                seen.add("mirrored")
            tab.wait_for_timeout(200)
        assert len(answers) >= 2                            # it updated by itself when the picture changed
        assert "frames a second" in tab.inner_text("#live-status")
        assert seen == {"unmirrored"}                       # red stays on the left: as the camera saw it
        tab.screenshot(path=str(SHOTS / "38_live_laptop.png"))
        tab.click("#live-pause")
        tab.wait_for_function("document.querySelector('#live-status').innerText.includes('Paused')")
        frozen = tab.inner_text("#live-bars")
        tab.wait_for_timeout(3000)
        assert tab.inner_text("#live-bars") == frozen
        assert serious(tab) == []
        assert _files(*watched) == before                   # no frame was written anywhere
        # The frozen frame goes to the Classify tab and is classified there in full.
        tab.click("#live-send")
        tab.wait_for_function("document.querySelector('button[role=tab][aria-selected=true]').innerText"
                              ".includes('Classify')")
        tab.wait_for_function("document.querySelector('#summary')?.innerText.includes('camera-frame.png')")
        assert tab.locator("#images [aria-label^='Thumbnail']").count() == 1
    finally:
        tab.context.close()


@pytest.mark.parametrize("size, query", [((1280, 720), "?lesson=hold&present=1"), ((390, 844), "?lesson=reads")])
def test_a_camera_lesson_opens_the_live_tab_with_its_notes(camera_browser, live_app, size, query):
    tab = _live(camera_browser, live_app, size, query)
    try:
        assert "Live camera" in tab.evaluate("document.querySelector('button[role=tab][aria-selected=true]').innerText")
        assert "Live camera tab opens" in tab.inner_text("#live-notes")
        tab.wait_for_timeout(1500)
        name = "presentation" if "present" in query else "phone"
        tab.screenshot(path=str(SHOTS / f"38_live_{name}.png"))
        assert serious(tab) == []
    finally:
        tab.context.close()
