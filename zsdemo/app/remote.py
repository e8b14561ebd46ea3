"""Files that API and MCP callers send as URLs: http(s), or ``data:`` with base64 content.

An agent holding an image on its own machine sends it inline, as ``data:image/png;base64,...``.
Its length is checked against the upload limit before a byte is decoded, and the decoded file
is written to the upload folder and checked like any upload (not an image, too many pixels).

Gradio hands a URL to a ``gr.api`` function as it is, without downloading it. Here it is downloaded with
Gradio's own SSRF protection (``safehttpx``, Gradio's dependency: the host must resolve to a
public address unless it is one of Gradio's Hugging Face hosts, and every redirect is checked
again), streamed into Gradio's upload folder under the upload size limit, and then checked like
any upload (``files.UploadPolicy``). Anything that is not an http(s) URL is left as it is, so a
path on the server is still refused by the upload policy and never opened.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin, urlparse

import httpx
import safehttpx
from gradio import processing_utils
from gradio.utils import get_upload_folder

from ..core.errors import InputError
from ..core.limits import LIMITS

TIMEOUT_S = 20.0          # per file: connecting, and between two chunks
MAX_REDIRECTS = 5
CHUNK = 1 << 16


def _named(value: object) -> object:
    """What a file argument names: a string, or a FileData record's URL or path."""
    return value.get("url") or value.get("path") if isinstance(value, dict) else value


def url_of(value: object) -> str | None:
    """The http(s) URL a file argument names (a string, or a FileData record), else None."""
    value = _named(value)
    if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")) and len(value) < 4096:
        return value
    return None


def data_url_of(value: object) -> str | None:
    """The ``data:`` URL a file argument is (inline content), else None."""
    value = _named(value)
    return value if isinstance(value, str) and value[:5].lower() == "data:" else None


def decoded_size(payload: str) -> int:
    """The bytes a base64 text decodes to, from its length alone (whitespace ignored)."""
    length = len(payload) - sum(payload.count(c) for c in " \t\r\n")
    return length * 3 // 4


def _save_data_url(url: str, target_folder: Path, label: str, number: int, what: str, limit: int) -> Path:
    header, comma, payload = url.partition(",")
    kind, *params = header[5:].split(";")
    if not comma or "base64" not in (p.strip().lower() for p in params):
        raise InputError(f"{label} is a data: URL without base64 content: send it as "
                         f"data:image/png;base64,... (the file's bytes in base64).")
    if decoded_size(payload) > limit:
        raise InputError(f"{label} is larger than this server's upload limit of {limit // 2**20} MB.")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{label} is not valid base64 after 'base64,': send the file's bytes in base64.") from None
    extension = mimetypes.guess_extension(kind.strip().lower()) or ".bin"
    target = target_folder / f"{what.replace(' ', '-')}-{number}{extension}"      # what results show
    target.write_bytes(data)
    return target


async def _transport(url: str) -> httpx.AsyncBaseTransport | None:
    host = httpx.URL(url).host
    if not host:
        raise ValueError("no host")
    if safehttpx.matches_domain_whitelist(host, processing_utils.PUBLIC_HOSTNAME_WHITELIST):
        return None
    return safehttpx.AsyncSecureTransport(await safehttpx.async_validate_url(host))


async def _download(url: str, target: Path, limit: int) -> None:
    for _ in range(MAX_REDIRECTS + 1):
        async with httpx.AsyncClient(transport=await _transport(url), timeout=TIMEOUT_S) as client:
            async with client.stream("GET", url, follow_redirects=False) as response:
                if response.has_redirect_location:
                    url = urljoin(str(response.url), response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise ValueError(f"the server answered {response.status_code}")
                size = 0
                with open(target, "wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise OverflowError
                        out.write(chunk)
                return
    raise ValueError("too many redirects")


def _name(url: str) -> str:
    name = os.path.basename(urlparse(url).path.rstrip("/"))
    keep = "".join(c for c in name if c.isalnum() or c in "._-")[:100]
    return keep or "file"


@contextlib.contextmanager
def fetched(values: object, what: str, most: int) -> Iterator[Any]:
    """``values`` (a list of file arguments) with every http(s) URL replaced by a downloaded file,
    and every ``data:`` URL by its decoded content, in the upload folder, removed again afterwards;
    at most ``most`` values, checked before anything is downloaded or decoded. Anything but a list
    is left to the backend's own checks."""
    if not isinstance(values, (list, tuple)):
        yield values
        return
    values = list(values)
    if len(values) > most:
        raise InputError(f"{len(values)} {what}s given; at most {most} are allowed per request.")
    folder = Path(tempfile.mkdtemp(prefix="zsdemo-url-", dir=get_upload_folder()))
    try:
        out: list[object] = []
        for i, value in enumerate(values):
            url, inline = url_of(value), data_url_of(value)
            if inline is not None:
                (folder / str(i)).mkdir()
                label = f"{what.capitalize()} {i + 1}" if most > 1 else what.capitalize()
                out.append(str(_save_data_url(inline, folder / str(i), f"{label} (a data: URL)", i + 1, what,
                                              LIMITS.upload_bytes)))
                continue
            if url is None:
                out.append(value)
                continue
            target = folder / str(i) / _name(url)      # the file keeps its own name: results show it
            target.parent.mkdir()
            label = f"{what.capitalize()} {i + 1} ({_name(url)})" if most > 1 else f"{what.capitalize()} ({_name(url)})"
            try:
                asyncio.run(_download(url, target, LIMITS.upload_bytes))
            except OverflowError:
                raise InputError(f"{label} is larger than this server's upload limit of "
                                 f"{LIMITS.upload_bytes // 2**20} MB.") from None
            except (httpx.HTTPError, ValueError, OSError) as e:
                raise InputError(f"{label} could not be downloaded ({str(e)[:120] or type(e).__name__}): "
                                 "give a public http(s) URL, or upload the file.") from None
            out.append(str(target))
        yield out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fetched_one(value: object, what: str) -> Iterator[Any]:
    """``fetched`` for a single optional file argument (a zip)."""
    if value in (None, ""):
        yield value
        return
    with fetched([value], what, 1) as (local,):
        yield local
