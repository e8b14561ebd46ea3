"""Re-ranking with the WordNet hierarchy (Ge et al., CVPR 2023; SPEC §4).

For an image the consistency check finds low-confidence, the name-only top-5 classes are
re-scored. Each candidate c with sense s, parent p and children k gets the phrases
``{c} which is a kind of {p}`` and ``{k} which is a kind of {p}`` (without the suffix when s has
no parent; the bare name when c is not in WordNet); its score is the highest cosine between the
image and any phrase, and the new prediction is the candidate with the highest score.

``hierarchy80`` is the paper's Table-4 variant. Choice (SPEC says "put each augmented phrase into
all 80 templates and ensemble"): each phrase becomes one CLIP-80 ensemble vector, and the score
stays the maximum over a candidate's phrases; confident images keep the CLIP-80 prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import torch

from . import classnames as C
from . import templates as T
from . import wordnet as W
from .models import LoadedModel
from .text import TextFeatureCache, encode_prompts
from .zero_shot_classifier import class_vectors

CANDIDATES = 5
PARENT_SUFFIX = "{} which is a kind of {}"


@dataclass(frozen=True)
class Variant:
    id: str
    templates: tuple[str, ...] | None   # None: each phrase is its own prompt
    fallback: str                       # the strategy whose prediction confident images keep


VARIANTS: dict[str, Variant] = {
    "hierarchy": Variant("hierarchy", None, "name"),
    "hierarchy80": Variant("hierarchy80", T.CLIP80, "clip80"),
}


def imagenet_ids(classnames: Sequence[str]) -> dict[str, str]:
    """The class names that resolve exactly through ImageNet ids.

    When every name is an ImageNet-1k preset name (the preset, or a pick from it) all of them
    do. Otherwise only the preset names WordNet cannot find as typed (``crane bird``,
    ``construction crane``) do, so that a name like ``bow`` is still read in its request's context.
    """
    wnids = C.imagenet_wnids()
    if all(n in wnids for n in classnames):
        return {n: wnids[n] for n in classnames}
    return {n: wnids[n] for n in classnames if n in wnids and not W.noun_senses(n)}


def class_senses(classnames: Sequence[str], overrides: Mapping[str, str] | None = None) -> list[W.ClassSense]:
    """The WordNet reading of every class of a request (raises WordNetUnavailable without data).

    Cached per class list: reading 1000 free-text names in context takes seconds.
    """
    W.ensure_wordnet()
    return list(_class_senses(tuple(classnames), tuple(sorted((overrides or {}).items()))))


@lru_cache(maxsize=64)
def _class_senses(classnames: tuple[str, ...], overrides: tuple[tuple[str, str], ...]) -> tuple[W.ClassSense, ...]:
    return tuple(W.resolve(list(classnames), dict(overrides), imagenet_ids(classnames)))


def bare_sense(name: str) -> W.ClassSense:
    """What a class contributes without WordNet: its bare name."""
    return W.ClassSense(name, (), None, "none", "WordNet unavailable: the bare name is used",
                        None, None, (), ())


def phrases(name: str, sense: W.ClassSense) -> list[str]:
    """The class's own phrase first, then one per child."""
    heads = [name, *sense.children]
    if sense.parent is None:
        return heads
    return [PARENT_SUFFIX.format(h, sense.parent) for h in heads]


def phrase_vectors(loaded: LoadedModel, texts: Sequence[str], variant: Variant,
                   cache: TextFeatureCache | None) -> torch.Tensor:
    """Unit vectors [P, D]: each phrase encoded as it is, or as its CLIP-80 ensemble."""
    if variant.templates is None:
        return encode_prompts(loaded, list(texts), cache)
    return class_vectors(loaded, list(texts), variant.templates, cache)


def predict(
    loaded: LoadedModel,
    variant: Variant,
    image_feature: torch.Tensor,
    name_logits: torch.Tensor,
    fallback_logits: torch.Tensor,
    low_confidence: bool,
    rerank_all: bool,
    classnames: Sequence[str],
    senses: Sequence[W.ClassSense],
    cache: TextFeatureCache | None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One image: logits [C] and the details the result records.

    Re-ranked (low confidence, or ``rerank_all``): the candidates' logits are their scores times
    the model's logit scale and every other class gets -inf (probability 0). Otherwise the
    fallback strategy's logits are kept.
    """
    candidates = [int(i) for i in torch.topk(name_logits, k=min(CANDIDATES, len(classnames))).indices]
    applied = low_confidence or rerank_all
    if applied:
        scores, details = rerank(loaded, image_feature, candidates, classnames, senses, variant, cache)
        logits = torch.full((len(classnames),), float("-inf"))
        logits[candidates] = loaded.logit_scale * scores
        reason = ("low confidence: re-ranked" if low_confidence
                  else "confident; re-ranked because 're-rank all images' is on")
    else:
        logits = fallback_logits
        details = [candidate_details(c, classnames[c], senses[c]) for c in candidates]
        reason = f"confident: kept the {variant.fallback} prediction"
    return logits, {
        "applied": applied,
        "reason": reason,
        "low_confidence": low_confidence,
        "base_prediction": classnames[int(name_logits.argmax())],
        "candidates": details,
    }


def rerank(
    loaded: LoadedModel,
    image_feature: torch.Tensor,
    candidates: Sequence[int],
    classnames: Sequence[str],
    senses: Sequence[W.ClassSense],
    variant: Variant,
    cache: TextFeatureCache | None,
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Scores [K] (max cosine per candidate) and, per candidate, every phrase with its cosine."""
    per_class = [phrases(classnames[c], senses[c]) for c in candidates]
    flat = [p for ps in per_class for p in ps]
    vectors = phrase_vectors(loaded, flat, variant, cache).to(image_feature.device)
    cos = (vectors @ image_feature.float()).cpu()
    scores, details, start = [], [], 0
    for c, ps in zip(candidates, per_class):
        part = cos[start:start + len(ps)]
        start += len(ps)
        scores.append(part.max())
        details.append(candidate_details(c, classnames[c], senses[c], part.tolist()))
    return torch.stack(scores), details


def candidate_details(index: int, name: str, sense: W.ClassSense,
                      cosines: Sequence[float] | None = None) -> dict[str, Any]:
    """What the result records for a candidate; cosines and score are None when not re-ranked."""
    texts = phrases(name, sense)
    values = [float(x) for x in cosines] if cosines is not None else [None] * len(texts)
    return {
        "index": int(index),
        "class_name": name,
        "sense": sense.chosen.synset if sense.chosen else None,
        "gloss": sense.chosen.gloss if sense.chosen else None,
        "rule": sense.rule,
        "parent": sense.parent,
        "children": list(sense.children),
        "prompts": [{"text": t, "cosine": x} for t, x in zip(texts, values)],
        "score": max(values) if cosines is not None else None,
    }
