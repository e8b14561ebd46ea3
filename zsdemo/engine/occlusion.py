"""Where the model looks: occlusion sensitivity (Zeiler and Fergus, ECCV 2014).

A grey patch slides over the image on a ``grid`` x ``grid`` lattice; at each position the occluded
image goes through the model's own preprocessing and image tower, and the map records how much
the probability of one class falls (the unoccluded probability minus the occluded one; a
negative value means covering that part made the class more likely). It needs nothing of the
model but its image features, so it works for any open_clip model.

Choices: the patch is twice the lattice step (neighbouring positions overlap by half), filled
with the grey of 128 on the image as decoded (before the model's resize and crop); the
probabilities are the softmax over the request's classes of one classifier's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw

from ..core import arguments, progress
from .models import LoadedModel

GREY = (128, 128, 128)
GRIDS = (4, 10)              # the lattice's sides a request may ask for
DEFAULT_GRID = 7
BATCH = 16


@dataclass
class OcclusionMap:
    class_index: int
    class_name: str
    probability: float             # of the class, on the whole image
    grid: int
    drops: list[list[float]]       # [row][column]: probability lost with the patch there
    boxes: list[list[tuple[int, int, int, int]]]    # the patch of each cell, in image pixels
    passes: int


def passes(grid: int) -> int:
    """Forward passes of the image tower a map needs: one per position, and the whole image."""
    return grid * grid + 1


def check_grid(grid: object) -> int:
    low, high = GRIDS
    return arguments.whole_number(grid, "The occlusion grid", low, high)


def patch_boxes(width: int, height: int, grid: int) -> list[list[tuple[int, int, int, int]]]:
    """(left, top, right, bottom) of the patch at each cell: twice the step, clipped to the image."""
    boxes = []
    for row in range(grid):
        line = []
        for col in range(grid):
            cx, cy = (col + 0.5) * width / grid, (row + 0.5) * height / grid
            half_w, half_h = width / grid, height / grid
            line.append((max(0, round(cx - half_w)), max(0, round(cy - half_h)),
                         min(width, round(cx + half_w)), min(height, round(cy + half_h))))
        boxes.append(line)
    return boxes


def occluded(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    out = image.convert("RGB").copy()
    ImageDraw.Draw(out).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=GREY)
    return out


def occlusion_map(loaded: LoadedModel, image: Image.Image, weights: torch.Tensor, class_index: int,
                  class_name: str, grid: int = DEFAULT_GRID) -> OcclusionMap:
    """The map of ``class_index`` under the classifier ``weights`` [C, D] (unit class vectors).

    Runs inside the caller's ``progress.track``: each batch of occluded images is one turn of
    the model's lock, reports its progress and ends at a Stop."""
    grid = check_grid(grid)
    boxes = patch_boxes(image.width, image.height, grid)
    cells = [box for line in boxes for box in line]
    weights = weights.to(loaded.device).float()
    probs: list[float] = []
    progress.stage(0.0, 1.0, "occluding the image", passes(grid), "image")
    pictures = [image.convert("RGB"), *(occluded(image, box) for box in cells)]
    for start in range(0, len(pictures), BATCH):
        progress.check()
        batch = torch.stack([loaded.preprocess(p) for p in pictures[start:start + BATCH]])
        feats = loaded.encode_images(batch, BATCH)
        logits = loaded.logit_scale * feats @ weights.T
        probs += logits.float().softmax(dim=-1)[:, class_index].tolist()
    base = probs[0]
    drops = [[base - probs[1 + row * grid + col] for col in range(grid)] for row in range(grid)]
    return OcclusionMap(class_index, class_name, base, grid, drops, boxes, passes(grid))
