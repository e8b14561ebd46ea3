"""Prompt strategies and their class vectors (SPEC §1).

A class vector is normalise(mean over templates of normalise(encode(template(class)))):
averaging in embedding space means any number of templates costs one matrix product per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from . import templates as T
from .errors import InputError
from .models import LoadedModel
from .text import TextFeatureCache, encode_prompts


@dataclass(frozen=True)
class StrategyInfo:
    id: str
    label: str
    description: str
    # The template set; None for "custom", whose templates come with the request.
    templates: tuple[str, ...] | None = None
    # "templates": a classifier from a template set (SPEC §1); other kinds are methods of their
    # own module: "hierarchy" (hierarchy.py, SPEC §4), "tpt" (tpt.py, SPEC §5).
    kind: str = "templates"


STRATEGIES: dict[str, StrategyInfo] = {
    s.id: s
    for s in (
        StrategyInfo("name", "Name only", "the bare class name, no template (the papers' base predictor)",
                     T.NAME_ONLY),
        StrategyInfo("photo", "Single template", "one prompt per class: 'a photo of a {}.'", T.SINGLE),
        StrategyInfo("custom", "Custom templates", "your own templates, averaged in embedding space"),
        StrategyInfo("clip7", "CLIP-7 ensemble", "the 7 templates CLIP chose by forward selection, averaged",
                     T.CLIP7),
        StrategyInfo("clip80", "CLIP-80 ensemble", "CLIP's 80 ImageNet templates, averaged", T.CLIP80),
        StrategyInfo("hierarchy", "WordNet re-ranking",
                     "uncertain images: re-rank the top 5 with '{class} which is a kind of {parent}' "
                     "and the children's names (Ge et al.)", kind="hierarchy"),
        StrategyInfo("hierarchy80", "WordNet re-ranking + CLIP-80",
                     "the same phrases, each in all 80 templates; confident images keep CLIP-80",
                     kind="hierarchy"),
        StrategyInfo("tpt", "TPT (test-time prompt tuning)",
                     "tunes the 4 words of 'a photo of a {}.' on 64 views of each image, then predicts "
                     "(Shu et al.)", kind="tpt"),
    )
}
ALL = "all"


def parse_strategies(value: str | Sequence[str] | None, has_custom_templates: bool) -> tuple[str, ...]:
    """Strategy ids from ``"name,clip80"`` or a list; ``all`` picks every available one.

    ``custom`` is available only when templates were given; asking for it without templates is
    an error, while ``all`` simply leaves it out.
    """
    if value is None:
        items = ["name", "photo", "clip80"]
    elif isinstance(value, str):
        items = [v.strip().lower() for v in value.replace("\n", ",").split(",")]
    else:
        items = [str(v).strip().lower() for v in value]
    items = [v for v in items if v]
    if not items:
        raise InputError("No strategy selected: choose at least one of " + ", ".join(STRATEGIES) + ".")
    chosen: list[str] = []
    for item in items:
        if item == ALL:
            expanded = [s for s in STRATEGIES if s != "custom" or has_custom_templates]
        elif item in STRATEGIES:
            expanded = [item]
        else:
            raise InputError(
                f"Unknown strategy {item!r}. Choose from: {', '.join(STRATEGIES)}, or '{ALL}'."
            )
        chosen.extend(s for s in expanded if s not in chosen)
    if "custom" in chosen and not has_custom_templates:
        raise InputError(
            "The 'custom' strategy needs templates: give at least one, each with one '{}' "
            "(CLI: --templates 'a photo of a {}.')."
        )
    return tuple(chosen)


def is_template_strategy(strategy: str) -> bool:
    return STRATEGIES[strategy].kind == "templates"


def strategy_templates(strategy: str, custom_templates: tuple[str, ...]) -> tuple[str, ...]:
    """The templates of a template strategy; () for the method strategies."""
    info = STRATEGIES[strategy]
    if info.kind != "templates":
        return ()
    return info.templates if info.templates is not None else custom_templates


def template_features(
    loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[str], cache: TextFeatureCache | None,
) -> torch.Tensor:
    """Unit features of every (class, template) prompt, [C, T, D] (float32, CPU)."""
    prompts = [T.fill(t, c) for c in classnames for t in templates]
    return encode_prompts(loaded, prompts, cache).view(len(classnames), len(templates), -1)


def class_vectors(
    loaded: LoadedModel,
    classnames: Sequence[str],
    templates: Sequence[str],
    cache: TextFeatureCache | None = None,
) -> torch.Tensor:
    """Unit class vectors [C, D] (float32, CPU): per-template features averaged per class.

    The returned tensor may be shared through the cache: treat it as read-only.
    """
    if not templates:
        raise InputError("A template strategy needs at least one template.")
    key = (loaded.identity, tuple(templates), tuple(classnames))
    classifiers = cache.classifiers if cache is not None else None
    if classifiers is not None and (hit := classifiers.get(key)) is not None:
        return hit
    vectors = F.normalize(template_features(loaded, classnames, templates, cache).mean(dim=1), dim=-1)
    if classifiers is not None:
        classifiers.put(key, vectors)
    return vectors
