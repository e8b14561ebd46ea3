"""TIP-X, training-free use of a support set (Udandarao et al., ICCV 2023, "SuS-X"; official code
vishaal27/SuS-X, ``tipx.py``; docs/METHODS.md §8).

For a unit image feature f, the support features K (labelled examples, or the ones SuS found in the
user's own photos, ``data/pool.py``), their one-hot labels V, the zero-shot class weights W
(CLIP-80) and the model's logit scale s:

    p = softmax(f W^T / tau),  q_j = softmax(K_j W^T / tau)       (tau = 0.5)
    d_j = KL(p || q_j),        a = f K^T
    logits = s f W^T + gamma (-rescale(d, a)) V + alpha exp(-beta (1 - a)) V

where rescale maps d min-max into the range [min a, max a] of the image's own affinities: per
image, so that an image's answer never depends on the other images sent with it (the official code
rescales over the whole test matrix, against the validation set's affinities). alpha, beta and
gamma are searched on a held-out share of the support set over the official grid, unless given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..core import arguments
from ..core.errors import InputError
from ..core.markup import md
from ..data.support import SupportFeatures, validation_split
from ..engine.results import StrategyResult
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import CLIP80
from .base import Batch, Request, Scores, Strategy, require_support
from .options import option

TEMPERATURE = 0.5
# The official grid (tipx.py's hparam_search): alpha 20 steps from 0.1 towards 50, beta 200 steps
# from 1 towards 50, gamma 50 steps from 0.1 towards 30; tried alpha, then beta, then gamma, and
# the first best kept.
ALPHA_GRID = tuple(0.1 + k * (50 - 0.1) / 20 for k in range(20))
BETA_GRID = tuple(1 + k * (50 - 1) / 200 for k in range(200))
GAMMA_GRID = tuple(0.1 + k * (30 - 0.1) / 50 for k in range(50))
HELD_OUT = 0.25
SHOWN = 3                 # top classes whose three terms the panel shows


def searched_or(label: str, low: float = 0.0, high: float = 100.0) -> Callable[[Any], float | None]:
    """A setting that may be left empty (None: searched): a number in [low, high], or blank."""
    def parse(value: Any) -> float | None:
        if isinstance(value, str) and not value.strip():
            return None
        number = arguments.number(value, label, 0.0)
        if not low <= number <= high:
            raise InputError(f"{label} must be a number from {low:g} to {high:g}, or empty to search it "
                             f"(got {number!r}).")
        return number
    return parse


@dataclass(frozen=True)
class TipXSettings:
    # A page's empty box is "searched": a text box (a number box sends 0 when left empty).
    alpha: float | None = option(None, "tipx_alpha", "TIP-X's alpha", "weight of the affinity cache, 0 to 100 (empty: "
                                 "searched on a held-out share of the support set)", low=0.0, high=100.0,
                                 parse=searched_or("TIP-X's alpha"), control="textbox", metavar="A",
                                 info="the cache's weight (empty: searched)", late=True)
    beta: float | None = option(None, "tipx_beta", "TIP-X's beta", "sharpness of the affinities, 0 to 100 (empty: "
                                "searched)", low=0.0, high=100.0, parse=searched_or("TIP-X's beta"), control="textbox",
                                metavar="B", info="the affinities' sharpness (empty: searched)", late=True)
    gamma: float | None = option(None, "tipx_gamma", "TIP-X's gamma", "weight of the KL term, 0 to 100 (empty: "
                                 "searched)", low=0.0, high=100.0, parse=searched_or("TIP-X's gamma"),
                                 control="textbox", metavar="G", info="the KL term's weight (empty: searched)",
                                 late=True)
    temperature: float = option(TEMPERATURE, "tipx_temperature", "TIP-X's temperature",
                                "tau of the class distributions the KL divergence compares", low=0.01, high=10.0,
                                above_low=True, info="tau of the distributions compared", late=True)


def distributions(features: torch.Tensor, weights: torch.Tensor, tau: float) -> torch.Tensor:
    """softmax(x W^T / tau): each feature's distribution over the classes [N, C], in float64: the
    divergences between near-alike distributions are differences of close numbers, and the
    rescaling below divides by their spread."""
    return torch.softmax(features.double() @ weights.double().T / tau, dim=-1)


def kl_divergences(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p_i || q_j) for every test i and support j [N, M], in one product."""
    return (p * p.log()).sum(dim=-1, keepdim=True) - p @ q.log().T


