"""The sparse WordNet hierarchy, the low-confidence rules and the top-k of the re-ranking (Ge et al.;
docs/METHODS.md)."""

from __future__ import annotations

import json

import pytest
import torch

from zsdemo.app import panels  # noqa: F401
from zsdemo.strategies import hierarchy
from zsdemo.wordnet import senses as wordnet, sparse as wordnet_sparse
from zsdemo.engine.consistency import Consistency, parse_rule
from zsdemo.core.errors import InputError
from zsdemo.run.pipeline import classify
from zsdemo.run.request import prepare_request
from zsdemo.prompts.templates import CLIP80, fill

CLASSES = ["sea anemone", "crane", "heron", "stork", "cat"]


def test_a_node_score_is_the_variance_of_the_unnormalised_norms_over_the_80_templates(tiny):
    names = ["anthozoan", "wading bird"]
    got = wordnet_sparse.norm_variances(tiny, names, cache=None)
    for name in names:
        tokens = tiny.tokenizer([fill(t, name) for t in CLIP80])
        with torch.no_grad():
            norms = tiny.model.encode_text(tokens).float().norm(dim=-1)     # open_clip's own full-context path
        assert got[name] == pytest.approx(float(norms.double().var(unbiased=False)), rel=1e-4)


def test_the_kept_share_and_the_threshold_do_not_depend_on_order(tiny):
    senses = wordnet.class_senses(CLASSES)
    _, forward = wordnet_sparse.sparsify(tiny, senses, 0.4, cache=None)
    _, backward = wordnet_sparse.sparsify(tiny, wordnet.class_senses(CLASSES[::-1]), 0.4, cache=None)
    assert forward.threshold == backward.threshold
    assert {k: n.kept for k, n in forward.nodes.items()} == {k: n.kept for k, n in backward.nodes.items()}
    scored = [n.norm_variance for n in forward.nodes.values()]
    own = {s.chosen.synset for s in senses}
    ranked_kept = sum(v >= forward.threshold for v in scored)
    assert ranked_kept == pytest.approx(0.4 * len(scored), abs=1)   # ties at the threshold are kept
    assert all(n.kept == (n.norm_variance >= forward.threshold or k in own) for k, n in forward.nodes.items())


def test_a_pruned_parent_gives_way_to_the_nearest_kept_ancestor_and_pruned_children_go(tiny):
    (anemone,) = wordnet.class_senses(["sea anemone"])
    chain = wordnet_sparse.ancestors(wordnet.synset_by_id(anemone.chosen.synset))
    assert anemone.parent == "anthozoan" and len(chain) > 2
    nodes = wordnet_sparse.population([anemone])
    names = {k: wordnet.readable_name(s) for k, s in nodes.items()}
    # Scores set by hand: the parent (anthozoan) and one child are rare words, the grandparent is not.
    scores = {n: 1.0 for n in names.values()}
    scores[names[chain[0].name()]] = 0.0
    scores[anemone.children[0]] = 0.0
    cache = wordnet_sparse.VarianceCache()
    cache.put(tiny.identity, scores)
    (sparse,), sparsity = wordnet_sparse.sparsify(tiny, [anemone], 0.5, cache)
    assert sparse.parent == wordnet.readable_name(chain[1]) and sparse.pruned_parents == (chain[0].name(),)
    assert anemone.children[0] not in sparse.children and sparse.pruned_children == (anemone.children_synsets[0],)
    assert not sparsity.nodes[chain[0].name()].kept and sparsity.nodes[chain[1].name()].kept


def test_keeping_everything_scores_nothing_and_changes_nothing():
    senses = wordnet.class_senses(CLASSES)
    same, sparsity = wordnet_sparse.sparsify(None, senses, 1.0)
    assert same == senses and sparsity.threshold is None
    assert all(n.kept and n.norm_variance is None for n in sparsity.nodes.values())


