"""The app: its backend (zsdemo.app.backend, panels, plots) and the launched server through gradio_client."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from matplotlib.figure import Figure
from PIL import Image

import app
from zsdemo.app import choices, classifying, evaluating, panels, state
from zsdemo.core import markup
from zsdemo.core.progress import count as progress_count
from zsdemo.run import plots
from zsdemo.engine.consistency import ConsistencyDetails
from zsdemo.core.errors import InputError, ModelLoadError
from zsdemo.run.evaluation import SCORES
from zsdemo.strategies import STRATEGIES
from zsdemo.engine.views import VIEW_LABELS

CONFIG = state.AppConfig("tiny-random", None, "cpu")


def test_app_builds_with_named_api_endpoints():
    page = app.build_app("tiny-random", None, "cpu")
    assert isinstance(page, gr.Blocks)
    names = {fn.api_name for fn in page.fns.values()}
    assert {"classify", "wordnet", "options"} <= names


@pytest.fixture(scope="module")
def run(cat_path, astronaut_path):
    return classifying.run(CONFIG, [str(cat_path), str(astronaut_path)], "cat, crane, heron, astronaut, rocket",
                    ["name", "clip80", "hierarchy", "tpt"], consistency=True, tpt_views=8, top_k=3)


CARD = re.compile(r'<div class="zs-card"><div class="zs-card-title">(.*?)</div>(.*?)</div></div>(?=<div class="zs-card">|</div>$)')
BAR = re.compile(r'<div class="zs-bar( zs-top1)?"[^>]*><span class="zs-label">(.*?)</span>.*?width:([\d.]+)%;'
                 r'background:(#[0-9a-f]+)')


def bar_cards(markup: str) -> list[tuple[str, list[tuple[str, float, str, bool]]]]:
    """(strategy label, [(class, width %, colour, is top-1)]) of each card of ``panels.bars_html``."""
    return [(title, [(label, float(w), colour, bool(top)) for top, label, w, colour in BAR.findall(body)])
            for title, body in CARD.findall(markup)]


def test_panels_of_a_run(run):
    p = classifying.panels(CONFIG, run, 1)
    assert "astronaut\\.png" in p.title
    # The hierarchy's panel (asked of the strategy) goes beside the sense picker.
    assert 'class="zs-tree"' in p.wordnet and "parent" in p.wordnet and 'class="zs-tree"' not in p.methods
    # Bars: one card per strategy, same classes in the same order and colours, the top-1 marked
    # in each, and "other" exactly when some classes are not drawn.
    cards = bar_cards(p.bars)
    assert [title for title, _ in cards] == [STRATEGIES[s].label for s in run.result.strategies]
    image = run.result.images[1]
    drawn = plots.shown_classes([image.strategies[s] for s in run.result.strategies], run.result.top_k)
    hidden = len(drawn) < len(run.result.classes)
    rows = [[(label, colour) for label, _, colour, _ in bars] for _, bars in cards]
    assert all(r == rows[0] for r in rows) and len(rows[0]) == len(drawn) + hidden
    assert (rows[0][-1][0] == plots.OTHER) == hidden
    for (_, bars), s in zip(cards, run.result.strategies):
        tops = [label for label, _, _, top in bars if top]
        assert tops == [image.strategies[s].top1.class_name]
    check = run.result.images[1].analyses["consistency"]
    assert ("Confident" in p.verdict) != check.low_confidence
    assert f"S_T = {check.s_t:.2f}" in p.consistency.replace("\\_", "_")
    assert len(p.views) == 1 + len(check.views) and p.views[0][1].startswith("original → ")
    assert all(max(im.size) <= panels.THUMBNAIL for im, _ in p.views)
    # Each view's whole caption is in the grid: its name, its top-1 and whether it agrees.
    assert p.views_html.count("<figure") == len(p.views)
    for view, top in check.views.items():
        mark = "✓" if top == check.base else "✗"
        assert f"{VIEW_LABELS[view]}<br><b>→ {top} {mark}</b>" in p.views_html
    assert "WordNet re" in p.wordnet and "parent:" in p.wordnet
    assert "Before tuning" in p.methods and "entropy" in p.methods
    assert 'class="zs-tpt-row zs-top1"' in p.methods and "after tuning" in p.methods


def test_bars_sum_to_one_with_other(run):
    im = run.result.images[0]
    order = plots.shown_classes([im.strategies[s] for s in run.result.strategies], run.result.top_k)
    (_, bars), *_ = bar_cards(panels.bars_html(im, run.result.classes, run.result.strategies, run.result.top_k))
    assert len(bars) == len(order) + 1
    assert sum(w for _, w, _, _ in bars) == pytest.approx(100.0, abs=0.2)     # rounded to 0.1 each


def test_summary_has_the_verdict_first_and_marks_the_selected_image(run):
    rows = re.findall(r'<div class="zs-row( zs-selected)?" data-index="(\d)".*?<span class="zs-file">(.*?)</span> '
                      r'<span class="zs-badge [^"]*">(.*?)</span></div><div class="zs-tops">(.*?)</div></div>',
                      panels.summary_html(run.result, 1))
    assert [(bool(sel), k) for sel, k, *_ in rows] == [(False, "0"), (True, "1")]
    assert rows[1][2].startswith('<span class="zs-mark">') and rows[0][2] == "cat.png"
    assert rows[0][3] in ("✔ confident", "⚠ uncertain")
    top = run.result.images[0].strategies["clip80"].top1
    assert f"<b>CLIP-80 ensemble</b>: {top.class_name} {100 * top.prob:.0f}%" in rows[0][4]


def test_wordnet_tree_shows_markup_in_names_as_text(cat_path):
    run = classifying.run(CONFIG, [str(cat_path)], "<b>bold</b>, cat", ["name", "hierarchy"], rerank_all=True)
    tree = classifying.panels(CONFIG, run, 0).wordnet
    assert tree.count('class="zs-tree"') == 2 and "feline" in tree
    assert "&lt;b&gt;bold&lt;/b&gt;" in tree and "<b>" not in tree


def test_user_text_is_escaped_in_panels():
    assert markup.md("<b>x</b>*y*") == "&lt;b&gt;x&lt;/b&gt;\\*y\\*"
    evil = "<script>alert(1)</script>"
    check = ConsistencyDetails(base=evil, groups={"name": evil}, views={"hflip": evil}, single_template=[evil],
                               s_t=1.0, s_b=1.0, o_t=False, o_b=False, low_confidence=False, verdict="confident")
    assert "<script>" not in panels.consistency_markdown(check)
    assert markup.code("a`b<") == "`a'b&lt;`"


def test_sense_choice_is_recorded_and_removed():
    chosen = choices.choose_sense({}, "crane", "crane.n.04")
    assert chosen == {"crane": "crane.n.04"}
    assert choices.choose_sense(chosen, "crane", None) == {}
    with pytest.raises(InputError):
        choices.choose_sense({}, None, "crane.n.04")


def test_sense_picker_reruns_with_the_chosen_sense(cat_path):
    names = "crane, heron, stork, bulldozer"
    default = classifying.run(CONFIG, [str(cat_path)], names, ["hierarchy"], rerank_all=True)
    assert choices.sense_choices(default.result)["crane"]
    picked = classifying.run(CONFIG, [str(cat_path)], names, ["hierarchy"], rerank_all=True,
                      senses=choices.choose_sense({}, "crane", "crane.n.04"))
    crane = next(s for s in picked.result.senses if s["name"] == "crane")
    assert crane["chosen"]["synset"] == "crane.n.04" and crane["rule"] == "user"


@pytest.mark.parametrize("kwargs, message", [
    (dict(paths=[]), "No image yet"),
    (dict(classes=""), "No class names"),
    (dict(strategies=[]), "No strategy selected"),
    (dict(strategies=["custom"]), "template"),
    (dict(top_k=0), "top-k"),
    (dict(tpt_steps=99, strategies=["tpt"]), "steps"),
    (dict(views=["sideways"]), "Unknown view"),
])
def test_bad_page_input_gets_a_message(cat_path, kwargs, message):
    args = dict(paths=[str(cat_path)], classes="cat, dog", strategies=["name"])
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        classifying.run(CONFIG, args.pop("paths"), args.pop("classes"), args.pop("strategies"), **args)


@pytest.mark.parametrize("choice", ["local-dir:/tmp", "ViT-B-32 /etc/passwd", "./weights.pt", "ViT-B-32 model.safetensors"])
def test_page_cannot_name_files_on_the_server(choice):
    with pytest.raises(ModelLoadError, match="whoever starts the server"):
        choices.pick_model(CONFIG, choice)


def test_presets_fill_the_class_box():
    assert choices.preset_text("crane-birds").splitlines()[0] == "crane"
    assert choices.preset_text(None) == ""
    with pytest.raises(InputError):
        choices.preset_text("no-such-preset")


# --- the launched app, through gradio_client ---------------------------------------------------

@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


def test_client_classify_end_to_end(client, cat_path, astronaut_path):
    out = client.predict([handle_file(str(cat_path)), handle_file(str(astronaut_path))],
                         "cat, crane, heron, astronaut", "name,clip80,hierarchy", consistency=True,
                         api_name="/classify")
    assert out["schema"] == "zsdemo.classify/1" and out["model"]["random_weights"] is True
    assert [im["source"] for im in out["images"]] == ["cat.png", "astronaut.png"]
    first = out["images"][0]
    assert set(first["strategies"]) == {"name", "clip80", "hierarchy"}
    assert first["analyses"]["consistency"]["verdict"] in ("confident", "low confidence")
    assert sum(first["strategies"]["name"]["probs"]) == pytest.approx(1.0, abs=1e-4)


def test_client_few_shot_and_a_second_model(client, cat_path, astronaut_path, tmp_path):
    """The API's support zip (Tip-Adapter, CoOp) and compare_model, as gradio_client sends them."""
    archive = tmp_path / "support.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for label, photo in (("cat", cat_path), ("astronaut", astronaut_path)):
            image = Image.open(photo).convert("RGB")
            for k in range(2):
                buf = io.BytesIO()
                image.rotate(90 * (k + 1), expand=True).save(buf, format="PNG")
                z.writestr(f"{label}/{k}.png", buf.getvalue())
    out = client.predict([handle_file(str(cat_path))], "cat, astronaut, rocket", "name,tip,coop",
                         support=handle_file(str(archive)), coop_epochs=2, compare_model="tiny-random-sigmoid",
                         api_name="/classify")
    tip = out["images"][0]["strategies"]["tip"]["details"]
    assert tip["shots"] == {"cat": 2, "astronaut": 2, "rocket": 0} and len(tip["nearest"]) == 3
    assert len(out["images"][0]["strategies"]["coop"]["details"]["losses"]) == 2
    assert out["compared"]["model"]["name"] == "zsdemo-tiny-sigmoid"
    assert any("no example of 'rocket'" in w for w in out["warnings"])


