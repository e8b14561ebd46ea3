"""Confidence by self-consistency (Ge et al., CVPR 2023; docs/METHODS.md §2).

Base prediction: the name-only top-1 on the original image. An image is *low-confidence* when
- O_T: the top-1 of four prompt groups (name only, CLIP-80 templates 1-40, 41-80, all 80) differ, or
- O_B: the name-only top-1 of the horizontally flipped image differs from the base prediction.
Continuous scores: S_T, the share of the 80 single-template classifiers that agree with the base
prediction; S_B, the share of the image views (``VIEWS``) that agree.

Views are deterministic functions of the decoded image, applied before the model's preprocess
so crops keep the original resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..core.errors import InputError
from .models import LoadedModel
from ..prompts.templates import CLIP80, NAME_ONLY
from .text import TextFeatureCache
from .views import DEFAULT_VIEWS, FLIP_VIEW, make_view, parse_views
from .zero_shot_classifier import class_vectors, template_features

# The four classifiers of O_T, in the paper's order.
PROMPT_GROUPS: dict[str, tuple[str, ...]] = {
    "name": NAME_ONLY,
    "clip80[1-40]": CLIP80[:40],
    "clip80[41-80]": CLIP80[40:],
    "clip80": CLIP80,
}
GROUP_LABELS: dict[str, str] = {
    "name": "name only", "clip80[1-40]": "CLIP-80 templates 1-40",
    "clip80[41-80]": "CLIP-80 templates 41-80", "clip80": "all 80 templates",
}


@dataclass
class Consistency:
    """One image's consistency analysis; class indices refer to the request's class list."""

    base: int                        # name-only top-1 on the original image
    groups: dict[str, int]           # PROMPT_GROUPS id -> top-1
    views: dict[str, int]            # view id -> name-only top-1
    single_template: list[int]       # top-1 of each of the 80 single-template classifiers
    s_t: float
    s_b: float
    o_t: bool
    o_b: bool

    @property
    def low_confidence(self) -> bool:
        return self.o_t or self.o_b

    def details(self, classnames: Sequence[str]) -> ConsistencyDetails:
        """What a result records: class names instead of indices, the verdict spelled out."""
        return ConsistencyDetails(
            base=classnames[self.base],
            groups={g: classnames[i] for g, i in self.groups.items()},
            views={v: classnames[i] for v, i in self.views.items()},
            single_template=[classnames[i] for i in self.single_template],
            s_t=self.s_t, s_b=self.s_b, o_t=self.o_t, o_b=self.o_b,
            low_confidence=self.low_confidence,
            verdict="low confidence" if self.low_confidence else "confident",
        )


@dataclass
class ConsistencyDetails:
    """One image's consistency analysis as a result records it (``ImageResult.analyses``)."""

    base: str                        # the name-only top-1 on the original image
    groups: dict[str, str]           # PROMPT_GROUPS id -> its top-1
    views: dict[str, str]            # view id -> the name-only top-1 of that view
    single_template: list[str]       # the top-1 of each of the 80 single-template classifiers
    s_t: float
    s_b: float
    o_t: bool
    o_b: bool
    low_confidence: bool
    verdict: str                     # "confident" or "low confidence"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ConsistencyDetails":
        return cls(**d)


# The continuous scores a threshold rule may use (Ge et al., Table 5).
THRESHOLD_SCORES: dict[str, str] = {"s_t": "S_T (share of the 80 templates agreeing)",
                                    "s_b": "S_B (share of the views agreeing)"}
_RULE = re.compile(r"^\s*(s_t|s_b)\s*<\s*([0-9]*\.?[0-9]+)\s*$")


@dataclass(frozen=True)
class LowConfidenceRule:
    """Which images count as low-confidence: the binary rule (O_T or O_B), or a continuous
    score below a threshold (Table 5's variant), e.g. ``s_t<0.6``."""

    score: str | None = None         # None: the binary rule
    threshold: float = 0.0

    def is_low(self, check: Consistency) -> bool:
        if self.score is None:
            return check.low_confidence
        return getattr(check, self.score) < self.threshold

    def __str__(self) -> str:
        return "binary" if self.score is None else f"{self.score}<{self.threshold:g}"


BINARY = LowConfidenceRule()