def test_scores_are_cached_per_model_on_disk(tiny, tmp_path, monkeypatch):
    first = wordnet_sparse.VarianceCache()
    first.attach(tmp_path)
    scores = wordnet_sparse.norm_variances(tiny, ["anthozoan", "heron"], first)
    (stored,) = tmp_path.glob("wordnet-norm-variance-*.json")
    assert json.loads(stored.read_text())["identity"] == tiny.identity
    monkeypatch.setattr(wordnet_sparse, "prompt_norms", lambda *a, **k: pytest.fail("recomputed"))
    again = wordnet_sparse.VarianceCache()
    again.attach(tmp_path)
    assert wordnet_sparse.norm_variances(tiny, ["heron", "anthozoan"], again) == scores
    stored.write_text("{not json")                                   # damaged: recomputed, not trusted
    monkeypatch.undo()
    fresh = wordnet_sparse.VarianceCache()
    fresh.attach(tmp_path)
    assert wordnet_sparse.norm_variances(tiny, ["heron"], fresh)["heron"] == pytest.approx(scores["heron"])


def test_the_result_lists_every_node_and_the_panel_says_what_was_pruned(tiny, cat_path):
    result = classify(tiny, [cat_path], ", ".join(CLASSES), "name,hierarchy", rerank_all=True, wordnet_keep=0.3)
    doc = result.to_dict()
    nodes = doc["wordnet_nodes"]
    assert {tuple(n) for n in nodes} == {("synset", "name", "norm_variance", "kept")}
    assert doc["wordnet_sparsity"]["keep"] == 0.3 and doc["wordnet_sparsity"]["population"] == len(nodes)
    threshold = doc["wordnet_sparsity"]["threshold"]
    pruned = [n for n in nodes if not n["kept"]]
    assert pruned and all(n["norm_variance"] < threshold for n in pruned)
    kept_names = {n["name"] for n in nodes if n["kept"]}
    for c in result.images[0].strategies["hierarchy"].details.candidates:
        assert c.parent is None or c.parent in kept_names
        assert set(c.children) <= kept_names
        assert all(p.text.endswith(f"which is a kind of {c.parent}") for p in c.prompts if c.parent)
    text = hierarchy.wordnet_markdown(result.images[0].strategies["hierarchy"], result)
    if any(s["pruned_parents"] or s["pruned_children"] for s in doc["senses"]):
        assert "pruned: ~~" in text and f"< {threshold:.3g}" in text
    assert f"at least {threshold:.3g}" in text


@pytest.mark.parametrize("value, message", [
    (0, "above 0 and at most 1"), (1.5, "above 0 and at most 1"), (float("nan"), "finite number"),
    ("lots", "must be a number"), (True, "finite number"),
])
def test_bad_keep_fractions_are_refused(value, message):
    with pytest.raises(InputError, match=message):
        prepare_request("cat, dog", "hierarchy", wordnet_keep=value)


def test_low_confidence_rules():
    check = Consistency(base=0, groups={"name": 0}, views={"hflip": 1}, single_template=[0, 1], s_t=0.5, s_b=0.0,
                        o_t=False, o_b=True)
    assert parse_rule("binary").is_low(check) and parse_rule(None).is_low(check)
    assert parse_rule("s_t<0.6").is_low(check) and not parse_rule("s_t<0.5").is_low(check)
    assert str(parse_rule(" S_B < .25 ")) == "s_b<0.25"
    for bad in ("s_t<0", "s_t<1.2", "max_logit<3", "s_t>0.5", 7, ["s_t<0.5"]):
        with pytest.raises(InputError, match="low-confidence rule"):
            parse_rule(bad)


def test_a_threshold_rule_decides_which_images_are_reranked(tiny, cat_path, astronaut_path):
    images = [cat_path, astronaut_path]
    result = classify(tiny, images, ", ".join(CLASSES), "name,hierarchy", low_confidence="s_t<0.9",
                      wordnet_keep=1)
    for im in result.images:
        check = im.analyses["consistency"]
        assert im.strategies["hierarchy"].details.applied == (check.s_t < 0.9)
        assert im.strategies["hierarchy"].details.low_confidence == (check.s_t < 0.9)


def test_top_10_reranks_ten_candidates(tiny, cat_path):
    names = ", ".join(CLASSES + ["dog", "cup", "rocket", "astronaut", "teapot", "lynx"])
    result = classify(tiny, [cat_path], names, "hierarchy", rerank_all=True, rerank_top=10, wordnet_keep=1)
    r = result.images[0].strategies["hierarchy"]
    assert len(r.details.candidates) == 10 and sum(p > 0 for p in r.probs) == 10
    with pytest.raises(InputError, match="Re-rank top-k"):
        prepare_request(names, "hierarchy", rerank_top=1)
