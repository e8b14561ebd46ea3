"""Raw HTTP to the page's own events, as a hostile visitor sends them: any event of the page can
be called by its number (``fn_index``) in a browser session of the caller's choosing, with any
values. ``call`` returns the event's last message (its output, or its error)."""

from __future__ import annotations

import json
import uuid

import httpx


def event_index(url: str, api_name: str) -> int:
    config = httpx.get(url.rstrip("/") + "/config", timeout=30).json()
    return next(k for k, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name)


def call(url: str, api_name: str, data: list, session: str | None = None, timeout: float = 120) -> dict:
    base = url.rstrip("/") + "/gradio_api"
    session = session or uuid.uuid4().hex[:12]
    joined = httpx.post(f"{base}/queue/join", timeout=30, json={
        "data": data, "fn_index": event_index(url, api_name), "session_hash": session, "event_data": None,
        "trigger_id": None})
    assert joined.status_code == 200, joined.text[:300]
    last: dict = {}
    with httpx.stream("GET", f"{base}/queue/data", params={"session_hash": session}, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
                if last.get("msg") == "process_completed":
                    break
    return last


def error(message: dict) -> str | None:
    """The error a completed event answered with (None when it succeeded)."""
    return None if message.get("success") else (message.get("output") or {}).get("error")
