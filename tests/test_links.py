"""Issue 28: a lesson as a link. The page's inputs go into a query string and come back the same;
a hostile query string gets the API's checks and limits and never names anything on the server."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from zsdemo.app import links
from zsdemo.core.resources import EXAMPLE_IMAGES


def test_the_inputs_survive_a_round_trip_through_the_address():
    values = {"classes": "crane\nheron\nexcavator", "strategies": ["name", "clip80", "hierarchy", "tpt"],
              "templates": "", "senses": {"crane": "crane.n.04"}, "top_k": 3, "model": "",
              "gallery": [str(EXAMPLE_IMAGES / "rocket.jpg"), str(EXAMPLE_IMAGES / "cat.png")],
              "tpt_steps": 3, "wordnet_keep": 0.4, "attributes": "condition: -, cool"}
    query = links.link_query(values)
    assert "wordnet_keep" not in query                    # a default is left out
    back, problems = links.from_query(parse_qsl(query))
    assert problems == []
    assert back["classes"] == values["classes"] and back["strategies"] == values["strategies"]
    assert back["senses"] == {"crane": "crane.n.04"} and back["top_k"] == 3 and back["tpt_steps"] == 3
    assert back["gallery"] == values["gallery"] and back["attributes"] == "condition: -, cool"


def test_an_uploaded_photo_is_not_put_into_a_link():
    query = links.link_query({"classes": "cat", "gallery": ["/tmp/gradio/abc/holiday.jpg"]})
    assert "images" not in query and "holiday" not in query


@pytest.mark.parametrize("lesson", links.LESSONS, ids=lambda x: x.id)
def test_every_built_in_lesson_opens(lesson):
    values, problems = links.from_query([("lesson", lesson.id)])
    assert problems == [] and values["classes"] and values["strategies"]
    assert bool(values.get("gallery")) == (lesson.tab == "classify")     # a camera lesson brings no photo
    assert len(lesson.say) > 200                          # a paragraph of what to say and point at


@pytest.mark.parametrize("key, value, expect", [
    ("images", "../../etc/passwd", "only be the page's example photos"),
    ("images", "/etc/hostname", "only be the page's example photos"),
    ("classes", " , ", "No class names"),
    ("strategies", "name,rm -rf", "unknown strategy"),
    ("tpt_steps", "NaN", "TPT steps must be"),
    ("tpt_steps", "1e9", "TPT steps must be"),
    ("coop_epochs", "400", "from 1 to 200"),
    ("top_k", "2.5", "top-k must be a whole number"),
    ("perception_temperature", "inf", "finite"),
    ("preset", "/etc", "not one of the class-name presets"),
    ("lesson", "nope", "no built-in lesson"),
    ("nonsense", "1", "not one this page has"),
])
def test_a_hostile_address_is_checked_like_an_api_call(key, value, expect):
    values, problems = links.from_query([(key, value)])
    assert key not in values and any(expect in p for p in problems), problems
    assert not any("/etc" in p or "passwd" in p for p in problems)       # nothing of the server echoed


def test_a_huge_query_string_is_not_read():
    values, problems = links.from_query([("classes", "x" * 30_000)])
    assert values == {} and "too long" in problems[0]
    values, problems = links.from_query([(f"k{i}", "1") for i in range(100)])
    assert values == {} and "too long" in problems[0]


def test_the_pages_copy_of_an_example_photo_goes_into_a_link_and_a_lookalike_does_not(tmp_path):
    import shutil

    shutil.copy(EXAMPLE_IMAGES / "rocket.jpg", tmp_path / "rocket.jpg")        # Gradio's copy, same bytes
    (tmp_path / "cat.png").write_bytes(b"not the cat")
    assert "images=rocket.jpg" in links.link_query({"gallery": [str(tmp_path / "rocket.jpg")]})
    assert "images" not in links.link_query({"gallery": [str(tmp_path / "cat.png")]})
    assert "images" not in links.link_query({"gallery": ["/dev/zero", "/etc/passwd"]})
