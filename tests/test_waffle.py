"""WaffleCLIP (Roth et al.; docs/METHODS.md §6): random descriptors shared by all classes."""

from __future__ import annotations

import pytest
import torch

from zsdemo.prompts.descriptors import which
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.engine.images import load_image
from zsdemo.data.labelled import open_labelled
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.strategies import waffle
from zsdemo.prompts.templates import fill
from zsdemo.engine.text import encode_prompts
from zsdemo.strategies import read_result

CLASSES = ["cat", "dog", "golden retriever"]


def test_descriptors_are_seeded_shared_and_sized_like_the_class_names():
    first = waffle.descriptors(CLASSES, 0)
    assert first == waffle.descriptors(CLASSES, 0) and first != waffle.descriptors(CLASSES, 1)
    assert len(first) == 2 * waffle.PAIRS
    words, chars = first[0::2], first[1::2]
    # Names have 1.33 words (rounds to 1) of mean length 4.5 (rounds to 4, Python's round-half-even);
    # the longest words average 4.67 letters: ceil 5, plus the group count 1, in 1 group.
    assert all(len(w.split(" ")) == 1 and len(w) <= 4 for w in words)
    assert all(len(c) == 6 and c.isalpha() for c in chars)
    two_words = waffle.descriptors(["golden retriever", "sea lion"], 0)
    assert all(len(c.split(", ")) == 2 for c in two_words[1::2])
    assert which("has fur") == "which has fur" and which("an animal") == "which is an animal"
    assert which("fur") == "which has fur" and which("used for tea") == "which is used for tea"


def test_score_is_the_mean_cosine_over_phrases_then_seeds(tiny, cat_path):
    result = classify(tiny, [cat_path], ", ".join(CLASSES), "waffle", cache=None)
    r = result.images[0].strategies["waffle"]
    image = embed_images(tiny, [load_image(cat_path)])[0]
    phrases = waffle.templates(CLASSES)
    expected = []
    for c in CLASSES:
        cos = encode_prompts(tiny, [fill(t, c) for t in phrases]) @ image
        expected.append(cos.view(waffle.SEEDS, -1).mean(dim=1).mean())
    logits = tiny.logit_scale * torch.stack(expected)
    assert r.probs == pytest.approx(logits.softmax(-1).tolist(), abs=1e-5)
    d = r.details
    assert d.seeds == waffle.SEEDS and len(d.top1_per_seed) == waffle.SEEDS and len(d.top_phrases) == waffle.SHOWN
    assert all(p["text"].startswith(f"A photo of a {r.top1.class_name}, which ") for p in d.top_phrases)
    cosines = [p["cosine"] for p in d.top_phrases]
    assert cosines == sorted(cosines, reverse=True)
    again = read_result(result.to_dict()).images[0].strategies["waffle"].details
    assert again == d


def test_waffle_in_the_evaluation(tiny, tmp_path, cat_path, astronaut_path):
    for label, photo in (("cat", cat_path), ("astronaut", astronaut_path)):
        (tmp_path / label).mkdir()
        (tmp_path / label / photo.name).write_bytes(photo.read_bytes())
    data = open_labelled(tmp_path)
    report = evaluate(tiny, data, evaluation_request(data, "name,waffle"), cache=None)
    assert report.summary()["accuracy"]["waffle"]["label"] == "WaffleCLIP (random descriptors)"
    by_file = {r.file: r.top5["waffle"][0] for r in report.records}
    single = classify(tiny, [tmp_path / "cat" / cat_path.name], data.classes, "waffle", cache=None)
    assert by_file[f"cat/{cat_path.name}"] == single.images[0].strategies["waffle"].top1.index
