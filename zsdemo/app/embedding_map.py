"""The embedding map behind the page and ``/embedding_map``: the map of the page's last run or of an
API request (``run/embedding_map.py`` builds both), what ZeroGPU books for it, and the interactive
plotly figure with its words for a screen reader (the page's area: ``map_area.py``)."""

from __future__ import annotations

import html as html_lib
from typing import Any, Sequence

import gradio as gr

from ..core import arguments
from ..core.errors import InputError
from ..core.files import display_name
from ..core.limits import LIMITS
from ..core.markup import html
from ..core.progress import Progress, StopSignal, track
from ..engine import models
from ..run import embedding_map as maps
from ..run import inputs as request_inputs
from ..run import plots
from ..run.pipeline import TEXT_CACHE, estimate
from .choices import load_served, model_choice
from .inspecting import run_model
from .state import AppConfig, Run


def map_of_run(config: AppConfig, state: Run | None, separate: object, progress: Progress | None = None,
               stop: StopSignal | None = None) -> maps.EmbeddingMap:
    """The map of the page's last run: its images, classes, strategies, templates, chosen senses,
    options and model (the text features are in the cache its run filled)."""
    if state is None or not state.result.classes:
        raise InputError("Nothing to map yet: press Classify first.")
    request, skipped = _run_request(state)
    files = config.uploads.check_all([p for p, im in zip(state.paths, state.result.images) if im.ok])
    with track(progress, stop) as tracker:
        tracker.stage(0.0, 0.0, "finding the run's model")
        loaded = run_model(config, state.result.model)
        found = maps.embedding_map(loaded, files, request, TEXT_CACHE, [display_name(f) for f in files],
                                   arguments.flag(separate, "separate_modalities"), skipped=skipped)
    if state.compared is not None:
        found.notes.append(f"The map is of {state.result.model.get('label', 'the first model')} only: two models' "
                           "spaces have different axes, so their maps cannot share one picture. Choose the other "
                           "model and draw again to see its map.")
    return found


def _run_request(state: Run) -> tuple[Any, list[str]]:
    """A run's request again, for its map: the same classes, strategies, templates, the senses
    the visitor chose and the methods' options."""
    result = state.result
    forced = {s["name"]: s["chosen"]["synset"] for s in result.senses if s.get("rule") == "user" and s.get("chosen")}
    return maps.prepare_map(list(result.classes), list(result.strategies),
                            list(result.templates.get("custom") or []) or None, senses=forced or None,
                            options=result.options, served=True)


def run_map_seconds(config: AppConfig, state: Run | None, rates: Any) -> float:
    """What ZeroGPU books for the map of a run: its images and the prompts not cached, at ``rates``."""
    if state is None:
        return 0.0
    return estimate(load_served(config), len(state.paths), _run_request(state)[0], rates=rates).total


def _prepared(config: AppConfig, paths: object, classes: object, strategies: object, templates: object,
              senses: object, **options: Any) -> tuple[list[str], Any, list[str]]:
    """``/embedding_map``'s files and request, every raw argument checked as Classify's are."""
    items = [p for p in arguments.items(paths, "images", LIMITS.images) if p] if paths not in (None, "") else []
    files = config.uploads.check_all(items)
    given = request_inputs.checked(dict(classes=classes, strategies=strategies, templates=templates, senses=senses),
                                   "map")
    request_inputs.check_names(options, "api")
    request, skipped = maps.prepare_map(given["classes"] or "", given["strategies"], given["templates"],
                                        senses=given["senses"], served=True, where="api", **options)
    return files, request, skipped


