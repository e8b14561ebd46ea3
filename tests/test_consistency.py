"""Self-consistency (SPEC §3): O_T, O_B, S_T, S_B on cases where we set the disagreement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zsdemo.engine import consistency
from zsdemo.prompts import templates
from zsdemo.core.errors import InputError
from zsdemo.engine.images import load_image
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.engine.text import TextFeatureCache
from zsdemo.engine.views import DEFAULT_VIEWS, VIEWS, make_view, parse_views
from zsdemo.engine.zero_shot_classifier import template_features


def one_hot(i: int, n: int = 3) -> torch.Tensor:
    return F.one_hot(torch.tensor(i), n).float()


def test_rule_on_constructed_logits():
    agree = consistency.consistency_from_logits(
        one_hot(0), {g: one_hot(0) for g in consistency.PROMPT_GROUPS},
        torch.stack([one_hot(0)] * 3 + [one_hot(1)]), {"hflip": one_hot(0), "vflip": one_hot(2)},
    )
    assert (agree.o_t, agree.o_b, agree.low_confidence) == (False, False, False)
    assert agree.s_t == 0.75 and agree.s_b == 0.5

    prompt_split = consistency.consistency_from_logits(
        one_hot(0), {"name": one_hot(0), "clip80[1-40]": one_hot(0), "clip80[41-80]": one_hot(1),
                     "clip80": one_hot(0)},
        torch.stack([one_hot(0)]), {"hflip": one_hot(0)},
    )
    assert prompt_split.o_t and not prompt_split.o_b and prompt_split.low_confidence

    flip_split = consistency.consistency_from_logits(
        one_hot(0), {g: one_hot(0) for g in consistency.PROMPT_GROUPS}, torch.stack([one_hot(0)]),
        {"hflip": one_hot(2)},
    )
    assert flip_split.o_b and not flip_split.o_t and flip_split.low_confidence
    d = flip_split.details(["a", "b", "c"])
    assert d.views == {"hflip": "c"} and d.verdict == "low confidence" and d.low_confidence is True


def set_class_vectors(cache: TextFeatureCache, loaded, vectors: dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """Fix each class's text features by hand: (name-only vector, [80, D] template vectors)."""
    for name, (name_vec, template_vecs) in vectors.items():
        cache.put(loaded.identity, [name], F.normalize(name_vec, dim=-1)[None])
        cache.put(loaded.identity, [templates.fill(t, name) for t in templates.CLIP80],
                  F.normalize(template_vecs, dim=-1))


@pytest.fixture()
def asymmetric(tiny, cat_path):
    image = load_image(cat_path)
    f = embed_images(tiny, [image])[0]
    g = consistency.embed_views(tiny, [image.image], ["hflip"])[0, 0]
    assert torch.dot(f, g) < 0.999  # the flip changes the features
    return image, f, g


def test_flip_that_changes_the_prediction_gives_o_b(tiny, asymmetric):
    image, f, g = asymmetric
    cache = TextFeatureCache()
    # "left" is the original image itself, "right" its mirror image: the flip swaps the answer.
    set_class_vectors(cache, tiny, {"left": (f, f.expand(80, -1)), "right": (g, g.expand(80, -1))})
    (check,) = consistency.analyse(tiny, [image.image], f[None], ["left", "right"], cache, views=["hflip"])
    assert check.base == 0 and check.views == {"hflip": 1}
    assert check.o_b and not check.o_t and check.low_confidence
    assert check.s_t == 1.0 and check.s_b == 0.0


