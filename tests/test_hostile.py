"""A public Space is called by anyone with anything: each numbered finding of the hostile review.

1. The API reads no server file.  2. One request cannot crash or stall the server.
3. Visitors cannot make the server build any model.  4. Each request has a memory and time budget.
5. Every bad input is one clear message, never a traceback.  6. No wrong result without a word.
(The malformed-input table in test_malformed.py covers the ordinary bad inputs.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import save_local_dir
from gradio_client import Client, handle_file
from PIL import Image

from zsdemo.prompts import classnames
from zsdemo import cli
from zsdemo.app import choices, classifying, state
from zsdemo.engine import images, models, weights
from zsdemo.run import pipeline
from zsdemo.wordnet import senses as wordnet
from zsdemo.engine import text as text_encoding
from zsdemo.prompts.descriptors import parse_descriptors
from zsdemo.core.errors import ImageError, InputError, ModelLoadError
from zsdemo.core.files import NOT_SENT, UploadPolicy, read_bytes
from zsdemo.core.limits import LIMITS
from zsdemo.strategies import tpt
from zsdemo.engine import context

CONFIG = state.AppConfig("tiny-random", None, "cpu", None)


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def finishes(fn, seconds: float = 20.0):
    """Run ``fn`` in a thread; its result, or a failure if it is still blocked after ``seconds``."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def server_paths(tmp_path: Path, cat_path: Path, fifo: Path) -> dict[str, str]:
    """Strings naming things on the server's disk that no request uploaded."""
    photo = tmp_path / "private photo.png"
    shutil.copy(cat_path, photo)
    (tmp_path / "folder").mkdir(exist_ok=True)
    return {"a photo never uploaded": str(photo), "the password file": "/etc/passwd",
            "a missing file": str(tmp_path / "missing.png"), "a folder": str(tmp_path / "folder"),
            "a device that never ends": "/dev/zero", "a FIFO": str(fifo),
            "a path leaving the upload folder": "/tmp/gradio/../../etc/passwd"}


# --- 1. the API reads no server file ----------------------------------------------------------

def test_api_refuses_every_server_path_with_one_message(client, tmp_path, cat_path, fifo):
    messages = set()
    for what, path in server_paths(tmp_path, cat_path, fifo).items():
        with pytest.raises(Exception) as info:
            finishes(lambda: client.predict([path], "cat, dog", api_name="/classify"))
        text = str(info.value)
        assert NOT_SENT in text and "Traceback" not in text, what
        messages.add(text)
        with pytest.raises(Exception, match="not uploaded") as info:
            finishes(lambda: client.predict(path, "name", "flip", api_name="/evaluate"))
    assert len(messages) == 1       # the same words whatever is (or is not) at that path
    # ... and the server keeps serving.
    ok = client.predict([handle_file(str(cat_path))], "cat, dog", api_name="/classify")
    assert ok["images"][0]["error"] is None


def test_raw_http_file_record_naming_a_server_path_is_refused(live_app, tmp_path, cat_path):
    import httpx

    photo = tmp_path / "never uploaded.png"
    shutil.copy(cat_path, photo)
    base = live_app.rstrip("/") + "/gradio_api"
    for path in (str(photo), "/etc/passwd"):
        record = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
        body = json.dumps({"data": [[record], "cat, dog", "name", "", 5, False, "", False, "", 1, 64, ""]})
        event = httpx.post(f"{base}/call/classify", content=body, headers={"content-type": "application/json"})
        if event.status_code != 200:
            assert 400 <= event.status_code < 500
            continue
        stream = httpx.get(f"{base}/call/classify/{event.json()['event_id']}", timeout=60).text
        assert "event: error" in stream and "passwd: not an image" not in stream and "root:" not in stream


def test_panels_never_open_a_path_that_came_back_from_the_browser(cat_path):
    run = classifying.run(CONFIG, [str(cat_path)], "cat, dog", ["name"], consistency=True)
    forged = state.Run(run.result, ["/etc/passwd"])
    assert classifying.panels(CONFIG, forged, 0).views == []       # drawn without thumbnails; nothing read
    assert classifying.panels(CONFIG, run, 0).views                # the real upload still has them


def test_upload_policy_accepts_only_regular_files_inside_its_folders(tmp_path, fifo):
    inside = tmp_path / "uploads"
    inside.mkdir()
    (inside / "a.png").write_bytes(b"x")
    (inside / "link.png").symlink_to("/etc/passwd")
    policy = UploadPolicy.of([inside])
    assert policy.check(str(inside / "a.png")) == os.path.realpath(inside / "a.png")
    assert policy.check({"path": str(inside / "a.png")}) == os.path.realpath(inside / "a.png")
    for bad in (str(inside / "link.png"), str(inside), str(inside / ".." / "uploads2"), str(fifo), 42, None,
                {"url": "http://example.com"}, "a\x00b", "x" * 10_000):
        with pytest.raises(InputError, match="not uploaded"):
            policy.check(bad)


