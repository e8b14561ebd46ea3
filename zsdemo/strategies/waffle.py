"""WaffleCLIP (Roth et al., ICCV 2023; docs/METHODS.md §6): random descriptors, the control for
LLM-written ones.

Per seed, 15 random-word and 15 random-character descriptors, shared by all classes, each in
``A photo of a {c}, which (is|has) {descriptor}.``; a class's score is the mean cosine between
the image and its 30 phrases, averaged over the seeds; logits are the model's logit scale times
that score. Lengths follow the class names as the official code does: a word descriptor has the
classes' mean number of words, each word cut to their mean word length; a character descriptor
has the classes' mean longest-word length in characters, in as many comma-separated groups as the
names have words on average.

Choices the official code leaves to its data files: the words are WordNet's single-word noun
lemmas (lower-case, letters only, at least 3 letters; the paper's list is another English word
list), the characters the 26 lower-case letters (the code draws them from its descriptor file).
Every seed uses its own ``numpy`` generator, so the same classes and seeds give the same phrases.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from ..core import progress
from ..prompts.descriptors import which
from ..core.markup import md
from ..wordnet.senses import ensure_wordnet
from ..engine.zero_shot_classifier import template_features
from ..engine.results import StrategyResult
from .base import Batch, Rates, Request, Scores, Strategy


PAIRS = 15                       # random-word and random-character descriptors per seed, each
SEEDS = 7
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
PREFIX = "A photo of a {}, "
SHOWN = 5                        # phrases of the top-1 class shown, best first


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """WordNet's single-word noun lemmas, sorted: the pool random words are drawn from."""
    wn = ensure_wordnet()
    return tuple(sorted({w for w in wn.all_lemma_names(pos="n") if w.isalpha() and w.islower() and len(w) >= 3}))


def descriptors(classnames: Sequence[str], seed: int) -> list[str]:
    """One seed's 30 descriptors (word, characters, word, characters, ...), shared by all classes."""
    words = [n.split(" ") for n in classnames]
    n_words = max(round(float(np.mean([len(w) for w in words]))), 1)
    word_length = round(float(np.mean([np.mean([len(x) for x in w]) for w in words])))
    groups = round(float(np.mean([len(w) - 1 for w in words]))) + 1
    chars = math.ceil(float(np.mean([max(len(x) for x in w) for w in words])))
    chars += groups - chars % groups
    pool = word_list()
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(PAIRS):
        out.append(" ".join(pool[i][:word_length] for i in rng.randint(0, len(pool), n_words)))
        out.append(", ".join("".join(LETTERS[i] for i in rng.randint(0, len(LETTERS), chars // groups))
                             for _ in range(groups)))
    return out


def templates(classnames: Sequence[str], seeds: int = SEEDS) -> tuple[str, ...]:
    """Every phrase as a template (``{}`` for the class), seed after seed."""
    return _templates(tuple(classnames), seeds)


@lru_cache(maxsize=64)          # a request asks twice (its prompt budget, its scores), the page often
def _templates(classnames: tuple[str, ...], seeds: int) -> tuple[str, ...]:
    return tuple(PREFIX + which(d) + "." for seed in range(seeds) for d in descriptors(classnames, seed))


@dataclass
class WaffleDetails:
    """What random words did for one image: the best phrases of its top-1 class, and the top-1 each
    seed alone gives (random descriptors help when it stays the same)."""

    seeds: int
    phrases_per_seed: int
    top_phrases: list[dict[str, Any]]        # {"text", "cosine"} of the top-1 class, best first
    top1_per_seed: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WaffleDetails":
        return cls(**d)


class WaffleStrategy(Strategy):
    scaled_cosine_logits = True
    id = "waffle"
    label = "WaffleCLIP (random descriptors)"
    description = ("15 random-word and 15 random-character descriptors shared by all classes, mean cosine, "
                   "7 seeds: the control for descriptors (Roth et al.)")

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        return templates(request.classnames)

    def cost(self, request: Request, n_images: int, rates: Rates) -> tuple[float, str]:
        n = len(request.classnames) * PAIRS * 2 * SEEDS
        return n / rates.prompts_per_second, f"WaffleCLIP: {n:,} random-descriptor prompts (once per class list)"

    def score(self, batch: Batch) -> Scores:
        run, names = batch.run, batch.classnames
        phrases = run.once("waffle.templates", lambda: templates(names))
        progress.restage("WaffleCLIP: encoding the random-descriptor phrases", len(names) * len(phrases), "prompt")
        feats = template_features(run.loaded, names, phrases, run.cache).to(batch.features.device)   # [C, T, D]
        cos = torch.einsum("nd,ctd->nct", batch.features.float(), feats)                               # [N, C, T]
        per_seed = cos.view(len(batch), len(names), SEEDS, -1).mean(dim=-1)                         # [N, C, S]
        score = per_seed.mean(dim=-1)
        details = []
        for row in range(len(batch)):
            top = int(score[row].argmax())
            best = torch.argsort(cos[row, top], descending=True, stable=True)[:SHOWN]
            details.append(WaffleDetails(
                seeds=SEEDS, phrases_per_seed=2 * PAIRS,
                top_phrases=[{"text": phrases[int(t)].replace("{}", names[top], 1), "cosine": float(cos[row, top, t])}
                             for t in best],
                top1_per_seed=[names[int(i)] for i in per_seed[row].argmax(dim=0)],
            ))
        return Scores((run.loaded.logit_scale * score).float().cpu(), details)

    def note(self, result: StrategyResult) -> str:
        d = result.details
        agree = sum(t == result.top1.class_name for t in d.top1_per_seed)
        return f"{agree} of {d.seeds} seeds agree"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        votes = Counter(d.top1_per_seed).most_common()
        seeds = ", ".join(f"{md(name)} ({progress.count(n, 'seed')})" for name, n in votes)
        best = "; ".join(f"{md(x['text'])} ({x['cosine']:.3f})" for x in d.top_phrases)
        return (f"{d.phrases_per_seed} random descriptors per seed, {d.seeds} seeds. Top-1 of each seed alone: "
                f"{seeds}.\n\nThe random phrases that matched best: {best}. If random words do about as well as "
                "DCLIP's descriptors, the gain comes from averaging many prompts, not from what they say.")

    def details_from_dict(self, d: dict[str, Any]) -> WaffleDetails:
        return WaffleDetails.from_dict(d)


WAFFLE = WaffleStrategy()
