"""The web page (Gradio), the only part of zsdemo that imports Gradio.

``zsdemo serve`` (an installed package) and ``app.py`` (a checkout, a Hugging Face Space) both
start it through ``main`` (``server.py``).
"""

from __future__ import annotations

from . import gpu  # noqa: F401, I001  (first: on ZeroGPU, spaces must be imported before CUDA is touched)
from .page import build_app
from .server import launch, main

__all__ = ["build_app", "launch", "main"]
