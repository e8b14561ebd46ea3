"""The page's toasts (Gradio's Info, Warning and Error), the one way the app says something in one.

One severity per kind of message: a refusal that says what to do (our errors: a bad input, no model
yet, nothing to download yet) is a Warning wherever it happens (``refuse``); an Error is only what
went wrong on the server without a word for the visitor.

Gradio draws a toast's message as HTML, and our messages quote what a visitor sent: a link's
setting, a class name, a file name. So a message meets markup here, and only here, escaped by
``markup.html``: ``<img src=...>`` in a link shows as those characters, never as an image. An
API endpoint's error is read as text by its client (gradio_client, MCP), so it stays unescaped.
"""

from __future__ import annotations

import gradio as gr

from ..core.markup import html


def info(text: str) -> None:
    gr.Info(html(text, quote=False))


def warning(text: str) -> None:
    gr.Warning(html(text, quote=False))


def error(text: str, shown_in_page: bool = True) -> gr.Error:
    """The error to raise; ``shown_in_page``: False for an API endpoint's, whose client reads text."""
    return gr.Error(html(text, quote=False) if shown_in_page else text, print_exception=False)


def refuse(text: str) -> gr.Error:
    """A refusal on the page: a Warning toast, and the error to raise so that the event ends there
    (its ``.success`` steps do not run); the error itself draws no second toast."""
    warning(text)
    return gr.Error(html(text, quote=False), visible=False, print_exception=False)
