"""Colours for every eye: the page's palette (the bars, the compare columns, the plots) stays
distinct under full protanopia, deuteranopia and tritanopia (Machado et al. 2009's simulation, as
colorspacious implements it), measured as the CAM02-UCS distance between every two colours shown.

The browser half (tests/test_accessibility.py) checks that the page draws its bars from this palette."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

colorspacious = pytest.importorskip("colorspacious")

from zsdemo.run import plots  # noqa: E402

DEFICIENCIES = ("protanomaly", "deuteranomaly", "tritanomaly")      # at severity 100: the full -opias
# A difference seen at a glance: 10 CAM02-UCS units (one is about a just-noticeable difference).
THRESHOLD = 10.0


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255


def _seen(colours: list[str], deficiency: str | None) -> list[np.ndarray]:
    rgb = [_rgb(c) for c in colours]
    if deficiency is None:
        return rgb
    space = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
    return [np.clip(colorspacious.cspace_convert(c, space, "sRGB1"), 0, 1) for c in rgb]


def smallest_distance(colours: list[str], deficiency: str | None) -> float:
    seen = _seen(colours, deficiency)
    return min(colorspacious.deltaE(a, b, input_space="sRGB1", uniform_space="CAM02-UCS")
               for a, b in itertools.combinations(seen, 2))


@pytest.mark.parametrize("deficiency", [None, *DEFICIENCIES])
def test_every_two_colours_of_the_palette_and_other_stay_apart(deficiency):
    assert smallest_distance([*plots.PALETTE, plots.OTHER_COLOUR], deficiency) >= THRESHOLD


def test_the_test_can_fail_the_palette_it_replaced():
    # matplotlib's tab10, the page's palette before: green and orange merge for a deuteranope.
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    assert smallest_distance(tab10, "deuteranomaly") < THRESHOLD


def test_colours_repeat_only_with_stripes_and_lines_differ_by_marker():
    shown = [(plots.colour(k), plots.striped(k)) for k in range(plots.MAX_BARS)]
    assert len(set(shown)) == plots.MAX_BARS                 # twelve classes: twelve distinct fills
    assert len({plots.marker(k) for k in range(len(plots.PALETTE))}) == len(plots.PALETTE)
