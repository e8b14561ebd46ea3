"""The page's arena parts: two models side by side, a sigmoid model's own scores, the memory check
before loading, the descriptors file upload and each method's account of its decision."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from zsdemo.app import choices, classifying, panels, state as app_state
from zsdemo.core import markup
from zsdemo.engine import models
from zsdemo.core.errors import InputError, ModelLoadError
from zsdemo.engine.images import load_image
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.engine.text import encode_prompts

CLASSES = "cat, coffee mug, rocket"


@pytest.fixture(scope="module")
def config(cat_path) -> app_state.AppConfig:
    return app_state.AppConfig("tiny-random", None, "cpu", None, allow_random=True).with_uploads(cat_path.parent)


@pytest.fixture(scope="module")
def pair(config, cat_path, astronaut_path) -> app_state.Run:
    return classifying.run(config, [str(cat_path), str(astronaut_path)], CLASSES, ["name", "clip80", "perception"],
                    compare_model="tiny-random-sigmoid")


def test_the_second_model_gets_the_same_request(pair, cat_path, astronaut_path):
    second = models.get_model("tiny-random-sigmoid", None, "cpu")
    alone = classify(second, [str(cat_path), str(astronaut_path)], CLASSES, ["name", "clip80", "perception"])
    assert pair.compared is not None and pair.compared.model["name"] == "zsdemo-tiny-sigmoid"
    assert pair.result.model["name"] == "zsdemo-tiny"
    # Two different models (their random weights differ), so a mix-up would show.
    assert pair.result.images[0].strategies["name"].probs != pytest.approx(
        pair.compared.images[0].strategies["name"].probs, abs=1e-3)
    for mine, theirs in zip(pair.compared.images, alone.images):
        for s in ("name", "clip80", "perception"):
            assert mine.strategies[s].probs == pytest.approx(theirs.strategies[s].probs, abs=1e-6)
    # The API's answer: the first model's result, the second under "compared"; the page's state
    # round-trips both.
    doc = pair.to_dict()
    assert doc["schema"] == "zsdemo.classify/1" and doc["compared"]["model"]["name"] == "zsdemo-tiny-sigmoid"
    back = app_state.Run.from_state(json.loads(json.dumps(pair.to_state())))
    assert back.compared.to_dict() == pair.compared.to_dict()


def test_one_column_per_model_in_the_summary_and_the_bars(config, pair):
    summary = classifying.run_summary(pair, 0)
    row = summary.split('data-index="1"')[0]
    assert row.count('class="zs-model-col"') == 2
    labels = re.findall(r'<div class="zs-model-name">(.*?)</div>', row)
    assert labels == ["tiny model, RANDOM weights (tests only)", "tiny sigmoid model, RANDOM weights (tests only)"]
    bars = classifying.panels(config, pair, 0).bars
    assert bars.startswith('<div class="zs-compare">') and bars.count('class="zs-model-col"') == 2
    first, second = bars.split('<div class="zs-model-col">')[1:]
    assert first.count('class="zs-card"') == second.count('class="zs-card"') == 3
    assert "zs-sigmoid" not in first and panels.SIGMOID_NOTE not in markup.html(first)
    assert "Two models side by side" in classifying.run_models(pair)


def test_sigmoid_scores_are_the_models_own(pair, cat_path):
    """sigmoid(logit scale x cos + bias), from the model's own parameters; only for strategies whose
    logits are scaled cosines (PerceptionCLIP's are log-probabilities: no sigmoid there)."""
    second = models.get_model("tiny-random-sigmoid", None, "cpu")
    image = embed_images(second, [load_image(cat_path)])[0]
    text = encode_prompts(second, [c.strip() for c in CLASSES.split(",")])
    cos = text @ image
    scale, bias = second.model.logit_scale.exp().item(), second.model.logit_bias.item()
    want = torch.sigmoid(scale * cos + bias).tolist()
    r = pair.compared.images[0].strategies["name"]
    assert panels.sigmoid_scores(r, pair.compared.model["logit_bias"]) == pytest.approx(want, abs=1e-5)
    assert panels.sigmoid_scores(pair.compared.images[0].strategies["perception"], bias) is None
    assert panels.sigmoid_scores(pair.result.images[0].strategies["name"], None) is None
    bars = panels.bars_html(pair.compared.images[0], pair.compared.classes, pair.compared.strategies, 3, bias)
    assert markup.html(panels.SIGMOID_NOTE) in bars
    name_card = bars.split('<div class="zs-card">')[1]
    shown = [float(x) for x in re.findall(r'zs-sigmoid" title="sigmoid: ([\d.]+)%', name_card)]
    assert len(shown) == 3 and sorted(shown) == pytest.approx(sorted(100 * p for p in want), abs=0.06)


def test_the_same_model_twice_is_one_run(config, cat_path):
    r = classifying.run(config, [str(cat_path)], CLASSES, "name", compare_model="tiny-random")
    assert r.compared is None and "compared" not in r.to_dict()


def test_two_models_that_do_not_fit_together_are_refused_before_loading(config, cat_path, monkeypatch):
    monkeypatch.setattr(models, "REGISTRY", models.ModelRegistry())          # neither model loaded yet
    alone = int(models.parameter_bytes("zsdemo-tiny") * models.LOAD_FACTOR["cpu"]) + models.LOAD_MARGIN_BYTES
    monkeypatch.setattr(models, "free_memory", lambda dev: alone + 2**20)      # each fits alone, not both
    loads = []
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or pytest.fail("loaded"))
    with pytest.raises(ModelLoadError, match="side by side need about .* GB of memory and only .* GB is free on cpu"):
        classifying.run(config, [str(cat_path)], CLASSES, "name", model="tiny-random-sigmoid",
                 compare_model="tiny-random")
    assert loads == []


