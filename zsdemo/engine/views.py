"""The image views of the consistency check (S_B, O_B): deterministic transformations of the
decoded image, applied before the model's preprocess so that crops keep the original resolution.

Plain data and Pillow: the command line lists the views without loading a model.
"""

from __future__ import annotations

from typing import Callable, Sequence

from PIL import Image

from ..core.errors import InputError

# Crops keep this share of each side: large enough to keep the object, small enough to move it.
CROP_SIDE = 0.75


def _crop(fx: float, fy: float) -> Callable[[Image.Image], Image.Image]:
    """A CROP_SIDE crop whose top-left corner sits at (fx, fy) of the free margin."""
    def view(im: Image.Image) -> Image.Image:
        w, h = im.size
        cw, ch = max(1, round(w * CROP_SIDE)), max(1, round(h * CROP_SIDE))
        left, top = round((w - cw) * fx), round((h - ch) * fy)
        return im.crop((left, top, left + cw, top + ch))
    return view


VIEWS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "hflip": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "vflip": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rot270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "crop-center": _crop(0.5, 0.5),
    "crop-top-left": _crop(0.0, 0.0),
    "crop-top-right": _crop(1.0, 0.0),
    "crop-bottom-left": _crop(0.0, 1.0),
    "crop-bottom-right": _crop(1.0, 1.0),
}
VIEW_LABELS: dict[str, str] = {
    "hflip": "flipped left-right", "vflip": "flipped upside down", "rot90": "rotated 90°",
    "rot180": "rotated 180°", "rot270": "rotated 270°", "crop-center": "centre crop",
    "crop-top-left": "top-left crop", "crop-top-right": "top-right crop",
    "crop-bottom-left": "bottom-left crop", "crop-bottom-right": "bottom-right crop",
}
FLIP_VIEW = "hflip"  # the view of the binary rule O_B
DEFAULT_VIEWS: tuple[str, ...] = tuple(VIEWS)


def parse_views(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """View ids for S_B; the horizontal flip is always included because O_B needs it."""
    if value is None:
        return DEFAULT_VIEWS
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v).strip() for v in value]
    unknown = [v for v in items if v not in VIEWS]
    if unknown:
        raise InputError(f"Unknown view {unknown[0]!r}. Choose from: {', '.join(VIEWS)}.")
    chosen = [FLIP_VIEW] + [v for v in items if v != FLIP_VIEW]
    return tuple(dict.fromkeys(chosen))


def make_view(image: Image.Image, view: str) -> Image.Image:
    return VIEWS[view](image)
