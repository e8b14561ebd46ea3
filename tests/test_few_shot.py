"""Few-shot mode (docs/METHODS.md §8): the support set, Tip-Adapter and CoOp on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zsdemo.app import classifying, state
from zsdemo.cli import main
from zsdemo.core.errors import InputError
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.engine.images import load_image
from zsdemo.data.labelled import open_labelled
from zsdemo.run.pipeline import classify, embed_images
from zsdemo.strategies import coop, parse_strategies, tip
from zsdemo.data.support import embed_support, open_support, validation_split
from zsdemo.prompts.templates import CLIP80, fill
from zsdemo.engine.text import encode_prompts
from zsdemo.strategies import read_result
from zsdemo.engine.results import StrategyResult
from zsdemo.strategies import options

from conftest import make_zip

CLASSES = ("cat", "coffee mug", "rocket")
PHOTOS = {"cat": "cat.png", "coffee mug": "coffee.png", "rocket": "rocket.jpg"}
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "images"


def make_support(root: Path, shots: int = 4, classes=CLASSES) -> Path:
    """``shots`` different pictures per class (the class's photo turned and cropped)."""
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        im = Image.open(ASSETS / PHOTOS[c]).convert("RGB")
        for k in range(shots):
            view = im.rotate(90 * (k % 4)).crop((k * 7, k * 5, im.width - k * 3, im.height - k * 4))
            view.save(root / c / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def support_dir(tmp_path_factory) -> Path:
    return make_support(tmp_path_factory.mktemp("support"))


@pytest.fixture(scope="module")
def features(tiny, support_dir):
    return embed_support(tiny, open_support(support_dir, CLASSES))


# --- the support set ---------------------------------------------------------------------------

def test_support_features_are_the_models_own(tiny, support_dir, features):
    assert features.shots() == {c: 4 for c in CLASSES} and len(features) == 12
    first = load_image(str(support_dir / features.files[0]))
    want = embed_images(tiny, [first])[0]
    assert torch.allclose(features.features[0], want, atol=2e-3)        # stored as float16, like evaluation's
    assert features.classes[int(features.labels[0])] == features.files[0].split("/")[0]


@pytest.mark.parametrize("layout, message", [
    ("empty", "No labelled images found"),
    ("unknown", "labels that are not among the classes: 'dog'"),
    ("one class", "only one class"),
])
def test_bad_support_sets_get_a_clear_message(tmp_path, layout, message):
    root = tmp_path / "s"
    root.mkdir()
    if layout == "unknown":
        make_support(root, 1)
        shutil.copytree(root / "cat", root / "dog")
    elif layout == "one class":
        make_support(root, 2, ("cat",))
    with pytest.raises(InputError, match=message):
        open_support(root, CLASSES)


def test_corrupt_support_images_are_skipped_and_said(tiny, tmp_path):
    root = make_support(tmp_path / "s", 2)
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    found = embed_support(tiny, open_support(root, CLASSES))
    assert len(found) == 6 and [f for f, _ in found.corrupt] == ["cat/broken.png"]
    assert "could not be read" in found.warnings()[0]
    for f in (root / "coffee mug").iterdir():
        f.write_bytes(b"junk")
    for f in (root / "rocket").iterdir():
        f.write_bytes(b"junk")
    with pytest.raises(InputError, match="only one class remain"):
        embed_support(tiny, open_support(root, CLASSES))


def test_classes_without_examples_are_allowed_and_said(tmp_path):
    root = make_support(tmp_path / "s", 2, ("cat", "rocket"))
    support = open_support(root, CLASSES)
    assert support.shots() == {"cat": 2, "coffee mug": 0, "rocket": 2}
    assert "no example of 'coffee mug'" in support.warnings()[0]


def test_a_support_zip_is_read_safely(tmp_path):
    entries = {f"{c}/{k}.png": (ASSETS / PHOTOS[c]).read_bytes() for c in CLASSES for k in range(1)}
    archive = make_zip(tmp_path / "s.zip", {**entries, "../evil.png": b"x"})
    with pytest.raises(InputError, match="Support set: .*(outside|leav|unsafe|traversal)"):
        open_support(archive, CLASSES)
    good = make_zip(tmp_path / "good.zip", entries)
    support = open_support(good, CLASSES)
    assert support.shots() == {c: 1 for c in CLASSES}
    folder = support.folder.name
    support.close()
    assert not Path(folder).exists()


def test_all_leaves_out_the_few_shot_methods_without_a_support_set():
    assert "tip" not in parse_strategies("all", False) and "coop" not in parse_strategies("all", False)
    assert {"tip", "coop"} <= set(parse_strategies("all", False, has_support=True))
    with pytest.raises(InputError, match="Tip-Adapter needs a support set"):
        classify_without_support()


def classify_without_support():
    from zsdemo.engine.models import get_model

    return classify(get_model("tiny-random", None, "cpu"), [ASSETS / "cat.png"], CLASSES, "tip")


# --- leakage -----------------------------------------------------------------------------------

def test_an_image_in_the_support_set_is_left_out_of_it(tiny, support_dir):
    query = support_dir / "cat" / "0.png"                  # the very file (same bytes) is classified
    result = classify(tiny, [str(query)], CLASSES, "tip", support=open_support(support_dir, CLASSES))
    details = result.images[0].strategies["tip"].details
    assert details.shots["cat"] == 3 and "cat/0.png" not in [x["file"] for x in details.nearest]
    assert any("also among the images scored" in w and "cat/0.png" in w for w in result.warnings)


def test_evaluate_excludes_and_reports_leaked_support_images(tiny, support_dir, tmp_path):
    data_root = tmp_path / "eval"
    for c in CLASSES:
        (data_root / c).mkdir(parents=True)
        shutil.copy(support_dir / c / "1.png", data_root / c / "leak.png")       # identical bytes
        Image.open(ASSETS / PHOTOS[c]).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(data_root / c / "own.png")
    data = open_labelled(data_root)
    request = evaluation_request(data, "name,tip,coop", support=open_support(support_dir, data.classes),
                                 coop={"epochs": 2})
    report = evaluate(tiny, data, request, cache=None)
    support = report.to_dict()["support"]
    assert sorted(support["leaked_excluded"]) == sorted(f"{c}/1.png" for c in data.classes)
    assert support["shots"] == {c: 3 for c in data.classes} and support["shots_per_class"] == "3"
    assert {"tip", "coop"} <= set(report.summary()["accuracy"])
    assert any("left out of the support set" in w for w in report.warnings)


def test_the_search_sees_only_the_support_set(tiny, support_dir, monkeypatch):
    """alpha and beta come from held-out support examples, never from the images classified."""
    seen = []
    real = tip.search

    def spy(clip_logits, feats, labels, cache):
        seen.append((len(feats), len(cache)))
        return real(clip_logits, feats, labels, cache)

    monkeypatch.setattr(tip, "search", spy)
    images = [str(ASSETS / p) for p in PHOTOS.values()]
    result = classify(tiny, images, CLASSES, "tip", support=open_support(support_dir, CLASSES),
                      tip={"val_fraction": 0.25})
    assert seen == [(3, 9)]                         # one search: 1 of 4 per class held out, 9 cached
    d = result.images[0].strategies["tip"].details
    assert d.searched and d.alpha in tip.ALPHA_GRID and d.beta in tip.BETA_GRID
    assert d.shots == {c: 4 for c in CLASSES}       # the final cache holds every example


def test_validation_split_is_stratified_and_seeded(features):
    train, val = validation_split(features, 0.25)
    assert sorted(train + val) == list(range(12)) and len(val) == 3
    assert sorted(int(features.labels[v]) for v in val) == [0, 1, 2]
    assert validation_split(features, 0.25) == (train, val)


# --- Tip-Adapter ---------------------------------------------------------------------------------

def test_tip_equals_its_formula_written_out(tiny, support_dir):
    """logits = logit_scale f W^T + alpha exp(-beta (1 - f K^T)) V, from open_clip's own encoders."""
    support = open_support(support_dir, CLASSES)
    images = [str(ASSETS / p) for p in PHOTOS.values()]
    result = classify(tiny, images, CLASSES, "tip", support=support, tip={"alpha": 2.0, "beta": 3.0})
    model, pre = tiny.model, tiny.preprocess
    with torch.no_grad():
        def unit_image(path):
            return F.normalize(model.encode_image(pre(load_image(str(path)).image)[None]).float(), dim=-1)[0]
        f = torch.stack([unit_image(p) for p in images])
        k = torch.stack([unit_image(it.path) for it in support.items])
        v = F.one_hot(torch.tensor([it.label for it in support.items]), 3).float()
        w = torch.stack([F.normalize(encode_prompts(tiny, [fill(t, c) for t in CLIP80]).mean(0), dim=-1)
                         for c in CLASSES])
        logits = model.logit_scale.exp() * f @ w.T + 2.0 * torch.exp(-3.0 * (1 - f @ k.T)) @ v
    for row, im in enumerate(result.images):
        assert im.strategies["tip"].probs == pytest.approx(logits[row].softmax(-1).tolist(), abs=2e-3)
        nearest = im.strategies["tip"].details.nearest
        assert nearest[0]["cosine"] == pytest.approx(float((f[row] @ k.T).max()), abs=2e-3)


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": -1}, "alpha must be a number from 0"), ({"beta": float("nan")}, "beta must be"),
    ({"val_fraction": 0.95}, "validation fraction must be"), ({"alpha": True}, "alpha must be"),
])
def test_bad_tip_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        options.parse(tip.TipSettings, kwargs)


