"""Images + class names + strategy ids -> one result per image.

The single entry point that the CLI, the app and the benchmarks call. Work is shared across
strategies: images are decoded and embedded once, and class vectors come from the text cache.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Sequence

import torch

from . import classnames as C
from . import consistency as K
from . import hierarchy as H
from . import progress as PR
from . import strategies as S
from . import templates as T
from . import tpt as P
from . import wordnet as W
from .arguments import whole_number
from .constants import DEFAULT_TOP_K
from .errors import ImageError, InputError
from .images import ImageSource, LoadedImage, describe_source, load_image
from .limits import LIMITS
from .models import LoadedModel
from .results import ClassificationResult, ImageResult, Prediction, StrategyResult
from .text import TextFeatureCache, prompt_token_count
from .zero_shot_classifier import class_vectors

IMAGE_BATCH_SIZE = 32

# One process-wide cache: every request and every user shares the text features.
TEXT_CACHE = TextFeatureCache()

Progress = PR.Progress
no_progress = PR.no_progress
# Speeds assumed before a model has run here (prompts and images per second of a ViT-B/32 on
# 2 CPU cores): they only shape the progress bar's stages; no time is promised from them.
ASSUMED_RATES = {"prompt": 150.0, "image": 15.0}
WORDNET_LOAD_SECONDS = 8.0   # NLTK reading WordNet 3.0 on 2 CPU cores, once per process
# TPT per image: its views once through the image tower, then per step one forward and one
# backward pass of the text tower over every class (a backward costs about two forwards).
TPT_PASSES_PER_STEP = 3


@dataclass
class Request:
    """A validated request: what every strategy reads."""

    classnames: tuple[str, ...]
    strategies: tuple[str, ...]
    custom_templates: tuple[str, ...]
    top_k: int
    warnings: list[str] = field(default_factory=list)
    consistency: bool = False          # attach the consistency analysis to every image
    views: tuple[str, ...] = K.DEFAULT_VIEWS
    rerank_all: bool = False           # hierarchy: re-rank confident images too
    senses: dict[str, str] = field(default_factory=dict)   # class name -> chosen WordNet sense
    tpt: P.TPTSettings = field(default_factory=P.TPTSettings)

    @property
    def needs_consistency(self) -> bool:
        return self.consistency or any(s in H.VARIANTS for s in self.strategies)


def prepare_request(
    classnames: str | Sequence[str],
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    top_k: int | float | None = DEFAULT_TOP_K,
    consistency: bool = False,
    views: str | Sequence[str] | None = None,
    rerank_all: bool = False,
    senses: str | Sequence[str] | dict[str, str] | None = None,
    tpt: P.TPTSettings | dict[str, object] | None = None,
) -> Request:
    """Validate everything but the images; raise InputError with a message for the user.

    The one check of top-k for the CLI, the app and the API: a whole number (2.0 is 2; None is
    the default), at most the class limit; more than the classes given lists them all."""
    parsed = C.parse_classnames(classnames)
    custom = T.parse_templates(templates)
    ids = S.parse_strategies(strategies, has_custom_templates=bool(custom))
    top_k = whole_number(top_k, "top-k", 1, LIMITS.classes, DEFAULT_TOP_K)
    warnings = list(parsed.warnings)
    if custom and "custom" not in ids:
        warnings.append("Custom templates were given but the 'custom' strategy is not selected; they are unused.")
    if any(s in H.VARIANTS for s in ids) or senses:
        W.check_count(parsed.names)
    tpt_settings = tpt if isinstance(tpt, P.TPTSettings) else P.parse_settings(**(tpt or {}))  # type: ignore[arg-type]
    request = Request(parsed.names, ids, custom, min(top_k, len(parsed.names)), warnings,
                      consistency=bool(consistency), views=K.parse_views(views), rerank_all=bool(rerank_all),
                      tpt=tpt_settings)
    check_prompts(request)
    request.senses = _check_senses(W.parse_overrides(senses), parsed.names, request.warnings)
    return request


def request_templates(request: Request) -> set[str]:
    """Every template the request's class vectors are built from (one prompt per class each)."""
    templates = {t for s in request.strategies for t in S.strategy_templates(s, request.custom_templates)}
    for s in request.strategies:
        if s in H.VARIANTS:
            templates.update(S.strategy_templates(H.VARIANTS[s].fallback, ()))
        if s == "tpt":
            templates.add(P.TEMPLATE)
    if request.needs_consistency:   # S_T's 80 single-template classifiers and the name-only one
        templates.update(T.CLIP80, T.NAME_ONLY)
    return templates


