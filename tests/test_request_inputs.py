"""A request input is declared once, in run/inputs.py: one added there (a toy, as a contributor
would add one) appears on every surface without another edit: the command line's flags, the
API's arguments, the page's controls, the link, the checks, the request and a report's settings."""

from __future__ import annotations

import pytest

from zsdemo.core.errors import InputError
from zsdemo.run import inputs as request_inputs

TOY = request_inputs.Input(
    "toy_strength", "Toy strength (a test input)", "a toy input of the tests: a whole number from 1 to 9.",
    "whole", 3, request_inputs.on("api", "cli", "page:classify", "link:classify"), low=1, high=9,
    page_area="advanced", cli_help="a toy input of the tests (default %(default)s)")


@pytest.fixture
def toy():
    remove = request_inputs.register(TOY)
    yield TOY
    remove()


def test_the_toy_is_a_flag_of_both_commands_and_is_checked(toy, cat_path, capsys):
    from zsdemo.cli import build_parser, main

    args = build_parser().parse_args(["classify", str(cat_path), "--classes", "cat, dog", "--toy-strength", "4"])
    assert args.toy_strength == 4
    assert build_parser().parse_args(["evaluate", "data/", "--toy-strength", "2"]).toy_strength == 2
    assert "a toy input of the tests (default 3)" in build_parser()._subparsers._group_actions[0] \
        .choices["classify"].format_help()
    code = main(["classify", str(cat_path), "--classes", "cat, dog", "--model", "tiny-random", "--device", "cpu",
                 "--strategies", "name", "--toy-strength", "12", "--quiet"])
    assert code != 0 and "Toy strength (a test input) must be a whole number from 1 to 9" in capsys.readouterr().err


def test_the_toy_reaches_the_request_and_is_refused_in_words(toy):
    from zsdemo.run.request import prepare_request

    assert prepare_request("cat, dog", "name", toy_strength=4).extra == {"toy_strength": 4}
    assert prepare_request("cat, dog", "name").extra == {}
    for bad in ("4", 2.5, 0, 10, True):
        with pytest.raises(InputError, match="Toy strength"):
            prepare_request("cat, dog", "name", toy_strength=bad)


def test_the_toy_is_an_argument_of_both_endpoints_with_its_default(toy):
    from zsdemo.app import api

    for endpoint in ("classify", "evaluate"):
        found = {p.name: (p, words) for p, words in api.request_arguments(endpoint)}
        param, words = found["toy_strength"]
        assert param.default == 3 and param.annotation is int and words == TOY.help


def test_the_toy_is_a_control_of_the_page_and_a_link_parameter(toy):
    import gradio as gr

    from zsdemo.app import links
    from zsdemo.app.page import build_app

    page = build_app("tiny-random", None, "cpu", None)
    sliders = [b for b in page.blocks.values() if isinstance(b, gr.Slider) and b.label == TOY.label]
    assert len(sliders) == 1 and sliders[0].value == 3 and (sliders[0].minimum, sliders[0].maximum) == (1, 9)
    assert "toy_strength=5" in links.link_query({"toy_strength": 5})
    assert "toy_strength" not in links.link_query({"toy_strength": 3})       # the default is not written
    values, problems = links.from_query([("toy_strength", "5")])
    assert values == {"toy_strength": 5} and problems == []
    values, problems = links.from_query([("toy_strength", "99")])
    assert values == {} and "Toy strength (a test input) must be a whole number from 1 to 9" in problems[0]


def test_the_toy_goes_through_a_page_run_and_into_a_reports_settings(toy, cat_path, labelled_zip):
    from zsdemo.app import classifying, evaluating, state

    config = state.AppConfig("tiny-random", None, "cpu", None).with_uploads(cat_path.parent, labelled_zip.parent)
    run = classifying.run(config, [str(cat_path)], "cat, dog", ["name"], toy_strength=5)
    assert run.result.images[0].ok
    with pytest.raises(InputError, match="Toy strength"):
        classifying.run(config, [str(cat_path)], "cat, dog", ["name"], toy_strength="5")
    report = evaluating.evaluate_upload(config, str(labelled_zip), ["name"], views="flip", toy_strength=7)
    assert report.settings["toy_strength"] == 7


def test_without_the_toy_nothing_knows_it(cat_path):
    from zsdemo.run.request import prepare_request

    with pytest.raises(InputError, match="Unknown option 'toy_strength'"):
        prepare_request("cat, dog", "name", toy_strength=4)
