"""Re-ranking with the WordNet hierarchy (Ge et al., CVPR 2023; docs/METHODS.md §3).

For an image the request's low-confidence rule picks (binary by default), the name-only top-5
(``rerank_top``) are re-scored. Each candidate c with sense s, parent p and children k, both on
the sparse WordNet (``wordnet_sparse``), gets the phrases
``{c} which is a kind of {p}`` and ``{k} which is a kind of {p}`` (without the suffix when s has
no parent; the bare name when c is not in WordNet); its score is the highest cosine between the
image and any phrase, and the new prediction is the candidate with the highest score.

``hierarchy80`` is the paper's Table-4 variant. Choice (the paper says to "put each augmented phrase
into all 80 templates and ensemble"): each phrase becomes one CLIP-80 ensemble vector, and the score
stays the maximum over a candidate's phrases; confident images keep the CLIP-80 prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..core.markup import code, html, md
from ..engine.models import LoadedModel
from ..engine.results import ClassificationResult, StrategyResult
from ..engine.text import TextFeatureCache, encode_prompts
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import CLIP80, NAME_ONLY
from ..wordnet.senses import ClassSense
from ..wordnet.sparse import KEEP_DEFAULT, parse_keep
from .base import Batch, Cloud, Panel, PanelContext, Request, Run, Scores, Strategy
from .options import option

CANDIDATES = 5                   # the paper's candidates; its appendix also reports 10
MAX_CANDIDATES = 20
PARENT_SUFFIX = "{} which is a kind of {}"


@dataclass(frozen=True)
class HierarchySettings:
    """Both variants' settings (Ge et al.'s sparse hierarchy and candidates)."""

    keep: float = option(
        KEEP_DEFAULT, "wordnet_keep", "Share of WordNet kept",
        "the sparse WordNet keeps this fraction of nodes, those whose text-feature norm varies most over the 80 "
        "templates; the default is the paper's, 1 keeps all of WordNet",
        parse=parse_keep, control="slider", low=0.05, high=1.0, step=0.05, metavar="F",
        info="the sparse hierarchy: 0.4 as in the paper, 1 = all of WordNet")
    top: int = option(
        CANDIDATES, "rerank_top", "Re-rank top-k",
        "re-rank the name-only top-K; the default is the paper's, its appendix also uses 10",
        kind="whole", low=2, high=MAX_CANDIDATES, control="radio",
        choices=(("top 5 (the paper's)", 5), ("top 10", 10)), metavar="K")


@dataclass
class PromptScore:
    text: str
    cosine: float | None                # None: the image was not re-ranked


@dataclass
class Candidate:
    """One of the name-only top-5, as WordNet reads it, with its phrases and score."""

    index: int
    class_name: str
    sense: str | None                   # the synset used; None: not in WordNet, the bare name is kept
    gloss: str | None
    rule: str                           # why that sense (wordnet.ClassSense.rule)
    parent: str | None
    children: list[str]
    prompts: list[PromptScore]
    score: float | None                 # the highest cosine; None when not re-ranked

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(**{**d, "prompts": [PromptScore(**p) for p in d["prompts"]]})


@dataclass
class HierarchyDetails:
    """What one image's hierarchy strategy did, and why."""

    applied: bool                       # re-ranked (low confidence, or "re-rank all")
    reason: str
    low_confidence: bool
    base_prediction: str                # the name-only top-1
    candidates: list[Candidate]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HierarchyDetails":
        return cls(**{**d, "candidates": [Candidate.from_dict(c) for c in d["candidates"]]})


