"""The result objects: what the CLI prints as JSON and the UI draws.

One ``ImageResult`` per image holds one ``StrategyResult`` per strategy. A strategy that says
more than probabilities (WordNet re-ranking, TPT) puts a dataclass of its own module in
``details`` (``{}`` for a plain classifier); analyses that are not strategies (the consistency
check) go in ``ImageResult.analyses``. New methods bring their own details; the shape of the
object, and its JSON (``SCHEMA``), do not change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

SCHEMA = "zsdemo.classify/1"


@dataclass
class Prediction:
    index: int
    class_name: str
    prob: float
    logit: float


@dataclass
class StrategyResult:
    strategy: str
    label: str
    probs: list[float]
    logits: list[float | None]   # None: a class the strategy did not score
    top_k: list[Prediction]
    # The strategy's typed details (hierarchy.HierarchyDetails, tpt.TPTDetails, ...) or {}.
    details: Any = field(default_factory=dict)

    @property
    def top1(self) -> Prediction:
        return self.top_k[0]


@dataclass
class ImageResult:
    source: str
    width: int | None = None
    height: int | None = None
    strategies: dict[str, StrategyResult] = field(default_factory=dict)
    analyses: dict[str, Any] = field(default_factory=dict)     # "consistency": ConsistencyDetails
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClassificationResult:
    model: dict[str, Any]
    classes: list[str]
    strategies: list[str]
    templates: dict[str, list[str]]
    top_k: int
    images: list[ImageResult]
    warnings: list[str] = field(default_factory=list)
    # The WordNet reading of every class (wordnet.ClassSense as dicts) when a hierarchy
    # strategy ran: the senses a user can pick from, the one used, its parent and children.
    senses: list[dict[str, Any]] = field(default_factory=list)
    # With a hierarchy strategy: every WordNet node it considered, {"synset", "name" (the text put
    # into the templates), "norm_variance", "kept"}, and the sparse hierarchy's keep fraction,
    # score threshold and counts (wordnet_sparse.Sparsity).
    wordnet_nodes: list[dict[str, Any]] = field(default_factory=list)
    wordnet_sparsity: dict[str, Any] | None = None
    # The settings of the methods that have options, by method (its options as declared), the
    # defaults included: what a result needs to be reproduced.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # With a SuS pool (data/pool.py): the examples it found per class, each with its cosine to the
    # class's text and the class it is nearest to of all; left out of the JSON when there is none.
    sus: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": SCHEMA, **asdict(self)}
        if out["sus"] is None:
            del out["sus"]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any],
                  details: Callable[[str, dict[str, Any]], Any] | None = None) -> "ClassificationResult":
        """The inverse of ``to_dict`` (results saved as JSON, or kept as JSON by the app).
        ``details(strategy id, its details' dict)`` types a strategy's details (the registry's
        ``read_result`` passes each strategy's own reader); without it they stay dicts."""
        # Here, not at the top: the consistency check needs PyTorch, the result types do not.
        from .consistency import ConsistencyDetails

        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} result (schema {d.get('schema')!r})")
        images = [
            ImageResult(
                source=im["source"], width=im["width"], height=im["height"],
                strategies={k: StrategyResult(s["strategy"], s["label"], s["probs"], s["logits"],
                                              [Prediction(**p) for p in s["top_k"]],
                                              (details or _as_is)(k, s["details"]) if s["details"] else {})
                            for k, s in im["strategies"].items()},
                analyses={k: ConsistencyDetails.from_dict(v) if k == "consistency" else v
                          for k, v in im["analyses"].items()},
                warnings=im["warnings"], error=im["error"],
            )
            for im in d["images"]
        ]
        return cls(model=d["model"], classes=d["classes"], strategies=d["strategies"], templates=d["templates"],
                   top_k=d["top_k"], images=images, warnings=d["warnings"], senses=d["senses"],
                   wordnet_nodes=d.get("wordnet_nodes", []), wordnet_sparsity=d.get("wordnet_sparsity"),
                   options=d.get("options", {}), sus=d.get("sus"))


def _as_is(strategy: str, details: dict[str, Any]) -> dict[str, Any]:
    return details


def verdict(image: ImageResult) -> str:
    """The consistency verdict of one image, or "" when the analysis was not run."""
    check = image.analyses.get("consistency")
    return check.verdict if check else ""
