"""The linear probe: the CLIP paper's few-shot baseline (Radford et al., 2021, §3.2 and Appendix A.3;
docs/METHODS.md §10).

A multinomial logistic regression on the support set's unit image features, fitted with L-BFGS,
minimising scikit-learn's objective for ``LogisticRegression(C=c)`` (what the paper used):

    ||W||^2 / 2  +  c x sum over examples of cross-entropy(x W + b, y)      (b not penalised)

The regularisation strength is chosen as the paper does (Appendix A.3), scored on a held-out
share of the support set: c = 10^-6, 10^-4, ..., 10^6, then the interval around the best is halved
until it reaches 8 steps per decade (4 halvings, 2 fits each: 15 fits in all); the final model
is fitted on every example. With a single example per class
nothing can be held out, and c is ``probe_c`` (0.316, the value of the paper's example code).
The fit starts from zeros in float64, so the same support set gives the same probe. It is written
here rather than taken from scikit-learn (the tests' oracle for it) because it runs on the model's
device in torch, the 15 fits of the search included, where scikit-learn would copy to the CPU. A fitted
probe can be saved as a safetensors file and loaded again (``--probe-save`` / ``--probe-load``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.markup import md
from ..data.support import SupportFeatures, validation_split
from ..engine import saved_heads
from ..engine.models import LoadedModel
from ..engine.results import StrategyResult
from .base import Batch, Request, Scores, Strategy, require_support
from .options import CLI_ONLY, option

C_DEFAULT = 0.316
DECADES = (-6.0, 6.0)
COARSE_STEP = 2.0                 # the paper's first grid: every second decade
FINEST_STEP = 1 / 8               # its resolution: 8 steps per decade
MAX_ITERATIONS = 1000
FORMAT = "zsdemo.linear-probe/1"
WHAT = "the linear probe"


@dataclass(frozen=True)
class ProbeSettings:
    c: float = option(C_DEFAULT, "probe_c", "The probe's C",
                      "inverse regularisation strength, used when nothing is held out for the sweep",
                      low=1e-6, high=1e6, info="inverse regularisation (used when the sweep cannot run)")
    val_fraction: float = option(
        0.25, "probe_val_fraction", "The probe's validation fraction",
        "share of each class's examples held out to sweep C (0: use C as given)", low=0.0, high=0.9,
        control="slider", step=0.05, metavar="F", info="share of the examples held out to choose C")
    load: str | None = option(None, "probe_load", "The linear probe to load",
                              "use a probe saved with --probe-save instead of fitting one", kind="path",
                              where=CLI_ONLY, metavar="FILE")
    save: str | None = option(None, "probe_save", "Where to save the linear probe",
                              "save the fitted probe (safetensors)", kind="path", where=CLI_ONLY, metavar="FILE")

    def check(self) -> None:
        if self.save is not None:
            saved_heads.check_save(self.save, "the linear probe", FORMAT)      # now, not after the fit


def fit(features: torch.Tensor, labels: torch.Tensor, classes: int, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [D, C], b [C]) minimising ||W||^2 / 2 + c x the summed cross-entropy, by L-BFGS."""
    x = features.double().cpu()
    targets = torch.nn.functional.one_hot(labels.cpu(), classes).double()
    weights = torch.zeros(x.shape[1], classes, dtype=torch.float64)
    bias = torch.zeros(classes, dtype=torch.float64)
    optimiser = torch.optim.LBFGS([weights, bias], lr=1, max_iter=MAX_ITERATIONS, tolerance_grad=1e-10,
                                  tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        # The gradient written out (softmax minus one-hot): a third faster than autograd on these
        # small problems, where each of up to 1000 iterations costs little more than its overhead.
        log_p = torch.log_softmax(x @ weights + bias, dim=1)
        residual = c * (log_p.exp() - targets)
        weights.grad = weights + x.T @ residual
        bias.grad = residual.sum(dim=0)
        return 0.5 * (weights * weights).sum() - c * (log_p * targets).sum()

    with torch.no_grad():
        optimiser.step(objective)
    return weights, bias


def accuracy(features: torch.Tensor, labels: torch.Tensor, probe: tuple[torch.Tensor, torch.Tensor]) -> float:
    weights, bias = probe
    return float(((features.double().cpu() @ weights + bias).argmax(dim=-1) == labels.cpu()).float().mean())


def sweep(train: SupportFeatures, val: SupportFeatures) -> float:
    """The CLIP paper's parametric binary search of log10(c): 10^-6, 10^-4, ..., 10^6, then the
    interval around the best halved until it reaches 8 steps per decade (ties keep the smaller
    c: more regularisation). 15 fits."""
    classes = len(train.classes)
    scores: dict[float, float] = {}

    def score(exponent: float) -> float:
        if exponent not in scores:
            scores[exponent] = accuracy(val.features, val.labels, fit(train.features, train.labels, classes,
                                                                      10 ** exponent))
        return scores[exponent]

    step = COARSE_STEP
    grid = [DECADES[0] + step * k for k in range(int((DECADES[1] - DECADES[0]) / step) + 1)]
    best = max(grid, key=lambda e: (score(e), -e))
    while step > FINEST_STEP:
        step /= 2
        around = [e for e in (best - step, best, best + step) if DECADES[0] <= e <= DECADES[1]]
        best = max(around, key=lambda e: (score(e), -e))
    return 10 ** best


@dataclass
class Fitted:
    """A probe and how it came to be: fitted on this request's support set, or loaded."""

    weights: torch.Tensor              # [D, C] float64
    bias: torch.Tensor                 # [C]
    c: float
    searched: bool
    classes: tuple[str, ...]
    shots: dict[str, int]
    train_accuracy: float
    loaded_from: str | None = None


def save(fitted: Fitted, path: str | Path, loaded: LoadedModel) -> None:
    meta = {"c": fitted.c, "searched": fitted.searched, "shots": fitted.shots, "train_accuracy": fitted.train_accuracy}
    saved_heads.save_linear(path, fitted.weights, fitted.bias, fitted.classes, meta, WHAT, loaded, FORMAT)


def load(path: str | Path, loaded: LoadedModel, classes: tuple[str, ...]) -> Fitted:
    """A probe saved by ``save``, checked against the model and the request's classes."""
    weights, bias, meta = saved_heads.read_linear(path, loaded, classes, FORMAT, WHAT, "--probe-save",
                                                  "fit a new one (--support)")
    c, searched, shots, train = (saved_heads.field(meta, k, path, WHAT, kind) for k, kind in (
        ("c", "number"), ("searched", "flag"), ("shots", "counts"), ("train_accuracy", "number")))
    return Fitted(weights, bias, c, searched, tuple(classes), shots, train, Path(path).name)


@dataclass
class ProbeDetails:
    c: float
    searched: bool
    shots: dict[str, int]
    train_accuracy: float
    loaded_from: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProbeDetails":
        return cls(**d)


class LinearProbeStrategy(Strategy):
    id = "linear-probe"
    label = "Linear probe (few-shot)"
    description = ("few-shot: a logistic regression on your labelled examples' image features, its "
                   "regularisation swept on a held-out share (the CLIP paper's baseline)")
    needs_support = True
    options = ProbeSettings
    options_id = "probe"

    def check(self, request: Request, n_images: int) -> None:
        if self.settings(request).load is None:
            require_support(request, "The linear probe", cli=" (--support FOLDER|ZIP), or a saved probe "
                                                             "(--probe-load FILE).")

    def fitted(self, batch: Batch) -> Fitted:
        """The request's probe, loaded or fitted (its C swept first), once per request."""
        settings: ProbeSettings = self.settings(batch.request)

        def make() -> Fitted:
            if settings.load is not None:
                return load(settings.load, batch.run.loaded, batch.classnames)
            support = batch.run.support
            classes = len(support.classes)
            c, searched = settings.c, False
            if settings.val_fraction > 0 and any(n >= 2 for n in support.shots().values()):
                train, val = validation_split(support, settings.val_fraction)
                c, searched = sweep(support.subset(train), support.subset(val)), True
            probe = fit(support.features, support.labels, classes, c)
            found = Fitted(*probe, c, searched, support.classes, support.shots(),
                           accuracy(support.features, support.labels, probe))
            if settings.save is not None:
                save(found, settings.save, batch.run.loaded)
            return found
        return batch.run.once("linear-probe", make)

    def score(self, batch: Batch) -> Scores:
        f = self.fitted(batch)
        saved_heads.check_width(f.weights, batch.features, WHAT)
        logits = (batch.features.double().cpu() @ f.weights + f.bias).float()
        details = ProbeDetails(f.c, f.searched, f.shots, f.train_accuracy, f.loaded_from)
        return Scores(logits, [details] * len(batch))

    def note(self, result: StrategyResult) -> str:
        return f"C {result.details.c:.3g}" + (" (swept)" if result.details.searched else "")

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        shots = ", ".join(f"{md(c)} {n}" for c, n in d.shots.items())
        how = "swept on the held-out examples, as the CLIP paper does" if d.searched else "as set"
        where = f", loaded from {md(d.loaded_from)}" if d.loaded_from else ""
        return (f"A logistic regression{where} on the image features of {sum(d.shots.values())} labelled examples "
                f"({shots}), no text at all; C = {d.c:.3g} ({how}). It gets {100 * d.train_accuracy:.0f}% of its "
                "own examples right.")

    def details_from_dict(self, d: dict[str, Any]) -> ProbeDetails:
        return ProbeDetails.from_dict(d)


LINEAR_PROBE = LinearProbeStrategy()
