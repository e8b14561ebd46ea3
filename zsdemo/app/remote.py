"""Files that API and MCP callers send as http(s) URLs.

Gradio's MCP server turns a file argument into a URL reference, and Gradio hands such a
reference to a ``gr.api`` function as it is, without downloading it. Here it is downloaded with
Gradio's own SSRF protection (``safehttpx``, Gradio's dependency: the host must resolve to a
public address unless it is one of Gradio's Hugging Face hosts, and every redirect is checked
again), streamed into Gradio's upload folder under the upload size limit, and then checked like
any upload (``files.UploadPolicy``). Anything that is not an http(s) URL is left as it is, so a
path on the server is still refused by the upload policy and never opened.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def url_of(value: object) -> str | None:
    """The http(s) URL a file argument names (a string, or a FileData record), else None."""
    if isinstance(value, dict):
        value = value.get("url") or value.get("path")
    if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")) and len(value) < 4096:
        return value
    return None


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
    """``values`` (a list of file arguments) with every http(s) URL replaced by a downloaded file
    in the upload folder, removed again afterwards; at most ``most`` values, checked before
    anything is downloaded. Anything but a list is left to the backend's own checks."""
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
            url = url_of(value)
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
