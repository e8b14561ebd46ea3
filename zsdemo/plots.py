"""Matplotlib figures drawn from result objects (no pyplot: figures are thread-safe and freed).

Each function takes plain result data and returns a ``matplotlib.figure.Figure``; the app shows
them, the CLI or a notebook can save them. Nothing here computes a method.
"""

from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection

from .results import ImageResult, StrategyResult

MAX_BARS = 12            # classes shown per figure; the rest is summed into "other"
OTHER = "other"
OTHER_COLOUR = "#b0b0b0"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896")
PANEL_COLUMNS = 3        # strategies per row: the figure stays readable in half a page
DPI = 100
BAR_HEIGHT = 0.75      # of a class's row
BARS_GID = "zsdemo-bars"


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def shown_classes(strategies: Sequence[StrategyResult], top_k: int, limit: int = MAX_BARS) -> list[int]:
    """One class order for every panel: the union of each strategy's top-k, by best probability."""
    best: dict[int, float] = {}
    for s in strategies:
        for p in s.top_k[:top_k]:
            best[p.index] = max(best.get(p.index, 0.0), p.prob)
    return sorted(best, key=lambda i: (-best[i], i))[:limit]


def probability_bars(image: ImageResult, classes: Sequence[str], strategies: Sequence[str],
                     top_k: int) -> Figure:
    """Every strategy's probabilities side by side: same classes, order and colours in each panel.

    All panels are drawn in one Axes, each shifted by a panel's width, and each panel's bars as one
    collection: a page request draws this figure every time, and one Axes with a few collections
    renders several times faster than a grid of subplots of ``barh`` rectangles.
    """
    results = [image.strategies[s] for s in strategies if s in image.strategies]
    order = shown_classes(results, top_k)
    hidden = len(order) < len(classes)      # "other" sums the classes not drawn; none, no bar
    colours = [PALETTE[k % len(PALETTE)] for k in range(len(order))] + [OTHER_COLOUR] * hidden
    labels = [_short(classes[c]) for c in order] + [OTHER] * hidden
    n = len(labels)
    ncols = min(PANEL_COLUMNS, max(1, len(results)))
    nrows = max(1, math.ceil(len(results) / ncols))
    step_x, step_y = 1.45, n + 2.2          # a panel's width (bars reach 1.0) and height, in data units
    width_in, height_in = 1.9 + 2.45 * ncols, 0.35 + nrows * 0.24 * step_y
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    ax = fig.add_axes((1.8 / width_in, 0.1 / height_in, 1 - 1.9 / width_in, 1 - 0.3 / height_in))
    ticks, tick_labels = [], []
    frames, midlines = [], []
    for k, r in enumerate(results):
        row, col = divmod(k, ncols)
        x0, y0 = col * step_x, row * step_y + 1.7
        probs = [r.probs[c] for c in order]
        values = probs + [max(0.0, 1.0 - sum(probs))] * hidden
        bars = [_box(x0, y0 + i - BAR_HEIGHT / 2, v, BAR_HEIGHT) for i, v in enumerate(values)]
        ax.add_collection(PolyCollection(bars, facecolors=colours, edgecolors="none", gid=BARS_GID,
                                         label=r.label))
        for i, v in enumerate(values):
            ax.text(x0 + min(v, 1.0) + 0.02, y0 + i, f"{100 * v:.0f}%", va="center", fontsize=8)
        frames.append(_box(x0, y0 - 0.6, 1.0, n + 0.2))
        midlines.append([(x0 + 0.5, y0 - 0.6), (x0 + 0.5, y0 + n - 0.4)])
        title = f"{_short(r.label, 30)}\ntop-1: {_short(r.top1.class_name, 24)}"
        if r.details.get("applied") is False:
            title += " (kept: confident)"
        ax.text(x0, y0 - 0.8, title, fontsize=9, va="bottom")
        if col == 0:
            ticks += [y0 + i for i in range(n)]
            tick_labels += labels
    ax.add_collection(LineCollection(midlines, colors="#dddddd", lw=0.6, zorder=0))
    ax.add_collection(PolyCollection(frames, facecolors="none", edgecolors="#888888", lw=0.6))
    ax.set_yticks(ticks, tick_labels, fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(-0.02, ncols * step_x - 0.1)
    ax.set_ylim(nrows * step_y, 0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return fig


def bar_groups(fig: Figure) -> list[PolyCollection]:
    """The bar collections of a ``probability_bars`` figure, one per strategy panel, in order."""
    return [c for c in fig.axes[0].collections if c.get_gid() == BARS_GID]


def bar_widths(group: PolyCollection) -> list[float]:
    return [float(np.ptp(path.vertices[:, 0])) for path in group.get_paths()]


def _box(x: float, y: float, width: float, height: float) -> list[tuple[float, float]]:
    return [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]


def tpt_bars(result: StrategyResult, classes: Sequence[str], top_k: int) -> Figure:
    """TPT: probabilities before (initial context) and after tuning, for the classes that matter."""
    before = result.details["probs_before"]
    after = result.probs
    best = {i: max(before[i], after[i]) for i in range(len(classes))}
    order = sorted(best, key=lambda i: (-best[i], i))[:max(top_k, 1)]
    ys = list(range(len(order)))
    fig = Figure(figsize=(6.0, 0.9 + 0.45 * len(order)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    h = 0.38
    ax.barh([y - h / 2 for y in ys], [before[i] for i in order], h, label="before tuning", color="#9ecae1")
    ax.barh([y + h / 2 for y in ys], [after[i] for i in order], h, label="after tuning", color="#08519c")
    ax.set_yticks(ys, [_short(classes[i]) for i in order])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"TPT: entropy {result.details['entropy_before']:.2f} → {result.details['entropy_after']:.2f} nats",
                 fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    return fig


def coverage_curves(curves: dict[str, Sequence[tuple[float, float]]],
                    aurocs: dict[str, float | None] | None = None) -> Figure:
    """Accuracy of the retained images against coverage, one line per confidence score.

    Reading it: at coverage 1.0 every score gives the full-set accuracy; a better score keeps
    more of its accuracy as the least confident images are dropped (the line rises to the left).
    """
    fig = Figure(figsize=(9.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for k, (label, points) in enumerate(curves.items()):
        if not points:
            continue
        xs, ys = zip(*points)
        auc = (aurocs or {}).get(label)
        name = label + (f" (AUROC {auc:.2f})" if auc is not None else "")
        dashed = "max " in label            # the baselines dashed, the consistency scores solid
        ax.plot(xs, ys, marker="o", markersize=3, lw=1.5, ls="--" if dashed else "-",
                color=PALETTE[k % len(PALETTE)], label=name)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage (share of images kept, most confident first)")
    ax.set_ylabel("accuracy of the kept images (name only)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Selective prediction: accuracy against coverage", fontsize=10, loc="left")
    return fig
