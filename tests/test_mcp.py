"""The MCP tools as an agent uses them: the official ``mcp`` client over streamable HTTP at
/gradio_api/mcp/, an image of the agent's own sent inline as a data: URL, answers read as JSON."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

from zsdemo.app import mcp_tools
from zsdemo.core.limits import LIMITS


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory):
    import app

    page = app.build_app("tiny-random", None, "cpu", str(tmp_path_factory.mktemp("mcp-features")))
    _, url, _ = app.launch(page, port=None, prevent_thread_lock=True, quiet=True, mcp=True)
    yield url + "gradio_api/mcp/"
    page.close()


async def _session(url: str, work) -> Any:
    async with streamablehttp_client(url, timeout=120) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def tools(url: str) -> dict[str, Any]:
    async def work(session):
        return {t.name: t for t in (await session.list_tools()).tools}
    return asyncio.run(_session(url, work))


def call(url: str, name: str, arguments: dict) -> tuple[bool, str]:
    """(is_error, the answer's text)."""
    async def work(session):
        result = await session.call_tool(name, arguments)
        return bool(result.isError), "".join(c.text for c in result.content if c.type == "text")
    return asyncio.run(_session(url, work))


def data_url(path, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def test_the_tools_say_what_works_and_their_schema_is_plain(mcp_url):
    listed = tools(mcp_url)
    assert set(listed) == {"classify", "evaluate", "embedding_map", "wordnet", "options"}
    for tool in listed.values():
        text = json.dumps(tool.inputSchema)
        assert "upload_file_to_gradio" not in tool.description and "Gradio File Input" not in text
        assert '"required": ["path"' not in text and "orig_name" not in text
        for name, prop in tool.inputSchema.get("properties", {}).items():
            assert prop.get("description"), (tool.name, name)
    images = listed["classify"].inputSchema["properties"]["images"]
    assert images["type"] == "array" and images["items"]["type"] == "string"
    assert "data:image/png;base64" in images["items"]["description"] and "http(s)" in images["description"]
    assert listed["evaluate"].inputSchema["properties"]["archive"]["type"] == "string"
    assert listed["classify"].inputSchema["properties"]["consistency"]["default"] is False   # every default said
    assert "Returns JSON" in listed["wordnet"].description and "as JSON" in listed["classify"].description


def test_an_agent_classifies_its_own_image_and_reads_json(mcp_url, cat_path):
    failed, text = call(mcp_url, "classify", {"images": [data_url(cat_path)], "classes": "cat, dog, rocket",
                                              "strategies": "name,photo"})
    assert not failed, text
    answer = json.loads(text)
    assert answer["schema"].startswith("zsdemo.classify/") and answer["images"][0]["source"] == "image-1.png"
    assert set(answer["images"][0]["strategies"]) == {"name", "photo"}
    for name, arguments in (("options", {}), ("wordnet", {"classes": "crane, heron"})):
        failed, text = call(mcp_url, name, arguments)
        assert not failed and json.loads(text), text


def test_what_is_wrong_with_an_inline_image_is_said(mcp_url, monkeypatch):
    notes = "data:image/png;base64," + base64.b64encode(b"these are my notes, not a picture").decode()
    failed, text = call(mcp_url, "classify", {"images": [notes], "classes": "cat, dog"})
    assert not failed and json.loads(text)["images"][0]["error"].startswith("image-1.png: not an image"), text
    failed, text = call(mcp_url, "classify", {"images": ["data:image/png;base64,@@@not base64@@@"],
                                              "classes": "cat, dog"})
    assert failed and "Image 1 (a data: URL) is not valid base64" in text, text
    failed, text = call(mcp_url, "classify", {"images": ["data:image/png,rawbytes"], "classes": "cat, dog"})
    assert failed and "without base64 content" in text, text
    # Too many pixels: the header is read before the image is decoded.
    buf = io.BytesIO()
    Image.new("L", (20_000, 3_000)).save(buf, format="PNG")
    big = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    failed, text = call(mcp_url, "classify", {"images": [big], "classes": "cat, dog"})
    said = text if failed else json.loads(text)["images"][0]["error"]
    assert said.startswith("image-1.png") and "is 60 megapixels; the limit is 50" in said, said


def test_an_oversized_inline_image_is_refused_before_it_is_decoded(mcp_url, monkeypatch):
    decoded = []
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: decoded.append(1) or b"")
    monkeypatch.setattr(LIMITS, "upload_mb", 1)
    over = "data:image/png;base64," + "A" * (LIMITS.upload_bytes * 4 // 3 + 8)
    failed, text = call(mcp_url, "classify", {"images": [over], "classes": "cat, dog"})
    assert failed and "larger than this server's upload limit of 1 MB" in text, text
    assert decoded == []
    # A body past two such files is not read at all.
    response = httpx.post(mcp_url, timeout=60, headers={"Accept": "application/json, text/event-stream"},
                          content=b"x" * (mcp_tools.body_limit() + 1))
    assert response.status_code == 413 and "send large files as http(s) URLs" in response.text


def test_a_thousand_images_are_refused_by_their_count(mcp_url, tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "dot.png")
    one = data_url(tmp_path / "dot.png")
    failed, text = call(mcp_url, "classify", {"images": [one] * 1000, "classes": "cat, dog"})
    assert failed and f"1000 images given; at most {LIMITS.images} are allowed" in text, text


def test_an_inline_zip_is_evaluated(mcp_url, labelled_zip):
    failed, text = call(mcp_url, "evaluate", {"archive": data_url(labelled_zip, "application/zip"),
                                              "strategies": "name", "views": "flip"})
    assert not failed, text
    report = json.loads(text)
    assert report["n_images"] == 4 and "name" in report["strategies"] and len(report["images"]) == 4


def test_the_api_takes_the_same_inline_images(live_app, cat_path):
    from gradio_client import Client

    answer = Client(live_app, verbose=False).predict([data_url(cat_path)], "cat, dog", "name", api_name="/classify")
    assert answer["images"][0]["source"] == "image-1.png" and answer["images"][0]["error"] is None


def test_an_agent_maps_its_own_image_among_the_prompts(mcp_url, cat_path):
    listed = tools(mcp_url)["embedding_map"]
    images = listed.inputSchema["properties"]["images"]
    assert images["type"] == "array" and images["items"]["type"] == "string"      # URLs, not FileData
    assert listed.inputSchema["properties"]["separate_modalities"]["default"] is False
    assert "principal axes" in listed.description and "explained_variance" in listed.description
    failed, text = call(mcp_url, "embedding_map", {"images": [data_url(cat_path)], "classes": "cat, dog, rocket",
                                                   "strategies": "photo,clip7,tip", "separate_modalities": True})
    assert not failed, text
    found = json.loads(text)
    kinds = [p["kind"] for p in found["points"]]
    assert kinds.count("image") == 1 and kinds.count("prompt") == 3 + 21 and kinds.count("ensemble") == 3
    assert found["separate_modalities"] is True and len(found["explained_variance"]) == 2
    assert found["nearest"][0]["image"] == "image-1.png" and any("no prompt points" in n for n in found["notes"])
    failed, text = call(mcp_url, "embedding_map", {"images": [], "classes": "cat", "strategies": "nope"})
    assert failed and "Unknown strategy 'nope'" in text