def parse_rule(value: object) -> LowConfidenceRule:
    """``binary`` (or None), or ``s_t<T`` / ``s_b<T`` with 0 < T <= 1."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "binary")):
        return BINARY
    if isinstance(value, LowConfidenceRule):
        return value
    match = _RULE.match(value.lower()) if isinstance(value, str) else None
    if match is None or not 0 < float(match.group(2)) <= 1:
        shown = str(value)[:40]
        raise InputError(f"Unknown low-confidence rule {shown!r}: write 'binary' (O_T or O_B, the paper's main rule) "
                         "or a score below a threshold, like 's_t<0.6' or 's_b<0.5' (threshold above 0, at most 1).")
    return LowConfidenceRule(match.group(1), float(match.group(2)))


def consistency_from_logits(
    name_logits: torch.Tensor,
    group_logits: dict[str, torch.Tensor],
    single_logits: torch.Tensor,
    view_logits: dict[str, torch.Tensor],
) -> Consistency:
    """The rule itself, on one image's logits: [C] each, single templates [T, C]."""
    base = int(name_logits.argmax())
    groups = {g: int(l.argmax()) for g, l in group_logits.items()}
    views = {v: int(l.argmax()) for v, l in view_logits.items()}
    singles = [int(i) for i in single_logits.argmax(dim=-1)]
    if FLIP_VIEW not in views:
        raise ValueError("the horizontal flip view is required for O_B")
    return Consistency(
        base=base,
        groups=groups,
        views=views,
        single_template=singles,
        s_t=sum(i == base for i in singles) / len(singles) if singles else 1.0,
        s_b=sum(i == base for i in views.values()) / len(views),
        o_t=len(set(groups.values())) > 1,
        o_b=views[FLIP_VIEW] != base,
    )


def embed_views(loaded: LoadedModel, images: Sequence[Image.Image], views: Sequence[str]) -> torch.Tensor:
    """Unit features of every view of every image, [N, V, D] (float32, model device)."""
    batch = torch.stack([loaded.preprocess(make_view(im, v)) for im in images for v in views])
    return loaded.encode_images(batch).view(len(images), len(views), -1)


def embed_with_views(loaded: LoadedModel, images: Sequence[Image.Image],
                     views: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit features of the originals [N, D] and of their views [N, V, D], in one pass.

    One batch per image and its views rather than the originals first and the views after: the
    encoder runs fewer, fuller batches (about 5% faster for one image and 10 views on 2 cores).
    """
    views = parse_views(list(views))
    batch = torch.stack([loaded.preprocess(make_view(im, v) if v else im)
                         for im in images for v in [None, *views]])
    feats = loaded.encode_images(batch).view(len(images), len(views) + 1, -1)
    return feats[:, 0], feats[:, 1:]


def analyse(
    loaded: LoadedModel,
    images: Sequence[Image.Image],
    image_features: torch.Tensor,
    classnames: Sequence[str],
    cache: TextFeatureCache | None,
    views: Sequence[str] = DEFAULT_VIEWS,
) -> list[Consistency]:
    """The consistency analysis of each image; ``image_features`` [N, D] are of the originals.

    The views are made and embedded here; a caller that has their features already
    (``embed_with_views``) calls ``analyse_features``.
    """
    views = parse_views(list(views))
    return analyse_features(loaded, image_features, embed_views(loaded, images, views), classnames, cache, views)


def analyse_features(
    loaded: LoadedModel,
    image_features: torch.Tensor,
    view_features: torch.Tensor,
    classnames: Sequence[str],
    cache: TextFeatureCache | None,
    views: Sequence[str] = DEFAULT_VIEWS,
) -> list[Consistency]:
    """``analyse`` from features alone: originals [N, D] and their ``views`` [N, V, D]."""
    views = parse_views(list(views))
    scale = loaded.logit_scale
    device = image_features.device
    # The name-only classifier is the one the pipeline just used (class-matrix cache); the
    # per-template features give the other groups and the 80 single-template classifiers.
    name = class_vectors(loaded, classnames, NAME_ONLY, cache).to(device)
    feats = template_features(loaded, classnames, CLIP80, cache).to(device)
    position = {t: i for i, t in enumerate(CLIP80)}
    group_vectors = {
        g: name if templates == NAME_ONLY
        else F.normalize(feats[:, [position[t] for t in templates]].mean(dim=1), dim=-1)
        for g, templates in PROMPT_GROUPS.items()
    }
    group_logits = {g: scale * image_features @ v.T for g, v in group_vectors.items()}   # [N, C]
    single_logits = scale * torch.einsum("nd,ctd->ntc", image_features, feats)          # [N, T, C]
    view_logits = scale * view_features @ name.T                                         # [N, V, C]
    return [
        consistency_from_logits(
            group_logits["name"][i],
            {g: l[i] for g, l in group_logits.items()},
            single_logits[i],
            {v: view_logits[i, j] for j, v in enumerate(views)},
        )
        for i in range(len(image_features))
    ]
