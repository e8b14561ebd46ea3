"""The sparse WordNet hierarchy of Ge et al. (Algorithm 2's H; docs/METHODS.md §3).

Academic words CLIP rarely saw ("anthozoan", the parent of sea anemone) hurt as parents. A
node's score is the variance, over the 80 CLIP templates t, of ||f_text(t(name))||: the L2 norm
of the *unnormalised* text embedding of the template filled with the node's readable name (its
first lemma, exactly the text the hierarchy's phrases use). Rare words vary little. The nodes
whose score is in the top ``keep`` fraction of the population are kept; a pruned parent is
replaced by the nearest kept ancestor (abstract ones are still never used), pruned children are
dropped.

The population is every node the request's classes can reach: each class's own synset, its chain
of parents up to the root (the same choice of parent at each step as the hierarchy makes) and its
children. It depends on the class list only, never on which images came or in what order, and a
request scores no node it cannot use. Choices the paper leaves open: the variance is the
population variance (ddof 0; a constant factor, so the kept set is the same either way); ties at
the threshold are kept; a class's own name is never pruned (it is the label, not an added word).
Scores depend on the model: they are cached per model identity in memory and, when a folder is
given, on disk (one JSON file per model).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..core import forksafe, progress
from ..core.arguments import number
from ..core.errors import InputError
from ..engine.models import LoadedModel
from ..prompts.templates import CLIP80, fill
from ..engine.text import prompt_norms
from .senses import ClassSense, children_of, parent_of, readable_name, synset_by_id

KEEP_DEFAULT = 0.4               # the paper's 40%
HEAVY_PROMPTS = 8_000            # scoring this many prompts outweighs the rest of a request (progress.restage)
SCORE_TEMPLATES = CLIP80
MAX_DEPTH = 40                   # WordNet noun chains are at most about 20 deep


def parse_keep(value: object) -> float:
    """The kept fraction from user input: above 0, at most 1 (1 keeps all of WordNet)."""
    keep = number(value, "WordNet keep fraction", KEEP_DEFAULT)
    if not 0 < keep <= 1:
        raise InputError(f"The WordNet keep fraction must be above 0 and at most 1 (got {keep!r}): 0.4 is the "
                         "paper's sparse hierarchy, 1 keeps all of WordNet.")
    return keep


@dataclass
class Node:
    synset: str
    name: str                        # exactly the text put into the 80 templates
    norm_variance: float | None      # None when nothing was scored (keep = 1)
    kept: bool


@dataclass
class Sparsity:
    """The sparse hierarchy of one request: the fraction kept, the score threshold, every node."""

    keep: float
    threshold: float | None
    nodes: dict[str, Node]           # synset name -> node, in population order

    def summary(self) -> dict[str, Any]:
        return {"keep": self.keep, "threshold": self.threshold, "population": len(self.nodes),
                "kept": sum(n.kept for n in self.nodes.values())}

    def node_list(self) -> list[dict[str, Any]]:
        return [asdict(n) for n in self.nodes.values()]


def ancestors(synset: Any) -> list[Any]:
    """The chain of parents the hierarchy would name, nearest first, abstract ones excluded."""
    chain, seen, current = [], {synset.name()}, synset
    for _ in range(MAX_DEPTH):
        current = parent_of(current)
        if current is None or current.name() in seen:
            break
        chain.append(current)
        seen.add(current.name())
    return chain


def chains(senses: Sequence[ClassSense]) -> dict[str, list[Any]]:
    """Each class's synset (by name) -> its chain of parents, walked once per request."""
    out: dict[str, list[Any]] = {}
    for sense in senses:
        if sense.chosen is not None and sense.chosen.synset not in out:
            out[sense.chosen.synset] = ancestors(synset_by_id(sense.chosen.synset))
    return out


def population(senses: Sequence[ClassSense], parents: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """Synset name -> synset of every node the classes can reach, in a fixed order."""
    parents = parents if parents is not None else chains(senses)
    nodes: dict[str, Any] = {}
    for sense in senses:
        if sense.chosen is None:
            continue
        own = synset_by_id(sense.chosen.synset)
        for s in [own, *parents[own.name()], *children_of(own)]:
            nodes.setdefault(s.name(), s)
    return nodes


class VarianceCache:
    """Node name -> norm variance, per model identity; in memory, and on disk once attached."""

    def __init__(self) -> None:
        self._memory: dict[str, dict[str, float]] = {}
        self._folder: Path | None = None
        self._after_fork()              # makes the lock
        forksafe.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def attach(self, folder: str | os.PathLike | None) -> None:
        with self._lock:
            self._folder = Path(folder) if folder else None

    def _file(self, identity: str) -> Path | None:
        if self._folder is None:
            return None
        return self._folder / f"wordnet-norm-variance-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.json"

    def get(self, identity: str, names: Sequence[str]) -> dict[str, float]:
        with self._lock:
            known = self._memory.setdefault(identity, {})
            path = self._file(identity)
            if path is not None and any(n not in known for n in names):
                try:
                    stored = json.loads(path.read_text(encoding="utf-8"))
                    known.update({str(k): float(v) for k, v in stored.get("scores", {}).items()
                                  if isinstance(v, (int, float)) and math.isfinite(v)})
                except (OSError, ValueError, AttributeError):
                    pass          # a missing or damaged file is recomputed, never trusted
            return {n: known[n] for n in names if n in known}

    def put(self, identity: str, scores: dict[str, float]) -> None:
        with self._lock:
            known = self._memory.setdefault(identity, {})
            known.update(scores)
            path = self._file(identity)
            if path is None:
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps({"identity": identity, "scores": known}), encoding="utf-8")
                os.replace(tmp, path)     # readers see the old file or the new one, never half of one
            except OSError:
                pass                      # a read-only cache folder costs a recomputation, nothing else