def map_request(config: AppConfig, paths: Sequence[object] | None, classes: object, strategies: object,
                templates: object = None, model: object = None, senses: object = None,
                separate_modalities: object = False, progress: Progress | None = None,
                stop: StopSignal | None = None, **options: Any) -> maps.EmbeddingMap:
    """``/embedding_map``: the map of the request on its model."""
    separate = request_inputs.checked({"separate_modalities": separate_modalities}, "map")["separate_modalities"]
    files, request, skipped = _prepared(config, paths, classes, strategies, templates, senses, **options)
    name, pretrained = model_choice(config, model)
    with track(progress, stop) as tracker:
        tracker.stage(0.0, 0.0, "loading the model")
        loaded = load_served(config) if (name, pretrained) == (config.model, config.pretrained) else \
            models.get_model(name, pretrained, config.device)
        return maps.embedding_map(loaded, files, request, TEXT_CACHE, [display_name(f) for f in files],
                                  bool(separate), skipped=skipped)


def map_seconds(config: AppConfig, rates: Any, paths: Sequence[object] | None = None, classes: object = "",
                strategies: object = None, templates: object = None, senses: object = None,
                model: object = None, separate_modalities: object = False, **options: Any) -> float:
    """What ZeroGPU books for ``map_request``: its images and the prompts not cached yet, at
    ``rates`` (the arguments checked before any GPU is booked)."""
    files, request, _ = _prepared(config, paths, classes, strategies, templates, senses, **options)
    return estimate(load_served(config), len(files), request, rates=rates).total


def map_index(state: Run | None, selected: object) -> int | None:
    """The image inspected, as the map counts its images (those the run could read)."""
    if state is None or not isinstance(selected, int) or isinstance(selected, bool):
        return None
    images = state.result.images
    if not 0 <= selected < len(images) or not images[selected].ok:
        return None
    return sum(im.ok for im in images[:selected])


def read_drawn(drawn: object) -> maps.EmbeddingMap | None:
    """The map the page keeps (its own state, server-side), or None."""
    if not drawn:
        return None
    try:
        return maps.EmbeddingMap.from_dict(drawn)           # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError("The embedding map could not be read back: draw it again.") from None


def map_view(drawn: object, selected: object, present: object, run_state: object = None) -> tuple:
    """The plot and its words, from the map the page keeps (no model work): the image inspected
    highlighted, larger type in presentation mode."""
    found = read_drawn(drawn)
    if found is None:
        return gr.update(value=None, visible=False), ""
    index = map_index(Run.from_state(run_state), selected) if run_state else None  # type: ignore[arg-type]
    return gr.update(value=figure(found, index, bool(present)), visible=True), words_html(found)


# --- the page's figure ---------------------------------------------------------------------------

def figure(found: maps.EmbeddingMap, highlighted: int | None = None, present: bool = False) -> Any:
    """The interactive map (plotly): one trace per class and kind, a colour per class, a marker
    per kind, hover text as text (what a visitor typed is escaped: plotly reads a few HTML tags
    in hover labels)."""
    import plotly.graph_objects as go

    size = 20 if present else 14
    fig = go.Figure()
    classes = plots.map_classes(found.points)
    ensembles = plots.map_ensembles(found.points)
    for kind in ("prompt", "wordnet", "name", "ensemble"):
        for k, name in enumerate(classes):
            for strategy, symbol in _symbols(kind, ensembles):
                pts = [p for p in found.points if p.kind == kind and p.class_name == name
                       and (strategy is None or p.strategy == strategy)]
                if pts:
                    fig.add_trace(_trace(go, pts, kind, plots.colour(k), symbol, name, k, kind == "name"))
    images = [p for p in found.points if p.kind == "image"]
    if images:
        sizes = [plots.MAP_KINDS["image"][2] * (1.5 if j == highlighted else 1) for j in range(len(images))]
        fig.add_trace(go.Scatter(
            x=[p.x for p in images], y=[p.y for p in images], mode="markers+text" if len(images) <= 8 else "markers",
            text=[_safe(p.text[:40]) for p in images], textposition="top right",
            hovertext=[_safe(f"image: {p.text}") for p in images], hoverinfo="text", name="images",
            marker=dict(symbol="star", size=sizes, color="white", line=dict(color=plots.EDGE, width=[
                3 if j == highlighted else 1.5 for j in range(len(images))]))))
    for kind, words in plots.MAP_WORDS.items():           # what each marker means, once
        if kind not in ("ensemble", "image") and any(p.kind == kind for p in found.points):
            fig.add_trace(_key(go, plots.MAP_KINDS[kind][1], words))
    labels = {p.strategy: p.text.split(":")[0] for p in found.points if p.kind == "ensemble"}
    for strategy, k in ensembles.items():
        fig.add_trace(_key(go, plots.ENSEMBLE_MARKERS[k][1], plots.ensemble_words(labels[strategy])))
    fig.update_layout(
        height=720 if present else 640, margin=dict(l=70, r=20, t=20, b=40), template="plotly_white",
        font=dict(size=size), legend=dict(font=dict(size=size), itemsizing="constant", orientation="h",
                                          yanchor="top", y=-0.16, x=0),
        xaxis=dict(title=dict(text=found.axis_label(0), font=dict(size=size))),
        yaxis=dict(title=dict(text=found.axis_label(1), font=dict(size=size))),
        hoverlabel=dict(font=dict(size=size)), uirevision="map")
    return fig


