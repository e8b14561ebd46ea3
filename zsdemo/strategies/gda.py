"""GDA: Gaussian discriminant analysis on CLIP's image features, training-free (Wang et al., "A
Hard-to-Beat Baseline for Training-free CLIP-based Adaptation", ICLR 2024; docs/METHODS.md).

From the support set's unit features x with labels y: class means mu_c, and one covariance
shared by every class, estimated with the official code's shrinkage,

    S = the covariance of the centred features x - mu_y, over every example
    P = D x pinv((N - 1) S + tr(S) I)          (D: the feature size, N: the examples)

Bayes' rule with equal priors gives linear weights and biases,

    w_c = P mu_c,   b_c = log(1 / C) - mu_c^T P mu_c / 2

and the prediction adds them to the zero-shot classifier (CLIP-80):

    logits = logit_scale x f W^T  +  alpha x (f . w_c + b_c)

alpha is searched, as the official code does, over 1e-4 ... 100 on a held-out share of the
support set (``gda_val_fraction``; the means and covariance then come from the rest, and the
final ones from every example), or used as given when nothing is held out (0.1, where the
official search starts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..core.errors import InputError
from ..core.markup import md
from ..data.support import SupportFeatures, validation_split
from ..engine.results import StrategyResult
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import CLIP80
from .base import Batch, Request, Scores, Strategy, require_support
from .options import option

ALPHA = 0.1
ALPHA_GRID = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)      # the official code's search


@dataclass(frozen=True)
class GDASettings:
    alpha: float = option(ALPHA, "gda_alpha", "GDA's weight",
                          "weight of the GDA logits added to CLIP-80's (used as given when nothing is held out)",
                          low=0.0, high=1e4, info="weight of the Gaussian classifier beside CLIP-80")
    val_fraction: float = option(
        0.0, "gda_val_fraction", "GDA's validation fraction",
        "hold out this share of each class's examples and search the weight on it, as the official code does "
        "(0: use the weight as given)", low=0.0, high=0.9, control="slider", step=0.05, metavar="F",
        info="share of the examples held out to search the weight (0: use the value above)")


def fit(support: SupportFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [D, C], b [C]): GDA's linear classifier from the support features (float64)."""
    x = support.features.double()
    labels = support.labels
    classes = len(support.classes)
    mus = torch.stack([x[labels == c].mean(dim=0) for c in range(classes)])             # [C, D]
    centred = x - mus[labels]                                                           # [N, D]
    n, d = centred.shape
    cov = torch.cov(centred.T)                                                          # [D, D], 1 / (N - 1)
    precision = d * torch.linalg.pinv((n - 1) * cov + torch.trace(cov) * torch.eye(d, dtype=cov.dtype))
    weights = precision @ mus.T                                                         # [D, C]
    bias = math.log(1.0 / classes) - 0.5 * torch.einsum("cd,de,ce->c", mus, precision, mus)
    return weights, bias


def search(clip_logits: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
           train: SupportFeatures) -> float:
    """The weight with the best accuracy on held-out examples (the first of equals, as there)."""
    weights, bias = fit(train)
    gda = (features.double() @ weights + bias).float()
    best, best_alpha = -1.0, ALPHA
    for alpha in ALPHA_GRID:
        accuracy = float(((clip_logits + alpha * gda).argmax(dim=-1) == labels).float().mean())
        if accuracy > best:
            best, best_alpha = accuracy, alpha
    return best_alpha


@dataclass
class GDADetails:
    alpha: float
    searched: bool
    shots: dict[str, int]
    clip_top1: str                 # CLIP-80's own top-1, before the Gaussian classifier is added

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GDADetails":
        return cls(**d)


class GDAStrategy(Strategy):
    id = "gda"
    label = "GDA (Gaussian classifier)"
    description = ("few-shot, training-free: class means and one shared covariance of your labelled examples, "
                   "a Gaussian classifier added to CLIP-80 (Wang et al.)")
    needs_support = True
    options = GDASettings

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        return (CLIP80,)

    def check(self, request: Request, n_images: int) -> None:
        require_support(request, "GDA")

    def classifier(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, float, bool]:
        """(W, b, alpha, searched), once per request: the weight searched on a held-out share
        first when asked, then W and b from every example."""
        settings: GDASettings = self.settings(batch.request)

        def make() -> tuple[torch.Tensor, torch.Tensor, float, bool]:
            support = batch.run.support
            missing = [c for c, n in support.shots().items() if n == 0]
            if missing:
                raise InputError(f"GDA needs at least one labelled example of every class; none of "
                                 f"{', '.join(repr(c) for c in missing[:5])}.")
            alpha, searched = settings.alpha, False
            if settings.val_fraction > 0:
                train, val = validation_split(support, settings.val_fraction)
                feats = support.features[val]
                run = batch.run
                vectors = class_vectors(run.loaded, batch.classnames, CLIP80, run.cache).to(feats.device)
                alpha = search(run.loaded.logit_scale * feats @ vectors.T, feats, support.labels[val],
                               support.subset(train))
                searched = True
            weights, bias = fit(support)
            return weights, bias, alpha, searched
        return batch.run.once("gda.classifier", make)

    def score(self, batch: Batch) -> Scores:
        weights, bias, alpha, searched = self.classifier(batch)
        clip_logits = batch.logits(CLIP80)
        gda = (batch.features.double().cpu() @ weights + bias).float().to(clip_logits.device)
        shots = batch.run.support.shots()
        details = [GDADetails(alpha, searched, shots, batch.classnames[int(clip_logits[row].argmax())])
                   for row in range(len(batch))]
        return Scores((clip_logits + alpha * gda).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        return f"alpha {result.details.alpha:g}; CLIP-80 alone: {result.details.clip_top1}"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        shots = ", ".join(f"{md(c)} {n}" for c, n in d.shots.items())
        how = "searched on the held-out examples" if d.searched else "as set"
        return (f"CLIP-80 plus a Gaussian classifier of {sum(d.shots.values())} labelled examples ({shots}): each "
                f"class's mean feature and one covariance shared by all, turned into weights by Bayes' rule; "
                f"weight alpha {d.alpha:g} ({how}). CLIP-80 alone would say {md(d.clip_top1)}.")

    def details_from_dict(self, d: dict[str, Any]) -> GDADetails:
        return GDADetails.from_dict(d)


GDA = GDAStrategy()
