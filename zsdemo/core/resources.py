"""The files zsdemo ships: example photos with their licences, descriptors, class-name and
dataset data, the page's CSS and texts, model configs.

In a checkout (and on a Space, which runs the checkout) they are the top-level ``assets/``
folder. The wheel carries the same folder as the package data of 'zsdemo.assets'
(``[tool.setuptools.package-dir]`` maps it), found through ``importlib.resources``, so an
installation anywhere reads the same files. Gradio and open_clip want real file paths, which
both have (an installed package is a folder, never a zip).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _assets() -> Path:
    packaged = Path(str(files("zsdemo"))) / "assets"                # a wheel: zsdemo.assets' package data
    checkout = Path(__file__).resolve().parents[2] / "assets"       # a checkout: beside the zsdemo/ folder
    for folder in (packaged, checkout):
        if (folder / "app.css").is_file():
            return folder
    raise RuntimeError(f"zsdemo's shipped files are missing (neither {packaged} nor {checkout} holds them): "
                       "reinstall zsdemo.")


ASSETS = _assets()
EXAMPLE_IMAGES = ASSETS / "images"
SUS_POOL = ASSETS / "pool.zip"          # 20 unlabeled photos for the name-only lesson (LICENSES.md)
DESCRIPTORS = ASSETS / "descriptors"
MODEL_CONFIGS = ASSETS / "model_configs"


def asset(*parts: str) -> Path:
    """The path of a shipped file, e.g. ``asset("imagenet_wnids.txt")``."""
    return ASSETS.joinpath(*parts)


def asset_text(*parts: str) -> str:
    return asset(*parts).read_text(encoding="utf-8")