# --- 2. nothing a path names can crash or stall a reader ----------------------------------------

def test_cli_and_library_read_only_regular_files(tmp_path, fifo, capsys, cat_path):
    for path, expect in (("/dev/zero", "not a regular file"), (str(fifo), "not a regular file"),
                         (str(tmp_path), "folder")):
        with pytest.raises(ImageError, match=expect):
            finishes(lambda: images.load_image(path))
        code = finishes(lambda: cli.main(["classify", path, "--classes", "cat, dog", "--model", "tiny-random"]))
        err = capsys.readouterr().err
        assert code == cli.EXIT_IMAGE_FAILED and expect in err and "Traceback" not in err
    classes_file = finishes(lambda: cli.main(["classify", str(cat_path), "--classes-file", str(fifo),
                                              "--model", "tiny-random"]))
    assert classes_file == cli.EXIT_BAD_INPUT and "not a regular file" in capsys.readouterr().err


def test_size_is_checked_before_reading(tmp_path):
    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as f:            # 20 GB on paper, nothing on disk
        f.truncate(20 * 2**30)
    with pytest.raises(ImageError, match="the limit is 50 MB"):
        finishes(lambda: read_bytes(sparse, "huge.png", 50 * 2**20, ImageError), 5)


# --- 3. models a visitor may pick ---------------------------------------------------------------

@pytest.mark.parametrize("choice, expect", [
    ("ViT-L-14", "no pretrained tag"), ("ViT-bigG-14", "no pretrained tag"),
    ("local-dir:/etc", "whoever starts the server"), ("ViT-B-32 /etc/passwd", "whoever starts the server"),
    ("hf-hub:../../etc", "not a Hugging Face model id"), ("hf-hub:a/b/c", "not a Hugging Face model id"),
    ("x" * 400, "at most 300"),
])
def test_visitors_cannot_pick_random_weights_or_files(choice, expect):
    before = models.REGISTRY.loaded()
    with pytest.raises(ModelLoadError, match=expect):
        choices.pick_model(CONFIG, choice)
    assert models.REGISTRY.loaded() == before          # nothing was built


def test_operator_flag_allows_bare_architectures(monkeypatch):
    seen = []
    monkeypatch.setattr(models, "get_model", lambda *a, **k: seen.append(a))
    choices.pick_model(state.AppConfig("tiny-random", None, "cpu", None, allow_random=True), "zsdemo-tiny")
    assert seen == [("zsdemo-tiny", None, "cpu")]


def test_a_model_that_does_not_fit_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setattr(models, "free_memory", lambda dev: 2**20)
    with pytest.raises(ModelLoadError, match="needs about .* GB of memory"):
        models.load_model(models.resolve_spec("zsdemo-tiny"), device="cpu")
    assert models.parameter_bytes("ViT-bigG-14") > 9 * 2**30        # known from the config, built on "meta"


def test_the_served_model_is_never_evicted(tiny):
    registry = models.ModelRegistry(max_models=0)
    registry.pin("tiny-random", device="cpu")
    served = registry.get("tiny-random", device="cpu")
    other = registry.get("tiny-random", device="cpu", precision="amp")    # a visitor's other choice
    assert other is not served
    assert registry.get("tiny-random", device="cpu") is served  # not reloaded: still there
    assert [k[-1] for k in registry.loaded()] == ["fp32"]       # the visitor's model went instead


# --- 4. a memory and time budget per request ------------------------------------------------------

def test_large_images_are_decoded_small(tmp_path):
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(tmp_path / "big.png")
    Image.new("RGB", (4000, 3000), (30, 200, 30)).save(tmp_path / "big.jpg", quality=80)
    for name in ("big.png", "big.jpg"):
        loaded = images.load_image(tmp_path / name)
        assert loaded.image.width * loaded.image.height <= images.WORKING_PIXELS
        assert (loaded.width, loaded.height) == (4000, 3000)           # the file's size is reported
        assert loaded.image.width / loaded.image.height == pytest.approx(4 / 3, rel=0.01)
        assert any("decoded at" in n for n in loaded.warnings)
    small = images.load_image(Path(__file__).parents[1] / "assets" / "images" / "cat.png")
    assert small.image.size == (451, 300) and not small.warnings             # untouched


def test_many_page_tiff_is_not_walked(tmp_path):
    frames = [Image.new("L", (1, 1), i % 256) for i in range(3000)]
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    loaded = finishes(lambda: images.load_image(tmp_path / "pages.tif"), 10)
    assert loaded.image.size == (1, 1) and "multi-page" in loaded.warnings[0]


