"""The CLIP paper's curve of accuracy against shots per class: its pieces that need no model.

``parse_shots`` checks a shots list ("1,2,4,8,16"), ``draw`` picks k examples per class for one
seed (the same k and seed always give the same examples, and a larger k keeps the smaller k's
examples, so the curve compares like with like), ``summarise`` turns per-seed accuracies into
the curve (mean and spread), and ``crossing`` says how many shots a zero-shot line is worth
(where it meets a few-shot curve, interpolated in log2 of k as the paper's figure is drawn).
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Sequence

from ..core.errors import InputError

MAX_SHOTS = 256
MAX_SEEDS = 10
MAX_FITS = 100                  # shots x seeds: each is a fit of every few-shot method


def parse_shots(value: str | Sequence[int], smallest_class: int, seeds: int) -> list[int]:
    """The shots per class to draw, ascending, each checked: whole numbers from 1 to the smallest
    class's number of examples, and not so many runs that a request would never end."""
    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    items = [s for s in items if s]
    if not items:
        raise InputError("No shots given: list how many examples per class to draw, e.g. --shots 1,2,4,8,16.")
    shots = []
    for item in items:
        if not item.isdigit() or int(item) < 1:
            raise InputError(f"Shots must be whole numbers of at least 1, e.g. 1,2,4,8,16 (got {item[:20]!r}).")
        shots.append(int(item))
    shots = sorted(set(shots))
    if shots[-1] > min(smallest_class, MAX_SHOTS):
        raise InputError(f"{shots[-1]} shots per class, but the smallest class of the support set has "
                         f"{smallest_class} examples: draw at most {min(smallest_class, MAX_SHOTS)}.")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= MAX_SEEDS:
        raise InputError(f"Seeds must be a whole number from 1 to {MAX_SEEDS} (got {str(seeds)[:20]}).")
    if len(shots) * seeds > MAX_FITS:
        raise InputError(f"{len(shots)} shot counts x {seeds} seeds = {len(shots) * seeds} fits of every few-shot "
                         f"method; at most {MAX_FITS}. Use fewer shot counts or seeds.")
    return shots


def draw(labels: Sequence[int], k: int, seed: int) -> list[int]:
    """Indices of k examples of each class (labels: a class index per example), nested in k."""
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    picked = []
    for label in sorted(by_class):
        rows = list(by_class[label])
        random.Random(f"{seed}:{label}").shuffle(rows)      # per class: independent of the others' sizes
        picked += rows[:k]
    return sorted(picked)


@dataclass
class CurvePoint:
    k: int
    strategy: str
    mean: float
    spread: float                 # the standard deviation over seeds (0 with one seed)
    per_seed: list[float]


def summarise(accuracies: dict[tuple[int, str], list[float]]) -> list[CurvePoint]:
    """(k, strategy) -> each seed's accuracy, as curve points ordered by strategy then k."""
    out = []
    for (k, strategy), values in sorted(accuracies.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(CurvePoint(k, strategy, statistics.fmean(values), spread, list(values)))
    return out


def crossing(zero_shot: float, curve: Sequence[tuple[int, float]]) -> float | None:
    """The shots a zero-shot accuracy is worth on a few-shot curve [(k, mean)], by linear
    interpolation in log2(k) between the points around it; None when the curve never reaches it,
    0 when even its first point is better."""
    points = sorted(curve)
    if not points:
        return None
    if points[0][1] >= zero_shot:
        return 0.0 if points[0][1] > zero_shot else float(points[0][0])
    for (k0, a0), (k1, a1) in zip(points, points[1:]):
        if a0 < zero_shot <= a1:
            t = (zero_shot - a0) / (a1 - a0)
            return 2 ** (math.log2(k0) + t * (math.log2(k1) - math.log2(k0)))
    return None