def test_client_wordnet_and_options(client):
    senses = client.predict("crane, heron, stork", api_name="/wordnet")
    assert senses[0]["chosen"]["synset"] == "crane.n.05" and senses[0]["parent"]
    options = client.predict(api_name="/options")
    assert options["default_model"] == "tiny-random" and "hierarchy" in options["strategies"]


@pytest.mark.parametrize("args, message", [
    (([], "cat, dog"), "No image yet"),
    ((["CAT"], ""), "No class names"),
    ((["CAT"], "cat, dog", "name,unknown"), "Unknown strategy"),
])
def test_client_bad_input_gets_a_message_and_the_server_keeps_serving(client, cat_path, args, message):
    args = tuple([handle_file(str(cat_path))] if a == ["CAT"] else a for a in args)
    with pytest.raises(Exception, match=message) as info:
        client.predict(*args, api_name="/classify")
    assert "Traceback" not in str(info.value)
    ok = client.predict([handle_file(str(cat_path))], "cat, dog", api_name="/classify")
    assert ok["images"][0]["error"] is None


def test_client_non_image_file_is_reported_per_image(client, cat_path, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    out = client.predict([handle_file(str(junk)), handle_file(str(cat_path))], "cat, dog", api_name="/classify")
    assert "not an image" in out["images"][0]["error"] and out["images"][1]["error"] is None


def test_run_survives_the_json_state_round_trip(run):
    import json

    back = state.Run.from_state(json.loads(json.dumps(run.to_state())))
    assert back.paths == run.paths
    assert json.dumps(back.result.to_dict()) == json.dumps(run.result.to_dict())
    for forged in ({"result": {"schema": "other"}, "paths": []}, {"result": None, "paths": 5}, {"paths": []},
                   {"result": {"schema": "zsdemo.classify/1", "images": [{"source": 1}]}, "paths": []}):
        with pytest.raises(InputError, match="could not be read back"):
            state.Run.from_state(forged)


def test_evaluation_tab_backend(labelled_zip, tmp_path):
    # The zip's folder stands for Gradio's upload folder.
    config = state.AppConfig("tiny-random", None, "cpu", str(tmp_path / "features")).with_uploads(labelled_zip.parent)
    p, files = evaluating.evaluate_zip(config, str(labelled_zip), ["name", "hierarchy"], views="flip")
    assert "**4 images** in **2 classes**" in p.summary and "1 file skipped" in p.summary
    assert "Top-5 accuracy is 100% by definition with 2 classes" in p.summary   # with 5 or fewer classes
    assert [progress_count(n, "class", "classes") for n in (0, 1, 2)] == ["0 classes", "1 class", "2 classes"]
    assert "&lt;b&gt;bad&lt;/b&gt;" in p.summary and "<b>" not in p.summary       # names shown as text
    assert [row[0] for row in p.accuracy[1]] == ["Name only", "CLIP-80 ensemble", "WordNet re-ranking"]
    assert p.low_confidence[1][0][0].startswith("WordNet re-ranking")
    # The paper's confidence scores, then each strategy's own top-1 probability.
    assert len(p.auroc[1]) == len(SCORES) + 3 and isinstance(p.coverage, Figure)
    assert [r[0] for r in p.auroc[1][len(SCORES):]] == [
        "max softmax, Name only (its own)", "max softmax, CLIP-80 ensemble (its own)",
        "max softmax, WordNet re-ranking (its own)"]
    assert isinstance(p.strategy_coverage, Figure)
    assert [r[0] for r in p.per_class[1]] == ["astronaut", "tabby cat"]      # folder order
    assert {Path(f).name for f in files} >= {"report.json", "accuracy.csv", "coverage.png"}
    report = json.loads(Path(files[0]).read_text())
    assert report["dataset"]["root"] == "my set.zip"          # not the server's temporary folder
    assert str(tmp_path) not in Path(files[0]).read_text()


@pytest.mark.parametrize("upload, strategies, views, message", [
    (None, ["name"], "all", "Upload a .zip"),
    ("GOOD", [], "all", "No strategy selected"),
    ("GOOD", ["name", "tpt"], "all", "TPT .* is not offered here"),
    ("GOOD", ["name"], "some", "Unknown view set"),
    ("TRAVERSAL", ["name"], "flip", "points outside"),
    ("NOT_A_ZIP", ["name"], "flip", "not a readable zip"),
])
def test_evaluation_tab_bad_input(labelled_zip, tmp_path, upload, strategies, views, message):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../../escape.png", b"x")
    (tmp_path / "fake.zip").write_text("hello")
    upload = {"GOOD": str(labelled_zip), "TRAVERSAL": str(bad), "NOT_A_ZIP": str(tmp_path / "fake.zip")}.get(
        upload, upload)
    with pytest.raises(InputError, match=message):
        evaluating.evaluate_zip(CONFIG.with_uploads(labelled_zip.parent, tmp_path), upload, strategies, views=views)


def test_sense_picker_starts_on_the_sense_in_use_and_the_preset_keeps_typed_classes(cat_path):
    run = classifying.run(CONFIG, [str(cat_path)], "crane, heron, stork", ["hierarchy"], rerank_all=True)
    used = next(s["chosen"]["synset"] for s in run.result.senses if s["name"] == "crane")
    assert used != choices.sense_choices(run.result)["crane"][0][1]       # not WordNet's first sense (a writer)
    assert choices.sense_in_use(run.result, "crane") == used == "crane.n.05"
    assert choices.sense_in_use(run.result, "no such class") is None
    assert choices.keep_classes(None, "my classes") == "my classes"        # the dropdown closed without a choice
    assert choices.keep_classes("crane-birds", "my classes").startswith("crane\nheron")


def test_other_is_drawn_only_when_classes_are_hidden(cat_path):
    every = classifying.run(CONFIG, [str(cat_path)], "cat, dog, rocket", ["name"], top_k=3)
    some = classifying.run(CONFIG, [str(cat_path)], "cat, dog, rocket, crane, heron", ["name"], top_k=2)
    for run, other in ((every, False), (some, True)):
        (_, bars), = bar_cards(panels.bars_html(run.result.images[0], run.result.classes, run.result.strategies,
                                                run.result.top_k))
        labels = [label for label, _, _, _ in bars]
        assert (plots.OTHER in labels) == other, labels
        widths = [w for _, w, _, _ in bars]
        assert sum(widths) == pytest.approx(100.0, abs=0.2) if other else len(widths) == 3


def test_the_summary_marks_each_top1_that_differs_from_name_only(tiny, cat_path, astronaut_path):
    import re

    from zsdemo.run.pipeline import classify

    result = classify(tiny, [cat_path, astronaut_path], "cat, dog, rocket, astronaut, teapot",
                      "name,photo,clip80,waffle,zpe")
    page = panels.summary_html(result)
    for im, row in zip(result.images, page.split('data-index=')[1:]):
        base = im.strategies["name"].top1.class_name
        chips = re.findall(r'<span class="zs-chip( zs-changed)?"><b>(.*?)</b>: (.*?) \d+%', row)
        assert len(chips) == 5
        for mark, label, top in chips:
            assert bool(mark) == (top != base), (label, top, base)
    assert "differs from name only" in page


def test_a_sense_is_offered_with_its_whole_gloss_or_cut_between_words():
    from zsdemo.app.panels import whole_words

    assert whole_words("a small constellation near Phoenix", 160) == "a small constellation near Phoenix"
    cut = whole_words("lifts and moves heavy objects; lifting tackle is suspended from a pivoted boom", 40)
    assert cut == "lifts and moves heavy objects; lifting…" and len(cut) <= 41