# --- CoOp ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [dict(context="16", lr=1e-4, epochs=20), dict(context="init", epochs=20)])
def test_coop_lowers_its_training_loss_and_is_deterministic(tiny, features, settings):
    s = options.parse(coop.CoOpSettings, settings)
    start = coop.training_loss(tiny, features, coop.train(tiny, features, options.parse(
        coop.CoOpSettings, {**settings, "epochs": 1, "lr": 1e-12})).ctx, s)
    learned = coop.train(tiny, features, s)
    assert coop.training_loss(tiny, features, learned.ctx, s) < start - 0.02
    assert learned.losses[-1] < learned.losses[0]
    again = coop.train(tiny, features, s)
    assert torch.equal(learned.ctx, again.ctx) and learned.losses == again.losses
    other = coop.train(tiny, features, options.parse(coop.CoOpSettings, {**settings, "seed": 1}))
    assert settings["context"] == "init" or not torch.equal(learned.ctx, other.ctx)


def test_coop_never_trains_the_shared_model(tiny, features):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    coop.train(tiny, features, options.parse(coop.CoOpSettings, {"epochs": 2}))
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())
    assert all(not p.requires_grad for p in tiny.model.parameters())


def test_a_saved_context_reloads_to_identical_predictions(support_dir, tmp_path, capsys):
    saved = tmp_path / "ctx.safetensors"
    common = ["classify", str(ASSETS / "cat.png"), str(ASSETS / "rocket.jpg"), "--classes", ", ".join(CLASSES), "--strategies",
              "coop", "--model", "tiny-random", "--device", "cpu", "--json", "--quiet"]
    assert main([*common, "--support", str(support_dir), "--coop-epochs", "3", "--coop-save", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*common, "--coop-load", str(saved)]) == 0          # no support set needed
    second = json.loads(capsys.readouterr().out)
    for a, b in zip(first["images"], second["images"]):
        assert a["strategies"]["coop"]["probs"] == b["strategies"]["coop"]["probs"]
    assert second["images"][0]["strategies"]["coop"]["details"]["loaded_from"] == "ctx.safetensors"
    assert len(first["images"][0]["strategies"]["coop"]["details"]["losses"]) == 3


