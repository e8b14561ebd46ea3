import math

import pytest
import torch
from PIL import Image

from zsdemo.prompts.classnames import PRESETS, parse_classnames
from zsdemo.core.errors import InputError
from zsdemo.run.pipeline import classify, embed_images, load_images
from zsdemo.strategies import STRATEGIES
from zsdemo.prompts.templates import CLIP80
from zsdemo.engine.text import TextFeatureCache
from zsdemo.engine.zero_shot_classifier import class_vectors

CLASSES = "cat, dog, rocket, coffee mug"


def test_every_strategy_gives_probabilities_logits_and_top_k(tiny, cat_path):
    result = classify(tiny, [cat_path, cat_path], CLASSES, "all", templates=["a {} in the wild"], top_k=3)
    assert result.strategies == [s for s in STRATEGIES if not STRATEGIES[s].needs_support]   # few-shot: own tests
    assert result.templates["custom"] == ["a {} in the wild"]
    for im in result.images:
        assert im.ok and set(im.strategies) == set(result.strategies)
        for res in im.strategies.values():
            assert len(res.probs) == len(res.logits) == 4
            assert math.isclose(sum(res.probs), 1.0, rel_tol=1e-5)
            assert [p.prob for p in res.top_k] == sorted(res.probs, reverse=True)[:3]
            assert res.top_k[0].class_name == result.classes[res.top_k[0].index]


def test_logits_are_scaled_cosines(tiny, cat_path):
    result = classify(tiny, [cat_path], CLASSES, "clip80")
    feats = embed_images(tiny, load_images([cat_path]))
    weights = class_vectors(tiny, parse_classnames(CLASSES).names, CLIP80)
    expected = (tiny.logit_scale * feats @ weights.T)[0]
    assert torch.allclose(torch.tensor(result.images[0].strategies["clip80"].logits), expected, atol=1e-4)


def test_bad_image_does_not_stop_the_batch(tiny, cat_path, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    result = classify(tiny, [bad, cat_path], CLASSES, "name")
    assert "not an image" in result.images[0].error and not result.images[0].strategies
    assert result.images[1].ok


def test_single_class_is_allowed_with_a_note(tiny, cat_path):
    result = classify(tiny, [cat_path], "cat", "name")
    assert result.images[0].strategies["name"].probs == [1.0]
    assert any("Only one class" in w for w in result.warnings)


def test_duplicates_are_reported(tiny, cat_path):
    result = classify(tiny, [cat_path], "cat, Dog, dog , cat", "name")
    assert result.classes == ["cat", "Dog"]
    assert any("Duplicate" in w and "dog" in w for w in result.warnings)


def test_more_than_a_thousand_classes(tiny, cat_path):
    names = list(PRESETS["imagenet1k"]) + [f"thing number {i}" for i in range(200)]
    result = classify(tiny, [cat_path], names, "name", cache=TextFeatureCache())
    assert len(result.images[0].strategies["name"].probs) == 1200


def test_class_name_longer_than_the_context_is_truncated_with_a_warning(tiny, cat_path):
    long_name = " ".join(["enormous"] * 100)
    result = classify(tiny, [cat_path], ["cat", long_name], "name,photo")
    assert result.images[0].ok
    assert any("too long for the model's text context" in w for w in result.warnings)


@pytest.mark.parametrize("classes, strategies, templates, message", [
    ("", "name", None, "No class names"),
    (" ,\n, ", "name", None, "No class names"),
    ("cat, dog", "name,bogus", None, "Unknown strategy"),
    ("cat, dog", "custom", None, "needs templates"),
    ("cat, dog", "custom", ["no placeholder"], "has no '{}'"),
    ("cat, dog", "custom", ["{} and {}"], "has 2"),
    ("cat, " + "x" * 1001, "name", None, "at most 1000"),
])
def test_bad_requests_are_refused_with_a_message(tiny, cat_path, classes, strategies, templates, message):
    with pytest.raises(InputError, match=message):
        classify(tiny, [cat_path], classes, strategies, templates)


def test_no_images(tiny):
    with pytest.raises(InputError, match="No image"):
        classify(tiny, [], "cat, dog", "name")


def test_pil_images_and_names(tiny):
    result = classify(tiny, [Image.new("RGB", (10, 10))], "cat, dog", "photo", names=["upload.png"])
    assert result.images[0].source == "upload.png"


def test_class_name_parsing():
    parsed = parse_classnames("cat,\n  golden   retriever \n\n,\tdog\x00")
    assert parsed.names == ("cat", "golden retriever", "dog")
    for preset in PRESETS.values():  # presets survive parsing intact, so class indices hold
        assert parse_classnames("\n".join(preset)).names == preset
    assert len(PRESETS["imagenet1k"]) == 1000 and len(PRESETS["cifar10"]) == 10
    assert len(PRESETS["cifar100"]) == 100 and len(set(PRESETS["cifar100"])) == 100
