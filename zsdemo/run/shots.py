"""The CLIP paper's curve of accuracy against labelled examples ("shots") per class (Radford et
al., 2021, Figure 6): few-shot methods fitted on k examples per class, k = 1, 2, 4, 8, 16, beside
the zero-shot strategies as flat lines, and how many shots each zero-shot line is worth.

``plan`` checks what was asked before a model loads (``parse_shots``: the shots list; the seeds;
the budget). ``sweep`` runs it once the evaluation has embedded every image: for each k and seed,
``draw`` picks k examples per class from the support set (the same k and seed always give the
same examples, and a larger k keeps the smaller k's, so the curve compares like with like), each
few-shot method is fitted on them and scores the evaluated set. No image is embedded again: the
evaluated images' and the support set's features are computed once and reused for every fit.
``summarise`` turns the per-seed accuracies into the curve (mean and spread), and ``crossing``
says where a zero-shot line meets a few-shot curve (interpolated in log2 of k, as the paper's
figure is drawn).
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..core.arguments import whole_number
from ..core.errors import InputError
from ..core.progress import advance, stage
from ..strategies import STRATEGIES, Batch, Request, Run
from ..strategies.options import without_files
from .pipeline import reopen

MAX_SHOTS = 256
MAX_COUNTS = 32                 # shot counts in one list
MAX_TEXT = 1000                 # characters of a shots list
MAX_SEEDS = 10
DEFAULT_SEEDS = 3
MAX_FITS = 100                  # shots x seeds: each is a fit of every few-shot method
MAX_SERVED_FITS = 30            # on a shared server (the page and the API)
# Each draw's C sweep is 15 probe fits of at most 1,000 L-BFGS iterations, each a pass over its
# examples x classes x features. Measured on two cores (ViT-B-32's 512 features): 10 classes x
# 16 shots, 2-8 s a draw; 100 x 16, about 2 s on well separated features, more when every fit
# runs its 1,000 iterations. A shared server bounds examples x classes over all draws.
MAX_SERVED_PROBE_WORK = 1_000_000
CURVE = ("linear-probe", "gda", "tip")      # always on the curve
SLOW = ("coop",)                            # on it when selected, and not on a shared server
SELECTED = ("tipx",)                        # on it when selected (features only: a shared server too)
SCORE_BATCH = 1024
SWEEP_SPAN = (0.6, 1.0)                     # the sweep's part of an evaluation's progress bar


def parse_shots(value: str | Sequence[int], smallest_class: int, seeds: int, smallest_name: str = "") -> list[int]:
    """The shots per class to draw, ascending, each checked: whole numbers from 1 to the smallest
    class's number of examples, and not so many runs that a request would never end."""
    if isinstance(value, str):
        items = [s.strip() for s in value[:MAX_TEXT + 1].split(",")]
    elif isinstance(value, (list, tuple)) and len(value) <= MAX_COUNTS:
        items = [str(v) for v in value]
    else:
        size = f" of {len(value):,}" if isinstance(value, (list, tuple)) else ""
        raise InputError(f"Shots must be text such as 1,2,4,8,16 or a list of at most {MAX_COUNTS} whole numbers "
                         f"(got {type(value).__name__}{size}).")
    items = [s for s in items if s]
    if len(items) > MAX_COUNTS or (isinstance(value, str) and len(value) > MAX_TEXT):
        raise InputError(f"Too many shot counts: at most {MAX_COUNTS}, e.g. 1,2,4,8,16.")
    if not items:
        raise InputError("No shots given: list how many examples per class to draw, e.g. --shots 1,2,4,8,16.")
    shots = []
    for item in items:
        if not item.isdigit() or int(item) < 1:
            raise InputError(f"Shots must be whole numbers of at least 1, e.g. 1,2,4,8,16 (got {item[:20]!r}).")
        shots.append(int(item))
    shots = sorted(set(shots))
    if shots[-1] > min(smallest_class, MAX_SHOTS):
        which = f" ({smallest_name!r})" if smallest_name else ""
        most = min(smallest_class, MAX_SHOTS)
        raise InputError(f"{shots[-1]} shots per class, but the smallest class of the support set{which} has "
                         f"{smallest_class} examples: " + (f"draw at most {most}." if most else
                                                           "give examples of every class, or leave it out."))
    seeds = parse_seeds(seeds)
    if len(shots) * seeds > MAX_FITS:
        raise InputError(f"{len(shots)} shot counts x {seeds} seeds = {len(shots) * seeds} fits of every few-shot "
                         f"method; at most {MAX_FITS}. Use fewer shot counts or seeds.")
    return shots


def parse_seeds(value: object) -> int:
    """How many draws per shot count: a whole number from 1 to MAX_SEEDS. A number sent as text is
    refused, as every number of a request is (the command line reads its flag with ``seeds_flag``)."""
    return whole_number(value, "Seeds", 1, MAX_SEEDS, DEFAULT_SEEDS)


def seeds_flag(text: str | None) -> int | str | None:
    """``--seeds``' text as a number when it reads as one (else as given, for parse_seeds to refuse)."""
    return int(text.strip()) if text is not None and text.strip().isdigit() else text


