"""What the app shows for a result: tables, text panels, thumbnails and figures (no Gradio here).

Every string that reaches the page goes through ``md`` or ``html``: class names, file names and
glosses come from users or data files and must show as text, never as markup.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from matplotlib.figure import Figure
from PIL import Image

from ..core.markup import breakable, html, md
from .found import found_html
from ..engine.consistency import GROUP_LABELS, ConsistencyDetails
from ..engine.results import ClassificationResult, ImageResult, StrategyResult, verdict
from ..engine.views import VIEW_LABELS, make_view
from ..run import plots
from ..strategies import STRATEGIES, PanelContext

THUMBNAIL = 160
NEAREST_THUMBNAIL = 112


STATUS_ICONS = {"done": "✔", "error": "✗", "stopped": "■"}


def status_html(kind: str, text: str) -> str:
    """The line above the results: a run's progress, outcome or problem (``kind`` picks the colour)."""
    return (f'<div class="zs-status zs-status-{html(kind)}" role="status">'
            f'{STATUS_ICONS.get(kind, "")} {html(text)}</div>')


def model_notice(model: dict[str, Any]) -> str:
    """A line about the model; loud when its weights are random."""
    where = f"{md(model['label'])} on {md(model['device'])} ({md(model['precision'])})"
    if model.get("random_weights"):
        # Red, as "How it works" says (an HTML block of the page's Markdown, its text escaped).
        return (f'<div class="zs-random">⚠ <strong>{html(model["label"])} on {html(model["device"])} '
                f'({html(model["precision"])}): RANDOM weights, so the predictions are meaningless.</strong> '
                "It exists for tests and offline work; pick a pretrained model for real results.</div>")
    return f"Model: {where}."


SELECTED_MARK = "▶ "
VERDICTS = {"confident": "✔ confident", "low confidence": "⚠ uncertain", "": "not checked"}
def summary_html(result: ClassificationResult, selected: int | None = 0,
                 compared: ClassificationResult | None = None) -> str:
    """The summary over all images: a row per image (click one to inspect it; ``selected`` is
    framed and marked), the verdict first as a badge, then each strategy's top-1 as a chip; rows
    and chips wrap between words, so nothing scrolls sideways on a phone and no word is cut.
    With ``compared`` (the same request on a second model) each model's chips form a column."""
    rows = []
    for k, im in enumerate(result.images):
        mark = " zs-selected" if k == selected else ""
        name = f'<span class="zs-mark">{SELECTED_MARK.strip()}</span> ' if k == selected else ""
        if im.error:
            cells = f'<span class="zs-badge zs-bad">✗ not read</span></div><div class="zs-tops">{html(im.error)}'
        else:
            v = verdict(im)
            badge = {"confident": "zs-ok", "low confidence": "zs-warn"}.get(v, "zs-none")
            base = im.strategies["name"].top1.index if "name" in im.strategies else None
            chips = "".join(_chip(r, base) for r in (im.strategies[s] for s in result.strategies))
            if compared is not None:
                chips = _model_columns(result, compared, chips, k)
            cells = (f'<span class="zs-badge {badge}">{html(VERDICTS.get(v, v))}</span></div>'
                     f'<div class="zs-tops">{chips}')
        rows.append(f'<div class="zs-row{mark}" data-index="{k}" role="button" tabindex="0" '
                    f'aria-pressed="{"true" if mark else "false"}"><div class="zs-row-head">'
                    f'<span class="zs-file">{name}{html(im.source)}</span> {cells}</div></div>')
    differs = ("; <span class=\"zs-chip zs-changed\">≠</span> marks a top-1 that differs from name only"
               if "name" in result.strategies and len(result.strategies) > 1 else "")
    return ('<div class="zs-caption">Every image: its verdict and each strategy\'s top-1'
            f'{differs}. Click a row (or an image) to inspect it below.</div>'
            f'<div class="zs-summary">{"".join(rows)}</div>')


