"""PerceptionCLIP (An et al.; docs/METHODS.md §6): attributes first, then the class."""

from __future__ import annotations

import pytest
import torch

from zsdemo.engine.images import load_image
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.strategies import perception
from zsdemo.prompts.templates import fill
from zsdemo.engine.text import encode_prompts
from zsdemo.strategies import read_result
from zsdemo.strategies import options

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
    assert read_result(result.to_dict()).images[0].strategies["perception"].details == d


def test_user_attributes_and_temperature_against_an_independent_computation(tiny, cat_path):
    """Attributes the user writes ('-' adds nothing) make the prompts; the temperature is step 1's."""
    text = "orientation: -, upside-down, rotated\nbackground: -, on a white background"
    result = classify(tiny, [cat_path], ", ".join(CLASSES), "perception", cache=None,
                      perception={"attributes": text, "temperature": 1.5})
    r = result.images[0].strategies["perception"]
    prompts = ["a photo of a {}.", "a photo of a {}, on a white background.", "a photo of a {}, upside-down.",
               "a photo of a {}, upside-down, on a white background.", "a photo of a {}, rotated.",
               "a photo of a {}, rotated, on a white background."]
    image = embed_images(tiny, [load_image(cat_path)])[0]
    f = torch.stack([tiny.logit_scale * encode_prompts(tiny, [fill(t, c) for t in prompts]) @ image
                     for c in CLASSES]).double()[None]
    weights = torch.logsumexp(f[0] / 1.5, dim=0).softmax(dim=0)                       # p(z|x), written out
    want = (f[0].softmax(dim=0) * weights).sum(dim=1)
    assert r.probs == pytest.approx(want.tolist(), abs=1e-5)
    d = r.details
    assert d.temperature == 1.5 and list(d.attributes) == ["orientation", "background"]
    assert list(d.attributes["orientation"]) == ["normal", "upside-down", "rotated"]
    assert d.attributes["orientation"]["upside-down"] == pytest.approx(float(weights[2] + weights[3]), abs=1e-6)


@pytest.mark.parametrize("text", [
    '{"orientation": ["", "upside-down", "rotated"]}',
    '{"orientation": {"normal": "", "upside-down": "upside-down", "rotated": "rotated"}}',
    "orientation: -, upside-down, rotated",
    "orientation : - ,upside-down,  rotated ;",
])
def test_the_attribute_forms_agree(text):
    assert perception.parse_attributes(text) == {"orientation": {"normal": "", "upside-down": "upside-down",
                                                                 "rotated": "rotated"}}


@pytest.mark.parametrize("text, message", [
    ("orientation", "has no ':'"),
    ("orientation: upside-down", "at least two values"),
    ('{"orientation": 5}', "must be a list of words"),
    ('{"orientation": [1, 2]}', "must be text"),
    ('{"orientation": ', "not valid JSON"),
    ("a: 1, 2; b: 1, 2; c: 1, 2; d: 1, 2; e: 1, 2", "at most 4"),
    ("a: " + ", ".join(str(k) for k in range(13)), "at most 12"),
    ("a: 1,2,3,4,5; b: 1,2,3,4,5; c: 1,2,3,4,5; d: 1,2,3", "375 combinations"),
    ("a: x, {y}", "braces"),
    ("a: x, y; a: z, w", "given twice"),
    ("a: x, " + "y" * 61, "longer than 60"),
])
def test_bad_attributes_get_a_clear_message(text, message):
    from zsdemo.core.errors import InputError

    with pytest.raises(InputError, match=message):
        perception.parse_attributes(text)


def test_default_attributes_are_the_papers_and_round_trip_through_text():
    assert perception.parse_attributes(None) == perception.ATTRIBUTES
    assert perception.parse_attributes(perception.attributes_text()) == perception.ATTRIBUTES


@pytest.mark.parametrize("t", [0.0, -1, float("nan"), float("inf"), 1000, True])
def test_bad_temperatures_are_refused(t):
    from zsdemo.core.errors import InputError

    with pytest.raises(InputError, match="temperature"):
        options.parse(perception.PerceptionSettings, {"temperature": t})


def test_the_command_line_takes_attributes(cat_path, capsys):
    from zsdemo.cli import main

    code = main(["classify", str(cat_path), "--classes", "cat, dog", "--strategies", "perception", "--model",
                 "tiny-random", "--device", "cpu", "--attributes", "orientation: -, upside-down, rotated",
                 "--perception-temperature", "2", "--json"])
    assert code == 0
    import json
    details = json.loads(capsys.readouterr().out)["images"][0]["strategies"]["perception"]["details"]
    assert list(details["attributes"]) == ["orientation"] and details["temperature"] == 2.0
