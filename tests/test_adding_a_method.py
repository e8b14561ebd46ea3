"""docs/architecture.md's "Adding a method", done: a test-only method with one option, registered at run time,
appears in the command line's --help, the API, the page and the evaluation, and its option is
checked and recorded without an edit anywhere else."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

from zsdemo import cli
from zsdemo.core.errors import InputError
from zsdemo.data.labelled import open_zip
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.run.pipeline import classify
from zsdemo.strategies import register, unregister

sys.path.insert(0, str(Path(__file__).parent))
from toy_method import SHARP  # noqa: E402


@pytest.fixture
def sharp():
    register(SHARP)            # the one line
    yield SHARP
    unregister(SHARP.id)


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(list(argv)) == 0
    return out.getvalue()


def test_the_method_is_listed_and_its_flag_is_in_help(sharp):
    assert "Sharpened name" in _cli("strategies")
    helped = cli.build_parser(with_options=True)._subparsers._group_actions[0].choices["classify"].format_help()
    assert "--sharp-power" in helped and "multiply the name-only logits by this (default 2)" in helped


def test_it_classifies_with_its_option_from_the_command_line(sharp, cat_path):
    out = json.loads(_cli("classify", str(cat_path), "--classes", "cat, dog, rocket", "--strategies", "name,sharp",
                          "--sharp-power", "3", "--model", "tiny-random", "--json", "--quiet"))
    image = out["images"][0]["strategies"]
    assert image["sharp"]["logits"] == pytest.approx([3 * x for x in image["name"]["logits"]], rel=1e-5)
    assert out["options"] == {"sharp": {"power": 3.0}}


def test_its_option_is_checked_by_its_declaration(sharp, tiny, cat_path):
    with pytest.raises(InputError, match="Sharpening power must be a number from 0.5 to 8"):
        classify(tiny, [str(cat_path)], "cat, dog", "name,sharp", sharp_power=100)
    result = classify(tiny, [str(cat_path)], "cat, dog", "name", sharp_power=4)
    assert any("sharp_power" in w and "not selected" in w for w in result.warnings)


def test_the_evaluation_scores_it_and_records_its_setting(sharp, tiny, labelled_zip, tmp_path):
    data = open_zip(labelled_zip, tmp_path)
    report = evaluate(tiny, data, evaluation_request(data, ["name", "sharp"], sharp_power=4))
    summary = report.to_dict()
    assert "sharp" in summary["accuracy"] and summary["settings"]["options"] == {"sharp": {"power": 4.0}}
    # Multiplying logits by a positive number changes no ranking: the same accuracy as name only.
    assert summary["accuracy"]["sharp"]["top1"] == summary["accuracy"]["name"]["top1"]


def test_the_page_and_the_api_offer_it(sharp, cat_path):
    import app
    from gradio_client import Client, handle_file

    page = app.build_app("tiny-random", None, "cpu", None)
    controls = {getattr(b, "elem_id", None): b for b in page.blocks.values()}
    assert controls["sharp-power"].value == 2.0 and controls["sharp-power"].label == "Sharpening power"
    choices = [v for _, v in controls["strategies"].choices]
    assert "sharp" in choices
    _, url, _ = app.launch(page, port=None, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        params = {p["parameter_name"]: p for p in info["/classify"]["parameters"]}
        assert params["sharp_power"]["parameter_default"] == 2.0
        assert "sharp_power" in {p["parameter_name"] for p in info["/evaluate"]["parameters"]}
        out = client.predict([handle_file(str(cat_path))], "cat, dog", strategies="name,sharp", sharp_power=5.0,
                             api_name="/classify")
        image = out["images"][0]["strategies"]
        assert image["sharp"]["logits"] == pytest.approx([5 * x for x in image["name"]["logits"]], rel=1e-5)
        assert out["options"] == {"sharp": {"power": 5.0}}
        assert client.predict(api_name="/options")["method_options"]["sharp_power"]["default"] == 2.0
    finally:
        page.close()
