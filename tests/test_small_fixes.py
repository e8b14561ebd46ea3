"""Issue 28's smaller problems, each with the test that failed before its fix."""

from __future__ import annotations

import pytest

from zsdemo.app import classifying, evaluating, state
from zsdemo.app import evaluation_panels, panels
from zsdemo.core.errors import ImageError, InputError
from zsdemo.core.limits import LIMITS
from zsdemo.core.resources import asset_text
from zsdemo.engine.images import load_image
from zsdemo.run import plots
from zsdemo.run.request import prepare_request

CONFIG = state.AppConfig("tiny-random", None, "cpu", None)


def test_a_random_weights_model_is_marked_in_red_as_how_it_works_says():
    assert "marked in red" in asset_text("how_it_works.md")
    notice = panels.model_notice({"label": "tiny <model>", "device": "cpu", "precision": "fp32",
                                  "random_weights": True})
    assert 'class="zs-random"' in notice and "tiny &lt;model&gt;" in notice
    assert ".zs-random {color: #b00020" in asset_text("app.css")


def test_a_file_that_is_not_an_image_gets_one_wording_that_names_no_library():
    with pytest.raises(ImageError) as e:
        load_image(b"hello, these are notes\n", name="notes.png")
    assert "notes.png: not an image" in str(e.value) and "Pillow" not in str(e.value) and "PIL" not in str(e.value)


def test_the_auroc_table_shows_labels_as_text_without_markdown_escapes(tmp_path, labelled_zip):
    config = state.AppConfig("tiny-random", None, "cpu", None).with_uploads(labelled_zip.parent)
    report = evaluating.evaluate_upload(config, str(labelled_zip), "name,clip80", views="flip")
    rows = evaluation_panels.evaluation_panels(report).auroc[1]
    assert any("CLIP-80 ensemble" in r[0] for r in rows) and not any("\\" in r[0] for r in rows)


def test_plot_legends_are_readable():
    fig = plots.coverage_curves({"max softmax": [(0.5, 0.9), (1.0, 0.8)]}, {"max softmax": 0.7})
    legend = fig.axes[0].get_legend()
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 10


@pytest.mark.parametrize("strategies, where", [
    (["name", "custom"], "'Custom templates' box under the strategies"),
])
def test_a_missing_input_says_where_the_input_is(strategies, where):
    with pytest.raises(InputError) as e:
        prepare_request("cat, dog", strategies)
    assert where in e.value.for_page()


def test_tip_and_coop_without_examples_say_where_to_upload_them(cat_path):
    for method in ("tip", "coop"):
        with pytest.raises(InputError) as e:
            classifying.run(CONFIG, [str(cat_path)], "cat, dog", ["name", method])
        assert "open 'Few-shot: labelled examples' under the strategies" in e.value.for_page(), method


def test_too_many_prompts_because_of_the_consistency_box_says_where_to_untick_it(monkeypatch):
    monkeypatch.setattr(LIMITS, "prompts", 1000)
    names = ", ".join(f"class {k}" for k in range(50))
    with pytest.raises(InputError) as e:
        prepare_request(names, ["name"], consistency=True)
    assert "untick 'Run the consistency check' under Advanced settings" in e.value.for_page()
    assert "--consistency" in e.value.for_cli()
    with pytest.raises(InputError) as e:                 # the hierarchy needs the check: no such advice
        prepare_request(names, ["name", "hierarchy"], consistency=True)
    assert "untick" not in e.value.for_page()
