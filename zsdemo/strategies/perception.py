"""PerceptionCLIP (An et al., ICLR 2024; docs/METHODS.md §6): classify by first inferring the
image's contextual attributes.

Every combination z of attribute values gives the prompt ``a photo of a {y}, {z1}, {z2}.``
(an empty value adds nothing), and f(y, z; x) = logit scale x cos(image, prompt). Step 1 infers
the attributes: p(z|x) is proportional to sum_y exp(f(y, z; x) / T). Step 2 classifies under
them: p(y|x) = sum_z p(z|x) softmax_y f(y, z; x). The strategy's logits are log p(y|x).

The default attributes are the paper's ImageNet recipe, condition and quality (T = 3), with one
description per value, the first of the official code's list for that value.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..zero_shot_classifier import template_features
from .base import Batch, Scores, Strategy

if TYPE_CHECKING:
    from ..request import Request
    from ..results import StrategyResult

TEMPERATURE = 3.0
MAIN = "a photo of a {}"
# attribute -> value -> the words added to the prompt ("" adds nothing)
ATTRIBUTES: dict[str, dict[str, str]] = {
    "condition": {"normal": "", "cool": "cool", "nice": "nice", "weird": "weird"},
    "quality": {"normal": "", "good": "good", "bad": "bad", "low resolution": "low resolution",
                "pixelated": "pixelated", "jpeg corrupted": "jpeg corrupted", "blurry": "blurry",
                "clean": "clean", "dirty": "dirty"},
}


def combinations(attributes: dict[str, dict[str, str]] = ATTRIBUTES) -> list[tuple[str, ...]]:
    """Every combination of attribute values (value names), in a fixed order."""
    return list(itertools.product(*[list(values) for values in attributes.values()]))


def prompt_template(values: tuple[str, ...], attributes: dict[str, dict[str, str]] = ATTRIBUTES) -> str:
    words = [attributes[a][v] for a, v in zip(attributes, values)]
    return MAIN + "".join(f", {w}" for w in words if w) + "."


def templates(attributes: dict[str, dict[str, str]] = ATTRIBUTES) -> tuple[str, ...]:
    return tuple(prompt_template(z, attributes) for z in combinations(attributes))


def two_step(logits: torch.Tensor, temperature: float = TEMPERATURE) -> tuple[torch.Tensor, torch.Tensor]:
    """From f(y, z; x) [N, C, Z]: p(z|x) [N, Z] and p(y|x) [N, C] (in log space, for stability)."""
    log_pz = torch.logsumexp(logits / temperature, dim=1)                 # log sum_y exp(f / T)
    log_pz = log_pz - torch.logsumexp(log_pz, dim=1, keepdim=True)
    log_py_given_z = logits.log_softmax(dim=1)                            # softmax over classes
    log_py = torch.logsumexp(log_py_given_z + log_pz.unsqueeze(1), dim=2)
    return log_pz.exp(), log_py


@dataclass
class PerceptionDetails:
    """What the image looks like to the model: p(z|x) per attribute value (marginals), the most
    likely combination, and the temperature."""

    attributes: dict[str, dict[str, float]]      # attribute -> value -> p(value | x)
    most_likely: dict[str, str]                  # attribute -> value, of the likeliest combination
    most_likely_prob: float
    temperature: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PerceptionDetails":
        return cls(**d)


class PerceptionStrategy(Strategy):
    id = "perception"
    label = "PerceptionCLIP (contextual attributes)"
    description = ("infers the image's condition and quality first, then classifies under them "
                   "(An et al.; T = 3)")

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        return templates()

    def score(self, batch: Batch) -> Scores:
        run, names = batch.run, batch.classnames
        combos, prompts = combinations(), templates()
        feats = template_features(run.loaded, names, prompts, run.cache).to(batch.features.device)    # [C, Z, D]
        logits = run.loaded.logit_scale * torch.einsum("nd,czd->ncz", batch.features.float(), feats)  # [N, C, Z]
        pz, log_py = two_step(logits.double())
        details = []
        for row in range(len(batch)):
            marginals = {a: {v: 0.0 for v in values} for a, values in ATTRIBUTES.items()}
            for k, z in enumerate(combos):
                for a, v in zip(ATTRIBUTES, z):
                    marginals[a][v] += float(pz[row, k])
            best = int(pz[row].argmax())
            details.append(PerceptionDetails(marginals, dict(zip(ATTRIBUTES, combos[best])),
                                             float(pz[row, best]), TEMPERATURE))
        return Scores(log_py.float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        d = result.details
        return "looks " + ", ".join(f"{v} ({100 * d.attributes[a][v]:.0f}%)" for a, v in d.most_likely.items())

    def details_from_dict(self, d: dict[str, Any]) -> PerceptionDetails:
        return PerceptionDetails.from_dict(d)


PERCEPTION = PerceptionStrategy()