def _model_columns(result: ClassificationResult, compared: ClassificationResult, chips: str, k: int) -> str:
    other = compared.images[k]
    if other.error:
        theirs = html(other.error)
    else:
        base = other.strategies["name"].top1.index if "name" in other.strategies else None
        theirs = "".join(_chip(r, base) for r in (other.strategies[s] for s in compared.strategies))
    return "".join(f'<div class="zs-model-col"><div class="zs-model-name">{html(r.model.get("label", ""))}</div>'
                   f'<div class="zs-tops">{c}</div></div>' for r, c in ((result, chips), (compared, theirs)))


def _chip(r: StrategyResult, base: int | None) -> str:
    """A strategy's top-1 for the summary; marked when it differs from the name-only top-1 (which
    method changed the answer is the arena's question)."""
    changed = base is not None and r.strategy != "name" and r.top1.index != base
    mark = ' <span aria-label="differs from name only">≠</span>' if changed else ""
    return (f'<span class="zs-chip{" zs-changed" if changed else ""}"><b>{html(r.label)}</b>: '
            f'{html(r.top1.class_name)} {100 * r.top1.prob:.0f}%{mark}</span>')


def verdict_html(check: ConsistencyDetails | None) -> str:
    """The confident / uncertain verdict as a coloured badge with the rule that fired."""
    if not check:
        return ""
    if not check.low_confidence:
        return ('<div class="zs-verdict zs-confident">✔ <b>Confident.</b> The prediction stays the same '
                "across the four prompt groups and when the image is flipped left-right.</div>")
    reasons = []
    if check.o_t:
        reasons.append("the prompt groups disagree")
    if check.o_b:
        reasons.append("flipping the image left-right changes the prediction")
    return ('<div class="zs-verdict zs-uncertain">⚠ <b>Uncertain (low confidence).</b> '
            f"{html(' and '.join(reasons)).capitalize()}. The hierarchy strategies re-rank such "
            "images with WordNet parents and children.</div>")


def consistency_markdown(check: ConsistencyDetails | None) -> str:
    """Prompt groups with their top-1, S_T and S_B in words."""
    if not check:
        return ("*The consistency check was not run. Tick \"consistency check\" or a hierarchy strategy "
                "to see it.*")
    base = check.base
    lines = [f"**Name-only prediction:** {md(base)}", "",
             "| prompt group | top-1 | agrees |", "|---|---|---|"]
    for g, top in check.groups.items():
        lines.append(f"| {md(GROUP_LABELS.get(g, g))} | {md(top)} | {'✓' if top == base else '✗'} |")
    singles = check.single_template
    agree_t = sum(t == base for t in singles)
    agree_b = sum(v == base for v in check.views.values())
    lines += ["",
              f"**S_T = {check.s_t:.2f}**: {agree_t} of the {len(singles)} single-template classifiers "
              "agree with the name-only prediction.",
              "",
              f"**S_B = {check.s_b:.2f}**: {agree_b} of the {len(check.views)} image views agree.",
              "",
              f"O_T (prompt groups disagree): **{'yes' if check.o_t else 'no'}** · "
              f"O_B (left-right flip changes the prediction): **{'yes' if check.o_b else 'no'}**"]
    return "\n".join(lines)


def view_thumbnails(image: Image.Image | None, check: ConsistencyDetails | None,
                    size: int = THUMBNAIL) -> list[tuple[Image.Image, str]]:
    """The original and every view of the check as thumbnails, each captioned with its top-1."""
    if image is None or not check:
        return []
    small = image.copy()
    small.thumbnail((size * 2, size * 2))
    base = check.base
    out = [(_fit(small, size), f"original → {base}")]
    for view, top in check.views.items():
        mark = "✓" if top == base else "✗"
        out.append((_fit(make_view(small, view), size), f"{VIEW_LABELS.get(view, view)} → {top} {mark}"))
    return out


