from pathlib import Path

import open_clip
import pytest
import torch

from zsdemo import cli
from zsdemo.core.errors import InputError
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.data.labelled import open_labelled
from zsdemo.run.pipeline import classify
from zsdemo.strategies import STRATEGIES, Batch, Scores, Strategy, parse_strategies
from zsdemo.prompts.templates import CLIP7, CLIP80, NAME_ONLY, SINGLE, parse_templates
from zsdemo.engine.text import TextFeatureCache
from zsdemo.engine.zero_shot_classifier import class_vectors
from zsdemo.strategies import read_result

CLASSES = ["cat", "dog", "golden retriever", "space shuttle"]


@pytest.mark.parametrize("templates", [SINGLE, CLIP7, CLIP80], ids=["photo", "clip7", "clip80"])
def test_ensemble_equals_open_clip_builder(tiny, templates):
    with torch.no_grad():
        expected = open_clip.build_zero_shot_classifier(
            tiny.model, tiny.tokenizer, CLASSES, templates, num_classes_per_batch=2,
            device="cpu", use_tqdm=False)
    ours = class_vectors(tiny, CLASSES, templates, cache=None)
    assert ours.shape == (len(CLASSES), 32)
    assert (expected.T - ours).abs().max().item() < 1e-4


def test_open_clip_lambdas_become_format_strings():
    assert len(CLIP7) == 7 and len(CLIP80) == 80
    assert all(t.count("{}") == 1 for t in CLIP7 + CLIP80)
    assert CLIP80[0] == "a bad photo of a {}."


def test_classifier_cache_returns_the_same_matrix(tiny):
    cache = TextFeatureCache()
    first = class_vectors(tiny, CLASSES, CLIP7, cache)
    misses = cache.misses
    again = class_vectors(tiny, CLASSES, CLIP7, cache)
    assert again is first and cache.misses == misses
    cache.classifiers.clear()
    rebuilt = class_vectors(tiny, CLASSES, CLIP7, cache)
    assert torch.equal(rebuilt, first) and cache.misses == misses


def test_parse_strategies():
    assert parse_strategies("name, clip80", False) == ("name", "clip80")
    zero_shot = tuple(s for s in STRATEGIES if not STRATEGIES[s].needs_support)
    assert parse_strategies("all", False) == tuple(s for s in zero_shot if s != "custom")
    assert parse_strategies("all", True) == zero_shot
    assert parse_strategies("all", True, has_support=True) == tuple(STRATEGIES)
    assert parse_strategies(["photo", "photo", "NAME"], False) == ("photo", "name")
    with pytest.raises(InputError, match="Unknown strategy 'clip81'"):
        parse_strategies("clip81", False)
    with pytest.raises(InputError, match="needs templates"):
        parse_strategies("custom", False)
    with pytest.raises(InputError, match="No strategy"):
        parse_strategies(" , ", False)


@pytest.mark.parametrize("bad, message", [
    (["a photo"], "has no '{}'"),
    (["a {} of a {}"], "has 2 '{}'"),
])
def test_bad_templates_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        parse_templates(bad)


def test_templates_keep_commas_and_other_braces():
    assert parse_templates(["a photo of a {}, taken at night", "", "{x} {}"]) == (
        "a photo of a {}, taken at night", "{x} {}")
    assert parse_templates("one {}\ntwo {}\n") == ("one {}", "two {}")


class Mix(Strategy):
    """docs/architecture.md's toy strategy: the mean of the name-only and the single-template logits."""

    id = "mix"
    label = "Name + photo"
    description = "the name-only and single-template logits, averaged"

    def classifiers(self, request):
        return NAME_ONLY, SINGLE

    def score(self, batch: Batch) -> Scores:
        return Scores((batch.logits(NAME_ONLY) + batch.logits(SINGLE)) / 2)


def test_a_new_strategy_is_one_class_and_one_registry_line(tiny, cat_path, astronaut_path, tmp_path, monkeypatch):
    monkeypatch.setitem(STRATEGIES, "mix", Mix())
    result = classify(tiny, [cat_path, astronaut_path], CLASSES, "name,photo,mix", top_k=2)
    for im in result.images:
        expected = (torch.tensor(im.strategies["name"].logits) + torch.tensor(im.strategies["photo"].logits)) / 2
        mix = im.strategies["mix"]
        assert torch.allclose(torch.tensor(mix.probs), expected.softmax(-1), atol=1e-6)
        assert mix.label == "Name + photo" and len(mix.top_k) == 2 and mix.details == {}
    assert "  mix " in cli.format_table(result)
    assert read_result(result.to_dict()).to_dict() == result.to_dict()
    # The evaluation scores it through the same dispatch.
    for label, photo in (("cat", cat_path), ("astronaut", astronaut_path)):
        (tmp_path / label).mkdir()
        (tmp_path / label / photo.name).write_bytes(photo.read_bytes())
    data = open_labelled(tmp_path)
    report = evaluate(tiny, data, evaluation_request(data, "name,photo,mix"), cache=None)
    by_file = {r.file: r for r in report.records}
    for im in classify(tiny, [tmp_path / "cat" / cat_path.name, tmp_path / "astronaut" / astronaut_path.name],
                       data.classes, "mix").images:
        assert by_file[Path(im.source).relative_to(tmp_path).as_posix()].top5["mix"][0] == \
            im.strategies["mix"].top1.index
    assert report.summary()["accuracy"]["mix"]["label"] == "Name + photo"
