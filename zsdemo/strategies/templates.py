"""Classifiers from template sets (Radford et al., CLIP; docs/METHODS.md §1): name, photo, custom, clip7, clip80.

A class vector is normalise(mean over the templates of normalise(encode(template(class)))), built
by ``zero_shot_classifier.class_vectors``; logits are the model's logit scale times the cosine.
"""

from __future__ import annotations


from ..prompts.templates import CLIP7, CLIP80, NAME_ONLY, SINGLE
from .base import Batch, Cloud, Request, Run, Scores, Strategy


class TemplateStrategy(Strategy):
    scaled_cosine_logits = True
    on_map = True
    def __init__(self, id: str, label: str, description: str, templates: tuple[str, ...] | None):
        self.id, self.label, self.description = id, label, description
        self._templates = templates      # None: the request's custom templates

    def templates(self, request: Request) -> tuple[str, ...]:
        return self._templates if self._templates is not None else request.custom_templates

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        return (self.templates(request),)

    def shown_templates(self, request: Request) -> tuple[str, ...]:
        return self.templates(request)

    def map_clouds(self, run: Run) -> list[Cloud]:
        # The bare name is a point of every class on the map already.
        return [] if self.templates(run.request) == NAME_ONLY else super().map_clouds(run)

    def score(self, batch: Batch) -> Scores:
        return Scores(batch.logits(self.templates(batch.request)))


NAME = TemplateStrategy("name", "Name only", "the bare class name, no template (the papers' base predictor)",
                        NAME_ONLY)
PHOTO = TemplateStrategy("photo", "Single template", "one prompt per class: 'a photo of a {}.'", SINGLE)
CUSTOM = TemplateStrategy("custom", "Custom templates", "your own templates, averaged in embedding space", None)
CLIP7_ENSEMBLE = TemplateStrategy("clip7", "CLIP-7 ensemble",
                                  "the 7 templates CLIP chose by forward selection, averaged", CLIP7)
CLIP80_ENSEMBLE = TemplateStrategy("clip80", "CLIP-80 ensemble", "CLIP's 80 ImageNet templates, averaged", CLIP80)