def test_a_context_that_is_not_ours_is_refused(tiny, tmp_path):
    from safetensors.torch import save_file

    pickled = tmp_path / "ctx.safetensors"
    torch.save({"ctx": torch.zeros(16, 64)}, pickled)                # a pickle under the right name
    with pytest.raises(InputError, match="not a safetensors file saved by zsdemo"):
        coop.load(pickled, tiny)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"ctx": torch.zeros(16, 64)}, str(foreign), metadata={"format": coop.FORMAT, "model": "another"})
    with pytest.raises(InputError, match="learned with another model"):
        coop.load(foreign, tiny)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"ctx": torch.zeros(16, 7)}, str(wrong), metadata={"format": coop.FORMAT, "model": tiny.identity})
    with pytest.raises(InputError, match=r"expected one tensor 'ctx' of \[n, 64\]"):
        coop.load(wrong, tiny)


def test_coop_details_explain_it(tiny, support_dir):
    result = classify(tiny, [str(ASSETS / "cat.png")], CLASSES, "coop", support=open_support(support_dir, CLASSES),
                      coop={"epochs": 2})
    d = result.images[0].strategies["coop"].details
    assert len(d.losses) == 2 and len(d.nearest_words) == 16 and all(len(w) == 3 for w in d.nearest_words)
    assert d.shots == {c: 4 for c in CLASSES}
    assert read_result(result.to_dict()).images[0].strategies["coop"].details == d


@pytest.mark.parametrize("kwargs, message", [
    ({"context": "8"}, "must be '16'"), ({"epochs": 0}, "epochs must be a whole number"),
    ({"batch_size": 2.5}, "batch size must be"), ({"lr": float("inf")}, "learning rate"), ({"seed": -1}, "seed"),
])
def test_bad_coop_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        options.parse(coop.CoOpSettings, kwargs)


