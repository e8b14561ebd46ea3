"""CuPL, customized prompts (Pratt et al., ICCV 2023; docs/METHODS.md §6).

Each entry of the descriptor file is a whole sentence describing the class (CuPL's LLM-written
prompts, or the user's own). The class vector is normalise(mean of the normalised sentence
embeddings), a template ensemble whose prompts differ per class; logits are the model's logit
scale times the cosine. ``cupl80`` adds the CLIP-80 prompts of the class to its set. A class
without sentences uses its bare name (``cupl``) or its CLIP-80 prompts alone (``cupl80``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn.functional as F

from ..prompts.descriptors import DescriptorDetails, class_mean, effective, explain, explain_markdown, per_class
from ..prompts.templates import CLIP80, fill
from ..engine.text import encode_prompts
from ..engine.results import StrategyResult
from .base import Batch, Cloud, Request, Run, Scores, Strategy


class CuPLStrategy(Strategy):
    scaled_cosine_logits = True
    needs_descriptors = True
    on_map = True
    shipped_descriptors = "cupl.json"

    def __init__(self, id: str, label: str, description: str, templates: tuple[str, ...]):
        self.id, self.label, self.description = id, label, description
        self.templates = templates       # added to every class's sentences

    def sentences(self, classname: str, own: Sequence[str]) -> list[str]:
        extra = [fill(t, classname) for t in self.templates]
        return list(own) + extra if (own or extra) else [classname]

    def extra_prompts(self, request: Request) -> int:
        descriptors = effective(request.descriptors, self.shipped_descriptors, request.classnames)
        return sum(len(self.sentences(c, descriptors.of(c))) for c in request.classnames)

    def map_clouds(self, run: Run) -> list[Cloud]:
        # Its class vector is the normalised mean of these sentences: a prompt cloud like a template set's.
        names = run.request.classnames
        descriptors = effective(run.request.descriptors, self.shipped_descriptors, names)
        return [Cloud(c, "prompt", tuple(texts), encode_prompts(run.loaded, texts, run.cache))
                for c, texts in enumerate(self.sentences(name, descriptors.of(name)) for name in names)]

    def score(self, batch: Batch) -> Scores:
        run, names = batch.run, batch.classnames
        descriptors = effective(batch.request.descriptors, self.shipped_descriptors, names)
        texts = [self.sentences(c, descriptors.of(c)) for c in names]
        vectors, owner, counts = per_class(texts, lambda p: encode_prompts(run.loaded, p, run.cache),
                                           batch.features.device)
        class_vectors = F.normalize(class_mean(vectors, owner, counts, dim=0), dim=-1)         # mean of embeddings
        score = batch.features.float() @ class_vectors.T                                        # [N, C]
        cos = batch.features.float() @ vectors.T
        details = explain(cos, score, texts, names, descriptors, batch.request.top_k)
        return Scores((run.loaded.logit_scale * score).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        best = result.details.classes[0]
        return "" if best["described"] else "no sentences for the top-1 class"

    def explain(self, result: StrategyResult) -> str:
        return ("A class is the mean of its sentences' embeddings (score: the cosine with it); the sentences "
                "closest to the image:\n" + explain_markdown(result.details, "sentence", "cosine"))

    def details_from_dict(self, d: dict[str, Any]) -> DescriptorDetails:
        return DescriptorDetails.from_dict(d)


CUPL = CuPLStrategy("cupl", "CuPL (class sentences)",
                    "the class's own descriptive sentences, averaged like a template ensemble (Pratt et al.)", ())
CUPL80 = CuPLStrategy("cupl80", "CuPL + CLIP-80",
                      "the class's sentences and its 80 CLIP prompts, averaged together", CLIP80)
