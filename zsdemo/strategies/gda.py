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
official search starts). The weights, biases and alpha can be saved as a safetensors file and
loaded again (``--gda-save`` / ``--gda-load``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError
from ..core.markup import md
from ..data.support import SupportFeatures, validation_split
from ..engine import saved_heads
from ..engine.models import LoadedModel
from ..engine.results import StrategyResult
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import CLIP80
from .base import Batch, Request, Scores, Strategy, require_support
from .options import CLI_ONLY, option

ALPHA = 0.1
ALPHA_GRID = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)      # the official code's search
FORMAT = "zsdemo.gda/1"
WHAT = "the GDA classifier"


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
    load: str | None = option(None, "gda_load", "The GDA classifier to load",
                              "use a classifier saved with --gda-save instead of building one", kind="path",
                              where=CLI_ONLY, metavar="FILE")
    save: str | None = option(None, "gda_save", "Where to save the GDA classifier",
                              "save the built classifier and its weight (safetensors)", kind="path", where=CLI_ONLY,
                              metavar="FILE")

    def check(self) -> None:
        if self.save is not None:
            saved_heads.check_save(self.save, "the GDA classifier", FORMAT)      # now, not after the fit


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
class Built:
    """GDA's classifier and how it came to be: built from this request's support set, or loaded."""

    weights: torch.Tensor              # [D, C] float64
    bias: torch.Tensor                 # [C]
    alpha: float
    searched: bool
    classes: tuple[str, ...]
    shots: dict[str, int]
    loaded_from: str | None = None


def save(built: Built, path: str | Path, loaded: LoadedModel) -> None:
    meta = {"alpha": built.alpha, "searched": built.searched, "shots": built.shots}
    saved_heads.save_linear(path, built.weights, built.bias, built.classes, meta, WHAT, loaded, FORMAT)


def load(path: str | Path, loaded: LoadedModel, classes: tuple[str, ...]) -> Built:
    """A classifier saved by ``save``, checked against the model and the request's classes."""
    weights, bias, meta = saved_heads.read_linear(path, loaded, classes, FORMAT, WHAT, "--gda-save",
                                                  "build a new one (--support)")
    alpha, searched, shots = (saved_heads.field(meta, k, path, WHAT, kind) for k, kind in (
        ("alpha", "number"), ("searched", "flag"), ("shots", "counts")))
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 <= alpha <= 1e4:
        raise InputError(f"The GDA classifier {str(path)!r} has damaged metadata (alpha {str(alpha)[:20]}).")
    return Built(weights, bias, float(alpha), bool(searched), tuple(classes), shots, Path(path).name)


@dataclass
class GDADetails:
    alpha: float
    searched: bool
    shots: dict[str, int]
    clip_top1: str                 # CLIP-80's own top-1, before the Gaussian classifier is added
    loaded_from: str | None = None

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

    def least_shots(self, request: Request) -> int:
        return 2 if self.settings(request).val_fraction > 0 else 1

    def check(self, request: Request, n_images: int) -> None:
        if self.settings(request).load is None:
            require_support(request, "GDA", cli=" (--support FOLDER|ZIP), or a saved classifier (--gda-load FILE).")

    def built(self, batch: Batch) -> Built:
        """The request's classifier, once per request: loaded, or built (the weight searched on a
        held-out share first when asked, then W and b from every example)."""
        settings: GDASettings = self.settings(batch.request)

        def make() -> Built:
            if settings.load is not None:
                return load(settings.load, batch.run.loaded, batch.classnames)
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
            found = Built(*fit(support), alpha, searched, support.classes, support.shots())
            if settings.save is not None:
                save(found, settings.save, batch.run.loaded)
            return found
        return batch.run.once("gda.classifier", make)

    def score(self, batch: Batch) -> Scores:
        b = self.built(batch)
        saved_heads.check_width(b.weights, batch.features, WHAT)
        clip_logits = batch.logits(CLIP80)
        gda = (batch.features.double().cpu() @ b.weights + b.bias).float().to(clip_logits.device)
        details = [GDADetails(b.alpha, b.searched, b.shots, batch.classnames[int(clip_logits[row].argmax())],
                              b.loaded_from) for row in range(len(batch))]
        return Scores((clip_logits + b.alpha * gda).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        return f"alpha {result.details.alpha:g}; CLIP-80 alone: {result.details.clip_top1}"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        shots = ", ".join(f"{md(c)} {n}" for c, n in d.shots.items())
        how = "searched on the held-out examples" if d.searched else "as set"
        where = f" (loaded from {md(d.loaded_from)})" if d.loaded_from else ""
        return (f"CLIP-80 plus a Gaussian classifier{where} of {sum(d.shots.values())} labelled examples ({shots}): "
                "each "
                f"class's mean feature and one covariance shared by all, turned into weights by Bayes' rule; "
                f"weight alpha {d.alpha:g} ({how}). CLIP-80 alone would say {md(d.clip_top1)}.")

    def details_from_dict(self, d: dict[str, Any]) -> GDADetails:
        return GDADetails.from_dict(d)


GDA = GDAStrategy()
