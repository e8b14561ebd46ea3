"""Metrics on fixed numbers, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from zsdemo.run import metrics


def test_topk_accuracy():
    topk = np.array([[0, 1], [1, 0], [2, 1]])
    labels = np.array([0, 0, 0])
    assert metrics.topk_accuracy(topk, labels, 1) == pytest.approx(1 / 3)
    assert metrics.topk_accuracy(topk, labels, 2) == pytest.approx(2 / 3)


def test_auroc_by_hand():
    # Positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 (positive, negative) pairs,
    # the positive wins 3 (0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4): 3/4.
    assert metrics.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert metrics.auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert metrics.auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0


def test_auroc_counts_ties_one_half():
    # Binary score: pairs (1,1) tie 0.5, (1,0) win 1, (0,1) lose 0, (0,0) tie 0.5 -> 2/4.
    assert metrics.auroc([1, 0, 1, 0], [True, True, False, False]) == pytest.approx(0.5)
    # Confident correct x2, low wrong x1, low correct x1: pairs (pos, neg) = (1,0) win, (1,0) win,
    # (0,0) tie -> 2.5 / 3.
    assert metrics.auroc([1, 1, 0, 0], [True, True, False, True]) == pytest.approx(2.5 / 3)


def test_auroc_undefined_with_one_kind_of_prediction():
    assert metrics.auroc([0.3, 0.2], [True, True]) is None
    assert metrics.auroc([], []) is None


def test_coverage_curve_by_hand():
    curve = metrics.coverage_curve([0.9, 0.8, 0.7, 0.6], [True, True, False, True], points=4)
    assert curve == [(0.25, 1.0), (0.5, 1.0), (0.75, pytest.approx(2 / 3)), (1.0, 0.75)]


def test_coverage_curve_keeps_ties_together():
    # Two scores only: the cut can fall after the two 1s or after everything.
    curve = metrics.coverage_curve([1, 0, 1, 0], [True, True, False, True], points=4)
    assert curve == [(0.5, 0.5), (1.0, 0.75)]


def test_per_class_accuracy_and_confusions():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 0, 0, 2])
    assert metrics.per_class_accuracy(preds, labels, 4) == [(2, 0.5), (3, pytest.approx(1 / 3)), (1, 1.0), (0, None)]
    assert metrics.confused_pairs(preds, labels) == [(1, 0, 2), (0, 1, 1)]
    assert metrics.confused_pairs(preds, labels, limit=1) == [(1, 0, 2)]


def test_auroc_agrees_with_scikit_learn_on_ties_and_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for size in (5, 40, 300):
        scores = rng.integers(0, 6, size).astype(float)       # many ties
        correct = rng.random(size) < 0.6
        if correct.all() or not correct.any():
            continue
        assert metrics.auroc(scores, correct) == pytest.approx(roc_auc_score(correct, scores), abs=1e-12)
