"""Issue 28: where the model looks. The occlusion map against an independent computation on the
tiny model (its own patches, open_clip's towers called directly), its cost said beforehand, its
limits, and Stop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zsdemo.app import classifying, inspecting, state
from zsdemo.core.errors import InputError
from zsdemo.core.progress import StopFlag, Stopped, track
from zsdemo.engine import occlusion
from zsdemo.engine.zero_shot_classifier import class_vectors

CLASSES = ["cat", "dog", "rocket", "astronaut"]


def _independent(tiny, image: Image.Image, grid: int, target: int) -> np.ndarray:
    model, tokenizer = tiny.model, tiny.tokenizer
    with torch.no_grad():
        text = model.encode_text(tokenizer([f"a photo of a {c}." for c in CLASSES]).to(tiny.device)).float()
        text = text / text.norm(dim=-1, keepdim=True)

        def prob(picture: Image.Image) -> float:
            f = model.encode_image(tiny.preprocess(picture).unsqueeze(0).to(tiny.device)).float()
            f = f / f.norm(dim=-1, keepdim=True)
            return float((model.logit_scale.exp() * f @ text.T).softmax(-1)[0, target])
        base = prob(image)
        w, h = image.size
        out = np.zeros((grid, grid))
        for r in range(grid):
            for c in range(grid):
                pixels = np.array(image.convert("RGB"))
                x0, x1 = max(0, round((c - 0.5) * w / grid)), min(w, round((c + 1.5) * w / grid))
                y0, y1 = max(0, round((r - 0.5) * h / grid)), min(h, round((r + 1.5) * h / grid))
                pixels[y0:y1, x0:x1] = 128
                out[r, c] = base - prob(Image.fromarray(pixels))
    return out


def test_the_map_matches_an_independent_computation(tiny, cat_path):
    image = Image.open(cat_path).convert("RGB").resize((160, 120))
    weights = class_vectors(tiny, CLASSES, ("a photo of a {}.",), None)
    found = occlusion.occlusion_map(tiny, image, weights, 1, "dog", grid=4)
    assert found.passes == 17 and len(found.drops) == 4 and len(found.drops[0]) == 4
    assert np.allclose(np.array(found.drops), _independent(tiny, image, 4, 1), atol=1e-4)
    assert np.abs(np.array(found.drops)).max() > 1e-4          # covering parts of the image matters


def test_its_cost_is_said_before_and_its_grid_is_bounded():
    assert "50 forward passes" in inspecting.occlusion_passes(7)
    for bad in (3, 11, 2.5, "7", True, float("nan")):
        with pytest.raises(InputError, match="occlusion grid must be a whole number from 4 to 10"):
            occlusion.check_grid(bad)


def test_stop_ends_it(tiny, cat_path):
    image = Image.open(cat_path).convert("RGB")
    weights = class_vectors(tiny, CLASSES, ("a photo of a {}.",), None)
    flag = StopFlag()
    flag.set()
    try:
        with pytest.raises(Stopped), track(None, flag):
            occlusion.occlusion_map(tiny, image, weights, 0, "cat", grid=10)
    finally:
        flag.discard()


def test_the_page_draws_it_for_the_inspected_image_and_refuses_what_it_cannot(cat_path, astronaut_path):
    config = state.AppConfig("tiny-random", None, "cpu", None)
    run = classifying.run(config, [str(cat_path), str(astronaut_path)], ", ".join(CLASSES), ["name", "photo"])
    html = inspecting.where_it_looks(config, run, 1, "astronaut", 4)
    assert "<b>astronaut</b>" in html and "17 forward passes" in html and "data:image/jpeg;base64," in html
    assert "<b>" in inspecting.where_it_looks(config, run, 0, "top-1", 4)
    with pytest.raises(InputError, match="not one of this run's classes"):
        inspecting.where_it_looks(config, run, 0, "/etc/passwd", 4)
    with pytest.raises(InputError, match="press Classify first"):
        inspecting.where_it_looks(config, None, 0, "cat", 4)
    forged = state.Run.from_state({**run.to_state(), "result": {**run.to_state()["result"],
                                  "model": {**run.result.model, "name": "local-dir:/etc"}}})
    with pytest.raises(InputError, match="no longer in memory"):
        inspecting.where_it_looks(config, forged, 0, "cat", 4)
