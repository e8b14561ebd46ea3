"""Gradio's own refusals, in words.

Gradio checks a request before any of zsdemo's code runs: the number of arguments, and that
every file record names a file uploaded with the request (or a URL it may fetch). It refuses the
others with an exception whose message it hides (``show_error=False``, which keeps our own
unexpected errors from leaking), so a raw HTTP caller got ``{"error": null}``. Here those
refusals become ``gr.Error`` messages that say what was wrong and what to do; anything else
is left to Gradio.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import gradio as gr
from gradio.exceptions import InvalidPathError

FEW_ARGUMENTS = re.compile(r"didn't receive enough input values \(needed: (\d+), got: (\d+)\)")


def explain(error: BaseException) -> str | None:
    """The message for one of Gradio's pre-call refusals, or None for anything else."""
    text = str(error)
    few = FEW_ARGUMENTS.search(text)
    if few:
        return (f"This endpoint takes {few.group(1)} arguments and {few.group(2)} were sent: send every "
                "argument, in the order /gradio_api/info lists (gradio_client fills in the defaults).")
    if isinstance(error, InvalidPathError) or "not uploaded" in text or "cannot be accessed" in text:
        return ("A file in this request was not uploaded with it: upload it first (gradio_client: "
                "handle_file(path); raw HTTP: POST /gradio_api/upload) and send the path that returns.")
    if "failed validation" in text or "Unable to resolve hostname" in text or "Failed to download" in text:
        return "A file URL in this request could not be fetched: give a public http(s) URL, or upload the file."
    return None


def explain_refusals(page: gr.Blocks) -> gr.Blocks:
    """Wrap ``page``'s input checking so that Gradio's refusals reach the caller in words."""
    check = page.preprocess_data

    @functools.wraps(check)
    async def preprocess_data(*args: Any, **kwargs: Any) -> Any:
        try:
            return await check(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:
            message = explain(e)
            if message is None:
                raise
            raise gr.Error(message, print_exception=False) from None

    page.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return page
