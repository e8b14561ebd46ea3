"""The files zsdemo ships inside its package (``zsdemo/assets/``): example photos with their
licences, descriptors, class-name and dataset data, the page's CSS and texts, model configs.

They are package data, found through ``importlib.resources``, so a wheel installed anywhere
reads the same files as this checkout. Gradio and open_clip want real file paths, which an
installed package (a folder, never a zip) has.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ASSETS = Path(str(files("zsdemo").joinpath("assets")))
EXAMPLE_IMAGES = ASSETS / "images"
DESCRIPTORS = ASSETS / "descriptors"
MODEL_CONFIGS = ASSETS / "model_configs"


def asset(*parts: str) -> Path:
    """The path of a shipped file, e.g. ``asset("imagenet_wnids.txt")``."""
    return ASSETS.joinpath(*parts)


def asset_text(*parts: str) -> str:
    return asset(*parts).read_text(encoding="utf-8")