class HierarchyStrategy(Strategy):
    """Ge et al.'s re-ranking of low-confidence images; confident ones keep ``fallback``'s prediction."""

    needs_consistency = True
    needs_wordnet = True
    options = HierarchySettings
    options_id = "hierarchy"
    panel_area = "wordnet"
    on_map = True

    def __init__(self, id: str, label: str, description: str, phrase_templates: tuple[str, ...] | None,
                 fallback: str, fallback_templates: tuple[str, ...]):
        self.id, self.label, self.description = id, label, description
        self.phrase_templates = phrase_templates      # None: each phrase is its own prompt
        self.fallback = fallback
        self.fallback_templates = fallback_templates

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        # The fallback's classifier for confident images, the name-only one for the candidates.
        return self.fallback_templates, NAME_ONLY

    def score(self, batch: Batch) -> Scores:
        request, run = batch.request, batch.run
        settings: HierarchySettings = self.settings(request)
        name_logits = batch.logits(NAME_ONLY)
        fallback_logits = batch.logits(self.fallback_templates)
        rows = [predict(run.loaded, self, batch.features[row], name_logits[row], fallback_logits[row],
                        request.low_confidence.is_low(batch.checks[row]), request.rerank_all, request.classnames,
                        run.senses, run.cache, settings.top)
                for row in range(len(batch))]
        logits = torch.stack([logits.detach().float().cpu() for logits, _ in rows])
        return Scores(logits, [details for _, details in rows])

    def sparse_share(self, request: Request) -> float:
        return self.settings(request).keep

    def map_clouds(self, run: Run) -> list[Cloud]:
        # Every class's parent and children, as the phrases it scores them by: "{class} which is a
        # kind of {parent}" stands for the parent, "{child} which is a kind of {parent}" for a child.
        clouds = []
        for c, (name, sense) in enumerate(zip(run.request.classnames, run.senses)):
            texts, relations = list(sense.children), ["child"] * len(sense.children)
            encoded = phrases(name, sense)
            if sense.parent is not None:
                texts, relations = [sense.parent, *texts], ["parent", *relations]
            else:
                encoded = encoded[1:]           # without a parent, the class's own phrase is its bare name
            if encoded:
                vectors = phrase_vectors(run.loaded, encoded, self, run.cache)
                clouds.append(Cloud(c, "wordnet", tuple(texts), vectors, tuple(encoded), tuple(relations)))
        return clouds

    def note(self, result: StrategyResult) -> str:
        return "re-ranked" if result.details.applied else "kept: confident"

    def panel(self, result: StrategyResult, context: PanelContext) -> Panel | None:
        if not result.details:
            return None
        first = next(sid for sid in context.image.strategies if sid in VARIANTS)
        if first != self.id:
            # The senses, parents, children and trees are those the first variant shows: only
            # what differs, this variant's decision and scores.
            return Panel(self.label, markdown=scores_markdown(result))
        return Panel(self.label, markdown=wordnet_markdown(result, context.result),
                     html=hierarchy_tree(result, context.result))

    def card_note(self, result: StrategyResult) -> str:
        return "" if result.details.applied else "kept: confident"

    def details_from_dict(self, d: dict[str, Any]) -> HierarchyDetails:
        return HierarchyDetails.from_dict(d)


HIERARCHY = HierarchyStrategy(
    "hierarchy", "WordNet re-ranking",
    "uncertain images: re-rank the top 5 with '{class} which is a kind of {parent}' and the children's "
    "names (Ge et al.)", None, "name", NAME_ONLY)
HIERARCHY80 = HierarchyStrategy(
    "hierarchy80", "WordNet re-ranking + CLIP-80",
    "the same phrases, each in all 80 templates; confident images keep CLIP-80", CLIP80, "clip80", CLIP80)
VARIANTS: dict[str, HierarchyStrategy] = {s.id: s for s in (HIERARCHY, HIERARCHY80)}


def phrases(name: str, sense: ClassSense) -> list[str]:
    """The class's own phrase first, then one per child."""
    heads = [name, *sense.children]
    if sense.parent is None:
        return heads
    return [PARENT_SUFFIX.format(h, sense.parent) for h in heads]


def phrase_vectors(loaded: LoadedModel, texts: Sequence[str], variant: HierarchyStrategy,
                   cache: TextFeatureCache | None) -> torch.Tensor:
    """Unit vectors [P, D]: each phrase encoded as it is, or as its CLIP-80 ensemble."""
    if variant.phrase_templates is None:
        return encode_prompts(loaded, list(texts), cache)
    return class_vectors(loaded, list(texts), variant.phrase_templates, cache)


def predict(
    loaded: LoadedModel,
    variant: HierarchyStrategy,
    image_feature: torch.Tensor,
    name_logits: torch.Tensor,
    fallback_logits: torch.Tensor,
    low_confidence: bool,
    rerank_all: bool,
    classnames: Sequence[str],
    senses: Sequence[ClassSense],
    cache: TextFeatureCache | None,
    top: int = CANDIDATES,
) -> tuple[torch.Tensor, HierarchyDetails]:
    """One image: logits [C] and the details the result records.

    Re-ranked (low confidence, or ``rerank_all``): the candidates' logits are their scores times
    the model's logit scale and every other class gets -inf (probability 0). Otherwise the
    fallback strategy's logits are kept.
    """
    candidates = [int(i) for i in torch.topk(name_logits, k=min(top, len(classnames))).indices]
    applied = low_confidence or rerank_all
    if applied:
        scores, details = rerank(loaded, image_feature, candidates, classnames, senses, variant, cache)
        logits = torch.full((len(classnames),), float("-inf"))
        logits[candidates] = loaded.logit_scale * scores
        reason = ("low confidence: re-ranked" if low_confidence
                  else "confident; re-ranked because 're-rank all images' is on")
    else:
        logits = fallback_logits
        details = [candidate_details(c, classnames[c], senses[c]) for c in candidates]
        reason = f"confident: kept the {variant.fallback} prediction"
    return logits, HierarchyDetails(applied, reason, low_confidence, classnames[int(name_logits.argmax())],
                                    details)