def _trace(go: Any, pts: Sequence[maps.MapPoint], kind: str, colour: str, symbol: str, name: str, k: int,
           legend: bool) -> Any:
    _, _, size, alpha = plots.MAP_KINDS[kind]
    return go.Scatter(
        x=[p.x for p in pts], y=[p.y for p in pts], mode="markers", name=_safe(name[:40]),
        legendgroup=f"class-{k}", showlegend=legend and k < 16,
        hovertext=[_safe(_hover(p)) for p in pts], hoverinfo="text",
        marker=dict(symbol=symbol, size=size, color=colour, opacity=alpha,
                    line=dict(color=plots.EDGE, width=0 if kind == "prompt" else 1.2)))


def _key(go: Any, symbol: str, words: str) -> Any:
    """A legend entry with no point: what a marker means."""
    return go.Scatter(x=[None], y=[None], mode="markers", name=_safe(words), legendgroup="kinds",
                      marker=dict(symbol=symbol, size=12, color="white", line=dict(color=plots.EDGE, width=1.5)))


def _symbols(kind: str, ensembles: dict[str, int]) -> list[tuple[str | None, str]]:
    if kind != "ensemble":
        return [(None, plots.MAP_KINDS[kind][1])]
    return [(s, plots.ENSEMBLE_MARKERS[k][1]) for s, k in ensembles.items()]


def _hover(p: maps.MapPoint) -> str:
    if p.kind == "prompt":
        return f"{p.class_name}: “{p.text}” ({p.strategy})"
    if p.kind == "wordnet":
        return f"{p.class_name}: WordNet {p.relation} “{p.text}”, encoded as “{p.prompt}” ({p.strategy})"
    if p.kind == "ensemble":
        return f"{p.class_name}: {p.text}"
    return f"{p.class_name}: the name alone"


def _safe(text: str) -> str:
    """Text for plotly's labels: its few HTML tags (<b>, <a href>, <br>) become text."""
    return html_lib.escape(text, quote=False)


def words_html(found: maps.EmbeddingMap) -> str:
    """The map in words (what a screen reader reads, and what the figure cannot say): the axes,
    each image's nearest ensemble and single prompt, and the notes."""
    lines = maps.summary_lines(found)
    items = "".join(f"<li>{html(line)}</li>" for line in lines[1:])
    notes = "".join(f"<li>{html(n)}</li>" for n in found.notes)
    return (f'<div class="zs-map-words"><p>{html(lines[0])}</p>'
            + (f"<ul>{items}</ul>" if items else "")
            + (f'<p class="zs-map-notes-title">Notes</p><ul class="zs-map-notes">{notes}</ul>' if notes else "")
            + "</div>")
