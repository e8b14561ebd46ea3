"""The Evaluate tab's panels: a report's tables, its shots curve and what each zero-shot line is
worth, as the page shows them (no Gradio here; every string goes through ``md``)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any, Sequence

from matplotlib.figure import Figure

from ..core.markup import html, md
from ..core.progress import count
from ..engine.images import NOT_AN_IMAGE
from ..run import plots
from ..run.evaluation import SCORES, EvaluationReport
from ..run.report import shots_data, shots_figure
from ..run.shots import ShotsCurve, short
from ..strategies import STRATEGIES, describe_options
from .panels import model_notice

Table = tuple[list[str], list[list[Any]]]     # a table's header and rows, as gr.Dataframe takes them


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


@dataclass
class EvaluationPanels:
    """What the evaluation tab shows for a report."""

    summary: str
    accuracy: Table
    low_confidence: Table
    auroc: Table
    coverage: Figure
    strategy_coverage: Figure
    per_class: Table
    confusions: Table
    shots_text: str = ""                  # what each zero-shot line is worth (Markdown)
    shots_curve: Figure | None = None
    # Each figure in words, by field name: its text alternative on the page.
    descriptions: dict[str, str] = field(default_factory=dict)


def shots_text(curve: ShotsCurve) -> str:
    """The curve in sentences, one per zero-shot strategy: the shots of each few-shot method it is worth."""
    by_zero: dict[str, list[str]] = {}
    for c in curve.crossings():
        by_zero.setdefault(c["zero_shot"], []).append(f"{c['words']} of {short(curve.labels[c['few_shot']], True)}")
    fits = len(curve.shots) * curve.seeds
    lines = ["**How many labelled examples is a prompt worth here?**", "",
             f"Each few-shot method was fitted {count(fits, 'time')} ({', '.join(map(str, curve.shots))} examples per "
             f"class, {count(curve.seeds, 'draw')} each) on features embedded once, in {curve.seconds:.1f} s, and "
             f"scored on the same {count(curve.images, 'image')} as the zero-shot strategies.", ""]
    lines += [f"- **{md(short(curve.labels[z]))}** ({100 * curve.zero_shot[z]:.0f}%) is worth {', '.join(parts)}."
              for z, parts in by_zero.items()]
    lines += [f"- {md(w)}" for w in curve.warnings]
    return "\n".join(lines)


def evaluation_panels(report: EvaluationReport, listed: int = 5) -> EvaluationPanels:
    """Tables and the coverage plot of an evaluation (text escaped for Markdown)."""
    s = report.summary()
    t = report.timing
    lines = [model_notice(report.model), "",
             f"**{count(s['n_images'], 'image')}** in **{count(len(report.classes), 'class', 'classes')}** "
             f"evaluated in {t['seconds']:.1f} s "
             f"({t['images_per_second']:.1f} images/s from the first image to the last; "
             f"{t['from_cache']} of them from the feature cache)."]
    skipped = report.dataset["skipped_non_images"]
    if skipped:
        lines.append(f"- {count(skipped, 'file')} skipped, by name: {NOT_AN_IMAGE}")
    if report.corrupt:
        lines.append(f"- {count(len(report.corrupt), 'unreadable image')} skipped: "
                     + _listing([why for _, why in report.corrupt], listed))
    problems = report.dataset["problems"]
    if problems:
        lines.append(f"- {count(len(problems), 'other problem')}: "
                     + _listing([f"{d['file']}: {d['problem']}" for d in problems], listed))
    support = report.support_summary()
    if support is not None:
        lines.append(f"- Few-shot support set {md(support['root'])}: {count(support['images'], 'labelled example')}, "
                     f"{support['shots_per_class']} per class.")
    lines += [f"- {md(w)}" for w in report.warnings]
    if report.sparsity is not None and report.sparsity.threshold is not None:
        sparse = report.sparsity.summary()
        lines.append(f"- Sparse WordNet: {sparse['kept']} of {sparse['population']} nodes kept (norm variance at least "
                     f"{sparse['threshold']:.3g}; keep {sparse['keep']:g}). Low-confidence rule: "
                     f"{md(report.settings['low_confidence'])}.")
    if report.settings.get("options"):
        lines.append(f"- Settings: {md(describe_options(report.settings['options']))}.")
    low = s["low_confidence"]
    accuracy = (["strategy", "top-1 %", "top-5 %", "note"],
                [[a["label"], _pct(a["top1"]), _pct(a["top5"]), "" if a["selected"] else "computed for the baselines"]
                 for a in s["accuracy"].values()])
    if len(report.classes) <= 5:
        lines.append(f"- Top-5 accuracy is 100% by definition with {count(len(report.classes), 'class', 'classes')}: "
                     "read top-1.")
    share = _pct(low["share"])
    low_rows = [[f"{STRATEGIES[sid].label} (vs {STRATEGIES[r['baseline']].label})", f"{low['size']} ({share}%)",
                 _pct(r["low_before"]), _pct(r["low_after"]), _pct(r["full_before"]), _pct(r["full_after"])]
                for sid, r in low["reranking"].items()]
    if not low_rows:
        low_rows = [["(no hierarchy strategy selected)", f"{low['size']} ({share}%)",
                     _pct(low["name_accuracy_low"]), "", _pct(s["accuracy"]["name"]["top1"]), ""]]
    low_table = (["re-ranking", "low-confidence set", "low: before %", "low: after %", "full: before %",
                  "full: after %"], low_rows)
    sel = s["selective"]
    auroc = (["confidence score", "AUROC (name-only correct)", "AUROC (own classifier correct)"],
             [[label, _auc(sel["auroc"][k]), _auc(sel["auroc_own"][k]) if k in sel["auroc_own"] else ""]
              for k, label in SCORES.items()]
             # A table cell is plain text: a Markdown escape would show ("CLIP\\-80").
             + [[f"max softmax, {r['label']} (its own)", _auc(r["auroc_name_correct"]), _auc(r["auroc"])]
                for r in sel["by_strategy"].values()])
    strategies = report.strategies
    per_class = (["class", "images", *[STRATEGIES[x].label + " %" for x in strategies]],
                 [[r["class"], r["images"], *[_pct(r[x]) for x in strategies]] for r in s["per_class"]])
    confusions = (["strategy", "true class", "predicted", "images"],
                  [[STRATEGIES[x].label, c["true"], c["predicted"], c["count"]]
                   for x, cs in s["confusions"].items() for c in cs])
    scores = ({SCORES[k]: v for k, v in sel["coverage"].items()}, {SCORES[k]: sel["auroc"][k] for k in SCORES})
    own = sel["by_strategy"].values()
    theirs = ({r["label"]: r["coverage"] for r in own}, {r["label"]: r["auroc"] for r in own})
    curve = report.shots_curve
    said = {"coverage": plots.describe_coverage(*scores), "strategy_coverage": plots.describe_coverage(*theirs)}
    if curve:
        said["shots_curve"] = plots.describe_shots(*shots_data(curve))
    return EvaluationPanels("\n".join(lines), accuracy, low_table, auroc, plots.coverage_curves(*scores),
                            plots.strategy_coverage(*theirs), per_class, confusions,
                            shots_text(curve) if curve else "", shots_figure(curve) if curve else None, said)


def figure_html(fig: Figure, title: str, description: str) -> str:
    """A figure as the page shows it: a PNG at its drawn width (never wider), its title as the
    picture's alternative text and the whole figure in words under it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=plots.DPI)
    width = round(fig.get_figwidth() * plots.DPI)
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure class="zs-figure"><img src="{url}" alt="{html(title)}: {html(description)}" '
            f'style="max-width:{width}px"><figcaption><details><summary>{html(title)}, in words</summary>'
            f'{html(description)}</details></figcaption></figure>')


def _listing(items: Sequence[str], listed: int) -> str:
    more = f"; and {len(items) - listed} more" if len(items) > listed else ""
    return "; ".join(md(x) for x in items[:listed]) + more + "."


def _auc(x: float | None) -> str:
    return "n/a (needs both right and wrong predictions)" if x is None else f"{x:.3f}"