def views_html(views: Sequence[tuple[Image.Image, str]]) -> str:
    """The thumbnails as a grid, each with its whole caption under it (a gallery's caption is one
    clipped line, and the caption's top-1 and ✓/✗ are the lesson)."""
    if not views:
        return ""
    cells = []
    for k, (im, caption) in enumerate(views):
        name, _, verdict_text = caption.partition(" → ")
        agrees = "" if k == 0 else (" zs-agree" if verdict_text.endswith("✓") else " zs-disagree")
        cells.append(f'<figure class="zs-view{agrees}"><img src="{_data_url(im)}" alt="{html(name)}">'
                     f'<figcaption>{html(name)}<br><b>→ {html(verdict_text)}</b></figcaption></figure>')
    return ('<div class="zs-caption">The original and each view, with its name-only top-1 '
            '(✓ agrees with the original, ✗ does not)</div>'
            f'<div class="zs-views">{"".join(cells)}</div>')


def _data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_url(image: Image.Image, size: int = NEAREST_THUMBNAIL) -> str:
    """A small JPEG of ``image`` as a data URL (what the page keeps of a support example)."""
    return _data_url(_fit(image, size))


def class_fill(k: int) -> str:
    """The k-th class's fill: its colour, striped from the ninth class on (``plots.striped``)."""
    if plots.striped(k):
        return f"repeating-linear-gradient(45deg, {plots.colour(k)} 0 4px, #ffffff 4px 6px)"
    return plots.colour(k)


SIGMOID_NOTE = ("This model was trained with a sigmoid per class (SigLIP): its sigmoid score answers \"is it this "
                "class?\" for each class on its own, so the scores need not add up to 100% and can all be low, "
                "while the softmax compares the classes with each other and always sums to 100%.")


def sigmoid_scores(r: StrategyResult, bias: float | None) -> list[float] | None:
    """A sigmoid-trained model's own per-class scores, sigmoid(logit + bias), where the strategy's
    logits are the logit scale times a cosine (None elsewhere)."""
    if bias is None or not STRATEGIES[r.strategy].scaled_cosine_logits:
        return None
    return [0.0 if x is None else 1 / (1 + math.exp(-(x + bias))) for x in r.logits]


def bars_html(image: ImageResult, classes: Sequence[str], strategies: Sequence[str], top_k: int,
              bias: float | None = None, order: Sequence[int] | None = None) -> str:
    """Every strategy's probabilities as a card of bars: the same classes, order and colours in
    each card, the card's top-1 in bold with a frame, "other" only when classes are hidden. A
    sigmoid-trained model (``bias``, its logit bias) adds each class's sigmoid score under its bar.

    HTML rather than a figure: the text stays at the page's font size on a phone and a projector
    alike (a figure's labels shrink with its width), and the cards wrap to the width there is."""
    results = [image.strategies[s] for s in strategies if s in image.strategies]
    order = list(order) if order is not None else plots.shown_classes(results, top_k)
    hidden = len(order) < len(classes)
    cards = []
    for r in results:
        probs = [r.probs[c] for c in order]
        sigmoid = sigmoid_scores(r, bias)
        rows = []
        for k, (c, p) in enumerate(zip(order, probs)):
            rows.append(_bar_row(classes[c], p, class_fill(k), c == r.top1.index))
            if sigmoid is not None:
                rows.append(_bar_row("sigmoid", sigmoid[c], class_fill(k), False, extra=" zs-sigmoid"))
        if hidden:
            rows.append(_bar_row(plots.OTHER, max(0.0, 1.0 - sum(probs)), plots.OTHER_COLOUR, False))
        note = STRATEGIES[r.strategy].card_note(r)
        note = f" ({note})" if note else ""
        cards.append(f'<div class="zs-card"><div class="zs-card-title">{html(r.label)}</div>'
                     f'<div class="zs-card-top">top-1: <b>{breakable(r.top1.class_name)}</b>{html(note)}</div>'
                     f'{"".join(rows)}</div>')
    explained = f'<div class="zs-caption">{html(SIGMOID_NOTE)}</div>' if bias is not None else ""
    return f'{explained}<div class="zs-cards">{"".join(cards)}</div>'


