"""Classification and selective-prediction metrics on plain arrays (docs/METHODS.md §2).

Pure functions, no model: the evaluation feeds them predictions, labels and confidence scores;
tests feed them hand-made numbers.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
from scipy.stats import binomtest, rankdata

COVERAGE_POINTS = 20     # coverage curves are reported at 5%, 10%, ..., 100%


def topk_accuracy(topk: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the first ``k`` predictions; ``topk`` is [N, >=k]."""
    if len(labels) == 0:
        return float("nan")
    return float((topk[:, :k] == labels[:, None]).any(axis=1).mean())


def auroc(scores: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` separating correct (positive) from wrong predictions.

    The Mann-Whitney statistic: the probability that a correct prediction scores higher than a
    wrong one, ties counting one half (so a binary score gets partial credit for its ties).
    None when only one kind of prediction exists, where the area is undefined.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)               # 1-based, ties sharing their average rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def coverage_curve(scores: Sequence[float], correct: Sequence[bool],
                   points: int = COVERAGE_POINTS) -> list[tuple[float, float]]:
    """(coverage, accuracy of the retained images) when only the most confident are kept.

    Images are kept in order of decreasing score; images with equal scores are kept or dropped
    together (a binary score has only two real operating points), so each point's coverage is
    the smallest tie-closed share at least ``i / points``.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    n = len(s)
    if n == 0:
        return []
    order = np.argsort(-s, kind="mergesort")
    s_sorted, hits = s[order], np.cumsum(y[order])
    # Where a group of equal scores ends: a cut is only allowed after the last of a tie.
    ends = np.flatnonzero(np.append(s_sorted[1:] != s_sorted[:-1], True)) + 1
    out: list[tuple[float, float]] = []
    for i in range(1, points + 1):
        want = int(np.ceil(n * i / points))
        kept = int(ends[np.searchsorted(ends, want)])
        point = (kept / n, float(hits[kept - 1] / kept))
        if not out or out[-1] != point:
            out.append(point)
    return out


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray, n_classes: int) -> list[tuple[int, float | None]]:
    """(count, top-1 accuracy) per class index; accuracy None for a class with no image."""
    out = []
    for c in range(n_classes):
        mask = labels == c
        n = int(mask.sum())
        out.append((n, float((predictions[mask] == c).mean()) if n else None))
    return out


def confused_pairs(predictions: np.ndarray, labels: np.ndarray, limit: int = 10) -> list[tuple[int, int, int]]:
    """The most frequent (true class, predicted class, count) among wrong predictions."""
    wrong = Counter((int(t), int(p)) for t, p in zip(labels, predictions) if t != p)
    return [(t, p, n) for (t, p), n in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test of two classifiers on the same images: ``b`` images only the
    first got right, ``c`` only the second. Under "equally good" each discordant image is a fair
    coin: p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when there are none."""
    if b + c == 0:
        return 1.0
    return min(1.0, float(binomtest(min(b, c), b + c, 0.5).pvalue))


def pairwise(correct: dict[str, np.ndarray]) -> list[tuple[str, str, int, int, int, int, float]]:
    """For every pair (a, b) of classifiers, in order: images only a got right, only b, both,
    neither, and the exact McNemar p-value."""
    names = list(correct)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            only_a = int((correct[a] & ~correct[b]).sum())
            only_b = int((~correct[a] & correct[b]).sum())
            both = int((correct[a] & correct[b]).sum())
            neither = int((~correct[a] & ~correct[b]).sum())
            out.append((a, b, only_a, only_b, both, neither, mcnemar_exact(only_a, only_b)))
    return out
