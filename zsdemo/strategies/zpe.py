"""ZPE, zero-shot prompt weighting (Allingham et al., ICML 2023; docs/METHODS.md §6).

Label-free weights for a pool of templates, from the unlabelled images at hand (the request's
images, or the whole evaluation set). With l[i, p, c] the logit of image i for class c under the
single template p:

    l~[i, p, c] = l[i, p, c] - mean over images of l[., p, c]      (each template's bias removed)
    s_p = mean over images of max_c l~[i, p, c]                     (how sharply p separates)
    w = softmax over templates of s;   logits[i, c] = sum_p w_p l[i, p, c]

The pool is CLIP-80, or the request's custom templates when it has at least two. One image gives
no information (l~ is zero, the weights uniform): the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..core.markup import code
from ..prompts.templates import CLIP80
from ..engine.zero_shot_classifier import template_features
from ..engine.results import StrategyResult
from .base import Batch, Request, Scores, Strategy


SHOWN = 3                       # best and worst templates listed
CHUNK_VALUES = 20_000_000       # images x templates x classes computed at once (80 MB of float32)


def pool(request: Request) -> tuple[str, ...]:
    return request.custom_templates if len(request.custom_templates) >= 2 else CLIP80


def weights(features: torch.Tensor, per_template: torch.Tensor, scale: float) -> torch.Tensor:
    """Template weights [P] from image features [N, D] and per-template class features [C, P, D]."""
    n, (c, p, _) = len(features), per_template.shape
    # The mean logit over images is the logit of the mean image feature: one pass, no [N, P, C].
    mean = scale * torch.einsum("d,cpd->pc", features.mean(dim=0), per_template)
    step = max(1, CHUNK_VALUES // (p * c))
    total = torch.zeros(p, dtype=torch.float64, device=features.device)
    for start in range(0, n, step):
        chunk = scale * torch.einsum("nd,cpd->npc", features[start:start + step], per_template)
        total += (chunk - mean).max(dim=2).values.sum(dim=0).double()
    return (total / n).softmax(dim=0).float()


def weighted_logits(features: torch.Tensor, per_template: torch.Tensor, w: torch.Tensor,
                    scale: float) -> torch.Tensor:
    """sum_p w_p l[i, p, c], [N, C]: the logits averaged over templates (not the embeddings)."""
    return scale * torch.einsum("nd,cpd,p->nc", features, per_template, w)


@dataclass
class ZPEDetails:
    images: int                           # the unlabelled images the weights come from
    informative: bool                     # False with a single image: the weights are uniform
    top: list[dict[str, Any]]             # {"template", "weight"}, highest first
    bottom: list[dict[str, Any]]          # lowest first
    uniform_weight: float                 # 1 / pool size, to compare with

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ZPEDetails":
        return cls(**d)


class ZPEStrategy(Strategy):
    scaled_cosine_logits = True
    id = "zpe"
    label = "ZPE (prompt weighting)"
    description = ("weights CLIP's 80 templates without labels, by how sharply each separates the classes on "
                   "the images at hand (Allingham et al.)")
    whole_set = True

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        return pool(request)

    def score(self, batch: Batch) -> Scores:
        run, templates = batch.run, pool(batch.request)
        per_template = template_features(run.loaded, batch.classnames, templates, run.cache)
        per_template = per_template.to(batch.features.device)
        feats, scale = batch.features.float(), run.loaded.logit_scale
        w = weights(feats, per_template, scale)
        order = torch.argsort(w, descending=True, stable=True).tolist()
        listed = [{"template": templates[k], "weight": float(w[k])} for k in order]
        details = ZPEDetails(len(batch), len(batch) > 1, listed[:SHOWN], listed[::-1][:SHOWN], 1 / len(templates))
        step = max(1, CHUNK_VALUES // (len(templates) * len(batch.classnames)))
        logits = torch.cat([weighted_logits(feats[s:s + step], per_template, w, scale)
                            for s in range(0, len(batch), step)])
        return Scores(logits.cpu(), [details] * len(batch))

    def note(self, result: StrategyResult) -> str:
        d = result.details
        if not d.informative:
            return "one image: uniform weights (ZPE needs several images)"
        return f"weights from {d.images} images; top template '{d.top[0]['template']}' {d.top[0]['weight']:.3f}"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        if not d.informative:
            return ("One image gives ZPE no information: every template gets the same weight "
                    f"({d.uniform_weight:.4f}), so this is CLIP-80's prediction. Upload several images to weight "
                    "the templates.")
        rows = [f"| {code(x['template'])} | {x['weight']:.4f} | {x['weight'] / d.uniform_weight:.2f}x |"
                for x in d.top] + ["| ... | | |"] + [
               f"| {code(x['template'])} | {x['weight']:.4f} | {x['weight'] / d.uniform_weight:.2f}x |"
               for x in d.bottom[::-1]]
        return (f"Template weights from the {d.images} images of this run (no labels): a template scores the mean, "
                "over the images, of its highest debiased logit.\n\n| template | weight | vs equal |\n|---|---|---|\n"
                + "\n".join(rows))

    def details_from_dict(self, d: dict[str, Any]) -> ZPEDetails:
        return ZPEDetails.from_dict(d)


ZPE = ZPEStrategy()
