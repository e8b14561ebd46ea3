"""Figures and the choices behind the page's charts (no pyplot: figures are thread-safe and freed).

``coverage_curves`` returns a ``matplotlib.figure.Figure`` (the app shows it, the CLI saves it).
The probability bars are HTML (``panels.bars_html``), so that their labels keep the page's font
size at any width; they take their classes, colours and "other" from here. Nothing here computes
a method.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Callable, Sequence

import matplotlib
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..engine.results import ClassificationResult, StrategyResult

MAX_BARS = 12            # classes shown per figure; the rest is summed into "other"
OTHER = "other"
# Okabe and Ito's eight colours (2008): every pair stays apart for protan, deutan and tritan eyes
# (at least 10 CAM02-UCS units under full protanopia, deuteranopia and tritanopia, "other" included:
# tests/test_colour_vision.py). Classes past the eighth repeat a colour with stripes, and the
# lines of a plot differ by marker and dash as well, so no meaning rides on colour alone.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#56b4e9", "#cc79a7", "#f0e442", "#000000")
OTHER_COLOUR = "#b0b0b0"
HATCH = "///"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# A dark edge under every line and marker: Okabe and Ito's yellow, orange and sky blue are under
# 3:1 against white on their own (WCAG's contrast for graphics).
EDGE = "#333333"
OUTLINED = [patheffects.Stroke(linewidth=3.2, foreground=EDGE), patheffects.Normal()]
DPI = 100


_RC_LOCK = threading.Lock()     # rc settings are process-wide: one save that changes them at a time


def save(fig: Figure, path: Path | str, suffix: str, title: str | None = None) -> None:
    """``fig`` saved as ``suffix``; an SVG keeps its words as text (searchable, editable) rather
    than matplotlib's default outlines. ``title``: the file's own title (PNG and SVG metadata)."""
    metadata = {"Title": title} if title else None
    if suffix != "svg":
        fig.savefig(path, dpi=DPI, format=suffix, metadata=metadata)
        return
    with _RC_LOCK, matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path, dpi=DPI, format=suffix, metadata=metadata)


def colour(k: int) -> str:
    """The colour of the k-th class (or line) shown."""
    return PALETTE[k % len(PALETTE)]


def striped(k: int) -> bool:
    """Whether the k-th class repeats an earlier one's colour (and so is drawn striped)."""
    return (k // len(PALETTE)) % 2 == 1


def marker(k: int) -> str:
    return MARKERS[k % len(MARKERS)]


def shown_classes(strategies: Sequence[StrategyResult], top_k: int, limit: int = MAX_BARS) -> list[int]:
    """One class order for every panel: the union of each strategy's top-k, by best probability."""
    best: dict[int, float] = {}
    for s in strategies:
        for p in s.top_k[:top_k]:
            best[p.index] = max(best.get(p.index, 0.0), p.prob)
    return sorted(best, key=lambda i: (-best[i], i))[:limit]


def compared_classes(results: Sequence[ClassificationResult], index: int) -> list[int]:
    """One class order for the bars of one image on every model compared (the same classes in
    the same order and colours in each column)."""
    shown = [r.images[index].strategies[s] for r in results if not r.images[index].error
             for s in r.strategies if s in r.images[index].strategies]
    return shown_classes(shown, results[0].top_k)


SLIDE = (19.2, 10.8)      # inches at DPI: a 1920x1080 slide


def bars_figure(results: Sequence[ClassificationResult], index: int, size: tuple[float, float] = SLIDE) -> Figure:
    """The page's bars of one image as a figure (a slide, PNG or SVG): a card per strategy, the
    same classes, order and colours in every card and every model's column, the card's top-1 in
    bold and framed, "other" when classes are hidden."""
    order = compared_classes(results, index)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    columns = fig.subfigures(1, len(results), squeeze=False)[0]
    for column, result in zip(columns, results):
        image = result.images[index]
        title = result.model.get("label", "") if len(results) > 1 else image.source
        column.suptitle(title, fontsize=18, fontweight="bold")
        if image.error:
            column.text(0.5, 0.5, image.error, ha="center", va="center", wrap=True, fontsize=14)
            continue
        cards = [image.strategies[s] for s in result.strategies if s in image.strategies]
        cols = max(1, min(len(cards), round(math.sqrt(len(cards) * 1.6 / len(results)))))
        rows = math.ceil(len(cards) / cols)
        axes = column.subplots(rows, cols, squeeze=False).ravel()
        hidden = len(order) < len(result.classes)
        for ax, r in zip(axes, cards):
            _card(ax, r, result.classes, order, hidden)
        for ax in axes[len(cards):]:
            ax.set_axis_off()
    return fig


def _card(ax, r: StrategyResult, classes: Sequence[str], order: Sequence[int], hidden: bool) -> None:
    labels = [classes[c] for c in order] + ([OTHER] if hidden else [])
    probs = [r.probs[c] for c in order] + ([max(0.0, 1.0 - sum(r.probs[c] for c in order))] if hidden else [])
    colours = [colour(k) for k in range(len(order))] + ([OTHER_COLOUR] if hidden else [])
    hatches = [HATCH if striped(k) else "" for k in range(len(order))] + ([""] if hidden else [])
    y = list(range(len(labels)))[::-1]
    ax.barh(y, probs, color=colours, height=0.7, hatch=hatches, edgecolor=EDGE, lw=0.8)
    ax.set_xlim(0, 1.18)
    ax.set_yticks(y, labels, fontsize=13)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    for yy, p, label in zip(y, probs, labels):
        ax.text(p + 0.02, yy, f"{100 * p:.0f}%", va="center", fontsize=12)
    top = r.top1.index
    if top in order:
        row = y[list(order).index(top)]
        ax.get_yticklabels()[list(order).index(top)].set_fontweight("bold")
        ax.add_patch(Rectangle((0, row - 0.45), 1.16, 0.9, fill=False, lw=2, ec="#222222", clip_on=False))
    ax.set_title(f"{r.label}\ntop-1: {r.top1.class_name}", fontsize=14, loc="left")


def coverage_curves(curves: dict[str, Sequence[tuple[float, float]]],
                    aurocs: dict[str, float | None] | None = None) -> Figure:
    """Accuracy of the retained images against coverage, one line per confidence score.

    Reading it: at coverage 1.0 every score gives the full-set accuracy; a better score keeps
    more of its accuracy as the least confident images are dropped (the line rises to the left).
    """
    return _coverage_figure(curves, aurocs, "accuracy of the kept images (name only)",
                            "Selective prediction: accuracy against coverage",
                            dashed=lambda label: "max " in label)     # baselines dashed, consistency solid


def strategy_coverage(curves: dict[str, Sequence[tuple[float, float]]],
                      aurocs: dict[str, float | None] | None = None) -> Figure:
    """Each strategy's own accuracy against coverage, its images ordered by its own top-1
    probability: where a line starts (coverage 1) is the strategy's accuracy, its rise to the left
    how well the strategy knows when it is right."""
    return _coverage_figure(curves, aurocs, "accuracy of the kept images (each strategy's own)",
                            "Each strategy, confident first (max softmax of its own probabilities)",
                            dashed=lambda label: False)


def _coverage_figure(curves: dict[str, Sequence[tuple[float, float]]], aurocs: dict[str, float | None] | None,
                     ylabel: str, title: str, dashed: Callable[[str], bool]) -> Figure:
    # Drawn at about the width the page's column shows it (720 px), so that 12-point type is read at
    # about 16 px there; the legend goes under the axes, where it does not narrow them.
    lines = sum(1 for points in curves.values() if points)
    fig = Figure(figsize=(7.2, 4.6 + 0.28 * lines), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for k, (label, points) in enumerate(curves.items()):
        if not points:
            continue
        xs, ys = zip(*points)
        auc = (aurocs or {}).get(label)
        name = label + (f" (AUROC {auc:.2f})" if auc is not None else "")
        ax.plot(xs, ys, marker=marker(k), markersize=5, lw=1.8, ls="--" if dashed(label) else "-",
                color=colour(k), label=name, mec=EDGE, mew=0.8, path_effects=OUTLINED)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage (share of images kept, most confident first)", fontsize=12)
    ax.set_ylabel(ylabel, fontsize=12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=12, loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False)
    ax.set_title(title, fontsize=13, loc="left")
    ax.tick_params(labelsize=12)
    return fig


def describe_coverage(curves: dict[str, Sequence[tuple[float, float]]],
                      aurocs: dict[str, float | None] | None = None) -> str:
    """A coverage plot in words (its text alternative): each line's accuracy on every image and on
    the most confident half, and its AUROC."""
    said = []
    for label, points in curves.items():
        if not points:
            continue
        whole = max(points)[1]
        half = min(points, key=lambda p: (abs(p[0] - 0.5), -p[0]))
        auc = (aurocs or {}).get(label)
        said.append(f"{label}: {100 * whole:.0f}% right on every image, {100 * half[1]:.0f}% on the most confident "
                    f"{100 * half[0]:.0f}%" + (f", AUROC {auc:.2f}" if auc is not None else ""))
    return "; ".join(said) + "." if said else "No line: no score could be computed."


def describe_shots(curves: dict[str, Sequence[tuple[int, float, float]]], lines: dict[str, float]) -> str:
    """The shots curve in words: each few-shot method's mean accuracy at every count, each
    zero-shot line's accuracy."""
    said = [f"{label}: " + ", ".join(f"{100 * m:.0f}% at {k}" for k, m, _ in sorted(points))
            for label, points in curves.items()]
    said += [f"{label} (zero-shot, flat): {100 * a:.0f}%" for label, a in lines.items()]
    return "Top-1 accuracy by labelled examples per class. " + "; ".join(said) + "."


def shots_curve(curves: dict[str, Sequence[tuple[int, float, float]]], lines: dict[str, float],
                shots: Sequence[int], seeds: int, title: str = "Top-1 accuracy against labelled examples per class",
                ) -> Figure:
    """The CLIP paper's Figure 6 for this data: each few-shot method's mean accuracy per k (a
    band of one standard deviation over the seeds around it), each zero-shot strategy a flat
    dashed line, k on a log2 axis. ``curves``: label -> [(k, mean, spread)]; ``lines``: label -> accuracy.

    Drawn for a projector: narrower than the coverage plots, with large type and the legend
    under the axes, so that the page's column shows it near its own size."""
    fig = Figure(figsize=(9, 6.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for k, (label, points) in enumerate(curves.items()):
        xs, means, spreads = zip(*sorted(points))
        ax.plot(xs, means, marker=marker(k), markersize=7, lw=2.5, color=colour(k), label=label, mec=EDGE, mew=1,
                path_effects=[patheffects.Stroke(linewidth=4.2, foreground=EDGE), patheffects.Normal()])
        if seeds > 1:
            ax.fill_between(xs, [m - s for m, s in zip(means, spreads)], [m + s for m, s in zip(means, spreads)],
                            color=colour(k), alpha=0.15, lw=0)
    for j, (label, accuracy) in enumerate(lines.items(), start=len(curves)):
        ax.axhline(accuracy, color=colour(j), ls=(0, (5, 2 + j % 3)), lw=2.2, path_effects=OUTLINED,
                   label=f"{label} (zero-shot, {100 * accuracy:.0f}%)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(shots), [str(s) for s in shots])
    ax.minorticks_off()
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("labelled examples per class (shots), log scale", fontsize=15)
    ax.set_ylabel("top-1 accuracy", fontsize=15)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=14, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
    band = f"\nthe bands: ±1 standard deviation over {seeds} draws of the examples" if seeds > 1 else ""
    ax.set_title(title + band, fontsize=15, loc="left")
    ax.tick_params(labelsize=14)
    return fig


# How each kind of point of the embedding map is drawn (here and on the page's plotly map): the
# marker (matplotlib's, plotly's), its size and opacity. A prompt is a small dot of its cloud,
# its ensemble a large diamond, the name a square; images are white stars with a dark edge (they
# belong to no class).
MAP_KINDS = {
    "prompt": ("o", "circle", 6, 0.45),
    "wordnet": ("^", "triangle-up", 9, 0.9),
    "name": ("s", "square", 11, 1.0),
    "ensemble": ("D", "diamond", 15, 1.0),
    "image": ("*", "star", 20, 1.0),
}
# Each strategy's ensembles take their own marker (CLIP-7's and CLIP-80's centres side by side).
ENSEMBLE_MARKERS = (("D", "diamond"), ("p", "pentagon"), ("h", "hexagon"), ("X", "x"), ("P", "cross"),
                    ("v", "triangle-down"))
MAP_WORDS = {"prompt": "prompts (one dot each)", "wordnet": "WordNet parents and children",
             "name": "class name alone", "ensemble": "ensemble (the mean of the prompts)", "image": "images"}
MAP_SIZE = (12.8, 9.6)


def map_classes(points: Sequence) -> list[str]:
    """The classes of a map in their first order: the k-th takes ``colour(k)``."""
    return list(dict.fromkeys(p.class_name for p in points if p.class_name is not None))


def ensemble_words(label: str) -> str:
    """A strategy's ensemble in a legend: "CLIP-80 ensemble", "Custom templates ensemble"."""
    return label if "ensemble" in label.lower() else f"{label} ensemble"


def map_ensembles(points: Sequence) -> dict[str, int]:
    """The strategies with ensembles on a map, in their first order: the k-th takes ENSEMBLE_MARKERS[k]."""
    found = dict.fromkeys(p.strategy for p in points if p.kind == "ensemble")
    return {s: k % len(ENSEMBLE_MARKERS) for k, s in enumerate(found)}


def map_figure(found, highlighted: int | None = None, size: tuple[float, float] = MAP_SIZE) -> Figure:
    """The embedding map (``run/embedding_map.EmbeddingMap``) as a figure: a colour per class
    (stripes are not drawn on points: past the eighth class a colour repeats, and the legend and
    the JSON name each point), a marker per kind, the images as stars (``highlighted``: the
    image inspected, larger and named)."""
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    classes = map_classes(found.points)
    ensembles = map_ensembles(found.points)
    for kind in ("prompt", "wordnet", "name", "ensemble"):
        _, _, size_px, alpha = MAP_KINDS[kind]
        for k, name in enumerate(classes):
            for strategy, mark in _marks(kind, ensembles):
                xs = [(p.x, p.y) for p in found.points if p.kind == kind and p.class_name == name
                      and (strategy is None or p.strategy == strategy)]
                if xs:
                    ax.scatter(*zip(*xs), s=size_px ** 2, marker=mark, color=colour(k), alpha=alpha, linewidths=1.0,
                               edgecolors=EDGE if kind != "prompt" else "none", zorder=2 + (kind != "prompt"))
    images = [p for p in found.points if p.kind == "image"]
    for j, p in enumerate(images):
        big = j == highlighted
        ax.scatter([p.x], [p.y], s=(28 if big else 20) ** 2, marker="*", color="white", edgecolors=EDGE,
                   linewidths=2.0 if big else 1.2, zorder=5)
        if big or len(images) <= 8:
            ax.annotate(p.text[:40], (p.x, p.y), xytext=(8, 8), textcoords="offset points", fontsize=13,
                        fontweight="bold" if big else "normal", zorder=6)
    handles = [ax.scatter([], [], marker="s", color=colour(k), edgecolors=EDGE, s=120, label=name[:40])
               for k, name in enumerate(classes[:16])]
    handles += [ax.scatter([], [], marker=MAP_KINDS[k][0], color="white", edgecolors=EDGE, s=120, label=MAP_WORDS[k])
                for k in MAP_KINDS if k != "ensemble" and any(p.kind == k for p in found.points)]
    labels = {p.strategy: p.text.split(":")[0] for p in found.points if p.kind == "ensemble"}
    handles += [ax.scatter([], [], marker=ENSEMBLE_MARKERS[k][0], color="white", edgecolors=EDGE, s=150,
                           label=ensemble_words(labels[s])) for s, k in ensembles.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=12, frameon=False)
    ax.set_xlabel(found.axis_label(0), fontsize=14)
    ax.set_ylabel(found.axis_label(1), fontsize=14)
    ax.tick_params(labelsize=12)
    ax.set_title("Embedding map" + (": images and texts centred apart" if found.separate_modalities else ""),
                 fontsize=16, loc="left")
    ax.grid(True, color="#dddddd", lw=0.6)
    return fig


def _marks(kind: str, ensembles: dict[str, int]) -> list[tuple[str | None, str]]:
    """(strategy, marker) pairs to draw ``kind`` with: ensembles one strategy at a time."""
    if kind != "ensemble":
        return [(None, MAP_KINDS[kind][0])]
    return [(s, ENSEMBLE_MARKERS[k][0]) for s, k in ensembles.items()]