def test_a_forged_state_with_unequal_results_is_refused(pair):
    state = json.loads(json.dumps(pair.to_state()))
    state["compared"]["images"] = state["compared"]["images"][:1]
    with pytest.raises(InputError, match="could not be read back"):
        app_state.Run.from_state(state)


def test_the_descriptors_file_fills_the_box(tmp_path):
    uploads = tmp_path / "uploads"             # stands for Gradio's upload folder
    uploads.mkdir()
    config = app_state.AppConfig("tiny-random", None, "cpu", None).with_uploads(uploads)
    good = uploads / "descriptors.json"
    good.write_text(json.dumps({"cat": ["whiskers", "pointed ears"], "tiger": ["stripes"]}), encoding="utf-8")
    text, message = choices.load_descriptors(config, str(good), CLASSES)
    assert json.loads(text)["cat"] == ["whiskers", "pointed ears"]
    assert message == "Descriptors loaded: 2 for 1 of the 3 classes; 1 entries name other classes (ignored)."
    good.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="must map class names"):
        choices.load_descriptors(config, str(good), CLASSES)
    good.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        choices.load_descriptors(config, str(good), CLASSES)
    outside = tmp_path / "d.json"
    outside.write_text('{"cat": ["whiskers"]}', encoding="utf-8")
    for sent in (str(outside), "/etc/passwd", 5, None, {"path": "/etc/passwd"}):
        with pytest.raises(InputError, match="was not uploaded with this request"):
            choices.load_descriptors(config, sent, CLASSES)


def test_each_method_explains_its_decision(config, cat_path, astronaut_path):
    r = classifying.run(config, [str(cat_path), str(astronaut_path)], CLASSES,
                 ["name", "dclip", "cupl", "waffle", "zpe", "perception"],
                 descriptors="cat: <b>whiskers</b>; pointed ears\ncoffee mug: a handle")
    text = classifying.panels(config, r, 0).methods
    for label in ("DCLIP", "CuPL", "WaffleCLIP", "ZPE", "PerceptionCLIP"):
        assert f"<h3>{label}" in text
    assert "&lt;b&gt;whiskers&lt;/b&gt;" in text and "<b>" not in text         # user text shown as text
    dclip = r.result.images[0].strategies["dclip"].details.classes
    best = dclip[0]["phrases"][0]
    assert f"({best['cosine']:.3f})" in text
    zpe = r.result.images[0].strategies["zpe"].details
    assert f"{zpe.top[0]['weight']:.4f}" in text and "from the 2 images" in text
    pz = r.result.images[0].strategies["perception"].details.attributes["quality"]
    assert f"{100 * max(pz.values()):.1f}%" in text
    alone = classifying.run(config, [str(cat_path)], CLASSES, ["zpe"])
    assert "One image gives ZPE no information" in classifying.panels(config, alone, 0).methods
    assert classifying.panels(config, classifying.run(config, [str(cat_path)], CLASSES, ["name"]), 0).methods \
        == panels.area_hint("methods")


def test_the_page_has_the_new_controls():
    import app

    page = app.build_app("tiny-random", None, "cpu", None, allow_random=True)
    ids = {getattr(b, "elem_id", None) for b in page.blocks.values()}
    assert {"compare-model", "descriptor-file", "attributes", "perception-temperature", "methods-panels"} <= ids
    assert Path(app.__file__).read_text().count("import torch") == 0