def compared_bars_html(result: ClassificationResult, compared: ClassificationResult, index: int) -> str:
    """The bars of two models side by side, one column each (stacked on a narrow screen)."""
    columns = []
    order = plots.compared_classes([result, compared], index)      # one order and colouring for both
    for r in (result, compared):
        im = r.images[index]
        body = (f"<p>{html(im.error)}</p>" if im.error else
                bars_html(im, r.classes, r.strategies, r.top_k, r.model.get("logit_bias"), order))
        columns.append(f'<div class="zs-model-col"><div class="zs-model-name">{html(r.model.get("label", ""))}</div>'
                       f'{body}</div>')
    return f'<div class="zs-compare">{"".join(columns)}</div>'


def _bar_row(label: str, p: float, colour: str, top: bool, extra: str = "") -> str:
    width = max(0.0, min(100.0, 100 * p))
    return (f'<div class="zs-bar{" zs-top1" if top else ""}{extra}" title="{html(label)}: {100 * p:.1f}%">'
            f'<span class="zs-label">{breakable(label)}</span>'
            f'<span class="zs-track"><span class="zs-fill" style="width:{width:.1f}%;background:{colour}">'
            f'</span></span>'
            f'<span class="zs-pct">{100 * p:.0f}%</span></div>')


def _fit(image: Image.Image, size: int) -> Image.Image:
    im = image.copy()
    im.thumbnail((size, size))
    return im


