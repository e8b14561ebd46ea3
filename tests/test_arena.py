"""The arena in ``evaluate``: which strategy fixed what, with McNemar's exact test (arena.csv)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from zsdemo import metrics
from zsdemo.evaluation import evaluate, evaluation_request
from zsdemo.labelled import open_labelled
from zsdemo.report import write_report


@pytest.mark.parametrize("b, c, p", [
    (0, 0, 1.0), (5, 5, 1.0), (0, 5, 2 / 32), (1, 9, 2 * 11 / 1024), (10, 0, 2 / 1024), (3, 4, 1.0),
])
def test_mcnemar_exact_values(b, c, p):
    assert math.isclose(metrics.mcnemar_exact(b, c), p, rel_tol=1e-12)


def test_pairwise_counts():
    correct = {"x": np.array([1, 1, 0, 0, 1], bool), "y": np.array([1, 0, 1, 0, 0], bool)}
    assert metrics.pairwise(correct) == [("x", "y", 2, 1, 1, 1, 1.0)]


def test_evaluate_writes_the_arena(tiny, tmp_path, cat_path, astronaut_path):
    root = tmp_path / "set"
    for label, photo in (("cat", cat_path), ("astronaut", astronaut_path)):
        (root / label).mkdir(parents=True)
        (root / label / photo.name).write_bytes(photo.read_bytes())
    data = open_labelled(root)
    report = evaluate(tiny, data, evaluation_request(data, "name,photo,clip80"), cache=None)
    arena = report.summary()["arena"]
    assert [(r["a"], r["b"]) for r in arena] == [("name", "photo"), ("name", "clip80"), ("photo", "clip80")]
    for r in arena:
        right = {s: {x.file for x in report.records if x.top5[s][0] == x.label} for s in ("name", "photo", "clip80")}
        assert set(r["files_only_a_right"]) == right[r["a"]] - right[r["b"]]
        assert r["only_a_right"] + r["only_b_right"] + r["both_right"] + r["both_wrong"] == 2
        assert r["mcnemar_p"] == metrics.mcnemar_exact(r["only_a_right"], r["only_b_right"])
    write_report(report, tmp_path / "out")
    with open(tmp_path / "out" / "arena.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["strategy_a"], r["strategy_b"]) for r in rows] == [(r["a"], r["b"]) for r in arena]