def rerank(
    loaded: LoadedModel,
    image_feature: torch.Tensor,
    candidates: Sequence[int],
    classnames: Sequence[str],
    senses: Sequence[ClassSense],
    variant: HierarchyStrategy,
    cache: TextFeatureCache | None,
) -> tuple[torch.Tensor, list[Candidate]]:
    """Scores [K] (max cosine per candidate) and, per candidate, every phrase with its cosine."""
    per_class = [phrases(classnames[c], senses[c]) for c in candidates]
    flat = [p for ps in per_class for p in ps]
    vectors = phrase_vectors(loaded, flat, variant, cache).to(image_feature.device)
    cos = (vectors @ image_feature.float()).cpu()
    scores, details, start = [], [], 0
    for c, ps in zip(candidates, per_class):
        part = cos[start:start + len(ps)]
        start += len(ps)
        scores.append(part.max())
        details.append(candidate_details(c, classnames[c], senses[c], part.tolist()))
    return torch.stack(scores), details


def candidate_details(index: int, name: str, sense: ClassSense,
                      cosines: Sequence[float] | None = None) -> Candidate:
    """What the result records for a candidate; cosines and score are None when not re-ranked."""
    texts = phrases(name, sense)
    values = [float(x) for x in cosines] if cosines is not None else [None] * len(texts)
    return Candidate(
        index=int(index),
        class_name=name,
        sense=sense.chosen.synset if sense.chosen else None,
        gloss=sense.chosen.gloss if sense.chosen else None,
        rule=sense.rule,
        parent=sense.parent,
        children=list(sense.children),
        prompts=[PromptScore(t, x) for t, x in zip(texts, values)],
        score=max(values) if cosines is not None else None,
    )


