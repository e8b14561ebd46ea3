"""Shared fixtures: the tiny random-weights model and images built on the fly."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from zsdemo.engine.models import get_model
from browser_support import browser  # noqa: F401  (the browser tests' Chromium, a fixture)

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="session")
def tiny():
    return get_model("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def cat_path() -> Path:
    return ASSETS / "images" / "cat.png"


def png_with_header_size(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # chunk type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def make_zip(path: Path, entries: dict[str, bytes], symlink: str | None = None, encrypted: str | None = None) -> Path:
    """A zip of ``entries``, maybe with a symbolic-link entry and an entry flagged as encrypted."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
        if encrypted:
            z.writestr(encrypted, b"x")
    if encrypted:   # zipfile cannot encrypt: set the entry's "encrypted" flag in the central directory
        data = bytearray(path.read_bytes())
        at = data.index(b"PK\x01\x02")
        while data[at + 46:at + 46 + len(encrypted)] != encrypted.encode():
            at = data.index(b"PK\x01\x02", at + 4)
        data[at + 8] |= 0x1
        path.write_bytes(bytes(data))
    return path


def save_local_dir(model, folder: Path, arch_config: dict) -> Path:
    """Save a model in open_clip's local-dir layout (config + safetensors weights)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": arch_config, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return ASSETS / "images" / "astronaut.png"


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The app launched on loopback with the tiny model (a free port); yields its URL."""
    import app

    page = app.build_app("tiny-random", None, "cpu", str(tmp_path_factory.mktemp("features")))
    _, url, _ = app.launch(page, port=None, prevent_thread_lock=True, quiet=True)
    yield url
    page.close()


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory, cat_path, astronaut_path):
    folder = tmp_path_factory.mktemp("zip")
    archive = folder / "my set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(2):
            for cls, source in (("n02123045", cat_path), ("astronaut", astronaut_path)):
                buf = io.BytesIO()
                Image.open(source).convert("RGB").rotate(k).save(buf, format="PNG")
                z.writestr(f"data/{cls}/{k}.png", buf.getvalue())
        z.writestr("data/astronaut/readme.txt", "not an image")
        z.writestr("data/astronaut/<b>bad</b>.jpg", b"not a JPEG")
    return archive
