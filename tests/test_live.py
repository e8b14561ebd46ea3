"""Live frames (issue 38), without a browser: what runs live and why not, frames of any size and
colour mode, what the model sees, text features made once per class set (never per frame), many
streams at once, and the live model on ZeroGPU."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from zsdemo.core.errors import InputError
from zsdemo.engine import zero_shot_classifier
from zsdemo.engine.models import get_model
from zsdemo.run import live
from zsdemo.run.request import prepare_request


@pytest.fixture(scope="module")
def loaded():
    return get_model("tiny-random", None, "cpu")


def _request(strategies=("name", "photo", "clip80", "hierarchy", "tpt"), classes="cat, dog, rocket, mug"):
    return prepare_request(classes, list(strategies), served=True)


def test_only_the_strategies_of_one_image_pass_run_live_and_the_others_say_why():
    running, skipped = live.split(_request().chosen)
    assert [s.id for s in running] == ["name", "photo", "clip80"]
    assert skipped == {"WordNet re-ranking": "checks ten views of every image first",
                       "TPT (test-time prompt tuning)": "tunes itself on many views of every image"}


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "1"])
def test_a_frame_of_any_colour_mode_is_scored(loaded, mode):
    frame = Image.new("RGB", (320, 240), (200, 30, 30)).convert(mode)
    answer = live.LiveScorer().score(loaded, _request(), frame)
    assert [r.strategy for r in answer.results] == ["name", "photo", "clip80"]
    assert all(abs(sum(r.probs) - 1) < 1e-4 for r in answer.results)


def test_a_huge_or_odd_frame_is_bounded_and_what_the_model_sees_is_its_square(loaded):
    frame = Image.new("RGB", (5000, 300), (10, 120, 200))
    assert max(live.frame_image(frame).size) == live.LARGEST_FRAME
    answer = live.LiveScorer().score(loaded, _request(), frame)
    assert answer.seen.size == (64, 64)                    # the tiny model's own resize and crop
    assert answer.encode_seconds <= answer.seconds


@pytest.mark.parametrize("frame", [None, "frame.png", b"\x89PNG", 3.5, Image.new("RGB", (1, 1))])
def test_no_picture_is_refused_in_words(loaded, frame):
    if isinstance(frame, Image.Image):                      # one pixel is a picture: it is scored
        assert live.LiveScorer().score(loaded, _request(), frame).results
        return
    with pytest.raises(InputError, match="camera"):
        live.LiveScorer().score(loaded, _request(), frame)


def test_nothing_live_ticked_is_refused_with_what_to_do(loaded):
    with pytest.raises(InputError, match="runs live"):
        live.LiveScorer().score(loaded, _request(("hierarchy", "tpt")), Image.new("RGB", (64, 64)))


def test_the_class_vectors_are_made_once_per_class_set_not_per_frame(loaded, monkeypatch):
    made = []
    original = zero_shot_classifier.class_vectors

    def counting(*args, **kwargs):
        made.append(args[2] if len(args) > 2 else kwargs.get("templates"))
        return original(*args, **kwargs)

    monkeypatch.setattr(live, "class_vectors", counting)
    scorer = live.LiveScorer()
    frames = [Image.new("RGB", (200, 150), (k * 20, 90, 200 - k * 20)) for k in range(6)]
    for frame in frames:
        scorer.score(loaded, _request(), frame)
    assert len(made) == 3                                   # name, photo, clip80: once each, at the first frame
    scorer.score(loaded, _request(classes="cat, dog"), frames[0])
    assert len(made) == 6                                   # another class set: once more


def test_many_streams_at_once_get_what_one_stream_gets(loaded):
    frames = [Image.new("RGB", (160, 120), (k * 30, 255 - k * 30, 80)) for k in range(8)]
    alone = [live.LiveScorer().score(loaded, _request(), f).results[2].probs for f in frames]
    scorer, got, errors = live.LiveScorer(), [None] * len(frames), []

    def stream(k: int) -> None:
        try:
            for _ in range(3):
                got[k] = scorer.score(loaded, _request(), frames[k]).results[2].probs
        except Exception as e:                              # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(max(abs(a - b) for a, b in zip(x, y)) < 1e-5 for x, y in zip(got, alone))


def test_on_zerogpu_live_frames_run_on_a_cpu_copy_of_the_model(monkeypatch):
    from zsdemo.app import gpu, live as live_tab, state

    config = state.AppConfig("tiny-random", None, "cuda", None)
    seen = []
    monkeypatch.setattr(live_tab, "get_model", lambda model, pretrained, device: seen.append(device))
    monkeypatch.setattr(gpu, "on_zerogpu", lambda: True)
    live_tab.live_model(config)
    monkeypatch.setattr(gpu, "on_zerogpu", lambda: False)
    live_tab.live_model(config)
    assert seen == ["cpu", "cuda"]


def test_the_page_handler_keeps_the_last_frame_and_pauses(loaded):
    from zsdemo.app import live as live_tab, state

    config = state.AppConfig("tiny-random", None, "cpu", None)
    handlers = {}

    class Recorder:
        def __getattr__(self, name):
            def register(fn, *args, **kwargs):
                handlers.setdefault(name, []).append(fn)
                return self
            return register

    parts = {name: Recorder() for name in ("camera", "facing", "classes", "strategies", "status", "pause", "send",
                                           "bars", "seen", "notes")}
    ins = type("Ins", (), {"__getitem__": lambda self, k: Recorder()})()
    live_tab._wire(config, ins, parts, None)
    frame_fn, pause_fn = handlers["stream"][0], handlers["click"][0]
    bars, seen, status, kept = frame_fn(Image.new("RGB", (100, 80), "red"), "cat, dog", ["name", "clip80"], {})
    assert "Name only" in bars and "What the model sees" in seen and "frames a second" in status
    assert isinstance(kept["frame"], Image.Image) and kept["frame"].size == (100, 80)
    kept, _, said = pause_fn(kept)
    assert kept["paused"] and "Paused" in said
    assert frame_fn(Image.new("RGB", (100, 80), "blue"), "cat, dog", ["name"], kept)[3] is kept
    _, _, problem, _ = frame_fn(None, "cat, dog", ["name"], {})
    assert "allow the camera" in problem


def test_the_back_camera_by_default_the_front_one_on_request_neither_mirrored_to_the_model():
    from zsdemo.app import live as live_tab

    back, front = live_tab.camera(), live_tab.camera("user")
    assert back.webcam_options.constraints["video"]["facingMode"] == "environment"
    assert front.webcam_options.constraints["video"]["facingMode"] == "user"
    assert not back.webcam_options.mirror and not front.webcam_options.mirror   # the frames sent
    assert "zs-front" in front.elem_classes and "zs-front" not in back.elem_classes   # the preview only
    assert back.webcam_options.constraints["video"]["width"]["ideal"] <= 640