def check_prompts(request: Request) -> None:
    """Classes x templates is what text encoding costs; refuse a request past the prompt limit."""
    templates = request_templates(request)
    count = len(request.classnames) * len(templates)
    if count > LIMITS.prompts:
        why = " (the consistency check and the hierarchy use CLIP-80)" if request.needs_consistency else ""
        raise InputError(
            f"{len(request.classnames):,} classes x {len(templates)} templates{why} = {count:,} text prompts; at most "
            f"{LIMITS.prompts:,} are allowed per request. Use fewer classes or a smaller template set "
            "(for example CLIP-7 instead of CLIP-80, or no consistency check).")


def _check_senses(chosen: dict[str, str], classnames: Sequence[str], warnings: list[str]) -> dict[str, str]:
    if not chosen:
        return {}
    try:
        checked = W.check_overrides(chosen, classnames)
        warnings.extend(W.foreign_senses(checked))
        return checked
    except W.WordNetUnavailable as e:
        raise InputError(str(e)) from None


def context_warnings(loaded: LoadedModel, request: Request) -> list[str]:
    """Warn about class names whose prompts do not fit the text context and get truncated."""
    templates = {t for s in request.strategies for t in S.strategy_templates(s, request.custom_templates)}
    longest = max(templates, key=len) if templates else T.PLACEHOLDER
    notes = []
    for name in request.classnames:
        n = prompt_token_count(loaded, T.fill(longest, name))
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
        label=label or S.STRATEGIES[strategy].label,
        probs=probs.tolist(),
        logits=[float(x) if torch.isfinite(x) else None for x in logits],
        top_k=[
            Prediction(int(i), classnames[int(i)], float(p), float(logits[int(i)]))
            for p, i in zip(top.values, top.indices)
        ],
    )


def template_logits(
    loaded: LoadedModel, image_features: torch.Tensor, classnames: Sequence[str],
    templates: Sequence[str], cache: TextFeatureCache | None,
) -> torch.Tensor:
    """Logits [N, C] = logit_scale * cos(image, class vector) (SPEC §1)."""
    weights = class_vectors(loaded, classnames, templates, cache).to(image_features.device)
    return loaded.logit_scale * image_features @ weights.T


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


def request_senses(request: Request) -> tuple[list[W.ClassSense], str | None]:
    """Senses of every class, or bare names and the reason when WordNet is missing."""
    try:
        return H.class_senses(request.classnames, request.senses), None
    except W.WordNetUnavailable as e:
        return [H.bare_sense(n) for n in request.classnames], str(e)


def hierarchy_result(
    loaded: LoadedModel,
    strategy: str,
    image_feature: torch.Tensor,
    name_logits: torch.Tensor,
    fallback_logits: torch.Tensor,
    check: K.Consistency,
    senses: Sequence[W.ClassSense],
    request: Request,
    cache: TextFeatureCache | None,
) -> StrategyResult:
    """One image's hierarchy strategy (the method itself: ``hierarchy.predict``)."""
    logits, details = H.predict(loaded, H.VARIANTS[strategy], image_feature, name_logits, fallback_logits,
                                check.low_confidence, request.rerank_all, request.classnames, senses, cache)
    result = strategy_result(strategy, logits, request.classnames, request.top_k)
    result.details = details
    return result


