"""Figures and the choices behind the page's charts (no pyplot: figures are thread-safe and freed).

``coverage_curves`` returns a ``matplotlib.figure.Figure`` (the app shows it, the CLI saves it).
The probability bars are HTML (``panels.bars_html``), so that their labels keep the page's font
size at any width; they take their classes, colours and "other" from here. Nothing here computes
a method.
"""

from __future__ import annotations

from typing import Callable, Sequence

from matplotlib.figure import Figure

from ..engine.results import StrategyResult

MAX_BARS = 12            # classes shown per figure; the rest is summed into "other"
OTHER = "other"
OTHER_COLOUR = "#b0b0b0"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896")
DPI = 100


def shown_classes(strategies: Sequence[StrategyResult], top_k: int, limit: int = MAX_BARS) -> list[int]:
    """One class order for every panel: the union of each strategy's top-k, by best probability."""
    best: dict[int, float] = {}
    for s in strategies:
        for p in s.top_k[:top_k]:
            best[p.index] = max(best.get(p.index, 0.0), p.prob)
    return sorted(best, key=lambda i: (-best[i], i))[:limit]


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
    fig = Figure(figsize=(9.5, 4.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for k, (label, points) in enumerate(curves.items()):
        if not points:
            continue
        xs, ys = zip(*points)
        auc = (aurocs or {}).get(label)
        name = label + (f" (AUROC {auc:.2f})" if auc is not None else "")
        ax.plot(xs, ys, marker="o", markersize=3, lw=1.5, ls="--" if dashed(label) else "-",
                color=PALETTE[k % len(PALETTE)], label=name)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage (share of images kept, most confident first)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=10, loc="left")
    return fig
