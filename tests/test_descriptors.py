"""Descriptor strategies: DCLIP and CuPL (docs/METHODS.md §6), and reading descriptor files."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from zsdemo import cli
from zsdemo.prompts.descriptors import parse_descriptors
from zsdemo.core.errors import InputError
from zsdemo.engine.images import load_image
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.prompts.templates import CLIP80, fill
from zsdemo.engine.text import encode_prompts
from zsdemo.strategies import read_result

CLASSES = ["cat", "golden retriever", "rocket"]
DESCRIPTORS = {"Cat": ["whiskers", "has pointed ears", "a small furry animal"],
               "golden_retriever": ["golden fur", "used as a guide dog"], "teapot": ["a spout"]}


def test_files_as_json_or_lines_match_the_classes():
    d = parse_descriptors(json.dumps(DESCRIPTORS), CLASSES)
    assert d.of("cat") == ("whiskers", "has pointed ears", "a small furry animal")
    assert d.of("golden retriever") == ("golden fur", "used as a guide dog") and d.of("rocket") == ()
    assert d.unmatched == ("teapot",)
    lines = parse_descriptors("cat: whiskers; has pointed ears\n# a comment\nrocket: a tall white body", CLASSES)
    assert lines.of("cat") == ("whiskers", "has pointed ears") and lines.of("rocket") == ("a tall white body",)


@pytest.mark.parametrize("value, message", [
    ("{not json", "not valid JSON"), ('["a", "b"]', "must map class names"), ('{"cat": 5}', "list of text"),
    ("cat whiskers", "line 1"), ('{"cat": ["' + "x" * 1500 + '"]}', "at most 1,000"),
])
def test_bad_descriptor_files_get_a_message(value, message):
    with pytest.raises(InputError, match=message):
        parse_descriptors(value, CLASSES)


def test_dclip_is_the_mean_cosine_of_the_descriptor_phrases(tiny, cat_path):
    result = classify(tiny, [cat_path], ", ".join(CLASSES), "dclip", descriptors=json.dumps(DESCRIPTORS))
    r = result.images[0].strategies["dclip"]
    image = embed_images(tiny, [load_image(cat_path)])[0]
    phrases = {"cat": ["cat, which has whiskers", "cat, which has pointed ears", "cat, which is a small furry animal"],
               "golden retriever": ["golden retriever, which has golden fur",
                                    "golden retriever, which is used as a guide dog"],
               "rocket": ["rocket"]}                              # no descriptors: the bare name
    scores = torch.stack([(encode_prompts(tiny, phrases[c]) @ image).mean() for c in CLASSES])
    assert r.probs == pytest.approx((tiny.logit_scale * scores).softmax(-1).tolist(), abs=1e-5)
    assert any("No descriptors for 'rocket'" in w for w in result.warnings)
    assert any("teapot" in w for w in result.warnings)
    top = r.details.classes[0]
    assert top["class_name"] == r.top1.class_name and [p["text"] for p in top["phrases"]] != []
    cosines = [p["cosine"] for p in top["phrases"]]
    assert cosines == sorted(cosines, reverse=True) and top["score"] == pytest.approx(sum(cosines) / len(cosines))
    assert read_result(result.to_dict()).images[0].strategies["dclip"].details == r.details


@pytest.mark.parametrize("strategy, with_clip80", [("cupl", False), ("cupl80", True)])
def test_cupl_averages_the_sentence_embeddings(tiny, cat_path, strategy, with_clip80):
    sentences = {"cat": ["A cat is a small furry pet.", "Cats have whiskers."],
                 "golden retriever": ["A golden retriever is a friendly dog."], "rocket": []}
    result = classify(tiny, [cat_path], ", ".join(CLASSES), strategy, descriptors=sentences)
    image = embed_images(tiny, [load_image(cat_path)])[0]
    vectors = []
    for c in CLASSES:
        texts = sentences[c] + ([fill(t, c) for t in CLIP80] if with_clip80 else [])
        vectors.append(F.normalize(encode_prompts(tiny, texts or [c]).mean(dim=0), dim=-1))
    want = (tiny.logit_scale * torch.stack(vectors) @ image).softmax(-1)
    assert result.images[0].strategies[strategy].probs == pytest.approx(want.tolist(), abs=1e-5)


def test_cli_reads_a_descriptor_file(tmp_path, cat_path, capsys):
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps(DESCRIPTORS))
    code = cli.main(["classify", str(cat_path), "--classes", ", ".join(CLASSES), "--strategies", "name,dclip,cupl",
                     "--descriptors", str(path), "--model", "tiny-random", "--device", "cpu", "--quiet"])
    out = capsys.readouterr()
    assert code == 0 and "  dclip " in out.out and "No descriptors for 'rocket'" in out.out
    assert cli.main(["classify", str(cat_path), "--classes", "cat", "--strategies", "dclip",
                     "--descriptors", str(tmp_path / "missing.json"), "--model", "tiny-random"]) == cli.EXIT_BAD_INPUT
    assert "descriptors file" in capsys.readouterr().err


def test_without_descriptors_the_page_uses_zsdemos_own(tiny, cat_path):
    result = classify(tiny, [cat_path], "cat, dog, zebra", "dclip,cupl")
    assert any("zsdemo's own (assets/descriptors/dclip.json), which cover 2 of the 3" in w for w in result.warnings)
    details = {c["class_name"]: c for c in result.images[0].strategies["dclip"].details.classes}
    assert [p["text"] for p in details["zebra"]["phrases"]] == ["zebra"] and not details["zebra"]["described"]
    assert "cat, which has whiskers" in [p["text"] for p in details["cat"]["phrases"]]
    cupl = {c["class_name"]: c for c in result.images[0].strategies["cupl"].details.classes}
    assert any(p["text"].startswith("A cat is") for p in cupl["cat"]["phrases"])