@pytest.mark.parametrize("kwargs, limits, expect", [
    ({"classnames": [f"c{i}" for i in range(2000)], "strategies": "clip80"}, {},
     "2,000 classes x 80 templates = 160,000 text prompts; at most 100,000"),
    ({"classnames": [f"c{i}" for i in range(1300)], "strategies": "name", "consistency": True}, {},
     "consistency check"),
    ({"classnames": [f"c{i}" for i in range(30)], "strategies": "hierarchy"}, {"wordnet_classes": 20},
     "at most 20 are read in WordNet"),
    ({"classnames": [f"{i} " + "xy " * 300 for i in range(400)], "strategies": "name"}, {},
     "add up to .* characters; at most 300,000"),
    ({"classnames": "a," * 200_000, "strategies": "name"}, {}, "add up to 400,000 characters"),
    ({"classnames": ["cat", "x" * 101], "strategies": "name"}, {}, "a word of 101 letters"),
])
def test_request_size_limits(kwargs, limits, expect, monkeypatch):
    for name, value in limits.items():
        monkeypatch.setattr(LIMITS, name, value)
    with pytest.raises(InputError, match=expect):
        pipeline.prepare_request(**kwargs)


def test_tpt_work_per_request_is_bounded(tiny, cat_path, monkeypatch):
    monkeypatch.setattr(LIMITS, "tpt_class_images", 10)
    with pytest.raises(InputError, match="TPT on 3 images x 4 classes: at most 10"):
        pipeline.classify(tiny, [str(cat_path)] * 3, "a, b, c, d", "tpt", cache=None)
    assert pipeline.classify(tiny, [str(cat_path)] * 2, "a, b, c, d", "tpt", cache=None, tpt={"views": 8})


def test_long_names_of_short_words_are_fine():
    name = "-".join(["pneumonoultramicroscopicsilicovolcanoconiosis"] * 20)    # 919 characters
    assert pipeline.prepare_request(["cat", name], "name").classnames[1] == name


def test_wordnet_endpoint_has_the_class_limits(monkeypatch):
    monkeypatch.setattr(LIMITS, "wordnet_classes", 3)
    with pytest.raises(InputError, match="at most 3 are read in WordNet"):
        choices.wordnet_senses("cat, dog, crane, heron")
    with pytest.raises(InputError, match="at most 1000"):
        choices.wordnet_senses("cat, " + "x" * 1001)