def tpt_result(loaded: LoadedModel, image: LoadedImage, parts: P.PromptParts | None,
               request: Request) -> StrategyResult:
    """One image tuned from scratch; probabilities are the tuned ones, details hold the rest."""
    assert parts is not None
    outcome = P.tune(loaded, image.image, parts, request.tpt)
    result = strategy_result("tpt", outcome.logits_after, request.classnames, request.top_k)
    result.details = outcome.details(request.tpt)
    result.details["top1_before"] = request.classnames[int(outcome.logits_before.argmax())]
    return result


@dataclass
class Estimate:
    """How much model work a request needs, and (once the model's speed is known) how long."""

    seconds: dict[str, float]          # stage -> seconds: "wordnet", "images", "prompts", "tpt"
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
        return f"{PR.duration(self.total)}: {work}" if self.known else work


def estimate(loaded: LoadedModel, n_images: int, request: Request,
             cache: TextFeatureCache | None = TEXT_CACHE) -> Estimate:
    """The model work of ``classify_request``: images (and views) to embed, prompts not in the
    cache, TPT's passes. Hierarchy prompts (parents, children) are left out: they are few."""
    sets: dict[tuple[str, ...], str] = {}
    for s in request.strategies:
        if S.is_template_strategy(s):
            sets.setdefault(S.strategy_templates(s, request.custom_templates), S.STRATEGIES[s].label)
        elif s in H.VARIANTS:
            fallback = H.VARIANTS[s].fallback
            sets.setdefault(S.strategy_templates(fallback, ()), S.STRATEGIES[fallback].label)
    if request.needs_consistency:
        sets.setdefault(T.NAME_ONLY, S.STRATEGIES["name"].label)
        sets.setdefault(T.CLIP80, "the consistency check's 80 templates")
    prompts = list(dict.fromkeys(T.fill(t, c) for templates in sets for c in request.classnames for t in templates))
    cached = cache.count_cached(loaded.identity, prompts) if cache is not None else 0
    todo = len(prompts) - cached
    views = len(request.views) if request.needs_consistency else 0
    rates = {k: loaded.speed.rate(k) for k in ASSUMED_RATES}
    known = all(r is not None for r in rates.values())
    rate = {k: r or ASSUMED_RATES[k] for k, r in rates.items()}
    why = []
    hierarchy = any(s in H.VARIANTS for s in request.strategies)
    seconds = {"wordnet": WORDNET_LOAD_SECONDS if hierarchy and not W.is_loaded() else 0.0,
               "images": n_images * (1 + views) / rate["image"], "prompts": todo / rate["prompt"], "tpt": 0.0}
    if seconds["wordnet"]:
        why.append("loading WordNet (once per server)")
    if views:
        why.append(f"{PR.count(n_images, 'image')} and {PR.count(n_images * views, 'view')} to embed")
    if todo:
        how = " + ".join(f"{len(t)} {'template' if len(t) == 1 else 'templates'} ({label})"
                         for t, label in sets.items())
        why.append(f"{todo:,} prompts to encode ({PR.count(len(request.classnames), 'class', 'classes')} x {how}"
                   + (f"; {cached:,} already cached)" if cached else ")"))
    if "tpt" in request.strategies:
        steps, tpt_views = request.tpt.steps, request.tpt.views
        seconds["tpt"] = n_images * (tpt_views / rate["image"]
                                     + len(request.classnames) * (1 + TPT_PASSES_PER_STEP * steps) / rate["prompt"])
        why.append(f"TPT: {PR.count(n_images, 'image')} x {tpt_views} views, {PR.count(steps, 'step')} over "
                   f"{PR.count(len(request.classnames), 'class', 'classes')}")
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
    if "tpt" in request.strategies and len(images) * len(request.classnames) > LIMITS.tpt_class_images:
        raise InputError(
            f"TPT on {len(images)} images x {len(request.classnames)} classes: at most {LIMITS.tpt_class_images:,} "
            "image-classes per request (each class is a forward and backward pass per image). Send fewer images "
            "or classes with TPT, or untick it.")
    work = work or estimate(loaded, len(images), request, cache)
    with PR.track(progress) if progress is not None else contextlib.nullcontext():
        return _classify(loaded, images, request, cache, names, work)


