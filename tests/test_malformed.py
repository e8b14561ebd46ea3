"""Malformed input through the three doors: the library, the CLI and the app's API.

Each case is one bad input; each door must give a clear message (or handle it correctly), never
a traceback, and the server must answer the next valid request normally. Cases are data: one
table, run through every door that can carry them (a folder path cannot be uploaded, say).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import make_zip, png_with_header_size
from gradio_client import Client, handle_file
from PIL import Image

from zsdemo import cli
from zsdemo.run import pipeline
from zsdemo.core.errors import ZsdemoError
from zsdemo.core.limits import LIMITS
from zsdemo.engine.models import load_model, resolve_spec

DOORS = ("library", "cli", "api")


@dataclass
class Case:
    id: str
    expect: str                                   # a fragment of the message (regex)
    classes: str = "cat, dog"
    strategies: str = "name"
    templates: list[str] | None = None
    image: Callable[[Path, Path], Path] | None = None   # (tmp folder, a good photo) -> the image to send
    options: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    images: int = 1                               # how many copies of the image are sent
    per_image: bool = False                       # reported on the image; the request itself succeeds
    doors: tuple[str, ...] = DOORS


def _file(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def make(tmp: Path, photo: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return make


def _truncated(tmp: Path, photo: Path) -> Path:
    data = photo.read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 3])
    return tmp / "truncated.png"


def _folder(tmp: Path, photo: Path) -> Path:
    (tmp / "a folder.png").mkdir(exist_ok=True)
    return tmp / "a folder.png"


CASES = [
    # images
    Case("empty image file", "empty", image=_file("empty.png", b""), per_image=True),
    Case("text file named .jpg", "not an image", image=_file("notes.jpg", b"hello, world\n"), per_image=True),
    Case("HTML file", "not an image", image=_file("page.png", b"<html><script>x</script></html>"),
         per_image=True),
    Case("truncated PNG", "cannot be decoded|truncated|broken", image=_truncated, per_image=True),
    Case("decompression bomb header", "megapixels|too many pixels",
         image=_file("bomb.png", png_with_header_size(30_000, 30_000)), per_image=True),
    Case("over the upload size", "MB", image=lambda tmp, photo: photo, limits={"upload_mb": 0},
         per_image=True),
    Case("a folder instead of an image", "folder", image=_folder, per_image=True, doors=("library", "cli")),
    Case("a missing file", "not found", image=lambda tmp, photo: tmp / "nowhere.png", per_image=True,
         doors=("library", "cli")),
    Case("too many images", "at most 2 are allowed", images=3, limits={"images": 2}),
    # class names
    Case("no class names", "No class names", classes=""),
    Case("only separators", "No class names", classes=" , ,\n ,"),
    Case("control characters only", "No class names", classes="\x00\x01\x1b\x7f"),
    Case("too many classes", "6 classes given; at most 5", classes="a, b, c, d, e, f", limits={"classes": 5}),
    Case("too long class name", "at most 20 are allowed", classes="cat, " + "x" * 30,
         limits={"classname_chars": 20}),
    # (through the API: test_raw_json_with_a_lone_surrogate; gradio_client cannot send one)
    Case("lone surrogate in a name", "", classes="\udcffcat, dog", doors=("library", "cli")),
    Case("HTML in class names", "", classes="<script>alert(1)</script>, <b>dog</b>"),   # served as text
    # templates and strategies
    Case("template without {}", "no '\\{\\}' placeholder", strategies="name,custom", templates=["a photo"]),
    Case("template with two {}", "has 2", strategies="name,custom", templates=["a {} or a {}"]),
    Case("too many templates", "at most 2 are allowed", strategies="custom",
         templates=["a {}.", "the {}.", "one {}."], limits={"templates": 2}),
    Case("unknown strategy", "Unknown strategy", strategies="name,nonsense"),
    Case("no strategy", "No strategy selected", strategies=" , "),
    # options
    Case("top-k zero", "top-k", options={"top_k": 0}),
    Case("unknown view", "Unknown view 'sideways'", options={"views": "sideways"}),
    Case("sense without =", "must look like", strategies="name,hierarchy", options={"senses": "cat"}),
    Case("sense that does not exist", "not a WordNet noun sense", strategies="name,hierarchy",
         options={"senses": "cat=nothing.n.99"}),
    Case("sense by an unknown WordNet id", "not a WordNet noun sense", strategies="name,hierarchy",
         options={"senses": "cat=n99999999"}),
    Case("TPT views over the limit", "TPT views must be a whole number from 2 to 16", strategies="tpt",
         options={"tpt_views": 17}, limits={"tpt_views": 16}),
    Case("TPT steps over the limit", "TPT steps must be", strategies="tpt", options={"tpt_steps": 500}),
]


@pytest.fixture
def limits():
    """Set limits for one case; every limit is back to its value when the test ends."""
    saved = dict(vars(LIMITS))

    def apply(values: dict[str, int]) -> None:
        for name, value in values.items():
            setattr(LIMITS, name, value)

    yield apply
    for name, value in saved.items():
        setattr(LIMITS, name, value)


def _image_paths(case: Case, tmp: Path, photo: Path) -> list[Path]:
    return [case.image(tmp, photo) if case.image else photo] * case.images


def _library(case: Case, tiny, paths: list[Path]):
    o = case.options
    tpt = {k: v for k, v in (("views", o.get("tpt_views")), ("steps", o.get("tpt_steps"))) if v is not None}
    return pipeline.classify(tiny, [str(p) for p in paths], case.classes, case.strategies, case.templates,
                             top_k=o.get("top_k", 5), views=o.get("views"), senses=o.get("senses"), tpt=tpt)


def _cli_args(case: Case, paths: list[Path]) -> list[str]:
    o = case.options
    args = ["classify", *map(str, paths), "--classes", case.classes, "--strategies", case.strategies,
            "--model", "tiny-random", "--device", "cpu"]
    for t in case.templates or []:
        args += ["--templates", t]
    for key, flag in (("top_k", "--top-k"), ("views", "--views"), ("senses", "--sense"),
                      ("tpt_views", "--tpt-views"), ("tpt_steps", "--tpt-steps")):
        if key in o:
            args += [flag, str(o[key])]
    return args


def _api(case: Case, client: Client, paths: list[Path]) -> dict:
    o = case.options
    kwargs = {k: o[k] for k in ("top_k", "views", "senses", "tpt_views", "tpt_steps") if k in o}
    return client.predict([handle_file(str(p)) for p in paths], case.classes, strategies=case.strategies,
                          templates="\n".join(case.templates or []), api_name="/classify", **kwargs)


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


@pytest.mark.parametrize("case, door", [pytest.param(c, d, id=f"{c.id}-{d}") for c in CASES for d in c.doors])
def test_malformed_input(case, door, tiny, cat_path, tmp_path, limits, capsys, request):
    saved_limits = dict(vars(LIMITS))
    limits(case.limits)
    paths = _image_paths(case, tmp_path, cat_path)
    if door == "library":
        if case.per_image or not case.expect:
            result = _library(case, tiny, paths)
            errors = [im.error for im in result.images]
            assert all(errors) if case.per_image else not any(errors)
            if case.expect:
                assert all(re.search(case.expect, e) for e in errors), errors
        else:
            with pytest.raises(ZsdemoError, match=case.expect):
                _library(case, tiny, paths)
    elif door == "cli":
        code = cli.main(_cli_args(case, paths))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        expected_code = cli.EXIT_IMAGE_FAILED if case.per_image else (0 if not case.expect else cli.EXIT_BAD_INPUT)
        assert code == expected_code, err
        assert re.search(case.expect, err)
    else:
        client = request.getfixturevalue("client")
        if case.per_image or not case.expect:
            result = _api(case, client, paths)
            errors = [im["error"] for im in result["images"]]
            assert all(errors) if case.per_image else not any(errors)
            if not case.expect:
                assert len(result["classes"]) == len([c for c in case.classes.split(",") if c.strip()])
        else:
            with pytest.raises(Exception, match=case.expect) as info:
                _api(case, client, paths)
            assert "Traceback" not in str(info.value)
        # The server answers the next valid request normally.
        limits(saved_limits)
        ok = client.predict([handle_file(str(cat_path))], "cat, dog", api_name="/classify")
        assert ok["images"][0]["error"] is None


# --- zips: the library (extract + read), the CLI's evaluate and the API's /evaluate ------------

ZIP_CASES = {
    "path traversal": ({"cls/a.png": b"x", "../../escape.png": b"x"}, None, "points outside"),
    "absolute path": ({"/tmp/abs.png": b"x"}, None, "absolute path"),
    "windows drive": ({"C:\\evil.png": b"x"}, None, "absolute path"),
    "symbolic link": ({"cls/a.png": b"x"}, "cls/passwd.png", "symbolic link"),
    "too many entries": ({f"cls/{i}.png": b"x" for i in range(12)}, None, "12 entries; at most 10"),
    "only non-images": ({"cls/readme.txt": b"hello", "cls/data.csv": b"a,b"}, None, "No labelled images found"),
    "labels.csv leaving the zip": ({"labels.csv": b"../../etc/passwd,cat\n/etc/hosts,dog\n"}, None,
                                   "No labelled images found"),
    "labels.csv not UTF-8": ({"labels.csv": "café.png,chat\n".encode("latin-1")}, None, "as UTF-8"),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("name", list(ZIP_CASES))
def test_malformed_zip(name, door, tmp_path, limits, capsys, request, cat_path):
    entries, link, expect = ZIP_CASES[name]
    archive = make_zip(tmp_path / "upload.zip", entries, link)
    limits({"zip_files": 10})
    if door == "library":
        from zsdemo.core.archive import extract_zip
        from zsdemo.data.labelled import open_labelled

        with pytest.raises(ZsdemoError, match=expect):
            open_labelled(extract_zip(archive, tmp_path / "out").root, confine=True)
    elif door == "cli":
        code = cli.main(["evaluate", str(archive), "--model", "tiny-random", "--device", "cpu", "--quiet",
                         "--no-cache", "--out", str(tmp_path / "report")])
        out, err = capsys.readouterr()
        assert code == cli.EXIT_BAD_INPUT and re.search(expect, err) and "Traceback" not in out + err
    else:
        client = request.getfixturevalue("client")
        with pytest.raises(Exception, match=expect) as info:
            client.predict(handle_file(str(archive)), "name", "flip", api_name="/evaluate")
        assert "Traceback" not in str(info.value)
    assert not Path("/tmp/abs.png").exists() and not (tmp_path.parent / "escape.png").exists()


# --- files, text encodings and checkpoints --------------------------------------------------

def test_cli_class_file_and_class_map_that_are_not_utf8(tmp_path, cat_path, capsys):
    bad = tmp_path / "classes.txt"
    bad.write_bytes("chat, caf\xe9".encode("latin-1"))
    assert cli.main(["classify", str(cat_path), "--classes-file", str(bad), "--model", "tiny-random"]) == 2
    assert "Cannot read class file" in capsys.readouterr().err
    (tmp_path / "set" / "cls").mkdir(parents=True)
    Image.open(cat_path).save(tmp_path / "set" / "cls" / "a.png")
    assert cli.main(["evaluate", str(tmp_path / "set"), "--class-map", str(bad), "--model", "tiny-random",
                     "--quiet", "--no-cache", "--out", str(tmp_path / "r")]) == 2
    assert "Cannot read the class-name mapping" in capsys.readouterr().err


class _Exploit:
    """Unpickling this creates a folder: the proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _pickle_bomb(path: Path, marker: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Exploit(marker)}, f)
    return path