def rescaled(d: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Each row of d min-max rescaled into its row of a's range [min a, max a] (a row whose d
    is constant goes to its min a)."""
    low, high = a.min(dim=1, keepdim=True).values, a.max(dim=1, keepdim=True).values
    d_low, d_high = d.min(dim=1, keepdim=True).values, d.max(dim=1, keepdim=True).values
    span = (d_high - d_low)
    unit = torch.where(span > 0, (d - d_low) / span.clamp(min=1e-12), torch.zeros_like(d))
    return unit * (high - low) + low


@dataclass(frozen=True)
class Terms:
    """The three parts of TIP-X's logits for a batch, each [N, C], before their weights."""

    zero_shot: torch.Tensor         # s f W^T
    kl: torch.Tensor                # (-rescale(d, a)) V
    affinity: torch.Tensor          # the cosines a [N, M], for the cache term at any beta


def terms(features: torch.Tensor, support: SupportFeatures, weights: torch.Tensor, logit_scale: float,
          tau: float) -> tuple[Terms, torch.Tensor]:
    """What the logits are made of, and the one-hot labels V [M, C]."""
    feats = features.float()
    keys = support.features.to(feats.device).float()
    values = support.one_hot().to(feats.device)
    a = feats @ keys.T
    d = kl_divergences(distributions(feats, weights, tau), distributions(keys, weights, tau))
    kl = (-rescaled(d, a.double()) @ values.double()).float()
    return Terms(logit_scale * feats @ weights.float().T, kl, a), values


