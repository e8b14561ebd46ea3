"""DCLIP, classification by description (Menon & Vondrick, ICLR 2023; docs/METHODS.md §6).

Each descriptor d of class c becomes the phrase ``{c}, which is {d}`` / ``{c}, which {d}`` /
``{c}, which has {d}`` (the official code's rule, ``descriptors.which``; no prefix). A class's
score is the mean, over its phrases, of the cosine with the image (a mean of cosines, not of
embeddings); logits are the model's logit scale times the score. A class without descriptors has
its bare name as its only phrase, and the result says so.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..prompts.descriptors import DescriptorDetails, class_mean, effective, explain, explain_markdown, per_class, which
from ..engine.text import encode_prompts
from ..engine.results import StrategyResult
from .base import Batch, Request, Scores, Strategy


def phrases(classname: str, descriptors: Sequence[str]) -> list[str]:
    return [f"{classname}, {which(d)}" for d in descriptors] or [classname]


class DCLIPStrategy(Strategy):
    scaled_cosine_logits = True
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
        vectors, owner, counts = per_class(texts, lambda p: encode_prompts(run.loaded, p, run.cache),
                                           batch.features.device)
        cos = batch.features.float() @ vectors.T                                                # [N, P]
        score = class_mean(cos, owner, counts, dim=1)                                          # mean of cosines
        details = explain(cos, score, texts, names, descriptors, batch.request.top_k)
        return Scores((run.loaded.logit_scale * score).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        best = result.details.classes[0]
        if not best["described"]:
            return "no descriptors for the top-1 class: its bare name was used"
        return f"best descriptor: {best['phrases'][0]['text']} ({best['phrases'][0]['cosine']:.3f})"

    def explain(self, result: StrategyResult) -> str:
        return ("A class scores the mean cosine of its phrases; the phrases that matched best:\n"
                + explain_markdown(result.details, "descriptor", "mean"))

    def details_from_dict(self, d: dict[str, Any]) -> DescriptorDetails:
        return DescriptorDetails.from_dict(d)


DCLIP = DCLIPStrategy()
