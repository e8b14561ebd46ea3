"""Test-time prompt tuning (SPEC §5) on the tiny model."""

from __future__ import annotations

import pytest
import torch

from zsdemo.core.errors import InputError
from zsdemo.engine.images import load_image
from zsdemo.engine.models import load_model, resolve_spec
from zsdemo.run.pipeline import classify
from zsdemo.strategies import tpt
from zsdemo.strategies import read_result
from zsdemo.strategies import options
from zsdemo.engine import context

CLASSES = ["cat", "dog", "coffee mug", "rocket", "astronaut"]


@pytest.fixture(scope="module")
def image(cat_path):
    return load_image(cat_path).image


def test_views_are_seeded_and_inside_the_image():
    s = tpt.TPTSettings()
    views = tpt.sample_views(451, 300, s)
    assert len(views) == 64 and views[0] == tpt.View(None, False)
    assert views == tpt.sample_views(451, 300, s)
    assert views != tpt.sample_views(451, 300, tpt.TPTSettings(seed=1))
    for v in views[1:]:
        left, top, right, bottom = v.box
        assert 0 <= left < right <= 451 and 0 <= top < bottom <= 300
        assert 0.08 * 0.9 <= (right - left) * (bottom - top) / (451 * 300) <= 1.0
    assert 10 < sum(v.flip for v in views[1:]) < 53  # about half are flipped


def test_one_step_is_a_hand_written_adamw_step(tiny, image):
    s = tpt.TPTSettings()
    parts = tpt.prompt_parts(tiny, CLASSES)
    out = tpt.tune(tiny, image, parts, s)

    feats = tpt.embed_views(tiny, image, tpt.sample_views(image.width, image.height, s))
    ctx = parts.init.clone().requires_grad_(True)
    logits = tiny.logit_scale * feats @ context.text_features(tiny, parts, ctx).T
    ent = tpt.entropy(logits.detach())
    kept = torch.argsort(ent, stable=True)[:6]
    assert out.kept == kept.tolist()
    probs = logits[kept].softmax(-1).mean(0)
    loss = -(probs * probs.log()).sum()              # entropy of the mean probability
    assert float(loss.detach()) == pytest.approx(out.loss_before, rel=1e-5)
    (g,) = torch.autograd.grad(loss, [ctx])
    lr, wd, eps = 5e-3, 0.01, 1e-8
    m_hat, v_hat = g, g * g                          # step 1: bias corrections cancel (1 - beta)
    expected = parts.init * (1 - lr * wd) - lr * m_hat / (v_hat.sqrt() + eps)
    assert torch.allclose(out.ctx_after, expected, atol=1e-6)
    assert not torch.equal(out.ctx_after, out.ctx_before)


def test_loss_on_kept_views_decreases(tiny, image):
    for steps in (1, 3):
        out = tpt.tune(tiny, image, tpt.prompt_parts(tiny, CLASSES), tpt.TPTSettings(steps=steps))
        assert out.loss_after < out.loss_before


def test_context_starts_from_a_photo_of_a(tiny):
    parts = tpt.prompt_parts(tiny, CLASSES)
    words = tiny.tokenizer(["a photo of a"])[0, 1:5]
    assert torch.equal(parts.init, parts.tower.token_embedding(words).float())
    # With the initial context the prompts are exactly "a photo of a {class}.".
    from zsdemo.engine.text import encode_prompts
    direct = encode_prompts(tiny, [tpt.TEMPLATE.replace("{}", c) for c in CLASSES])
    assert torch.allclose(context.text_features(tiny, parts, parts.init), direct, atol=1e-6)


def test_every_image_starts_from_scratch(tiny, image, astronaut_path):
    parts = tpt.prompt_parts(tiny, CLASSES)
    first = tpt.tune(tiny, image, parts, tpt.TPTSettings())
    tpt.tune(tiny, load_image(astronaut_path).image, parts, tpt.TPTSettings())
    again = tpt.tune(tiny, image, parts, tpt.TPTSettings())
    assert torch.equal(first.ctx_after, again.ctx_after)
    assert torch.equal(first.logits_after, again.logits_after)
    result = classify(tiny, [image, astronaut_path, image], CLASSES, "tpt")
    assert result.images[0].strategies["tpt"].probs == result.images[2].strategies["tpt"].probs