@dataclass
class Pruning:
    """What the sparse WordNet took out of a result, looked up by class and by synset."""

    by_class: dict[str, dict[str, Any]]       # class name -> its sense (pruned_parents, pruned_children)
    nodes: dict[str, dict[str, Any]]          # synset -> {"name", "norm_variance", "kept"}
    threshold: float | None
    keep: float | None

    @classmethod
    def of(cls, result: ClassificationResult) -> "Pruning":
        sparsity = result.wordnet_sparsity or {}
        return cls({s["name"]: s for s in result.senses}, {n["synset"]: n for n in result.wordnet_nodes},
                   sparsity.get("threshold"), sparsity.get("keep"))

    def pruned(self, class_name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The nodes (with their scores) pruned from a class's parents and from its children."""
        sense = self.by_class.get(class_name, {})
        pick = [self.nodes.get(k, {"name": k, "norm_variance": None}) for k in sense.get("pruned_parents", ())]
        kids = [self.nodes.get(k, {"name": k, "norm_variance": None}) for k in sense.get("pruned_children", ())]
        return pick, kids

    def why(self, node: dict[str, Any]) -> str:
        score = node.get("norm_variance")
        if score is None or self.threshold is None:
            return ""
        return "{} < {}".format(*distinct(score, self.threshold))


def distinct(a: float, b: float, digits: int = 3) -> tuple[str, str]:
    """Two numbers with the fewest significant digits (3 or more) that tell them apart: a pruned
    node's score just under the threshold read "0.155 < 0.155" at three."""
    while digits < 9 and f"{a:.{digits}g}" == f"{b:.{digits}g}" and a != b:
        digits += 1
    return f"{a:.{digits}g}", f"{b:.{digits}g}"


def wordnet_markdown(found: StrategyResult, result: ClassificationResult) -> str:
    """Each re-ranking candidate: its sense, gloss, why that sense, parent, children, prompts, and
    what the sparse WordNet pruned (each node's score against the threshold)."""
    d: HierarchyDetails = found.details
    rule_reason = {s["name"]: s["reason"] for s in result.senses}
    pruning = Pruning.of(result)
    lines = [f"**{md(found.label)}**: {md(d.reason)}. Name-only prediction: {md(d.base_prediction)}.", ""]
    if pruning.threshold is not None:
        lines[-1:] = [f"Sparse WordNet: the {100 * pruning.keep:.0f}% of nodes whose text-feature norm varies most "
                      f"over the 80 templates are kept (norm variance at least {pruning.threshold:.3g}); rarer words "
                      "are pruned.", ""]
    for rank, c in enumerate(d.candidates, 1):
        sense = code(c.sense) if c.sense else "not in WordNet (bare name kept)"
        lines.append(f"{rank}. **{md(c.class_name)}**: {sense}" + (f", {md(c.gloss)}" if c.gloss else ""))
        if c.class_name in rule_reason:
            lines.append(f"   - sense chosen by: {md(rule_reason[c.class_name])}")
        lines.append(f"   - parent: {md(c.parent) if c.parent else '(none)'}; children: "
                     + (", ".join(md(k) for k in c.children) if c.children else "(none)"))
        parents, kids = pruning.pruned(c.class_name)
        if parents or kids:
            pruned = [f"~~{md(n['name'])}~~ ({pruning.why(n)}, parent)" for n in parents]
            pruned += [f"~~{md(n['name'])}~~ ({pruning.why(n)}, child)" for n in kids]
            lines.append("   - pruned: " + ", ".join(pruned))
        if c.score is not None:
            prompts = "; ".join(f"“{md(p.text)}” {p.cosine:.3f}" for p in c.prompts)
            lines.append(f"   - score {c.score:.3f} (max cosine of: {prompts})")
    return "\n".join(lines)


def scores_markdown(found: StrategyResult) -> str:
    """A variant's decision and its candidates' scores (the first variant's panel has the rest)."""
    d: HierarchyDetails = found.details
    lines = [f"{md(d.reason)}. Name-only prediction: {md(d.base_prediction)}.", ""]
    for rank, c in enumerate(d.candidates, 1):
        score = f"score {c.score:.3f}" if c.score is not None else "not re-ranked"
        lines.append(f"{rank}. **{md(c.class_name)}**: {score}")
    return "\n".join(lines)


def hierarchy_tree(found: StrategyResult, result: ClassificationResult | None = None, limit: int = 3,
                   max_children: int = 6) -> str:
    """Each top candidate's WordNet neighbourhood as a small HTML tree: parent, the class, children.

    HTML rather than a figure: the browser lays it out at any width, long names wrap instead of
    being clipped, the text can be searched and copied, and the server draws nothing (a matplotlib
    tree cost about 70 ms of every page request). The ``zs-*`` classes are styled by the app.
    """
    pruning = Pruning.of(result) if result is not None else None
    trees = []
    for c in found.details.candidates[:limit]:
        skipped, dropped = pruning.pruned(c.class_name) if pruning else ([], [])
        parent = (f'<div class="zs-node zs-parent" title="parent (hypernym)">{html(c.parent)}</div>'
                  if c.parent else '<div class="zs-node zs-none">no parent in WordNet</div>')
        # Pruned parents sit between the class and the ancestor that replaced them, nearest lowest.
        parent += "".join(f'<div class="zs-edge"></div>{_pruned_chip(n, pruning)}' for n in reversed(skipped))
        sense = f'<br><code>{html(c.sense)}</code>' if c.sense else "<br><i>not in WordNet</i>"
        kids = list(c.children)
        chips = "".join(f'<span class="zs-node zs-kid">{html(k)}</span>' for k in kids[:max_children])
        if len(kids) > max_children:
            chips += f'<span class="zs-more">+{len(kids) - max_children} more</span>'
        chips += "".join(_pruned_chip(n, pruning, "span") for n in dropped)
        below = (f'<div class="zs-edge"></div><div class="zs-kids" title="children (hyponyms)">{chips}</div>'
                 if chips else '<div class="zs-edge"></div><div class="zs-node zs-none">no children</div>')
        trees.append(f'<div class="zs-tree">{parent}<div class="zs-edge"></div>'
                     f'<div class="zs-node zs-class"><span class="zs-name">{html(c.class_name)}</span>{sense}'
                     f'</div>{below}</div>')
    caption = ("WordNet neighbourhood of the top candidates: parent (top), the class and its sense (middle), "
               "children (bottom)")
    if pruning is not None and pruning.threshold is not None:
        caption += "; struck out: pruned by the sparse WordNet (norm variance below the threshold)"
    return f'<div class="zs-caption">{caption}</div><div class="zs-trees">{"".join(trees)}</div>'


def _pruned_chip(node: dict[str, Any], pruning: Pruning, tag: str = "div") -> str:
    why = pruning.why(node)
    return (f'<{tag} class="zs-node zs-pruned" title="pruned: norm variance {html(why)}">'
            f'<s>{html(node["name"])}</s> <small>{html(why)}</small></{tag}>')