def check_seeds_alone(seeds: object) -> None:
    """Seeds with no shots curve: refused unless they are the default (a form or client sends that),
    so that a caller who meant a curve hears that it is missing, on every surface alike."""
    if seeds is not None and parse_seeds(seeds) != DEFAULT_SEEDS:
        raise InputError("Seeds set the draws of the shots curve: give shots too (e.g. 1,2,4,8,16).")


def require_support(support: object) -> None:
    """Refuse a curve without a support set to draw from (the page asks before the model loads)."""
    if not support:
        raise InputError("The shots curve draws its examples from a support set: give one",
                         cli=" (--support FOLDER|ZIP).", page=" (upload a .zip of labelled examples as the few-shot "
                                                           ".zip).")


@dataclass(frozen=True)
class ShotsPlan:
    """A checked shots curve request: what to draw and which methods to fit and to compare."""

    shots: tuple[int, ...]
    seeds: int
    few_shot: tuple[str, ...]           # strategy ids fitted per k and seed
    zero_shot: tuple[str, ...]          # strategy ids drawn as flat lines
    warnings: tuple[str, ...] = ()


def plan(value: str | Sequence[int] | None, seeds: object, request: Request, served: bool = False,
         ) -> ShotsPlan | None:
    """The curve asked for (None when ``value`` is None), checked against the request's support
    set and the budget, before a model loads."""
    if value is None:
        return None
    require_support(request.support)
    counts = request.support.shots()
    smallest = min(counts, key=lambda c: (counts[c], c))
    n_seeds = parse_seeds(seeds)
    shots = parse_shots(value, counts[smallest], n_seeds, smallest)
    if served and len(shots) * n_seeds > MAX_SERVED_FITS:
        raise InputError(f"{len(shots)} shot counts x {n_seeds} seeds = {len(shots) * n_seeds} fits of every few-shot "
                         f"method; at most {MAX_SERVED_FITS} on this server. Use fewer shot counts or seeds, or run "
                         "zsdemo evaluate --shots on your own machine.")
    classes = len(request.classnames)
    work = n_seeds * sum(k * classes for k in shots) * classes
    if served and work > MAX_SERVED_PROBE_WORK:
        raise InputError(f"The linear probe would be fitted on {work:,} example-class pairs in all ({n_seeds} seeds, "
                         f"{classes:,} classes, shots {', '.join(map(str, shots))}); at most {MAX_SERVED_PROBE_WORK:,} "
                         "on this server. Use fewer classes, shots or seeds, or run zsdemo evaluate --shots on your "
                         "own machine.")
    selected = set(request.strategies)
    warnings = []
    slow = [s for s in SLOW if s in selected]
    if served and slow:
        names = ", ".join(short(STRATEGIES[s].label) for s in slow)
        warnings.append(f"{names} is left off the shots curve on this server ({len(shots) * n_seeds} trainings); "
                        "zsdemo evaluate --shots on your own machine draws it.")
        slow = []
    few_shot = CURVE + tuple(s for s in SELECTED if s in selected) + tuple(slow)
    for sid in few_shot:
        least = STRATEGIES[sid].least_shots(request)
        if shots[0] < least:
            raise InputError(f"{STRATEGIES[sid].label} holds out examples of each class to tune its settings (its "
                             f"validation fraction), so it needs at least {least} shots per class: drop "
                             f"{', '.join(str(k) for k in shots if k < least)} from the shots, or set its validation "
                             "fraction to 0.")
    zero_shot = tuple(s for s in request.strategies if not STRATEGIES[s].needs_support) or ("clip80",)
    return ShotsPlan(tuple(shots), n_seeds, few_shot, zero_shot, tuple(warnings))


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


def worth(shots: float | None, curve: Sequence[tuple[int, float]]) -> str:
    """A crossing in words: "1 shot" (met at a measured count), "between 1 and 2 shots (about 1.3,
    interpolated in log2 k)", "less than 1 shot", "more than 16 shots"."""
    ks = sorted(k for k, _ in curve)

    def plural(n: int) -> str:
        return f"{n} shot{'s' * (n != 1)}"
    if shots is None:
        return f"more than {plural(ks[-1])}"
    if shots == 0:
        return f"less than {plural(ks[0])}"
    if any(math.isclose(shots, k) for k in ks):
        return plural(round(shots))
    low = max(k for k in ks if k < shots)
    high = min(k for k in ks if k > shots)
    return f"between {low} and {plural(high)} (about {shots:.1f}, interpolated in log2 k)"


def short(label: str, inside: bool = False) -> str:
    """A strategy's label in a sentence: "CLIP-80 ensemble", "linear probe", "Tip-Adapter"."""
    name = label.split(" (")[0]
    first = name.split(" ")[0]
    return name[0].lower() + name[1:] if inside and first[1:].islower() else name


