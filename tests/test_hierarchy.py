"""WordNet re-ranking (SPEC §4) and its place in the pipeline."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from zsdemo.wordnet import senses as wordnet, data as wordnet_data
from zsdemo.engine.consistency import Consistency
from zsdemo.engine.images import load_image
from zsdemo.run.pipeline import classify, embed_images, prepare_request, strategy_result
from zsdemo.engine.results import StrategyResult
from zsdemo.strategies import hierarchy
from zsdemo.prompts.templates import CLIP80
from zsdemo.engine.text import TextFeatureCache, encode_prompts
from zsdemo.engine.zero_shot_classifier import class_vectors

ASSET_IMAGES = ["cat.png", "coffee.png", "astronaut.png", "rocket.jpg"]


def sense(name: str, parent: str | None, children: tuple[str, ...]) -> wordnet.ClassSense:
    return wordnet.ClassSense(name, (), None, "user", "", parent, None, children, ())


def test_phrases_follow_the_spec():
    s = sense("crane", "wading bird", ("whooping crane",))
    assert hierarchy.phrases("crane", s) == ["crane which is a kind of wading bird",
                                             "whooping crane which is a kind of wading bird"]
    assert hierarchy.phrases("thing", sense("thing", None, ("part",))) == ["thing", "part"]


def test_rerank_picks_the_highest_max_cosine(tiny, cat_path):
    f = embed_images(tiny, [load_image(cat_path)])[0]
    names = ["alpha", "beta", "gamma"]
    senses = [sense("alpha", "p1", ("a1",)), sense("beta", "p2", ("b1", "b2")), sense("gamma", None, ())]
    cache = TextFeatureCache()
    gen = torch.Generator().manual_seed(1)
    # Every phrase gets a random vector, except one child of "beta", which is the image itself.
    flat = [p for c, s in zip(names, senses) for p in hierarchy.phrases(c, s)]
    vectors = F.normalize(torch.randn(len(flat), f.numel(), generator=gen), dim=-1)
    vectors[flat.index("b2 which is a kind of p2")] = f
    cache.put(tiny.identity, flat, vectors)
    scores, details = hierarchy.rerank(tiny, f, [0, 1, 2], names, senses, hierarchy.HIERARCHY, cache)
    for d, score in zip(details, scores):
        assert d.score == max(p.cosine for p in d.prompts) == float(score)
    assert [d.class_name for d in details] == names
    assert int(scores.argmax()) == 1 and abs(float(scores[1]) - 1.0) < 1e-5
    assert [p.text for p in details[1].prompts] == hierarchy.phrases("beta", senses[1])


def test_hierarchy80_scores_phrases_as_clip80_ensembles(tiny, cat_path):
    f = embed_images(tiny, [load_image(cat_path)])[0]
    s = sense("crane", "wading bird", ("whooping crane",))
    cache = TextFeatureCache()
    scores, details = hierarchy.rerank(tiny, f, [0], ["crane"], [s], hierarchy.HIERARCHY80, cache)
    expected = class_vectors(tiny, hierarchy.phrases("crane", s), CLIP80, cache) @ f
    assert torch.allclose(torch.tensor([p.cosine for p in details[0].prompts]), expected, atol=1e-6)
    assert float(scores[0]) == float(expected.max())


def check(low: bool, base: int = 0) -> Consistency:
    return Consistency(base=base, groups={"name": base}, views={"hflip": base}, single_template=[base],
                       s_t=1.0, s_b=1.0, o_t=low, o_b=False)


def hierarchy_result(loaded, image_feature, name_logits, fallback_logits, check: Consistency, senses, request,
                     cache) -> StrategyResult:
    logits, details = hierarchy.predict(loaded, hierarchy.HIERARCHY, image_feature, name_logits, fallback_logits,
                                        check.low_confidence, request.rerank_all, request.classnames, senses, cache)
    result = strategy_result("hierarchy", logits, request.classnames, request.top_k)
    result.details = details
    return result


def test_only_low_confidence_images_are_reranked_unless_asked(tiny, cat_path):
    names = ("crane", "heron", "stork", "cat", "dog", "cup", "bulldozer")
    f = embed_images(tiny, [load_image(cat_path)])[0]
    name_logits = torch.arange(len(names), 0, -1).float()
    fallback = torch.linspace(0, 1, len(names))
    senses = wordnet.class_senses(names)
    cache = TextFeatureCache()
    request = prepare_request(",".join(names), "hierarchy")

    kept = hierarchy_result(tiny, f, name_logits, fallback, check(low=False), senses, request, cache)
    assert kept.details.applied is False and "confident" in kept.details.reason
    assert torch.allclose(torch.tensor(kept.probs), fallback.softmax(-1))
    assert all(p.cosine is None for c in kept.details.candidates for p in c.prompts)

    for low, rerank_all in ((True, False), (False, True)):
        request = dataclasses.replace(request, rerank_all=rerank_all)
        res = hierarchy_result(tiny, f, name_logits, fallback, check(low=low), senses, request, cache)
        assert res.details.applied is True
        cands = res.details.candidates
        assert [c.index for c in cands] == [0, 1, 2, 3, 4]  # the name-only top-5
        best = max(cands, key=lambda c: c.score)
        assert res.top1.class_name == best.class_name
        assert res.logits[5] is None and res.logits[6] is None and res.probs[5] == 0.0
        assert abs(sum(res.probs) - 1) < 1e-5
        assert cands[0].sense == "crane.n.05" and cands[0].parent == "wading bird"


def test_pipeline_reranks_exactly_the_low_confidence_images(tiny):
    from conftest import ASSETS
    images = [ASSETS / "images" / n for n in ASSET_IMAGES]
    classes = "crane, heron, stork, cat, dog, cup, rocket, astronaut, coffee"
    result = classify(tiny, images, classes, strategies="name,hierarchy,hierarchy80")
    for im in result.images:
        low = im.analyses["consistency"].low_confidence
        assert im.strategies["hierarchy"].details.applied == low
        assert im.strategies["hierarchy80"].details.applied == low
        if not low:
            assert im.strategies["hierarchy"].probs == im.strategies["name"].probs
    assert result.senses[0]["chosen"]["synset"] == "crane.n.05"
    everything = classify(tiny, images, classes, strategies="hierarchy", rerank_all=True)
    assert all(im.strategies["hierarchy"].details.applied for im in everything.images)


def test_sense_choice_changes_the_phrases(tiny, cat_path):
    result = classify(tiny, [cat_path], "crane, heron, stork", strategies="hierarchy", rerank_all=True,
                      senses="crane=crane.n.04")
    crane = next(c for c in result.images[0].strategies["hierarchy"].details.candidates
                 if c.class_name == "crane")
    assert crane.sense == "crane.n.04" and crane.parent == "lifting device"
    assert crane.prompts[0].text == "crane which is a kind of lifting device"


def test_without_wordnet_hierarchy_says_so_and_the_rest_works(tiny, cat_path, monkeypatch):
    monkeypatch.setattr(wordnet_data, "_load_reader", lambda: (_ for _ in ()).throw(LookupError("none")))
    monkeypatch.setattr(wordnet_data, "system_wordnet_dir", lambda: None)
    monkeypatch.setattr(wordnet_data, "_download", lambda: False)
    wordnet.reset()
    try:
        result = classify(tiny, [cat_path], "cat, dog, cup", strategies="name,clip80,hierarchy", rerank_all=True)
        assert any("WordNet data was not found" in w for w in result.warnings)
        im = result.images[0]
        assert im.ok and set(im.strategies) == {"name", "clip80", "hierarchy"}
        cands = im.strategies["hierarchy"].details.candidates
        assert all(c.sense is None and [p.text for p in c.prompts] == [c.class_name] for c in cands)
        # Bare names re-ranked by max cosine give the name-only ranking back.
        assert im.strategies["hierarchy"].top1.class_name == im.strategies["name"].top1.class_name
    finally:
        monkeypatch.undo()
        wordnet.reset()


def test_phrase_features_come_from_the_shared_cache(tiny, cat_path):
    cache = TextFeatureCache()
    classify(tiny, [cat_path], "crane, heron, stork", strategies="hierarchy", rerank_all=True, cache=cache)
    misses = cache.misses
    classify(tiny, [cat_path], "crane, heron, stork", strategies="hierarchy", rerank_all=True, cache=cache)
    assert cache.misses == misses
    phrase = "crane which is a kind of wading bird"
    assert torch.allclose(encode_prompts(tiny, [phrase], cache), encode_prompts(tiny, [phrase], None), atol=1e-6)


def test_a_pruned_score_just_under_the_threshold_reads_as_smaller():
    """Issue 28: "black stork (0.155 < 0.155)"."""
    from zsdemo.strategies.hierarchy import Pruning, distinct

    assert distinct(0.15512, 0.15534) == ("0.1551", "0.1553")
    assert distinct(0.12, 0.155) == ("0.12", "0.155")
    pruning = Pruning({}, {}, 0.155431, 0.4)
    assert pruning.why({"name": "black stork", "norm_variance": 0.155102}) == "0.1551 < 0.1554"
