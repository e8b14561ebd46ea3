"""Gradio's own refusals, in words.

Gradio checks a request before any of zsdemo's code runs: the number of arguments, and that
every file record names a file uploaded with the request (or a URL it may fetch). It refuses the
others with an exception whose message it hides (``show_error=False``, which keeps our own
unexpected errors from leaking), so a raw HTTP caller got ``{"error": null}``. Here those
refusals become error messages (``toasts.error``) that say what was wrong and what to do; anything else
is left to Gradio.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError
from pydantic import ValidationError

from . import toasts

FEW_ARGUMENTS = re.compile(r"didn't receive enough input values \(needed: (\d+), got: (\d+)\)")
BAD_VALUE = re.compile(r"input component at index (\d+) \(a `(\w+)` component\)")
# What each kind of input takes, for a caller who sent something else.
TAKES = {"slider": "a number in its range", "number": "a number", "checkbox": "true or false",
         "checkboxgroup": "a list of its choices", "dropdown": "one of its choices", "radio": "one of its choices",
         "textbox": "text", "gallery": "a list of uploaded images", "file": "an uploaded file", "json": "JSON"}


def explain(error: BaseException) -> str | None:
    """The message for one of Gradio's pre-call refusals, or None for anything else."""
    text = str(error)
    few = FEW_ARGUMENTS.search(text)
    if few:
        return (f"This endpoint takes {few.group(1)} arguments and {few.group(2)} were sent: send every "
                "argument, in the order /gradio_api/info lists (gradio_client fills in the defaults).")
    bad = BAD_VALUE.search(text)
    if isinstance(error, ComponentProcessingError) and bad:
        takes = TAKES.get(bad.group(2), "a value of the kind /gradio_api/info lists")
        return (f"Argument {int(bad.group(1)) + 1} of this request is not a value its input takes: send "
                f"{takes} there.")
    if isinstance(error, ValidationError):
        return ("An argument of this request does not have the form its input takes (a file record where a file "
                "belongs, a list where a list belongs): send each as /gradio_api/info lists it.")
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
            # Our own words, no visitor's text in them: the same for a page and an API client.
            raise toasts.error(message, shown_in_page=False) from None

    page.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return page
