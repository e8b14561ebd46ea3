"""Tip-Adapter, training-free (Zhang et al., ECCV 2022; docs/METHODS.md §8).

A cache of the support set: keys K, the unit features of the labelled examples (original view),
values V, their one-hot labels over the request's classes. For a unit image feature f:

    logits = logit_scale x f W^T + alpha x exp(-beta (1 - f K^T)) V

with W the CLIP-80 classifier. alpha = 1.17 and beta = 1 by default (the official code's
ImageNet starting values), or set by the user, or searched on a held-out part of the support set
(``--val-fraction``) over the official code's grid, never on the images scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..core.markup import html, kept_picture, md
from ..data.support import SupportFeatures, validation_split
from ..engine.results import StrategyResult
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import CLIP80
from .base import Batch, Panel, PanelContext, Request, Scores, Strategy, require_support
from .options import option

ALPHA, BETA = 1.17, 1.0
# The official search: beta over (0, 7], alpha over (0, 3]; 200 x 20 steps there, fewer here
# (the scores change smoothly; 35 x 15 costs a fortieth of the time on a CPU).
BETA_GRID = tuple(round(0.1 + 6.9 * k / 34, 4) for k in range(35))
ALPHA_GRID = tuple(round(0.1 + 2.9 * k / 14, 4) for k in range(15))
NEAREST = 3                     # support examples shown per image


@dataclass(frozen=True)
class TipSettings:
    alpha: float = option(ALPHA, "tip_alpha", "Tip-Adapter's alpha", "weight of the cache",
                          low=0.0, high=100.0, info="the cache's weight")
    beta: float = option(BETA, "tip_beta", "Tip-Adapter's beta", "sharpness of the affinities",
                         low=0.0, high=100.0, info="the affinities' sharpness")
    val_fraction: float = option(
        0.0, "val_fraction", "Tip-Adapter's validation fraction",
        "hold out this share of each class's examples and search alpha and beta on it (0: use them as given)",
        low=0.0, high=0.9, control="slider", step=0.05, metavar="F",
        info="share of the examples held out to search alpha and beta (0: use the values above)")


def cache_logits(features: torch.Tensor, support: SupportFeatures, beta: float) -> torch.Tensor:
    """exp(-beta (1 - f K^T)) V: each class's summed affinity to its cached examples [N, C]."""
    affinity = torch.exp(-beta * (1 - features.float() @ support.features.T.to(features.device)))
    return affinity @ support.one_hot().to(features.device)


def search(clip_logits: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
           cache: SupportFeatures) -> tuple[float, float, float]:
    """(alpha, beta, accuracy) best on held-out examples, the cache built from the others; the
    first best in grid order wins (beta outer, as in the official code)."""
    best = (ALPHA, BETA, -1.0)
    for beta in BETA_GRID:
        affinity = cache_logits(features, cache, beta)
        for alpha in ALPHA_GRID:
            acc = float(((clip_logits + alpha * affinity).argmax(dim=-1) == labels).float().mean())
            if acc > best[2]:
                best = (alpha, beta, acc)
    return best


@dataclass
class TipDetails:
    """Why: the support examples the image looks most like, and the settings used."""

    alpha: float
    beta: float
    searched: bool                       # alpha and beta came from the validation split
    nearest: list[dict[str, Any]]        # {"file", "class_name", "cosine", "affinity"}, most similar first
    shots: dict[str, int]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TipDetails":
        return cls(**d)


class TipStrategy(Strategy):
    id = "tip"
    label = "Tip-Adapter (few-shot cache)"
    description = ("few-shot, training-free: CLIP-80 plus a cache of your labelled examples, "
                   "alpha x exp(-beta (1 - cos)) per example (Zhang et al.)")
    needs_support = True
    options = TipSettings

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        return (CLIP80,)

    def least_shots(self, request: Request) -> int:
        return 2 if self.settings(request).val_fraction > 0 else 1

    def check(self, request: Request, n_images: int) -> None:
        require_support(request, "Tip-Adapter")

    def alpha_beta(self, batch: Batch) -> tuple[float, float, bool]:
        """(alpha, beta, searched): the request's, or the best on a held-out part of the support
        set (searched once per request; the final cache then holds every example)."""
        tip, support = self.settings(batch.request), batch.run.support
        if tip.val_fraction <= 0:
            return tip.alpha, tip.beta, False

        def tuned() -> tuple[float, float, bool]:
            run = batch.run
            train, val = validation_split(support, tip.val_fraction)
            feats = support.features[val].to(batch.features.device)
            weights = class_vectors(run.loaded, batch.classnames, CLIP80, run.cache).to(feats.device)
            alpha, beta, _ = search(run.loaded.logit_scale * feats @ weights.T, feats,
                                    support.labels[val].to(feats.device), support.subset(train))
            return alpha, beta, True
        return batch.run.once("tip.search", tuned)

    def score(self, batch: Batch) -> Scores:
        support = batch.run.support
        alpha, beta, searched = self.alpha_beta(batch)
        feats = batch.features.float()
        cosine = feats @ support.features.T.to(feats.device)                                  # [N, K]
        affinity = torch.exp(-beta * (1 - cosine))
        logits = batch.logits(CLIP80) + alpha * affinity @ support.one_hot().to(feats.device)
        shots = support.shots()
        details = []
        for row in range(len(batch)):
            order = torch.argsort(cosine[row], descending=True, stable=True)[:NEAREST].tolist()
            details.append(TipDetails(alpha, beta, searched, [
                {"file": support.files[k], "class_name": support.classes[int(support.labels[k])],
                 "cosine": float(cosine[row, k]), "affinity": float(affinity[row, k])} for k in order], shots))
        return Scores(logits.float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        near = result.details.nearest[0]
        return f"nearest example: {near['file']} ({near['class_name']}, cos {near['cosine']:.2f})"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        how = "searched on the held-out examples" if d.searched else "as set"
        rows = "\n".join(f"- {md(x['file'])}: {md(x['class_name'])}, cosine {x['cosine']:.3f}, affinity "
                         f"{x['affinity']:.3f}" for x in d.nearest)
        shots = ", ".join(f"{md(c)} {n}" for c, n in d.shots.items())
        return (f"CLIP-80 plus a cache of {sum(d.shots.values())} labelled examples ({shots}); alpha {d.alpha:g}, "
                f"beta {d.beta:g} ({how}). It looks most like these examples:\n{rows}")

    def pictured(self, result: StrategyResult) -> list[str]:
        return [x["file"] for x in result.details.nearest] if result.details else []

    def panel(self, result: StrategyResult, context: PanelContext) -> Panel | None:
        if not result.details:
            return None
        return Panel(self.label, markdown=self.explain(result), html=nearest_html(result, context.thumbnails))

    def details_from_dict(self, d: dict[str, Any]) -> TipDetails:
        return TipDetails.from_dict(d)


TIP = TipStrategy()


def nearest_html(result: StrategyResult, thumbnails: dict[str, str]) -> str:
    """"It looks like these examples": the nearest support images, pictured."""
    figures = []
    for x in result.details.nearest:
        figures.append(kept_picture(thumbnails.get(x["file"], ""), x["file"],
                                    f'{html(x["class_name"])}<br>{html(x["file"])}<br>cos {x["cosine"]:.3f}'))
    return ('<div class="zs-caption">This image looks most like these labelled examples (the cache)</div>'
            f'<div class="zs-views">{"".join(figures)}</div>')
