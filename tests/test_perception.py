"""PerceptionCLIP (An et al.; docs/METHODS.md §6): attributes first, then the class."""

from __future__ import annotations

import pytest
import torch

from zsdemo.images import load_image
from zsdemo.pipeline import classify, embed_images
from zsdemo.strategies import perception
from zsdemo.templates import fill
from zsdemo.text import encode_prompts

CLASSES = ["cat", "dog", "rocket"]


def test_two_step_against_the_formula_written_out():
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64) * 5          # [N, C, Z]
    pz, log_py = perception.two_step(f, temperature=3.0)
    for n in range(2):
        weights = torch.tensor([sum(torch.exp(f[n, y, z] / 3) for y in range(3)) for z in range(4)])
        want_pz = weights / weights.sum()
        want_py = torch.tensor([sum(want_pz[z] * torch.softmax(f[n, :, z], 0)[y] for z in range(4))
                                for y in range(3)])
        assert torch.allclose(pz[n], want_pz, atol=1e-12) and torch.allclose(log_py[n].exp(), want_py, atol=1e-12)
    assert torch.allclose(log_py.exp().sum(dim=1), torch.ones(2, dtype=torch.float64))


def test_prompts_are_every_combination_of_the_attributes():
    prompts = perception.templates()
    assert len(prompts) == 4 * 9 == len(set(prompts))
    assert prompts[0] == "a photo of a {}." and "a photo of a {}, weird, blurry." in prompts


def test_the_strategy_matches_an_independent_computation(tiny, cat_path):
    result = classify(tiny, [cat_path], ", ".join(CLASSES), "perception", cache=None)
    r = result.images[0].strategies["perception"]
    image = embed_images(tiny, [load_image(cat_path)])[0]
    f = torch.stack([tiny.logit_scale * encode_prompts(tiny, [fill(t, c) for t in perception.templates()]) @ image
                     for c in CLASSES]).double()[None]                     # [1, C, Z]
    pz, log_py = perception.two_step(f)
    assert r.probs == pytest.approx(log_py[0].exp().tolist(), abs=1e-5)
    d = r.details
    assert set(d.attributes) == {"condition", "quality"} and d.temperature == 3.0
    assert sum(d.attributes["quality"].values()) == pytest.approx(1.0)
    assert d.most_likely_prob == pytest.approx(float(pz.max()), abs=1e-6)
    assert type(result).from_dict(result.to_dict()).images[0].strategies["perception"].details == d