@dataclass
class ShotsCurve:
    """The curve: each few-shot method's accuracy per k (mean and spread over seeds), the
    zero-shot strategies' accuracy on the same images, and where they cross."""

    shots: list[int]
    seeds: int
    points: list[CurvePoint]
    zero_shot: dict[str, float]               # strategy -> top-1 accuracy on the evaluated set
    labels: dict[str, str]                    # strategy -> its label, for every strategy shown
    images: int                               # evaluated images each fit scored
    seconds: float = 0.0                      # the sweep's own time (no image embedded)
    warnings: list[str] = field(default_factory=list)

    @property
    def few_shot(self) -> list[str]:
        return list(dict.fromkeys(p.strategy for p in self.points))

    def curve(self, strategy: str) -> list[tuple[int, float]]:
        return [(p.k, p.mean) for p in self.points if p.strategy == strategy]

    def crossings(self) -> list[dict[str, Any]]:
        """Every zero-shot line against every few-shot curve: the shots it is worth there."""
        out = []
        for z, accuracy in self.zero_shot.items():
            for f in self.few_shot:
                k = crossing(accuracy, self.curve(f))
                out.append({"zero_shot": z, "few_shot": f, "shots": k, "words": worth(k, self.curve(f)),
                            "sentence": f"{short(self.labels[z])} is worth {worth(k, self.curve(f))} of "
                                        f"{short(self.labels[f], inside=True)} here."})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"shots": self.shots, "seeds": self.seeds, "images": self.images, "seconds": round(self.seconds, 3),
                "labels": self.labels, "zero_shot": self.zero_shot,
                "points": [dataclasses.asdict(p) for p in self.points], "crossings": self.crossings(),
                "warnings": self.warnings}

    def rows(self) -> list[list[Any]]:
        """shots_curve.csv: k, strategy, label, kind, mean, spread, per-seed values (';'); the
        zero-shot strategies at every k (they do not depend on the draw)."""
        rows = [[p.k, p.strategy, self.labels[p.strategy], "few-shot", p.mean, p.spread,
                 ";".join(f"{v:.6g}" for v in p.per_seed)] for p in self.points]
        rows += [[k, z, self.labels[z], "zero-shot", a, 0.0, f"{a:.6g}"]
                 for z, a in self.zero_shot.items() for k in self.shots]
        return rows


CSV_HEADER = ["k", "strategy", "label", "kind", "mean", "spread", "per_seed"]


def sweep(run: Run, features: torch.Tensor, labels: torch.Tensor, plan: ShotsPlan,
          zero_shot: dict[str, float]) -> ShotsCurve:
    """Fit every few-shot method of ``plan`` on k drawn examples per class of ``run.support``, for
    each k and seed, and score ``features`` (the evaluated images', already embedded: [N, D],
    with their ``labels``); ``zero_shot``: the zero-shot strategies' accuracies on them."""
    support = run.support
    counts = support.shots()
    lacking = {c: n for c, n in counts.items() if n < plan.shots[-1]}
    if lacking:
        c = min(lacking, key=lambda name: (lacking[name], name))
        raise InputError(f"{plan.shots[-1]} shots per class, but after leaving out the support images that are also "
                         f"evaluated (or unreadable) {c!r} has {lacking[c]}: draw at most {lacking[c]}, or give more "
                         "examples.")
    # Each draw is fitted afresh: no method loads or saves a file here.
    request = dataclasses.replace(run.request, options={k: without_files(v) for k, v in run.request.options.items()})
    start = time.perf_counter()
    stage(*SWEEP_SPAN, f"the shots curve: {', '.join(short(STRATEGIES[s].label) for s in plan.few_shot)}",
          len(plan.shots) * plan.seeds, "draw")
    accuracies: dict[tuple[int, str], list[float]] = {}
    all_labels = support.labels.tolist()
    for k in plan.shots:
        for seed in range(plan.seeds):
            fitted = reopen(run, request, support.subset(draw(all_labels, k, seed)),
                            [STRATEGIES[sid] for sid in plan.few_shot])
            for sid in plan.few_shot:
                strategy = STRATEGIES[sid]
                right = 0
                for first in range(0, len(features), SCORE_BATCH):
                    chunk = features[first:first + SCORE_BATCH]
                    logits = strategy.score(Batch(fitted, chunk)).logits
                    right += int((logits.argmax(dim=-1).cpu() == labels[first:first + SCORE_BATCH].cpu()).sum())
                accuracies.setdefault((k, sid), []).append(right / len(features))
            advance(1, "draw")
    names = {s: STRATEGIES[s].label for s in [*plan.few_shot, *zero_shot]}
    points = sorted(summarise(accuracies), key=lambda p: (plan.few_shot.index(p.strategy), p.k))
    return ShotsCurve(list(plan.shots), plan.seeds, points, dict(zero_shot), names, len(features),
                      time.perf_counter() - start, list(plan.warnings))


def curve_from_dict(d: dict[str, Any]) -> ShotsCurve:
    """A curve back from report.json's ``shots_curve``."""
    return ShotsCurve(d["shots"], d["seeds"], [CurvePoint(**p) for p in d["points"]], d["zero_shot"], d["labels"],
                      d["images"], d.get("seconds", 0.0), d.get("warnings", []))