def test_fair_lock_gives_a_waiting_request_the_next_turn():
    lock = models.FairLock()
    order: list[str] = []
    big_has_lock = threading.Event()

    def big():
        for turn in range(50):
            with lock:
                big_has_lock.set()
                order.append("big")
                time.sleep(0.002)

    def small():
        big_has_lock.wait()
        with lock:
            order.append("small")

    threads = [threading.Thread(target=big), threading.Thread(target=small)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # The small request waited for the turn in progress (and maybe the one that started while
    # it queued), never for the rest of the 50.
    assert order.index("small") <= 3
    with lock:
        with lock:              # re-entrant: a turn may call code that takes the lock again
            assert lock.locked()
    assert not lock.locked()


def test_text_encoding_takes_the_model_in_turns(tiny, monkeypatch):
    turns = []
    real = tiny.lock.acquire
    monkeypatch.setattr(tiny.lock, "acquire", lambda: turns.append(1) or real())
    text_encoding.encode_prompts(tiny, [f"class {i}" for i in range(10)], cache=None, batch_size=3)
    assert len(turns) == 4      # one turn per batch of prompts, none held across batches


def test_a_batch_of_long_prompts_is_a_short_turn():
    lengths = torch.tensor([5] * 300 + [77] * 100)
    batches = text_encoding.length_batches(torch.argsort(lengths, stable=True), lengths, 256, 256 * 24)
    assert [len(b) for b in batches] == [256, 79, 65]     # a batch holding 77-token prompts: 79 at most
    assert torch.equal(torch.cat(batches), torch.arange(400))
    assert all(len(b) * int(lengths[b].max()) <= 256 * 24 for b in batches)


def test_a_small_request_is_served_during_a_large_one(tiny, cat_path):
    names = [f"thing number {i}" for i in range(6000)]
    big = threading.Thread(target=lambda: text_encoding.encode_prompts(tiny, names, cache=None, batch_size=64))
    big.start()
    while not tiny.lock.locked():
        time.sleep(0.001)
    pipeline.classify(tiny, [str(cat_path)], "cat, dog", "name", cache=None)
    small_done_while_big_ran = big.is_alive()
    big.join()
    assert small_done_while_big_ran


def test_tpt_gradient_in_class_chunks_is_the_one_pass_gradient(tiny, cat_path, monkeypatch):
    classes = ["cat", "dog", "rocket", "astronaut", "mug", "crane", "heron"]
    image = images.load_image(cat_path).image
    parts = tpt.prompt_parts(tiny, classes)
    whole = tpt.tune(tiny, image, parts, tpt.TPTSettings(steps=2))
    monkeypatch.setattr(context, "CPU_CLASS_CHUNK", 2)
    chunked = tpt.tune(tiny, image, parts, tpt.TPTSettings(steps=2))
    assert torch.allclose(whole.ctx_after, chunked.ctx_after, atol=1e-6)
    assert torch.allclose(whole.logits_after, chunked.logits_after, atol=1e-4)


def test_prompt_cache_counts_what_it_holds(tiny):
    cache = text_encoding.TextFeatureCache(max_bytes=10 * 2**20)
    text_encoding.encode_prompts(tiny, [f"prompt {i}" for i in range(300)], cache, batch_size=64)
    row = cache.get(tiny.identity, ["prompt 5"])[0]
    assert row.untyped_storage().nbytes() == row.numel() * 4     # owns its numbers: no shared matrix
    view = torch.zeros(1000, 32)[3]
    assert text_encoding.entry_bytes(("m", "p"), view) >= 1000 * 32 * 4      # a view is charged its whole storage
    assert cache.nbytes >= 300 * (32 * 4 + text_encoding.ENTRY_OVERHEAD_BYTES)


def test_tokenizer_cache_is_bounded(tiny, monkeypatch):
    cache = tiny.tokenizer.cache
    assert isinstance(cache, models.BoundedCache)
    monkeypatch.setattr(models, "TOKENIZER_CACHE_CHARS", cache.chars + 500)
    before = dict(cache)
    text_encoding.encode_prompts(tiny, [f"unseenword{i}x" for i in range(300)], cache=None)
    assert cache.chars <= models.TOKENIZER_CACHE_CHARS and len(cache) < len(before) + 300
    assert all(cache[k] == v for k, v in before.items())           # nothing learnt was dropped


# --- 5. one clear line, never a traceback ------------------------------------------------------

def _zip(path: Path, entries: dict[str, bytes], utf8_patch: tuple[bytes, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            z.writestr(info, data)
    if utf8_patch:      # a name flagged UTF-8 (bit 11) whose bytes are not UTF-8
        data = bytearray(path.read_bytes().replace(*utf8_patch))
        for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.find(sig)
            while at >= 0:
                data[at + off + 1] |= 0x08
                at = data.find(sig, at + 4)
        path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def png_bytes(cat_path) -> bytes:
    return cat_path.read_bytes()


SHIPPED_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"

CLI_CASES = {
    "300-character path component": (lambda t, png: ["classify", str(t / ("x" * 300 + ".png")), "--classes", "a, b"],
                                     1, "File name too long"),
    "TPT seed past 2**64": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "a, b", "--strategies",
                                            "tpt", "--tpt-seed", str(2**64)], 2, "TPT seed must be"),
    "hub id that climbs": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "a, b", "--model",
                                           "hf-hub:../../etc"], 2, "not a Hugging Face model id"),
    "malformed hub id": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "a, b", "--model",
                                         "hf-hub:a b/c"], 2, "not a Hugging Face model id"),
    "device meta": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "a, b", "--device", "meta"],
                    2, "Unknown device 'meta'"),
    "crane.n.0": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "crane, heron", "--sense",
                                  "crane=crane.n.0"], 2, "numbered from 01"),
    "crane.n.-1": (lambda t, png: ["classify", str(t / "cat.png"), "--classes", "crane, heron", "--sense",
                                   "crane=crane.n.-1"], 2, "numbered from 01"),
    "zip: a file and a folder of one name": (
        lambda t, png: ["evaluate", str(_zip(t / "clash.zip", {"cat/a.png": png, "dog/b.png": png,
                                                               "dog/b.png/c.png": png}))], 0, "written"),
    "zip: over-long entry name": (
        lambda t, png: ["evaluate", str(_zip(t / "long.zip", {"cat/a.png": png, "dog/" + "y" * 300 + ".png": png,
                                                              "dog/b.png": png}))], 0, "written"),
    "zip: entry names not UTF-8": (
        lambda t, png: ["evaluate", str(_zip(t / "bad.zip", {"cat/aQQ.png": png}, (b"aQQ", b"a\xff\xfe")))],
        2, "not valid UTF-8"),
    "CSV with a 200 KB field": (
        lambda t, png: (t.joinpath("big.csv").write_text("x" * 200_000 + ",cat\n"), ["evaluate", str(t / "big.csv")])[1],
        2, "not a readable CSV"),
    "CSV path with a NUL byte": (
        lambda t, png: (t.joinpath("nul.csv").write_text("cat.png,cat\nc\x00at.png,dog\n"),
                        ["evaluate", str(t / "nul.csv")])[1], 0, "written"),
    "--out naming a file": (
        lambda t, png: (t.joinpath("taken").write_text("x"), ["evaluate", str(t / "set"), "--out", str(t / "taken")])[1],
        2, "Cannot write the report"),
    "--cache naming a file": (
        lambda t, png: (t.joinpath("cachefile").write_text("x"),
                        ["evaluate", str(t / "set"), "--cache", str(t / "cachefile")])[1], 2, "feature cache"),
    "deeply nested --class-map": (
        lambda t, png: (t.joinpath("map.json").write_text("[" * 100_000 + "]" * 100_000),
                        ["evaluate", str(t / "set"), "--class-map", str(t / "map.json")])[1], 2, "not valid JSON|nests"),
    "descriptors 1,000 levels deep": (
        lambda t, png: (t.joinpath("d.json").write_text('{"cat": ' + "[" * 1000 + "]" * 1000 + "}"),
                        ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "dclip",
                         "--descriptors", str(t / "d.json")])[1], 2, "descriptors: the JSON nests too deeply"),
    "descriptors 100,000 levels deep": (
        lambda t, png: (t.joinpath("d.json").write_text('{"cat": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                        ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "dclip",
                         "--descriptors", str(t / "d.json")])[1], 2, r"nests too deeply \(100,001 levels"),
    "a top-level array 100,000 deep as descriptors to evaluate": (
        lambda t, png: (t.joinpath("d.json").write_text("[" * 100_000 + "]" * 100_000),
                        ["evaluate", str(t / "set"), "--strategies", "name,dclip",
                         "--descriptors", str(t / "d.json")])[1], 2, "descriptors: the JSON nests too deeply"),
    "attributes 5,000 levels deep": (
        lambda t, png: ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "perception",
                        "--attributes", '{"a": ' + '{"b": ' * 5000 + "1" + "}" * 5001], 2,
        "attributes: the JSON nests too deeply"),
    "100,001 descriptors for one class": (
        lambda t, png: (t.joinpath("d.json").write_text(json.dumps({"cat": [f"d{i}" for i in range(100_001)]})),
                        ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "dclip",
                         "--descriptors", str(t / "d.json")])[1], 2, "100,001 descriptors given; at most 100,000"),
    "--coop-save into a missing folder": (
        lambda t, png: ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "coop",
                        "--support", str(t / "set"), "--coop-save", str(t / "missing" / "ctx.safetensors")],
        2, "folder that does not exist"),
    "--coop-save naming a folder": (
        lambda t, png: ["classify", str(t / "cat.png"), "--classes", "cat, dog", "--strategies", "coop",
                        "--support", str(t / "set"), "--coop-save", str(t)], 2, "it is a folder: name a file"),
    "deeply nested object --class-map": (
        lambda t, png: (t.joinpath("map.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000),
                        ["evaluate", str(t / "set"), "--class-map", str(t / "map.json")])[1], 2, "nests too deeply"),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_answers_hostile_input_with_one_line(name, tmp_path, png_bytes, capsys):
    (tmp_path / "cat.png").write_bytes(png_bytes)
    for cls in ("cat", "dog"):
        (tmp_path / "set" / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / "set" / cls / "a.png").write_bytes(png_bytes)
    make, code, expect = CLI_CASES[name]
    args = make(tmp_path, png_bytes)
    if args[0] == "evaluate":
        args += ["--quiet", "--no-cache", "--views", "hflip"] + ([] if "--out" in args else ["--out", str(tmp_path / "r")])
        if "--cache" in args:
            args.remove("--no-cache")
    args += [] if "--model" in args else ["--model", "tiny-random"]
    assert cli.main(args) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert re.search(expect, out + err), out + err
    if code:
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("raw, expect", [
    ('null', "No class names"), ('5', "classes must be text"),
])
def test_api_wrong_types_for_classes(live_app, cat_path, raw, expect):
    _raw_call(live_app, cat_path, {"classes": raw}, expect)


@pytest.mark.parametrize("field, raw, expect", [
    ("top_k", '"5"', "top-k must be a whole number"), ("top_k", "2.5", "top-k must be a whole number"),
    ("tpt_views", "NaN", "TPT views must be a whole number"), ("tpt_views", "Infinity", "TPT views must be"),
    ("tpt_views", "2.5", "TPT views must be"), ("tpt_steps", "-Infinity", "TPT steps must be"),
    ("consistency", '"false"', "consistency must be true or false"),
    ("strategies", "[1, 2]", "strategies must be text"), ("senses", "{\"crane\": 4}", "senses must map text"),
    ("images", '"cat.png"', "images must be a list"), ("images", "[" + ",".join(['"x"'] * 65) + "]", "at most 64"),
    ("model", '"ViT-L-14"', "no pretrained tag"),
    ("wordnet_keep", "NaN", "keep fraction must be a finite number"), ("wordnet_keep", '"lots"', "must be a number"),
    ("wordnet_keep", "7", "above 0 and at most 1"), ("low_confidence", "[1]", "low_confidence must be text"),
    ("low_confidence", '"s_t<2"', "Unknown low-confidence rule"), ("rerank_top", "2.5", "Re-rank top-k must be"),
    ("descriptors", "[1]", "descriptors must be text"), ("descriptors", '"{\\"cat\\": 5}"', "must be a list of text"),
    ("descriptors", json.dumps('{"cat": ' + "[" * 100_000 + "]" * 100_000 + "}"), "descriptors: the JSON nests too"),
    ("descriptors", json.dumps("[" * 100_000 + "]" * 100_000), "descriptors: the JSON nests too deeply"),
    ("attributes", json.dumps('{"a": ' + '{"b": ' * 5000 + "1" + "}" * 5001), "attributes: the JSON nests too"),
    ("attributes", "[1]", "attributes must be text"), ("attributes", '"orientation"', "has no ':'"),
    ("attributes", '"a: 1,2,3,4,5; b: 1,2,3,4,5; c: 1,2,3,4,5; d: 1,2,3,4,5"', "625 combinations"),
    ("perception_temperature", "NaN", "temperature must be a finite number"),
    ("perception_temperature", "0", "temperature must be a number from"),
    ("compare_model", "[1]", "compare_model must be text"), ("compare_model", '"ViT-L-14"', "no pretrained tag"),
    ("compare_model", '"local-dir:/etc"', "only be chosen by whoever starts the server"),
    ("support", '"/etc/passwd"', "support set was not uploaded"),
    ("support", json.dumps(str(SHIPPED_PHOTO)), "support set was not uploaded"), ("tip_alpha", "NaN", "alpha must be a finite number"),
    ("tip_beta", "-2", "beta must be a number from 0"), ("val_fraction", '"half"', "validation fraction must be"),
    ("coop_context", '"8"', "must be '16'"), ("coop_epochs", "1e9", "CoOp epochs must be a whole number"),
])
def test_api_wrong_types_get_their_own_message(live_app, cat_path, field, raw, expect):
    _raw_call(live_app, cat_path, {field: raw}, expect)


# The order docs/api-and-mcp.md gives: the request's own arguments, then the methods' options as declared.
ARGS = ("images", "classes", "strategies", "templates", "top_k", "consistency", "views", "rerank_all", "senses",
        "model", "low_confidence", "descriptors", "compare_model", "support", "wordnet_keep", "rerank_top",
        "tpt_views", "tpt_steps", "attributes", "perception_temperature", "tip_alpha", "tip_beta", "val_fraction",
        "coop_context", "coop_epochs", "gda_alpha", "gda_val_fraction", "probe_c", "probe_val_fraction",
        # issue 40, appended: SuS's pool and k, then TIP-X's options
        "sus_pool", "sus_k", "tipx_alpha", "tipx_beta", "tipx_gamma", "tipx_temperature")


def _raw_call(live_app: str, cat_path: Path, raw: dict[str, str], expect: str) -> None:
    """/classify through raw HTTP, as a script that skips gradio_client would call it."""
    import httpx

    base = live_app.rstrip("/") + "/gradio_api"
    with open(cat_path, "rb") as f:
        uploaded = httpx.post(f"{base}/upload", files={"files": ("cat.png", f, "image/png")}).json()[0]
    image = json.dumps([{"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "cat.png"}])
    values = {"images": image, "classes": '"cat, dog"', "strategies": '"name,tpt"', "templates": '""',
              "top_k": "5", "consistency": "false", "views": '""', "rerank_all": "false", "senses": '""',
              "tpt_steps": "1", "tpt_views": "8", "model": '""', "wordnet_keep": "0.4", "low_confidence": '"binary"',
              "rerank_top": "5", "descriptors": '""', "attributes": '""', "perception_temperature": "3",
              "compare_model": '""', "support": "null", "tip_alpha": "1.17", "tip_beta": "1", "val_fraction": "0",
              "coop_context": '"16"', "coop_epochs": "50", "gda_alpha": "0.1", "gda_val_fraction": "0",
              "probe_c": "0.316", "probe_val_fraction": "0.25", "sus_pool": "null", "sus_k": "4",
              "tipx_alpha": "null", "tipx_beta": "null", "tipx_gamma": "null", "tipx_temperature": "0.5", **raw}
    body = '{"data": [' + ", ".join(values[a] for a in ARGS) + "]}"
    event = httpx.post(f"{base}/call/classify", content=body, headers={"content-type": "application/json"})
    assert event.status_code == 200, event.text
    stream = httpx.get(f"{base}/call/classify/{event.json()['event_id']}", timeout=60).text
    assert "event: error" in stream, stream[:300]
    assert re.search(expect, stream), stream[:400]
    assert "Something went wrong" not in stream and "Traceback" not in stream


# --- 6. no wrong result without a word ---------------------------------------------------------

@pytest.mark.parametrize("space", ["\u00a0", "\t", "\u3000", "\u2009", "  \u00a0 "])
def test_any_whitespace_inside_a_name_is_one_space(space):
    assert classnames.parse_classnames([f"ice{space}cream", "dog"]).names == ("ice cream", "dog")


def test_a_sense_of_another_word_is_explained(cat_path):
    request = pipeline.prepare_request("crane, heron", "hierarchy", senses="crane=dog.n.01")
    assert any("not one of WordNet's senses of 'crane'" in w for w in request.warnings)
    own = pipeline.prepare_request("crane, heron", "hierarchy", senses="crane=crane.n.05")
    assert not any("not one of" in w for w in own.warnings)
    for bad in ("crane.n.0", "crane.n.-1", "crane.n.x", "crane.n.01; rm", "crane.v.01"):
        with pytest.raises(InputError):
            wordnet.synset_by_id(bad)


def test_local_dir_without_weights_is_refused(tmp_path, tiny):
    folder = save_local_dir(tiny.model, tmp_path / "model",
                            json.loads((weights.TINY_CONFIG_DIR / "zsdemo-tiny.json").read_text()))
    for file in folder.glob("*.safetensors"):
        file.unlink()
    with pytest.raises(ModelLoadError, match="has a config but no weights"):
        models.load_model(models.resolve_spec(f"local-dir:{folder}"), device="cpu")


def test_float_counts_are_refused_like_top_k(cat_path):
    for kwargs, expect in (({"tpt_views": 2.5}, "TPT views"), ({"tpt_steps": 1.5}, "TPT steps"),
                           ({"top_k": 2.5}, "top-k")):
        with pytest.raises(InputError, match=expect):
            classifying.run(CONFIG, [str(cat_path)], "cat, dog", ["name", "tpt"], **kwargs)
    ok = classifying.run(CONFIG, [str(cat_path)], "cat, dog", ["name"], top_k=2.0, tpt_views=16.0)
    assert ok.result.top_k == 2


def test_too_many_descriptors_are_refused_before_any_work(client, cat_path):
    """100,001 descriptors of one class: refused while reading them (52-89 s of deduplication before)."""
    text = json.dumps({"cat": [f"descriptor {i}" for i in range(100_001)]})
    with pytest.raises(Exception, match="100,001 descriptors given; at most 100,000") as info:
        finishes(lambda: client.predict([handle_file(str(cat_path))], "cat, dog", "dclip", descriptors=text,
                                        api_name="/classify"), 30)
    assert "Traceback" not in str(info.value)
    with pytest.raises(InputError, match="100,001 descriptors"):
        finishes(lambda: parse_descriptors(text, ["cat", "dog"]), 5)


def test_shipped_photos_are_images_only_never_a_support_set_or_a_zip(client):
    """The page's examples name shipped photos as images; no other argument may name them."""
    with pytest.raises(Exception, match="The support set was not uploaded") as info:
        client.predict([str(SHIPPED_PHOTO)], "cat, dog", "name,tip", support=str(SHIPPED_PHOTO), api_name="/classify")
    assert "neither a folder" not in str(info.value)
    with pytest.raises(Exception, match="The zip was not uploaded") as info:
        client.predict(str(SHIPPED_PHOTO), "name", api_name="/evaluate")
    assert "not a readable zip" not in str(info.value)
    # ... while an image argument naming one is what the examples send.
    out = client.predict([str(SHIPPED_PHOTO)], "cat, dog", "name", api_name="/classify")
    assert out["images"][0]["source"] == "cat.png" and out["images"][0]["error"] is None


def test_a_zip_of_more_images_than_can_be_evaluated_is_refused_before_extraction(client, tmp_path, monkeypatch):
    """10,000 tiny files: counted from the zip's directory, refused before anything is extracted."""
    from zsdemo.core import archive

    png = io_png()
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as z:
        for k in range(10_000):
            z.writestr(f"c{k % 2}/{k}.png", png)
    with pytest.raises(Exception, match="10000 images found; at most 2000") as info:
        finishes(lambda: client.predict(handle_file(str(path)), "name", views="flip", api_name="/evaluate"), 60)
    assert "Traceback" not in str(info.value)
    from zsdemo.data import labelled

    extracted = []
    monkeypatch.setattr(labelled, "extract_zip", lambda *a, **k: extracted.append(a))
    with pytest.raises(InputError, match="10000 images found"):
        labelled.open_zip(path, tmp_path / "out", max_images=2_000)
    assert not extracted
    assert archive.count_entries(path, labelled.IMAGE_SUFFIXES) == 10_000


def io_png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    return buf.getvalue()


def test_support_rows_pointing_outside_the_zip_are_counted_in_a_warning(client, tmp_path, cat_path, astronaut_path):
    rows = ["cat/a.png,cat", "astronaut/b.png,astronaut", "/etc/passwd,cat", "../../x/cat.png,astronaut",
            "cat/missing.png,cat"]
    path = tmp_path / "support.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, photo in (("cat/a.png", cat_path), ("astronaut/b.png", astronaut_path)):
            import io

            buf = io.BytesIO()
            Image.open(photo).convert("RGB").rotate(90).save(buf, format="PNG")   # not the scored bytes
            z.writestr(name, buf.getvalue())
        z.writestr("labels.csv", "\n".join(rows) + "\n")
    out = client.predict([handle_file(str(cat_path))], "cat, astronaut", "name,tip",
                         support=handle_file(str(path)), api_name="/classify")
    notes = [w for w in out["warnings"] if "left out" in w]
    assert len(notes) == 1 and notes[0].startswith("3 row(s) or file(s) of the support set were left out")
    assert "'/etc/passwd' (path outside the uploaded folder: refused)" in notes[0]
    assert "../../x/cat.png" in notes[0] and "file not found" in notes[0]


def test_messages_name_the_visitors_file_never_a_server_path(client, tmp_path, cat_path):
    """Uploads live in server folders (Gradio's upload folder, zsdemo's extraction folders): a
    message names the file as the visitor sent it, or its name inside the archive."""
    empty, png_named = tmp_path / "empty.zip", tmp_path / "good_zip_named.png"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "no images here")
    png_named.write_bytes(cat_path.read_bytes())
    calls = [
        (lambda: client.predict(handle_file(str(empty)), "name", views="flip", api_name="/evaluate"),
         "No labelled images found in 'empty.zip'"),
        (lambda: client.predict([handle_file(str(cat_path))], "cat, dog", "name,tip", support=handle_file(str(empty)),
                                api_name="/classify"), "Support set: No labelled images found in 'empty.zip'"),
        (lambda: client.predict([handle_file(str(cat_path))], "cat, dog", "name,tip",
                                support=handle_file(str(png_named)), api_name="/classify"),
         "'good_zip_named.png' is neither a folder nor a .csv file"),
    ]
    for call, expect in calls:
        with pytest.raises(Exception, match=re.escape(expect)) as info:
            call()
        message = str(info.value)
        assert "/tmp/" not in message and "gradio" not in message.lower() and "zsdemo-" not in message, message


def _raw_event(live_app: str, endpoint: str, data: list) -> str:
    import httpx

    base = live_app.rstrip("/") + "/gradio_api"
    event = httpx.post(f"{base}/call/{endpoint}", content=json.dumps({"data": data}),
                       headers={"content-type": "application/json"})
    assert event.status_code == 200, event.text
    return httpx.get(f"{base}/call/{endpoint}/{event.json()['event_id']}", timeout=60).text


@pytest.mark.parametrize("endpoint, data, expect", [
    ("classify", [[{"path": "/tmp/never/uploaded.png", "meta": {"_type": "gradio.FileData"}}], "cat, dog", "name"]
     + [None] * 32, "A file in this request was not uploaded with it"),
    ("classify", [[{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}], "cat, dog", "name"] + [None] * 32,
     "A file in this request was not uploaded with it"),
    ("classify", [[{"path": "http://127.0.0.1:1/x.png", "url": "http://127.0.0.1:1/x.png",
                    "meta": {"_type": "gradio.FileData"}}], "cat, dog", "name"] + [None] * 32,
     "A file URL in this request could not be fetched"),
    ("classify", [[], "cat"], "This endpoint takes 35 arguments and 2 were sent"),
    ("evaluate", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}] + [None] * 28,
     "A file in this request was not uploaded with it"),
    ("wordnet", [], "This endpoint takes 2 arguments and 0 were sent"),
])
def test_gradios_own_refusals_reach_a_raw_caller_in_words(live_app, endpoint, data, expect):
    stream = _raw_event(live_app, endpoint, data)
    assert "event: error" in stream and '"error": null' not in stream, stream[:300]
    assert expect in stream and "Traceback" not in stream and "root:" not in stream, stream[:400]
