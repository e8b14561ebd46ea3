"""DCLIP, classification by description (Menon & Vondrick, ICLR 2023; docs/METHODS.md §6).

Each descriptor d of class c becomes the phrase ``{c}, which is {d}`` / ``{c}, which {d}`` /
``{c}, which has {d}`` (the official code's rule, ``descriptors.which``; no prefix). A class's
score is the mean, over its phrases, of the cosine with the image (a mean of cosines, not of
embeddings); logits are the model's logit scale times the score. A class without descriptors has
its bare name as its only phrase, and the result says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..descriptors import DescriptorDetails, effective, explain, which
from ..text import encode_prompts
from .base import Batch, Scores, Strategy

if TYPE_CHECKING:
    from ..request import Request
    from ..results import StrategyResult


def phrases(classname: str, descriptors: Sequence[str]) -> list[str]:
    return [f"{classname}, {which(d)}" for d in descriptors] or [classname]


class DCLIPStrategy(Strategy):
    id = "dclip"
    label = "DCLIP (descriptors)"
    description = "the class's descriptors, '{class}, which has {descriptor}', mean cosine (Menon & Vondrick)"
    needs_descriptors = True
    shipped_descriptors = "dclip.json"

    def extra_prompts(self, request: Request) -> int:
        descriptors = effective(request.descriptors, self.shipped_descriptors, request.classnames)
        return sum(max(1, len(descriptors.of(c))) for c in request.classnames)

    def score(self, batch: Batch) -> Scores:
        run, names = batch.run, batch.classnames
        descriptors = effective(batch.request.descriptors, self.shipped_descriptors, names)
        texts = [phrases(c, descriptors.of(c)) for c in names]
        flat = [p for t in texts for p in t]
        vectors = encode_prompts(run.loaded, flat, run.cache).to(batch.features.device)      # [P, D]
        cos = batch.features.float() @ vectors.T                                                # [N, P]
        owner = torch.tensor([c for c, t in enumerate(texts) for _ in t], device=cos.device)
        sums = torch.zeros(len(batch), len(names), device=cos.device).index_add_(1, owner, cos)
        score = sums / torch.tensor([len(t) for t in texts], device=cos.device)
        described = [bool(descriptors.of(c)) for c in names]
        details = [explain(cos[row].cpu(), score[row].cpu(), texts, names, described, batch.request.top_k)
                   for row in range(len(batch))]
        return Scores((run.loaded.logit_scale * score).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        best = result.details.classes[0]
        if not best["described"]:
            return "no descriptors for the top-1 class: its bare name was used"
        return f"best descriptor: {best['phrases'][0]['text']} ({best['phrases'][0]['cosine']:.3f})"

    def details_from_dict(self, d: dict[str, Any]) -> DescriptorDetails:
        return DescriptorDetails.from_dict(d)


DCLIP = DCLIPStrategy()
