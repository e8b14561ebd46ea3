"""A prepared request + images -> one result per image: the one dispatch of every strategy.

The single entry point that the CLI, the app and the benchmarks call; the evaluation scores its
batches with the same ``score_batch``. Work is shared across strategies: images are decoded and
embedded once, class vectors come from the text cache, and each strategy reads what it needs
from one ``Batch`` (``strategies/base.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from ..engine.consistency import analyse_features, embed_with_views
from ..core.constants import DEFAULT_TOP_K
from ..core.errors import ImageError, InputError
from ..engine.images import ImageSource, LoadedImage, describe_source, load_image
from ..core.limits import LIMITS
from ..engine.models import LoadedModel
from ..core.progress import Progress, count, duration, stage, track
from .request import Request, prepare_request  # noqa: F401 (the pipeline's input, re-exported)
from ..engine.results import ClassificationResult, ImageResult, Prediction, StrategyResult
from ..strategies import STRATEGIES, Batch, Rates, Run, Scores, Strategy, options_dict
from ..data.pool import find_support
from ..data.support import SupportFeatures, digests_of, embed_support
from ..engine.feature_store import FeatureStore
from ..prompts.templates import CLIP80, NAME_ONLY, PLACEHOLDER, fill
from ..engine.text import TextFeatureCache, encode_prompts, prompt_token_count
from ..engine.zero_shot_classifier import class_vectors
from ..wordnet.senses import ClassSense, WordNetUnavailable, bare_sense, class_senses, is_loaded
from ..wordnet.sparse import Sparsity, sparsify

IMAGE_BATCH_SIZE = 32

# One process-wide cache: every request and every user shares the text features.
TEXT_CACHE = TextFeatureCache()

# Speeds assumed before a model has run here (prompts and images per second of a ViT-B/32 on
# 2 CPU cores): they only shape the progress bar's stages; no time is promised from them.
ASSUMED_RATES = Rates(prompts_per_second=150.0, images_per_second=15.0)
WORDNET_LOAD_SECONDS = 8.0   # NLTK reading WordNet 3.0 on 2 CPU cores, once per process


def context_warnings(loaded: LoadedModel, request: Request) -> list[str]:
    """Warn about class names whose prompts do not fit the text context and get truncated."""
    templates = {t for s in request.chosen for t in s.shown_templates(request) or ()}
    longest = max(templates, key=len) if templates else PLACEHOLDER
    notes = []
    for name in request.classnames:
        n = prompt_token_count(loaded, fill(longest, name))
        if n is not None and n > loaded.context_length:
            notes.append(
                f"Class name {name[:60]!r}{'…' if len(name) > 60 else ''} is too long for the model's "
                f"text context ({loaded.context_length} tokens): its prompts were truncated."
            )
    return notes


def embed_images(loaded: LoadedModel, images: Sequence[LoadedImage]) -> torch.Tensor:
    """Unit image features [N, D] (float32, on the model's device)."""
    if not images:
        return torch.empty(0)
    return loaded.encode_images(torch.stack([loaded.preprocess(im.image) for im in images]), IMAGE_BATCH_SIZE)


def strategy_result(
    strategy: str, logits: torch.Tensor, classnames: Sequence[str], top_k: int, label: str | None = None,
) -> StrategyResult:
    """Probabilities (softmax over the user's classes) and top-k from one image's logits [C]."""
    logits = logits.detach().float().cpu()
    probs = logits.softmax(dim=-1)
    scored = int(torch.isfinite(logits).sum())  # -inf marks a class the strategy did not score
    top = torch.topk(probs, k=min(top_k, len(classnames), scored))
    return StrategyResult(
        strategy=strategy,
        label=label or STRATEGIES[strategy].label,
        probs=probs.tolist(),
        logits=[float(x) if torch.isfinite(x) else None for x in logits],
        top_k=[
            Prediction(int(i), classnames[int(i)], float(p), float(logits[int(i)]))
            for p, i in zip(top.values, top.indices)
        ],
    )


def load_images(sources: Sequence[ImageSource], names: Sequence[str | None] | None = None,
                ) -> list[LoadedImage | ImageResult]:
    """Decode each source; a failure becomes an ImageResult carrying the error, never an exception."""
    names = list(names) if names is not None else [None] * len(sources)
    out: list[LoadedImage | ImageResult] = []
    for src, name in zip(sources, names):
        try:
            out.append(load_image(src, name=name))
        except ImageError as e:
            out.append(ImageResult(source=describe_source(src, name), error=str(e)))
    return out


def classify(
    loaded: LoadedModel,
    images: Sequence[ImageSource],
    classnames: str | Sequence[str],
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    cache: TextFeatureCache | None = TEXT_CACHE,
    names: Sequence[str | None] | None = None,
    progress: Progress | None = None,
    **options: object,
) -> ClassificationResult:
    """Classify a batch of images against the class names with every selected strategy.

    ``options`` are the other fields of ``prepare_request`` (consistency, views, rerank_all,
    senses, tpt). Bad class names, templates or strategy ids raise InputError; a bad image does not
    stop the batch: its ImageResult carries the error.
    """
    request = prepare_request(classnames, strategies, templates, top_k, **options)  # type: ignore[arg-type]
    return classify_request(loaded, images, request, cache, names, progress)


def chosen_options(request: Request) -> dict[str, dict[str, object]]:
    """The settings of the request's methods that have options, as JSON data, by method."""
    keys = {s.options_key for s in request.chosen if s.options is not None}
    return options_dict({k: v for k, v in request.options.items() if k in keys})


@dataclass
class Opened:
    """A run as ``open_run`` leaves it, and what opening it found about WordNet."""

    run: Run
    sparsity: Sparsity | None = None     # the sparse hierarchy the senses were read on
    missing: str | None = None           # why WordNet could not be read (the hierarchy then uses bare names)


def open_run(loaded: LoadedModel, request: Request, cache: TextFeatureCache | None, scored: Sequence[object] = (),
             *, store: FeatureStore | None = None, support_used: bool = False, wordnet_limit: int | None = None,
             spans: Mapping[str, tuple[float, float]] | None = None, senses_only: bool = False) -> Opened:
    """The one place a run is opened, for classify and evaluate alike: the classes' WordNet senses
    on the sparse hierarchy (or why WordNet is missing), the support set's features, and each
    strategy's once-per-request work (CoOp learns its context here).

    ``scored``: every image the run will score, as listed (paths, bytes, or decoded images): none
    of them is ever a support example, whether it decoded or not (the leakage check compares
    contents, not names). ``support_used``: embed the support set even with no few-shot strategy
    (the shots curve). ``spans``: the progress bar's share of each stage ("wordnet", "support",
    and a strategy's id for its own work). ``senses_only``: no image will be scored (none
    decoded), so the support set and the strategies' own work are skipped."""
    spans = spans or {}
    senses: list[ClassSense] = []
    sparsity, missing = None, None
    if request.needs_wordnet:
        stage(*spans.get("wordnet", (0.0, 0.0)), "looking up the classes in WordNet" if is_loaded()
              else "loading WordNet (once per server)")
        senses, sparsity, missing = request_senses(loaded, request, wordnet_limit)
    run = Run(loaded, request, cache, senses)
    if senses_only:
        return Opened(run, sparsity, missing)
    wanted = support_used or any(s.needs_support for s in request.chosen)
    if (request.support is not None or request.pool is not None) and wanted:
        span = spans.get("support", (0.0, 0.0))
        stage(span[0], span[0], "reading the scored images' contents (leakage check)")
        exclude = {im.digest for im in scored if isinstance(im, LoadedImage) and im.digest}
        exclude |= digests_of([im for im in scored if not isinstance(im, LoadedImage)])
        if request.support is not None:
            stage(*span, "embedding the support set", len(request.support.items), "image")
            run.support = embed_support(loaded, request.support, store, exclude)
        else:
            stage(*span, "finding each class's examples in your photos (SuS)", len(request.pool.items), "image")
            run.support, run.sus = find_support(loaded, request.pool, request.classnames,
                                                sus_text(loaded, request, cache), request.sus_k, store, exclude)
    for strategy in request.chosen:
        strategy.prepare(run, spans.get(strategy.id))
    return Opened(run, sparsity, missing)


def sus_text(loaded: LoadedModel, request: Request, cache: TextFeatureCache | None) -> torch.Tensor:
    """The text vector SuS ranks the pool by, per class [C, D]: the mean of the class's own CuPL
    sentences when the request gives descriptors for it, else its CLIP-80 ensemble (SuS-X's two
    prompting strategies)."""
    vectors = class_vectors(loaded, request.classnames, CLIP80, cache).clone()
    for c, name in enumerate(request.classnames):
        sentences = request.descriptors.of(name)
        if sentences:
            vectors[c] = torch.nn.functional.normalize(encode_prompts(loaded, list(sentences), cache).mean(0), dim=0)
    return vectors


def reopen(run: Run, request: Request, support: SupportFeatures, strategies: Sequence[Strategy]) -> Run:
    """An opened run again, with ``request``'s settings and other support features (the shots
    curve's draws: the senses and the text features stay), ``strategies`` prepared on it."""
    fitted = Run(run.loaded, request, run.cache, run.senses, support)
    for strategy in strategies:
        strategy.prepare(fitted)
    return fitted


def request_senses(loaded: LoadedModel, request: Request, limit: int | None = None,
                   ) -> tuple[list[ClassSense], Sparsity | None, str | None]:
    """Senses of every class on the request's sparse WordNet hierarchy, with what it kept; or bare
    names and the reason when WordNet is missing. ``limit``: new prompts its node scores may take."""
    try:
        senses = class_senses(request.classnames, request.senses)
    except WordNetUnavailable as e:
        return [bare_sense(n) for n in request.classnames], None, str(e)
    keep = min((s.sparse_share(request) for s in request.chosen if s.needs_wordnet), default=1.0)
    sparse, sparsity = sparsify(loaded, senses, keep, limit=limit)
    return sparse, sparsity, None


@dataclass
class Estimate:
    """How much model work a request needs, and (once the model's speed is known) how long."""

    # stage -> seconds: "wordnet", "images", "prompts", and a strategy's own work (under its id)
    seconds: dict[str, float]
    images: int                        # images and views to embed
    prompts: int                       # prompts to encode (not cached)
    known: bool                        # the model's speed was measured here (else assumed rates)
    why: list[str]                     # the work, in words

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        """'about 2 min: 80,000 prompts to encode (...)', or only the work when the speed is unknown."""
        work = "; ".join(self.why) or "little work"
        return f"{duration(self.total)}: {work}" if self.known else work


def _set_label(templates: tuple[str, ...], request: Request) -> str:
    """The name of a template set: that of the template strategy made of it."""
    return next((s.label for s in STRATEGIES.values() if s.shown_templates(request) == templates),
                f"{len(templates)} templates")


def estimate(loaded: LoadedModel, n_images: int, request: Request,
             cache: TextFeatureCache | None = TEXT_CACHE, rates: Rates | None = None) -> Estimate:
    """The model work of ``classify_request``: images (and views) to embed, prompts not in the
    cache, and each strategy's own work (TPT's passes). Hierarchy prompts (parents, children) are
    left out: they are few. ``rates``: the speed to assume (another device's), instead of this
    model's measured speed."""
    sets: dict[tuple[str, ...], str] = {}
    for s in request.chosen:
        for templates in s.classifiers(request):
            sets.setdefault(templates, _set_label(templates, request))
    if request.needs_consistency:
        sets.setdefault(NAME_ONLY, STRATEGIES["name"].label)
        sets.setdefault(CLIP80, "the consistency check's 80 templates")
    prompts = list(dict.fromkeys(fill(t, c) for templates in sets for c in request.classnames for t in templates))
    cached = cache.count_cached(loaded.identity, prompts) if cache is not None else 0
    todo = len(prompts) - cached
    views = len(request.views) if request.needs_consistency else 0
    measured = rates or Rates(loaded.speed.rate("prompt"), loaded.speed.rate("image"))  # type: ignore[arg-type]
    known = measured.prompts_per_second is not None and measured.images_per_second is not None
    rates = Rates(measured.prompts_per_second or ASSUMED_RATES.prompts_per_second,
                  measured.images_per_second or ASSUMED_RATES.images_per_second)
    why = []
    # In the order the work happens (the progress bar's stages): what ``open_run`` does, then the
    # images, the prompts and each strategy's scoring.
    seconds = {"wordnet": WORDNET_LOAD_SECONDS if request.needs_wordnet and not is_loaded() else 0.0}
    if request.support is not None and any(s.needs_support for s in request.chosen):
        seconds["support"] = len(request.support.items) / rates.images_per_second
        why.append(f"{count(len(request.support.items), 'support image')} to embed (cached afterwards)")
    own = {s.id: s.cost(request, n_images, rates) for s in request.chosen}
    seconds.update({sid: cost[0] for sid, cost in own.items() if cost is not None and STRATEGIES[sid].prepares})
    seconds["images"] = n_images * (1 + views) / rates.images_per_second
    seconds["prompts"] = todo / rates.prompts_per_second
    if seconds["wordnet"]:
        why.append("loading WordNet (once per server)")
    if views:
        why.append(f"{count(n_images, 'image')} and {count(n_images * views, 'view')} to embed")
    if todo:
        how = " + ".join(f"{len(t)} {'template' if len(t) == 1 else 'templates'} ({label})"
                         for t, label in sets.items())
        why.append(f"{todo:,} prompts to encode ({count(len(request.classnames), 'class', 'classes')} x {how}"
                   + (f"; {cached:,} already cached)" if cached else ")"))
    for sid, cost in own.items():
        if cost is not None:
            seconds[sid], words = cost
            why.append(words)
    return Estimate(seconds, n_images * (1 + views), todo, known, why)


def classify_request(
    loaded: LoadedModel,
    images: Sequence[ImageSource],
    request: Request,
    cache: TextFeatureCache | None = TEXT_CACHE,
    names: Sequence[str | None] | None = None,
    progress: Progress | None = None,
    work: Estimate | None = None,
) -> ClassificationResult:
    """``classify`` for a request validated beforehand (callers that check input before loading).
    ``work``: the request's ``estimate``, when the caller made it already (it shapes the progress
    bar's stages)."""
    if not images:
        raise InputError("No image given: add at least one image.")
    if len(images) > LIMITS.images:
        raise InputError(f"{len(images)} images given; at most {LIMITS.images} are allowed per request. "
                         "Send them in smaller groups (or evaluate a labelled folder with the CLI).")
    for s in request.chosen:
        s.check(request, len(images))
    work = work or estimate(loaded, len(images), request, cache)
    with track(progress) if progress is not None else contextlib.nullcontext():
        return _classify(loaded, images, request, cache, names, work)


def score_batch(run: Run, features: torch.Tensor, view_features: torch.Tensor | None,
                images: Sequence[object], strategies: Sequence[Strategy],
                spans: dict[str, tuple[float, float]] | None = None) -> tuple[Batch, dict[str, Scores]]:
    """Every strategy's scores for a batch of images: the one dispatch of classify and evaluate.

    The class vectors the strategies read are made first, in the strategies' order (a prompt's
    float32 features depend in their last bits on the batch it was encoded in, so a fixed order
    keeps results reproducible), then the consistency check when any strategy or the request
    needs it, then each strategy's scores. ``spans``: the progress bar's share of a strategy that
    reports its own steps (TPT)."""
    request = run.request
    batch = Batch(run, features, view_features, images=images)
    for s in strategies:
        for templates in s.classifiers(request):
            batch.logits(templates)
    if view_features is not None:
        batch.logits(NAME_ONLY)
        batch.checks = analyse_features(run.loaded, features, view_features, request.classnames, run.cache,
                                        request.views)
    scores = {}
    for s in strategies:
        batch.span = (spans or {}).get(s.id)
        scores[s.id] = s.score(batch)
    batch.span = None
    return batch, scores


def _classify(loaded: LoadedModel, images: Sequence[ImageSource], request: Request,
              cache: TextFeatureCache | None, names: Sequence[str | None] | None,
              work: Estimate) -> ClassificationResult:
    # The progress bar's stages, in proportion to the work each one does.
    total = max(work.total, 1e-9)
    bounds, at = {}, 0.02
    for key, seconds in work.seconds.items():
        share = 0.96 * seconds / total
        bounds[key], at = (at, at + share), at + share
    stage(0.0, 0.02, "decoding images")
    warnings = list(request.warnings) + context_warnings(loaded, request)
    decoded = load_images(images, names)
    good = [d for d in decoded if isinstance(d, LoadedImage)]
    scored = [d if isinstance(d, LoadedImage) else source for d, source in zip(decoded, images)]
    opened = open_run(loaded, request, cache, scored, wordnet_limit=LIMITS.prompts, spans=bounds,
                      senses_only=not good)
    run, senses, sparsity = opened.run, opened.run.senses, opened.sparsity
    if opened.missing:
        warnings.append(opened.missing)
    strategies = request.chosen
    results: dict[int, ImageResult] = {}
    if good:
        if run.support is not None:
            warnings += run.support.warnings()
        if run.sus is not None:
            warnings += run.sus.notes
        # The model's lock is taken per batch of images or prompts and per TPT image, not for
        # the whole request: other users' requests get their turns in between.
        if request.needs_consistency:
            stage(*bounds["images"], "embedding the images and their views", work.images, "image")
            feats, view_feats = embed_with_views(loaded, [im.image for im in good], request.views)
        else:
            stage(*bounds["images"], "embedding images", work.images, "image")
            feats, view_feats = embed_images(loaded, good), None
        stage(*bounds["prompts"], "encoding prompts", work.prompts, "prompt")
        pixels = [im.image for im in good] if any(s.needs_pixels for s in strategies) else ()
        batch, scores = score_batch(run, feats, view_feats, pixels, strategies, bounds)
        for row, im in enumerate(good):
            per_strategy = {}
            for s in strategies:
                result = strategy_result(s.id, scores[s.id].logits[row], request.classnames, request.top_k)
                result.details = scores[s.id].details_of(row)
                per_strategy[s.id] = result
            analyses = {"consistency": batch.checks[row].details(request.classnames)} if batch.checks else {}
            results[id(im)] = ImageResult(
                source=im.source, width=im.width, height=im.height, warnings=list(im.warnings),
                strategies=per_strategy, analyses=analyses,
            )
        warnings += run.warnings
    return ClassificationResult(
        model=loaded.describe(),
        classes=list(request.classnames),
        strategies=list(request.strategies),
        templates={s.id: list(s.shown_templates(request)) for s in strategies
                   if s.shown_templates(request) is not None},
        top_k=request.top_k,
        images=[results[id(d)] if isinstance(d, LoadedImage) else d for d in decoded],
        warnings=warnings,
        senses=[c.to_dict() for c in senses],
        wordnet_nodes=sparsity.node_list() if sparsity else [],
        wordnet_sparsity=sparsity.summary() if sparsity else None,
        options=chosen_options(request),
        sus=run.sus.to_dict() if run.sus is not None else None,
    )
