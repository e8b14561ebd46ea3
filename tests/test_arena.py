"""The arena in ``evaluate``: which strategy fixed what, with McNemar's exact test (arena.csv)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from zsdemo.run import metrics
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.data.labelled import open_labelled
from zsdemo.run.report import write_report


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


def test_every_strategy_is_in_the_auroc_and_coverage_outputs(tiny, tmp_path, cat_path, astronaut_path):
    """Each evaluated strategy's own top-1 probability is a confidence score: AUROC against its own
    correctness and a coverage curve, the whole-set zpe and the descriptor methods included."""
    from PIL import Image

    from zsdemo.run.pipeline import classify
    root = tmp_path / "set"
    photos = {"cat": cat_path, "astronaut": astronaut_path}
    for label, photo in photos.items():
        (root / label).mkdir(parents=True)
        for k, angle in enumerate((0, 90, 180)):
            Image.open(photo).convert("RGB").rotate(angle).save(root / label / f"{k}.png")
    data = open_labelled(root)
    chosen = "name,clip80,dclip,waffle,zpe,perception"
    report = evaluate(tiny, data, evaluation_request(data, chosen), cache=None)
    own = report.summary()["selective"]["by_strategy"]
    assert list(own) == report.strategies == chosen.split(",")
    for s, r in own.items():
        conf = [x.confidence[s] for x in report.records]
        right = report.correct(s)
        assert r["auroc"] == metrics.auroc(conf, right)
        assert r["coverage"] == metrics.coverage_curve(conf, right)
    # The recorded confidence is the strategy's own top-1 probability, as classify gives it.
    record = next(x for x in report.records if x.file.endswith("cat/0.png"))
    got = classify(tiny, [str(root / "cat" / "0.png")], data.classes, ["dclip", "perception"])
    for s in ("dclip", "perception"):
        top = got.images[0].strategies[s].top1
        assert math.isclose(record.confidence[s], top.prob, rel_tol=1e-4)
    files = {p.name for p in write_report(report, tmp_path / "out")}
    assert {"strategy_confidence.csv", "strategy_coverage.csv", "strategy_coverage.png"} <= files
    with open(tmp_path / "out" / "strategy_confidence.csv", newline="") as f:
        assert [r["strategy"] for r in csv.DictReader(f)] == chosen.split(",")