def test_settings_are_respected(tiny, image):
    parts = tpt.prompt_parts(tiny, CLASSES)
    small = tpt.tune(tiny, image, parts, tpt.TPTSettings(views=16, select_fraction=0.25))
    assert len(small.views) == 16 and len(small.view_entropy) == 16 and len(small.kept) == 4
    assert tpt.TPTSettings(views=16).kept == 1
    none = tpt.tune(tiny, image, parts, tpt.TPTSettings(steps=0))
    assert torch.equal(none.logits_after, none.logits_before) and torch.equal(none.ctx_after, none.ctx_before)
    for lr in (1e-3, 2e-2):
        out = tpt.tune(tiny, image, parts, tpt.TPTSettings(lr=lr))
        moved = (out.ctx_after - out.ctx_before * (1 - lr * 0.01)).abs().max()
        assert float(moved) == pytest.approx(lr, rel=1e-3)  # Adam's first step moves by lr
    other_seed = tpt.tune(tiny, image, parts, tpt.TPTSettings(seed=7))
    assert other_seed.views != small.views


@pytest.mark.parametrize("kwargs, message", [
    (dict(views=1), "views"), (dict(views=100000), "views"), (dict(steps=-1), "steps"),
    (dict(select_fraction=0.0), "fraction"), (dict(lr=float("nan")), "learning rate"), (dict(seed="x"), "seed"),
])
def test_bad_settings_get_messages(kwargs, message):
    with pytest.raises(InputError, match=message):
        options.parse(tpt.TPTSettings, kwargs)


def test_gradients_reach_only_the_context(image):
    model = load_model(resolve_spec("tiny-random"), device="cpu")
    for p in model.model.parameters():
        p.requires_grad_(True)  # even trainable weights must get no gradient
    seen = []
    model.model.visual.register_forward_hook(lambda *_: seen.append(torch.is_grad_enabled()))
    out = tpt.tune(model, image, tpt.prompt_parts(model, CLASSES), tpt.TPTSettings(views=8, steps=2))
    assert seen and not any(seen)
    assert all(p.grad is None for p in model.model.parameters())
    assert out.loss_after < out.loss_before


def test_result_records_before_and_after(tiny, cat_path):
    result = classify(tiny, [cat_path], CLASSES, "photo,tpt", tpt={"views": 32})
    res = result.images[0].strategies["tpt"]
    d = res.details
    assert isinstance(d, tpt.TPTDetails)
    assert d.settings.views == 32 and len(d.views) == 32 and len(d.kept_views) == 3
    assert d.probs_before == pytest.approx(result.images[0].strategies["photo"].probs, abs=1e-5)
    assert res.probs != d.probs_before
    assert d.top1_before == result.images[0].strategies["photo"].top1.class_name
    # The JSON keys, and the typed details back from them.
    doc = result.to_dict()["images"][0]["strategies"]["tpt"]["details"]
    assert list(doc) == ["probs_before", "entropy_before", "entropy_after", "loss_before", "loss_after",
                         "kept_views", "view_entropy", "views", "settings", "top1_before"]
    assert read_result(result.to_dict()).images[0].strategies["tpt"].details == d


def test_tensor_crops_match_pillow_crops(tiny, image):
    views = tpt.sample_views(image.width, image.height, tpt.TPTSettings(views=8))
    batch = tpt.view_batch(tiny, image, views)
    size = tiny.image_size
    for v, got in zip(views, batch):
        if v.box is None:
            ref = tiny.preprocess(image)
        else:
            crop = image.crop(v.box).resize((size, size), tpt.Image.Resampling.BICUBIC)
            ref = tiny.preprocess(crop.transpose(tpt.Image.Transpose.FLIP_LEFT_RIGHT) if v.flip else crop)
        # Pillow rounds to 8 bits and its bicubic filter differs slightly: compare on the pixel scale.
        assert (got - ref).abs().mean() < 0.02