def sense_choices(senses: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Class name -> (label, synset) of each noun sense, for classes with more than one."""
    out = {}
    for s in senses:
        if len(s["senses"]) > 1:
            out[s["name"]] = [(f"{x['synset']}: {whole_words(x['gloss'], GLOSS_CHARACTERS)}", x["synset"])
                              for x in s["senses"]]
    return out


GLOSS_CHARACTERS = 160


def whole_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters between words (an ellipsis says it was cut)."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


AREA_HINTS = {"wordnet": "Tick {methods} to see what WordNet adds.",
              "methods": "Tick {methods} to see here why each of them decided as it did."}


def area_hint(area: str) -> str:
    """What to tick to fill an area of the page (its methods, from the registry)."""
    methods = [s.label for s in STRATEGIES.values() if s.panel_area == area and s.has_panel]
    if not methods:
        return ""
    listed = ", ".join(methods[:-1]) + f" or {methods[-1]}" if len(methods) > 1 else methods[0]
    return f'<div class="zs-caption">{html(AREA_HINTS[area].format(methods=listed))}</div>'


def strategy_panels(result: ClassificationResult, image: ImageResult, area: str,
                    thumbnails: dict[str, str] | None = None) -> str:
    """The panels the image's strategies show in one area of the page, each asked through its
    ``panel`` hook, as one Markdown document for the page's Markdown component (the browser
    renders it): each panel's HTML blocks and Markdown stand apart by blank lines, so that
    CommonMark keeps the HTML as it is and renders the Markdown between."""
    context = PanelContext(result, image, thumbnails or {})
    sections = []
    for sid, r in image.strategies.items():
        strategy = STRATEGIES.get(sid)
        if strategy is None or strategy.panel_area != area:
            continue
        panel = strategy.panel(r, context)
        if panel is None:
            continue
        # A class names the strategy (the page's sanitiser drops data- attributes).
        sections.append(f'<section class="zs-panel zs-panel-{html(sid)}">\n<h3>{html(panel.title)}</h3>\n'
                        f'<div class="zs-panel-top">top-1: <strong>{html(r.top1.class_name)}</strong> '
                        f'({100 * r.top1.prob:.1f}%)</div>\n\n{panel.markdown}\n\n{panel.html}\n\n</section>')
    if not sections:
        return area_hint(area)
    return '<div class="zs-panels">\n\n' + "\n\n".join(sections) + "\n\n</div>"


@dataclass
class ImagePanels:
    """Everything the page shows for one selected image."""

    title: str
    bars: str                                   # HTML: a card of bars per strategy
    verdict: str
    consistency: str
    views: list[tuple[Image.Image, str]]
    wordnet: str                                # HTML: the panels of the WordNet area
    methods: str                                # HTML: every other method's panel
    warnings: list[str] = field(default_factory=list)

    @property
    def views_html(self) -> str:
        return views_html(self.views)


def image_panels(result: ClassificationResult, index: int, image: Image.Image | None,
                 compared: ClassificationResult | None = None, thumbnails: dict[str, str] | None = None,
                 ) -> ImagePanels:
    """Panels for ``result.images[index]``; ``image`` is its decoded picture (for the thumbnails);
    ``compared``, the same request on a second model, gets a column of bars beside the first."""
    im = result.images[index]
    title = f"### {md(im.source)}" + (f" ({im.width}×{im.height})" if im.width else "")
    if im.error:
        return ImagePanels(title, "", "", f"**This image could not be used:** {md(im.error)}", [], "", "",
                           list(im.warnings))
    check = im.analyses.get("consistency")
    return ImagePanels(
        title=title,
        bars=(compared_bars_html(result, compared, index) if compared is not None else
              bars_html(im, result.classes, result.strategies, result.top_k, result.model.get("logit_bias"))),
        verdict=verdict_html(check),
        consistency=consistency_markdown(check),
        views=view_thumbnails(image, check),
        wordnet=strategy_panels(result, im, "wordnet", thumbnails),
        methods=strategy_panels(result, im, "methods", thumbnails) + found_html(result.sus, thumbnails or {}),
        warnings=list(im.warnings),
    )


def grid_place(row: int, column: int, grid: int) -> str:
    """Where a cell of a grid x grid map lies, in words ("top left", "centre", "bottom")."""
    def third(k: int) -> int:
        return min(2, 3 * k // max(1, grid))
    vertical, horizontal = ("top", "middle", "bottom")[third(row)], ("left", "centre", "right")[third(column)]
    if vertical == "middle":
        return "centre" if horizontal == "centre" else f"middle {horizontal}"
    return vertical if horizontal == "centre" else f"{vertical} {horizontal}"


def occlusion_html(image: Image.Image, found: Any) -> str:
    """The occlusion map over the image: red where covering the image lowers the class's
    probability, blue where it raises it, with the scale and what it cost."""
    fig = Figure(figsize=(6.4, 5.2), dpi=plots.DPI, layout="constrained")
    ax = fig.subplots()
    ax.imshow(image.convert("RGB"))
    points = [[100 * x for x in row] for row in found.drops]       # the caption's unit: percentage points
    limit = max(1e-4, max(abs(x) for row in points for x in row))
    shown = ax.imshow(points, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.55, interpolation="bilinear",
                      extent=(0, image.width, image.height, 0))
    bar = fig.colorbar(shown, ax=ax, shrink=0.85)
    bar.set_label(f"drop in p({found.class_name[:40]}) when covered (percentage points)", fontsize=11)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", pil_kwargs={"quality": 85})
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    worst = max(((x, r, c) for r, row in enumerate(found.drops) for c, x in enumerate(row)))
    alt = (f"Occlusion map for {found.class_name}: covering the {grid_place(worst[1], worst[2], found.grid)} "
           f"of the image lowers its probability most, by {100 * worst[0]:.1f} percentage points.")
    return (f'<figure class="zs-occlusion"><img src="{url}" alt="{html(alt)}">'
            f'<figcaption>Where the model looks for <b>{html(found.class_name)}</b> ("a photo of a {{}}.", '
            f'{100 * found.probability:.1f}% on the whole image): a grey patch slid over a {found.grid} x '
            f'{found.grid} grid; red where covering lowers the probability (at most {100 * worst[0]:.1f} points), '
            f'blue where it raises it. {found.passes} forward passes.</figcaption></figure>')
