"""Images + class names + strategy ids -> one result per image.

The single entry point that the CLI, the app and the benchmarks call. Work is shared across
strategies: images are decoded and embedded once, and class vectors come from the text cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from . import classnames as C
from . import strategies as S
from . import templates as T
from .errors import ImageError, InputError
from .images import ImageSource, LoadedImage, describe_source, load_image
from .models import LoadedModel
from .results import ClassificationResult, ImageResult, Prediction, StrategyResult
from .text import TextFeatureCache, prompt_token_count

MAX_CLASSES = 10_000
MAX_CLASSNAME_CHARS = 1_000
DEFAULT_TOP_K = 5
IMAGE_BATCH_SIZE = 32

# One process-wide cache: every request and every user shares the text features.
TEXT_CACHE = TextFeatureCache()


@dataclass
class Request:
    """A validated request: what every strategy reads."""

    classnames: tuple[str, ...]
    strategies: tuple[str, ...]
    custom_templates: tuple[str, ...]
    top_k: int
    warnings: list[str] = field(default_factory=list)


def prepare_request(
    classnames: str | Sequence[str],
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> Request:
    """Validate everything but the images; raise InputError with a message for the user."""
    parsed = C.parse_classnames(classnames)
    if len(parsed.names) > MAX_CLASSES:
        raise InputError(f"{len(parsed.names)} classes given; at most {MAX_CLASSES} are allowed per request.")
    too_long = [n for n in parsed.names if len(n) > MAX_CLASSNAME_CHARS]
    if too_long:
        raise InputError(
            f"A class name has {len(too_long[0])} characters; at most {MAX_CLASSNAME_CHARS} are allowed "
            f"(starts with {too_long[0][:40]!r})."
        )
    custom = T.parse_templates(templates)
    ids = S.parse_strategies(strategies, has_custom_templates=bool(custom))
    if not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top-k must be a whole number of at least 1 (got {top_k!r}).")
    warnings = list(parsed.warnings)
    if custom and "custom" not in ids:
        warnings.append("Custom templates were given but the 'custom' strategy is not selected; they are unused.")
    return Request(parsed.names, ids, custom, min(top_k, len(parsed.names)), warnings)


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
    feats = []
    for start in range(0, len(images), IMAGE_BATCH_SIZE):
        batch = torch.stack([loaded.preprocess(im.image) for im in images[start:start + IMAGE_BATCH_SIZE]])
        with torch.no_grad(), loaded.autocast():
            out = loaded.model.encode_image(batch.to(loaded.device))
        feats.append(F.normalize(out.float(), dim=-1))
    return torch.cat(feats) if feats else torch.empty(0)


def strategy_result(
    strategy: str, logits: torch.Tensor, classnames: Sequence[str], top_k: int, label: str | None = None,
) -> StrategyResult:
    """Probabilities (softmax over the user's classes) and top-k from one image's logits [C]."""
    logits = logits.detach().float().cpu()
    probs = logits.softmax(dim=-1)
    top = torch.topk(probs, k=min(top_k, len(classnames)))
    return StrategyResult(
        strategy=strategy,
        label=label or S.STRATEGIES[strategy].label,
        probs=probs.tolist(),
        logits=logits.tolist(),
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
    weights = S.class_vectors(loaded, classnames, templates, cache).to(image_features.device)
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
) -> ClassificationResult:
    """Classify a batch of images against the class names with every selected strategy.

    Bad class names, templates or strategy ids raise InputError; a bad image does not stop the
    batch: its ImageResult carries the error.
    """
    request = prepare_request(classnames, strategies, templates, top_k)
    return classify_request(loaded, images, request, cache, names)


def classify_request(
    loaded: LoadedModel,
    images: Sequence[ImageSource],
    request: Request,
    cache: TextFeatureCache | None = TEXT_CACHE,
    names: Sequence[str | None] | None = None,
) -> ClassificationResult:
    """``classify`` for a request validated beforehand (callers that check input before loading)."""
    if not images:
        raise InputError("No image given: add at least one image.")
    warnings = request.warnings + context_warnings(loaded, request)
    decoded = load_images(images, names)
    good = [d for d in decoded if isinstance(d, LoadedImage)]
    results: dict[int, ImageResult] = {}
    if good:
        with loaded.lock:  # one forward pass at a time per model keeps memory bounded
            feats = embed_images(loaded, good)
            logits_by_strategy = {
                s: template_logits(loaded, feats, request.classnames,
                                   S.strategy_templates(s, request.custom_templates), cache)
                for s in request.strategies
            }
        for row, im in enumerate(good):
            results[id(im)] = ImageResult(
                source=im.source, width=im.width, height=im.height, warnings=list(im.warnings),
                strategies={
                    s: strategy_result(s, logits[row], request.classnames, request.top_k)
                    for s, logits in logits_by_strategy.items()
                },
            )
    return ClassificationResult(
        model=loaded.describe(),
        classes=list(request.classnames),
        strategies=list(request.strategies),
        templates={s: list(S.strategy_templates(s, request.custom_templates)) for s in request.strategies},
        top_k=request.top_k,
        images=[results[id(d)] if isinstance(d, LoadedImage) else d for d in decoded],
        warnings=warnings,
    )