@pytest.mark.parametrize("door", ["library", "cli"])
@pytest.mark.parametrize("kind, expect", [
    ("directory", "is a directory"),
    ("text file", "Could not load checkpoint"),
    ("pickle that runs code", "Could not load checkpoint|weights_only|Unsupported"),
    ("local-dir with a pickled .bin", "Could not load|weights_only|Unsupported"),
])
def test_malformed_checkpoints_are_refused_and_never_unpickled(kind, expect, door, tmp_path, capsys):
    marker = tmp_path / "UNPICKLED"
    if kind == "directory":
        model, pretrained = "zsdemo-tiny", str(tmp_path)
    elif kind == "text file":
        (tmp_path / "weights.pt").write_text("these are not weights")
        model, pretrained = "zsdemo-tiny", str(tmp_path / "weights.pt")
    elif kind == "pickle that runs code":
        model, pretrained = "zsdemo-tiny", str(_pickle_bomb(tmp_path / "weights.pt", marker))
    else:
        folder = tmp_path / "model"
        folder.mkdir()
        from zsdemo.engine.weights import TINY_CONFIG_DIR
        cfg = (TINY_CONFIG_DIR / "zsdemo-tiny.json").read_text()
        (folder / "open_clip_config.json").write_text('{"model_cfg": ' + cfg + ', "preprocess_cfg": {}}')
        _pickle_bomb(folder / "open_clip_pytorch_model.bin", marker)
        model, pretrained = f"local-dir:{folder}", None
    if door == "library":
        with pytest.raises(ZsdemoError, match=expect):
            load_model(resolve_spec(model, pretrained), device="cpu")
    else:
        args = ["classify", str(Path(__file__).parents[1] / "assets" / "images" / "cat.png"), "--classes", "a, b",
                "--model", model] + (["--pretrained", pretrained] if pretrained else [])
        assert cli.main(args) == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert re.search(expect, err) and "Traceback" not in err
    assert not marker.exists()