def test_prompt_groups_that_disagree_give_o_t_and_s_t(tiny, asymmetric):
    image, f, _ = asymmetric
    gen = torch.Generator().manual_seed(0)
    r, q = torch.randn(2, f.numel(), generator=gen)
    cache = TextFeatureCache()
    # Templates 1-40 say "a" (they are the image), templates 41-80 say "b".
    a_templates = torch.cat([f.expand(40, -1), r.expand(40, -1)])
    b_templates = torch.cat([q.expand(40, -1), f.expand(40, -1)])
    set_class_vectors(cache, tiny, {"a": (f, a_templates), "b": (q, b_templates)})
    (check,) = consistency.analyse(tiny, [image.image], f[None], ["a", "b"], cache, views=["hflip"])
    assert check.groups["name"] == 0 and check.groups["clip80[1-40]"] == 0 and check.groups["clip80[41-80]"] == 1
    assert check.o_t and check.low_confidence
    assert check.s_t == 0.5  # 40 of the 80 single-template classifiers agree with the base
    assert check.single_template == [0] * 40 + [1] * 40


def test_s_b_is_the_share_of_views_agreeing(tiny, cat_path):
    image = load_image(cat_path)
    names = ["cat", "dog", "cup", "rocket", "tree"]
    cache = TextFeatureCache()
    f = embed_images(tiny, [image])
    (check,) = consistency.analyse(tiny, [image.image], f, names, cache)
    assert list(check.views) == list(VIEWS)
    views = consistency.embed_views(tiny, [image.image], list(VIEWS))[0]
    name_vecs = F.normalize(template_features(tiny, names, templates.NAME_ONLY, cache)[:, 0], dim=-1)
    tops = (views @ name_vecs.T).argmax(dim=-1).tolist()
    assert check.views == dict(zip(VIEWS, tops))
    assert check.s_b == pytest.approx(sum(t == check.base for t in tops) / len(tops))


def test_one_pass_embedding_matches_originals_then_views(tiny, cat_path, astronaut_path):
    images = [load_image(cat_path), load_image(astronaut_path)]
    feats, views = consistency.embed_with_views(tiny, [im.image for im in images], ["rot90"])
    assert feats.shape[0] == 2 and views.shape[:2] == (2, 2)      # the flip is always added
    assert torch.allclose(feats, embed_images(tiny, images), atol=1e-5)
    expected = consistency.embed_views(tiny, [im.image for im in images], ["hflip", "rot90"])
    assert torch.allclose(views, expected, atol=1e-5)


def test_views_are_deterministic_and_shaped():
    im = Image.new("RGB", (40, 20))
    im.putpixel((0, 0), (255, 0, 0))
    assert make_view(im, "rot90").size == (20, 40)
    assert make_view(im, "crop-top-left").size == (30, 15)
    assert make_view(im, "crop-top-left").getpixel((0, 0)) == (255, 0, 0)
    assert make_view(im, "crop-bottom-right").getpixel((0, 0)) == (0, 0, 0)
    assert make_view(im, "hflip").getpixel((39, 0)) == (255, 0, 0)
    assert make_view(im, "vflip").tobytes() == make_view(im, "vflip").tobytes()


def test_parse_views_keeps_the_flip():
    assert parse_views("rot90, vflip") == ("hflip", "rot90", "vflip")
    assert parse_views(None) == DEFAULT_VIEWS
    with pytest.raises(InputError, match="Unknown view 'sideways'"):
        parse_views("sideways")


def test_result_carries_the_analysis(tiny, cat_path):
    result = classify(tiny, [cat_path, cat_path], "cat, dog, cup", strategies="name", consistency=True,
                      views="rot90")
    d = result.to_dict()["images"][0]["analyses"]["consistency"]
    for key in ("s_t", "s_b", "o_t", "o_b", "low_confidence", "verdict", "groups", "views", "base"):
        assert key in d
    assert set(d["groups"]) == set(consistency.PROMPT_GROUPS) and set(d["views"]) == {"hflip", "rot90"}
    assert d["base"] == result.images[0].strategies["name"].top1.class_name
    assert d["low_confidence"] == (d["o_t"] or d["o_b"])
    plain = classify(tiny, [cat_path], "cat, dog, cup", strategies="name")
    assert plain.images[0].analyses == {}