# One process-wide cache, like the text features.
CACHE = VarianceCache()


def norm_variances(loaded: LoadedModel, names: Sequence[str], cache: VarianceCache | None = CACHE,
                   limit: int | None = None) -> dict[str, float]:
    """Var over the 80 templates of the unnormalised text-feature norm, for each node name.
    ``limit``: at most this many new prompts (a classification request's budget; None: none)."""
    names = list(dict.fromkeys(names))
    known = cache.get(loaded.identity, names) if cache is not None else {}
    todo = [n for n in names if n not in known]
    if todo:
        if limit is not None and len(todo) * len(SCORE_TEMPLATES) > limit:
            raise InputError(
                f"The sparse WordNet hierarchy needs {len(todo):,} new nodes x {len(SCORE_TEMPLATES)} templates = "
                f"{len(todo) * len(SCORE_TEMPLATES):,} text prompts, more than the {limit:,} allowed per "
                "request. Use fewer classes, keep all of WordNet (WordNet keep fraction 1), or score them once "
                "with the command line's evaluate (no limit; the scores are cached per model).")
        prompts = len(todo) * len(SCORE_TEMPLATES)
        progress.restage(f"scoring {len(todo):,} WordNet nodes for the sparse hierarchy (once per model, then kept)",
                         prompts, "prompt", heavy=prompts >= HEAVY_PROMPTS)
        norms = prompt_norms(loaded, [fill(t, n) for n in todo for t in SCORE_TEMPLATES])
        variances = norms.view(len(todo), len(SCORE_TEMPLATES)).double().var(dim=1, unbiased=False)
        computed = {n: float(v) for n, v in zip(todo, variances)}
        if cache is not None:
            cache.put(loaded.identity, computed)
        known.update(computed)
    return {n: known[n] for n in names}


def sparsify(loaded: LoadedModel | None, senses: Sequence[ClassSense], keep: float,
             cache: VarianceCache | None = CACHE, limit: int | None = None) -> tuple[list[ClassSense], Sparsity]:
    """The classes' senses on the sparse hierarchy, and what was kept and why.

    With ``keep`` = 1 nothing is scored (and no model is needed): every node is kept."""
    parents = chains(senses)
    nodes = population(senses, parents)
    names = {k: readable_name(s) for k, s in nodes.items()}
    if keep >= 1 or loaded is None:
        listed = {k: Node(k, names[k], None, True) for k in nodes}
        return list(senses), Sparsity(1.0 if loaded is None else keep, None, listed)
    scores = norm_variances(loaded, list(names.values()), cache, limit)
    ranked = sorted((scores[names[k]] for k in nodes), reverse=True)
    threshold = ranked[max(1, math.ceil(keep * len(ranked))) - 1] if ranked else None
    own = {sense.chosen.synset for sense in senses if sense.chosen is not None}
    listed = {k: Node(k, names[k], scores[names[k]],
                      k in own or threshold is None or scores[names[k]] >= threshold) for k in nodes}
    return [_on_sparse(sense, listed, parents) for sense in senses], Sparsity(keep, threshold, listed)


def _on_sparse(sense: ClassSense, nodes: dict[str, Node], parents: dict[str, list[Any]]) -> ClassSense:
    """``sense`` with its parent moved up to the nearest kept ancestor and its pruned children gone."""
    if sense.chosen is None:
        return sense
    skipped, parent = [], None
    for a in parents[sense.chosen.synset]:
        if nodes[a.name()].kept:
            parent = a
            break
        skipped.append(a.name())
    kids = [(name, k) for name, k in zip(sense.children, sense.children_synsets) if nodes[k].kept]
    return replace(
        sense,
        parent=readable_name(parent) if parent is not None else None,
        parent_synset=parent.name() if parent is not None else None,
        children=tuple(name for name, _ in kids),
        children_synsets=tuple(k for _, k in kids),
        pruned_parents=tuple(skipped),
        pruned_children=tuple(k for k in sense.children_synsets if not nodes[k].kept),
    )
