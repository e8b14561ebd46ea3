"""Re-ranking with the WordNet hierarchy (Ge et al., CVPR 2023; docs/METHODS.md §3).

For an image the request's low-confidence rule picks (binary by default), the name-only top-5
(``rerank_top``) are re-scored. Each candidate c with sense s, parent p and children k, both on
the sparse WordNet (``wordnet_sparse``), gets the phrases
``{c} which is a kind of {p}`` and ``{k} which is a kind of {p}`` (without the suffix when s has
no parent; the bare name when c is not in WordNet); its score is the highest cosine between the
image and any phrase, and the new prediction is the candidate with the highest score.

``hierarchy80`` is the paper's Table-4 variant. Choice (the paper says to "put each augmented phrase
into all 80 templates and ensemble"): each phrase becomes one CLIP-80 ensemble vector, and the score
stays the maximum over a candidate's phrases; confident images keep the CLIP-80 prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..models import LoadedModel
from ..templates import CLIP80, NAME_ONLY
from ..text import TextFeatureCache, encode_prompts
from ..wordnet import ClassSense
from ..zero_shot_classifier import class_vectors
from .base import Batch, Scores, Strategy

if TYPE_CHECKING:
    from ..request import Request
    from ..results import StrategyResult

CANDIDATES = 5
PARENT_SUFFIX = "{} which is a kind of {}"


@dataclass
class PromptScore:
    text: str
    cosine: float | None                # None: the image was not re-ranked


@dataclass
class Candidate:
    """One of the name-only top-5, as WordNet reads it, with its phrases and score."""

    index: int
    class_name: str
    sense: str | None                   # the synset used; None: not in WordNet, the bare name is kept
    gloss: str | None
    rule: str                           # why that sense (wordnet.ClassSense.rule)
    parent: str | None
    children: list[str]
    prompts: list[PromptScore]
    score: float | None                 # the highest cosine; None when not re-ranked

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(**{**d, "prompts": [PromptScore(**p) for p in d["prompts"]]})


@dataclass
class HierarchyDetails:
    """What one image's hierarchy strategy did, and why."""

    applied: bool                       # re-ranked (low confidence, or "re-rank all")
    reason: str
    low_confidence: bool
    base_prediction: str                # the name-only top-1
    candidates: list[Candidate]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HierarchyDetails":
        return cls(**{**d, "candidates": [Candidate.from_dict(c) for c in d["candidates"]]})


class HierarchyStrategy(Strategy):
    """Ge et al.'s re-ranking of low-confidence images; confident ones keep ``fallback``'s prediction."""

    needs_consistency = True
    needs_wordnet = True

    def __init__(self, id: str, label: str, description: str, phrase_templates: tuple[str, ...] | None,
                 fallback: str, fallback_templates: tuple[str, ...]):
        self.id, self.label, self.description = id, label, description
        self.phrase_templates = phrase_templates      # None: each phrase is its own prompt
        self.fallback = fallback
        self.fallback_templates = fallback_templates

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        # The fallback's classifier for confident images, the name-only one for the candidates.
        return self.fallback_templates, NAME_ONLY

    def score(self, batch: Batch) -> Scores:
        request, run = batch.request, batch.run
        name_logits = batch.logits(NAME_ONLY)
        fallback_logits = batch.logits(self.fallback_templates)
        rows = [predict(run.loaded, self, batch.features[row], name_logits[row], fallback_logits[row],
                        request.low_confidence.is_low(batch.checks[row]), request.rerank_all, request.classnames,
                        run.senses, run.cache, request.rerank_top)
                for row in range(len(batch))]
        logits = torch.stack([logits.detach().float().cpu() for logits, _ in rows])
        return Scores(logits, [details for _, details in rows])

    def note(self, result: StrategyResult) -> str:
        return "re-ranked" if result.details.applied else "kept: confident"

    def card_note(self, result: StrategyResult) -> str:
        return "" if result.details.applied else "kept: confident"

    def details_from_dict(self, d: dict[str, Any]) -> HierarchyDetails:
        return HierarchyDetails.from_dict(d)


HIERARCHY = HierarchyStrategy(
    "hierarchy", "WordNet re-ranking",
    "uncertain images: re-rank the top 5 with '{class} which is a kind of {parent}' and the children's "
    "names (Ge et al.)", None, "name", NAME_ONLY)
HIERARCHY80 = HierarchyStrategy(
    "hierarchy80", "WordNet re-ranking + CLIP-80",
    "the same phrases, each in all 80 templates; confident images keep CLIP-80", CLIP80, "clip80", CLIP80)
VARIANTS: dict[str, HierarchyStrategy] = {s.id: s for s in (HIERARCHY, HIERARCHY80)}


def phrases(name: str, sense: ClassSense) -> list[str]:
    """The class's own phrase first, then one per child."""
    heads = [name, *sense.children]
    if sense.parent is None:
        return heads
    return [PARENT_SUFFIX.format(h, sense.parent) for h in heads]


def phrase_vectors(loaded: LoadedModel, texts: Sequence[str], variant: HierarchyStrategy,
                   cache: TextFeatureCache | None) -> torch.Tensor:
    """Unit vectors [P, D]: each phrase encoded as it is, or as its CLIP-80 ensemble."""
    if variant.phrase_templates is None:
        return encode_prompts(loaded, list(texts), cache)
    return class_vectors(loaded, list(texts), variant.phrase_templates, cache)


def predict(
    loaded: LoadedModel,
    variant: HierarchyStrategy,
    image_feature: torch.Tensor,
    name_logits: torch.Tensor,
    fallback_logits: torch.Tensor,
    low_confidence: bool,
    rerank_all: bool,
    classnames: Sequence[str],
    senses: Sequence[ClassSense],
    cache: TextFeatureCache | None,
    top: int = CANDIDATES,
) -> tuple[torch.Tensor, HierarchyDetails]:
    """One image: logits [C] and the details the result records.

    Re-ranked (low confidence, or ``rerank_all``): the candidates' logits are their scores times
    the model's logit scale and every other class gets -inf (probability 0). Otherwise the
    fallback strategy's logits are kept.
    """
    candidates = [int(i) for i in torch.topk(name_logits, k=min(top, len(classnames))).indices]
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
    return logits, HierarchyDetails(applied, reason, low_confidence, classnames[int(name_logits.argmax())],
                                    details)


def rerank(
    loaded: LoadedModel,
    image_feature: torch.Tensor,
    candidates: Sequence[int],
    classnames: Sequence[str],
    senses: Sequence[ClassSense],
    variant: HierarchyStrategy,
    cache: TextFeatureCache | None,
) -> tuple[torch.Tensor, list[Candidate]]:
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


def candidate_details(index: int, name: str, sense: ClassSense,
                      cosines: Sequence[float] | None = None) -> Candidate:
    """What the result records for a candidate; cosines and score are None when not re-ranked."""
    texts = phrases(name, sense)
    values = [float(x) for x in cosines] if cosines is not None else [None] * len(texts)
    return Candidate(
        index=int(index),
        class_name=name,
        sense=sense.chosen.synset if sense.chosen else None,
        gloss=sense.chosen.gloss if sense.chosen else None,
        rule=sense.rule,
        parent=sense.parent,
        children=list(sense.children),
        prompts=[PromptScore(t, x) for t, x in zip(texts, values)],
        score=max(values) if cosines is not None else None,
    )
