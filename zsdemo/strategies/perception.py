"""PerceptionCLIP (An et al., ICLR 2024; docs/METHODS.md §6): classify by first inferring the
image's contextual attributes.

Every combination z of attribute values gives the prompt ``a photo of a {y}, {z1}, {z2}.``
(an empty value adds nothing), and f(y, z; x) = logit scale x cos(image, prompt). Step 1 infers
the attributes: p(z|x) is proportional to sum_y exp(f(y, z; x) / T). Step 2 classifies under
them: p(y|x) = sum_z p(z|x) softmax_y f(y, z; x). The strategy's logits are log p(y|x).

The default attributes are the paper's ImageNet recipe, condition and quality (T = 3), with one
description per value, the first of the official code's list for that value. A user may give
others (``parse_settings``): ``orientation: -, upside-down, rotated`` lines, "-" adding nothing.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..core.errors import InputError
from ..core.jsontext import parse_json
from ..core.markup import md, percent
from ..engine.zero_shot_classifier import template_features
from ..engine.results import StrategyResult
from .base import Batch, Request, Scores, Strategy
from .options import option


TEMPERATURE = 3.0
MAIN = "a photo of a {}"
# attribute -> value -> the words added to the prompt ("" adds nothing)
ATTRIBUTES: dict[str, dict[str, str]] = {
    "condition": {"normal": "", "cool": "cool", "nice": "nice", "weird": "weird"},
    "quality": {"normal": "", "good": "good", "bad": "bad", "low resolution": "low resolution",
                "pixelated": "pixelated", "jpeg corrupted": "jpeg corrupted", "blurry": "blurry",
                "clean": "clean", "dirty": "dirty"},
}


MAX_ATTRIBUTES = 4
MAX_VALUES = 12                  # per attribute
MAX_COMBINATIONS = 256           # prompts per class: the product of the attributes' value counts
MAX_WORDS = 60                   # characters of one value's words
TEMPERATURE_RANGE = (0.05, 100.0)
NOTHING = ("-", "")              # a value that adds nothing to the prompt, named "normal"


def attributes_text(attributes: Mapping[str, Mapping[str, str]] = ATTRIBUTES) -> str:
    """The text form ``parse_attributes`` reads (the page's box starts with the defaults)."""
    return "\n".join(f"{a}: " + ", ".join(w or "-" for w in values.values()) for a, values in attributes.items())


def parse_attributes(text: str | Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Contextual attributes from the user: lines ``attribute: value, value, ...`` ("-" for the
    value that adds nothing), or JSON ``{attribute: [words, ...]}`` / ``{attribute: {value: words}}``.
    Empty or None gives the paper's ImageNet attributes."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {a: dict(v) for a, v in ATTRIBUTES.items()}
    if isinstance(text, str) and text.lstrip().startswith("{"):
        text = parse_json(text, "The attributes")
    if isinstance(text, Mapping):
        raw = list(text.items())
    elif isinstance(text, str):
        raw = []
        for line in re.split(r"[\n;]", text):
            if not line.strip():
                continue
            name, colon, values = line.partition(":")
            if not colon:
                raise InputError(f"Attribute line {line.strip()[:60]!r} has no ':'. Write 'attribute: value, value', "
                                 "for example 'orientation: -, upside-down, rotated' ('-' adds nothing).")
            raw.append((name, [v for v in values.split(",")]))
    else:
        raise InputError(f"attributes must be text or a JSON object, not {type(text).__name__}.")
    if len(raw) > MAX_ATTRIBUTES:
        raise InputError(f"{len(raw)} attributes given; at most {MAX_ATTRIBUTES} are allowed.")
    out: dict[str, dict[str, str]] = {}
    for name, values in raw:
        if not isinstance(name, str) or not name.strip():
            raise InputError("An attribute has no name: write 'name: value, value'.")
        name = " ".join(name.split())[:MAX_WORDS]
        if isinstance(values, Mapping):
            pairs = list(values.items())
        elif isinstance(values, (list, tuple)):
            pairs = [(v, v) for v in values]
        else:
            raise InputError(f"Attribute {name!r}: its values must be a list of words, not {type(values).__name__}.")
        parsed: dict[str, str] = {}
        for key, words in pairs:
            if not isinstance(key, str) or not isinstance(words, str):
                raise InputError(f"Attribute {name!r}: every value must be text.")
            words = " ".join(words.split())
            words = "" if words in NOTHING else words
            key = " ".join(key.split())
            key = "normal" if key in NOTHING else key
            if len(words) > MAX_WORDS or len(key) > MAX_WORDS:
                raise InputError(f"Attribute {name!r}: a value is longer than {MAX_WORDS} characters.")
            if "{" in words or "}" in words:
                raise InputError(f"Attribute {name!r}: a value may not contain braces.")
            parsed.setdefault(key, words)
        if len(parsed) < 2:
            raise InputError(f"Attribute {name!r} needs at least two values (one may be '-', which adds nothing): "
                             "with one, p(z|x) is 1 and the attribute changes nothing.")
        if len(parsed) > MAX_VALUES:
            raise InputError(f"Attribute {name!r} has {len(parsed)} values; at most {MAX_VALUES} are allowed.")
        if name in out:
            raise InputError(f"Attribute {name!r} is given twice.")
        out[name] = parsed
    if not out:
        raise InputError("No attribute given: write 'attribute: value, value' lines, or leave the box empty for the "
                         "paper's (condition and quality).")
    combos = math.prod(len(v) for v in out.values())
    if combos > MAX_COMBINATIONS:
        raise InputError(f"The attributes make {combos:,} combinations (the product of their value counts); at most "
                         f"{MAX_COMBINATIONS} are allowed, each is a prompt per class. Use fewer values.")
    return out


@dataclass(frozen=True)
class PerceptionSettings:
    attributes: Mapping[str, Mapping[str, str]] = option(
        ATTRIBUTES, "attributes", "PerceptionCLIP attributes",
        "contextual attributes, 'name: value, value' separated by ';' or new lines, '-' for the value that adds "
        "nothing, e.g. 'orientation: -, upside-down, rotated' (default: the paper's ImageNet condition and quality)",
        kind="text", parse=lambda text: parse_attributes(text), shown=lambda a: attributes_text(a), lines=2,
        metavar="TEXT", info="'attribute: value, value' per line ('-' adds nothing)")
    temperature: float = option(
        TEMPERATURE, "perception_temperature", "PerceptionCLIP temperature",
        "the temperature of step 1, p(z|x); the default is the paper's", low=TEMPERATURE_RANGE[0], high=TEMPERATURE_RANGE[1],
        metavar="T", info="the temperature of p(z|x)")


def combinations(attributes: Mapping[str, Mapping[str, str]] = ATTRIBUTES) -> list[tuple[str, ...]]:
    """Every combination of attribute values (value names), in a fixed order."""
    return list(itertools.product(*[list(values) for values in attributes.values()]))


def prompt_template(values: tuple[str, ...], attributes: Mapping[str, Mapping[str, str]] = ATTRIBUTES) -> str:
    words = [attributes[a][v] for a, v in zip(attributes, values)]
    return MAIN + "".join(f", {w}" for w in words if w) + "."


def templates(attributes: Mapping[str, Mapping[str, str]] = ATTRIBUTES) -> tuple[str, ...]:
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
    options = PerceptionSettings

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        return templates(self.settings(request).attributes)

    def score(self, batch: Batch) -> Scores:
        run, names = batch.run, batch.classnames
        settings: PerceptionSettings = self.settings(batch.request)
        attributes, temperature = settings.attributes, settings.temperature
        combos, prompts = combinations(attributes), templates(attributes)
        feats = template_features(run.loaded, names, prompts, run.cache).to(batch.features.device)    # [C, Z, D]
        logits = run.loaded.logit_scale * torch.einsum("nd,czd->ncz", batch.features.float(), feats)  # [N, C, Z]
        pz, log_py = two_step(logits.double(), temperature)
        details = []
        for row in range(len(batch)):
            marginals = {a: {v: 0.0 for v in values} for a, values in attributes.items()}
            for k, z in enumerate(combos):
                for a, v in zip(attributes, z):
                    marginals[a][v] += float(pz[row, k])
            best = int(pz[row].argmax())
            details.append(PerceptionDetails(marginals, dict(zip(attributes, combos[best])),
                                             float(pz[row, best]), temperature))
        return Scores(log_py.float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        d = result.details
        return "looks " + ", ".join(f"{v} ({100 * d.attributes[a][v]:.0f}%)" for a, v in d.most_likely.items())

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        lines = [f"Step 1, what the image looks like: p(z|x) at temperature {d.temperature:g} "
                 f"(likeliest combination {percent(d.most_likely_prob)}):"]
        for attribute, values in d.attributes.items():
            ranked = sorted(values.items(), key=lambda kv: -kv[1])
            shown = [f"{md(v)} {percent(p)}" for v, p in ranked]
            lines.append(f"- {md(attribute)}: **{shown[0]}**" + "".join(f", {x}" for x in shown[1:]))
        lines.append("\nStep 2 classifies under every combination, weighted by p(z|x).")
        return "\n".join(lines)

    def details_from_dict(self, d: dict[str, Any]) -> PerceptionDetails:
        return PerceptionDetails.from_dict(d)


PERCEPTION = PerceptionStrategy()
