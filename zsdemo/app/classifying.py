"""The Classify tab's backend and the ``/classify`` endpoint's: every raw argument checked, then
one run on one model or two (``run``); its cost before it starts (``run_seconds``, what ZeroGPU
books); what the page shows of it (summary, the model line, one image's panels)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from ..core import arguments
from ..core.errors import ImageError, InputError
from ..core.files import display_name
from ..core.limits import LIMITS
from ..core.markup import md
from ..core.progress import SLOW_SECONDS, StopSignal, count, track
from ..data.pool import MAX_POOL, Pool, open_pool
from ..data.support import SupportSet, open_support
from ..engine import models
from ..engine.images import load_image
from ..engine.results import ClassificationResult
from ..prompts.classnames import parse_classnames
from ..run import inputs as request_inputs
from ..run.pipeline import (
    DEFAULT_TOP_K,
    Progress,
    Rates,
    classify_request,
    estimate,
    prepare_request,
)
from ..run.request import Request
from ..strategies import STRATEGIES
from .choices import load_served, model_choice
from .found import SHOWN
from .panels import (
    ImagePanels,
    image_panels,
    model_notice,
    summary_html,
    thumbnail_url,
)
from .state import AppConfig, Run

SLOW_PROMPTS = 20_000       # a model whose speed is unknown: this many new prompts is announced as slow


def run(
    config: AppConfig,
    paths: Sequence[object],
    classes: str,
    strategies: Sequence[str] | str | None,
    templates: str | None = None,
    model: str | None = None,
    top_k: int | float | None = DEFAULT_TOP_K,
    views: Sequence[str] | str | None = None,
    consistency: bool = False,
    rerank_all: bool = False,
    senses: dict[str, str] | str | None = None,
    progress: Progress | None = None,
    stop: StopSignal | None = None,
    announce: Callable[[str], None] | None = None,
    low_confidence: str | None = None,
    descriptors: str | None = None,
    compare_model: str | None = None,
    support: object = None,
    sus_pool: object = None,
    sus_k: object = None,
    **options: object,
) -> Run:
    """Validate everything (fast, before a model loads), then classify every image.

    Every argument may come straight from a hostile API caller: each is checked for its type
    first, and ``paths`` (file paths or Gradio file records) must name files the server was sent.
    ``options`` are the methods' own, by their public names (``strategies.named_options``).
    ``progress`` hears each stage with the time left; setting ``stop`` ends the run at the
    model's next turn (``progress.Stopped``); ``announce`` is told beforehand when a run will be
    slow, and why.
    """
    with prepared(config, paths, classes, strategies, templates=templates, top_k=top_k, views=views,
                  consistency=consistency, rerank_all=rerank_all, senses=senses, low_confidence=low_confidence,
                  descriptors=descriptors, support=support, sus_pool=sus_pool, sus_k=sus_k,
                  **options) as (files, request):
        return _run(config, request, files, model, compare_model, progress, stop, announce)


@contextlib.contextmanager
def prepared(
    config: AppConfig, paths: Sequence[object], classes: str, strategies: Sequence[str] | str | None,
    templates: str | None = None, top_k: int | float | None = DEFAULT_TOP_K, views: Sequence[str] | str | None = None,
    consistency: bool = False, rerank_all: bool = False, senses: dict[str, str] | str | None = None,
    low_confidence: str | None = None, descriptors: str | None = None, support: object = None,
    sus_pool: object = None, sus_k: object = None, **options: object,
) -> Iterator[tuple[list[str], Request]]:
    """A run's files and request, every raw argument checked (``run``'s); the support set, if
    any, is open inside."""
    items = [p for p in arguments.items(paths, "images", LIMITS.images) if p]
    if not items:
        raise InputError("No image yet: upload, drop, paste or photograph at least one image, then run.")
    files = config.uploads.check_all(items)
    given = request_inputs.checked(dict(strategies=strategies, classes=classes, templates=templates,
                                        consistency=consistency, views=views, rerank_all=rerank_all, senses=senses,
                                        low_confidence=low_confidence, descriptors=descriptors), "classify")
    if not given["strategies"]:
        raise InputError("No strategy selected: tick at least one strategy.")
    request_inputs.check_names(options, "api")
    support_set = _open_support(config, support, classes)
    pool = open_pool_upload(config, sus_pool)
    try:
        yield files, prepare_request(given.pop("classes") or "", top_k=top_k, support=support_set, served=True,
                                     where="api", sus_pool=pool, sus_k=sus_k, **given, **options)
    finally:
        for opened in (support_set, pool):
            if opened is not None:
                opened.close()


def run_seconds(config: AppConfig, paths: Sequence[object], classes: str, strategies: Sequence[str] | str | None,
                rates: Rates, model: str | None = None, compare_model: str | None = None,
                **options: Any) -> float:
    """The model work of ``run`` with these arguments, in seconds at ``rates`` (how long ZeroGPU
    books a GPU for it). Checks the arguments as ``run`` does; loads no model but the served one."""
    chosen = _models_of(config, model, compare_model)
    with prepared(config, paths, classes, strategies, **options) as (files, request):
        return len(chosen) * estimate(load_served(config), len(files), request, rates=rates).total


def _models_of(config: AppConfig, model: object, compare_model: object) -> list[tuple[str, str | None]]:
    """The (model, pretrained) of a run, and of its second model when it compares two."""
    first = model_choice(config, model)
    compare = arguments.text(compare_model, "compare_model").strip() if compare_model is not None else ""
    second = model_choice(config, compare, "compare_model") if compare.lower() not in ("", "none") else None
    return [first] if second is None or second == first else [first, second]   # the same twice compares nothing


def _run(config: AppConfig, request: Request, files: list[str], model: object, compare_model: object,
         progress: Progress | None, stop: StopSignal | None, announce: Callable[[str], None] | None) -> Run:
    chosen = _models_of(config, model, compare_model)
    second = chosen[1] if len(chosen) == 2 else None
    with track(progress, stop) as tracker:
        if second is not None:
            models.check_fit_together(chosen, config.device)
        loading = all(models.REGISTRY.has(m, t, config.device) for m, t in chosen)
        tracker.stage(0.0, 0.0, "loading the model" + ("s" if second else "") if loading else
                      "loading the model (its first use on this server: this can take a minute)")
        loaded = [load_served(config) if (m, t) == (config.model, config.pretrained) else
                  models.get_model(m, t, config.device) for m, t in chosen]
        work = [estimate(m, len(files), request) for m in loaded]
        seconds = sum(w.total for w in work)
        if announce and all(w.known for w in work) and seconds >= SLOW_SECONDS:
            announce(f"This run will take {' + '.join(w.summary() for w in work)}.")
        elif announce and not all(w.known for w in work) and sum(w.prompts for w in work) >= SLOW_PROMPTS:
            announce(f"This run may take a while: {' + '.join(w.summary() for w in work)}.")
        names = [display_name(f) for f in files]
        results = []
        for k, (m, w) in enumerate(zip(loaded, work)):
            # Each model fills its share of one bar, in proportion to its work.
            lo = sum(x.total for x in work[:k]) / max(seconds, 1e-9)
            hi = sum(x.total for x in work[:k + 1]) / max(seconds, 1e-9)
            part = _part(progress, lo, hi, m.spec.display) if progress is not None and second else None
            results.append(classify_request(m, files, request, names=names, work=w, progress=part))
        return Run(results[0], files, results[1] if second else None, _pictures(request, results[0]))


MAX_THUMBNAILS = 48                    # support examples pictured per run (the page keeps them)


def _open_support(config: AppConfig, upload: object, classes: object) -> SupportSet | None:
    """The uploaded support zip, checked against the classes (its folder lives until the run ends)."""
    if upload is None or upload == "":
        return None
    path = config.uploads.check(upload, "the support set")
    names = parse_classnames(arguments.text(classes, "classes")).names
    return open_support(path, names, confine=True, max_images=LIMITS.eval_images, shown=display_name(path))


def open_pool_upload(config: AppConfig, upload: object) -> Pool | None:
    """An uploaded SuS pool (a zip of unlabeled photos), read within the served limits."""
    if upload is None or upload == "":
        return None
    path = config.uploads.check(upload, "the photos to find examples in")
    return open_pool(path, confine=True, max_images=min(MAX_POOL, LIMITS.eval_images), shown=display_name(path))


def _pictures(request: Request, result: ClassificationResult) -> dict[str, str]:
    """Small pictures of the support examples the strategies' panels show, and of what SuS found
    (the support set's and the pool's folders are gone after the run; the page keeps these)."""
    source = request.support if request.support is not None else request.pool
    if source is None:
        return {}
    wanted = {f for im in result.images for sid, r in im.strategies.items() if sid in STRATEGIES
              for f in STRATEGIES[sid].pictured(r)}
    found = [x["file"] for xs in (result.sus or {}).get("classes", {}).values() for x in xs[:SHOWN]]
    paths = {it.name: it.path for it in source.items}
    out = {}
    for name in [*dict.fromkeys(found), *sorted(wanted - set(found))][:MAX_THUMBNAILS]:
        try:
            out[name] = thumbnail_url(load_image(str(paths[name])).image)
        except (KeyError, ImageError):
            continue
    return out


def _part(report: Progress, lo: float, hi: float, label: str) -> Progress:
    return lambda f, message: report(lo + (hi - lo) * f, f"{label}: {message}")


def done_message(state: dict[str, Any], seconds: float) -> str:
    """The status line after a run: what was done, and in how long."""
    images = state["result"]["images"]
    failed = sum(1 for im in images if im.get("error"))
    text = f"Classified {count(len(images) - failed, 'image')} in {seconds:.1f} s."
    if failed:
        text += f" {count(failed, 'image')} could not be read: see the summary."
    return text


def check_uploads(config: AppConfig, items: Sequence[object]) -> tuple[list[str], list[str]]:
    """The uploaded files that are images, and a message for each one that is not (the page
    drops those at upload, instead of showing a blank tile until a run says why)."""
    kept, refused = [], []
    for item in arguments.items(items, "images", LIMITS.images * 4):
        path = item[0] if isinstance(item, (list, tuple)) and item else item
        try:
            path = config.uploads.check(path, image=True)
            load_image(path, name=display_name(path))       # the visitor's file name, not the server's path
            kept.append(path)
        except (ImageError, InputError) as e:
            refused.append(e.for_page())
    return kept, refused


def run_summary(state: Run, selected: int | None) -> str:
    """The summary table of a run: one column of top-1s per model when two were compared."""
    return summary_html(state.result, selected, state.compared)


def run_models(state: Run) -> str:
    """The line about the model (each model, when two were compared)."""
    if state.compared is None:
        return model_notice(state.result.model)
    return "\n\n".join([model_notice(state.result.model), model_notice(state.compared.model),
                         f"Two models side by side: the summary and the bars show both; the panels below "
                         f"(consistency, WordNet, TPT, the methods' reasons) are those of "
                         f"{md(state.result.model.get('label', 'the first model'))}."])


def panels(config: AppConfig, state: Run | None, index: int | None) -> ImagePanels | None:
    """The panels of one image of the last run (the first when ``index`` is out of range)."""
    if state is None or not state.result.images:
        return None
    index = index if isinstance(index, int) and 0 <= index < len(state.result.images) else 0
    image = None
    if state.result.images[index].ok and index < len(state.paths):
        try:
            # The state can come back from the browser (cached examples): its paths are checked
            # like a request's.
            image = load_image(config.uploads.check(state.paths[index], image=True)).image
        except (ImageError, InputError):
            image = None  # gone since the run, or not a file this server was sent: no thumbnails
    return image_panels(state.result, index, image, state.compared, state.thumbnails)
