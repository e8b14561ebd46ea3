"""ZPE, zero-shot prompt weighting (Allingham et al.; docs/METHODS.md §6)."""

from __future__ import annotations

import pytest
import torch

from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.engine.images import load_image
from zsdemo.data.labelled import open_labelled
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.strategies import zpe
from zsdemo.prompts.templates import CLIP80
from zsdemo.engine.zero_shot_classifier import template_features
from zsdemo.strategies import read_result

CLASSES = ["cat", "dog", "rocket", "astronaut"]


def brute_force(features: torch.Tensor, per_template: torch.Tensor, scale: float) -> torch.Tensor:
    logits = scale * torch.einsum("nd,cpd->npc", features, per_template)          # l[i, p, c]
    debiased = logits - logits.mean(dim=0, keepdim=True)
    return debiased.max(dim=2).values.mean(dim=0).softmax(dim=0)


def test_weights_follow_the_paper_chunk_by_chunk(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(7, 16, generator=gen), dim=-1)
    per_template = torch.nn.functional.normalize(torch.randn(5, 6, 16, generator=gen), dim=-1)
    want = brute_force(feats, per_template, 30.0)
    monkeypatch.setattr(zpe, "CHUNK_VALUES", 2 * 6 * 5)                            # two images per chunk
    assert torch.allclose(zpe.weights(feats, per_template, 30.0), want, atol=1e-6)
    logits = zpe.weighted_logits(feats, per_template, want, 30.0)
    brute = (30.0 * torch.einsum("nd,cpd->npc", feats, per_template) * want[None, :, None]).sum(dim=1)
    assert torch.allclose(logits, brute, atol=1e-5)


def test_classify_weights_the_templates_with_the_request_images(tiny, cat_path, astronaut_path):
    images = [cat_path, astronaut_path]
    result = classify(tiny, images, ", ".join(CLASSES), "zpe", cache=None)
    feats = embed_images(tiny, [load_image(p) for p in images])
    per_template = template_features(tiny, CLASSES, CLIP80, None)
    w = brute_force(feats, per_template, tiny.logit_scale)
    want = zpe.weighted_logits(feats, per_template, w, tiny.logit_scale).softmax(-1)
    for row, im in enumerate(result.images):
        r = im.strategies["zpe"]
        assert r.probs == pytest.approx(want[row].tolist(), abs=1e-5)
        assert r.details.informative and r.details.images == 2
        assert r.details.top[0]["weight"] == pytest.approx(float(w.max()), abs=1e-6)
    assert read_result(result.to_dict()).images[0].strategies["zpe"].details == r.details


def test_one_image_gives_uniform_weights_and_says_so(tiny, cat_path):
    r = classify(tiny, [cat_path], ", ".join(CLASSES), "zpe", cache=None).images[0].strategies["zpe"]
    assert not r.details.informative and "uniform" in zpe.ZPE.note(r)
    assert r.details.top[0]["weight"] == pytest.approx(1 / 80, abs=1e-7)


def test_the_evaluation_weights_with_every_image_not_each_batch(tiny, tmp_path, cat_path, astronaut_path):
    files = []
    for label, photo in (("cat", cat_path), ("astronaut", astronaut_path)):
        for k, angle in enumerate((0, 90)):
            path = tmp_path / label / f"{k}.png"
            path.parent.mkdir(exist_ok=True)
            load_image(photo).image.rotate(angle).save(path)
            files.append(path)
    data = open_labelled(tmp_path, classes=CLASSES)
    report = evaluate(tiny, data, evaluation_request(data, "name,zpe"), batch_size=1, cache=None)
    together = classify(tiny, files, data.classes, "zpe", cache=None)
    # One batch alone would give uniform weights; the set's are not.
    assert together.images[0].strategies["zpe"].details.top[0]["weight"] > 1.01 / 80
    by_file = {r.file: r.top5["zpe"] for r in report.records}
    for path, im in zip(files, together.images):
        assert by_file[path.relative_to(tmp_path).as_posix()] == [p.index for p in im.strategies["zpe"].top_k]
    assert list(report.records[0].top5) == ["name", "clip80", "zpe"]