# --- the page and the API ------------------------------------------------------------------------

def test_the_page_reads_an_uploaded_support_zip_and_pictures_the_nearest(tmp_path):
    uploads = tmp_path / "uploads"
    root = make_support(tmp_path / "s", 2)
    entries = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.png")}
    uploads.mkdir()
    archive = make_zip(uploads / "support.zip", entries)
    shutil.copy(ASSETS / "cat.png", uploads / "query.png")
    config = state.AppConfig("tiny-random", None, "cpu", None).with_uploads(uploads)
    run = classifying.run(config, [str(uploads / "query.png")], ", ".join(CLASSES), ["tip", "coop"],
                          support=str(archive), coop_epochs=2)
    p = classifying.panels(config, state.Run.from_state(json.loads(json.dumps(run.to_state()))), 0)
    tip, coop = p.methods.split('zs-panel-coop')
    assert tip.count("<img") == 3 and "This image looks most like these labelled examples" in tip
    assert "<h3>CoOp (learned context)</h3>" in coop and "Training loss by epoch" in coop
    for bad in (str(tmp_path / "s" / "cat" / "0.png"), "/etc/passwd", 7):
        with pytest.raises(InputError, match="was not uploaded with this request"):
            classifying.run(config, [str(uploads / "query.png")], ", ".join(CLASSES), ["tip"], support=bad)
    with pytest.raises(InputError, match="CoOp epochs must be a whole number"):
        classifying.run(config, [str(uploads / "query.png")], ", ".join(CLASSES), ["coop"], support=str(archive),
                 coop_epochs=10_000)


def test_coop_training_reports_its_steps_in_evaluate(tiny, support_dir, tmp_path):
    root = tmp_path / "eval"
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        Image.open(ASSETS / PHOTOS[c]).convert("RGB").transpose(Image.FLIP_TOP_BOTTOM).save(root / c / "x.png")
    data = open_labelled(root)
    request = evaluation_request(data, "coop", support=open_support(support_dir, data.classes),
                                 coop={"epochs": 3, "seed": 5})
    heard = []
    evaluate(tiny, data, request, cache=None, progress=lambda f, message: heard.append((f, message)))
    steps = [m for _, m in heard if m.startswith("CoOp: learning the context (3 epochs): ")]
    assert steps[-1].endswith("3 of 3 steps")                       # 12 examples, batches of 32: 1 step per epoch
    assert [m for _, m in heard].index(steps[-1]) < [m for _, m in heard].index("evaluating")


def test_coop_says_which_epochs_its_losses_are_of_and_shows_no_broken_words(tiny):
    """Issue 28: "50 epochs" above 8 unlabelled losses, and nearest words with "\ufffd" in them."""
    details = coop.CoOpDetails(epochs=50, losses=[1.0 - k / 100 for k in range(50)],
                               nearest_words=[["a", "b", "c"]], shots={"cat": 2}, context="16", loaded_from=None)
    text = coop.COOP.explain(StrategyResult("coop", "CoOp", [1.0], [0.0], [], details))
    assert "at 8 of the 50 epochs" in text and "1: 1.000" in text and "50: 0.510" in text
    torch.manual_seed(0)
    words = coop.nearest_words(tiny, torch.randn(64, tiny.model.token_embedding.weight.shape[1]) * 0.02)
    assert all(len(w) == coop.NEAREST_WORDS for w in words)
    assert not any("\ufffd" in x or not x for w in words for x in w)


def test_a_context_learned_on_other_classes_is_said_in_the_classify_result(support_dir, tmp_path, capsys):
    """What a run learns while it works (a loaded context's classes) reaches the result: it is the
    run's, not written into the validated request (which nothing changes after its checks)."""
    saved = tmp_path / "ctx.safetensors"
    common = ["classify", str(ASSETS / "cat.png"), "--strategies", "coop", "--model", "tiny-random", "--device", "cpu",
              "--json", "--quiet"]
    assert main([*common, "--classes", ", ".join(CLASSES), "--support", str(support_dir), "--coop-epochs", "1",
                 "--coop-save", str(saved)]) == 0
    capsys.readouterr()
    assert main([*common, "--classes", "cat, dog, owl", "--coop-load", str(saved)]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("The CoOp context was learned on other classes" in w for w in warnings), warnings


def test_a_validated_request_cannot_be_changed():
    import dataclasses

    from zsdemo.run.request import prepare_request

    request = prepare_request("cat, dog", "name")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.top_k = 1
    assert isinstance(request.warnings, tuple)
