"""Zero-shot classifiers from templates (docs/METHODS.md §1), as open_clip's ``zero_shot_classifier`` builds them.

A class vector is normalise(mean over templates of normalise(encode(template(class)))):
averaging in embedding space means any number of templates costs one matrix product per image.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from .models import LoadedModel
from ..prompts.templates import fill
from .text import TextFeatureCache, encode_prompts


def template_features(
    loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[str], cache: TextFeatureCache | None,
) -> torch.Tensor:
    """Unit features of every (class, template) prompt, [C, T, D] (float32, CPU)."""
    prompts = [fill(t, c) for c in classnames for t in templates]
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
