"""Decoding user images safely into RGB (docs/METHODS.md §1).

Images in the wild come as palette, RGBA, CMYK, 16-bit, greyscale, animated and EXIF-rotated
files; each is turned into the RGB picture a person would see, or refused with a message that
names the problem.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import ImageError
from ..core.files import read_bytes
from ..core.limits import LIMITS

# Images are decoded at most this large (JPEG at a reduced scale, others reduced right after
# decoding), so a request of ``LIMITS.images`` images at the pixel limit holds about
# 64 x 3 MB of pixels instead of 64 x 150 MB. The models see 224-336 pixels; a crop of 8% of a
# 1-megapixel image still has 280 pixels a side.
WORKING_PIXELS = 1024 * 1024
ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)        # EXIF orientations that swap width and height

# One wording wherever a file is not an image (the Classify tab, the Evaluate tab, the CLI).
NOT_AN_IMAGE = "not an image (or a format this lab cannot read): use JPEG, PNG, WebP, GIF, BMP or TIFF."


ImageSource = Union[str, os.PathLike, bytes, Image.Image]


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, orientation applied (at most WORKING_PIXELS)
    source: str
    width: int          # of the file, before any reduction on decoding
    height: int
    warnings: list[str] = field(default_factory=list)
    digest: str | None = None   # sha256 of the file's bytes (None for a PIL image): the leakage check's key


def describe_source(src: ImageSource, name: str | None = None) -> str:
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, Image.Image):
        return getattr(src, "filename", "") or "image"
    return "image"


def _to_8bit(img: Image.Image) -> Image.Image:
    # Pillow's convert("RGB") clips 16- and 32-bit samples at 255, which turns most 16-bit
    # photos white; rescale the real range instead.
    arr = np.asarray(img)
    if img.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) / (hi - lo or 1.0) * 255.0
    else:
        arr = arr.astype(np.float64)
        scaled = arr / 257.0 if arr.max() > 255 else arr
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB as a person would see it: transparency over white, CMYK and 16-bit converted."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def load_image(
    src: ImageSource,
    name: str | None = None,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
) -> LoadedImage:
    """Decode a path, bytes or PIL image into RGB with orientation applied, or raise ImageError.

    The size limits default to ``LIMITS`` (upload_mb, megapixels) as they are at the call.
    """
    label = describe_source(src, name)
    max_bytes = LIMITS.upload_bytes if max_bytes is None else max_bytes
    max_pixels = LIMITS.megapixels * 1_000_000 if max_pixels is None else max_pixels
    notes: list[str] = []
    digest = None
    if isinstance(src, Image.Image):
        img = src
    else:
        data = src if isinstance(src, bytes) else read_bytes(src, label, max_bytes, ImageError)
        if not data:
            raise ImageError(f"{label}: the file is empty (0 bytes).")
        if len(data) > max_bytes:
            raise ImageError(f"{label}: larger than the {max_bytes / 2**20:.0f} MB upload limit. "
                             "Use a smaller or re-compressed image.")
        digest = hashlib.sha256(data).hexdigest()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(
                f"{label}: {NOT_AN_IMAGE}"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{label}: the image has too many pixels to decode safely.") from None
        except Exception as e:
            raise ImageError(f"{label}: cannot be decoded ({e}).") from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: {width}x{height} is {width * height / 1e6:.0f} megapixels; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels. Resize the image first."
        )
    if width < 1 or height < 1:
        raise ImageError(f"{label}: the image has no pixels.")
    # is_animated looks one frame ahead; n_frames walks every frame (quadratic for a TIFF of
    # thousands of one-pixel pages).
    if getattr(img, "is_animated", False):
        notes.append("animated or multi-page image: only the first frame is classified.")
    try:
        if img.getexif().get(ORIENTATION) in TURNED:
            width, height = height, width       # the size a person sees, as exif_transpose turns it
        img = _decode_bounded(img)
        img = ImageOps.exif_transpose(img) or img
        if img.width * img.height < width * height:
            notes.append(f"decoded at {img.width}x{img.height} (from {width}x{height}) to bound memory; "
                         "the model sees far fewer pixels anyway.")
        rgb = to_rgb(img)
    except ImageError:
        raise
    except OSError as e:
        raise ImageError(f"{label}: the file is truncated or corrupt ({e}).") from None
    except Exception as e:
        raise ImageError(f"{label}: cannot be decoded ({type(e).__name__}: {e}).") from None
    return LoadedImage(rgb, label, width, height, notes, digest)


def _decode_bounded(img: Image.Image, max_pixels: int = WORKING_PIXELS) -> Image.Image:
    """Decode the first frame at no more than ``max_pixels``; an image within it is untouched."""
    width, height = img.size
    if width * height <= max_pixels:
        img.load()
        return img
    shrink = math.sqrt(width * height / max_pixels)
    if img.format == "JPEG":   # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly
        img.draft(img.mode, (math.ceil(width / shrink), math.ceil(height / shrink)))
    img.load()
    factor = math.ceil(math.sqrt(img.width * img.height / max_pixels))
    if factor <= 1:
        return img
    try:
        return img.reduce(factor)
    except ValueError:         # modes reduce() does not take (palette, 16-bit): to RGB first
        return to_rgb(img).reduce(factor)
