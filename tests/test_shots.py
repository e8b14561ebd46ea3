"""The shots curve's model-free pieces (issue 29, part): the shots list's checks, the nested draw
per seed, the curve's summary, and how many shots a zero-shot line is worth."""

from __future__ import annotations

import pytest

from zsdemo.core.errors import InputError
from zsdemo.run import shots


@pytest.mark.parametrize("value, expect", [
    ("", "No shots given"), (" , ", "No shots given"), ("1,two,4", "whole numbers of at least 1"),
    ("0,1", "whole numbers of at least 1"), ("-2", "whole numbers of at least 1"), ("1.5", "whole numbers"),
    ("1,2,32", "smallest class of the support set has 16 examples"),
])
def test_a_bad_shots_list_gets_a_clear_message(value, expect):
    with pytest.raises(InputError, match=expect):
        shots.parse_shots(value, smallest_class=16, seeds=3)


def test_too_many_runs_and_bad_seeds_are_refused():
    with pytest.raises(InputError, match="fits of every few-shot method"):
        shots.parse_shots(",".join(str(k) for k in range(1, 17)), smallest_class=16, seeds=10)
    for seeds in (0, 11, 2.5, True):
        with pytest.raises(InputError, match="Seeds must be a whole number"):
            shots.parse_shots("1,2", smallest_class=16, seeds=seeds)
    assert shots.parse_shots("16, 4,1,4", smallest_class=16, seeds=3) == [1, 4, 16]


def test_the_draw_is_seeded_per_class_and_nested_in_k():
    labels = [c for c in range(3) for _ in range(10)]
    one, four = shots.draw(labels, 1, seed=0), shots.draw(labels, 4, seed=0)
    assert len(one) == 3 and len(four) == 12 and set(one) <= set(four)
    assert shots.draw(labels, 4, seed=0) == four and shots.draw(labels, 4, seed=1) != four
    assert sorted(labels[i] for i in four) == [0] * 4 + [1] * 4 + [2] * 4


def test_the_curve_and_what_a_prompt_is_worth():
    points = shots.summarise({(1, "probe"): [0.4, 0.6], (4, "probe"): [0.8, 0.8], (1, "gda"): [0.5]})
    assert [(p.strategy, p.k) for p in points] == [("gda", 1), ("probe", 1), ("probe", 4)]
    probe = [p for p in points if p.strategy == "probe"]
    assert probe[0].mean == pytest.approx(0.5) and probe[0].spread == pytest.approx(0.1414, abs=1e-3)
    curve = [(p.k, p.mean) for p in probe]
    assert shots.crossing(0.65, curve) == pytest.approx(2.0)          # halfway in log2 between 1 and 4
    assert shots.crossing(0.9, curve) is None and shots.crossing(0.3, curve) == 0.0
    # In words: never "about 1 shot" for a line that falls between the 1-shot and the 2-shot point.
    assert shots.worth(2.0, curve) == "between 1 and 4 shots (about 2.0, interpolated in log2 k)"
    assert shots.worth(1.35, [(1, 0.29), (2, 0.5)]) == "between 1 and 2 shots (about 1.4, interpolated in log2 k)"
    assert shots.worth(4.0, curve) == "4 shots" and shots.worth(None, curve) == "more than 4 shots"
    assert shots.worth(0.0, curve) == "less than 1 shot"
