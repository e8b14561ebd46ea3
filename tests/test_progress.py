"""Progress, time left, Stop, the estimate of a slow request, the warm-up, and a light command line."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from zsdemo import cli
from zsdemo.app import choices, classifying, evaluating, state, warmup
from zsdemo.core import progress
from zsdemo.core.errors import ModelLoadError
from zsdemo.run.pipeline import classify_request, estimate, prepare_request
from zsdemo.engine.text import TextFeatureCache, encode_prompts
from zsdemo.app.warmup import Example, WarmUp

ROOT = Path(__file__).resolve().parents[1]
CONFIG = state.AppConfig("tiny-random", None, "cpu", None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_stages_advance_and_say_the_time_left():
    clock, seen = Clock(), []
    tracker = progress.Tracker(lambda f, m: seen.append((f, m)), clock=clock)
    tracker.stage(0.0, 0.5, "encoding prompts", 1000, "prompt")
    clock.now = 10.0
    tracker.advance(500, "prompt")                     # half the stage: a quarter of the whole
    assert seen[-1][0] == pytest.approx(0.25)
    assert seen[-1][1] == "encoding prompts: 500 of 1,000 prompts · about 30 s left"
    tracker.advance(64, "image")                       # another unit: no report, the bar stays
    assert len(seen) == 2
    tracker.stage(0.1, 0.2, "an earlier stage")        # the bar never goes back
    assert seen[-1][0] == pytest.approx(0.25)
    assert progress.duration(150) == "about 2 min" and progress.count(1, "image") == "1 image"


def test_a_stopped_request_ends_at_the_next_model_turn(tiny):
    stop = threading.Event()
    turns = []
    original = tiny.lock.acquire

    def counting() -> bool:
        turns.append(1)
        if len(turns) == 2:
            stop.set()                                 # the user presses Stop after the first batch
        return original()

    tiny.lock.acquire = counting
    try:
        names = [f"stop test class {k}" for k in range(600)]
        with pytest.raises(progress.Stopped), progress.track(None, stop):
            encode_prompts(tiny, names, TextFeatureCache(), batch_size=100)
    finally:
        del tiny.lock.acquire
    assert len(turns) == 2                             # the next turn saw the stop: 5 of 6 batches never ran


def test_heavy_work_found_under_way_moves_the_bar_and_has_its_own_estimate():
    # Scoring the sparse WordNet's nodes on a model not warmed up: minutes inside a stage that was
    # given 1% of the bar. It takes most of what is left, the bar moves with it, and the time left
    # is measured on it alone (not "2.0%" for four minutes with no estimate).
    clock, seen = Clock(), []
    with progress.track(lambda f, m: seen.append((f, m))) as tracker:
        tracker.clock = clock
        progress.stage(0.02, 0.03, "reading WordNet")
        clock.now = 5.0
        progress.restage("scoring 1,000 WordNet nodes", 80_000, "prompt", heavy=True)
        clock.now = 65.0
        progress.advance(20_000, "prompt")
    assert seen[-1][0] == pytest.approx(0.02 + 0.98 * 0.9 * 0.25)
    assert seen[-1][1] == "scoring 1,000 WordNet nodes: 20,000 of 80,000 prompts · about 3 min left"


def test_a_long_scoring_cuts_its_passes_so_that_stop_ends_it_within_a_turn(tiny, monkeypatch):
    from zsdemo.engine import text

    slow = text.encode_tokens
    sizes = []

    def slow_pass(loaded, tokens):
        sizes.append(len(tokens))
        time.sleep(0.002 * len(tokens))              # 2 ms a prompt: 256 prompts take half a second
        return slow(loaded, tokens)

    monkeypatch.setattr(text, "encode_tokens", slow_pass)
    prompts = [f"a photo of a thing number {k}." for k in range(600)]
    norms = text.prompt_norms(tiny, prompts, batch_size=256, turn_seconds=0.1)
    assert max(sizes[2:]) <= 64                      # cut until a pass takes about 0.1 s
    whole = text.prompt_norms(tiny, prompts, batch_size=256, turn_seconds=None)
    assert torch.allclose(norms, whole, atol=1e-5)     # a prompt's norm does not depend on its batch


def test_run_control_stops_the_right_session():
    control = state.RunControl(max_sessions=2)
    mine, theirs = control.begin("me"), control.begin("them")
    assert control.current("me") is mine
    assert control.stop("me") and mine.is_set() and not theirs.is_set()
    control.end("me", mine)
    assert not control.stop("me")                      # nothing running any more
    control.begin("a third")
    control.begin("a fourth")                          # beyond the bound, the oldest entry goes
    assert control.current("them") is not theirs


def test_the_estimate_counts_the_prompts_not_cached_and_names_the_work(tiny):
    cache = TextFeatureCache()
    request = prepare_request(["estimate a", "estimate b", "estimate c"], ["name", "clip80"], None, 3,
                              consistency=True)
    work = estimate(tiny, 2, request, cache)
    assert work.prompts == 3 * 81 and work.images == 2 * 11
    assert "243 prompts to encode" in work.summary() and "2 images and 20 views" in work.summary()
    classify_request(tiny, [str(ROOT / "assets/images/cat.png")], request, cache)
    again = estimate(tiny, 2, request, cache)
    assert again.prompts == 0 and again.known           # all cached now, and the model's speed measured
    assert again.total < work.total or not work.known


def test_the_page_is_told_before_a_slow_run(monkeypatch, cat_path):
    told = []
    monkeypatch.setattr(classifying, "SLOW_SECONDS", 0.0)       # every run is "slow"
    classifying.run(CONFIG, [str(cat_path)], "cat, dog", ["name"], announce=told.append)      # measures the speed
    classifying.run(CONFIG, [str(cat_path)], "slow cat, slow dog", ["name", "clip80"], announce=told.append)
    assert told and told[-1].startswith("This run will take about") and "prompts to encode" in told[-1]


def test_a_non_image_upload_is_refused_with_its_name_not_its_path(tmp_path, cat_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    kept, refused = classifying.check_uploads(CONFIG.with_uploads(tmp_path), [str(notes), str(cat_path), "/etc/passwd"])
    assert kept == [str(cat_path)]
    assert refused[0].startswith("notes.png: not an image") and str(tmp_path) not in refused[0]
    assert "was not uploaded" in refused[1]


def test_warm_up_computes_the_examples_and_presets_and_keeps_them_on_disk(tmp_path, cat_path, tiny):
    cache = TextFeatureCache()
    cache.attach_disk(tmp_path / "text.sqlite", write_all=False)
    warm = WarmUp()
    warm.start(lambda: tiny, [Example((str(cat_path),), "warm cat, warm dog", ("name", "photo"))],
               presets=["cifar10"], cache=cache)
    warm.join(120)
    assert warm.finished and not warm.failed and warm.done == len(warm.steps) == 4
    assert warm.status() == ""
    fresh = TextFeatureCache(disk_path=tmp_path / "text.sqlite")     # a restarted server
    assert all(v is not None for v in fresh.get(tiny.identity, ["warm cat", "a photo of a warm dog.",
                                                                "a photo of a airplane."]))
    # A visitor's own prompts stay in memory only: nobody fills the server's disk.
    encode_prompts(tiny, ["a visitor's prompt"], cache)
    assert TextFeatureCache(disk_path=tmp_path / "text.sqlite").get(tiny.identity, ["a visitor's prompt"]) == [None]


def test_the_command_line_loads_no_torch_to_answer_help():
    code = "import sys, zsdemo.cli as c; c.build_parser(); assert 'torch' not in sys.modules, 'torch'; " \
           "assert 'open_clip' not in sys.modules, 'open_clip'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_long_cli_work_prints_progress_on_stderr(monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_AFTER_S", 0.0)
    stream = io.StringIO()
    report = cli.progress_printer(False, stream)
    report(0.0, "decoding images")
    report(0.3, "encoding prompts: 100 of 300 prompts")
    report(0.31, "encoding prompts: 110 of 300 prompts")      # same stage, within 5 s: not repeated
    report(1.0, "done")
    assert stream.getvalue().splitlines() == ["  0% decoding images", " 30% encoding prompts: 100 of 300 prompts",
                                              "100% done"]
    assert cli.progress_printer(True) is None


def test_stop_reaches_an_evaluation(tmp_path, cat_path):
    import zipfile

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(4):
            z.write(cat_path, f"cat/{k}.png")
            z.write(cat_path, f"dog/{k}.png")
    stop, stages = threading.Event(), []

    def report(fraction: float, message: str) -> None:
        stages.append(message)
        if message.startswith("evaluating"):
            stop.set()                                 # Stop pressed once the evaluation started

    with pytest.raises(progress.Stopped):
        evaluating.evaluate_upload(CONFIG.with_uploads(tmp_path), str(archive), "name", views="flip", progress=report,
                             stop=stop)
    assert any(s.startswith("evaluating") for s in stages)



def test_a_failing_warm_up_step_is_named_on_the_banner_and_the_next_steps_still_run(cat_path, tiny, caplog):
    warm = WarmUp()
    bad = Example((str(cat_path),), "", ("name",))                 # no class names: this step fails
    good = Example((str(cat_path),), "warm fox, warm owl", ("name",))
    cache = TextFeatureCache()
    with caplog.at_level("WARNING", logger="zsdemo.app.warmup"):
        warm.start(lambda: tiny, [bad, good], presets=["cifar10"], cache=cache)
        warm.join(120)
    assert warm.finished and not warm.failed and warm.done == len(warm.steps) == 5
    assert len(warm.problems) == 1 and warm.problems[0].startswith("example 1 of 2: ")
    banner, changing = warmup.warm_banner(warm)
    assert "1 step failed (example 1 of 2: " in banner and "zs-status-error" in banner and not changing
    assert "warm-up step 'example 1 of 2' failed" in caplog.text
    # ... and the steps after it did their work.
    assert all(v is not None for v in cache.get(tiny.identity, ["warm fox", "warm owl", "a photo of a airplane."]))


def test_without_weights_the_banner_and_classify_say_what_to_do(monkeypatch, cat_path, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)   # an empty cache and no hub: no weights anywhere
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    config = state.AppConfig("openai-b32", None, "cpu", None).with_uploads(cat_path.parent)
    warm = warmup.start_warm_up(config, [])
    warm.join(60)
    banner, changing = warmup.warm_banner(warm)
    assert banner.startswith('<div class="zs-status zs-status-error"') and not changing
    for text in (banner, warm.failed):
        assert "No model could be loaded on this server" in text and "--model tiny-random" in text
        assert "not in the local cache" in text and "local checkpoint" in text
    with pytest.raises(ModelLoadError) as e:
        classifying.run(config, [str(cat_path)], "cat, dog", "name")
    page = e.value.for_page()
    assert page.startswith("No model could be loaded on this server (") and page.count(". ") == 0
    assert "--model tiny-random" in page and "already loaded" not in page


def test_on_a_space_the_no_model_advice_names_the_variable(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "teacher/zsdemo")
    said = choices.no_model(ModelLoadError("weights not in the local cache", reason="weights not in the local cache"))
    text = said.for_page()
    assert "ZSDEMO_MODEL variable" in text and "restart the Space" in text and "--model" not in text
    monkeypatch.delenv("SPACE_ID")
    assert "--model tiny-random" in choices.no_model(ModelLoadError("x", reason="x")).for_page()


def test_the_warm_up_log_counts_what_failed_and_what_did_not_run(cat_path, tiny, caplog):
    def no_weights():
        raise ModelLoadError("weights not in the local cache", reason="weights not in the local cache")

    warm = WarmUp()
    with caplog.at_level("INFO", logger="zsdemo.app.warmup"):
        warm.start(no_weights, [Example((str(cat_path),), "cat, dog", ("name",))], presets=["cifar10"],
                   background=False)          # here, before start returns (as on ZeroGPU)
    assert warm.finished and warm.failed and warm._thread is None
    assert "warm-up ended after" in caplog.text and ": 0 of 4 steps done, 1 failed, 3 not run" in caplog.text
    warm = WarmUp()
    bad = Example((str(cat_path),), "", ("name",))
    with caplog.at_level("INFO", logger="zsdemo.app.warmup"):
        warm.start(lambda: tiny, [bad], presets=(), background=False)
    assert warm.tally() == "2 of 3 steps done, 1 failed"