# --- the HTTP layer itself ---------------------------------------------------------------------

def test_server_serves_no_file_outside_what_it_must(live_app):
    import httpx

    repo = Path(__file__).resolve().parents[1]
    for target in ["/etc/passwd", str(repo / "app.py"), str(repo / "README.md"), "app.py",
                   "../../../../etc/passwd", str(repo / "assets" / "LICENSES.md")]:
        r = httpx.get(f"{live_app.rstrip('/')}/gradio_api/file={target}")
        assert r.status_code in (403, 404), (target, r.status_code)


def test_raw_requests_the_client_would_never_send(live_app, cat_path):
    import httpx

    base = live_app.rstrip("/") + "/gradio_api"
    # Not UTF-8 at all: refused by the server, which keeps serving.
    r = httpx.post(f"{base}/call/classify", content=b'{"data": [[], "caf\xe9"]}',
                   headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    # Valid JSON carrying a lone surrogate: the class name is cleaned and the request served.
    with open(cat_path, "rb") as f:
        uploaded = httpx.post(f"{base}/upload", files={"files": ("cat.png", f, "image/png")}).json()[0]
    image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": "cat.png"}
    # Every input of /classify in order (a raw caller sends them all): images, classes, strategies,
    # templates, top_k, consistency, views, rerank_all, senses, model, low_confidence, descriptors,
    # compare_model, support, then the methods' options, then (issue 40) sus_pool, sus_k and
    # TIP-X's options (docs/api-and-mcp.md gives the order).
    body = ('{"data": [[%s], "\\udcffcat, dog", "name", "", 5, false, "", false, "", "", "binary", "", "", null, '
            '0.4, 5, 64, 1, "", 3, 1.17, 1, 0, "16", 50, 0.1, 0, 0.316, 0.25, null, 4, null, null, null, 0.5]}'
            % json.dumps(image)).encode("ascii")
    event = httpx.post(f"{base}/call/classify", content=body, headers={"content-type": "application/json"}).json()
    stream = httpx.get(f"{base}/call/classify/{event['event_id']}", timeout=60).text
    assert "event: complete" in stream and '"cat"' in stream and "Traceback" not in stream