def _classify(loaded: LoadedModel, images: Sequence[ImageSource], request: Request,
              cache: TextFeatureCache | None, names: Sequence[str | None] | None,
              work: Estimate) -> ClassificationResult:
    # The progress bar's stages, in proportion to the work each one does.
    total = max(work.total, 1e-9)
    bounds, at = {}, 0.02
    for stage in ("wordnet", "images", "prompts", "tpt"):
        share = 0.96 * work.seconds[stage] / total
        bounds[stage], at = (at, at + share), at + share
    PR.stage(0.0, 0.02, "decoding images")
    warnings = request.warnings + context_warnings(loaded, request)
    decoded = load_images(images, names)
    good = [d for d in decoded if isinstance(d, LoadedImage)]
    hierarchy = [s for s in request.strategies if s in H.VARIANTS]
    senses: list[W.ClassSense] = []
    if hierarchy:
        PR.stage(*bounds["wordnet"], "looking up the classes in WordNet" if W.is_loaded()
                 else "loading WordNet (once per server)")
        senses, missing = request_senses(request)
        if missing:
            warnings.append(missing)
    results: dict[int, ImageResult] = {}
    if good:
        # The model's lock is taken per batch of images or prompts and per TPT image, not for
        # the whole request: other users' requests get their turns in between.
        if request.needs_consistency:
            PR.stage(*bounds["images"], "embedding the images and their views", work.images, "image")
            feats, view_feats = K.embed_with_views(loaded, [im.image for im in good], request.views)
        else:
            PR.stage(*bounds["images"], "embedding images", work.images, "image")
            feats, view_feats = embed_images(loaded, good), None
        PR.stage(*bounds["prompts"], "encoding prompts", work.prompts, "prompt")
        needed = [s for s in request.strategies if S.is_template_strategy(s)]
        needed += [H.VARIANTS[s].fallback for s in hierarchy]
        needed += ["name"] if request.needs_consistency else []
        logits = {
            s: template_logits(loaded, feats, request.classnames,
                               S.strategy_templates(s, request.custom_templates), cache)
            for s in dict.fromkeys(needed)
        }
        checks = (K.analyse_features(loaded, feats, view_feats, request.classnames, cache, request.views)
                  if request.needs_consistency else [])
        parts = P.prompt_parts(loaded, list(request.classnames)) if "tpt" in request.strategies else None
        per_image = []
        lo, hi = bounds["tpt"]
        for row, im in enumerate(good):
            if parts is not None:
                PR.stage(lo + (hi - lo) * row / len(good), lo + (hi - lo) * (row + 1) / len(good),
                         f"test-time prompt tuning, image {row + 1} of {len(good)}")
            strategies: dict[str, StrategyResult] = {}
            for s in request.strategies:
                if s == "tpt":
                    strategies[s] = tpt_result(loaded, im, parts, request)
                elif s in H.VARIANTS:
                    strategies[s] = hierarchy_result(
                        loaded, s, feats[row], logits["name"][row], logits[H.VARIANTS[s].fallback][row],
                        checks[row], senses, request, cache)
                else:
                    strategies[s] = strategy_result(s, logits[s][row], request.classnames, request.top_k)
            per_image.append(strategies)
        for row, im in enumerate(good):
            analyses = {"consistency": checks[row].to_dict(request.classnames)} if checks else {}
            results[id(im)] = ImageResult(
                source=im.source, width=im.width, height=im.height, warnings=list(im.warnings),
                strategies=per_image[row], analyses=analyses,
            )
    return ClassificationResult(
        model=loaded.describe(),
        classes=list(request.classnames),
        strategies=list(request.strategies),
        templates={s: list(S.strategy_templates(s, request.custom_templates))
                   for s in request.strategies if S.is_template_strategy(s)},
        top_k=request.top_k,
        images=[results[id(d)] if isinstance(d, LoadedImage) else d for d in decoded],
        warnings=warnings,
        senses=[c.to_dict() for c in senses],
    )