def combine(t: Terms, values: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    return t.zero_shot + gamma * t.kl + alpha * torch.exp(-beta * (1 - t.affinity)) @ values


def search(t: Terms, values: torch.Tensor, labels: torch.Tensor, alphas: Sequence[float] = ALPHA_GRID,
           betas: Sequence[float] = BETA_GRID, gammas: Sequence[float] = GAMMA_GRID) -> tuple[float, float, float, float]:
    """(alpha, beta, gamma, accuracy) best on held-out examples, the first best in the official
    order (alpha, then beta, then gamma); every gamma of a pair at once."""
    best = (alphas[0], betas[0], gammas[0], -1.0)
    weights = torch.tensor(list(gammas), device=t.kl.device, dtype=t.kl.dtype)[:, None, None]
    with_kl = t.zero_shot[None] + weights * t.kl[None]                     # [G, N, C]
    caches = [torch.exp(-beta * (1 - t.affinity)) @ values for beta in betas]
    for alpha in alphas:
        for beta, cache in zip(betas, caches):
            right = ((with_kl + alpha * cache[None]).argmax(dim=-1) == labels[None]).float().mean(dim=1)   # [G]
            k = int(right.argmax())              # the first best gamma, as the official loop keeps it
            if float(right[k]) > best[3]:
                best = (alpha, beta, gammas[k], float(right[k]))
    return best


@dataclass
class TipXDetails:
    """Why: the settings used, and the three terms of each top class (their values and shares)."""

    alpha: float
    beta: float
    gamma: float
    searched: list[str]                  # the settings that came from the held-out search
    top: list[dict[str, Any]]            # {"class_name", "zero_shot", "kl", "cache", "total"}
    shots: dict[str, int]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TipXDetails":
        return cls(**d)


class TipXStrategy(Strategy):
    id = "tipx"
    label = "TIP-X (SuS-X)"
    description = ("few-shot or name-only, training-free: CLIP-80 plus the support set's affinities and how alike "
                   "the image's and each example's class distributions are, by KL divergence (Udandarao et al.)")
    needs_support = True
    scaled_cosine_logits = False
    options = TipXSettings

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        return (CLIP80,)

    def least_shots(self, request: Request) -> int:
        return 2 if self._searched(request) else 1

    def _searched(self, request: Request) -> list[str]:
        s = self.settings(request)
        return [name for name in ("alpha", "beta", "gamma") if getattr(s, name) is None]

    def check(self, request: Request, n_images: int) -> None:
        require_support(request, "TIP-X")
        searched = self._searched(request)
        if not searched:
            return
        fewest = request.sus_k if request.pool is not None else min(
            (n for n in request.support.shots().values() if n), default=0)
        if fewest < 2:
            raise InputError(f"TIP-X searches {', '.join(searched)} on a held-out share of the examples, so it needs "
                             "at least 2 examples per class: give more, or set tipx_alpha, tipx_beta and tipx_gamma.",
                             cli=" (--sus-k 2 or more, or --tipx-alpha, --tipx-beta and --tipx-gamma).",
                             page=" (Examples found per class 2 or more, or TIP-X's alpha, beta and gamma).")

    def settings_for(self, batch: Batch) -> tuple[float, float, float, list[str]]:
        """(alpha, beta, gamma, searched): the request's, the others found on a held-out share
        of the support set (once per request; the final cache then holds every example)."""
        s, searched = self.settings(batch.request), self._searched(batch.request)
        if not searched:
            return s.alpha, s.beta, s.gamma, []

        def tuned() -> tuple[float, float, float, list[str]]:
            run, support = batch.run, batch.run.support
            train, val = validation_split(support, HELD_OUT)
            cache = support.subset(train)
            feats = support.features[val].to(batch.features.device)
            weights = class_vectors(run.loaded, batch.classnames, CLIP80, run.cache).to(feats.device)
            t, values = terms(feats, cache, weights, run.loaded.logit_scale, s.temperature)
            found = _pinned_search(t, values, support.labels[val].to(feats.device), s)
            return (*found, searched)
        return batch.run.once("tipx.search", tuned)

    def score(self, batch: Batch) -> Scores:
        run, support = batch.run, batch.run.support
        alpha, beta, gamma, searched = self.settings_for(batch)
        weights = class_vectors(run.loaded, batch.classnames, CLIP80, run.cache).to(batch.features.device)
        t, values = terms(batch.features, support, weights, run.loaded.logit_scale,
                          self.settings(batch.request).temperature)
        cache = alpha * torch.exp(-beta * (1 - t.affinity)) @ values
        logits = t.zero_shot + gamma * t.kl + cache
        shots = support.shots()
        details = []
        for row in range(len(batch)):
            top = torch.topk(logits[row], k=min(SHOWN, logits.shape[1])).indices.tolist()
            details.append(TipXDetails(alpha, beta, gamma, searched, [
                {"class_name": batch.classnames[c], "zero_shot": float(t.zero_shot[row, c]),
                 "kl": float(gamma * t.kl[row, c]), "cache": float(cache[row, c]), "total": float(logits[row, c])}
                for c in top], shots))
        return Scores(logits.float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        d = result.details
        return f"alpha {d.alpha:.3g}, beta {d.beta:.3g}, gamma {d.gamma:.3g}"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        how = (f"{', '.join(d.searched)} searched on a held-out quarter of the support set"
               if d.searched else "as set")
        rows = []
        for x in d.top:
            parts = (("zero-shot", x["zero_shot"]), ("KL", x["kl"]), ("cache", x["cache"]))
            scale = sum(abs(v) for _, v in parts) or 1.0
            rows.append(f"- **{md(x['class_name'])}** {x['total']:.2f} = "
                        + " + ".join(f"{name} {v:.2f} ({100 * abs(v) / scale:.0f}%)" for name, v in parts))
        shots = ", ".join(f"{md(c)} {n}" for c, n in d.shots.items())
        return (f"CLIP-80 (zero-shot), plus how alike the image's class distribution is to each example's (KL, "
                f"weight gamma {d.gamma:.3g}), plus the affinity cache (alpha {d.alpha:.3g}, beta {d.beta:.3g}); "
                f"{how}; {sum(d.shots.values())} examples ({shots}). Each top class's logit and the share of "
                f"each term:\n" + "\n".join(rows))

    def details_from_dict(self, d: dict[str, Any]) -> TipXDetails:
        return TipXDetails.from_dict(d)


def _pinned_search(t: Terms, values: torch.Tensor, labels: torch.Tensor,
                   given: TipXSettings) -> tuple[float, float, float]:
    """The grid search with what the user gave held fixed."""
    alpha, beta, gamma, _ = search(t, values, labels, _grid(given.alpha, ALPHA_GRID), _grid(given.beta, BETA_GRID),
                                   _grid(given.gamma, GAMMA_GRID))
    return alpha, beta, gamma


def _grid(value: float | None, grid: Sequence[float]) -> Sequence[float]:
    return grid if value is None else (value,)


TIPX = TipXStrategy()
